"""Run every benchmark and write the measured table into benchmarks/README.md.

    python benchmarks/run_all.py            # the issue's sizes (about 15-30 minutes on 2 CPU cores)
    python benchmarks/run_all.py --quick    # smaller sizes, same comparisons (a few minutes)

Each script times the sweep and its baselines in one process, interleaved, so load from other processes
hits them alike; still, on a shared VM ratios move 10-40% and absolute numbers 1.5-3x from run to run.
(a)-(c) run a second time in fresh processes with one XLA host device per core.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import bench_ahn  # noqa: E402
import bench_mlp  # noqa: E402
import bench_product  # noqa: E402
import bench_scale  # noqa: E402

BEGIN, END = "<!-- measured:begin -->", "<!-- measured:end -->"
EVERY_C, ORDER_C = bench_mlp.EVERY, bench_mlp.ORDER


def on_host_devices(script: str, n: int, argv: list[str]) -> dict:
    """One benchmark script in a fresh process whose CPU is split into ``n`` XLA devices (the flag must be
    set before JAX starts), so the sweep spreads its runs over ``n`` cores; its JSON output."""
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={n}".strip()
    out = subprocess.run([sys.executable, str(HERE / script), *argv], check=True, capture_output=True, text=True,
                         cwd=HERE, env={**os.environ, "XLA_FLAGS": flags}).stdout  # fmt: skip
    return json.loads(out[out.index("{") :])


def verdict(value, target) -> str:
    if value is None:
        return "not measured"
    return f"{'met' if value >= target else 'MISSED'} ({value:.2f}x vs >= {target}x)"


def table(a: dict, b: dict, c: dict, d: dict, hosts: dict[str, dict], argv: list[str]) -> str:
    rs = lambda v: "—" if v is None else f"{v:.3g}"  # noqa: E731
    lines = [
        f"Measured {datetime.date.today()} with `python benchmarks/run_all.py {' '.join(argv)}`".rstrip() + ".",
        f"Machine: {a['machine']}.",
        "",
        "| workload | sweep run-steps/s (strategy) | compile s | jitted loop | NumPy | PyTorch loop |",
        "|---|---|---|---|---|---|",
        f"| (a) {a['workload']} | {rs(a['sweep_run_steps_per_s'])} (vmap) | {a['sweep_compile_s']:.2f} | "
        f"{rs(a['jit_loop_run_steps_per_s'])} | {rs(a['numpy_run_steps_per_s'])} | {rs(a['torch_loop_run_steps_per_s'])} |",
    ]
    for label, r in (("(b)", b), ("(c)", c)):
        keys = [k for k in r if k.startswith("sweep_") and k.endswith("_run_steps_per_s")]
        best = "sweep_auto_run_steps_per_s"
        name = f"auto = batch_size {r['auto_batch_size']}"
        others = ", ".join(f"{k[len('sweep_'):-len('_run_steps_per_s')]} {rs(r[k])}" for k in keys if k != best)
        lines.append(
            f"| {label} {r['workload']} | {rs(r[best])} ({name}; {others}) | {r['sweep_auto_compile_s']:.2f} | "
            f"{rs(r['jit_loop_run_steps_per_s'])} | — | {rs(r['torch_loop_run_steps_per_s'])} |"
        )
    full = d["full_grid"]
    lines.append(
        f"| (d) {full['runs']:,} runs ℓ(xy), chunked | {rs(full['run_steps_per_s'])} | {full['compile_s']:.2f} | — | — | — |"
    )
    ndev = hosts["a"]["devices"]
    for label, r in hosts.items():  # the default sweep head to head with the loop (still on one device)
        rate = r.get("sweep_run_steps_per_s", r.get("sweep_auto_run_steps_per_s"))
        lines.append(f"| ({label}) the same, sweep over {ndev} host devices (one per core) | {rs(rate)} | — | "
                     f"{rs(r['jit_loop_run_steps_per_s'])} | — | — |")  # fmt: skip
    lines += [
        "",
        "| target (2 CPU cores) | result |",
        "|---|---|",
        f"| (a) sweep ≥ 1.0x NumPy | {verdict(a['sweep_vs_numpy'], 1.0)} |",
        f"| (a) sweep ≥ 10x loop of jitted runs | {verdict(a['sweep_vs_loop'], 10)} |",
        f"| (a) the same, sweep over {ndev} host devices | {verdict(hosts['a']['sweep_vs_loop'], 10)} |",
        f"| (a) sweep ≥ 10⁴x PyTorch loop | {verdict(a.get('sweep_vs_torch'), 1e4)} |",
        f"| (b) sweep ≥ 1.0x loop of jitted runs | {verdict(b['sweep_vs_loop'], 1.0)} |",
        f"| (b) the same, sweep over {ndev} host devices | {verdict(hosts['b']['sweep_vs_loop'], 1.0)} |",
        f"| (b) sweep ≥ 20x PyTorch loop | {verdict(b.get('sweep_vs_torch'), 20)} |",
        f"| (c) sweep ≥ 1.0x loop of jitted runs | {verdict(c['sweep_vs_loop'], 1.0)} |",
        f"| (c) the same, sweep over {ndev} host devices | {verdict(hosts['c']['sweep_vs_loop'], 1.0)} |",
        f"| (c) sweep ≥ 20x PyTorch loop | {verdict(c.get('sweep_vs_torch'), 20)} |",
        f"| (c) ≥ 50% of matmul peak ({c['matmul_peak_gflops']:.0f} GFLOP/s measured) | "
        f"{verdict(c['sweep_fraction_of_matmul_peak'] / 0.5, 1.0)} |",
        *(
            f"| (c) sharpness every {EVERY_C} steps ≤ 1.5x GD alone: {name} | "
            f"{'met' if cost <= 1.5 else 'MISSED'} ({cost:.2f}x GD alone){extra} |"
            for name, cost, extra in (
                (f"Lanczos({ORDER_C})", c[f"sharpness_cost_lanczos{ORDER_C}"], ""),
                ("warm-started Lanczos(3)", c["sharpness_cost_lanczos3"],
                 f"; median rel. error {c[f'lanczos3_rel_err_vs_lanczos{ORDER_C}']['median']:.1e} vs Lanczos({ORDER_C})"),
            )
        ),
        f"| (d) memory bounded by the chunk | peak RSS grew {d['rss_growth_mb']:.0f} MB from {d['small_grid']['runs']:,} "
        f"to {full['runs']:,} runs, of which {d['result_growth_mb']:.0f} MB are the result arrays |",
        "",
        "Raw JSON:",
        "```json",
        json.dumps({"a": a, "b": b, "c": c, "d": d, "host_devices": hosts}, indent=1),
        "```",
    ]
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--mlp-steps", type=int, default=None, help="steps for (c) (the ratios are per run-step)")
    args = ap.parse_args(argv)
    q = args.quick
    a_args = ["--runs", "1024", "--steps", "500"] if q else []
    a = bench_product.main(a_args)
    b_args = ["--steps", "200"] if q else []
    b = bench_ahn.main(b_args + (["--torch-steps", "50"] if q else []))
    mlp_steps = args.mlp_steps or (100 if q else 1000)
    c = bench_mlp.main(["--steps", str(mlp_steps), "--torch-steps", "20" if q else "50"])
    cores = os.cpu_count() or 1  # the sweep over one host device per core; the loop still runs on one
    hosts = {
        "a": on_host_devices("bench_product.py", cores, a_args),
        "b": on_host_devices("bench_ahn.py", cores, [*b_args, "--head-to-head-only"]),
        "c": on_host_devices("bench_mlp.py", cores, ["--steps", str(mlp_steps), "--head-to-head-only"]),
    }
    d = bench_scale.main(["--n", "300", "--steps", "200"] if q else [])
    readme = HERE / "README.md"
    text = readme.read_text() if readme.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    argv_used = (["--quick"] if q else []) + ([f"--mlp-steps {args.mlp_steps}"] if args.mlp_steps else [])
    readme.write_text(head + BEGIN + "\n" + table(a, b, c, d, hosts, argv_used) + "\n" + END + tail)
    print(f"wrote {readme}")


if __name__ == "__main__":
    main()

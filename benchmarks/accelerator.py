"""The sweep against a loop of jitted single runs on whatever device JAX has (made for one GPU, e.g. an
NVIDIA H200; it runs on any backend and says which), in under 5 minutes.

Cases (full size; ``--tiny`` runs each at toy sizes, on CPU in well under a minute):
  (i)   ℓ(xy), sqrt loss (``problems.ProductLoss("sqrt")``): 1,000 η × 1,000 inits = 10⁶ runs, 4,000
        steps, the loss every 100 steps (no sharpness).
  (ii)  A tanh MLP (64-256-10, 18,944 parameters) on 1,000 scikit-learn digits, full-batch GD, 16 η × 4
        inits = 64 runs, 1,000 steps, the top Hessian eigenvalue (``Lanczos(order=20)``) every 10 steps.
  (iii) Minibatch SGD (``sj.SGD``, batches shuffled per epoch from each run's seed): a tanh MLP
        (64-32-10) on the digits, 8 η × 16 seeds × 4 batch sizes (16-128) × 2 inits = 1,024 runs, 2,000
        steps, the full-batch loss every 100 steps.
  (iv)  Sohl-Dickstein's fractal net (``problems.TanhTwoLayer``), a 1,024 × 1,024 grid of per-layer step
        sizes in [1e-3, 1e6]², 1,000 steps, final loss only; also against the public notebook's approach
        (a jitted GD step vmapped over ≤ 50,000 grid points, a Python loop over steps).

Each case times the sweep (one call to compile and warm up, then up to ``--repeats`` calls: the median is
the steady state, compile = first − steady) and a Python loop of ``sj.one_run(...).compiled()`` on the
same device, one call per run. A loop over every run would take hours, so the loop (and the public
notebook's approach) is timed over a subset of runs (or steps) and extrapolated: the JSON records how
many were timed and ``extrapolated: true``. Before (iv), a 128 × 128 probe of the same sweep predicts its
cost; if the full grid would not fit in what is left of ``--budget-s``, its steps are cut (recorded).

Cases start only while the elapsed time is under ``--budget-s``; the rest are recorded as skipped. A case
that fails records its error and the next one runs. Progress goes to stderr with timestamps; the JSON goes
to ``--out`` and a markdown table to stdout.

    python benchmarks/accelerator.py --out accelerator.json [--budget-s 240] [--tiny]
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
import traceback
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import jax
import jax.numpy as jnp
import numpy as np
from _common import machine
from bench_mlp import DigitsMLP
from bench_rules import FRACTAL_RULE, digits, fractal_grid, mlp_problem, public_code_call

import sweepjax as sj

T0 = time.perf_counter()


def log(message: str) -> None:
    stamp = datetime.datetime.now().strftime("%H:%M:%S")
    print(f"[{stamp} +{time.perf_counter() - T0:6.1f}s] {message}", file=sys.stderr, flush=True)


def elapsed() -> float:
    return time.perf_counter() - T0


# ----------------------------------------------------------------------------------------------- sizes

FULL = {
    "product": {"n_lr": 1000, "n_init": 1000, "steps": 4000, "every": 100, "loop_runs": 16},
    "mlp": {"n": 1000, "hidden": 256, "n_lr": 16, "n_init": 4, "steps": 1000, "every": 10, "order": 20, "loop_runs": 8},
    "sgd": {"n_lr": 8, "seeds": 16, "batch_sizes": [16, 32, 64, 128], "n_init": 2, "steps": 2000, "every": 100,
            "loop_runs": 16},
    "fractal": {"grid": 1024, "steps": 1000, "probe_grid": 128, "public_steps": 50, "loop_runs": 8},
}  # fmt: skip
TINY = {
    "product": {"n_lr": 32, "n_init": 32, "steps": 200, "every": 100, "loop_runs": 4},
    "mlp": {"n": 100, "hidden": 16, "n_lr": 2, "n_init": 2, "steps": 20, "every": 10, "order": 4, "loop_runs": 2},
    "sgd": {"n_lr": 2, "seeds": 2, "batch_sizes": [8, 16], "n_init": 1, "steps": 40, "every": 20, "loop_runs": 4},
    "fractal": {"grid": 16, "steps": 20, "probe_grid": 8, "public_steps": 10, "loop_runs": 4},
}


# ---------------------------------------------------------------------------------------------- timing


def time_sweep(call, repeats: int, cap_s: float) -> dict:
    """One call (compile + run), then up to ``repeats`` timed calls (at least one) while they fit in
    ``cap_s``; steady = their median, compile = first − steady."""
    t0 = time.perf_counter()
    jax.block_until_ready(call())
    first = time.perf_counter() - t0
    times = []
    while len(times) < max(repeats, 1):
        if times and sum(times) + np.median(times) > cap_s:
            break
        t0 = time.perf_counter()
        jax.block_until_ready(call())
        times.append(time.perf_counter() - t0)
    steady = float(np.median(times))
    return {"first_s": first, "steady_s": steady, "compile_s": max(first - steady, 0.0), "repeats": len(times)}


def time_loop(run_one, args: list, total_runs: int, cap_s: float) -> dict:
    """A Python loop of jitted single runs: ``run_one(*a)`` for a in ``args``. The first call compiles;
    then runs in groups (outputs blocked on per group, dispatch of the next run overlapping the device's
    work within a group) until every run in ``args`` is done or ``cap_s`` has passed; the time per run,
    times ``total_runs``, is the loop's projected time."""
    t0 = time.perf_counter()
    jax.block_until_ready(run_one(*args[0]))
    first = time.perf_counter() - t0
    done, spent, group = 0, 0.0, 1
    while done < len(args):
        chunk = args[done : done + group]
        t0 = time.perf_counter()
        jax.block_until_ready([run_one(*a) for a in chunk])
        spent += time.perf_counter() - t0
        done += len(chunk)
        group *= 2
        if spent > cap_s:
            break
    per_run = spent / done
    return {
        "loop_first_call_s": first,
        "loop_compile_s": max(first - per_run, 0.0),
        "loop_per_run_s": per_run,
        "loop_runs_timed": done,
        "loop_steady_s": per_run * total_runs,
        "loop_extrapolated": done < total_runs,
    }


def spread(total: int, k: int) -> np.ndarray:
    """k run indices spread evenly over [0, total)."""
    return np.unique(np.linspace(0, total - 1, min(k, total)).round().astype(int))


def summarize(workload: str, runs: int, steps: int, sweep: dict, loop: dict, **extra) -> dict:
    work = runs * steps
    return {
        "workload": workload,
        "runs": runs,
        "steps": steps,
        "sweep_compile_s": sweep["compile_s"],
        "sweep_steady_s": sweep["steady_s"],
        "sweep_repeats": sweep["repeats"],
        "sweep_run_steps_per_s": work / sweep["steady_s"],
        **loop,
        "loop_run_steps_per_s": work / loop["loop_steady_s"],
        "sweep_vs_loop": loop["loop_steady_s"] / sweep["steady_s"],
        **extra,
    }


# ----------------------------------------------------------------------------------------------- cases


def case_product(cfg: dict, repeats: int, cap_s: float) -> dict:
    p = sj.problems.ProductLoss("sqrt")
    lrs = np.geomspace(0.01, 1.0, cfg["n_lr"])
    inits = p.init_grid(np.geomspace(0.5, 100.0, cfg["n_init"]), x0=0.5)
    steps, record = cfg["steps"], sj.Record(every=cfg["every"], sharpness=None, observables=False)
    log(f"(i) product: sweep of {lrs.size} x {cfg['n_init']} runs x {steps} steps")
    sweep = time_sweep(lambda: sj.sweep(p, lrs, inits, num_steps=steps, record=record).records["loss"], repeats, cap_s)
    runs = lrs.size * cfg["n_init"]
    run = sj.one_run(p, inits[0], num_steps=steps, record=record).compiled()
    args = [(jnp.float32(lrs[i // cfg["n_init"]]), jnp.asarray(inits[i % cfg["n_init"]])) for i in spread(runs, cfg["loop_runs"])]
    log(f"(i) product: loop of jitted runs ({len(args)} of {runs} timed)")
    loop = time_loop(lambda lr, th: run(lr, th).records, args, runs, cap_s)
    return summarize(f"l(xy) sqrt loss, {runs} runs x {steps} steps, loss every {cfg['every']}", runs, steps, sweep, loop)


def mlp_sharpness_problem(n: int, hidden: int):
    """Benchmark (c)'s net: ½ mean ‖W₂ tanh(W₁x) − onehot‖² on n digits (user-defined problem)."""
    x, y = digits(n)

    def inits(num, key=jax.random.key(0)):
        k1, k2 = jax.random.split(key)
        return {"w1": jax.random.normal(k1, (num, x.shape[1], hidden)) / np.sqrt(x.shape[1]),
                "w2": jax.random.normal(k2, (num, hidden, y.shape[1])) / np.sqrt(hidden)}  # fmt: skip

    return DigitsMLP(jnp.asarray(x), jnp.asarray(y)), inits


def case_mlp(cfg: dict, repeats: int, cap_s: float) -> dict:
    p, make_inits = mlp_sharpness_problem(cfg["n"], cfg["hidden"])
    inits = make_inits(cfg["n_init"])
    lrs = np.geomspace(0.05, 2.0, cfg["n_lr"])
    steps = cfg["steps"]
    record = sj.Record(every=cfg["every"], sharpness=sj.Lanczos(order=cfg["order"]), observables=False)
    runs = lrs.size * cfg["n_init"]
    n_params = sum(a[0].size for a in jax.tree.leaves(inits))
    log(f"(ii) MLP + sharpness: sweep of {runs} runs x {steps} steps")
    sweep = time_sweep(lambda: sj.sweep(p, lrs, inits, num_steps=steps, record=record).records["sharpness"], repeats, cap_s)
    res = sj.sweep(p, lrs, inits, num_steps=steps, record=record)
    one = jax.tree.map(lambda a: a[0], inits)
    run = sj.one_run(p, one, num_steps=steps, record=record).compiled()
    args = [(jnp.float32(lrs[i // cfg["n_init"]]), jax.tree.map(lambda a, i=i: a[i % cfg["n_init"]], inits))
            for i in spread(runs, cfg["loop_runs"])]  # fmt: skip
    log(f"(ii) MLP + sharpness: loop of jitted runs ({len(args)} of {runs} timed)")
    loop = time_loop(lambda lr, th: run(lr, th).records, args, runs, cap_s)
    return summarize(
        f"tanh MLP {n_params} params, n={cfg['n']} digits, {runs} runs x {steps} steps, "
        f"sharpness (Lanczos({cfg['order']})) every {cfg['every']}", runs, steps, sweep, loop,
        auto_batch_size=res.metadata["batch_size"],
    )  # fmt: skip


def case_sgd(cfg: dict, repeats: int, cap_s: float) -> dict:
    p = mlp_problem(hidden=32)
    inits = p.init(jax.random.key(1), cfg["n_init"])
    lrs, seeds, sizes = np.geomspace(0.05, 0.4, cfg["n_lr"]), np.arange(cfg["seeds"]), np.asarray(cfg["batch_sizes"])
    steps, record = cfg["steps"], sj.Record(every=cfg["every"], sharpness=None, observables=False)
    axes = {"seed": seeds, "batch_size": sizes}
    runs = lrs.size * seeds.size * sizes.size * cfg["n_init"]
    rule = sj.SGD(batch_size=int(sizes[0]))
    log(f"(iii) SGD: sweep of {runs} runs x {steps} steps")
    call = lambda: sj.sweep(p, lrs, inits, num_steps=steps, record=record, rule=rule, axes=axes).records["loss"]  # noqa: E731
    sweep = time_sweep(call, repeats, cap_s)
    one = jax.tree.map(lambda a: a[0], inits)
    programs = {int(b): sj.one_run(p, one, num_steps=steps, record=record, rule=sj.SGD(batch_size=int(b))).compiled()
                for b in sizes}  # fmt: skip
    grid = [(lr, s, int(b), j) for lr in lrs for s in seeds for b in sizes for j in range(cfg["n_init"])]
    args = [(jnp.float32(grid[i][0]), jnp.uint32(grid[i][1]), grid[i][2], jax.tree.map(lambda a, j=grid[i][3]: a[j], inits))
            for i in spread(runs, cfg["loop_runs"])]  # fmt: skip
    log(f"(iii) SGD: loop of jitted runs ({len(args)} of {runs} timed, one program per batch size)")
    t0 = time.perf_counter()
    for b in sizes:  # compile every batch size's program (one first call each) outside the timed runs
        jax.block_until_ready(programs[int(b)](args[0][0], args[0][3], hyper={"seed": args[0][1]}).records)
    first_calls = time.perf_counter() - t0
    loop = time_loop(lambda lr, s, b, th: programs[b](lr, th, hyper={"seed": s}).records, args, runs, cap_s)
    loop["loop_compile_s"] = max(first_calls - sizes.size * loop["loop_per_run_s"], 0.0)
    return summarize(
        f"SGD, tanh MLP 64-32-10 on digits, {lrs.size} lr x {seeds.size} seeds x batch {sizes.tolist()} x "
        f"{cfg['n_init']} inits, {steps} steps, loss every {cfg['every']}", runs, steps, sweep, loop,
    )  # fmt: skip


def fractal_call(p, theta, lr1, lr2, steps):
    record = sj.Record(every=steps, sharpness=None, observables=False)
    return lambda: sj.sweep(p, [1.0], theta, num_steps=steps, record=record, rule=FRACTAL_RULE,
                            axes={"lr1": lr1, "lr2": lr2}).final["loss"]  # fmt: skip


def case_fractal(cfg: dict, repeats: int, cap_s: float, left_s: float) -> dict:
    p = sj.problems.TanhTwoLayer.from_seed(0)
    theta = p.init(jax.random.key(0), 1)
    n, steps = cfg["grid"], cfg["steps"]
    runs = n * n
    # a probe on a small grid predicts the full grid's cost (pessimistically: a small grid fills a
    # device less); cut the steps if two full calls would not fit in what is left of the budget
    pg = cfg["probe_grid"]
    log(f"(iv) fractal: probe sweep {pg}x{pg} x {steps} steps")
    probe = time_sweep(fractal_call(p, theta, *fractal_grid(pg), steps), 1, cap_s)
    predicted = probe["steady_s"] * runs / (pg * pg)
    reduced = None
    if 2 * predicted + 30 > left_s:
        reduced = max(10, int(steps * max(left_s - 30, 0) / (2 * predicted + 1e-9)) // 10 * 10)
        log(f"(iv) fractal: predicted {predicted:.1f} s per call at {steps} steps; cutting to {reduced} steps")
        steps = min(reduced, steps)
    lr1, lr2 = fractal_grid(n)
    log(f"(iv) fractal: sweep {n}x{n} x {steps} steps (predicted {predicted * steps / cfg['steps']:.1f} s per call)")
    sweep = time_sweep(fractal_call(p, theta, lr1, lr2, steps), repeats, cap_s)
    # the public notebook's approach: its first batch of grid points, ``public_steps`` steps, extrapolated
    public_steps = min(cfg["public_steps"], steps)
    public, covered = public_code_call(p, theta, lr1, lr2, public_steps, max_batches=1)
    log(f"(iv) fractal: public-code approach ({covered} of {runs} runs x {public_steps} of {steps} steps timed)")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Some donated buffers were not usable")
        pub = time_sweep(public, 2, cap_s)
    public_s = pub["steady_s"] * (runs / covered) * (steps / public_steps)
    run = sj.one_run(p, jax.tree.map(lambda a: a[0], theta), num_steps=steps, rule=FRACTAL_RULE,
                     record=sj.Record(every=steps, sharpness=None, observables=False)).compiled()  # fmt: skip
    th0, one = jax.tree.map(lambda a: jnp.asarray(a[0]), theta), jnp.float32(1.0)
    args = [(jnp.float32(lr1[i // n]), jnp.float32(lr2[i % n])) for i in spread(runs, cfg["loop_runs"])]
    log(f"(iv) fractal: loop of jitted runs ({len(args)} of {runs} timed)")
    loop = time_loop(lambda a, b: run(one, th0, hyper={"lr1": a, "lr2": b}).final, args, runs, cap_s)
    return summarize(
        f"Sohl-Dickstein tanh net (272 params), {n}x{n} per-layer lr grid, {steps} steps, final loss only", runs, steps,
        sweep, loop, steps_cut_to_fit_budget=reduced is not None, probe_steady_s=probe["steady_s"],
        public_compile_s=pub["compile_s"], public_steady_s=public_s, public_runs_timed=covered,
        public_steps_timed=public_steps, public_extrapolated=True, public_run_steps_per_s=runs * steps / public_s,
        sweep_vs_public=public_s / sweep["steady_s"],
    )  # fmt: skip


def fractal_diagnose(grid: int, steps: int, repeats: int) -> dict:
    """Where the fractal sweep's time goes, on a grid × grid problem: ns per run-step of the sweep (auto,
    and one wide vmap), of the same runs as a plain GD sweep over (η, θ₀) (no groups, no named axes), of
    the public notebook's approach (a Python loop over steps of a jitted vmapped step) and of the
    hand-written jit(vmap(scan)) of that step. Run with ``XLA_FLAGS=--xla_dump_to=DIR
    --xla_dump_hlo_as_text`` to compare the compiled step bodies (``hlo_op_counts``)."""
    from bench_rules import public_code_step

    p = sj.problems.TanhTwoLayer.from_seed(0)
    theta = p.init(jax.random.key(0), 1)
    lr1, lr2 = fractal_grid(grid)
    runs, work = grid * grid, grid * grid * steps
    record = sj.Record(every=steps, sharpness=None, observables=False)
    vstep, vloss = public_code_step(p)
    a, b = np.meshgrid(lr1, lr2, indexing="ij")
    pairs = jnp.asarray(np.stack([a.ravel(), b.ravel()], -1), jnp.float32)
    one = jax.tree.map(lambda u: jnp.asarray(u[0]), theta)
    tiled = jax.tree.map(lambda u: jnp.tile(u, (grid,) + (1,) * u.ndim), one)  # grid inits for plain GD

    def public():
        th = jax.tree.map(lambda u: jnp.tile(u, (runs,) + (1,) * u.ndim), one)
        for _ in range(steps):
            th, _ = vstep(th, pairs, p.X, p.y)
        return vloss(th, p.X, p.y)

    h, c = p.width, p.input_scale

    def loss(th, X, Y):
        return jnp.mean((jnp.tanh(c * (X @ th["w1"].T)) @ th["w2"] / h - Y) ** 2)

    def run(lrs, X, Y):
        def body(th, _):
            g = jax.grad(loss)(th, X, Y)
            return {"w1": th["w1"] - lrs[0] * g["w1"], "w2": th["w2"] - lrs[1] * g["w2"]}, None

        th, _ = jax.lax.scan(body, one, None, length=steps)
        return loss(th, X, Y)

    scan_all = jax.jit(jax.vmap(run, in_axes=(0, None, None)))
    axes = {"lr1": lr1, "lr2": lr2}
    contenders = {
        "sweep_auto": lambda: sj.sweep(p, [1.0], theta, num_steps=steps, record=record, rule=FRACTAL_RULE,
                                       axes=axes).final["loss"],
        "sweep_vmap_all": lambda: sj.sweep(p, [1.0], theta, num_steps=steps, record=record, rule=FRACTAL_RULE, axes=axes,
                                           batch_size=None).final["loss"],
        "sweep_plain_gd_lr_x_init": lambda: sj.sweep(p, lr1, tiled, num_steps=steps, record=record).final["loss"],
        "public_python_loop": public,
        "hand_written_jit_vmap_scan": lambda: scan_all(pairs, p.X, p.y),
    }  # fmt: skip
    out = {"grid": grid, "runs": runs, "steps": steps}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Some donated buffers were not usable")
        for name, fn in contenders.items():
            log(f"diagnose: {name}")
            t = time_sweep(fn, repeats, 60.0)
            out[name] = {"ns_per_run_step": 1e9 * t["steady_s"] / work, "compile_s": t["compile_s"]}
    return out


def hlo_op_counts(dump_dir: str, pattern: str = "after_optimizations.txt") -> dict:
    """For each optimized HLO module in an XLA dump: per while-loop body (or the entry computation of a
    module without loops), how many ops of each kind (fusions are kernels on a GPU; custom-calls are
    library calls such as cuBLAS GEMMs)."""
    import re
    from collections import Counter

    out = {}
    for f in sorted(Path(dump_dir).glob(f"*{pattern}")):
        text = f.read_text()
        bodies = set(re.findall(r"body=(%?[\w.\-]+)", text))
        module = {}
        for comp in re.split(r"\n(?=\S.*\{\n)", text):
            name = comp.split(" ", 1)[0]
            if name.lstrip("%") in {b.lstrip("%") for b in bodies} or (not bodies and name == "ENTRY"):
                ops = r"(fusion|custom-call|copy|transpose|dot|sort|gather|scatter)"  # tuple-typed results too
                kinds = Counter(re.findall(r"^\s*(?:ROOT )?%\S+ = (?:\([^=]*?\)|\S+) " + ops + r"\(", comp, re.M))
                module[name] = dict(kinds)
        if module:
            out[f.name] = module
    return out


CASES = {"product": case_product, "mlp": case_mlp, "sgd": case_sgd, "fractal": case_fractal}
LABELS = {"product": "(i) l(xy) 10^6 runs", "mlp": "(ii) MLP + sharpness", "sgd": "(iii) SGD", "fractal": "(iv) fractal grid"}


def table(out: dict) -> str:
    g = lambda v: "—" if v is None else f"{v:.3g}"  # noqa: E731
    lines = [
        f"Backend: {out['backend']} ({out['machine']}); mode: {out['mode']}; total {out['elapsed_s']:.0f} s.",
        "",
        "| case | runs × steps | sweep compile s | sweep steady s | sweep run-steps/s | loop (runs timed) | "
        "loop run-steps/s | sweep / loop |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in out["cases"].items():
        if "skipped" in r or "error" in r:
            lines.append(f"| {LABELS[name]} | {r.get('skipped') or 'error: ' + r['error'][:60]} | | | | | | |")
            continue
        extra = f" (public-code approach: {r['sweep_vs_public']:.3g}x)" if "sweep_vs_public" in r else ""
        lines.append(
            f"| {LABELS[name]} | {r['runs']} × {r['steps']} | {r['sweep_compile_s']:.2f} | {r['sweep_steady_s']:.3g} | "
            f"{g(r['sweep_run_steps_per_s'])} | {r['loop_runs_timed']} of {r['runs']}"
            f"{', extrapolated' if r['loop_extrapolated'] else ''} | {g(r['loop_run_steps_per_s'])} | "
            f"{r['sweep_vs_loop']:.3g}x{extra} |"
        )
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="write the JSON here")
    ap.add_argument("--tiny", action="store_true", help="toy sizes (CPU, < 60 s): checks the script, measures nothing")
    ap.add_argument("--budget-s", type=float, default=240.0, help="start no case after this many seconds")
    ap.add_argument("--repeats", type=int, default=3, help="timed sweep calls after the warm-up (median)")
    ap.add_argument("--cap-s", type=float, default=None, help="time cap per timed part of a case (default budget/8)")
    ap.add_argument("--only", nargs="*", choices=list(CASES), default=None)
    ap.add_argument("--diagnose", type=int, nargs=2, metavar=("GRID", "STEPS"), default=None,
                    help="instead of the cases: where the fractal sweep's time goes on a GRID x GRID grid")  # fmt: skip
    ap.add_argument("--hlo-dump", default=None, help="with --diagnose: an XLA dump folder to count ops in")
    args = ap.parse_args(argv)
    if args.diagnose is not None:
        out = {"machine": machine(), "backend": jax.default_backend(), "jax": jax.__version__,
               "diagnose": fractal_diagnose(*args.diagnose, args.repeats)}  # fmt: skip
        if args.hlo_dump:
            out["hlo_op_counts"] = hlo_op_counts(args.hlo_dump)
        text = json.dumps(out, indent=1)
        if args.out is not None:
            args.out.write_text(text)
        print(text)
        return out
    sizes = TINY if args.tiny else FULL
    cap_s = args.cap_s if args.cap_s is not None else args.budget_s / 8
    out = {
        "machine": machine(),
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "jax": jax.__version__,
        "mode": "tiny" if args.tiny else "full",
        "budget_s": args.budget_s,
        "sizes": sizes,
        "cases": {},
    }
    log(f"backend {out['backend']}: {out['machine']}; mode {out['mode']}; budget {args.budget_s:.0f} s")
    for name in args.only or list(CASES):
        if elapsed() > args.budget_s:
            log(f"{LABELS[name]}: skipped (elapsed {elapsed():.0f} s > budget {args.budget_s:.0f} s)")
            out["cases"][name] = {"skipped": f"budget: started at {elapsed():.0f} s > {args.budget_s:.0f} s"}
            continue
        t0 = time.perf_counter()
        try:
            kwargs = {"left_s": args.budget_s - elapsed()} if name == "fractal" else {}
            out["cases"][name] = CASES[name](sizes[name], args.repeats, cap_s, **kwargs)
            out["cases"][name]["case_wall_s"] = time.perf_counter() - t0
            r = out["cases"][name]
            log(f"{LABELS[name]}: sweep {r['sweep_run_steps_per_s']:.3g} run-steps/s, loop {r['loop_run_steps_per_s']:.3g}, "
                f"ratio {r['sweep_vs_loop']:.3g}x ({r['case_wall_s']:.1f} s)")  # fmt: skip
        except Exception as e:  # record and go on: one failing case must not cost the others
            log(f"{LABELS[name]}: FAILED {type(e).__name__}: {e}")
            out["cases"][name] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-2000:]}
    out["elapsed_s"] = elapsed()
    if args.out is not None:
        args.out.write_text(json.dumps(out, indent=1, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))
    print(table(out))
    log(f"done in {elapsed():.1f} s")
    return out


if __name__ == "__main__":
    main()

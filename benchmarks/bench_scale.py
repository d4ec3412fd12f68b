"""Benchmark (d): a 10⁶-run toy sweep, run in fixed chunks: memory is bounded by the chunk, not the grid.

ℓ(xy) with the sqrt loss, 1,000 step sizes × 1,000 inits, 1,000 steps, loss + exact sharpness every 100
steps, chunk_size 65,536. Peak memory is compared with the same sweep on a 100× smaller grid: what grows
is only the result arrays (records at 11 points per run), not the working set.

    python benchmarks/bench_scale.py [--n 1000] [--steps 1000] [--chunk 65536]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np


def child(n: int, steps: int, chunk: int) -> None:
    import jax.numpy as jnp
    from _common import peak_rss_mb

    import sweepjax as sj

    p = sj.problems.ProductLoss("sqrt")
    lrs = np.geomspace(0.01, 1.0, n)
    inits = p.init_grid(np.geomspace(0.5, 100.0, n), x0=0.5)
    rec = sj.Record(every=100, sharpness=sj.DenseEigh(), observables=False)
    t0 = time.perf_counter()
    sj.sweep(p, lrs, inits, num_steps=steps, record=rec, chunk_size=min(chunk, n * n))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()  # same shapes, new values: no compile
    res = sj.sweep(p, lrs * 1.0001, inits, num_steps=steps, record=rec, chunk_size=min(chunk, n * n))
    wall = time.perf_counter() - t0
    result_mb = sum(v.nbytes for v in res.records.values()) / 2**20 + res.final_params.nbytes / 2**20
    finite = bool(jnp.isfinite(res.final["sharpness"][~res.diverged]).all())
    print(json.dumps({"runs": n * n, "wall_s": wall, "compile_s": max(first - wall, 0.0), "run_steps_per_s": n * n * steps / wall,
                      "peak_rss_mb": peak_rss_mb(), "result_arrays_mb": result_mb,
                      "diverged": int(res.diverged.sum()), "finite_sharpness": finite}))  # fmt: skip


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="n step sizes × n inits")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--chunk", type=int, default=65536)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.n, args.steps, args.chunk)
        return {}
    out = {}
    for label, n in (("small_grid", max(args.n // 10, 2)), ("full_grid", args.n)):
        cmd = [sys.executable, __file__, "--child", "--n", str(n), "--steps", str(args.steps), "--chunk", str(args.chunk)]
        line = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        out[label] = json.loads(line)
    small, full = out["small_grid"], out["full_grid"]
    out["rss_growth_mb"] = full["peak_rss_mb"] - small["peak_rss_mb"]
    out["result_growth_mb"] = full["result_arrays_mb"] - small["result_arrays_mb"]
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()

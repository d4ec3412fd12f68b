"""Benchmark (a): f(x, y) = ℓ(xy), 4096 runs × 2000 steps, loss and exact sharpness every step.

Compares, in one process and on the same workload:
  * ``sweepjax.sweep`` (one compiled program over the grid),
  * a Python loop of jitted single runs (the library's one-run program, one call per run),
  * a hand-vectorized NumPy implementation over all runs at once.
Reports steady-state run-steps/s (compile timed separately; the sweep, the loop and NumPy timed head to
head in interleaved rounds, best of each) and the ratios.

    python benchmarks/bench_product.py [--runs 4096] [--steps 2000] [--loop-runs 256] [--rounds 15]

With ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` (set before JAX starts) the sweep spreads its
runs over N host devices, one per core; the loop of single runs and NumPy still use one.
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import numpy as np
from _common import head_to_head, jit_loop_call, machine

import sweepjax as sj


def workload(n_runs: int):
    p = sj.problems.ProductLoss("sqrt")
    n_lr = 64
    lrs = np.geomspace(0.05, 1.0, n_lr).astype(np.float32)
    inits = np.asarray(p.init(jax.random.key(0), n_runs // n_lr), dtype=np.float32)
    return p, lrs, inits


RECORD = sj.Record(every=1, sharpness=sj.DenseEigh(), observables=False)


def sweep_call(p, lrs, inits, steps):
    return lambda: sj.sweep(p, lrs, inits, num_steps=steps, record=RECORD)


def bench_torch(lr, theta, steps):
    """The public EoS code's style: one run at a time, autograd gradient and Hessian every step."""
    import torch

    torch.set_num_threads(1)
    th = torch.tensor(np.asarray(theta), requires_grad=True)
    loss_fn = lambda t: torch.sqrt(1 + (t[0] * t[1]) ** 2)  # noqa: E731
    t0 = time.perf_counter()
    for _ in range(steps):
        torch.linalg.eigvalsh(torch.autograd.functional.hessian(loss_fn, th.detach()))
        (g,) = torch.autograd.grad(loss_fn(th), th)
        with torch.no_grad():
            th -= float(lr) * g
    return time.perf_counter() - t0


def bench_numpy(lrs, inits, steps):
    """All runs at once in float32 NumPy: GD on ℓ(xy) with the closed-form 2×2 top eigenvalue."""
    lr = np.repeat(lrs, inits.shape[0]).astype(np.float32)
    x = np.tile(inits[:, 0], lrs.size).astype(np.float32)
    y = np.tile(inits[:, 1], lrs.size).astype(np.float32)
    loss = np.empty((steps, x.size), np.float32)
    sharp = np.empty((steps, x.size), np.float32)
    for t in range(steps):
        s = x * y
        q = 1 + s * s
        r = np.sqrt(q)
        d1 = s / r
        d2 = 1 / (q * r)
        a, b, c = d2 * y * y, d2 * s + d1, d2 * x * x
        sharp[t] = 0.5 * (a + c) + np.sqrt(0.25 * (a - c) ** 2 + b * b)
        loss[t] = r
        x, y = x - lr * d1 * y, y - lr * d1 * x
    return sharp


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--loop-runs", type=int, default=256, help="runs timed for the jitted loop (per-run cost)")
    ap.add_argument("--rounds", type=int, default=15, help="interleaved rounds of sweep, loop and NumPy (best of each)")
    args = ap.parse_args(argv)
    p, lrs, inits = workload(args.runs)
    n = lrs.size * inits.shape[0]
    work = n * args.steps

    sweep = sweep_call(p, lrs, inits, args.steps)
    t0 = time.perf_counter()
    res = sweep()
    first = time.perf_counter() - t0
    n_loop = min(args.loop_runs, n)
    best = head_to_head(
        {"sweep": sweep, "loop": jit_loop_call(p, lrs, inits, args.steps, RECORD, n_loop),
         "numpy": lambda: bench_numpy(lrs, inits, args.steps)},
        args.rounds,
    )  # fmt: skip
    t_sweep, t_loop, t_np = best["sweep"], best["loop"] * n / n_loop, best["numpy"]
    sharp_np = bench_numpy(lrs, inits, args.steps)
    try:
        torch_steps = 200
        torch_rate = torch_steps / bench_torch(lrs[0], inits[0], torch_steps)
    except ImportError:
        torch_rate = None
    # same numbers: the NumPy sharpness at step 1000 against the sweep's (float32 both)
    k = min(1000, args.steps - 1)
    agree = np.nanmax(np.abs(res.records["sharpness"][..., k].reshape(-1) - sharp_np[k]) / (1 + np.abs(sharp_np[k])))
    out = {
        "workload": f"l(xy) sqrt loss, {n} runs x {args.steps} steps, loss + exact sharpness every step",
        "machine": machine(),
        "devices": jax.device_count(),
        "sweep_run_steps_per_s": work / t_sweep,
        "sweep_compile_s": max(first - t_sweep, 0.0),
        "params_layout": res.metadata["params_layout"],
        "jit_loop_run_steps_per_s": work / t_loop,
        "numpy_run_steps_per_s": work / t_np,
        "sweep_vs_loop": t_loop / t_sweep,
        "sweep_vs_numpy": t_np / t_sweep,
        "torch_loop_run_steps_per_s": torch_rate,
        "sweep_vs_torch": None if torch_rate is None else work / t_sweep / torch_rate,
        "max_rel_diff_vs_numpy_at_step_1000": float(agree),
    }
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()

"""The cost of generality: ``sj.sweep`` against the hand-written ``jit(vmap(vmap(scan)))`` a JAX user
writes for the same records, both compiled, on ℓ(xy) (sqrt loss, GD, the loss every ``every`` steps).

1. Host overhead of one small call: 8 runs × 20 steps, loss every 10 (target, issue 12: ≤ 2 ms). The work
   itself is microseconds; the time is host-side validation, one abstract trace of the loss and
   observables, planning, placement and the fetch of the results.
2. Throughput: 64 × 64 runs × 20,000 steps, loss every 100 (target, issue 12: the sweep ≥ 0.9× the
   hand-written program), interleaved rounds, best of each. The hand-written program does no divergence
   bookkeeping, no per-run budgets and no masking; the sweep does all three.

    python benchmarks/bench_generality.py [--calls 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
from _common import head_to_head, machine

import sweepjax as sj


def hand_written(problem, every: int, steps: int):
    """GD on every (η, θ₀), the loss recorded every ``every`` steps: jit(vmap(vmap(scan of scans)))."""

    def run(lr, theta):
        def block(th, _):
            loss = problem.loss(th)
            th = jax.lax.fori_loop(0, every, lambda i, t: t - lr * jax.grad(problem.loss)(t), th)
            return th, loss

        th, losses = jax.lax.scan(block, theta, None, length=steps // every)
        return jnp.append(losses, problem.loss(th))

    return jax.jit(jax.vmap(jax.vmap(run, in_axes=(None, 0)), in_axes=(0, None)))


def per_call_ms(fn, calls: int) -> float:
    jax.block_until_ready(fn())
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def contenders(lrs, inits, steps: int, every: int) -> dict:
    p = sj.problems.ProductLoss("sqrt")
    record = sj.Record(every=every, sharpness=None, observables=False)
    hand = hand_written(p, every, steps)
    lrs_dev, inits_dev = jnp.asarray(lrs, jnp.float32), jnp.asarray(inits, jnp.float32)
    return {
        "sweep": lambda: sj.sweep(p, lrs, inits, num_steps=steps, record=record).records["loss"],
        "hand_written": lambda: hand(lrs_dev, inits_dev),
    }


def main(calls: int = 200, rounds: int = 5) -> dict:
    p = sj.problems.ProductLoss("sqrt")
    small = contenders(np.array([0.1, 0.2]), p.init_grid(np.array([1.0, 2.0, 3.0, 4.0]), x0=0.5), 20, 10)
    out = {"machine": machine(), **{f"small_{k}_ms": per_call_ms(f, calls) for k, f in small.items()}}
    out["small_target_met"] = out["small_sweep_ms"] <= 2.0
    grid = contenders(np.geomspace(0.01, 0.2, 64), p.init_grid(np.geomspace(2, 400, 64), x0=0.5), 20_000, 100)
    best = head_to_head(grid, rounds)
    out.update({f"grid_{k}_s": v for k, v in best.items()})
    out["grid_sweep_vs_hand_written"] = best["hand_written"] / best["sweep"]
    out["grid_target_met"] = out["grid_sweep_vs_hand_written"] >= 0.9
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(main(args.calls, args.rounds), indent=1))

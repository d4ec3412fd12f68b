"""Host overhead of one small ``sj.sweep`` call: 8 runs × 20 steps of ℓ(xy), against the hand-written
``jit(vmap(vmap(scan)))`` a JAX user writes for the same records (loss every 10 steps), both compiled.

Target (issue 12): ≤ 2 ms per sweep call. The work itself is microseconds, so the time is the
host-side validation, problem tracing (one abstract trace of the loss and observables), planning,
placement and the fetch of the results.

    python benchmarks/bench_overhead.py [--calls 200]
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
from _common import machine

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


def main(calls: int = 200) -> dict:
    p = sj.problems.ProductLoss("sqrt")
    lrs, inits = np.array([0.1, 0.2]), p.init_grid(np.array([1.0, 2.0, 3.0, 4.0]), x0=0.5)
    record = sj.Record(every=10, sharpness=None, observables=False)
    sweep = lambda: sj.sweep(p, lrs, inits, num_steps=20, record=record).records["loss"]  # noqa: E731
    hand = hand_written(p, 10, 20)
    lrs_dev, inits_dev = jnp.asarray(lrs, jnp.float32), jnp.asarray(inits, jnp.float32)
    out = {
        "machine": machine(),
        "sweep_ms": per_call_ms(sweep, calls),
        "hand_written_ms": per_call_ms(lambda: hand(lrs_dev, inits_dev), calls),
    }
    out["target_met"] = out["sweep_ms"] <= 2.0
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    print(json.dumps(main(parser.parse_args().calls), indent=1))

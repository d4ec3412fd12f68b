"""What a moving progress bar costs: the same sweep with ``progress=False`` and ``progress=True``, head to head.

Two workloads in one default chunk: the demo's ℓ(xy) grid (128 × 128 runs, 40,000 steps, exact sharpness
every 100 steps; one wide vmapped batch) and the tanh MLP of benchmark (c) (16 step sizes, run in sequence, Lanczos
every 10 steps; 16 mapped batches, so ticks span batches). Target: the bar costs under 2% of the sweep.

    python benchmarks/bench_progress.py [--rounds 5] [--mlp-steps 200]
"""

from __future__ import annotations

import argparse
import io
import json
from contextlib import redirect_stderr

import numpy as np
from _common import head_to_head, machine

import sweepjax as sj


def contenders(problem, lrs, inits, **kw) -> dict:
    def run(progress):
        def call():
            with redirect_stderr(io.StringIO()):  # the bar's text is not what is timed
                return sj.sweep(problem, lrs, inits, **kw, progress=progress).final["loss"]

        return call

    return {"no progress": run(False), "progress bar": run(True)}


def main(rounds: int = 5, mlp_steps: int = 200) -> dict:
    p = sj.problems.ProductLoss("sqrt")
    product = contenders(
        p, np.geomspace(0.01, 0.2, 128), p.init_grid(np.geomspace(2, 400, 128), x0=0.5),
        num_steps=40_000, record=sj.Record(every=100, sharpness=sj.DenseEigh()),
    )  # fmt: skip
    import bench_mlp
    import jax.numpy as jnp

    x, y = bench_mlp.digits()
    net = contenders(
        bench_mlp.DigitsMLP(jnp.asarray(x), jnp.asarray(y)), np.geomspace(0.05, 2.0, bench_mlp.N_LR),
        bench_mlp.inits(x.shape[1]), num_steps=mlp_steps,
        record=sj.Record(every=bench_mlp.EVERY, sharpness=sj.Lanczos(order=bench_mlp.ORDER), observables=False),
    )  # fmt: skip
    out = {"machine": machine()}
    for name, calls in (("product", product), ("mlp", net)):
        best = head_to_head(calls, rounds)
        out[name] = {**best, "overhead": best["progress bar"] / best["no progress"] - 1}
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mlp-steps", type=int, default=200)
    args = parser.parse_args()
    print(json.dumps(main(args.rounds, args.mlp_steps), indent=1))

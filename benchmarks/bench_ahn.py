"""Benchmark (b): Ahn et al.'s ReLU network on sparse-coding data, d = 200, n = 300, 64 step sizes.

Full-batch GD on mean ℓ_logi(y f(x; a⁻, a⁺, b)), 64 step sizes around 8π/d², 1,000 steps each, loss and
observables every 10 steps, sharpness (exact, 3 parameters) every 10 steps. Compares in one process the
sweep under each execution strategy with a Python loop of jitted single runs and a PyTorch per-run loop
(autograd; Hessian by double backward every 10 steps).

    python benchmarks/bench_ahn.py [--steps 1000] [--torch-steps 200] [--head-to-head-only]
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import numpy as np
from _common import machine, time_strategies

import sweepjax as sj

D, N, LAM, N_LR, EVERY = 200, 300, 3.0, 64, 10


def torch_loop(x, y, lr, steps):
    import torch

    torch.set_num_threads(1)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    theta = torch.tensor([0.01, -0.02, 0.0], requires_grad=True)

    def loss_fn(th):
        f = th[0] * torch.relu(-xt + th[2]).sum(1) + th[1] * torch.relu(xt + th[2]).sum(1)
        return torch.nn.functional.softplus(-yt * f).mean()

    t0 = time.perf_counter()
    for t in range(steps):
        if t % EVERY == 0:
            torch.linalg.eigvalsh(torch.autograd.functional.hessian(loss_fn, theta.detach()))
        loss = loss_fn(theta)
        (g,) = torch.autograd.grad(loss, theta)
        with torch.no_grad():
            theta -= lr * g
    return time.perf_counter() - t0


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--torch-steps", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of sweep vs loop (best of each)")
    ap.add_argument("--head-to-head-only", action="store_true",
                    help="time only the default sweep against the loop (no other strategies, no PyTorch)")
    args = ap.parse_args(argv)
    x, y = sj.datasets.sparse_coding(N, D, LAM, seed=0)
    problem = sj.problems.SparseCodingReLU(x, y)
    inits = problem.init(jax.random.key(0), 1)
    lrs = np.geomspace(0.1, 10.0, N_LR) * sj.theory.threshold_neuron_lr(D)
    record = sj.Record(every=EVERY, sharpness=sj.DenseEigh())
    out = {"workload": f"Ahn ReLU net d={D} n={N}, {N_LR} step sizes x {args.steps} steps, sharpness every {EVERY}",
           "machine": machine()}  # fmt: skip
    strategies = (("auto", "auto"), ("vmap_all", None), ("map_sequential", 1), ("vmap_batches_of_8", 8))
    time_strategies(problem, lrs, inits, args.steps, record, strategies[: 1 if args.head_to_head_only else 4], out, args.rounds)
    if args.head_to_head_only:
        print(json.dumps(out, indent=2))
        return out
    try:
        out["torch_loop_run_steps_per_s"] = args.torch_steps / torch_loop(x, y, float(lrs[0]), args.torch_steps)
    except ImportError:
        out["torch_loop_run_steps_per_s"] = None
    best = out["sweep_auto_run_steps_per_s"]  # the default call, timed head to head with the loop
    if out["torch_loop_run_steps_per_s"]:
        out["sweep_vs_torch"] = best / out["torch_loop_run_steps_per_s"]
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()

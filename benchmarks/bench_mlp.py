"""Benchmark (c): a two-layer tanh MLP on 1,000 real digits, 16 step sizes, sharpness every 10 steps.

Full-batch GD on ½‖W₂ tanh(W₁x) − onehot(y)‖² averaged over n = 1,000 scikit-learn digits (64 pixels,
standardized), hidden width 256 (18,944 parameters), 16 step sizes, 1,000 steps, top Hessian eigenvalue
every 10 steps (20 Hessian-vector products: Lanczos(order=20) in JAX, 20 power iterations in PyTorch).
Compares in one process: the sweep under each execution strategy (vmap of all 16 runs; lax.map over
runs in sequence; vmapped batches of 4), a Python loop of jitted single runs, and a PyTorch per-run loop
(autograd double-backward HVPs, the public edge-of-stability code's style; 1 thread, its fastest setting
on small tensors). Reports run-steps/s, compile time, achieved GFLOP/s against a matmul peak measured here.

    python benchmarks/bench_mlp.py [--steps 1000] [--torch-steps 50] [--rounds 3] [--head-to-head-only]
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
from _common import head_to_head, machine, matmul_peak_gflops, peak_rss_mb, sweep_call, time_strategies

import sweepjax as sj

N, HIDDEN, CLASSES, N_LR, EVERY, ORDER = 1000, 256, 10, 16, 10, 20


def digits():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = x[:N].astype(np.float32)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    return x, np.eye(CLASSES, dtype=np.float32)[y[:N]]


class DigitsMLP(sj.problems.AbstractProblem):
    """½ mean ‖W₂ tanh(W₁x) − y‖² on fixed data (a user-defined problem: data are traced fields)."""

    x: jax.Array
    y: jax.Array

    def loss(self, params):
        h = jnp.tanh(self.x @ params["w1"])
        return 0.5 * jnp.mean(jnp.sum((h @ params["w2"] - self.y) ** 2, axis=-1))


def inits(d: int, key=jax.random.key(0)):
    k1, k2 = jax.random.split(key)
    return {
        "w1": jax.random.normal(k1, (1, d, HIDDEN)) / np.sqrt(d),
        "w2": jax.random.normal(k2, (1, HIDDEN, CLASSES)) / np.sqrt(HIDDEN),
    }


def flops_per_run(steps: int, n_params: int) -> float:
    """6·n·P per GD step (forward 2nP + backward 4nP), an HVP counted as two gradients (12·n·P)."""
    records = steps // EVERY + 1
    return 6 * N * n_params * steps + 12 * N * n_params * ORDER * records


def sharpness_cost(problem, lrs, theta, steps: int, rounds: int, out: dict) -> None:
    """What tracking the sharpness every EVERY steps costs over GD alone, head to head: with Lanczos of
    order ORDER (the benchmark's setting) and with a warm-started Lanczos of order 3 (each estimate
    starts from the previous top eigenvector), and how far the cheap estimate is from the full one."""
    cheap = 3
    records = {
        "gd": sj.Record(every=EVERY, sharpness=None, observables=False),
        "full": sj.Record(every=EVERY, sharpness=sj.Lanczos(order=ORDER), observables=False),
        "cheap": sj.Record(every=EVERY, sharpness=sj.Lanczos(order=cheap), observables=False),
    }
    best = head_to_head({k: sweep_call(problem, lrs, theta, steps, r, "auto") for k, r in records.items()}, rounds)
    out[f"sharpness_cost_lanczos{ORDER}"] = best["full"] / best["gd"]
    out[f"sharpness_cost_lanczos{cheap}"] = best["cheap"] / best["gd"]
    full, fast = (sj.sweep(problem, lrs, theta, num_steps=steps, record=records[k]) for k in ("full", "cheap"))
    rel = np.abs(fast.records["sharpness"] - full.records["sharpness"]) / np.abs(full.records["sharpness"])
    late = rel[..., rel.shape[-1] // 2 :]  # once the warm start has had a few records to settle
    out[f"lanczos{cheap}_rel_err_vs_lanczos{ORDER}"] = {
        "median": float(np.nanmedian(rel)), "max_second_half": float(np.nanmax(late)), "max": float(np.nanmax(rel)),
    }  # fmt: skip


def torch_loop(x, y, lr, steps):
    import torch

    torch.set_num_threads(1)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    g = torch.Generator().manual_seed(0)
    w1 = (torch.randn(x.shape[1], HIDDEN, generator=g) / np.sqrt(x.shape[1])).requires_grad_()
    w2 = (torch.randn(HIDDEN, CLASSES, generator=g) / np.sqrt(HIDDEN)).requires_grad_()
    params = [w1, w2]

    def loss_fn():
        return 0.5 * ((torch.tanh(xt @ w1) @ w2 - yt) ** 2).sum(-1).mean()

    t0 = time.perf_counter()
    for t in range(steps):
        if t % EVERY == 0:  # 20 power iterations with double-backward HVPs
            grads = torch.autograd.grad(loss_fn(), params, create_graph=True)
            v = [torch.randn_like(p) for p in params]
            for _ in range(ORDER):
                norm = torch.sqrt(sum((u * u).sum() for u in v))
                v = [u / norm for u in v]
                hv = torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=True)
                v = [h.detach() for h in hv]
        loss = loss_fn()
        gw = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, gp in zip(params, gw):
                p -= lr * gp
    return time.perf_counter() - t0


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--torch-steps", type=int, default=50, help="steps timed for one PyTorch run (per-step cost)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of sweep vs loop (best of each)")
    ap.add_argument("--head-to-head-only", action="store_true",
                    help="time only the default sweep against the loop (no other strategies, sharpness cost, PyTorch)")
    args = ap.parse_args(argv)
    x, y = digits()
    problem = DigitsMLP(jnp.asarray(x), jnp.asarray(y))
    theta = inits(x.shape[1])
    n_params = sum(a[0].size for a in jax.tree.leaves(theta))
    lrs = np.geomspace(0.05, 2.0, N_LR)
    record = sj.Record(every=EVERY, sharpness=sj.Lanczos(order=ORDER), observables=False)
    out = {"workload": f"tanh MLP {n_params} params, n={N} digits, {N_LR} step sizes x {args.steps} steps, "
           f"sharpness every {EVERY} steps ({ORDER} HVPs)", "machine": machine()}  # fmt: skip

    strategies = (("auto", "auto"), ("vmap_all", None), ("map_sequential", 1), ("vmap_batches_of_4", 4))
    time_strategies(problem, lrs, theta, args.steps, record, strategies[: 1 if args.head_to_head_only else 4], out, args.rounds)
    if args.head_to_head_only:
        print(json.dumps(out, indent=2))
        return out
    for k in [k for k in out if k.endswith("_run_steps_per_s") and k.startswith("sweep_")]:
        out[k.replace("_run_steps_per_s", "_gflops")] = out[k] * flops_per_run(args.steps, n_params) / args.steps / 1e9

    sharpness_cost(problem, lrs, theta, args.steps, args.rounds, out)
    try:
        t_torch = torch_loop(x, y, float(lrs[0]), args.torch_steps)
        out["torch_loop_run_steps_per_s"] = args.torch_steps / t_torch
    except ImportError:
        out["torch_loop_run_steps_per_s"] = None

    out["matmul_peak_gflops"] = matmul_peak_gflops()
    best = out["sweep_auto_run_steps_per_s"]  # the default call, timed head to head with the loop
    if out["torch_loop_run_steps_per_s"]:
        out["sweep_vs_torch"] = best / out["torch_loop_run_steps_per_s"]
    gflops = best * flops_per_run(args.steps, n_params) / args.steps / 1e9
    out["sweep_fraction_of_matmul_peak"] = gflops / out["matmul_peak_gflops"]
    out["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()

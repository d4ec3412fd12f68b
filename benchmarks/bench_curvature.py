"""Benchmark: per-run curvature measurements on benchmark (c)'s MLP: their cost over GD alone, their accuracy.

Workload: `bench_mlp.py`'s tanh MLP (18,944 parameters, 1,000 scikit-learn digits), 16 step sizes from
stable to the edge of stability (λ₁η/2 → 1; none diverges), full-batch GD, a record every 10 steps.

1. Cost, head to head with GD alone (`Record(every=10, sharpness=None, observables=False)`, the same
   step sizes, inits and steps; interleaved rounds, best of each): `TopEigenvalues(k=5)` every 10 steps
   (iters 3, the default; iters 4; `batch="vmap"`), `SpectralDensity(order, probes=1)` every 100 steps,
   and for reference `sharpness=Lanczos(order=20)` every 10 (`bench_mlp.py`'s setting),
   `HessianTrace(probes=10)` every 100 and `GradNorm()` every 10.
2. Accuracy of the warm-started top-5 (float32 HVPs at the float32 iterates):
   (i) on the 19k MLP, against a converged float64 reference at the same records of the same sweep (one
   sweep with `sharpness_dtype=float64`: the top-5 under test runs inside it on the point cast back to
   float32, exactly as in a float32 sweep; the reference is a 10-wide block Krylov (`TopK(k=10,
   iters=4, restarts=3)`, 130 HVPs; its residuals are reported) warm-started from its previous record, every `--ref-every` steps);
   relative error per eigenvalue over the records past the first `--skip` steps, split by regime: a run
   is "at the edge" if its reference λ₁ reaches 0.95·2/η there, else "stable";
   (ii) on the same architecture with hidden width 24 (1,776 parameters), against dense `jax.hessian` +
   `eigh` in float64 at each run's final parameters (the last record is taken there), plus the largest
   SLQ node against the dense λ_max.

    python benchmarks/bench_curvature.py [--steps 1000] [--rounds 3] [--out FILE] [--tiny]

`--tiny` runs everything at toy sizes (a 16-wide net on 200 digits, 2 step sizes, 20 steps, 1 round) in
seconds, for tests/test_benchmarks.py. Speed is only ever a ratio against GD alone in this process.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from _common import head_to_head, machine, sweep_call
from bench_mlp import EVERY, HIDDEN, ORDER, DigitsMLP, digits, inits
from jax.flatten_util import ravel_pytree

import sweepjax as sj
from sweepjax.measures import AbstractMeasure, TopEigenvalues, TopK

K = 5  # top-k under test
DENSITY_EVERY, TRACE_EVERY = 100, 100
DENSITY_ORDERS = (20, 30)  # 1 probe each; the first is the recommended setting
EDGE = 0.95  # a run is "at the edge of stability" once its λ₁ reaches EDGE · 2/η
SMALL_HIDDEN = 24
SMALL_LR_MAX = 0.65  # the width-24 net: λ₁ ≈ 7.7 at init; η ≥ ~0.37 reach the edge, η ≈ 0.82 diverges


def step_sizes(n: int, hi: float = 0.22) -> np.ndarray:
    """From λ₁η/2 ≈ 0.15 at the end (stable) to the edge of stability: λ₁ of this net starts near 16 and
    sharpens, η ≥ ~0.1 reach 2/η within a few hundred steps and stay there; η ≥ 0.28 diverges."""
    return np.geomspace(hi / 11, hi, n)


def width_inits(d: int, hidden: int, key=jax.random.key(0)):
    """``bench_mlp.inits`` for another hidden width (one init)."""
    k1, k2 = jax.random.split(key)
    return {
        "w1": jax.random.normal(k1, (1, d, hidden)) / np.sqrt(d),
        "w2": jax.random.normal(k2, (1, hidden, 10)) / np.sqrt(hidden),
    }


# ----------------------------------------------------------------------------- measurement wrappers


def _cast(tree, dtype):
    def cast(a):
        if isinstance(a, (jax.Array, np.ndarray)) and jnp.issubdtype(a.dtype, jnp.floating):
            return a.astype(dtype)
        return a

    return jax.tree.map(cast, tree)


class Float32As(AbstractMeasure):
    """``inner`` on the point cast to float32 (exact: the iterates and data are float32), its records
    renamed ``prefix + name``: so the float32 measurement under test and a float64 reference run at the
    same records of one sweep (``Record(sharpness_dtype=float64)``)."""

    inner: AbstractMeasure = eqx.field(static=True)
    prefix: str = eqx.field(static=True)

    def shapes(self, num_params):
        return {self.prefix + k: v for k, v in self.inner.shapes(num_params).items()}

    def init(self, num_params, dtype):
        return self.inner.init(num_params, jnp.float32)

    def __call__(self, point, carry):
        values, new = self.inner(_cast(point, jnp.float32), carry)
        for name, v in values.items():  # the measurement under test must not be promoted to float64
            if v.dtype != jnp.float32:
                raise TypeError(f"{self.prefix}{name} computed in {v.dtype}, expected float32")
        return {self.prefix + k: v for k, v in values.items()}, new

    @property
    def matvecs(self):
        return self.inner.matvecs


class Reference(AbstractMeasure):
    """``ref_eigenvalues``/``ref_eigenvalue_residuals``: the top ``k`` of a ``width``-wide warm-started
    block Krylov with restarts (``TopK(width, iters, restarts)``), in the sweep's measuring dtype. The
    extra block columns make the k-th eigenvalue converge at the rate of the gap to the (width+1)-th."""

    k: int = eqx.field(static=True, default=K)
    width: int = eqx.field(static=True, default=2 * K)
    iters: int = eqx.field(static=True, default=4)
    restarts: int = eqx.field(static=True, default=3)

    def shapes(self, num_params):
        return {"ref_eigenvalues": (self.k,), "ref_eigenvalue_residuals": (self.k,)}

    def init(self, num_params, dtype):
        block = np.random.default_rng(0).normal(size=(num_params, self.width))
        return jnp.asarray(np.linalg.qr(block)[0], dtype)

    def __call__(self, point, carry):
        eig = TopK(self.width, self.iters, self.restarts)(point.hessian(), carry)
        return {"ref_eigenvalues": eig.values[: self.k], "ref_eigenvalue_residuals": eig.residuals[: self.k]}, eig.vectors

    @property
    def matvecs(self):
        return TopK(self.width, self.iters, self.restarts).matvecs


# ----------------------------------------------------------------------------- 1. cost


def cost_records(tiny: bool) -> dict[str, tuple[sj.Record, str]]:
    """name -> (Record, what it measures); "gd" is the baseline."""
    m = sj.measures
    base = dict(every=EVERY, sharpness=None, observables=False)
    density_every = EVERY if tiny else DENSITY_EVERY
    trace_every = EVERY if tiny else TRACE_EVERY
    out = {
        "gd": (sj.Record(**base), "GD alone"),
        "top5_iters3": (sj.Record(**base, measures=[m.TopEigenvalues(k=K)]), f"TopEigenvalues(k={K}) every {EVERY}"),
        "top5_iters4": (sj.Record(**base, measures=[m.TopEigenvalues(k=K, iters=4)]),
                        f"TopEigenvalues(k={K}, iters=4) every {EVERY}"),
        "top5_iters3_vmap": (sj.Record(**base, measures=[m.TopEigenvalues(k=K, batch="vmap")]),
                             f'TopEigenvalues(k={K}, batch="vmap") every {EVERY}'),
    }  # fmt: skip
    for order in DENSITY_ORDERS:
        out[f"density_order{order}"] = (
            sj.Record(**base, measures=[m.SpectralDensity(order=order, probes=1, every=density_every)]),
            f"SpectralDensity(order={order}, probes=1) every {density_every}",
        )
    out |= {
        f"lanczos{ORDER}": (sj.Record(every=EVERY, sharpness=sj.Lanczos(order=ORDER), observables=False),
                            f"sharpness=Lanczos(order={ORDER}) every {EVERY}"),
        "trace": (sj.Record(**base, measures=[m.HessianTrace(probes=10, every=trace_every)]),
                  f"HessianTrace(probes=10) every {trace_every}"),
        "grad_norm": (sj.Record(**base, measures=[m.GradNorm()]), f"GradNorm() every {EVERY}"),
    }  # fmt: skip
    return out


def cost(problem, lrs, theta, steps: int, rounds: int, tiny: bool) -> dict:
    records = cost_records(tiny)
    calls = {name: sweep_call(problem, lrs, theta, steps, rec, "auto") for name, (rec, _) in records.items()}
    best = head_to_head(calls, rounds)
    n = sum(a[0].size for a in jax.tree.leaves(theta))
    out = {}
    for name, (rec, what) in records.items():
        hvps = sum(mm.matvecs * (steps // (mm.every or rec.every) + 1) for mm in rec.measurements(n))
        out[name] = {"what": what, "best_s": best[name], "vs_gd": best[name] / best["gd"], "hvps_per_run": hvps}
    return out


# ----------------------------------------------------------------------------- 2. accuracy


def _stats(rel: np.ndarray) -> dict:
    rel = rel[np.isfinite(rel)]
    if rel.size == 0:
        return {"n": 0}
    return {
        "n": int(rel.size), "median": float(np.median(rel)), "p90": float(np.quantile(rel, 0.9)), "max": float(rel.max()),
        "over_1pct": float(np.mean(rel > 0.01)),  # the fraction of estimates more than 1% off
    }  # fmt: skip


def accuracy_19k(problem, lrs, theta, steps: int, ref_every: int, skip: int) -> dict:
    """(i): the float32 top-5 (iters 3 and 4) against the float64 reference at the same records."""
    variants = {"iters3": TopEigenvalues(k=K), "iters4": TopEigenvalues(k=K, iters=4)}
    record = sj.Record(
        every=EVERY, sharpness=None, observables=False, sharpness_dtype=jnp.float64,
        measures=[*(Float32As(m, f"{name}_") for name, m in variants.items()), Reference(every=ref_every)],
    )  # fmt: skip
    t0 = time.perf_counter()
    res = sj.sweep(problem, lrs, theta, num_steps=steps, record=record)
    wall = time.perf_counter() - t0
    rec = res.records
    ref = np.asarray(rec["ref_eigenvalues"], np.float64)  # (lr, init, record, k)
    t = np.arange(ref.shape[2]) * EVERY
    cols = (t % ref_every == 0) & (t >= skip)
    ref = ref[:, :, cols]
    lam1_edge = ref[..., 0] * np.asarray(lrs)[:, None, None] / 2
    at_edge = np.nanmax(lam1_edge, axis=2) >= EDGE  # (lr, init)
    alive = np.all(np.isfinite(ref), axis=(2, 3))
    out = {
        "params": sum(a[0].size for a in jax.tree.leaves(theta)),
        "wall_s": wall,
        "reference": f"float64 TopK(k={2 * K}, iters=4, restarts=3) warm-started, top {K}, every {ref_every} steps",
        "records_compared": t[cols].tolist(),
        "runs": {"stable": int(np.sum(~at_edge & alive)), "edge": int(np.sum(at_edge & alive)),
                 "diverged": int(np.sum(~alive))},
        "edge_runs_lrs": [float(lr) for lr, e in zip(lrs, at_edge[:, 0]) if e],
        "reference_max_residual_over_lambda": float(
            np.nanmax(np.asarray(rec["ref_eigenvalue_residuals"])[:, :, cols] / np.abs(ref))),
    }  # fmt: skip
    for name in variants:
        est = np.asarray(rec[f"{name}_eigenvalues"], np.float64)[:, :, cols]
        rel = np.abs(est - ref) / np.abs(ref)
        out[name] = {
            regime: {"all_k": _stats(rel[mask]), "lambda1": _stats(rel[mask][..., 0]),
                     "max_per_eig": np.nanmax(rel[mask], axis=(0, 1)).tolist() if mask.any() else []}
            for regime, mask in (("stable", ~at_edge & alive), ("edge", at_edge & alive), ("all", alive))
        }  # fmt: skip
        worst = np.unravel_index(np.nanargmax(rel), rel.shape)
        out[name]["worst"] = {"lr": float(lrs[worst[0]]), "step": int(t[cols][worst[2]]), "eig": int(worst[3]) + 1,
                              "rel_err": float(rel[worst])}  # fmt: skip
    return out


def accuracy_dense(x, y, lrs, steps: int, hidden: int, density_order: int) -> dict:
    """(ii): the float32 top-5 at each run's last record against dense eigh of the float64 Hessian there."""
    problem = DigitsMLP(jnp.asarray(x), jnp.asarray(y))
    theta = width_inits(x.shape[1], hidden)
    measures = [Float32As(TopEigenvalues(k=K), "iters3_"), Float32As(TopEigenvalues(k=K, iters=4), "iters4_"),
                Float32As(sj.measures.SpectralDensity(order=density_order, probes=1), "")]  # fmt: skip
    record = sj.Record(every=EVERY, sharpness=None, observables=False, measures=measures)
    res = sj.sweep(problem, lrs, theta, num_steps=steps, record=record)
    rec = res.records
    n = sum(a[0].size for a in jax.tree.leaves(theta))
    with jax.enable_x64(True):
        p64 = DigitsMLP(jnp.asarray(x, jnp.float64), jnp.asarray(y, jnp.float64))
        flat0, unravel = ravel_pytree(jax.tree.map(lambda a: jnp.asarray(a[0], jnp.float64), theta))
        hess = jax.jit(jax.hessian(lambda v: p64.loss(unravel(v))))
        dense, lam_max_lr = [], []
        for i in range(len(lrs)):
            final = jax.tree.map(lambda a, i=i: jnp.asarray(a[i, 0], jnp.float64), res.final_params)
            flat = ravel_pytree(final)[0]
            if not bool(jnp.all(jnp.isfinite(flat))):
                dense.append(np.full(n, np.nan))
                continue
            h = np.asarray(hess(flat))
            dense.append(np.linalg.eigvalsh(0.5 * (h + h.T))[::-1])
        dense = np.stack(dense)  # (lr, n) descending
    lam_max_lr = dense[:, 0] * np.asarray(lrs) / 2
    at_edge = lam_max_lr >= EDGE
    alive = np.isfinite(dense[:, 0])
    out = {"params": int(n), "hidden": hidden, "runs": {"stable": int(np.sum(~at_edge & alive)),
           "edge": int(np.sum(at_edge & alive)), "diverged": int(np.sum(~alive))},
           "final_lambda1_eta_over_2": lam_max_lr.tolist()}  # fmt: skip
    for name in ("iters3", "iters4"):
        est = np.asarray(rec[f"{name}_eigenvalues"][:, 0, -1], np.float64)  # the last record: θ_T
        rel = np.abs(est - dense[:, :K]) / np.abs(dense[:, :K])
        out[name] = {regime: {"all_k": _stats(rel[mask]), "lambda1": _stats(rel[mask][:, 0])}
                     for regime, mask in (("stable", ~at_edge & alive), ("edge", at_edge & alive), ("all", alive))}  # fmt: skip
    top_node = np.nanmax(np.asarray(rec["density_nodes"][:, 0, -1], np.float64), axis=-1)
    out[f"slq_order{density_order}_max_node_rel_err_vs_lambda_max"] = _stats(np.abs(top_node - dense[:, 0]) / np.abs(dense[:, 0]))
    return out


# ----------------------------------------------------------------------------- report


def _within(label: str, stats: dict) -> tuple[str, str, str]:
    value = f"median {stats['median']:.1e}, p90 {stats['p90']:.1e}, max {stats['max']:.1e}"
    return label, "met" if stats["max"] <= 0.01 else "MISSED", value


def verdicts(out: dict) -> list[tuple[str, str, str]]:
    """(target, met/MISSED, value): ≤ 3x GD alone for the top-5, ≤ 1.5x for the density, and within 1%
    (judged on the largest relative error over every compared eigenvalue and record) per regime."""
    c, a, d = out["cost"], out["accuracy_19k"], out["accuracy_dense"]
    rows = []
    for name, limit in [(n, 3.0) for n in ("top5_iters3", "top5_iters4", "top5_iters3_vmap")] + [
        (f"density_order{order}", 1.5) for order in DENSITY_ORDERS
    ]:
        r = c[name]["vs_gd"]
        rows.append((f"{c[name]['what']} ≤ {limit:g}x GD alone", "met" if r <= limit else "MISSED", f"{r:.2f}x"))
    for name in ("iters3", "iters4"):
        for acc, against in ((a, "the float64 reference"), (d, "dense eigh")):
            for regime in ("stable", "edge"):
                if acc[name][regime]["all_k"]["n"]:
                    label = f"{acc['params']}-param top-5 {name} within 1% of {against} ({regime}, {acc['runs'][regime]} runs)"
                    rows.append(_within(label, acc[name][regime]["all_k"]))
    return rows


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1000, help="GD steps per run (a multiple of 10)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds (best of each)")
    ap.add_argument("--ref-every", type=int, default=50, help="steps between float64 reference records (19k MLP)")
    ap.add_argument("--skip", type=int, default=100, help="compare records from this step on (warm start settled)")
    ap.add_argument("--only", choices=("cost", "accuracy"), default=None)
    ap.add_argument("--tiny", action="store_true", help="toy sizes, seconds: a smoke test of every code path")
    ap.add_argument("--out", type=Path, default=None, help="write the JSON here")
    args = ap.parse_args(argv)
    x, y = digits()
    n_lr, hidden, small = 16, HIDDEN, SMALL_HIDDEN
    steps, rounds, ref_every, skip = args.steps, args.rounds, args.ref_every, args.skip
    if args.tiny:
        x, y = x[:200], y[:200]
        n_lr, hidden, small, steps, rounds, ref_every, skip = 2, 16, 8, 20, 1, 10, 10
    if steps % EVERY or ref_every % EVERY:
        ap.error(f"--steps and --ref-every must be multiples of {EVERY}")
    problem = DigitsMLP(jnp.asarray(x), jnp.asarray(y))
    theta = inits(x.shape[1]) if hidden == HIDDEN else width_inits(x.shape[1], hidden)
    n_params = sum(a[0].size for a in jax.tree.leaves(theta))
    lrs = step_sizes(n_lr)
    out = {
        "workload": f"tanh MLP {n_params} params, n={len(x)} digits, {n_lr} step sizes x {steps} steps, record every {EVERY}",
        "machine": machine(), "mode": "tiny" if args.tiny else "full", "steps": steps, "rounds": rounds,
        "lrs": lrs.tolist(),
    }  # fmt: skip
    t0 = time.perf_counter()

    def done(part: str) -> None:  # the JSON so far, after each part (a long run keeps what it measured)
        print(f"[{time.perf_counter() - t0:.0f} s] {part} done", file=sys.stderr)
        if args.out:
            args.out.write_text(json.dumps(out, indent=1))

    if args.only in (None, "cost"):
        out["cost"] = cost(problem, lrs, theta, steps, rounds, args.tiny)
        done("cost")
    if args.only in (None, "accuracy"):
        out["accuracy_19k"] = accuracy_19k(problem, lrs, theta, steps, ref_every, skip)
        done(f"{n_params}-param accuracy")
        out["accuracy_dense"] = accuracy_dense(x, y, step_sizes(n_lr, SMALL_LR_MAX), steps, small, DENSITY_ORDERS[0])
        done("dense accuracy")
    if args.only is None:
        out["targets"] = [{"target": t, "verdict": v, "value": val} for t, v, val in verdicts(out)]
        done("targets")
    print(f"{out['workload']}; {out['machine']}")
    if "cost" in out:
        print("\n| measurement | HVPs per run | best s | vs GD alone |\n|---|---|---|---|")
        for r in out["cost"].values():
            print(f"| {r['what']} | {r['hvps_per_run']} | {r['best_s']:.2f} | {r['vs_gd']:.2f}x |")
    if "targets" in out:
        print("\n| target | verdict | value |\n|---|---|---|")
        for r in out["targets"]:
            print(f"| {r['target']} | {r['verdict']} | {r['value']} |")
    return out


if __name__ == "__main__":
    main()

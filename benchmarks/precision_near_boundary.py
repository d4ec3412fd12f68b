"""float32 vs float64 near a stability boundary: which runs change their verdict?

1. A rotated quadratic ½θᵀAθ (λ = 4, 1, 0.25) at η = (2/λ_max)(1 + δ), δ = ±1e-7 … ±1e-2:
   the verdict "diverged within T steps" in float32, float32 + float64 sharpness, and float64.
2. A tanh MLP (10 → 32 → 1, 64 samples) at edge-of-stability step sizes: the float32 sharpness
   (Lanczos on float32 HVPs) against the float64 sharpness at the *same* float32 iterates
   (``Record(sharpness_dtype=jnp.float64)``), and the verdict "λ_max > 2/η" per record.

Run: ``.venv/bin/python benchmarks/precision_near_boundary.py``.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

import sweepjax as sj
from sweepjax.problems import AbstractProblem, Objective


class Quadratic(AbstractProblem):
    a: jax.Array

    def loss(self, params):
        return 0.5 * params @ self.a @ params


def quadratic(num_steps: int = 200_000) -> None:
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))
    a = q @ np.diag([4.0, 1.0, 0.25]) @ q.T
    lam = float(np.linalg.eigvalsh(a)[-1])
    deltas = np.array([-1e-2, -1e-3, -1e-4, -1e-5, -1e-6, -1e-7, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2])
    lrs = 2 / lam * (1 + deltas)
    print(f"quadratic, λ_max = {lam:.15g}, T = {num_steps}; δ = {deltas.tolist()}")
    variants = {
        "float32": dict(record=sj.Record(every=num_steps)),
        "float32 + float64 sharpness": dict(record=sj.Record(every=num_steps, sharpness_dtype=jnp.float64)),
        "float64": dict(record=sj.Record(every=num_steps), dtype=jnp.float64),
    }
    for name, kw in variants.items():
        with jax.enable_x64(True):  # A itself in float64 (the sweep casts it to the training dtype)
            problem = Quadratic(jnp.asarray(a, jnp.float64))
        t0 = time.perf_counter()
        res = sj.sweep(problem, lrs, np.ones((1, 3)), num_steps=num_steps, **kw)
        s0 = float(res.records["sharpness"][0, 0, 0])
        print(
            f"  {name:28s} diverged {res.diverged[:, 0].astype(int)}  sharpness rel. error {s0 / lam - 1:+.1e}  "
            f"divergence steps {res.diverged_step[-3:, 0]}  ({time.perf_counter() - t0:.1f} s)"
        )
    print(f"  float32(η)·λ/2 − 1 = {np.array2string(np.float32(lrs) * lam / 2 - 1, precision=1)}")


def mlp(num_steps: int = 400) -> None:
    xs = jax.random.normal(jax.random.key(0), (64, 10))
    ys = jnp.sin(xs[:, 0])

    def loss(params):
        return 0.5 * jnp.mean((jnp.tanh(xs @ params["w1"]) @ params["w2"] - ys) ** 2)

    prob = Objective(loss, params_like={"w1": jnp.zeros((10, 32)), "w2": jnp.zeros(32)})
    inits = {"w1": jax.random.normal(jax.random.key(1), (2, 10, 32)),
             "w2": jax.random.normal(jax.random.key(2), (2, 32)) / 3}  # fmt: skip
    lrs = np.geomspace(0.5, 4.0, 6)
    out = {}
    for name, sd in (("float32", None), ("float64 sharpness", jnp.float64)):
        rec = sj.Record(every=10, sharpness=sj.Lanczos(order=20), sharpness_dtype=sd)
        out[name] = sj.sweep(prob, lrs, inits, num_steps=num_steps, record=rec)
    a, b = out["float32"], out["float64 sharpness"]
    same = np.array_equal(a.records["loss"], b.records["loss"], equal_nan=True)
    s32, s64 = a.records["sharpness"], b.records["sharpness"]
    ok = np.isfinite(s32) & np.isfinite(s64)
    rel = np.abs(s32 - s64)[ok] / np.abs(s64)[ok]
    thr = 2 / lrs[:, None, None]
    flips = int(((s32 > thr) != (s64 > thr))[ok].sum())
    near = np.abs(s64 / thr - 1)[ok]
    print(f"MLP (352 parameters), η ∈ {np.round(lrs, 2).tolist()}, {num_steps} steps, {int(ok.sum())} records")
    print(f"  training bits identical with float64 sharpness: {same}")
    print(f"  |λ32 − λ64|/λ64: max {rel.max():.1e}, median {np.median(rel):.1e}")
    print(f"  verdict 'λ_max > 2/η' flips: {flips}; records with |λ·η/2 − 1| < 1e-3: {int((near < 1e-3).sum())}")


if __name__ == "__main__":
    quadratic()
    mlp()

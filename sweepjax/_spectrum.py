"""Matrix-free spectrum kernels: top-k eigenpairs, Hutchinson traces and stochastic Lanczos quadrature.

Everything takes a symmetric H as ``matvec(v) = Hv`` on flat vectors (``_curvature.hessian_matvec``)
and is pure JAX with static shapes, so it runs per record inside ``lax.scan`` and under ``vmap``
over runs; every cost is a fixed number of matvecs. Blocks of vectors go through ``block_matvec``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from sweepjax._curvature import lanczos_tridiagonal

Vector = Float[Array, " n"]
Block = Float[Array, "n k"]
MatVec = Callable[[Vector], Vector]
Batch = Literal["map", "vmap"]


class Eigs(eqx.Module):
    """k eigen-estimates: values λ_i, orthonormal vectors v_i (columns) and residuals ‖Hv_i − λ_iv_i‖."""

    values: Float[Array, " k"]
    vectors: Float[Array, "n k"]
    residuals: Float[Array, " k"]


def block_matvec(matvec: MatVec, batch: Batch = "map") -> Callable[[Block], Block]:
    """V ↦ HV column by column: ``lax.map`` over columns (``"map"``) or ``jax.vmap(matvec, 1, 1)`` (``"vmap"``).

    (``"map"`` is the default: on XLA:CPU a vmapped block of 5 HVPs of the 19k-parameter MLP benchmark took
    2–3.5× as long as ``lax.map`` over its columns, alone and vmapped over 16 runs; try ``"vmap"`` on GPUs.)
    """
    if batch == "vmap":
        return jax.vmap(matvec, in_axes=1, out_axes=1)
    if batch == "map":
        return lambda block: jax.lax.map(matvec, block.T).T
    raise ValueError(f"batch must be 'map' or 'vmap', got {batch!r}")


def _hash_block(n: int, k: int, salt, dtype) -> Block:
    """Fixed pseudo-random n×k entries in [−1, 1) from an integer hash of (row, column, salt).

    (Cheaper to compile than ``jax.random.normal``; independent of the run, so drawn once under vmap.)
    """
    rows = jnp.arange(n, dtype=jnp.uint32)[:, None] * np.uint32(0x9E3779B1)
    h = rows + jnp.arange(k, dtype=jnp.uint32)[None, :] * np.uint32(0x85EBCA77)
    h = h + jnp.asarray(salt).astype(jnp.uint32) * np.uint32(0xC2B2AE3D)
    for shift, mult in ((15, 0x2C1B3C6D), (12, 0x297A2D39), (15, None)):
        h = h ^ (h >> np.uint32(shift))
        if mult is not None:
            h = h * np.uint32(mult)
    return (h >> np.uint32(8)).astype(dtype) * (2.0 / 2**24) - 1.0


def generic_block(n: int, k: int, dtype=float) -> Block:
    """A fixed n×k block with orthonormal columns, generic for structured Hessians (a cold start)."""
    return jnp.linalg.qr(_hash_block(n, k, 0, dtype))[0]


def _orthonormalize_into(
    basis: Float[Array, "n m"], block: Block, start, ref: Float[Array, " k"], fresh: Block
) -> Float[Array, "n m"]:
    """Write ``block``'s columns, orthonormalised against ``basis`` and each other, into columns start, start + 1, ….

    ``basis`` holds orthonormal or zero columns (those from ``start`` on are zero). Gram–Schmidt twice per
    column; a column with ‖remainder‖ ≤ tol·ref after the first pass (breakdown: it lies in the span) is
    swapped for the fixed generic column of ``fresh`` before the second pass, and a fresh column with
    nothing left (the span is ℝⁿ) is written as zero.
    """
    tol = 1e3 * jnp.finfo(block.dtype).eps

    def column(i, basis):
        w = block[:, i]
        w = w - basis @ (basis.T @ w)
        ok = jnp.linalg.norm(w) > tol * ref[i]
        w = jnp.where(ok, w, fresh[:, i])
        w = w - basis @ (basis.T @ w)
        norm = jnp.linalg.norm(w)
        live = ok | (norm > tol * jnp.linalg.norm(fresh[:, i]))
        q = jnp.where(live, w / jnp.where(live, norm, 1.0), 0.0)
        return jax.lax.dynamic_update_slice(basis, q[:, None], (0, start + i))

    return jax.lax.fori_loop(0, block.shape[1], column, basis)


def _rayleigh_ritz(basis: Float[Array, "n m"], images: Float[Array, "n m"], k: int):
    """Top-k Ritz pairs of H on span(basis) (orthonormal or zero columns), images = H·basis: θ, Y, HY."""
    proj = basis.T @ images
    proj = 0.5 * (proj + proj.T)
    dead = jnp.linalg.norm(basis, axis=0) == 0
    # zero columns would add spurious Ritz values 0: push them below the spectrum (‖·‖_F ≥ ‖·‖₂)
    floor = -(2.0 * jnp.linalg.norm(proj) + 1.0)
    proj = jnp.where(jnp.diag(dead), floor, proj)
    evals, evecs = jnp.linalg.eigh(proj)
    s = evecs[:, ::-1][:, :k]
    return evals[::-1][:k], basis @ s, images @ s


class TopK(eqx.Module):
    """The k largest (``which="largest"``) or most negative (``"smallest"``) eigenpairs of a symmetric H.

    Warm-started block Krylov with Rayleigh–Ritz: from V0 (the previous record's vectors) build the
    orthonormal basis of K = span[V, HV, …, H^(iters−1)V] by block Gram–Schmidt and take the top Ritz
    pairs of QᵀHQ (residuals ‖Hy − θy‖ are exact: the images HQ are kept). ``restarts`` > 0 repeats
    the cycle from the Ritz block, whose images are already known, so each restart costs iters − 1
    block matvecs. Dependent or zero columns of V0 and breakdowns (an invariant K) swap in fixed
    generic vectors; for n ≤ k·iters the dense H (n matvecs) is diagonalised instead, and for k > n
    the missing eigenpairs are NaN (values, residuals) and zero (vectors).

    (Not ``jax.experimental.sparse.linalg.lobpcg_standard``: it needs 5k < n, re-applies H to the whole
    [X, P, R] basis (4k matvecs per iteration), loops until a tolerance (a batched while under vmap)
    and returns no residuals.)
    """

    k: int = eqx.field(static=True, default=5)
    iters: int = eqx.field(static=True, default=3)
    restarts: int = eqx.field(static=True, default=0)
    which: Literal["largest", "smallest"] = eqx.field(static=True, default="largest")
    batch: Batch = eqx.field(static=True, default="map")

    def __check_init__(self):
        for name, low in (("k", 1), ("iters", 1), ("restarts", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int ≥ {low}, got {value!r}")
        if self.which not in ("largest", "smallest"):
            raise ValueError(f"which must be 'largest' or 'smallest', got {self.which!r}")
        if self.batch not in ("map", "vmap"):
            raise ValueError(f"batch must be 'map' or 'vmap', got {self.batch!r}")

    @property
    def block_matvecs(self) -> int:
        """Block matvecs (each k Hessian-vector products) per call: 1 + (restarts + 1)(iters − 1)."""
        return 1 + (self.restarts + 1) * (self.iters - 1)

    @property
    def matvecs(self) -> int:
        """Hessian-vector products per call: k·block_matvecs (at most n when n ≤ k·iters)."""
        return self.k * self.block_matvecs

    def __call__(self, matvec: MatVec, v0: Float[Array, "n k"]) -> Eigs:
        n, k_in = v0.shape
        if k_in != self.k:
            raise ValueError(f"v0 must have k = {self.k} columns, got shape {v0.shape}")
        sign = 1.0 if self.which == "largest" else -1.0
        op = block_matvec(matvec if sign > 0 else (lambda v: -matvec(v)), self.batch)
        k = min(self.k, n)
        if n <= k * self.iters:
            values, vectors, residuals = _dense_top(op, n, k, v0.dtype)
        else:
            values, vectors, residuals = self._krylov(op, v0[:, :k])
        pad = self.k - k
        if pad:
            nan = jnp.full(pad, jnp.nan, v0.dtype)
            values, residuals = jnp.concatenate([values, nan]), jnp.concatenate([residuals, nan])
            vectors = jnp.concatenate([vectors, jnp.zeros((n, pad), v0.dtype)], axis=1)
        return Eigs(sign * values, vectors, residuals)

    def _krylov(self, op: Callable[[Block], Block], v0: Block):
        """Block Krylov + Rayleigh–Ritz in one rolled loop (``op`` traced once) over a buffer of ``iters`` blocks.

        Step t applies H to block j; when the buffer is full and steps remain, it restarts from the top-k
        Ritz block (images known), then orthonormalises the last images into block j + 1.
        """
        n, k = v0.shape
        dtype, depth, steps = v0.dtype, self.iters, self.block_matvecs
        zeros = jnp.zeros((n, depth * k), dtype)
        basis = _orthonormalize_into(zeros, v0, 0, jnp.linalg.norm(v0, axis=0), _hash_block(n, k, 0, dtype))

        def restart(basis, images, j):
            _, y, hy = _rayleigh_ritz(basis, images, k)
            return zeros.at[:, :k].set(y), zeros.at[:, :k].set(hy), jnp.zeros_like(j)

        def extend(basis, images, j, t):
            last = jax.lax.dynamic_slice(images, (0, j * k), (n, k))
            scale = jnp.full(k, jnp.max(jnp.linalg.norm(images, axis=0)))
            fresh = _hash_block(n, k, t + 1, dtype)
            return _orthonormalize_into(basis, last, (j + 1) * k, scale, fresh)

        def step(t, carry):
            basis, images, j = carry
            hq = op(jax.lax.dynamic_slice(basis, (0, j * k), (n, k)))
            images = jax.lax.dynamic_update_slice(images, hq, (0, j * k))
            more = t + 1 < steps  # (depends on t only: a real cond under vmap)
            basis, images, j = jax.lax.cond(more & (j == depth - 1), restart, lambda *c: c, basis, images, j)
            basis = jax.lax.cond(more, extend, lambda b, *_: b, basis, images, j, t)
            return basis, images, j + 1

        basis, images, _ = jax.lax.fori_loop(0, steps, step, (basis, zeros, jnp.asarray(0)))
        theta, y, hy = _rayleigh_ritz(basis, images, k)
        return theta, y, jnp.linalg.norm(hy - y * theta, axis=0)


def _dense_top(op: Callable[[Block], Block], n: int, k: int, dtype):
    """Exact top-k of the dense H = op(I) (n matvecs)."""
    h = op(jnp.eye(n, dtype=dtype))
    h = 0.5 * (h + h.T)
    evals, evecs = jnp.linalg.eigh(h)
    values, vectors = evals[::-1][:k], evecs[:, ::-1][:, :k]
    return values, vectors, jnp.linalg.norm(h @ vectors - vectors * values, axis=0)


# ----------------------------------------------------------------------------- traces and densities


def rademacher(key: PRNGKeyArray, num_probes: int, n: int, dtype=float) -> Float[Array, "K n"]:
    """K probes z with i.i.d. ±1 entries (E zzᵀ = I, ‖z‖² = n)."""
    return jax.random.rademacher(key, (num_probes, n), dtype)


def hutchinson_trace(matvec: MatVec, probes: Float[Array, "K n"], batch: Batch = "map") -> Float[Array, ""]:
    """(1/K) Σ_k z_kᵀ H z_k: unbiased for tr H when E zzᵀ = I (K matvecs, batched as in ``block_matvec``)."""
    hz = block_matvec(matvec, batch)(probes.T).T
    return jnp.mean(jnp.sum(probes * hz, axis=1))


def slq(
    matvec: MatVec, probes: Float[Array, "K n"], order: int, batch: Batch = "map"
) -> tuple[Float[Array, " m"], Float[Array, " m"]]:
    """Stochastic Lanczos quadrature: nodes θ and weights w (m = K·order, Σ w = 1) of the spectral density.

    Per probe z: ``order`` Lanczos steps from z/‖z‖ (full reorthogonalisation), T = S diag(θ) Sᵀ, and
    w_j = ‖z‖² s_{1j}² / Σ_probes ‖z‖². Then n·Σ w θ^p = n·Σ_k z_kᵀH^p z_k / Σ_k ‖z_k‖² exactly (Gauss
    quadrature) for p ≤ 2·order − 1: for Rademacher probes (‖z‖² = n) Hutchinson's unbiased estimate of
    tr(H^p), and tr(H^p) itself for the n unit vectors with order ≥ n. On breakdown (order ≥ n, or an
    invariant Krylov space) the restarted rows of T are decoupled, so they get weight 0 and the
    quadrature stays exact; rows left dead once the basis spans ℝⁿ also get weight 0 (their node is
    zᵀHz/‖z‖², inside the spectrum). K·order matvecs; probes run one after another (``"map"``) or batched.
    (matfree's ``stochtrace``/``funm`` are not used: no restart on breakdown, see tests/test_spectrum.py.)
    """
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise ValueError(f"order must be a positive int, got {order!r}")

    def one(z):
        _, tri, live, _ = lanczos_tridiagonal(matvec, z, order)
        evals, evecs = jnp.linalg.eigh(tri)
        dead = jnp.sum(jnp.where(live[:, None], 0.0, evecs**2), axis=0) > 0.5
        first = jnp.where(dead, 0.0, evecs[0] ** 2)
        return jnp.where(dead, tri[0, 0], evals), first

    if batch not in ("map", "vmap"):
        raise ValueError(f"batch must be 'map' or 'vmap', got {batch!r}")
    nodes, first = jax.vmap(one)(probes) if batch == "vmap" else jax.lax.map(one, probes)
    sq = jnp.sum(probes * probes, axis=1)
    weights = first * (sq / jnp.where(jnp.sum(sq) > 0, jnp.sum(sq), 1.0))[:, None]
    return nodes.reshape(-1), weights.reshape(-1)


def _xp(*arrays):
    return jnp if any(isinstance(a, jax.Array) for a in arrays) else np


def density(
    nodes: Float[ArrayLike, "*b m"], weights: Float[ArrayLike, "*b m"], grid: Float[ArrayLike, " g"], sigma: float
) -> Float[ArrayLike, "*b g"]:
    """Gaussian-smoothed spectral density ρ(x) = Σ_j w_j N(x; θ_j, σ²) on ``grid`` (∫ρ = Σ w = 1)."""
    xp = _xp(nodes, weights, grid)
    nodes, weights, grid = xp.asarray(nodes), xp.asarray(weights), xp.asarray(grid)
    z = (grid[..., None, :] - nodes[..., :, None]) / sigma
    kernel = xp.exp(-0.5 * z * z) / (sigma * np.sqrt(2.0 * np.pi))
    return xp.sum(weights[..., :, None] * kernel, axis=-2)


def spectral_moment(nodes: Float[ArrayLike, "*b m"], weights: Float[ArrayLike, "*b m"], p: int, n: int) -> Float[ArrayLike, "*b"]:
    """n·Σ_j w_j θ_j^p, the estimate of tr(H^p) (exact for the probes' quadrature when p ≤ 2·order − 1)."""
    xp = _xp(nodes, weights)
    nodes, weights = xp.asarray(nodes), xp.asarray(weights)
    return n * xp.sum(weights * nodes**p, axis=-1)


def negative_mass(nodes: Float[ArrayLike, "*b m"], weights: Float[ArrayLike, "*b m"]) -> Float[ArrayLike, "*b"]:
    """Σ_j w_j [θ_j < 0]: the estimated fraction of negative eigenvalues."""
    xp = _xp(nodes, weights)
    nodes, weights = xp.asarray(nodes), xp.asarray(weights)
    return xp.sum(xp.where(nodes < 0, weights, 0.0), axis=-1)

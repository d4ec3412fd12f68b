"""Analytic thresholds and predictions, as pure array functions (NumPy or JAX arrays, broadcasting).

Each function works on Python numbers, NumPy arrays and JAX arrays (traced ones included): it
returns a JAX array when any argument is one, else NumPy. Lists and tuples are read as NumPy arrays.
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike

if TYPE_CHECKING:
    from ._result import SweepResult
    from ._rules import AbstractRule


def _namespace(*args):
    """(jnp or np, the arguments as arrays of that namespace)."""
    if any(isinstance(a, jax.Array) for a in args):
        return jnp, [a if isinstance(a, jax.Array) else jnp.asarray(a) for a in args]
    return np, [np.asarray(a, dtype=float) if not isinstance(a, numbers.Real) else float(a) for a in args]


def eos_limit(lr: ArrayLike) -> ArrayLike:
    """Edge-of-stability sharpness 2/η: GD on a quadratic of curvature λ diverges iff λ > 2/η."""
    _, (lr,) = _namespace(lr)
    return 2.0 / lr


def momentum_edge(lr: ArrayLike, beta: ArrayLike = 0.0, nesterov: bool = False) -> ArrayLike:
    """(2 + 2β)/η: heavy-ball momentum β (optax's ``trace``: u_t = g_t + βu_{t−1}, θ ← θ − ηu_t) on a
    quadratic of curvature λ is stable iff λ < (2 + 2β)/η; Nesterov (θ ← θ − η(g_t + βu_t)): (2 + 2β)/((1 + 2β)η).

    From the iteration matrix on (θ_t, u_{t−1}): heavy ball z² − (1 + β − ηλ)z + β, Nesterov
    z² − (1 + β)(1 − ηλ)z + β(1 − ηλ); a root leaves the unit disc through z = −1 at these λ.
    """
    _, (lr, beta) = _namespace(lr, beta)
    return (2 + 2 * beta) / ((1 + 2 * beta) * lr) if nesterov else (2 + 2 * beta) / lr


def adam_edge(lr: ArrayLike, b1: ArrayLike = 0.9, nesterov: bool = False) -> ArrayLike:
    """(2 + 2β₁)/((1 − β₁)η): the edge of Adam's preconditioned sharpness λ_max(P⁻¹H), P = diag(√v̂ + ε), with
    P frozen (38/η at β₁ = 0.9; Cohen et al. 2022). Adam's m = (1 − β₁)·trace, so it is ``momentum_edge`` at step
    (1 − β₁)η; Nadam (``nesterov``): (2 + 2β₁)/((1 + 2β₁)(1 − β₁)η)."""
    _, (lr, b1) = _namespace(lr, b1)
    return momentum_edge((1 - b1) * lr, b1, nesterov)


def stability_edge(rule: AbstractRule, lr: ArrayLike, t: int = 0) -> ArrayLike:
    """An update rule's stability edge at step t for each base step size η in ``lr`` (``rule.stability_edge``
    evaluated on the host): 2/η for ``GD()``, (2 + 2β)/η for ``Optax(optax.sgd, momentum=β)``, 38/η (on the
    preconditioned sharpness, ``rule.edge_of``) for ``Optax(optax.adam)``, 2/η_t under a schedule.

    Returns NumPy values shaped like ``lr`` (a float for a number); a ValueError if the rule's edge is unknown.
    """
    from ._rules import AbstractRule

    if not isinstance(rule, AbstractRule):
        raise TypeError(f"rule must be a sweepjax update rule (sj.GD, sj.Optax, ...), got {type(rule).__name__}")
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 0:
        raise ValueError(f"t must be a step (an int >= 0), got {t!r}")
    lrs = np.asarray(lr, dtype=float)
    step = jnp.asarray(t, jnp.int32)
    out = jax.vmap(lambda eta: rule.stability_edge(eta, step))(jnp.asarray(lrs.ravel()))
    if out is None:
        raise ValueError(
            f"{type(rule).__name__} has no known stability edge (known: GD, SGD, optax sgd/adam/adamw/nadam/rmsprop/"
            "adagrad factories); state one with sj.Optax(factory, edge=fn(eta, **kwargs), edge_of=...)"
        )
    out = np.asarray(out, dtype=float).reshape(lrs.shape)
    return float(out) if out.ndim == 0 else out


class EdgeLine:
    """η ↦ ``stability_edge(rule, η, t)``, an overlay for ``plot.phase_diagram`` / ``phase_map``, labelled with
    its formula (``"38/η"`` for Adam at β₁ = 0.9) and naming the record it bounds (``edge_of``)."""

    def __init__(self, rule: AbstractRule, t: int = 0):
        self.rule, self.t = rule, t
        self.edge_of = rule.edge_of
        c = stability_edge(rule, np.array([1.0, 2.0]), t) * np.array([1.0, 2.0])  # the edge is c/η when c is one number
        one = bool(np.all(np.isfinite(c)) and np.isclose(c[0], c[1], rtol=1e-6, atol=0.0))
        self.label = f"{c[0]:.3g}/η" if one else f"{type(rule).__name__}'s edge at t = {t}"

    def __call__(self, lr: ArrayLike) -> ArrayLike:
        return stability_edge(self.rule, lr, self.t)

    def __repr__(self) -> str:
        return f"EdgeLine({self.label!r} on {self.edge_of})"


def edge_line(rule: AbstractRule, t: int = 0) -> EdgeLine:
    """The rule's stability edge as a function of η at step t, labelled (an ``overlay`` for the plots):
    ``sj.plot.phase_diagram(res, overlay=theory.edge_line(sj.Optax(optax.adam)))`` draws 38/η."""
    return EdgeLine(rule, t)


def gradient_flow_sharpness(x0: ArrayLike, y0: ArrayLike) -> ArrayLike:
    """y₀² − x₀²: the sharpness where gradient flow on f(x, y) = ℓ(xy) ends (its conserved quantity)."""
    _, (x0, y0) = _namespace(x0, y0)
    return y0 * y0 - x0 * x0


def ahn_limiting_sharpness(lr: ArrayLike, x0: ArrayLike, y0: ArrayLike) -> ArrayLike:
    """min(y₀² − x₀², 2/η): GD's limiting sharpness on f(x, y) = ℓ(xy) (Ahn et al.)."""
    xp, (lr, x0, y0) = _namespace(lr, x0, y0)
    return xp.minimum(gradient_flow_sharpness(x0, y0), eos_limit(lr))


def ahn_is_eos(lr: ArrayLike, x0: ArrayLike, y0: ArrayLike) -> ArrayLike:
    """y₀² − x₀² > 2/η: the run is in Ahn et al.'s edge-of-stability regime (else gradient-flow regime)."""
    _, (lr, x0, y0) = _namespace(lr, x0, y0)
    return gradient_flow_sharpness(x0, y0) > eos_limit(lr)


def ahn_prediction(result: SweepResult) -> np.ndarray:
    """min(y₀² − x₀², 2/η) on a ProductLoss sweep's grid: shape (n_lr, n_init), inits (x₀, y₀) rows."""
    inits = result.inits
    if not isinstance(inits, (np.ndarray, jax.Array)) or np.ndim(inits) != 2 or np.shape(inits)[1] != 2:
        shape = np.shape(inits) if isinstance(inits, (np.ndarray, jax.Array)) else type(inits).__name__
        raise ValueError(f"ahn_prediction needs ProductLoss inits of shape (n_init, 2), got {shape}")
    inits = np.asarray(inits, dtype=float)
    lrs = np.asarray(result.lrs, dtype=float)
    return ahn_limiting_sharpness(lrs[:, None], inits[None, :, 0], inits[None, :, 1])


def within_tolerance(measured: ArrayLike, predicted: ArrayLike, rtol: float = 0.05) -> np.ndarray:
    """|measured − predicted| ≤ rtol·|predicted|, elementwise; False where either is NaN (e.g. diverged)."""
    if not (isinstance(rtol, numbers.Real) and rtol >= 0):
        raise ValueError(f"rtol must be a non-negative number, got {rtol!r}")
    measured, predicted = np.asarray(measured, dtype=float), np.asarray(predicted, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.abs(measured - predicted) <= rtol * np.abs(predicted)


# ----------------------------------------------------------------------------- Ahn et al.: threshold neurons


def threshold_neuron_lr(d: ArrayLike) -> ArrayLike:
    """8π/d²: Ahn et al.'s step size above which GD learns a threshold neuron (negative bias).

    At the minimiser (0, 0) that gradient flow reaches, the mean model's sharpness is d²/(4π); GD
    leaves it (edge of stability) iff that exceeds 2/η, i.e. η > 8π/d² (6.28e-4 at d = 200).
    """
    _, (d,) = _namespace(d)
    return 8.0 * np.pi / (d * d)


def _norm_cdf(xp, x):
    erf = jax.scipy.special.erf if xp is jnp else np.vectorize(math.erf, otypes=[float])
    return 0.5 * (1.0 + erf(x / math.sqrt(2.0)))


def _smoothed_relu(xp, b):
    """g(b) = φ(b) + bΦ(b)."""
    return xp.exp(-0.5 * b * b) / math.sqrt(2.0 * math.pi) + b * _norm_cdf(xp, b)


def ahn_bias_bound(lr: ArrayLike, d: ArrayLike) -> ArrayLike:
    """g⁻¹(2/√(η d²)): Ahn et al.'s Theorem 4 upper bound on the mean model's limiting bias b∞.

    g(b) = φ(b) + bΦ(b) is increasing (g' = Φ > 0) from 0 at −∞, so g⁻¹ is found by 200 steps of
    bisection on [−30, max(target, 1) + 1] (float64 in NumPy; exact to ~1e-12). At η = 10π/d² it is
    g⁻¹(2/√(10π)) = −0.08727. The bound is informative for η > 8π/d² (it is negative there);
    below the threshold it is positive and b∞ ≈ −O(1/d²) instead (Theorem 3).
    """
    xp, (lr, d) = _namespace(lr, d)
    target = 2.0 / xp.sqrt(lr * d * d)
    lo = xp.full_like(target, -30.0) if xp is jnp else np.full(np.shape(target), -30.0)
    hi = xp.maximum(target, 1.0) + 1.0

    def bisect(_, bracket):
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        below = _smoothed_relu(xp, mid) < target
        return xp.where(below, mid, lo), xp.where(below, hi, mid)

    if xp is jnp:
        lo, hi = jax.lax.fori_loop(0, 200, bisect, (lo, hi))
    else:
        for i in range(200):
            lo, hi = bisect(i, (lo, hi))
    out = 0.5 * (lo + hi)
    return out if xp is jnp or np.ndim(out) else float(out)


# ----------------------------------------------------------------------------- Huang et al.: catapults


def _check_huang_loss(loss) -> str:
    if loss not in ("exp", "logistic"):
        raise ValueError(f"loss must be 'exp' or 'logistic', got {loss!r}")
    return loss


def huang_linear_critical_lr(w0: ArrayLike, loss: str = "exp") -> ArrayLike:
    """Huang et al. Theorem 1: the critical η for f = wx on the degenerate data {(1, +1), (1, −1)}.

    exp (R = cosh w, w ← w − η sinh w): η_c = 2w₀/sinh w₀; below it GD converges to w = 0, at it
    w oscillates ±w₀, above it |w| and the loss explode. logistic (R = log(2cosh(w/2)),
    w ← w − (η/2)tanh(w/2)): η_c = 4w₀/tanh(w₀/2) > 8; below it the loss decreases (to the minimum
    for η < 8, to a 2-cycle ±w* for 8 < η < η_c), above it the loss increases and saturates.
    w₀ = 0 gives the limits 2 and 8.
    """
    loss = _check_huang_loss(loss)
    xp, (w0,) = _namespace(w0)
    w = xp.abs(w0)
    safe = xp.where(w > 0, w, 1.0)
    if loss == "exp":
        out = xp.where(w > 0, 2.0 * safe / xp.sinh(safe), 2.0)
    else:
        out = xp.where(w > 0, 4.0 * safe / xp.tanh(safe / 2.0), 8.0)
    return out if xp is jnp or np.ndim(out) else float(out)


def _huang_unit(lambda0, loss):
    loss = _check_huang_loss(loss)
    _, (lambda0,) = _namespace(lambda0)
    return 1.0 / lambda0, (1.0 if loss == "exp" else 0.25)  # 1/λ₀ and ℓ''(0)


def huang_catapult_lr(lambda0: ArrayLike, loss: str = "exp") -> ArrayLike:
    """2/λ₀ (exp), 8/λ₀ (logistic): Huang et al.'s lazy → catapult edge of the two-layer linear net.

    RECONSTRUCTED (formulas.md §2.3: the paper's formula was lost in extraction). It is
    η·λ₀·ℓ''(0) = 2, the linear stability of f = 0 under the NTK λ₀ (ℓ''(0) = 1 for exp, ¼ for
    logistic): below it |f| shrinks from the first step (lazy); above it |f| and the loss grow first,
    the NTK falls, and GD converges with a final NTK ≤ 2/η (exp), resp. ≤ 8/η (logistic) (Theorem 2,
    "under appropriate initialization"). This is the f₀ → 0 limit: by (8) the first step multiplies
    f by 1 − x + x²a + O(f₀²) (x = ηλ₀ℓ''(0), a = f₀²/(mλ₀²) ≈ 1/(4m) at random init), so |f| first
    grows at x = (1 − √(1 − 8a))/(2a) = 2 + 4a + …: a finite-width shift (exp, m = 10, σ = 0.3:
    2.00–2.40/λ₀ over 8 inits; ``sweepjax reproduce huang-catapult-exp``).
    For the logistic loss the paper's proof has only these two regions, lazy and catapult: it has
    no upper edge of the catapult phase; see ``huang_ntk_growth_lr``.
    """
    unit, c = _huang_unit(lambda0, loss)
    return (2.0 / c) * unit


def huang_ntk_growth_lr(lambda0: ArrayLike, loss: str = "exp") -> ArrayLike:
    """4/λ₀ (exp), 16/λ₀ (logistic): the η above which a GD step at small |f| makes the NTK grow.

    DERIVED from the closed dynamics (formulas.md §2.3, eq. (8)) with ℓ'(f) ≈ ℓ''(0)f = cf:
    λ_{t+1} − λ_t ≈ (η c f_t²/m)(η λ_t c − 4), positive iff η·λ·c > 4. It is an NTK-growth onset,
    not a divergence boundary in general:

    - exp: ℓ' = sinh f is unbounded, so once the NTK grows, |f| and the loss explode: the onset is
      also the catapult → divergent edge, sharp at small |f₀| (m = 10, σ = 0.3: first divergence
      at η·λ₀ = 3.95–3.99 over 8 inits; σ = 0.5: 3.64–3.96; ``sweepjax reproduce huang-catapult-exp``);
    - logistic: ℓ' = ½tanh(f/2) is bounded, so the growth stays O(1/m) per step and GD can still
      catapult back. The divergence edge depends on the width (u, v ~ N(0, 0.5²), 8 inits:
      m = 10 at 16.1–16.8/λ₀, m = 100 at 18.9–22.6/λ₀, m = 1000 at 45–53/λ₀, m = 10⁴ none up to
      80/λ₀ (2,000 steps);
      ``sweepjax reproduce huang-catapult``), while one step grows the NTK from 15.9–16.4/λ₀ at
      both m = 10 and 100.
    """
    unit, c = _huang_unit(lambda0, loss)
    return (4.0 / c) * unit

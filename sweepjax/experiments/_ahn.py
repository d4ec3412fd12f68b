"""Ahn et al.: the mean model's threshold-neuron bias and the ReLU network of Figure 1."""

from __future__ import annotations

import jax
import numpy as np

from .. import criteria, datasets, find_boundary, problems, sweep, theory, time_horizon
from .._record import Record
from ._base import Headline, Reproduction, _figure

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

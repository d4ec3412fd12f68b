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

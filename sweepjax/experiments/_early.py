"""Kalra & Barkeshli 2023 (and Lewkowycz et al. 2020): the early-training phase diagram of fully connected
networks trained with η = c/λ₀, over widths and depths as named axes of one sweep."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import jax
import numpy as np

from .. import datasets, problems, sweep
from .._boundary import find_boundary
from .._criteria import diverges
from .._curvature import Lanczos
from .._record import Record
from .._sweep import initial_sharpness
from ._base import Headline, Reproduction, _color

if TYPE_CHECKING:
    from .._result import SweepResult

#: c = η·λ₀ from 0.5 to 40 (the issue's range), log-spaced
EARLY_C_RANGE = (0.5, 40.0)
#: the early window: the loss catapults if it exceeds L₀ at some t ≤ EARLY_WINDOW; the sharpness falls
#: if λ at t = EARLY_WINDOW is below (1 − EARLY_SHARP_TOL)·λ₀
EARLY_WINDOW = 10
EARLY_SHARP_TOL = 0.05
#: a run diverges if its loss exceeds the sweep's threshold (1e6) or is non-finite within this many steps
EARLY_STEPS = 40
#: (widths, depths) of the phase diagram (ReLU), and the widths of the wide depth-1 nets (ReLU and linear)
EARLY_GRID, EARLY_QUICK_GRID = ((16, 32, 64, 128), (1, 2, 3, 4)), ((8, 32), (1, 3))
EARLY_WIDE, EARLY_QUICK_WIDE = (128, 512, 1024), (64, 256)

Criterion = Callable[["SweepResult"], np.ndarray]

#: the published values beside ours: at the smallest and the largest depth/width, and the trend with d/w
_PAPER_SMALL = {"c_loss": 2.0, "c_sharp": 2.0, "c_max": "≈ 4 (shallow) to 12 (wide ReLU)"}
_PAPER_LARGE = {"c_loss": "> 2 (grows with d/w)", "c_sharp": "< 2 (falls with d/w)", "c_max": "— (not restated here)"}
_PAPER_TREND = {"c_loss": "> 0", "c_sharp": "< 0", "c_max": "— (not restated here)"}


def loss_catapults(window: int = EARLY_WINDOW) -> Criterion:
    """max over 1 ≤ t ≤ window of L_t > L₀ (a run that diverged counts as True)."""

    def crit(res: SweepResult) -> np.ndarray:
        steps = np.asarray(res.steps)
        early = res["loss"][..., (steps >= 1) & (steps <= window)]
        with np.errstate(invalid="ignore"):
            rose = np.any(early > res["loss"][..., :1], axis=-1)
        return rose | res.diverged

    return crit


def sharpness_falls(window: int = EARLY_WINDOW, tol: float = EARLY_SHARP_TOL) -> Criterion:
    """λ at t = window < (1 − tol)·λ₀ (a run that diverged counts as True)."""

    def crit(res: SweepResult) -> np.ndarray:
        at = int(np.flatnonzero(np.asarray(res.steps) == window)[0])
        s = res["sharpness"]
        with np.errstate(invalid="ignore"):
            return (s[..., at] < (1.0 - tol) * s[..., 0]) | res.diverged

    return crit


def first_flip(c: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cell (values: (n_c, *cells) bool along the c grid): the bracket (c_k, c_{k+1}) around the first c
    whose value differs from the one at c[0], and whether there is one (else NaN, and the value everywhere)."""
    differs = values != values[:1]
    found = differs.any(axis=0)
    k = np.argmax(differs, axis=0)
    lo = np.where(found, c[np.maximum(k - 1, 0)], np.nan)
    hi = np.where(found, c[k], np.nan)
    return lo, hi, found


def critical_c(problem, inits, axes, lam0, c, grid_values, crit, record, steps, rounds) -> np.ndarray:
    """c* per cell (*axis sizes, n_init): the grid's first-flip bracket refined by ``find_boundary`` (in η =
    c/λ₀, a bracket per cell), times λ₀; NaN where the criterion does not flip on the grid [c₀, c_end] (then its
    value there says which side: all True means c* < c₀, all False c* > the grid's end)."""
    lo, hi, found = first_flip(c, grid_values)
    if not found.any():
        return np.full(lam0.shape, np.nan)
    lo, hi = np.where(found, lo, c[0]), np.where(found, hi, c[1])  # (unfound cells: a dummy bracket)
    b = find_boundary(problem, inits, (lo / lam0, hi / lam0), crit, num_steps=steps, rounds=rounds, points=3,
                      record=record, axes=axes)  # fmt: skip
    return np.where(found & b.found, b.lr * lam0, np.nan)


def phase_diagram(
    problem, inits, axes: dict, c: np.ndarray, rounds: int, solver, window: int, tol: float, steps: int
) -> tuple[dict, dict, dict]:
    """Two sweeps over the c grid (η = c/λ₀ per run): the loss at every step for ``steps`` steps, and λ at t = 0
    and ``window``; then, per cell, the critical c of each criterion, ``{"c_loss", "c_sharp", "c_max"}`` ->
    (*axis sizes, n_init), and whether it held at the grid's smallest c (for the cells where it never flips)."""
    lam0 = initial_sharpness(problem, inits, axes=axes, sharpness=solver)
    lrs = c.reshape(-1, *[1] * lam0.ndim) / lam0[None]
    every_step = Record(every=1, sharpness=None, observables=False)
    at_window = Record(every=window, sharpness=solver, observables=False)
    res = {
        "loss": sweep(problem, lrs, inits, num_steps=steps, axes=axes, record=every_step),
        "sharpness": sweep(problem, lrs, inits, num_steps=window, axes=axes, record=at_window),
    }
    criteria = {
        "c_loss": (loss_catapults(window), res["loss"], every_step, window),
        "c_sharp": (sharpness_falls(window, tol), res["sharpness"], at_window, window),
        "c_max": (diverges(), res["loss"], Record(every=steps, sharpness=None, observables=False), steps),
    }
    critical, held = {}, {}
    for name, (crit, on_grid, rec, n) in criteria.items():
        values = crit(on_grid)
        critical[name] = critical_c(problem, inits, axes, lam0, c, values, crit, rec, n, rounds)
        held[name] = values[0]
    return res, critical, held


def _ranks(x: np.ndarray) -> np.ndarray:
    """0-based ranks, ties given their average rank."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    return (np.cumsum(counts) - (counts - 1) / 2 - 1)[inverse]


def _rank_correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's ρ of the finite pairs (NaN when either has no spread)."""
    ok = np.isfinite(x) & np.isfinite(y)
    rx, ry = _ranks(x[ok]), _ranks(y[ok])
    if ok.sum() < 3 or rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def _summary(values: np.ndarray, held_at_start: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """⟨c⟩ over the inits where found (*axis sizes); where no init's flip is on the grid, the grid's end the
    value lies beyond (c[0] if the criterion held at every c, else c[-1]); and that side (−1, +1; 0: found)."""
    n = np.isfinite(values).sum(axis=-1)
    mean = np.nansum(np.where(np.isfinite(values), values, 0.0), axis=-1) / np.maximum(n, 1)
    side = np.where(n > 0, 0, np.where(np.all(held_at_start, axis=-1), -1, 1))
    return np.where(side == 0, mean, np.where(side < 0, c[0], c[-1])), side


def _bound(value: float, side: int) -> str:
    return {0: "", -1: f" (≤ {value:g}: at every c on the grid)", 1: f" (≥ {value:g}: at no c on the grid)"}[int(side)]


def kalra_early_training(
    quick: bool = False, *, window: int = EARLY_WINDOW, sharp_tol: float = EARLY_SHARP_TOL, steps: int = EARLY_STEPS
) -> Reproduction:
    """Kalra & Barkeshli 2023: early-training critical values of c = η·λ₀ over width and depth; Lewkowycz
    et al. 2020: c_max = 4 for the two-layer linear network, larger for wide ReLU networks.

    Data: the first 128 of scikit-learn's 8×8 digits (quick: 64), standardized, one-hot targets, MSE
    L = (1/2n) Σ ‖f − y‖². Model: ``problems.FullyConnected`` (NTK parameterization, N(0, 1) weights, ReLU
    with σ_w = √2, no biases) with width × depth (hidden layers) as named axes of one sweep: widths 16, 32,
    64, 128 × depths 1–4 (quick: 8, 32 × 1, 3), 3 inits each (quick: 2). Each run has η = c/λ₀ with λ₀
    its own initial sharpness (``sj.initial_sharpness``; Lanczos(20)), for 32 log-spaced c from 0.5 to 40
    (quick: 12), full-batch GD. Per run: the loss catapults if max_{1≤t≤10} L_t > L₀ (40 steps of the loss);
    the sharpness falls if λ₁₀ < 0.95·λ₀ (a second sweep of 10 steps, λ at t = 0 and 10); it diverges if
    the loss exceeds 1e6 or is non-finite within 40 steps. A diverged run counts as True for all three.
    Per (width, depth, init), each critical c is the grid's first flip refined by ``find_boundary`` (3
    rounds of 3 points, quick: 1; a bracket per cell); ⟨c⟩ is its mean over the inits, or the grid's end
    where no init flips inside it. Then depth-1 nets of widths 128, 512, 1024 (quick: 64, 256), ReLU and
    linear (Lewkowycz et al.'s model at finite width, 10 outputs and 128 samples), same protocol.
    ``window``, ``sharp_tol`` and ``steps`` set the criteria (defaults 10, 0.05, 40, fixed before any run was
    looked at); e.g. ``sj.experiments.run("kalra-early-training", sharp_tol=0.1)``.
    Published: c_loss ≈ 2 for wide shallow nets under MSE; c_max = 4 for the linear model, ≈ 12 for wide
    ReLU nets; a sharpness-reduction window c_sharp < c < c_loss that opens as depth/width grows.
    """
    if isinstance(window, bool) or not isinstance(window, int) or isinstance(steps, bool) or not isinstance(steps, int):
        raise TypeError(f"window and steps must be ints, got {window!r} and {steps!r}")
    if not 1 <= window <= steps:
        raise ValueError(f"window must be in [1, steps = {steps}], got {window}")
    if not 0.0 < sharp_tol < 1.0:
        raise ValueError(f"sharp_tol must be in (0, 1), got {sharp_tol!r}")
    n, n_init, n_c, rounds = (64, 2, 12, 1) if quick else (128, 3, 32, 3)
    widths, depths = EARLY_QUICK_GRID if quick else EARLY_GRID
    wide = EARLY_QUICK_WIDE if quick else EARLY_WIDE
    X, Y = datasets.load_digits(num=n)
    c = np.geomspace(*EARLY_C_RANGE, n_c)
    solver = Lanczos(order=20)
    net = problems.FullyConnected(X, Y, max_width=max(widths), max_depth=max(depths))
    axes = {"width": np.asarray(widths, float), "depth": np.asarray(depths, float)}
    settings = dict(window=window, tol=sharp_tol, steps=steps)
    runs, crit, held = phase_diagram(net, net.init(jax.random.key(0), n_init), axes, c, rounds, solver, **settings)
    results = {f"early_relu_{k}": r for k, r in runs.items()}
    wide_runs, wide_crit, wide_held = {}, {}, {}
    for act in ("relu", "linear"):
        shallow = problems.FullyConnected(X, Y, max_width=max(wide), max_depth=1, activation=act)
        wide_axes = {"width": np.asarray(wide, float)}
        wide_runs[act], wide_crit[act], wide_held[act] = phase_diagram(
            shallow, shallow.init(jax.random.key(1), n_init), wide_axes, c, rounds, solver, **settings
        )
        results |= {f"wide_{act}_{k}": r for k, r in wide_runs[act].items()}

    headline: dict[str, Headline] = {}
    ratio = np.asarray(depths, float)[None, :] / np.asarray(widths, float)[:, None]  # (width, depth): d/w
    means = {k: _summary(v, held[k], c) for k, v in crit.items()}
    lo, hi = np.unravel_index(np.argmin(ratio), ratio.shape), np.unravel_index(np.argmax(ratio), ratio.shape)
    for k, label in (("c_loss", "the loss catapults"), ("c_sharp", "the sharpness falls"), ("c_max", "training diverges")):
        mean, side = means[k]
        for where, idx, paper in (("smallest", lo, _PAPER_SMALL[k]), ("largest", hi, _PAPER_LARGE[k])):
            headline[f"<{k}> at the {where} depth/width ({depths[idx[1]]}/{widths[idx[0]]}), ReLU"] = Headline(
                float(mean[idx]), paper, f"{label}; mean over {n_init} inits{_bound(mean[idx], side[idx])}"
            )
        headline[f"rank correlation of <{k}> with depth/width (ReLU, {ratio.size} nets)"] = Headline(
            _rank_correlation(ratio.ravel(), mean.ravel()), _PAPER_TREND[k],
            "Spearman ρ over the (width, depth) grid, values beyond the grid at its end (NaN: no spread)",
        )  # fmt: skip
    s0 = runs["sharpness"]["sharpness"]
    drop = np.median(s0[0, ..., -1] / s0[0, ..., 0], axis=-1)  # (width, depth): λ_window/λ₀ at the smallest c
    for where, idx in (("smallest", lo), ("largest", hi)):
        headline[f"lambda_{window}/lambda_0 at c = {c[0]:g}, {where} depth/width, ReLU"] = Headline(
            float(drop[idx]), "≈ 1 at small d/w; falls as d/w grows (sharpness reduction below c = 2)", "median over inits"
        )
    for act, (paper_loss, paper_max) in {"linear": (2.0, 4.0), "relu": (2.0, 12.0)}.items():
        for k, paper in (("c_loss", paper_loss), ("c_max", paper_max)):
            mean, side = _summary(wide_crit[act][k], wide_held[act][k], c)
            note = "Lewkowycz et al." + (" (the uv model, infinite width)" if act == "linear" and k == "c_max" else "")
            key = f"<{k}>, depth 1, width {wide[-1]}, {act}"
            headline[key] = Headline(float(mean[-1]), paper, note + _bound(mean[-1], side[-1]))

    fig = _figure_of(runs, (crit, held), c, widths, depths, wide, (wide_crit, wide_held), n, n_init, window, sharp_tol)
    return Reproduction(results, fig, headline, kalra_early_training.__doc__)


def _figure_of(runs, critical, c, widths, depths, wide, wide_critical, n, n_init, window, tol):
    import matplotlib.figure

    fig = matplotlib.figure.Figure(figsize=(16, 4.4), layout="constrained")
    ax0, ax1, ax2, ax3 = fig.subplots(1, 4)
    ratio = np.asarray(depths, float)[None, :] / np.asarray(widths, float)[:, None]  # (width, depth)
    styles = {"c_loss": ("C1", "⟨c_loss⟩ (loss catapults)"), "c_sharp": ("C0", "⟨c_sharp⟩ (sharpness falls)"),
              "c_max": ("C3", "⟨c_max⟩ (diverges)")}  # fmt: skip
    markers = "osD^v<>p"
    for k, (color, label) in styles.items():
        mean, side = _summary(critical[0][k], critical[1][k], c)
        for di in range(len(depths)):
            for wi in range(len(widths)):
                m = "x" if side[wi, di] else markers[di % len(markers)]
                ax0.plot(ratio[wi, di], mean[wi, di], m, color=color, ms=6, mfc="none" if m != "x" else None)
        ax0.plot([], [], "o", color=color, label=label)
    for di, d in enumerate(depths):
        ax0.plot([], [], markers[di % len(markers)], color="0.4", mfc="none", label=f"depth {d}")
    for level in (2.0, 4.0):
        ax0.axhline(level, color="k", ls="--", lw=0.7)
    ax0.set(xscale="log", yscale="log", xlabel="depth / width", ylabel="c = η·λ₀",
            title="ReLU: critical c vs depth/width (x: beyond [0.5, 40])")  # fmt: skip
    ax0.title.set_fontsize("medium")
    ax0.legend(fontsize="xx-small", ncol=2)
    # the early loss of the widest shallow net: lazy below c_loss, a catapult above, divergence
    res, wi = runs["loss"], len(widths) - 1
    picks = np.unique(np.searchsorted(c, [1.0, 1.9, 2.5, 3.5, 6.0, 12.0]).clip(0, c.size - 1))
    for i, k in enumerate(picks):
        loss = res["loss"][k, wi, 0, 0]
        ax1.plot(res.steps, loss / loss[0], color=_color(i, picks.size), label=f"c = {c[k]:.2g}")
    ax1.axhline(1.0, color="k", lw=0.6)
    ax1.set(yscale="log", xlabel="step t", ylabel="L_t / L₀", ylim=(1e-2, 1e2),
            title=f"width {widths[wi]}, depth {depths[0]}: early loss (init 0)")  # fmt: skip
    ax1.title.set_fontsize("medium")
    ax1.legend(fontsize="x-small")
    # how far the sharpness falls by t = window, per net, against c
    s = runs["sharpness"]["sharpness"]
    drop = np.median(s[..., -1] / s[..., 0], axis=-1)  # (c, width, depth)
    logs = np.log(ratio)
    for wi in range(len(widths)):
        for di in range(len(depths)):
            t = (logs[wi, di] - logs.min()) / max(np.ptp(logs), 1e-12)
            ax2.plot(c, drop[:, wi, di], color=_color(int(round(99 * t)), 100), lw=1.0)
    ax2.axhline(1.0 - tol, color="k", ls="--", lw=0.7)
    ax2.set(xscale="log", xlabel="c = η·λ₀", ylabel=f"λ_{window} / λ₀ (median over inits)", ylim=(0, 1.5),
            title=f"sharpness after {window} steps (dark → light: d/w up)")  # fmt: skip
    ax2.title.set_fontsize("medium")
    for act, marker in (("relu", "o-"), ("linear", "s--")):
        for k, color in (("c_loss", "C1"), ("c_max", "C3")):
            mean = _summary(wide_critical[0][act][k], wide_critical[1][act][k], c)[0]
            ax3.plot(wide, mean, marker, color=color, label=f"{act}: ⟨{k}⟩")
    ax3.axhline(4.0, color="k", ls=":", lw=0.8)
    ax3.axhline(12.0, color="k", ls=":", lw=0.8)
    ax3.set(xscale="log", yscale="log", xlabel="width (depth 1)", ylabel="c = η·λ₀",
            title="depth 1 (dotted: 4 and 12)")  # fmt: skip
    ax3.title.set_fontsize("medium")
    ax3.legend(fontsize="x-small")
    fig.suptitle(f"Kalra & Barkeshli: early training with η = c/λ₀, {n} digits, MSE, {n_init} inits per (width, depth)")
    return fig

"""Sohl-Dickstein (2024): the boundary of neural network trainability is fractal; Liu (2024): a quadratic
plus a cosine is enough for a fractal trainability boundary."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from .. import problems, sweep
from .._dimension import BoxCounting, boundary_point, box_counting_dimension
from .._record import Record
from .._rules import GD
from ._base import Headline, Reproduction

# ----------------------------------------------------------------------------- fractal-boundary

#: the overview window, log10 of both layers' step sizes (the public notebook's default view)
FRACTAL_LOG10_RANGE = (-3.0, 6.0)
#: each zoom shrinks the window's side by this factor, centred on the boundary cell nearest the centre
FRACTAL_ZOOM = 8.0
#: Liu's roughness θ = ε/λ² of f(x) = x² + ε cos(2πx/λ) (λ = 1): convex below 1/(2π²) ≈ 0.051
COSINE_THETAS = (0.03, 0.06, 0.1)
#: the (η, x₀) window of the quadratic + cosine images
COSINE_ETA_RANGE, COSINE_X0_RANGE = (0.9, 1.4), (-2.0, 2.0)


def _quadratic_cosine(x, eps: float):
    """f(x) = x² + ε cos(2πx) (Liu's additive perturbation with λ = 1; f'' = 2 − 4π²ε cos(2πx))."""
    return jnp.sum(x * x + eps * jnp.cos(2.0 * jnp.pi * x))


def _tanh_image(problem, theta0, center, width: float, n: int, steps: int):
    """One sweep over an n × n grid of (log10 η_in, log10 η_out) in a square window; float64, GD with one
    step size per layer, final loss only; returns (result, trainable image, g_in, g_out)."""
    g_in = np.linspace(center[0] - width / 2, center[0] + width / 2, n)
    g_out = np.linspace(center[1] - width / 2, center[1] + width / 2, n)
    res = sweep(
        problem, [1.0], theta0, num_steps=steps, record=Record(every=steps, sharpness=None, observables=False),
        rule=GD(groups={"w1": "lr_in", "w2": "lr_out"}), axes={"lr_in": 10.0**g_in, "lr_out": 10.0**g_out},
        dtype=jnp.float64,
    )  # fmt: skip
    return res, res.status[0, :, :, 0] == 0, g_in, g_out


def _cosine_image(theta: float, n: int, steps: int):
    """GD on f(x) = x² + θ cos(2πx) over an n × n grid of (η, x₀); returns (result, trainable image)."""
    problem = problems.Objective(functools.partial(_quadratic_cosine, eps=theta), jnp.zeros(1))
    etas = np.linspace(*COSINE_ETA_RANGE, n)
    x0 = np.linspace(*COSINE_X0_RANGE, n)[:, None]
    res = sweep(problem, etas, x0, num_steps=steps, record=Record(every=steps, sharpness=None, observables=False),
                dtype=jnp.float64)  # fmt: skip
    return res, res.status == 0


def _fit_panel(ax, fits: list[BoxCounting], labels: list[str], title: str) -> None:
    for i, (fit, label) in enumerate(zip(fits, labels, strict=True)):
        x = np.log(1.0 / fit.sizes)
        ok = fit.counts > 0
        ax.plot(x[ok], np.log(fit.counts[ok]), "o", color=f"C{i}")
        ax.plot(x, fit.intercept + fit.dimension * x, "-", color=f"C{i}", lw=0.8,
                label=f"{label}: D = {fit.dimension:.2f}")  # fmt: skip
    ax.set(xlabel="log(1/s)  (s: box side in cells)", ylabel="log N(s)", title=title)
    ax.legend(fontsize="x-small")


def fractal_boundary(quick: bool = False) -> Reproduction:
    """Sohl-Dickstein (2024): the boundary between per-layer step sizes (η_in, η_out) that train and those
    that diverge is fractal; Liu (2024): GD on a quadratic plus a cosine already has a fractal boundary.

    Box-counting dimension D = slope of log N(s) vs log(1/s), N(s) = #(s × s boxes holding a boundary
    cell), s = 1, 2, 4, … (``sj.box_counting_dimension``). (a) ``TanhTwoLayer`` (width 16, 272 N(0, 1)
    points, mean-field, MSE, one N(0, 1) init, data seed 0), float64 GD with one step size per layer,
    trainable = not diverged (loss finite and ≤ 1e6) after 100 steps (quick: 30), on an n × n grid of
    (log10 η_in, log10 η_out) over [−3, 6]² and then 3 zooms (quick: 2), each 8× narrower, centred on
    the boundary cell nearest the previous image's centre; n = 128 (quick: 32). The paper's images are
    far larger (up to 4096² over more steps, zooms over > 10 decades); its dimensions span 1.17–1.98
    over six configurations (the value for this tanh/MSE/mean-field one is not restated here). (b) GD
    on f(x) = x² + θ cos(2πx) (Liu's additive perturbation, λ = 1, roughness θ = ε/λ²; f is convex iff
    θ ≤ 1/(2π²) ≈ 0.051) over a 256² grid (quick: 64²) of (η, x₀) ∈ [0.9, 1.4] × [−2, 2], 200 steps
    (quick: 60), for θ = 0.03, 0.06, 0.1: Liu reports D ≈ 1 below the convexity threshold and D rising
    with θ above it. Full run: ~3–4 min on 2 CPU cores.
    """
    n, steps, zooms = (32, 30, 2) if quick else (128, 100, 3)
    n_cos, steps_cos = (64, 60) if quick else (256, 200)
    problem = problems.TanhTwoLayer.from_seed(0)
    theta0 = problem.init(jax.random.key(0), 1)

    results, images, fits, windows = {}, [], [], []
    lo, hi = FRACTAL_LOG10_RANGE
    center, width = np.array([(lo + hi) / 2, (lo + hi) / 2]), hi - lo
    for k in range(zooms + 1):
        res, ok, g_in, g_out = _tanh_image(problem, theta0, center, width, n, steps)
        results[f"tanh_zoom{k}"] = res
        images.append((ok, g_in, g_out))
        fits.append(box_counting_dimension(ok))
        windows.append((center.copy(), width))
        i, j = boundary_point(ok)
        center, width = np.array([g_in[i], g_out[j]]), width / FRACTAL_ZOOM

    cos_images, cos_fits = [], []
    for t, theta in enumerate(COSINE_THETAS):
        res, ok = _cosine_image(theta, n_cos, steps_cos)
        results[f"quadratic_cosine{t}"] = res
        cos_images.append(ok)
        cos_fits.append(box_counting_dimension(ok))

    import matplotlib.figure
    import matplotlib.patches

    ncols = max(zooms + 2, len(COSINE_THETAS) + 1)
    fig = matplotlib.figure.Figure(figsize=(4.2 * ncols, 8.2), layout="constrained")
    axes = fig.subplots(2, ncols, squeeze=False)
    for k, (ok, g_in, g_out) in enumerate(images):
        ax = axes[0, k]
        ax.imshow(ok.T, origin="lower", extent=(g_in[0], g_in[-1], g_out[0], g_out[-1]), cmap="coolwarm_r",
                  interpolation="nearest", aspect="auto")  # fmt: skip
        if k + 1 < len(windows):
            (cx, cy), w = windows[k + 1]
            ax.add_patch(matplotlib.patches.Rectangle((cx - w / 2, cy - w / 2), w, w, fill=False, ec="k", lw=1.2))
        ax.set(xlabel="log10 η_in (W1)", ylabel="log10 η_out (w2)",
               title=f"tanh net, zoom {k}: side {windows[k][1]:.3g} decades, D = {fits[k].dimension:.2f}")  # fmt: skip
    _fit_panel(axes[0, zooms + 1], fits, [f"zoom {k}" for k in range(len(fits))], "tanh net: box counting")
    for t, (ok, fit) in enumerate(zip(cos_images, cos_fits, strict=True)):
        ax = axes[1, t]
        ax.imshow(ok.T, origin="lower", extent=(*COSINE_ETA_RANGE, *COSINE_X0_RANGE), cmap="coolwarm_r",
                  interpolation="nearest", aspect="auto")  # fmt: skip
        ax.set(xlabel="step size η", ylabel="init x₀",
               title=f"x² + θ cos 2πx, θ = {COSINE_THETAS[t]:g}: D = {fit.dimension:.2f}")  # fmt: skip
    _fit_panel(axes[1, len(COSINE_THETAS)], cos_fits, [f"θ = {t:g}" for t in COSINE_THETAS],
               "quadratic + cosine: box counting")  # fmt: skip
    for ax in axes.flat[len(images) + 1 : ncols]:
        ax.set_axis_off()
    for ax in axes[1, len(COSINE_THETAS) + 1 :]:
        ax.set_axis_off()
    fig.suptitle(f"Trainable (blue) vs diverged (red): Sohl-Dickstein's tanh net ({n}², {steps} steps per image) "
                 f"and Liu's quadratic + cosine ({n_cos}², {steps_cos} steps)")  # fmt: skip

    paper_nn = "1.17–1.98 across six configurations (Sohl-Dickstein 2024)"
    headline = {
        f"tanh net: boundary dimension, zoom {k} (side {windows[k][1]:.3g} decades)": Headline(
            fits[k].dimension, paper_nn, f"{n}² grid, {steps} steps, centre (log10 η_in, log10 η_out) = "
            f"({windows[k][0][0]:.4f}, {windows[k][0][1]:.4f})"
        )
        for k in range(len(fits))
    }  # fmt: skip
    headline["tanh net: largest boundary dimension over the zooms"] = Headline(float(max(f.dimension for f in fits)), paper_nn)
    fractions = [float(ok.mean()) for ok, _, _ in images] + [float(ok.mean()) for ok in cos_images]
    headline["trainable fraction, min over all images"] = Headline(min(fractions), "strictly between 0 and 1")
    headline["trainable fraction, max over all images"] = Headline(max(fractions), "strictly between 0 and 1")
    for t, theta in enumerate(COSINE_THETAS):
        convex = theta <= 1.0 / (2.0 * np.pi**2)
        headline[f"x^2 + theta cos(2 pi x): boundary dimension, theta = {theta:g}"] = Headline(
            cos_fits[t].dimension,
            "≈ 1 (convex: θ ≤ 1/(2π²))" if convex else "> 1, rising with θ (Liu 2024)",
            f"{n_cos}² grid of (η, x₀), {steps_cos} steps",
        )
    return Reproduction(results, fig, headline, fractal_boundary.__doc__)

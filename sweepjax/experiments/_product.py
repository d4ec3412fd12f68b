"""product-phase-diagram: the demo grid of ℓ(xy) against Ahn et al.'s min(y₀² − x₀², 2/η)."""

from __future__ import annotations

import math

import numpy as np

from .. import plot, problems, sweep, theory
from .._record import Record
from ._base import Headline, Reproduction, _figure, _record_every

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

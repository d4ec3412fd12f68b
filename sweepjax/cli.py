"""Command line: ``sweepjax demo`` maps Ahn et al.'s gradient-flow vs edge-of-stability phase diagram.

A thin layer over the Python API; bad input ends in one ``sweepjax: error: ...`` line and exit code 2.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: relative tolerance for "the measured final sharpness matches min(y₀² − x₀², 2/η)"
DEMO_RTOL = 0.05
#: the demo grid: η log-spaced (2/η from 200 down to 10), gaps y₀² − x₀² log-spaced, x₀ fixed
DEMO_LR_RANGE = (0.01, 0.2)
DEMO_GAP_RANGE = (2.0, 400.0)
DEMO_X0 = 0.5
#: ~ log(1/η)/η² steps settle the EoS runs at the smallest η (sqrt loss, β = 2)
DEMO_STEPS = 40_000
QUICK = {"n_lr": 12, "n_init": 10, "steps": 2_000}


class _ArgumentError(ValueError):
    """argparse's complaint, reported like any other bad input."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise _ArgumentError(message)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sweepjax", description="Gradient descent over step-size × initialization grids in JAX.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    demo = sub.add_parser(
        "demo",
        help="Ahn et al.'s single neuron ℓ(xy), sqrt loss: final sharpness ≈ min(y₀² − x₀², 2/η)",
        description="Sweep GD on f(x, y) = √(1 + x²y²) over η × (y₀² − x₀²) and compare the final "
        "sharpness with min(y₀² − x₀², 2/η). Writes <out>/product_sqrt.npz and <out>/product_sqrt.png.",
    )
    add = demo.add_argument
    add("--out", type=Path, default=Path("sweepjax-demo"), help="output folder (default: %(default)s)")
    add("--n-lr", type=_positive_int, default=None, help="number of step sizes (default 128)")
    add("--n-init", type=_positive_int, default=None, help="number of initializations (default 128)")
    add("--steps", type=_positive_int, default=None, help=f"GD steps per run (default {DEMO_STEPS})")
    add("--lr-min", type=_positive_float, default=DEMO_LR_RANGE[0], help="smallest η (default %(default)s)")
    add("--lr-max", type=_positive_float, default=DEMO_LR_RANGE[1], help="largest η (default %(default)s)")
    add("--x0", type=float, default=DEMO_X0, help="initial x₀ of every run (default %(default)s)")
    add("--quick", action="store_true", help=f"a small grid for tests ({QUICK})")
    demo.set_defaults(func=_demo_command)
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def _record_every(steps: int, n_records: int = 80) -> int:
    """The largest divisor of ``steps`` that is at most steps/n_records (at least 1)."""
    every = max(1, steps // n_records)
    while steps % every:
        every -= 1
    return every


def run_demo(
    out: Path | str,
    *,
    n_lr: int = 128,
    n_init: int = 128,
    steps: int = DEMO_STEPS,
    lr_range: tuple[float, float] = DEMO_LR_RANGE,
    gap_range: tuple[float, float] = DEMO_GAP_RANGE,
    x0: float = DEMO_X0,
    rtol: float = DEMO_RTOL,
) -> dict:
    """Run the demo sweep, write ``product_sqrt.npz`` and ``product_sqrt.png`` into ``out``; return a summary."""
    import matplotlib.figure
    from matplotlib.lines import Line2D

    from . import Record, plot, problems, sweep, theory

    if not (0 < lr_range[0] < lr_range[1]):
        raise ValueError(f"need 0 < lr-min < lr-max, got {lr_range[0]} and {lr_range[1]}")
    if not math.isfinite(x0):
        raise ValueError(f"x0 must be finite, got {x0}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    problem = problems.ProductLoss("sqrt")
    lrs = np.geomspace(*lr_range, n_lr)
    gaps = np.geomspace(*gap_range, n_init)
    t0 = time.perf_counter()
    inits = problem.init_grid(gaps, x0=x0)
    result = sweep(problem, lrs, inits, num_steps=steps, record=Record(every=_record_every(steps)))
    sweep_s = time.perf_counter() - t0

    predicted = theory.ahn_prediction(result)
    match = theory.within_tolerance(result["final_sharpness"], predicted, rtol)
    npz = result.save(out / "product_sqrt.npz")

    fig = matplotlib.figure.Figure(figsize=(12.5, 5.0), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=(1.25, 1.0))
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
    png = out / "product_sqrt.png"
    fig.savefig(png, dpi=110)
    return {
        "npz": npz,
        "png": png,
        "shape": (n_lr, n_init),
        "steps": steps,
        "fraction": float(match.mean()),
        "rtol": rtol,
        "diverged": int(result.diverged.sum()),
        "sweep_s": sweep_s,
    }


def _demo_command(args: argparse.Namespace) -> int:
    sizes = dict(QUICK) if args.quick else {"n_lr": 128, "n_init": 128, "steps": DEMO_STEPS}
    for key in sizes:
        if getattr(args, key) is not None:
            sizes[key] = getattr(args, key)
    t0 = time.perf_counter()
    summary = run_demo(args.out, lr_range=(args.lr_min, args.lr_max), x0=args.x0, **sizes)
    n_lr, n_init = summary["shape"]
    print(
        f"swept {n_lr} step sizes × {n_init} inits × {summary['steps']} steps in {summary['sweep_s']:.1f} s "
        f"({summary['diverged']} diverged); {summary['fraction']:.1%} of runs end within {summary['rtol']:.0%} "
        f"of min(y0^2 - x0^2, 2/eta)"
    )
    print(f"wrote {summary['npz']}")
    print(f"wrote {summary['png']}")
    print(f"total {time.perf_counter() - t0:.1f} s")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sweepjax`` command; returns the exit code (2 on bad input)."""
    parser = build_parser()
    try:
        args = parser.parse_args(None if argv is None else [str(a) for a in argv])
        return args.func(args)
    except (ValueError, TypeError, OSError) as e:
        message = " ".join(str(e).split()) or type(e).__name__
        print(f"sweepjax: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Command line: ``sweepjax demo`` (Ahn et al.'s gradient-flow vs EoS phase diagram), ``sweepjax list`` and
``sweepjax reproduce NAME`` (the named experiments of ``sweepjax.experiments``).

A thin layer over the Python API; bad input ends in one ``sweepjax: error: ...`` line and exit code 2.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import theory
from .experiments import (
    PRODUCT_GAP_RANGE as DEMO_GAP_RANGE,
    PRODUCT_LR_RANGE as DEMO_LR_RANGE,
    PRODUCT_QUICK,
    PRODUCT_RTOL as DEMO_RTOL,
    PRODUCT_STEPS as DEMO_STEPS,
    PRODUCT_X0 as DEMO_X0,
)

QUICK = dict(PRODUCT_QUICK)
FORMATS = ("npz", "nc", "both")


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

    lister = sub.add_parser(
        "list", help="list the named experiments of `sweepjax reproduce`",
        description="List the named experiments (sweepjax.experiments.REGISTRY) with one line each.",
    )  # fmt: skip
    lister.set_defaults(func=_list_command)

    rep = sub.add_parser(
        "reproduce",
        help="reproduce a named paper experiment: result files, a figure, headline numbers vs the paper's",
        description="Run a named experiment (see `sweepjax list`) and write <out>/<stem>.npz and/or .nc for "
        "each sweep, <out>/<name>.png and <out>/<name>.json (headline numbers beside the paper's).",
    )
    rep.add_argument("name", metavar="NAME", help="experiment name (see `sweepjax list`)")
    rep.add_argument("--out", type=Path, default=None, help="output folder (default: sweepjax-NAME)")
    rep.add_argument("--quick", action="store_true", help="shrink every size (seconds; for tests)")
    rep.add_argument(
        "--format", choices=FORMATS, default="npz", help="result file format: npz, nc (netCDF-4) or both (default npz)"
    )
    rep.set_defaults(func=_reproduce_command)
    return parser


def _list_command(args: argparse.Namespace) -> int:
    from .experiments import REGISTRY

    width = max(map(len, REGISTRY))
    for name, fn in REGISTRY.items():
        summary = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        print(f"{name:<{width}}  {summary}")
    return 0


def _fmt(value) -> str:
    if isinstance(value, str):
        return value
    return f"{value:.4g}"


def reproduce(name: str, out: Path | str | None = None, *, quick: bool = False, fmt: str = "npz") -> dict:
    """Run experiment ``name``, write its files into ``out``; return {"files": [...], "headline": {...}, ...}."""
    import json

    from .experiments import REGISTRY

    if name not in REGISTRY:
        raise ValueError(f"unknown experiment {name!r}; known: {', '.join(REGISTRY)}")
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    out = Path(f"sweepjax-{name}" if out is None else out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} exists and is not a folder")
    t0 = time.perf_counter()
    rep = REGISTRY[name](quick)
    run_s = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for stem, result in rep.results.items():
        if fmt in ("npz", "both"):
            files.append(result.save(out / f"{stem}.npz"))
        if fmt in ("nc", "both"):
            files.append(result.to_netcdf(out / f"{stem}.nc"))
    png = out / f"{name}.png"
    rep.figure.savefig(png, dpi=110)
    files.append(png)
    headline = {k: {"ours": h.ours, "paper": h.paper, "note": h.note} for k, h in rep.headline.items()}
    summary = out / f"{name}.json"
    summary.write_text(json.dumps({"name": name, "quick": quick, "headline": headline}, indent=2, allow_nan=True))
    files.append(summary)
    return {"files": files, "headline": rep.headline, "run_s": run_s}


def _reproduce_command(args: argparse.Namespace) -> int:
    summary = reproduce(args.name, args.out, quick=args.quick, fmt=args.format)
    rows = [(k, _fmt(h.ours), _fmt(h.paper)) for k, h in summary["headline"].items()]
    w0 = max(len(r[0]) for r in rows + [("headline", "", "")])
    w1 = max(len(r[1]) for r in rows + [("", "sweepjax", "")])
    print(f"{args.name}{' (quick)' if args.quick else ''}: ran in {summary['run_s']:.1f} s")
    print(f"{'headline':<{w0}}  {'sweepjax':>{w1}}  paper")
    for key, ours, paper in rows:
        print(f"{key:<{w0}}  {ours:>{w1}}  {paper}")
    for f in summary["files"]:
        print(f"wrote {f}")
    return 0


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
    """Run the demo sweep, write ``product_sqrt.npz`` and ``product_sqrt.png`` into ``out``; return a summary.

    The sweep and figure are the named experiment ``product-phase-diagram`` (``sweepjax.experiments``).
    """
    from .experiments import product_phase_diagram

    if not (0 < lr_range[0] < lr_range[1]):
        raise ValueError(f"need 0 < lr-min < lr-max, got {lr_range[0]} and {lr_range[1]}")
    if not math.isfinite(x0):
        raise ValueError(f"x0 must be finite, got {x0}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rep = product_phase_diagram(
        n_lr=n_lr, n_init=n_init, steps=steps, lr_range=lr_range, gap_range=gap_range, x0=x0, rtol=rtol
    )
    sweep_s = time.perf_counter() - t0
    result = rep.results["product_sqrt"]
    npz = result.save(out / "product_sqrt.npz")
    png = out / "product_sqrt.png"
    rep.figure.savefig(png, dpi=110)
    match = theory.within_tolerance(result["final_sharpness"], theory.ahn_prediction(result), rtol)
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
    except (ValueError, TypeError, OSError, ImportError) as e:
        message = " ".join(str(e).split()) or type(e).__name__
        print(f"sweepjax: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

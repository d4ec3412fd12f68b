"""The README gallery: one small figure per named experiment, written by the experiment's own code.

For each experiment (default: every name in ``sweepjax.experiments.REGISTRY``), run it with
``sweepjax.experiments.run(name, quick)`` and re-render its figure at a low dpi (``--width`` pixels wide;
text stays crisp, unlike a downscaled bitmap) into ``--out/NAME.png``, with its headline numbers beside it
in ``--out/NAME.json`` (the format of ``sweepjax reproduce``), so the numbers behind each picture are on
record. ``--runs DIR`` also keeps what ``sweepjax reproduce NAME --out DIR/NAME`` writes (result files, the
full-size figure). One line per experiment with its wall time; a failure is reported and skipped.

    python benchmarks/gallery.py [--only NAME ...] [--quick] [--out benchmarks/gallery] [--runs DIR]

``--quick`` runs every experiment at its small size (seconds each; tests/test_benchmarks.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

from sweepjax.experiments import REGISTRY, Reproduction, run

WIDTH = 840  # thumbnail width in pixels


def save(rep: Reproduction, name: str, folder: Path, *, quick: bool, dpi: float) -> Path:
    """``NAME.png`` at ``dpi`` and ``NAME.json`` (headline numbers) into ``folder``; return the PNG's path."""
    folder.mkdir(parents=True, exist_ok=True)
    png = folder / f"{name}.png"
    rep.figure.savefig(png, dpi=dpi)
    headline = {k: {"ours": h.ours, "paper": h.paper, "note": h.note} for k, h in rep.headline.items()}
    summary = {"name": name, "quick": quick, "headline": headline}
    (folder / f"{name}.json").write_text(json.dumps(summary, indent=2, allow_nan=True))
    return png


def one(name: str, out: Path, runs: Path | None, *, quick: bool, width: int) -> str:
    """Run ``name``; write its thumbnail and headline JSON into ``out``; return the line to print."""
    t0 = time.perf_counter()
    rep = run(name, quick)
    run_s = time.perf_counter() - t0
    if runs is not None:  # what `sweepjax reproduce NAME --out runs/NAME` writes
        save(rep, name, runs / name, quick=quick, dpi=110)
        for stem, result in rep.results.items():
            result.save(runs / name / f"{stem}.npz")
    png = save(rep, name, out, quick=quick, dpi=width / rep.figure.get_figwidth())
    cols, rows = (int.from_bytes(png.read_bytes()[i : i + 4], "big") for i in (16, 20))  # the PNG's IHDR
    kb = png.stat().st_size / 1024
    return f"{name}: {time.perf_counter() - t0:.1f} s (experiment {run_s:.1f} s); {png} {cols}x{rows}, {kb:.0f} KB"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", metavar="NAME", choices=list(REGISTRY), default=None, help="these experiments")
    ap.add_argument("--quick", action="store_true", help="the experiments' small sizes (seconds each)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "gallery", help="thumbnail folder")
    ap.add_argument("--runs", type=Path, default=None, help="also keep result files and full-size figures here")
    ap.add_argument("--width", type=int, default=WIDTH, help="thumbnail width in pixels (default %(default)s)")
    args = ap.parse_args(argv)
    failed = []
    for name in args.only or list(REGISTRY):
        t0 = time.perf_counter()
        try:
            print(one(name, args.out, args.runs, quick=args.quick, width=args.width), flush=True)
        except Exception:  # report it and go on with the next experiment
            failed.append(name)
            print(f"{name}: FAILED after {time.perf_counter() - t0:.1f} s", flush=True)
            traceback.print_exc()
    if failed:
        print(f"failed: {' '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

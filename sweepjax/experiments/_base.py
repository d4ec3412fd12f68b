"""What every named experiment returns (Reproduction, Headline) and the figure helpers they share."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .._result import SweepResult


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

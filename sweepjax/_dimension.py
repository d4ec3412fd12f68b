"""Box-counting dimension of the boundary in a 2-D boolean image (e.g. trainable vs diverged runs over a
grid of two hyperparameters), and the pick of a boundary point to zoom in on.

D = lim_{s→0} log N(s) / log(1/s), N(s) = the number of closed s × s boxes (in cells) on which the image is
not constant, i.e. that the phase boundary crosses; fitted as the least-squares slope of log N against
log(1/s) over s = 1, 2, 4, ….
"""

from __future__ import annotations

import dataclasses

import numpy as np
from jaxtyping import ArrayLike, Bool


@dataclasses.dataclass(frozen=True, eq=False)
class BoxCounting:
    """A box-counting fit: ``dimension`` = slope of log ``counts`` vs log(1/``sizes``).

    Attributes:
        dimension: the fitted dimension D (NaN when fewer than two sizes have a non-empty count).
        sizes: (k,) box sizes s in cells (1, 2, 4, …).
        counts: (k,) N(s): closed boxes of side s the boundary crosses (``boundary=True``), or boxes
            holding a True cell (``boundary=False``).
        intercept: the fit's intercept, log N ≈ intercept + D log(1/s).
        cells: the number of boundary cells (``boundary_cells``), or of True cells with
            ``boundary=False``.
    """

    dimension: float
    sizes: np.ndarray
    counts: np.ndarray
    intercept: float
    cells: int


def boundary_cells(image: Bool[ArrayLike, "h w"]) -> Bool[np.ndarray, "h w"]:
    """The cells whose right or lower neighbour differs from them: one cell per side of each edge
    between the two phases, so a straight boundary is one cell thick."""
    a = np.asarray(image, dtype=bool)
    if a.ndim != 2:
        raise ValueError(f"image must be 2-D, got shape {a.shape}")
    out = np.zeros_like(a)
    out[:-1, :] |= a[:-1, :] != a[1:, :]
    out[:, :-1] |= a[:, :-1] != a[:, 1:]
    return out


def box_counts(mask: Bool[ArrayLike, "h w"], sizes: ArrayLike) -> np.ndarray:
    """N(s) for each s: the s × s boxes of a grid anchored at cell (0, 0) holding a set cell (the image
    padded with empty cells up to a multiple of s)."""
    m = np.asarray(mask, dtype=bool)
    counts = []
    for s in np.asarray(sizes, dtype=int):
        if s < 1:
            raise ValueError(f"box sizes must be ≥ 1, got {s}")
        h, w = -(-m.shape[0] // s) * s, -(-m.shape[1] // s) * s
        padded = np.zeros((h, w), bool)
        padded[: m.shape[0], : m.shape[1]] = m
        counts.append(int(padded.reshape(h // s, s, w // s, s).any(axis=(1, 3)).sum()))
    return np.asarray(counts, dtype=np.int64)


def boundary_box_counts(image: Bool[ArrayLike, "h w"], sizes: ArrayLike) -> np.ndarray:
    """N(s) for each s: the closed boxes, cells a·s … (a+1)·s along each axis (neighbouring boxes share a
    row and a column), a = 0 … ⌈h/s⌉ − 1, on which the image is not constant (the image edge-padded).

    Closed boxes count every crossing of the boundary wherever it falls against the box grid, so a
    straight line at any angle gives N(s) ∝ 1/s (open boxes of boundary cells undercount slanted lines
    at s = 1)."""
    a = np.asarray(image, dtype=bool)
    if a.ndim != 2:
        raise ValueError(f"image must be 2-D, got shape {a.shape}")
    counts = []
    for s in np.asarray(sizes, dtype=int):
        if s < 1:
            raise ValueError(f"box sizes must be ≥ 1, got {s}")
        nh, nw = -(-a.shape[0] // s), -(-a.shape[1] // s)
        padded = np.pad(a, ((0, nh * s + 1 - a.shape[0]), (0, nw * s + 1 - a.shape[1])), mode="edge")
        boxes = np.lib.stride_tricks.sliding_window_view(padded, (s + 1, s + 1))[::s, ::s]
        counts.append(int((boxes.any(axis=(2, 3)) & ~boxes.all(axis=(2, 3))).sum()))
    return np.asarray(counts, dtype=np.int64)


def box_counting_dimension(
    image: Bool[ArrayLike, "h w"],
    sizes: ArrayLike | None = None,
    *,
    boundary: bool = True,
    min_boxes: int = 4,
) -> BoxCounting:
    """The box-counting dimension of the boundary of a 2-D boolean image (``boundary=False``: of the set
    of True cells itself).

    D = slope of log N(s) vs log(1/s) (least squares), N(s) = #(closed s × s boxes the boundary crosses,
    ``boundary_box_counts``). A straight boundary gives 1, one that fills the plane 2, none NaN.

    Args:
        image: (h, w) booleans, e.g. ``res.status[0, :, :, 0] == 0`` (trainable) over a 2-D grid.
        sizes: box sizes in cells; default 1, 2, 4, … while a box fits ``min_boxes`` times along the
            shorter side (s ≤ min(h, w) / min_boxes), so the largest boxes do not saturate the count.
        boundary: count boxes the boundary crosses; False: boxes holding a True cell (``box_counts``).
        min_boxes: see ``sizes``.

    Returns:
        ``BoxCounting(dimension, sizes, counts, intercept, cells)``.
    """
    a = np.asarray(image, dtype=bool)
    if a.ndim != 2:
        raise ValueError(f"image must be 2-D, got shape {a.shape}")
    mask = boundary_cells(a) if boundary else a
    if sizes is None:
        top = max(1, min(a.shape) // max(int(min_boxes), 1))
        sizes = 2 ** np.arange(int(np.floor(np.log2(top))) + 1)
    sizes = np.asarray(sizes, dtype=int)
    counts = boundary_box_counts(a, sizes) if boundary else box_counts(a, sizes)
    ok = counts > 0
    if ok.sum() < 2:
        return BoxCounting(float("nan"), sizes, counts, float("nan"), int(mask.sum()))
    slope, intercept = np.polyfit(np.log(1.0 / sizes[ok]), np.log(counts[ok]), 1)
    return BoxCounting(float(slope), sizes, counts, float(intercept), int(mask.sum()))


def boundary_point(image: Bool[ArrayLike, "h w"], near: tuple[float, float] | None = None) -> tuple[int, int]:
    """The boundary cell (row, column) nearest to ``near`` (default: the image's centre), where to
    centre the next zoom; a ValueError if the image has no boundary."""
    mask = boundary_cells(image)
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        raise ValueError("the image has no boundary (all cells equal)")
    if near is None:
        near = ((mask.shape[0] - 1) / 2, (mask.shape[1] - 1) / 2)
    k = int(np.argmin((rows - near[0]) ** 2 + (cols - near[1]) ** 2))
    return int(rows[k]), int(cols[k])


__all__ = ["BoxCounting", "box_counting_dimension", "box_counts", "boundary_box_counts", "boundary_cells", "boundary_point"]

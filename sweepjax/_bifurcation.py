"""The data side of a bifurcation diagram: the values a record takes late in each run (Kalra et al.'s UV-model
figures: late loss or sharpness against η shows a fixed point, then period 2, 4, …, chaos, divergence).

``late_values(result, "loss", fraction=0.2)`` is every run's last ⌈fraction · n_record⌉ records, shaped
(*result.shape, k); ``sj.plot.bifurcation`` scatters them against η.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ._result import SweepResult


def num_late(n_record: int, fraction: float) -> int:
    """k = ⌈fraction · n_record⌉ (at least 1): how many of the last records count as late."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
        raise ValueError(f"fraction must be a number in (0, 1], got {fraction!r}")
    return max(1, min(n_record, math.ceil(fraction * n_record - 1e-9)))


def record_array(result: SweepResult, quantity: str | np.ndarray) -> tuple[np.ndarray, str]:
    """(the scalar record as a float array (*result.shape, n_record), its label) for a name or an array."""
    shape = (*result.shape, len(result.steps))
    if isinstance(quantity, str):
        if quantity not in result.records:
            raise ValueError(f"unknown record {quantity!r}; known records {sorted(result.records)}")
        values, label = np.asarray(result.records[quantity], dtype=float), quantity
    else:
        values, label = np.asarray(quantity, dtype=float), ""
    if values.shape != shape:
        hint = " (a record with trailing dims: pass one component, result[name][..., 0])" if values.ndim > len(shape) else ""
        raise ValueError(f"late values need a scalar record shaped (*result.shape, n_record) = {shape}, got {values.shape}{hint}")
    return values, label


def late_values(result: SweepResult, quantity: str | np.ndarray = "loss", fraction: float = 0.2) -> np.ndarray:
    """The last k = ⌈fraction · n_record⌉ records of a scalar record, per run: (*result.shape, k).

    Args:
        result: a ``SweepResult``.
        quantity: a record name (``"loss"``, ``"sharpness"``, an observable) or an array shaped like one,
            (*result.shape, n_record) (e.g. ``result["sharpness"] * result.lrs[:, None, None] / 2``).
        fraction: the late part of the records, in (0, 1]; the record at T is always included.

    A diverged run's records are NaN from its divergence on, so its late values are NaN.
    """
    values, _ = record_array(result, quantity)
    return values[..., -num_late(values.shape[-1], fraction) :]

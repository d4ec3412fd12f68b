"""SweepResult: labelled host-side arrays of a sweep, shaped (lr, init[, record])."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

import numpy as np


class Status(enum.IntEnum):
    """Per-run outcome code (stored as int8)."""

    OK = 0  #: ran its whole budget with finite loss below the divergence threshold
    DIVERGED = 1  #: loss became non-finite or exceeded the threshold; parameters frozen there


@dataclasses.dataclass(frozen=True, eq=False)
class SweepResult:
    """Everything a sweep measured, as NumPy arrays with the grid as leading axes.

    Attributes:
        lrs: (n_lr,) step sizes η.
        steps: (n_record,) the step t of each record (records are taken at θ_t, t = 0, k, …, T).
        inits: the initial points, a pytree of arrays with leading axis n_init.
        records: name -> (n_lr, n_init, n_record): ``loss``, ``sharpness``, ``sharpness_residual``
            (when tracked) and each observable; NaN past a run's end (divergence or step budget).
        final: name -> (n_lr, n_init): the same quantities at each run's final parameters
            (NaN for diverged runs).
        final_params: pytree of arrays with leading axes (n_lr, n_init): parameters where each run
            stopped (frozen at divergence).
        status: (n_lr, n_init) int8 ``Status`` codes.
        diverged_step: (n_lr, n_init) float, the step at which a run diverged, NaN if it did not.
        num_steps: (n_lr, n_init) int, each run's step budget.
        metadata: JSON-able dict: problem, settings, versions.
    """

    lrs: np.ndarray
    steps: np.ndarray
    inits: Any
    records: dict[str, np.ndarray]
    final: dict[str, np.ndarray]
    final_params: Any
    status: np.ndarray
    diverged_step: np.ndarray
    num_steps: np.ndarray
    metadata: dict[str, Any]

    @property
    def shape(self) -> tuple[int, int]:
        """(n_lr, n_init)."""
        return self.status.shape

    @property
    def diverged(self) -> np.ndarray:
        """(n_lr, n_init) bool mask of diverged runs."""
        return self.status == Status.DIVERGED

    def __getitem__(self, name: str) -> np.ndarray:
        """``res["loss"]`` is a record array, ``res["final_loss"]`` a final array."""
        if name in self.records:
            return self.records[name]
        if name.startswith("final_") and name[len("final_") :] in self.final:
            return self.final[name[len("final_") :]]
        if name == "initial" or name.startswith("initial_"):
            key = name[len("initial_") :]
            if key in self.records:
                return self.records[key][..., 0]
        raise KeyError(f"{name!r}: known records {sorted(self.records)}, finals {['final_' + k for k in self.final]}")

    def __repr__(self) -> str:
        n_lr, n_init = self.shape
        return (
            f"SweepResult(n_lr={n_lr}, n_init={n_init}, n_record={self.steps.size}, "
            f"records={sorted(self.records)}, diverged={int(self.diverged.sum())}/{n_lr * n_init})"
        )

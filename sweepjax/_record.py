"""Record: what a sweep measures, and how often."""

from __future__ import annotations

from typing import Literal

import equinox as eqx

from ._curvature import AbstractEigensolver, DenseEigh, Lanczos

#: problems with at most this many parameters get the exact DenseEigh oracle under ``"auto"``
DENSE_MAX_PARAMS = 16


class Record(eqx.Module):
    """Measure loss, sharpness and observables at θ_t for t = 0, every, 2·every, …, num_steps.

    Args:
        every: record cadence k (``num_steps`` must be a multiple of it).
        sharpness: an eigensolver for λ_max(∇²f), ``None`` to skip it, or ``"auto"``: exact
            ``DenseEigh`` for ≤ 16 parameters, else ``Lanczos(order=10)``, warm-started.
        observables: record the problem's observables too.
    """

    every: int = eqx.field(static=True, default=1)
    sharpness: AbstractEigensolver | Literal["auto"] | None = eqx.field(static=True, default="auto")
    observables: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1:
            raise ValueError(f"Record(every=...) must be a positive int, got {self.every!r}")
        if not (self.sharpness is None or self.sharpness == "auto" or isinstance(self.sharpness, AbstractEigensolver)):
            raise TypeError(
                "Record(sharpness=...) must be an eigensolver (PowerIteration, Lanczos, DenseEigh), 'auto' or None, "
                f"got {self.sharpness!r}"
            )
        if not isinstance(self.observables, bool):
            raise TypeError(f"Record(observables=...) must be a bool, got {self.observables!r}")

    def solver(self, num_params: int) -> AbstractEigensolver | None:
        """The eigensolver to use for a problem with ``num_params`` parameters."""
        if self.sharpness == "auto":
            return DenseEigh() if num_params <= DENSE_MAX_PARAMS else Lanczos(order=10)
        return self.sharpness

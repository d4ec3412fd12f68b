"""Record: what a sweep measures, and how often."""

from __future__ import annotations

import functools
from typing import Any, Literal

import equinox as eqx
import numpy as np

from ._curvature import AbstractEigensolver, DenseEigh, Lanczos
from .measures._base import AbstractMeasure
from .measures._hessian import Sharpness

#: problems with at most this many parameters get the exact DenseEigh oracle under ``"auto"``
DENSE_MAX_PARAMS = 16


def _as_float_dtype(value: Any) -> np.dtype | None:
    """None, or float32/float64 as a NumPy dtype (hashable, so it can be a static field)."""
    if value is None:
        return None
    message = f"Record(sharpness_dtype=...) must be None, float32 or float64, got {value!r}"
    try:
        dtype = np.dtype(value)
    except TypeError:
        raise ValueError(message) from None
    if dtype != np.float32 and dtype != np.float64:  # (``in`` would match np.dtype(None) == float64)
        raise ValueError(message)
    return dtype


@functools.lru_cache(maxsize=64)
def _sharpness(solver: AbstractEigensolver) -> Sharpness:
    """``Sharpness(solver)``, made once per solver (a Module's construction is a host cost of every small sweep)."""
    return Sharpness(solver)


class Record(eqx.Module):
    """Measure loss, sharpness and observables at θ_t for t = 0, every, 2·every, …, num_steps.

    Args:
        every: record cadence k (``num_steps`` must be a multiple of it).
        sharpness: an eigensolver for λ_max(∇²f), ``None`` to skip it, or ``"auto"``: exact
            ``DenseEigh`` for ≤ 16 parameters, else ``Lanczos(order=10)``, warm-started. Cost: an
            HVP is about two gradients, so ``Lanczos(order=m)`` every k steps costs ≈ 1 + 2m/k times
            GD alone; each estimate starts from the previous top eigenvector, so a small order
            (m = 3) tracks λ_max to ~1e-3 in stable runs once past the first records, but only to
            ~10% at the edge of stability, where the top direction turns (benchmarks/README.md).
        observables: record the problem's observables too.
        sharpness_dtype: ``None`` (default) computes the Hessian-vector products and the eigensolver
            in the training dtype; ``jnp.float64`` computes them, and every measurement of ``measures``,
            in float64 at the (float32) iterates, without changing the training arithmetic (x64 is
            enabled for the call). Their records then come back as float64.
        measures: more measurements (``sweepjax.measures``), each with its own cadence ``every`` (a
            multiple of ``every``; NaN at the records in between): top-k eigenvalues, preconditioned and
            batch sharpness, Hessian trace and spectral density, gradient norm and noise scale, NTK.
            E.g. ``Record(every=10, measures=[sj.measures.TopEigenvalues(k=5), sj.measures.SpectralDensity(every=100)])``.
    """

    every: int = eqx.field(static=True, default=1)
    sharpness: AbstractEigensolver | Literal["auto"] | None = eqx.field(static=True, default="auto")
    observables: bool = eqx.field(static=True, default=True)
    sharpness_dtype: Any = eqx.field(static=True, default=None, converter=_as_float_dtype)
    measures: tuple[AbstractMeasure, ...] = eqx.field(static=True, default=(), converter=tuple)

    def __check_init__(self):
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1:
            raise ValueError(f"Record(every=...) must be a positive int, got {self.every!r}")
        if not (self.sharpness is None or self.sharpness == "auto" or isinstance(self.sharpness, AbstractEigensolver)):
            raise TypeError(
                "Record(sharpness=...) must be an eigensolver (PowerIteration, Lanczos, DenseEigh), 'auto' or None, "
                f"got {self.sharpness!r}"
            )
        for m in self.measures:
            if not isinstance(m, AbstractMeasure):
                raise TypeError(f"Record(measures=...) must hold measurements (sweepjax.measures), got {m!r}")
            if m.every is not None and m.every % self.every:
                raise ValueError(
                    f"Record(measures=...): {type(m).__name__}(every={m.every}) is not a multiple of every={self.every}"
                )
        if self.sharpness_dtype is not None and self.sharpness is None and not self.measures:
            raise ValueError("Record(sharpness_dtype=...) needs a sharpness solver or measures (sharpness is None)")
        if not isinstance(self.observables, bool):
            raise TypeError(f"Record(observables=...) must be a bool, got {self.observables!r}")

    def layout(
        self, observables: dict[str, tuple[int, ...]], rule_observables: dict[str, tuple[int, ...]], num_params: int,
        edge: bool = False,
    ) -> dict[str, tuple[int, ...]]:  # fmt: skip
        """The records a run makes (as ``Trajectory.measure`` makes them), name -> shape of one value: ``loss``;
        with ``observables``, the problem's and the update rule's (shapes as they return them); the rule's
        stability ``edge`` when it records one; then each measurement's (``sharpness`` and, for an iterative
        solver, ``sharpness_residual`` first)."""
        out = {"loss": ()}
        if self.observables:
            out.update(observables)
            out.update(rule_observables)
        if edge:
            out["edge"] = ()
        for m in self.measurements(num_params):
            for name, shape in m.shapes(num_params).items():
                if name in out:
                    raise ValueError(f"Record(measures=...): {type(m).__name__} records {name!r}, which is already recorded")
                out[name] = tuple(shape)
        return out

    def solver(self, num_params: int) -> AbstractEigensolver | None:
        """The eigensolver to use for a problem with ``num_params`` parameters."""
        if self.sharpness == "auto":
            return DenseEigh() if num_params <= DENSE_MAX_PARAMS else Lanczos(order=10)
        return self.sharpness

    def measurements(self, num_params: int) -> tuple[AbstractMeasure, ...]:
        """What a run measures at a record: ``Sharpness(solver)`` (unless ``sharpness=None``), then ``measures``."""
        solver = self.solver(num_params)
        return ((_sharpness(solver),) if solver is not None else ()) + self.measures

    def dims(self, num_params: int) -> dict[str, tuple[str, ...]]:
        """record name -> the names of the dims of one value, where a measurement names them (``eig``, ``node``)."""
        return {k: v for m in self.measurements(num_params) for k, v in m.dims().items()}

"""Boundary criteria: per-run booleans of a SweepResult (did it diverge, reach the edge of stability,
catapult, end below a level), named and checked against what a sweep records before it runs."""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._phases import Phase, classify, phase_rules
from ._record import Record
from ._result import SweepResult
from .problems._base import AbstractProblem


@dataclasses.dataclass(frozen=True, eq=False)
class Criterion:
    """A named predicate on a sweep: ``criterion(result)`` -> bool array shaped like the grid.

    The grid is ``result.shape``: (n_lr, n_init), or (n_lr, *axis sizes, n_init) for a sweep with named
    ``axes``; every criterion here is evaluated run by run, so it works on any grid.

    Build one with the constructors in ``sweepjax.criteria``; any plain callable
    ``SweepResult -> bool array`` works wherever a criterion is expected.
    """

    name: str
    fn: Callable[[SweepResult], np.ndarray]
    params: tuple[tuple[str, Any], ...] = ()
    needs_sharpness: bool = False  #: the sweep must record ``sharpness``
    #: the names it reads as ``result[name]`` would (``"loss"``, ``"final_loss"``, ``"initial_loss"``),
    #: checked against what the sweep records before ``find_boundary`` runs one
    reads: tuple[str, ...] = ()

    def __call__(self, result: SweepResult) -> np.ndarray:
        return self.fn(result)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params)
        return f"criteria.{self.name}({args})"


def diverges() -> Criterion:
    """The run diverged (``status`` DIVERGED)."""
    return Criterion("diverges", lambda res: np.asarray(res.diverged))


def eos(**thresholds) -> Criterion:
    """``classify``'s edge-of-stability rule holds (not diverged), whatever the catapult rule says.

    ``thresholds`` are ``classify``'s keywords (``curvature``, ``edge``, ``eos_tol``, ...). By default the
    edge is the update rule's own where the sweep recorded it (``(2 + 2β)/η`` for momentum β, Adam's on the
    preconditioned sharpness, ...; see ``classify``), else 2/η.
    """
    _check_thresholds(thresholds)
    return Criterion(
        "eos",
        lambda res: phase_rules(res, **thresholds)[Phase.EOS],
        tuple(thresholds.items()),
        _curv(thresholds),
        _phase_reads(thresholds),
    )


def catapults(**thresholds) -> Criterion:
    """``classify`` labels the run CATAPULT; ``thresholds`` are ``classify``'s keywords."""
    _check_thresholds(thresholds)
    return Criterion(
        "catapults",
        lambda res: classify(res, **thresholds) == Phase.CATAPULT,
        tuple(thresholds.items()),
        _curv(thresholds),
        _phase_reads(thresholds),
    )


def is_phase(phase: Phase | int, **thresholds) -> Criterion:
    """``classify`` labels the run ``phase``; ``thresholds`` are ``classify``'s keywords."""
    phase = Phase(phase)
    _check_thresholds(thresholds)
    return Criterion(
        "is_phase",
        lambda res: classify(res, **thresholds) == phase,
        (("phase", phase), *thresholds.items()),
        _curv(thresholds),
        _phase_reads(thresholds),
    )


def below(name: str, level: float, *, diverged: bool = False) -> Criterion:
    """The final value of record ``name`` is below ``level``; diverged runs count as ``diverged``.

    ``name`` is a record (its final value: ``"b"``, ``"loss"``) or any per-run name ``result[name]``
    accepts (``"final_loss"``, ``"initial_loss"``). E.g. ``below("b", -0.01)``: a threshold neuron's
    bias was learned. A NaN value of a run that did not diverge counts as False.
    """
    _check_level(name, level, diverged)
    return Criterion(
        "below",
        lambda res: _compare(res, name, np.less, level, diverged),
        (("name", name), ("level", level), ("diverged", diverged)),
        reads=(name,),
    )


def above(name: str, level: float, *, diverged: bool = False) -> Criterion:
    """The final value of record ``name`` is above ``level``; diverged runs count as ``diverged``.

    ``name`` as in ``below``. E.g. ``above("loss", 1.0, diverged=True)`` (or ``"final_loss"``): the
    run did not get below loss 1. A NaN value of a run that did not diverge counts as False.
    """
    _check_level(name, level, diverged)
    return Criterion(
        "above",
        lambda res: _compare(res, name, np.greater, level, diverged),
        (("name", name), ("level", level), ("diverged", diverged)),
        reads=(name,),
    )


def _per_run(res: SweepResult, name: str) -> np.ndarray:
    """The per-run value of ``name`` on the grid: a record's final value, or ``res[name]`` (``final_x``, ``initial_x``)."""
    if name in res.final:
        return res.final[name]
    try:
        value = res[name]
    except KeyError:
        value = None
    if value is None or np.shape(value) != tuple(res.shape):
        raise ValueError(
            f"criterion record {name!r} is not in the result (records: {sorted(res.records)}, each also as "
            "'final_<name>' or 'initial_<name>')"
        )
    return value


def _compare(res: SweepResult, name: str, op, level: float, diverged: bool) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        out = op(np.asarray(_per_run(res, name), dtype=float), level)
    return np.where(res.diverged, diverged, out)


def _check_level(name, level, diverged) -> None:
    if not isinstance(name, str):
        raise ValueError(f"name must be a record name (str), got {name!r}")
    if isinstance(level, bool) or not isinstance(level, numbers.Real) or math.isnan(level):
        raise ValueError(f"level must be a number, got {level!r}")
    if not isinstance(diverged, bool):
        raise ValueError(f"diverged must be a bool, got {diverged!r}")


_THRESHOLDS = ("curvature", "edge", "eos_tol", "window", "rise_tol", "catapult_factor", "lazy_tol")


def _curv(thresholds: dict) -> bool:
    """Whether the sweep should record sharpness: the curvature is it, or (None) the rule's, sharpness for GD."""
    return thresholds.get("curvature") in (None, "sharpness")


def _phase_reads(thresholds: dict) -> tuple[str, ...]:
    """The records it reads (curvature None: the one the rule's edge bounds, known only from the result)."""
    curvature = thresholds.get("curvature")
    return ("loss", curvature) if isinstance(curvature, str) else ("loss",)


def recorded_names(problem: AbstractProblem, inits, record: Record, rule=None) -> set[str] | None:
    """The record names a sweep of ``problem`` from ``inits`` with ``record`` (and ``rule``) will produce
    (None: unknown), as ``Record.layout`` gives them.

    Traced abstractly (``jax.eval_shape`` of the observables on one init), so nothing is compiled.
    """
    from ._config import rule_observables
    from ._rules import rule_from
    from ._trajectory import records_edge

    one = jax.tree.map(lambda a: jnp.asarray(a[0]), inits)
    try:
        observables = jax.eval_shape(problem.observables, one) if record.observables else {}
        rule = rule_from(None, rule)
        dtype = jax.tree.leaves(one)[0].dtype
        of_rule = rule_observables(rule, problem, one, dtype) if record.observables else {}
    except Exception:  # a broken problem or rule: the sweep reports it, with its own clear error
        return None
    num_params = sum(int(np.size(x)) for x in jax.tree.leaves(one))
    return set(record.layout(dict(observables), of_rule, num_params, records_edge(rule, dtype)))


def readable(name: str, recorded: set[str]) -> bool:
    """Whether ``result[name]`` (or a record's final value) will exist given the recorded names."""
    return name in recorded or any(name.startswith(p) and name[len(p) :] in recorded for p in ("final_", "initial_"))


def describe(criterion) -> str:
    if isinstance(criterion, Criterion):
        return repr(criterion)
    return getattr(criterion, "__qualname__", None) or repr(criterion)


def _check_thresholds(thresholds: dict) -> None:
    unknown = sorted(set(thresholds) - set(_THRESHOLDS))
    if unknown:
        raise ValueError(f"unknown classify thresholds {unknown}; known: {list(_THRESHOLDS)}")


#: criteria usable by name in ``find_boundary`` (each a constructor taking keyword thresholds)
REGISTRY: dict[str, Callable[..., Criterion]] = {"diverges": diverges, "eos": eos, "catapults": catapults}

criteria = types.SimpleNamespace(
    Criterion=Criterion,
    REGISTRY=REGISTRY,
    diverges=diverges,
    eos=eos,
    catapults=catapults,
    is_phase=is_phase,
    below=below,
    above=above,
)
criteria.__doc__ = """Boundary criteria: ``diverges()``, ``eos(**thresholds)``, ``catapults(**thresholds)``,
``is_phase(phase, **thresholds)``, ``below(name, level)``, ``above(name, level)``; ``REGISTRY`` maps the
names usable as strings in ``find_boundary`` to their constructors."""


def resolve(criterion) -> Callable[[SweepResult], np.ndarray]:
    if isinstance(criterion, str):
        if criterion not in REGISTRY:
            needs_args = criterion in ("below", "above")
            hint = f" (it needs arguments: criteria.{criterion}(name, level))" if needs_args else ""
            raise ValueError(f"unknown criterion {criterion!r}{hint}; known names: {sorted(REGISTRY)}")
        return REGISTRY[criterion]()
    if not callable(criterion):
        raise ValueError(f"criterion must be a name in {sorted(REGISTRY)} or a callable SweepResult -> bool, got {criterion!r}")
    return criterion

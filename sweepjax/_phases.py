"""Phase classification of a sweep's runs: diverged, edge of stability, catapult, lazy, stable.

Pure post-processing of a ``SweepResult`` on the host (NumPy); nothing is re-run.
"""

from __future__ import annotations

import enum
import math
import numbers
import warnings

import numpy as np

from ._result import SweepResult


class Phase(enum.IntEnum):
    """Per-run phase code (``classify`` returns them as int8).

    When several rules hold, the first in the order DIVERGED, CATAPULT, EOS, LAZY wins;
    a run matching none is STABLE.
    """

    STABLE = 0  #: gradient-flow regime: not diverged, curvature moved but no EoS/catapult signature
    LAZY = 1  #: curvature barely moved: |κ_T − κ_0| ≤ lazy_tol·|κ_0| (kernel regime; every quadratic)
    EOS = 2  #: late curvature reached the stability edge (2/η for GD) within eos_tol, and the loss was non-monotone
    CATAPULT = 3  #: loss spiked ≥ catapult_factor × its initial value, then fell below it; κ_T < κ_0
    DIVERGED = 4  #: status DIVERGED (loss non-finite or past the divergence threshold)


class SparseRecordWarning(UserWarning):
    """``classify`` saw runs that look like missed catapults: records too far apart to see the spike."""


def _check_number(name: str, value, *, low: float, low_inclusive: bool, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    ok_low = value >= low if low_inclusive else value > low
    if not ok_low or value > high:
        lo_br = "[" if low_inclusive else "("
        raise ValueError(f"{name} must lie in {lo_br}{low}, {high}], got {value!r}")
    return float(value)


def _lr_grid(result: SweepResult) -> np.ndarray:
    """Each run's step size on the whole grid (n_lr, *axis sizes, n_init), from a shared (n_lr,) column or
    per-init (n_lr, n_init) columns (broadcast as (n_lr, 1, …, 1, n_init or 1)), or a step size per run."""
    lrs = np.asarray(result.lrs, dtype=float)
    shape = tuple(result.shape)
    if lrs.ndim == len(shape) > 2:
        return lrs
    return np.broadcast_to(lrs.reshape(lrs.shape[0], *[1] * (len(shape) - 2), -1), shape)


def _nan_reduce(fn, a: np.ndarray, axis: int = -1) -> np.ndarray:
    """nanmax/nanmin without the all-NaN warning (all-NaN slices give NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(a, axis=axis)


#: how to record each curvature an update rule's edge bounds
_HOW_TO_RECORD = {
    "sharpness": "Record(sharpness=...)",
    "preconditioned_sharpness": "Record(measures=[sj.measures.PreconditionedSharpness()])",
    "batch_sharpness": "Record(measures=[sj.measures.BatchSharpness()])",
}


def _record(result: SweepResult, name: str) -> np.ndarray:
    if name not in result.records:
        how = f"record it with {_HOW_TO_RECORD[name]}" if name in _HOW_TO_RECORD else "record it"
        raise ValueError(
            f"curvature={name!r} is not a record of this result (records: {sorted(result.records)}); "
            f"{how}, or name another record"
        )
    return np.asarray(result.records[name], dtype=float)


def _last_finite(a: np.ndarray) -> np.ndarray:
    """Each run's last finite record (NaN: none)."""
    finite = np.isfinite(a)
    last = a.shape[-1] - 1 - np.argmax(finite[..., ::-1], axis=-1)
    out = np.take_along_axis(a, last[..., None], axis=-1)[..., 0]
    return np.where(finite.any(axis=-1), out, np.nan)


def _resolve_edge(result: SweepResult, curvature: str | None, edge: float | None):
    """(the curvature record's name, the number edge (edge/η) or None, the recorded edge: (per record, at the
    final parameters) or None).

    ``curvature`` None: the record the sweep's rule's edge bounds (``metadata["edge_of"]``, else sharpness).
    ``edge`` None: the recorded ``"edge"`` (``rule.stability_edge``) when it bounds that record, else 2/η."""
    edge_of = result.metadata.get("edge_of", "sharpness")
    if curvature is None:
        curvature = edge_of
    if not isinstance(curvature, str):
        raise ValueError(f"curvature must be a record name (str) or None, got {curvature!r}")
    if edge is not None:
        return curvature, _check_number("edge", edge, low=0.0, low_inclusive=False), None
    if "edge" not in result.records or curvature != edge_of:
        return curvature, 2.0, None
    rec = np.asarray(result.records["edge"], dtype=float)
    if rec.shape[:-1] != tuple(result.shape) or rec.shape[-1] != np.size(result.steps):
        want = (*result.shape, np.size(result.steps))
        raise ValueError(f"the 'edge' record must have shape (*grid, n_record)={want}, got {rec.shape}")
    final = result.final.get("edge")
    final = _last_finite(rec) if final is None else np.asarray(final, dtype=float)
    return curvature, None, (rec, final)


def phase_rules(
    result: SweepResult,
    *,
    curvature: str | None = None,
    edge: float | None = None,
    eos_tol: float = 0.05,
    window: float = 0.1,
    rise_tol: float = 1e-5,
    catapult_factor: float = 2.0,
    lazy_tol: float | None = 0.05,
) -> dict[Phase, np.ndarray]:
    """Each rule of ``classify`` on its own, as bool masks shaped like the grid (not mutually exclusive).

    Keys DIVERGED, EOS, CATAPULT, LAZY; the non-diverged rules are False on diverged runs.
    Arguments are those of ``classify``.
    """
    if not isinstance(result, SweepResult):
        raise TypeError(f"result must be a SweepResult, got {type(result).__name__}")
    curvature, edge, recorded = _resolve_edge(result, curvature, edge)
    eos_tol = _check_number("eos_tol", eos_tol, low=0.0, low_inclusive=True, high=1.0)
    window = _check_number("window", window, low=0.0, low_inclusive=True, high=1.0)
    rise_tol = _check_number("rise_tol", rise_tol, low=0.0, low_inclusive=True)
    catapult_factor = _check_number("catapult_factor", catapult_factor, low=0.0, low_inclusive=False)
    if lazy_tol is not None:
        lazy_tol = _check_number("lazy_tol", lazy_tol, low=0.0, low_inclusive=True)
    if "loss" not in result.records:
        raise ValueError(f"result has no 'loss' record (records: {sorted(result.records)})")

    diverged = np.asarray(result.status) == 1
    alive = ~diverged
    lrs = _lr_grid(result)
    loss = np.asarray(result.records["loss"], dtype=float)
    curv = _record(result, curvature)
    final_loss = np.asarray(result.final.get("loss", _nan_reduce(np.nanmax, loss[..., -1:])), dtype=float)
    final_curv = np.asarray(result.final.get(curvature, np.full(result.shape, np.nan)), dtype=float)
    loss0, curv0 = loss[..., 0], curv[..., 0]

    with np.errstate(invalid="ignore"):
        # late window: records at t ≥ (1 − window)·budget, plus the curvature at the final parameters
        budget = np.asarray(result.num_steps, dtype=float)[..., None]
        steps = np.asarray(result.steps, dtype=float)
        late_mask = (steps >= (1.0 - window) * budget) & (steps <= budget)
        rises = np.diff(loss, axis=-1) > rise_tol * np.abs(loss[..., :-1])
        non_monotone = np.any(rises, axis=-1)
        if recorded is None:
            late = _nan_reduce(np.nanmax, np.where(late_mask, curv, np.nan))
            late = np.fmax(late, final_curv)
            at_edge = late >= (1.0 - eos_tol) * edge / lrs
        else:  # record by record against the recorded edge (a schedule's moves)
            rec, final_edge = recorded
            at_edge = np.any(late_mask & (curv >= (1.0 - eos_tol) * rec), axis=-1)
            at_edge |= final_curv >= (1.0 - eos_tol) * final_edge
        eos = at_edge & non_monotone

        max_loss = np.fmax(_nan_reduce(np.nanmax, loss), final_loss)
        catapult = (max_loss >= catapult_factor * loss0) & (final_loss < loss0) & (final_curv < curv0)

        if lazy_tol is None:
            lazy = np.zeros(result.shape, bool)
        else:
            lazy = np.abs(final_curv - curv0) <= lazy_tol * np.abs(curv0)

    return {
        Phase.DIVERGED: diverged,
        Phase.CATAPULT: catapult & alive,
        Phase.EOS: eos & alive,
        Phase.LAZY: lazy & alive,
    }


def classify(
    result: SweepResult,
    *,
    curvature: str | None = None,
    edge: float | None = None,
    eos_tol: float = 0.05,
    window: float = 0.1,
    rise_tol: float = 1e-5,
    catapult_factor: float = 2.0,
    lazy_tol: float | None = 0.05,
) -> np.ndarray:
    r"""Label every run of a sweep with a ``Phase`` code, from its records alone.

    With κ the ``curvature`` record (κ_0 its first record, κ_T its value at the final
    parameters) and L the loss, the rules, in order of precedence, are

    - DIVERGED: ``status`` is DIVERGED;
    - CATAPULT: max_t L_t ≥ catapult_factor·L_0, L_T < L_0 and κ_T < κ_0;
    - EOS: κ at some record of the late window (t ≥ (1 − window)·budget), or κ_T,
      ≥ (1 − eos_tol)·E there, and the loss record rose somewhere
      (L_{t+k} − L_t > rise_tol·|L_t| for consecutive records). E is the stability edge: edge/η, or
      by default the update rule's own (``rule.stability_edge``: (2 + 2β)/η for momentum β,
      (2 + 2β₁)/((1 − β₁)η) on the preconditioned sharpness for Adam, 2/η_t under a schedule) where
      the sweep recorded it (the ``"edge"`` record), else 2/η;
    - LAZY: |κ_T − κ_0| ≤ lazy_tol·|κ_0|;
    - STABLE otherwise (gradient-flow regime).

    NaN records (past a run's budget or divergence) are ignored; a rule that needs a NaN value
    is False, so a non-diverged run with NaN curvature ends up STABLE. Step sizes may be a
    shared (n_lr,) column or per-init (n_lr, n_init). Every run is classified on its own, so a grid
    with named axes (``res.dims`` = ("lr", *axes, "init")) gets the codes on that whole grid, the same
    as classifying each ``res.isel(...)`` slice. The loss rule sees only the recorded steps:
    record with ``every`` = 1 (or odd) to see period-2 oscillations. The catapult rule assumes
    a non-negative loss.

    A catapult's loss spike lasts a few steps (the unstable mode grows by |1 − ηκ_0| per step
    until κ falls below the edge E), so records ``every`` > 1 steps apart can miss it. Hence a
    ``SparseRecordWarning`` when records are more than one step apart and some run not labelled
    CATAPULT or DIVERGED has the catapult's other signature: it started unstable (κ_0 > E),
    and ended with L_T < L_0 and κ_T < κ_0. The message gives the first recorded step by which
    every such run's κ was back below E: the horizon to re-sweep with ``Record(every=1)``.

    Args:
        result: a ``SweepResult`` with a ``loss`` record and the ``curvature`` record.
        curvature: the record playing κ: ``"sharpness"`` (λ_max of the Hessian),
            ``"preconditioned_sharpness"``, ``"batch_sharpness"``, or any observable, e.g. an NTK
            eigenvalue ``"ntk"``. None (default): the record the sweep's rule's edge bounds
            (``result.metadata["edge_of"]``: preconditioned for Adam, RMSProp, Adagrad), else sharpness.
        edge: the stability edge is edge/η (2 for the Hessian sharpness; 8 for the NTK of a
            logistic loss, whose ℓ''(0) = 1/4). None (default): the recorded ``"edge"``, record by
            record, when the sweep recorded one and ``curvature`` is the record it bounds; else 2/η.
        eos_tol: relative tolerance below the edge E that still counts as at the edge.
        window: trailing fraction of each run's budget scanned for the late curvature
            (0: the final value only).
        rise_tol: relative loss increase between consecutive records that counts as non-monotone.
        catapult_factor: the spike a catapult needs, as a multiple of the initial loss.
        lazy_tol: relative curvature change that still counts as lazy; ``None`` disables LAZY
            (a quadratic, whose curvature never moves, is then STABLE).

    Returns:
        int8 array of ``Phase`` codes shaped like the grid, ``result.shape`` = (n_lr, *axis sizes, n_init).

    Example:
        ```python
        res = sj.sweep(sj.problems.ProductLoss("sqrt"), [0.25], jnp.array([[3.0, 4.0], [3.0, 6.0]]),
                       num_steps=1000)
        sj.classify(res)  # [[Phase.STABLE, Phase.EOS]]: gap 7 < 2/η = 8 < gap 27
        ```
    """
    rules = phase_rules(
        result, curvature=curvature, edge=edge, eos_tol=eos_tol, window=window, rise_tol=rise_tol,
        catapult_factor=catapult_factor, lazy_tol=lazy_tol,
    )  # fmt: skip
    codes = np.full(result.shape, Phase.STABLE, dtype=np.int8)
    for phase in (Phase.LAZY, Phase.EOS, Phase.CATAPULT, Phase.DIVERGED):  # lowest precedence first
        codes[rules[phase]] = phase
    _warn_if_catapults_missed(result, *_resolve_edge(result, curvature, edge), codes)
    return codes


def _warn_if_catapults_missed(result: SweepResult, curvature: str, edge: float | None, recorded, codes: np.ndarray) -> None:
    """Warn when records more than one step apart may hide catapults (see ``classify``); the edge is edge/η,
    or the recorded one (``recorded`` = (per record, final), when ``edge`` is None)."""
    steps = np.asarray(result.steps)
    spacing = int(np.max(np.diff(steps))) if steps.size > 1 else None
    if spacing is not None and spacing <= 1:
        return
    lrs = _lr_grid(result)
    loss = np.asarray(result.records["loss"], dtype=float)
    curv = np.asarray(result.records[curvature], dtype=float)
    final_loss = np.asarray(result.final.get("loss", np.full(result.shape, np.nan)), dtype=float)
    final_curv = np.asarray(result.final.get(curvature, np.full(result.shape, np.nan)), dtype=float)
    with np.errstate(invalid="ignore"):
        if recorded is None:
            unstable_start = lrs * curv[..., 0] > edge
            below = curv <= edge / lrs[..., None]
        else:
            unstable_start = curv[..., 0] > recorded[0][..., 0]
            below = curv <= recorded[0]
        suspect = (
            unstable_start & (final_loss < loss[..., 0]) & (final_curv < curv[..., 0])
            & (codes != Phase.CATAPULT) & (codes != Phase.DIVERGED)
        )  # fmt: skip
        n = int(suspect.sum())
        if not n:
            return
        # the catapult is over once κ is back below the edge: the first record where it is, over the suspects
        settled = np.where(below & suspect[..., None], steps, np.inf).min(axis=-1)
    horizon = int(np.max(np.where(np.isfinite(settled), settled, steps[-1])[suspect]))
    every = "one record (t = 0)" if spacing is None else f"records {spacing} steps apart"
    start = f"η·{curvature}_0 > {edge:g}" if recorded is None else f"{curvature}_0 > its recorded edge"
    warnings.warn(
        f"classify: {n} run(s) started above the stability edge ({start}) and ended lower "
        f"in loss and {curvature}, like a catapult, but with {every} no loss spike was recorded; "
        f"re-sweep them with Record(every=1) over the first ~{horizon} steps to see whether they catapult",
        SparseRecordWarning,
        stacklevel=3,  # the caller of classify
    )


def monotone_onset(result: SweepResult, *, record: str = "loss", rise_tol: float = 0.0) -> np.ndarray:
    r"""Per run, the first recorded step after which the ``record`` never rises again (EoS → stable).

    With L_0, L_1, … a run's finite records at steps t_0, t_1, … (NaN past its budget or
    divergence), the onset is t_j for the smallest j such that L_{k+1} ≤ L_k + rise_tol·|L_k| for
    every k ≥ j, provided at least one non-rising pair follows (j < last finite index). It is
    NaN if the record still rises at its last pair, has fewer than two finite values, or the run
    diverged; 0 for a run monotone from the start. Cai et al.'s large-η runs oscillate (EoS) and
    then decrease monotonically (the stable phase); this is the observed transition time τ.
    Record with ``every`` = 1 (or odd) to see period-2 oscillations.

    Returns:
        float array of steps shaped like the grid, ``result.shape``.

    Example:
        ```python
        sj.monotone_onset(res)  # [[120., 0.]]: the large-η run stabilises at t = 120
        ```
    """
    if not isinstance(result, SweepResult):
        raise TypeError(f"result must be a SweepResult, got {type(result).__name__}")
    if not isinstance(record, str) or record not in result.records:
        raise ValueError(f"record must name a record of this result ({sorted(result.records)}), got {record!r}")
    rise_tol = _check_number("rise_tol", rise_tol, low=0.0, low_inclusive=True)
    values = np.asarray(result.records[record], dtype=float)
    steps = np.asarray(result.steps, dtype=float)
    out = np.full(result.shape, np.nan)
    for idx in np.ndindex(*result.shape):
        finite = np.flatnonzero(np.isfinite(values[idx]))
        if result.status[idx] == 1 or finite.size < 2:
            continue
        v = values[idx][finite]
        with np.errstate(invalid="ignore"):
            rises = np.flatnonzero(v[1:] > v[:-1] + rise_tol * np.abs(v[:-1]))
        j = 0 if rises.size == 0 else rises[-1] + 1
        if j < v.size - 1:
            out[idx] = steps[finite[j]]
    return out

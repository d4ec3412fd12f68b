"""Boundary search: the critical step size (or value of any numeric axis) where a criterion flips, for
every init at once.

Each round is one ``sweep`` over a per-init (points, n_init) grid of step sizes (or of a named axis's
values, as a column per init) spaced inside each init's current bracket; the bracket then shrinks to the
neighbouring pair around the first flip. All rounds share one compiled shape after the first.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable

import jax
import numpy as np
from jaxtyping import ArrayLike, PyTree

from ._criteria import describe, readable, recorded_names, resolve
from ._record import Record
from ._result import SweepResult
from ._sweep import sweep
from .problems._base import AbstractProblem


@dataclasses.dataclass(frozen=True, eq=False)
class Boundary:
    """Where a criterion flips along η (or the ``along`` axis), per init (all arrays shaped (n_init,); with named
    ``axes``, per run slot: (*axis sizes, n_init)).

    Attributes:
        lr: the located value, η* (or, with ``along``, the axis's critical value): the midpoint of the
            final bracket, geometric √(lo·hi) with ``spacing="log"``, else (lo + hi)/2; NaN where not
            found. ``value`` is the same array.
        lo, hi: the final bracket, criterion(lo) ≠ criterion(hi); NaN where not found.
        width: relative width hi/lo − 1 (``"log"``), else hi − lo; NaN where not found.
        found: the criterion flipped on the first round's grid (at the initial hi end or inside).
        value_at_lo: the criterion at the lower end (True/False: which side is which; where not
            found, the value everywhere the search looked).
        brackets: (num_sweeps + 1, 2, *shape) the (lo, hi) bracket before the first and after
            each round (the initial bracket where not found).
        num_sweeps: number of ``sweep`` calls made (one per round).
        criterion: repr of the criterion.
    """

    lr: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    width: np.ndarray
    found: np.ndarray
    value_at_lo: np.ndarray
    brackets: np.ndarray
    num_sweeps: int
    criterion: str
    along: str = "lr"

    @property
    def value(self) -> np.ndarray:
        """The located value per init (``lr``, named for the classic search along η)."""
        return self.lr

    def __repr__(self) -> str:
        n = self.found.size
        size = f"n_init={n}" if self.found.ndim == 1 else f"shape={self.found.shape}"
        return (
            f"Boundary({size}, found={int(self.found.sum())}/{n}, "
            f"max_width={np.nanmax(self.width) if self.found.any() else float('nan'):.3g}, "
            f"num_sweeps={self.num_sweeps}, criterion={self.criterion}, along={self.along!r})"
        )


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _check_args(bracket, rounds, points, num_steps, horizon, tol, sweep_kwargs, along, spacing, lr):
    if not isinstance(along, str):
        raise TypeError(f"along must be 'lr' or the name of a numeric axis, got {along!r}")
    if spacing not in ("log", "linear"):
        raise ValueError(f"spacing must be 'log' or 'linear', got {spacing!r}")
    if along == "lr" and spacing != "log":
        raise ValueError("the search along η spaces its points geometrically: spacing must be 'log'")
    if along == "lr" and lr is not None:
        raise ValueError("lr= fixes η for a search along a named axis; along='lr' searches η itself")
    if along != "lr":
        if lr is None:
            raise ValueError(f"a search along {along!r} needs the step size it runs at: lr=...")
        if horizon is not None:
            raise ValueError("horizon (budgets ⌈horizon/η⌉) is for the search along η; give num_steps")
    try:
        lo, hi = bracket
        lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"bracket must be a pair (lo, hi) of values (or of arrays, per run), got {bracket!r}") from None
    finite = np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))
    if not finite or (spacing == "log" and not (np.all(lo > 0) and np.all(hi > 0))):
        raise ValueError(f"bracket ends must be positive and finite (finite with spacing='linear'), got {bracket!r}")
    if np.any(lo >= hi):
        raise ValueError(f"bracket must have lo < hi, got {bracket!r}")
    for name, value in (("rounds", rounds), ("points", points)):
        if not _is_int(value) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if num_steps is None and horizon is None:
        raise ValueError("give num_steps (steps per run) or horizon (budget ⌈horizon/η⌉ per run)")
    if num_steps is not None and (not _is_int(num_steps) or num_steps < 1):
        raise ValueError(f"num_steps must be a positive int, got {num_steps!r}")
    real = lambda x: isinstance(x, numbers.Real) and not isinstance(x, bool)  # noqa: E731
    if horizon is not None and not (real(horizon) and math.isfinite(horizon) and horizon > 0):
        raise ValueError(f"horizon must be a positive finite number, got {horizon!r}")
    if tol is not None and not (real(tol) and tol > 0):
        raise ValueError(f"tol must be a positive number or None, got {tol!r}")
    for name in ("lrs", "max_steps"):
        if name in sweep_kwargs:
            raise ValueError(f"{name} is set by find_boundary (use bracket / horizon), not a sweep keyword here")
    axes = sweep_kwargs.get("axes")
    if axes is not None and not (isinstance(axes, dict) and not axes) and along != "lr":
        names = sorted(map(str, axes)) if isinstance(axes, dict) else axes
        raise ValueError(
            f"a search along {along!r} takes no other named axes (axes: {names!r}); only the search along η "
            "runs over named axes (a bracket per run). Run one search per value of the others, with that value "
            "fixed in the rule (e.g. rule=sj.Optax(optax.adam, b1=0.9))"
        )
    return lo, hi


def find_boundary(
    problem: AbstractProblem,
    inits: PyTree[ArrayLike],
    bracket: tuple[float, float],
    criterion: str | Callable[[SweepResult], ArrayLike],
    *,
    num_steps: int | None = None,
    horizon: float | None = None,
    rounds: int = 8,
    points: int = 3,
    tol: float | None = None,
    record: Record | None = None,
    along: str = "lr",
    spacing: str = "log",
    lr: float | None = None,
    **sweep_kwargs,
) -> Boundary:
    r"""Locate, for every init at once, the critical step size η* where ``criterion`` flips (or, with
    ``along``, the critical value of any numeric axis: a hyperparameter of the rule or the problem).

    Assumes the criterion is monotone in η inside the bracket (e.g. ``"diverges"``: False below
    η*, True above; either direction is fine). Round r sweeps, for each init, ``points`` step
    sizes spaced geometrically strictly inside its bracket [lo, hi]:
    η_k = lo·(hi/lo)^{k/(points+1)}, k = 1..points (the first round also runs lo and hi). The
    bracket becomes the neighbouring pair around the first η whose criterion differs from the
    one at lo, so log(hi/lo) shrinks by a factor points + 1 per round (points = 1 is bisection).
    An init whose criterion agrees on the whole first-round grid (both ends and the interior
    points) is ``found=False``; where the criterion differs from its value at lo only inside the
    bracket (a window, e.g. ``"eos"`` on the Ahn mean model: the largest η settles more than
    ``eos_tol`` below 2/η), the search follows the first flip above lo.

    Args:
        problem: the objective, as for ``sweep``.
        inits: pytree of arrays with leading axis n_init.
        bracket: (lo, hi), 0 < lo < hi, the initial step-size bracket shared by all inits; or arrays
            broadcasting to (n_init,), or with ``axes`` to (*axis sizes, n_init): a bracket per run slot
            (e.g. (0.5/λ₀, 40/λ₀) with λ₀ each slot's initial sharpness, ``sj.initial_sharpness``).
        criterion: a name in ``criteria.REGISTRY`` (``"diverges"``, ``"eos"``, ``"catapults"``),
            a ``criteria`` constructor's result (``criteria.below("b", -0.01)``), or any callable
            ``SweepResult -> (n_lr, n_init) bool``.
        num_steps: steps per run; with ``horizon`` too, it caps the budgets.
        horizon: fixed time horizon η·T: each run gets ⌈horizon/η⌉ steps (the scan length is
            that of the bracket's lower end, so all rounds share one compiled shape).
        rounds: number of rounds (= sweeps); fewer when ``tol`` is met or nothing is found.
        points: step sizes per init per round.
        tol: stop once every found init has width ≤ tol (relative, hi/lo − 1, with ``spacing="log"``;
            else hi − lo). Widths below the
            sweep dtype's resolution (≈1e-7 in float32) mean nothing: each η is cast to it.
        record: what each sweep records; default ``Record()`` (sharpness "auto") for criteria that
            need the curvature (``"eos"``, ``"catapults"``), with the measurement the rule's stability edge
            bounds (Adam's ``PreconditionedSharpness``, SGD's ``BatchSharpness``), else ``Record(sharpness=None)``.
        along: ``"lr"`` (default) to search η; or the name of an axis a sweep takes (``"momentum"`` of
            ``sj.Optax(optax.sgd, momentum=0.0)``, ``"lr_out"`` of a grouped ``sj.GD``, a problem's
            ``"a"``), searched at the fixed step size ``lr``: each round sweeps a column of its values
            per init (``axes={along: (points, n_init)}``).
        spacing: ``"log"`` (geometric points; positive brackets; the default, and the only one for η) or
            ``"linear"`` (evenly spaced: brackets through 0, such as a momentum in [0, 1)).
        lr: the step size of a search along a named axis.
        **sweep_kwargs: passed to ``sweep`` (``dtype``, ``divergence_threshold``, ``chunk_size``, ``rule``,
            ...). ``axes`` (the search along η only): named axes searched all at once,
            each round one sweep with a step size per run; the ``Boundary`` arrays are then (*axis sizes, n_init).

    Returns:
        a ``Boundary``.

    Example:
        ```python
        quad = sj.problems.Objective(lambda th: 0.5 * th @ A @ th, params_like=jnp.zeros(3))
        b = sj.find_boundary(quad, inits, (0.01, 10.0), "diverges", num_steps=2000, rounds=6)
        b.lr  # ≈ 2/λ_max of the modes each init occupies
        ```
    """
    lo0, hi0 = _check_args(bracket, rounds, points, num_steps, horizon, tol, sweep_kwargs, along, spacing, lr)
    crit = resolve(criterion)
    needs_sharpness = getattr(crit, "needs_sharpness", False)
    if record is None:
        record = default_record(needs_sharpness, sweep_kwargs.get("rule"))
    if not isinstance(record, Record):
        raise ValueError(f"record must be a sweepjax.Record, got {type(record).__name__}")
    if needs_sharpness and record.sharpness is None and not record.measures:
        raise ValueError(f"record has sharpness=None but criterion {crit!r} needs the sharpness record")
    leaves = jax.tree.leaves(inits)
    if not leaves or np.ndim(leaves[0]) == 0:
        raise ValueError("inits must be a pytree of arrays with a leading axis n_init")
    n_init = int(np.shape(leaves[0])[0])
    axes = sweep_kwargs.get("axes") or {}
    cells = (*(np.shape(v)[0] if np.ndim(v) else 0 for v in axes.values()), n_init)  # a bracket per run slot
    try:
        lo0, hi0 = (np.broadcast_to(b, cells).reshape(-1) for b in (lo0, hi0))
    except ValueError:
        raise ValueError(
            f"bracket ends must be numbers or arrays that broadcast to (*axis sizes, n_init) = {cells}, got shapes "
            f"{np.shape(lo0)} and {np.shape(hi0)}"
        ) from None
    reads = getattr(crit, "reads", ())
    recorded = recorded_names(problem, inits, record, sweep_kwargs.get("rule")) if reads else None
    missing = [n for n in reads if recorded is not None and not readable(n, recorded)]
    if missing:
        hint = " (record has observables=False)" if not record.observables else ""
        raise ValueError(
            f"criterion {crit!r} reads {missing[0]!r}, which this sweep will not record{hint}; it records "
            f"{sorted(recorded)}, each also as 'final_<name>' or 'initial_<name>'"
        )

    steps = num_steps
    if horizon is not None:
        longest = math.ceil(horizon / lo0.min() - 1e-9)
        longest = -(-longest // record.every) * record.every
        steps = longest if num_steps is None else min(num_steps, longest)
        steps = max(steps, record.every)

    def run(values: np.ndarray) -> np.ndarray:  # (m, cells) values along the axis -> (m, cells) criterion
        kwargs = dict(sweep_kwargs)
        if along == "lr":
            lrs, shape = values.reshape(values.shape[:1] + cells), values.shape[:1] + cells
            dims = f"(n_lr, {', '.join(f'n_{a}' for a in axes)}, n_init)" if axes else "(n_lr, n_init)"
            if horizon is not None:
                kwargs["max_steps"] = np.minimum(np.ceil(horizon / lrs - 1e-9), steps).astype(np.int64)
        else:
            lrs, shape, dims = [lr], (1, *values.shape), f"(n_lr, n_{along}, n_init)"
            kwargs["axes"] = {along: values}
        res = sweep(problem, lrs, inits, num_steps=steps, record=record, **kwargs)
        out = np.asarray(crit(res))
        got = f"shape {out.shape}, dtype {out.dtype}"
        if out.dtype != np.bool_:
            raise TypeError(
                f"criterion {describe(crit)} must return an {dims} = {shape} bool array, got {got}; "
                "compare values with a level, e.g. criteria.above('final_loss', 1.0)"
            )
        if out.shape != shape:
            raise ValueError(f"criterion {describe(crit)} returned {got}, expected a bool array of shape {dims} = {shape}")
        return out.reshape(values.shape)

    lo, hi = lo0.copy(), hi0.copy()
    frac = np.arange(1, points + 1)[:, None] / (points + 1)  # (points, 1)

    def interior(lo, hi):  # (points, n_init)
        return lo[None] * (hi / lo)[None] ** frac if spacing == "log" else lo[None] + (hi - lo)[None] * frac

    # round 1: the ends and the interior grid in one sweep
    grid = np.concatenate([lo[None], interior(lo, hi), hi[None]], axis=0)
    values = run(grid)
    value_lo = values[0]
    # found: the criterion flips somewhere on the first grid, at the hi end or inside (a criterion that
    # holds only on an interior window, e.g. "eos" when the largest η undershoots edge/η, is found at
    # the window's lower edge); from here on the bracket's hi end has the opposite value of lo
    found = np.any(values != value_lo[None], axis=0)
    value_hi = ~value_lo
    lo, hi = _shrink(grid, values, value_lo, lo, hi, found)
    history = [np.stack([lo0, hi0]), np.stack([lo, hi])]
    sweeps = 1

    while sweeps < rounds and found.any():
        width = hi[found] / lo[found] - 1.0 if spacing == "log" else hi[found] - lo[found]
        if tol is not None and np.all(width <= tol):
            break
        inner = interior(lo, hi)
        values = run(inner)
        grid = np.concatenate([lo[None], inner, hi[None]], axis=0)
        values = np.concatenate([value_lo[None], values, value_hi[None]], axis=0)
        lo, hi = _shrink(grid, values, value_lo, lo, hi, found)
        history.append(np.stack([lo, hi]))
        sweeps += 1

    lo_out, hi_out = np.where(found, lo, np.nan).reshape(cells), np.where(found, hi, np.nan).reshape(cells)
    log = spacing == "log"
    return Boundary(
        lr=np.sqrt(lo_out * hi_out) if log else (lo_out + hi_out) / 2,
        lo=lo_out,
        hi=hi_out,
        width=hi_out / lo_out - 1.0 if log else hi_out - lo_out,
        found=found.reshape(cells),
        value_at_lo=value_lo.reshape(cells),
        brackets=np.stack(history).reshape(-1, 2, *cells),
        num_sweeps=sweeps,
        criterion=repr(crit),
        along=along,
    )


def _shrink(grid, values, value_lo, lo, hi, found):
    """New bracket per init: (grid[k−1], grid[k]) around the first k with values[k] ≠ value at lo.

    ``grid`` and ``values`` are (m, n_init) with rows sorted by η, row 0 the current lo and
    row m−1 the current hi; inits not found keep their bracket.
    """
    differs = values != value_lo[None]
    differs[-1] = True  # the hi end differs wherever found (sentinel: no interior flip -> last pair)
    k = np.argmax(differs, axis=0)
    cols = np.arange(grid.shape[1])
    new_lo, new_hi = grid[k - 1, cols], grid[k, cols]
    return np.where(found, new_lo, lo), np.where(found, new_hi, hi)


def default_record(needs_curvature: bool, rule) -> Record:
    """What a boundary search records by default: nothing but the loss, or, for a criterion on the curvature,
    the sharpness and the curvature the rule's stability edge bounds (``edge_of``: e.g. Adam's
    preconditioned sharpness, SGD's batch sharpness)."""
    if not needs_curvature:
        return Record(sharpness=None)
    from .measures import BatchSharpness, PreconditionedSharpness

    extra = {"preconditioned_sharpness": PreconditionedSharpness, "batch_sharpness": BatchSharpness}
    edge_of = getattr(rule, "edge_of", "sharpness") if rule is not None else "sharpness"
    return Record(measures=[extra[edge_of]()]) if edge_of in extra else Record()

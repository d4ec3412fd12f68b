"""Resumable sweeps: each finished chunk is saved atomically beside a manifest of the configuration.

Layout of ``out_dir``::

    manifest.json        format, a hash per configuration field, the chunk size and chunk count
    chunk_00000.npz      the raw outputs of chunk 0 (records time-major, finals, params, status)
    ...
    chunk_00001.part_00000.npz, chunk_00001.carry.npz
                         with ``checkpoint_every``, while chunk 1 runs: the records of each finished
                         segment of steps, and the carry (parameters, optimizer state, warm-start
                         vectors, status) after the last; removed once the chunk's file is written

A chunk file is written to a temporary file in the same folder, flushed, fsynced and moved into
place with ``os.replace``, so a killed sweep leaves only whole chunks. Re-running the same call
loads the finished chunks instead of recomputing them and continues a chunk from its last carry;
the outputs are stored bit for bit, so the resumed result equals an uninterrupted one exactly. A call
whose configuration differs from the manifest is refused, naming the fields that differ. One sweep at a
time per folder: temporary files left by a sweep killed mid-write are removed when the folder is opened
again. A file that exists but cannot be used (damaged, or of another chunk or configuration) is
recomputed with a warning.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import re
import warnings
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._io import atomic_write, write_with
from ._result import ChunkOutput
from .problems._base import AbstractProblem

MANIFEST = "manifest.json"
RESUME_FORMAT = "sweepjax.resume/3"  # /2: problem and optimizer hashed by what they compute; /3: the update rule and named axes
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def stable_repr(obj: Any) -> str:
    """A repr without memory addresses, field by field for dataclasses (``Record``, eigensolvers)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        inner = ", ".join(f"{f.name}={stable_repr(getattr(obj, f.name))}" for f in dataclasses.fields(obj))
        return f"{type(obj).__module__}.{type(obj).__qualname__}({inner})"
    return _ADDRESS.sub("", repr(obj))


def array_hash(a: Any) -> str:
    """sha256 of an array's dtype, shape and bytes."""
    a = np.ascontiguousarray(np.asarray(a))
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def tree_hash(tree: Any) -> str:
    """sha256 over a pytree's structure (memory addresses stripped) and each leaf's ``array_hash``."""
    leaves, treedef = jax.tree.flatten(tree)
    h = hashlib.sha256(_ADDRESS.sub("", str(treedef)).encode())
    for leaf in leaves:
        h.update(array_hash(leaf).encode())
    return h.hexdigest()


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


class ChunkStore:
    """Reads and writes the chunks of one sweep configuration in ``out_dir``."""

    def __init__(self, out_dir: str | os.PathLike, config: dict[str, Any], n_chunks: int, treedef):
        if not isinstance(out_dir, (str, os.PathLike)):
            raise TypeError(f"out_dir must be a str or os.PathLike folder, got {type(out_dir).__name__}")
        self.dir = pathlib.Path(out_dir)
        # one level of nesting is named: "problem.computation" rather than "problem"
        flat = {f"{k}.{k2}": v2 for k, v in config.items() if isinstance(v, dict) for k2, v2 in v.items()}
        flat.update({k: v for k, v in config.items() if not isinstance(v, dict)})
        self.fields = {k: _digest(v) for k, v in flat.items()}
        self.config_hash = _digest(self.fields)
        self.n_chunks = n_chunks
        self.treedef = treedef  # of the parameter pytree
        self._open()

    def _open(self) -> None:
        if self.dir.exists() and not self.dir.is_dir():
            raise ValueError(f"out_dir '{self.dir}' exists and is not a folder")
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OSError(f"cannot create out_dir '{self.dir}': {e.strerror or e}") from e
        for stale in self.dir.glob(".chunk_*.npz.*.tmp"):  # left by a sweep killed mid-write
            stale.unlink(missing_ok=True)
        manifest = self.dir / MANIFEST
        if manifest.exists():
            try:
                old = json.loads(manifest.read_text())
                fields, fmt = old["fields"], old["format"]
                if not isinstance(fields, dict) or not str(fmt).startswith("sweepjax.resume/"):
                    raise ValueError
            except (OSError, ValueError, KeyError, TypeError):
                raise ValueError(
                    f"out_dir '{self.dir}' holds a '{MANIFEST}' that is not a sweepjax resume manifest; use another folder"
                ) from None
            if fmt != RESUME_FORMAT:
                raise ValueError(
                    f"out_dir '{self.dir}' was written in resume format {fmt!r} by another sweepjax version "
                    f"(this one reads {RESUME_FORMAT!r}); use another out_dir (or delete it) to start afresh"
                )
            differ = sorted(k for k in set(fields) | set(self.fields) if fields.get(k) != self.fields.get(k))
            if differ:
                raise ValueError(
                    f"out_dir '{self.dir}' holds chunks of a different sweep configuration: {', '.join(differ)} "
                    "differ; use another out_dir (or delete it) to start afresh"
                )
            return
        body = {
            "format": RESUME_FORMAT,
            "config_hash": self.config_hash,
            "fields": self.fields,
            "n_chunks": self.n_chunks,
        }
        self._write(manifest, lambda f: f.write(json.dumps(body, indent=1, sort_keys=True).encode()))

    def path(self, c: int) -> pathlib.Path:
        return self.dir / f"chunk_{c:05d}.npz"

    def load(self, c: int) -> ChunkOutput | None:
        """The saved outputs of chunk c, or None if it is not (readably) there."""
        path = self.path(c)
        if not path.exists():
            return None
        try:
            with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:  # (closed even if np.load fails)
                data = {k: z[k] for k in z.files}
            if str(data.pop("__config_hash__")) != self.config_hash or int(data.pop("__chunk__")) != c:
                return self._recompute(path, c, "it belongs to another chunk or sweep configuration")
            sub = lambda p: {k[len(p) :]: v for k, v in data.items() if k.startswith(p)}  # noqa: E731
            params = sub("params/")
            leaves = [params[str(i)] for i in range(len(params))]
            params = jax.tree.unflatten(self.treedef, leaves)
            return ChunkOutput(sub("records/"), sub("final/"), params, data["alive"], data["diverged_at"])
        except Exception as e:  # damaged: recompute this chunk (it is rewritten atomically)
            return self._recompute(path, c, f"it cannot be read ({type(e).__name__})")

    def _recompute(self, path: pathlib.Path, c: int, why: str) -> None:
        warnings.warn(f"out_dir file '{path.name}' is not used: {why}; recomputing chunk {c}", stacklevel=5)
        return None

    def part_path(self, c: int, s: int) -> pathlib.Path:
        return self.dir / f"chunk_{c:05d}.part_{s:05d}.npz"

    def carry_path(self, c: int) -> pathlib.Path:
        return self.dir / f"chunk_{c:05d}.carry.npz"

    def save_carry(self, c: int, s: int, seg: int, records: dict[str, np.ndarray], state) -> None:
        """Segment s of chunk c is done: its records, then the carry after it (each atomically)."""
        tag = {"__config_hash__": np.array(self.config_hash), "__chunk__": np.array(c), "__segment__": np.array(s)}
        tag["__records_per_segment__"] = np.array(seg)
        self._write(self.part_path(c, s), lambda f: np.savez(f, **tag, **{f"records/{k}": v for k, v in records.items()}))
        leaves = {f"state/{i}": np.asarray(v) for i, v in enumerate(jax.tree.leaves(state))}
        self._write(self.carry_path(c), lambda f: np.savez(f, **tag, **leaves))

    def load_carry(self, c: int, seg: int, state_def):
        """(records of the finished segments, the carry after the last) of chunk c, or None if no
        readable checkpoint of this configuration and segment length is there."""
        path = self.carry_path(c)
        if not path.exists():
            return None
        try:
            with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
                if not self._tagged(z, c, seg):
                    return self._recompute(path, c, "it belongs to another chunk, configuration or checkpoint_every")
                s = int(z["__segment__"])
                state = jax.tree.unflatten(state_def, [z[f"state/{i}"] for i in range(state_def.num_leaves)])
            parts = []
            for i in range(s + 1):
                path = self.part_path(c, i)
                with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
                    if not (self._tagged(z, c, seg) and int(z["__segment__"]) == i):
                        return self._recompute(path, c, "it belongs to another chunk, segment or configuration")
                    parts.append({k[len("records/") :]: z[k] for k in z.files if k.startswith("records/")})
            return parts, state
        except Exception as e:  # missing or damaged: run the chunk from its start
            return self._recompute(path, c, f"it cannot be read ({type(e).__name__})")

    def _tagged(self, z, c: int, seg: int) -> bool:
        return (
            str(z["__config_hash__"]) == self.config_hash
            and int(z["__chunk__"]) == c
            and int(z["__records_per_segment__"]) == seg
        )

    def save(self, c: int, out: ChunkOutput) -> None:
        """Chunk c is done: its outputs atomically, then its checkpoints are removed."""
        arrays = {
            "__config_hash__": np.array(self.config_hash),
            "__chunk__": np.array(c),
            **{f"records/{k}": np.asarray(v) for k, v in out.records.items()},
            **{f"final/{k}": np.asarray(v) for k, v in out.final.items()},
            **{f"params/{i}": np.asarray(v) for i, v in enumerate(jax.tree.leaves(out.params))},
            "alive": np.asarray(out.alive),
            "diverged_at": np.asarray(out.diverged_at),
        }
        self._write(self.path(c), lambda f: np.savez(f, **arrays))
        self.carry_path(c).unlink(missing_ok=True)
        for part in self.dir.glob(f"chunk_{c:05d}.part_*.npz"):
            part.unlink(missing_ok=True)

    def _write(self, path: pathlib.Path, fill) -> None:
        """Atomically (``_io.atomic_write``), ``fill(f)`` writing the file's bytes."""
        atomic_write(path, write_with(fill), f"cannot write to out_dir '{self.dir}'")


def computation_hash(fn, *args) -> str:
    """sha256 of what ``fn`` computes at the shapes of ``args``: its jaxpr (memory addresses stripped)
    and every constant it closes over, module-level arrays and floats included.

    Stable across processes for the same code and data; changes when the computation or any value it
    reads changes (a float read from a global is a literal in the jaxpr, an array a constant).
    """
    closed = jax.make_jaxpr(fn)(*args)
    h = hashlib.sha256(_ADDRESS.sub("", str(closed.jaxpr)).encode())
    for const in _constants(closed):
        h.update(array_hash(const).encode())
    return h.hexdigest()


def _constants(closed) -> list:
    """The constants of a closed jaxpr and of every sub-jaxpr (pjit, cond, scan, custom rules)."""
    out, stack = list(closed.consts), [closed.jaxpr]
    while stack:
        for eqn in stack.pop().eqns:
            for value in eqn.params.values():
                for sub in value if isinstance(value, (tuple, list)) else (value,):
                    if hasattr(sub, "consts") and hasattr(sub, "jaxpr"):  # a ClosedJaxpr
                        out.extend(sub.consts)
                        stack.append(sub.jaxpr)
                    elif hasattr(sub, "eqns"):  # an open Jaxpr
                        stack.append(sub)
    return out


class _Probe(AbstractProblem):
    """A stand-in problem, f(θ) = ½‖θ‖² (on every batch), to hash what an update rule computes apart
    from the problem it trains."""

    num_samples: int = eqx.field(static=True)

    def loss(self, params):
        return 0.5 * sum(jnp.sum(p**2) for p in jax.tree.leaves(params))

    def minibatch_loss(self, params, idx, weights):
        return self.loss(params) * jnp.sum(weights) / jnp.maximum(jnp.sum(weights), 1)


def resume_config(config, chunk: int, batch_size: int | None) -> dict[str, Any]:
    """Every input that determines a sweep's bits, as JSON-able values (arrays by their hashes).

    The problem and the optimizer enter by what they compute (``computation_hash`` of the loss, its
    gradient, the observables and step multipliers; of the optimizer's init and update at a traced η),
    not by their reprs, which carry process-specific addresses.
    """
    from . import __version__

    problem, one_init, trajectory, dtype = config.problem, config.one_init, config.trajectory, config.dtype
    arrays, static = eqx.partition(problem, eqx.is_array)

    def problem_fn(arrays, params):
        p = eqx.combine(arrays, static)
        return jax.value_and_grad(p.loss)(params), p.observables(params), p.step_scale()

    rule_arrays, rule_static = eqx.partition(trajectory.rule, eqx.is_array)
    probe = _Probe(getattr(problem, "num_samples", 1))

    def rule_fn(lr, rule_arrays, params):  # one step of the rule on a stand-in problem, its state, observables
        rule = eqx.combine(rule_arrays, rule_static)
        state = rule.init(probe, params, lr)
        t, seed = jnp.array(1, jnp.int32), jnp.array(0, jnp.uint32)
        return rule.step(probe, params, state, lr, t, seed), rule.observables(probe, params, state)

    lr = jnp.asarray(1.0, np.dtype(dtype))
    return {
        "problem": {
            "type": f"{type(problem).__module__}.{type(problem).__qualname__}",
            "data": tree_hash([(jax.tree_util.keystr(k), a) for k, a in jax.tree_util.tree_leaves_with_path(arrays)]),
            "computation": computation_hash(problem_fn, arrays, one_init),
        },
        "lrs": array_hash(config.lrs),
        "inits": tree_hash(config.inits),
        "budgets": array_hash(config.budgets),
        "num_steps": int(config.num_steps),
        "record": stable_repr(config.record),
        "sharpness": stable_repr(trajectory.solver),
        "rule": _digest([computation_hash(rule_fn, lr, rule_arrays, one_init), tree_hash(rule_arrays)]),
        "axes": {k: array_hash(v) for k, v in config.axes.items()},
        "dtype": str(np.dtype(dtype)),
        "divergence_threshold": repr(float(config.threshold)),
        "chunk_size": int(chunk),
        "batch_size": batch_size,
        "versions": {"sweepjax": __version__, "jax": jax.__version__, "jaxlib": jax.lib.__version__},
    }

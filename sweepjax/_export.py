"""Exact, pickle-free export of a ``SweepResult``: ``.npz`` archives and xarray / netCDF.

Both formats round-trip bit for bit (dtypes, NaNs and their sign bits included). The ``inits``
and ``final_params`` pytrees are stored leaf by leaf, keyed by ``jax.tree_util.keystr`` of each
leaf's path (``inits/['w']`` in a ``.npz``), next to a JSON description of their containers
(``__pytrees__``); ``load`` documents what comes back. Metadata is stored as JSON.

A result with named grid axes (``result.axes``) stores each axis's values too (``axes/<name>`` and their
order in ``__axes__`` in a ``.npz``; a coordinate per axis in xarray) and is written as format version 2,
so that a sweepjax too old to know axes refuses it instead of misreading it; a classic result is still
written as version 1, byte for byte as before.
"""

from __future__ import annotations

import importlib
import json
import os
import pathlib
import re
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from ._io import atomic_write, write_with
from ._result import Status, SweepResult

if TYPE_CHECKING:
    import xarray

#: the newest format this version writes (2: with named axes; a result without them is written as 1);
#: ``load`` reads versions up to it
FORMAT_NAME = "sweepjax.SweepResult"
FORMAT_VERSION = 2
_NETCDF_SUFFIXES = (".nc", ".nc4")
_GRID = ("status", "diverged_step", "num_steps")
#: CF attributes of the coordinates (``units = "1"``: dimensionless)
_LR_ATTRS = {"long_name": "step size η", "units": "1"}
_STEP_ATTRS = {"long_name": "GD step", "units": "steps"}
#: a named axis's coordinate: ``long_name`` only, as sweepjax does not know a hyperparameter's units
_SEED_ATTRS = {"long_name": "random seed of the rule"}
_Path = str | os.PathLike


# -- pytrees ------------------------------------------------------------------------------------


def _flatten(tree: Any, name: str) -> tuple[Any, dict[str, np.ndarray]]:
    """A JSON spec of ``tree``'s containers and its leaves as arrays keyed by path string."""
    leaves: dict[str, np.ndarray] = {}

    def spec(node, path):
        if node is None:
            return None
        if isinstance(node, dict) and all(isinstance(k, str) for k in node):
            return {"dict": [[k, spec(v, path + (jax.tree_util.DictKey(k),))] for k, v in node.items()]}
        if type(node) in (list, tuple):
            kind = type(node).__name__
            return {kind: [spec(v, path + (jax.tree_util.SequenceKey(i),)) for i, v in enumerate(node)]}
        if isinstance(node, (np.ndarray, np.generic, jax.Array, bool, int, float, complex)):
            key = jax.tree_util.keystr(path)
            leaves[key] = _as_array(node, f"{name} leaf {key!r}")
            return {"leaf": key}
        raise _Unsupported

    try:
        return spec(tree, ()), leaves
    except _Unsupported:
        flat = jax.tree_util.tree_flatten_with_path(tree)[0]
        leaves = {jax.tree_util.keystr(p): _as_array(x, f"{name} leaf {jax.tree_util.keystr(p)!r}") for p, x in flat}
        if len(leaves) != len(flat):
            raise ValueError(f"{name}: leaf paths are not unique, cannot export") from None
        return {"flat": list(leaves)}, leaves


class _Unsupported(Exception):
    pass


def _unflatten(spec: Any, leaves: dict[str, np.ndarray]) -> Any:
    """Rebuild a pytree from ``_flatten``'s spec and leaves."""
    if spec is None:
        return None
    ((kind, body),) = spec.items()
    if kind == "leaf":
        return leaves[body]
    if kind == "dict":
        return {k: _unflatten(v, leaves) for k, v in body}
    if kind == "list":
        return [_unflatten(v, leaves) for v in body]
    if kind == "tuple":
        return tuple(_unflatten(v, leaves) for v in body)
    if kind == "flat":
        return {k: leaves[k] for k in body}
    raise ValueError(f"unknown pytree node {kind!r}")


def _as_array(x: Any, what: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.hasobject:
        raise ValueError(f"{what} has dtype object; only numeric arrays can be exported (no pickle)")
    return a


# -- npz ----------------------------------------------------------------------------------------


def save(result: SweepResult, path: _Path) -> pathlib.Path:
    """Write ``result`` to a ``.npz`` archive (no pickle), atomically; see ``SweepResult.save``."""
    path = _with_suffix(path, (".npz",))
    inits_spec, inits = _flatten(result.inits, "inits")
    final_spec, final_params = _flatten(result.final_params, "final_params")
    axes = {f"axes/{k}": _as_array(v, f"axes[{k!r}]") for k, v in result.axes.items()}
    arrays = {
        "__sweepjax_format__": np.array(_format(result)),
        "__metadata__": np.array(_metadata_json(result.metadata)),
        "__pytrees__": np.array(json.dumps({"inits": inits_spec, "final_params": final_spec})),
        "lrs": _as_array(result.lrs, "lrs"),
        "steps": _as_array(result.steps, "steps"),
        **{k: _as_array(getattr(result, k), k) for k in _GRID},
        **{f"records/{k}": _as_array(v, f"records[{k!r}]") for k, v in result.records.items()},
        **{f"final/{k}": _as_array(v, f"final[{k!r}]") for k, v in result.final.items()},
        **{f"inits/{k}": v for k, v in inits.items()},
        **{f"final_params/{k}": v for k, v in final_params.items()},
        **({"__axes__": np.array(json.dumps(list(result.axes))), **axes} if axes else {}),  # (a classic result: v1)
    }

    atomic_write(path, write_with(lambda f: np.savez(f, **arrays)), f"cannot write sweep result to '{path}'")
    return path


def load(path: _Path) -> SweepResult:
    """Read a ``SweepResult`` written by ``SweepResult.save`` (``.npz``) or ``to_netcdf`` (``.nc``).

    The format is chosen by suffix: ``.nc``/``.nc4`` is netCDF, anything else ``.npz``. A path
    without a suffix that does not exist is retried with ``.npz`` appended (as ``save`` does).
    Every array comes back bit for bit with its dtype; metadata goes through JSON (tuples come
    back as lists). The ``inits`` and ``final_params`` pytrees come back as:

    - a bare ``np.ndarray`` if they were a single array;
    - the same nesting of plain ``dict`` (string keys), ``list``, ``tuple`` and ``None``;
    - otherwise (namedtuples, ``eqx.Module``, non-string dict keys, custom nodes) a flat ``dict``
      from each leaf's ``jax.tree_util.keystr`` path (e.g. ``".w"``) to its array.

    Raises:
        FileNotFoundError: nothing at ``path``.
        ValueError: the file is not a readable sweepjax result (corrupt, foreign, newer format).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    path = pathlib.Path(path)
    if path.is_dir():
        raise ValueError(f"'{path}' is a folder, not a sweep result (expected a .npz or .nc file)")
    if not path.exists() and path.suffix == "" and path.with_name(path.name + ".npz").exists():
        path = path.with_name(path.name + ".npz")
    if not path.exists():
        raise FileNotFoundError(
            f"no sweep result at '{path}' (expected a .npz written by SweepResult.save or a .nc from to_netcdf)"
        )
    if path.suffix in _NETCDF_SUFFIXES:
        return _load_netcdf(path)
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic not in (b"PK\x03\x04", b"PK\x05\x06"):
        found = "a .npy array" if magic.startswith(b"\x93NUM") else "a file that is not a zip archive"
        raise ValueError(f"'{path}' is not a sweepjax result: expected a .npz from SweepResult.save, got {found}")
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:  # (closed even if np.load fails)
            data = {k: z[k] for k in z.files}  # read everything now so that corruption surfaces here
    except Exception as e:
        raise ValueError(f"'{path}' is a corrupt or unreadable .npz archive: {type(e).__name__}: {e}") from e
    _check_format(data.get("__sweepjax_format__"), f"'{path}'", "'__sweepjax_format__' entry")
    try:
        trees = json.loads(str(data["__pytrees__"]))
        sub = lambda prefix: {k[len(prefix) :]: v for k, v in data.items() if k.startswith(prefix)}  # noqa: E731
        return SweepResult(
            lrs=data["lrs"],
            steps=data["steps"],
            inits=_unflatten(trees["inits"], sub("inits/")),
            records=sub("records/"),
            final=sub("final/"),
            final_params=_unflatten(trees["final_params"], sub("final_params/")),
            **{k: data[k] for k in _GRID},
            metadata=json.loads(str(data["__metadata__"])),
            axes={k: data[f"axes/{k}"] for k in json.loads(str(data.get("__axes__", "[]")))},
        )
    except (KeyError, ValueError, TypeError, AttributeError) as e:
        raise ValueError(f"'{path}' is a damaged sweepjax result: {type(e).__name__}: {e}") from e


# -- xarray / netCDF ----------------------------------------------------------------------------


def to_xarray(result: SweepResult) -> xarray.Dataset:
    """The result as an ``xarray.Dataset``; see ``SweepResult.to_xarray``."""
    xr = _import("xarray")
    n_init = result.shape[-1]
    inits_spec, inits = _flatten(result.inits, "inits")
    final_spec, final_params = _flatten(result.final_params, "final_params")
    taken = _Namer({"lr", "init", "step"})
    axis_dims = {k: taken(k) for k in result.axes}  # a dim and its coordinate per named axis
    grid = ("lr", *axis_dims.values(), "init")
    ndims = {k: v.ndim - 1 for k, v in inits.items()} | {k: v.ndim - len(grid) for k, v in final_params.items()}
    stems = _Namer(set())
    param_dims = {}
    for k, n in ndims.items():
        stem = stems(f"param_{_safe(k)}".rstrip("_"))
        while any(f"{stem}_dim{i}" in taken.taken for i in range(n)):  # (an axis named like a parameter dim)
            stem = stems(stem)
        param_dims[k] = tuple(f"{stem}_dim{i}" for i in range(n))
    names = _Namer({*taken.taken, *(d for dims in param_dims.values() for d in dims)})
    data_vars = {}

    def add(name, dims, values, role, key=None, **attrs):
        attrs = {"sweepjax_role": role, **({} if key is None else {"sweepjax_key": key}), **attrs}
        data_vars[names(name)] = xr.Variable(dims, _as_array(values, name), attrs=attrs)

    value_dims = {}  # a record of arrays (e.g. the parameters as an observable): a dim per axis of one value
    named = result.metadata.get("record_dims", {})  # dims a measurement names (``eig``, ``node``), shared by size
    assigned = {}  # (wanted name, size) -> dim: records share a named dim of one size

    def dim(wanted: str, size: int) -> str:
        if (wanted, size) not in assigned:
            assigned[(wanted, size)] = names(wanted)
        return assigned[(wanted, size)]

    for k, v in result.records.items():
        extra = np.shape(v)[len(grid) + 1 :]
        wanted = named.get(k, ())
        if len(wanted) != len(extra):
            wanted = [f"{_safe(k) or 'record'}_dim{i}" for i in range(len(extra))]
        value_dims[k] = tuple(dim(w, n) for w, n in zip(wanted, extra))
    for k, v in result.records.items():
        add(k, (*grid, "step", *value_dims[k]), v, "record", k)
    for k, v in result.final.items():
        add(f"final_{k}", (*grid, *value_dims.get(k, ())), v, "final", k)
    add("status", grid, result.status, "status", flag_values=np.array([int(s) for s in Status], np.int8),
        flag_meanings=" ".join(s.name.lower() for s in Status))  # fmt: skip
    add("diverged_step", grid, result.diverged_step, "diverged_step")
    add("num_steps", grid, result.num_steps, "num_steps")
    for k, v in inits.items():
        add(f"inits_{_safe(k)}".rstrip("_"), ("init", *param_dims[k]), v, "inits", k)
    for k, v in final_params.items():
        add(f"final_params_{_safe(k)}".rstrip("_"), (*grid, *param_dims[k]), v, "final_params", k)
    lrs = _as_array(result.lrs, "lrs")
    if lrs.ndim == 1:
        lr_coord = xr.Variable("lr", lrs, attrs=_LR_ATTRS)
    else:  # step sizes per init (or per run): the lr axis is a row index, η a coordinate (below)
        lr_coord = xr.Variable("lr", np.arange(lrs.shape[0]), attrs={"long_name": "step-size row (η: lr_value)"})
    coords = {
        "lr": lr_coord,
        "init": xr.Variable("init", np.arange(n_init), attrs={"long_name": "initialization index"}),
        "step": xr.Variable("step", _as_array(result.steps, "steps"), attrs=_STEP_ATTRS),
    }
    for k, dim in axis_dims.items():  # (the exact name in sweepjax_key, should the dim's be made netCDF-safe)
        attrs = _SEED_ATTRS if k == "seed" else {"long_name": f"hyperparameter {k}"}
        values = _as_array(result.axes[k], f"axes[{k!r}]")
        if values.ndim == 1:
            coords[dim] = xr.Variable(dim, values, attrs={**attrs, "sweepjax_role": "axis", "sweepjax_key": k})
        else:  # a column per init, as per-init step sizes: the dim is a row index, the values a 2-D coordinate
            coords[dim] = xr.Variable(
                dim,
                np.arange(values.shape[0]),
                attrs={"long_name": f"row of {k} (values: {dim}_value)", "sweepjax_role": "axis_row", "sweepjax_key": k},
            )
            coords[names(f"{dim}_value")] = xr.Variable((dim, "init"), values, attrs={
                **attrs, "sweepjax_role": "axis", "sweepjax_key": k})  # fmt: skip
    if lrs.ndim >= 2:  # per init (lr, init), or a step size per run (the whole grid)
        lr_attrs = {"sweepjax_role": "lrs", "sweepjax_key": "lrs", **_LR_ATTRS}
        coords[names("lr_value")] = xr.Variable(("lr", "init") if lrs.ndim == 2 else grid, lrs, attrs=lr_attrs)
    for k, v in inits.items():  # a scalar per init (a leaf shaped (n_init,)) labels the init axis too
        if v.ndim == 1:
            name = names(f"init_{_safe(k)}" if _safe(k) else "init_value")
            coords[name] = xr.Variable("init", v, attrs={"long_name": f"initial value θ₀{k}"})
    attrs = {
        "sweepjax_format": _format(result),
        "sweepjax_pytrees": json.dumps({"inits": inits_spec, "final_params": final_spec}),
        "metadata": _metadata_json(result.metadata),
    }
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def from_xarray(ds: xarray.Dataset) -> SweepResult:
    """Rebuild a ``SweepResult`` from a Dataset made by ``to_xarray`` (or read from ``to_netcdf``)."""
    return _from_dataset(ds, "the Dataset")


def _from_dataset(ds: xarray.Dataset, where: str) -> SweepResult:
    _check_format(ds.attrs.get("sweepjax_format"), where, "'sweepjax_format' attribute")
    parts: dict[str, dict[str, np.ndarray]] = {}
    grid: tuple = ()
    for var in ds.variables.values():  # (per-init step sizes and named axes are coordinates)
        role = var.attrs.get("sweepjax_role")
        if role is not None:
            parts.setdefault(role, {})[var.attrs.get("sweepjax_key", role)] = np.array(var.values)
        if role == "status":
            grid = tuple(var.dims)
    missing = [r for r in _GRID if r not in parts]
    if missing:
        raise ValueError(f"{where} is not a complete sweepjax result: missing {missing}")
    try:
        keys = [ds[d].attrs.get("sweepjax_key", d) for d in grid[1:-1]]
        axes = {k: parts["axis"][k] for k in keys}
        trees = json.loads(ds.attrs["sweepjax_pytrees"])
        metadata = json.loads(ds.attrs["metadata"])
        inits = _unflatten(trees["inits"], parts.get("inits", {}))
        final_params = _unflatten(trees["final_params"], parts.get("final_params", {}))
    except (KeyError, ValueError, TypeError, AttributeError) as e:
        raise ValueError(f"{where} is a damaged sweepjax result: {type(e).__name__}: {e}") from e
    return SweepResult(
        lrs=parts["lrs"]["lrs"] if "lrs" in parts else np.array(ds["lr"].values),
        steps=np.array(ds["step"].values),
        inits=inits,
        records=parts.get("record", {}),
        final=parts.get("final", {}),
        final_params=final_params,
        **{k: parts[k][k] for k in _GRID},
        metadata=metadata,
        axes=axes,
    )


def to_netcdf(result: SweepResult, path: _Path) -> pathlib.Path:
    """Write ``result`` to netCDF-4 with ``h5netcdf``, atomically; see ``SweepResult.to_netcdf``."""
    _import("h5netcdf")
    path = _with_suffix(path, _NETCDF_SUFFIXES)
    ds = to_xarray(result)
    encoding = {name: {"_FillValue": None} for name in ds.variables}  # no CF masking: keep bits exact
    write = lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf", encoding=encoding)  # noqa: E731
    atomic_write(path, write, f"cannot write sweep result to '{path}'")
    return path


def _load_netcdf(path: pathlib.Path) -> SweepResult:
    xr = _import("xarray")
    _import("h5netcdf")
    try:
        with xr.open_dataset(path, engine="h5netcdf", decode_cf=False) as ds:
            ds = ds.load()
    except Exception as e:
        raise ValueError(f"'{path}' is not a readable netCDF-4 file: {type(e).__name__}: {e}") from e
    return _from_dataset(ds, f"'{path}'")


# -- helpers ------------------------------------------------------------------------------------


def _import(name: str):
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise ImportError(f"xarray/netCDF export needs {name}: pip install 'sweepjax[xarray]'") from e


def _format(result: SweepResult) -> str:
    """The format marker: version 2 with named axes (older readers refuse it), else 1 (readable by all)."""
    return f"{FORMAT_NAME}/{FORMAT_VERSION if result.axes else 1}"


def _metadata_json(metadata: dict[str, Any]) -> str:
    try:
        return json.dumps(metadata)
    except (TypeError, ValueError) as e:
        raise ValueError(f"SweepResult.metadata must be JSON-serializable to export: {e}") from e


def _check_format(marker: Any, where: str, entry: str) -> None:
    if marker is None:
        raise ValueError(f"{where} is not a sweepjax result: it has no {entry}")
    name, _, version = str(marker).partition("/")
    if name != FORMAT_NAME or not version.isdigit():
        raise ValueError(f"{where} is not a sweepjax result: its {entry} is {str(marker)!r}")
    if int(version) > FORMAT_VERSION:
        raise ValueError(f"{where} uses sweepjax format version {version}; this sweepjax reads versions <= {FORMAT_VERSION}")


def _with_suffix(path: _Path, suffixes: tuple[str, ...]) -> pathlib.Path:
    path = pathlib.Path(path)
    return path if path.suffix in suffixes else path.with_name(path.name + suffixes[0])


def _safe(key: str) -> str:
    """A netCDF-safe variable-name fragment for a leaf path: ``"['a'][0]"`` -> ``"a_0"``."""
    return re.sub(r"[^0-9A-Za-z]+", "_", key).strip("_")


class _Namer:
    """Unique, netCDF-safe variable names (``loss``, ``final_loss``, ``inits_w``, ...)."""

    def __init__(self, taken: set[str]):
        self.taken = set(taken)

    def __call__(self, name: str) -> str:
        base = re.sub(r"[^0-9A-Za-z_]", "_", name) or "var"
        out, i = base, 1
        while out in self.taken:
            out, i = f"{base}_{i}", i + 1
        self.taken.add(out)
        return out

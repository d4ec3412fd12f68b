"""Export: exact .npz and xarray/netCDF round trips of real sweep results, and clear errors."""

import collections
import dataclasses
import json
import os
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr  # the [test] extra installs xarray and h5netcdf

import sweepjax as sj

FORMATS = ["npz", "nc"]


@pytest.fixture(scope="module")
def product():
    p = sj.problems.ProductLoss("sqrt")
    inits = p.init_grid(jnp.array([1.0, 4.0]))
    return sj.sweep(p, jnp.array([0.1, 0.5, 3.0]), inits, num_steps=20, record=sj.Record(every=5))


@pytest.fixture(scope="module")
def tree():
    p = sj.problems.Objective(
        lambda th: 0.5 * jnp.sum(th["w"] ** 2) + jnp.sum(th["b"] ** 2),
        params_like={"w": jnp.zeros(3), "b": jnp.zeros(2)},
    )
    inits = {"w": jnp.arange(6.0).reshape(2, 3), "b": jnp.ones((2, 2))}
    return sj.sweep(p, jnp.array([0.1, 1.5]), inits, num_steps=4, record=sj.Record(every=2))


@pytest.fixture(params=["product", "tree"])
def result(request):
    return request.getfixturevalue(request.param)


def roundtrip(res, fmt, tmp_path):
    path = res.save(tmp_path / "res") if fmt == "npz" else res.to_netcdf(tmp_path / "res")
    return sj.load(path)


def assert_same_array(a, b):
    a, b = np.asarray(a), np.asarray(b)
    np.testing.assert_array_equal(a, b, strict=True)  # shapes, dtypes, values (NaN == NaN)
    assert a.tobytes() == b.tobytes()  # bitwise, NaN payloads and signs included


def assert_same(a, b):
    for name in ("lrs", "steps", "status", "diverged_step", "num_steps"):
        assert_same_array(getattr(a, name), getattr(b, name))
    for name in ("records", "final"):
        x, y = getattr(a, name), getattr(b, name)
        assert list(x) == list(y)
        for k in x:
            assert_same_array(x[k], y[k])
    for name in ("inits", "final_params"):
        x, y = getattr(a, name), getattr(b, name)
        assert jax.tree.structure(x) == jax.tree.structure(y)
        jax.tree.map(assert_same_array, x, y)
    assert a.metadata == b.metadata


@pytest.mark.parametrize("fmt", FORMATS)
def test_roundtrip_exact(result, fmt, tmp_path):
    back = roundtrip(result, fmt, tmp_path)
    assert_same(result, back)
    assert type(back.inits) is type(result.inits)


def test_xarray_roundtrip_in_memory(result):
    assert_same(result, sj.SweepResult.from_xarray(result.to_xarray()))


def test_product_has_nans_and_bare_inits(product, tmp_path):
    # the fixture exercises what it should: a diverged run (NaN records) and a bare-array init
    assert product.diverged.any() and np.isnan(product.records["loss"]).any()
    assert isinstance(sj.load(product.save(tmp_path / "p")).inits, np.ndarray)


@pytest.mark.parametrize("fmt", FORMATS)
def test_nan_sign_and_payload_kept(product, fmt, tmp_path):
    loss = product.records["loss"].copy()
    bits = loss.view(np.uint32)
    bits[0, 0, 0] = 0xFFC00000  # negative quiet NaN (what x86 produces for 0/0)
    bits[0, 0, 1] = 0x7FC00123  # NaN with a payload
    res = dataclasses.replace(product, records={**product.records, "loss": loss})
    assert_same(res, roundtrip(res, fmt, tmp_path))


@pytest.mark.parametrize("fmt", FORMATS)
def test_pytree_structures(tree, fmt, tmp_path):
    n_lr, n_init = tree.shape
    x = np.arange(n_init * 2, dtype=np.float64).reshape(n_init, 2)
    inits = {"a": [x, (x[:, 0].astype(np.int32), None)], "b/c d": x[:, :1], "e": {}}
    final_params = jax.tree.map(lambda a: np.broadcast_to(a, (n_lr, *a.shape)).copy(), inits)
    res = dataclasses.replace(tree, inits=inits, final_params=final_params)
    back = roundtrip(res, fmt, tmp_path)
    assert_same(res, back)
    assert type(back.inits["a"]) is list and type(back.inits["a"][1]) is tuple
    assert back.inits["a"][1][1] is None and back.inits["e"] == {}


@pytest.mark.parametrize("fmt", FORMATS)
def test_unsupported_pytree_comes_back_flat(tree, fmt, tmp_path):
    Point = collections.namedtuple("Point", ["w", "b"])
    res = dataclasses.replace(tree, inits=Point(**tree.inits), final_params=Point(**tree.final_params))
    back = roundtrip(res, fmt, tmp_path)
    assert sorted(back.inits) == [".b", ".w"]
    assert_same_array(back.inits[".w"], tree.inits["w"])
    assert_same_array(back.final_params[".b"], tree.final_params["b"])


def test_npz_layout_is_pickle_free(tree, tmp_path):
    path = tree.save(tmp_path / "t.npz")
    with np.load(path, allow_pickle=False) as z:
        files = set(z.files)
        assert not any(z[k].dtype.hasobject for k in files)
        assert z["__sweepjax_format__"].shape == () and z["__sweepjax_format__"].dtype.kind == "U"
        assert json.loads(str(z["__metadata__"])) == tree.metadata
    assert {"lrs", "steps", "status", "diverged_step", "num_steps", "records/loss", "final/loss"} <= files
    assert {"inits/['w']", "inits/['b']", "final_params/['w']", "final_params/['b']"} <= files


def test_suffixes_and_overwrite(product, tmp_path):
    assert product.save(tmp_path / "run") == tmp_path / "run.npz"
    assert product.save(str(tmp_path / "run.npz")) == tmp_path / "run.npz"  # overwrite, str path
    assert product.to_netcdf(tmp_path / "run") == tmp_path / "run.nc"
    assert product.to_netcdf(tmp_path / "run.nc4") == tmp_path / "run.nc4"
    assert_same(product, sj.load(tmp_path / "run"))  # suffix-less path finds run.npz
    assert_same(product, sj.load(tmp_path / "run.nc4"))
    assert sorted(os.listdir(tmp_path)) == ["run.nc", "run.nc4", "run.npz"]  # no temporary files left


def test_to_xarray_layout(product, tree):
    ds = product.to_xarray()
    assert ds["loss"].dims == ("lr", "init", "step")
    for name in ("final_loss", "status", "diverged_step", "num_steps"):
        assert ds[name].dims == ("lr", "init")
    np.testing.assert_array_equal(ds["lr"].values, product.lrs)
    np.testing.assert_array_equal(ds["init"].values, np.arange(product.shape[1]))
    np.testing.assert_array_equal(ds["step"].values, product.steps)
    assert ds["inits"].dims == ("init", "param_dim0")
    assert ds["final_params"].dims == ("lr", "init", "param_dim0")
    assert json.loads(ds.attrs["metadata"]) == product.metadata
    ds = tree.to_xarray()
    assert ds["inits_w"].dims == ("init", "param_w_dim0")
    assert ds["final_params_b"].dims == ("lr", "init", "param_b_dim0")
    assert ds["final_params_w"].attrs["sweepjax_key"] == "['w']"


def test_load_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        sj.load(tmp_path / "nope.npz")


@pytest.mark.parametrize("name", ["junk.npz", "junk.nc"])
def test_load_garbage(tmp_path, name):
    (tmp_path / name).write_bytes(b"this is not a sweep result\x00\x01" * 10)
    with pytest.raises(ValueError, match=name):
        sj.load(tmp_path / name)


def test_load_corrupt_npz(product, tmp_path):
    path = product.save(tmp_path / "c")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(ValueError, match="c.npz.*corrupt"):
        sj.load(path)
    with zipfile.ZipFile(tmp_path / "d.npz", "w") as z:  # a zip whose member is not a .npy
        z.writestr("lrs.npy", b"\x93NUMPY garbage")
    with pytest.raises(ValueError, match="d.npz"):
        sj.load(tmp_path / "d.npz")


def test_load_foreign_files(tmp_path):
    np.savez(tmp_path / "foreign.npz", a=np.arange(3))
    with pytest.raises(ValueError, match="foreign.npz.*not a sweepjax result"):
        sj.load(tmp_path / "foreign.npz")
    xr.Dataset({"a": ("x", np.arange(3))}).to_netcdf(tmp_path / "foreign.nc", engine="h5netcdf")
    with pytest.raises(ValueError, match="foreign.nc.*not a sweepjax result"):
        sj.load(tmp_path / "foreign.nc")
    np.save(tmp_path / "array.npy", np.arange(3))
    with pytest.raises(ValueError, match=r"array.npy.*\.npy array"):
        sj.load(tmp_path / "array.npy")


def test_load_newer_format(product, tmp_path):
    ds = product.to_xarray()
    ds.attrs["sweepjax_format"] = "sweepjax.SweepResult/99"
    with pytest.raises(ValueError, match="version 99"):
        sj.SweepResult.from_xarray(ds)


@pytest.mark.parametrize("fmt", FORMATS)
def test_save_to_missing_dir(product, tmp_path, fmt):
    path = tmp_path / "no" / "such" / "dir" / "r"
    with pytest.raises(FileNotFoundError, match="no/such/dir/r"):
        product.save(path) if fmt == "npz" else product.to_netcdf(path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_save_permission_error_names_path_and_cleans_up(product, tmp_path, monkeypatch, fmt):
    def deny(src, dst):
        raise PermissionError(13, "Permission denied", str(dst))

    monkeypatch.setattr(os, "replace", deny)  # works as root too, unlike chmod
    with pytest.raises(PermissionError, match="cannot write sweep result to .*/r.n.*Permission denied"):
        product.save(tmp_path / "r") if fmt == "npz" else product.to_netcdf(tmp_path / "r")
    assert os.listdir(tmp_path) == []


def test_save_failure_leaves_target_and_no_temp(product, tmp_path):
    path = product.save(tmp_path / "keep")
    before = path.read_bytes()
    bad = dataclasses.replace(product, metadata={"f": object()})
    with pytest.raises(ValueError, match="JSON"):
        bad.save(path)
    bad = dataclasses.replace(product, records={"loss": np.array([object()])})
    with pytest.raises(ValueError, match="object"):
        bad.save(path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["keep.npz"]


def test_missing_xarray_message(product, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "xarray", None)
    with pytest.raises(ImportError, match=r"pip install 'sweepjax\[xarray\]'"):
        product.to_xarray()


@pytest.mark.parametrize("fmt", FORMATS)
def test_per_init_lr_columns_round_trip(fmt, tmp_path):
    p = sj.problems.ProductLoss("sqrt")
    cols = np.array([[0.1, 0.2], [0.3, 0.4]])
    res = sj.sweep(p, cols, p.init_grid(jnp.array([1.0, 2.0])), num_steps=4, record=sj.Record(every=2))
    path = res.save(tmp_path / "r") if fmt == "npz" else res.to_netcdf(tmp_path / "r.nc")
    back = sj.load(path)
    np.testing.assert_array_equal(back.lrs, res.lrs, strict=True)
    np.testing.assert_array_equal(back.records["loss"], res.records["loss"], strict=True)


@pytest.fixture(scope="module")
def scalars():
    """Scalar-per-init leaves {"x", "y"} and a column of step sizes per init."""
    p = sj.problems.Objective(
        lambda th: 0.5 * (th["x"] ** 2 + 4.0 * th["y"] ** 2), params_like={"x": jnp.zeros(()), "y": jnp.zeros(())}
    )
    inits = {"x": jnp.array([1.0, 2.0, -1.0]), "y": jnp.array([0.5, 0.0, 1.0])}
    lrs = jnp.array([[0.1, 0.2, 0.3], [0.45, 0.55, 0.6]])
    return sj.sweep(p, lrs, inits, num_steps=4, record=sj.Record(every=2))


def test_coordinates_have_units_and_scalar_inits_label_the_init_axis(product, scalars):
    ds = product.to_xarray()
    assert ds["lr"].attrs == {"long_name": "step size η", "units": "1"}
    assert ds["step"].attrs == {"long_name": "GD step", "units": "steps"}
    assert set(ds.coords) == {"lr", "init", "step"}  # a (n_init, 2) init is no per-init scalar
    ds = scalars.to_xarray()
    assert set(ds.coords) == {"lr", "init", "step", "lr_value", "init_x", "init_y"}
    for leaf in ("x", "y"):
        assert ds[f"init_{leaf}"].dims == ("init",)
        assert_same_array(ds[f"init_{leaf}"].values, scalars.inits[leaf])
    assert ds["lr_value"].dims == ("lr", "init") and ds["lr_value"].attrs["long_name"] == "step size η"
    assert_same_array(ds["lr_value"].values, scalars.lrs)
    bare = dataclasses.replace(product, inits=np.array([3.0, 4.0]), final_params=np.zeros((3, 2)))  # bare scalars
    assert_same_array(bare.to_xarray()["init_value"].values, bare.inits)


@pytest.mark.parametrize("fmt", FORMATS)
def test_scalar_init_coordinates_round_trip_exactly(scalars, fmt, tmp_path):
    back = roundtrip(scalars, fmt, tmp_path)
    assert_same(scalars, back)
    if fmt == "nc":  # a plain xarray reader sees the coordinates and their attributes
        with xr.open_dataset(tmp_path / "res.nc", engine="h5netcdf") as ds:
            assert {"init_x", "init_y", "lr_value"} <= set(ds.coords)
            assert ds["step"].attrs["units"] == "steps" and ds["lr_value"].attrs["units"] == "1"


def test_to_dataframe(product, scalars):
    df = scalars.to_xarray()[["final_loss", "status"]].to_dataframe()  # one row per run
    assert df.index.names == ["lr", "init"] and len(df) == scalars.status.size
    assert {"final_loss", "status", "lr_value", "init_x", "init_y"} <= set(df.columns)
    np.testing.assert_array_equal(df["lr_value"].to_numpy(), scalars.lrs.ravel())
    np.testing.assert_array_equal(df["init_x"].to_numpy(), np.tile(scalars.inits["x"], 2))
    full = product.to_xarray().to_dataframe()  # every variable, broadcast over (lr, init, step, param_dim0)
    assert full.index.names == ["lr", "init", "step", "param_dim0"] and len(full) == 3 * 2 * 5 * 2

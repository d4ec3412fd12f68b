"""Bad input at every public entry point gives one clear error (beyond those in test_sweep.py)."""

import zipfile

import jax.numpy as jnp
import numpy as np
import pytest

import sweepjax as sj
from sweepjax import cli
from sweepjax.problems import Objective, ProductLoss

P = ProductLoss("sqrt")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    d = tmp_path_factory.mktemp("files")
    res = sj.sweep(P, [0.1], np.ones((1, 2)), num_steps=2, record=sj.Record(every=1))
    res.save(d / "good.npz")
    return d, res


def _rewrite(src, dst, **changes):
    data = dict(np.load(src))
    for k, v in changes.items():
        if v is None:
            del data[k]
        else:
            data[k] = v
    np.savez(dst, **data)


# -- sweepjax.load ------------------------------------------------------------------------------


def _files(d):
    raw = (d / "good.npz").read_bytes()
    (d / "text.txt").write_text("hello")
    np.save(d / "arr.npy", np.ones(3))
    (d / "empty.npz").write_bytes(b"")
    (d / "trunc.npz").write_bytes(raw[: len(raw) // 2])
    flipped = bytearray(raw)
    with zipfile.ZipFile(d / "good.npz") as z:  # a byte in the middle of the biggest member's data
        member = max(z.infolist(), key=lambda i: i.compress_size)
    name_and_extra = int.from_bytes(raw[member.header_offset + 26 : member.header_offset + 28], "little") + int.from_bytes(
        raw[member.header_offset + 28 : member.header_offset + 30], "little"
    )
    flipped[member.header_offset + 30 + name_and_extra + member.compress_size // 2] ^= 0xFF
    (d / "flip.npz").write_bytes(bytes(flipped))
    np.savez(d / "foreign.npz", a=np.ones(3))
    _rewrite(d / "good.npz", d / "newer.npz", __sweepjax_format__=np.array("sweepjax.SweepResult/99"))
    _rewrite(d / "good.npz", d / "other.npz", __sweepjax_format__=np.array("somebody.else/1"))
    _rewrite(d / "good.npz", d / "missing.npz", lrs=None)
    _rewrite(d / "good.npz", d / "badmeta.npz", __metadata__=np.array("{bad json"))
    (d / "garbage.nc").write_bytes(b"CDF\x01garbage")
    (d / "folder.npz").mkdir(exist_ok=True)


LOAD_CASES = [
    ("nothere.npz", FileNotFoundError, "no sweep result at"),
    ("text.txt", ValueError, "not a sweepjax result: expected a .npz from SweepResult.save, got a file that is not a"),
    ("arr.npy", ValueError, "got a .npy array"),
    ("empty.npz", ValueError, "not a zip archive"),
    ("trunc.npz", ValueError, "corrupt or unreadable .npz archive: BadZipFile"),
    ("flip.npz", ValueError, "corrupt or unreadable .npz archive: BadZipFile: Bad CRC-32"),
    ("foreign.npz", ValueError, "it has no '__sweepjax_format__' entry"),
    ("newer.npz", ValueError, "format version 99; this sweepjax reads versions <= 2"),
    ("other.npz", ValueError, "is not a sweepjax result: its '__sweepjax_format__' entry is 'somebody.else/1'"),
    ("missing.npz", ValueError, "damaged sweepjax result: KeyError: 'lrs'"),
    ("badmeta.npz", ValueError, "damaged sweepjax result: JSONDecodeError"),
    ("garbage.nc", ValueError, "not a readable netCDF-4 file"),
    ("folder.npz", ValueError, "is a folder, not a sweep result"),
]


@pytest.mark.parametrize("name,error,words", LOAD_CASES)
def test_load_rejects_bad_files(saved, name, error, words):
    d, _ = saved
    _files(d)
    with pytest.raises(error, match=words.replace(".", r"\.").replace("(", r"\(")):
        sj.load(d / name)


def test_load_path_type():
    with pytest.raises(TypeError, match="path must be a str or os.PathLike, got int"):
        sj.load(3)


def test_from_xarray_rejects_foreign_datasets():
    import xarray as xr  # installed by the [test] extra
    with pytest.raises(ValueError, match="no 'sweepjax_format' attribute"):
        sj.SweepResult.from_xarray(xr.Dataset())


def test_save_to_missing_folder_or_onto_a_folder(saved, tmp_path):
    _, res = saved
    with pytest.raises(FileNotFoundError, match="cannot write sweep result to .*No such file or directory"):
        res.save(tmp_path / "no" / "x.npz")
    with pytest.raises(FileNotFoundError, match="cannot write sweep result"):
        res.to_netcdf(tmp_path / "no" / "x.nc")
    (tmp_path / "d.npz").mkdir()
    with pytest.raises(IsADirectoryError, match="cannot write sweep result to .*Is a directory"):
        res.save(tmp_path / "d.npz")
    assert list(tmp_path.iterdir()) == [tmp_path / "d.npz"]  # no temporary files left behind


# -- sweep --------------------------------------------------------------------------------------

BAD_SWEEP = [
    (dict(dtype="nonsense"), ValueError, "dtype must be float32 or float64, got 'nonsense'"),
    (dict(dtype=jnp.float16), ValueError, "dtype must be float32 or float64, got float16"),
    (dict(num_steps=True), ValueError, "num_steps must be a positive int, got True"),
    (dict(max_steps=[2.5]), TypeError, r"max_steps must hold whole numbers of steps, got dtype float64 with values \[2.5"),
    (dict(max_steps=[np.nan]), TypeError, r"whole numbers of steps.*\[nan\]"),
    (dict(divergence_threshold=np.nan), ValueError, "divergence_threshold must be a positive number"),
    (dict(divergence_threshold="1e6"), ValueError, "divergence_threshold must be a positive number"),
    (dict(progress="yes"), TypeError, "progress must be a bool or a callback"),
    (dict(inits=np.ones((1, 2), complex)), TypeError, "inits leaves must be real numeric arrays, got dtype complex128"),
    (dict(inits=np.array([[1, None]], dtype=object)), TypeError, "got dtype object"),
    (dict(inits="ab"), TypeError, "inits leaves must be real numeric arrays"),
    (dict(inits=None), ValueError, "inits is empty"),
    (dict(lrs="0.1"), TypeError, "lrs must be a real numeric array"),
    (dict(lrs=None), TypeError, "lrs must be a real numeric array, got dtype object"),
    (dict(chunk_size=2.0), ValueError, "chunk_size must be a positive int or None, got 2.0"),
    (dict(batch_size=True), ValueError, "batch_size must be a positive int or None, got True"),
    (dict(record=sj.Record), TypeError, "record must be a sweepjax.Record"),
    (dict(out_dir=3), TypeError, "out_dir must be a str or os.PathLike folder, got int"),
    (
        dict(problem=Objective(lambda th: jnp.sum(th**2), observables={"bad": lambda th: th @ jnp.ones(5)})),
        ValueError,
        "Objective.loss/observables failed on one init point \\(TypeError: dot_general",
    ),
    (
        dict(problem=Objective(lambda th: jnp.sum(th**2), observables={"r": lambda th: 1 / 0})),
        ValueError,
        "failed on one init point \\(ZeroDivisionError: division by zero\\)",
    ),
    (dict(problem=Objective(lambda th: jnp.sum(th**2), observables={"v": lambda th: th > 0})), TypeError,
     r"observable 'v' must be a numeric scalar or array"),  # fmt: skip
    (dict(problem=Objective(lambda th: jnp.sum(th**2), observables={"sharpness": lambda th: th[0]})), ValueError,
     "observable name 'sharpness' clashes with a built-in record"),  # fmt: skip
    (dict(problem=Objective(lambda th: jnp.sum(th.astype(jnp.int32)))), TypeError,
     "Objective.loss must return a floating-point scalar, got dtype int32"),  # fmt: skip
    # finite in float64 but not in the float32 the sweep runs in (NumPy only warns about the cast)
    (dict(lrs=[1e40, 0.1]), ValueError, r"lrs must be finite and positive in the sweep dtype float32: \[1e\+40\]"),
    (dict(lrs=[1e-50]), ValueError, r"lrs must be finite and positive in the sweep dtype float32: \[1e-50\] become \[0.0\]"),
    (dict(max_result_bytes=0), ValueError, "max_result_bytes must be a positive int or None, got 0"),
    (dict(max_result_bytes=1.5e9), ValueError, "max_result_bytes must be a positive int or None"),
]


@pytest.mark.parametrize("override,error,words", BAD_SWEEP)
def test_bad_sweep_arguments(override, error, words):
    kw = {**dict(problem=P, lrs=[0.1], inits=np.ones((1, 2)), num_steps=2, record=sj.Record(every=1)), **override}
    with pytest.raises(error, match=words):
        sj.sweep(kw.pop("problem"), kw.pop("lrs"), kw.pop("inits"), **kw)


def test_unwritable_out_dir(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")
    kw = dict(num_steps=2, record=sj.Record(every=1))
    with pytest.raises(ValueError, match="out_dir '.*afile' exists and is not a folder"):
        sj.sweep(P, [0.1], np.ones((1, 2)), **kw, out_dir=afile)
    with pytest.raises(OSError, match="cannot create out_dir '.*sub': Not a directory"):
        sj.sweep(P, [0.1], np.ones((1, 2)), **kw, out_dir=afile / "sub")


# -- configuration objects and helpers ------------------------------------------------------------


@pytest.mark.parametrize(
    "make,error,words",
    [
        (lambda: sj.Record(sharpness_dtype=jnp.int32), ValueError, "sharpness_dtype=...\\) must be None, float32 or"),
        (lambda: sj.Record(sharpness_dtype="x"), ValueError, "must be None, float32 or float64, got 'x'"),
        (lambda: sj.Record(sharpness=None, sharpness_dtype=jnp.float64), ValueError, "needs a sharpness solver"),
        (lambda: sj.Record(every=2.0), ValueError, "Record\\(every=...\\) must be a positive int, got 2.0"),
        (lambda: sj.Record(observables=1), TypeError, "Record\\(observables=...\\) must be a bool, got 1"),
        (lambda: sj.PowerIteration(num_iters=0), ValueError, "num_iters must be a positive int, got 0"),
        (lambda: sj.Lanczos(order=True), ValueError, "order must be a positive int, got True"),
        (lambda: sj.time_horizon([0.1], 0), ValueError, "horizon must be a positive finite number, got 0"),
        (lambda: sj.time_horizon([0.1], float("nan")), ValueError, "horizon must be a positive finite number, got nan"),
        (lambda: sj.time_horizon([0.1], "1"), ValueError, "horizon must be a positive finite number, got '1'"),
        (lambda: sj.time_horizon([-1.0], 1.0), ValueError, "lrs must be a non-empty array of positive finite"),
        (lambda: ProductLoss("beta"), ValueError, "beta is required for loss='beta'"),
        (lambda: ProductLoss(3), ValueError, "loss must be one of"),
        (lambda: Objective(3), TypeError, "loss_fn must be callable, got int"),
        (lambda: Objective(lambda t: t, observables={"a": 3}), TypeError, "observables must map names to callables"),
    ],
)
def test_bad_configuration(make, error, words):
    with pytest.raises(error, match=words):
        make()


def test_float_dtype_strings_are_accepted():
    assert sj.Record(sharpness_dtype="float64").sharpness_dtype == np.float64
    assert sj.Record(sharpness_dtype=None).sharpness_dtype is None


# -- CLI ----------------------------------------------------------------------------------------


def test_cli_write_failure_is_one_line_exit_2(tmp_path, capsys):
    """The CLI has no subcommand that loads files; its one file error is failing to write its outputs."""
    (tmp_path / "product_sqrt.npz").mkdir()  # the demo's output path is taken by a folder
    argv = ["demo", "--quick", "--n-lr", "2", "--n-init", "2", "--steps", "10", "--out", str(tmp_path)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sweepjax: error: cannot write sweep result to ")
    assert "Is a directory" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "budget,words",
    [
        (0, "memory_budget_bytes must be a positive int or None, got 0"),
        (1.5e6, "memory_budget_bytes must be a positive int or None, got 1500000.0"),
        (100, "memory_budget_bytes=100 is too small: the grid's inputs take ~.* bytes and one run ~.* more"),
    ],
)
def test_bad_memory_budget(budget, words):
    with pytest.raises(ValueError, match=words):
        sj.sweep(P, [0.1, 0.2], np.ones((3, 2)), num_steps=2, record=sj.Record(every=1), memory_budget_bytes=budget)


def test_float64_sweeps_accept_step_sizes_beyond_float32():
    res = sj.sweep(P, [1e40, 0.1], np.ones((1, 2)), num_steps=2, record=sj.Record(every=1), dtype=jnp.float64)
    assert res.diverged[0].all() and not res.diverged[1].any()


# -- warnings where the result is probably not what was meant ---------------------------------------------

W_KW = dict(num_steps=4, record=sj.Record(every=2))
W_INITS = P.init_grid(np.array([2.0, 4.0]), x0=0.5)


def test_a_complete_optax_optimizer_passed_as_a_direction_warns():
    import optax

    with pytest.warns(UserWarning, match=r"already scales by its own negative learning rate.*lambda lr: optax.adam"):
        sj.sweep(P, [0.1, 0.2], W_INITS, **W_KW, optimizer=optax.adam(1e-3))


def test_a_factory_that_ignores_its_step_size_warns():
    import optax

    with pytest.warns(UserWarning, match="the step size is ignored and every lr gives the same runs"):
        res = sj.sweep(P, [0.1, 0.2], W_INITS, **W_KW, optimizer=lambda lr: optax.adam(1e-3))
    np.testing.assert_array_equal(res.final["loss"][0], res.final["loss"][1])  # what the warning is about


@pytest.mark.parametrize("name", ["direction", "factory", "none"])
def test_well_formed_optimizers_do_not_warn(name, recwarn):
    import optax

    optimizer = {"direction": optax.scale_by_adam(), "factory": lambda lr: optax.sgd(lr, momentum=0.9), "none": None}
    sj.sweep(P, [0.1, 0.2], W_INITS, **W_KW, optimizer=optimizer[name])
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_a_loss_non_finite_at_every_init_warns():
    bad = Objective(lambda th: jnp.log(-jnp.sum(th**2)))  # log of a negative number: NaN everywhere
    with pytest.warns(UserWarning, match="every run diverged at step 0"):
        res = sj.sweep(bad, [0.1, 0.2], np.ones((2, 2)), **W_KW)
    assert (res.diverged_step == 0).all()

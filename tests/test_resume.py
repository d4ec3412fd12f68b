"""Resumable sweeps: chunks saved atomically, skipped on re-run, bitwise equal to one uninterrupted run."""

import json
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from unittest import mock

import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _asserts import assert_bitwise_equal

import sweepjax as sj
from sweepjax import _sweep
from sweepjax.problems import Objective, ProductLoss

P = ProductLoss("sqrt")
LRS = np.geomspace(0.05, 1.5, 5)
INITS = P.init_grid(np.array([1.0, 4.0, 9.0]), x0=0.5)
KW = dict(num_steps=40, record=sj.Record(every=10), chunk_size=4)  # 15 runs -> 4 chunks





@pytest.fixture
def chunk_calls():
    """Counts the compiled-chunk calls (i.e. chunks actually computed)."""
    calls = []
    original = _sweep._run_chunk

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    with mock.patch.object(_sweep, "_run_chunk", counting):
        yield calls


def test_resume_skips_finished_chunks_and_is_bitwise_equal(tmp_path, chunk_calls):
    ref = sj.sweep(P, LRS, INITS, **KW)
    assert len(chunk_calls) == 4
    first = sj.sweep(P, LRS, INITS, **KW, out_dir=tmp_path)
    assert len(chunk_calls) == 8
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"chunk_{c:05d}.npz" for c in range(4)] + ["manifest.json"]
    assert_bitwise_equal(first, ref)
    again = sj.sweep(P, LRS, INITS, **KW, out_dir=tmp_path)
    assert len(chunk_calls) == 8  # nothing recomputed
    assert_bitwise_equal(again, ref)
    # lose two chunks (as if killed before they finished): only those are recomputed
    (tmp_path / "chunk_00001.npz").unlink()
    (tmp_path / "chunk_00003.npz").unlink()
    resumed = sj.sweep(P, LRS, INITS, **KW, out_dir=tmp_path)
    assert len(chunk_calls) == 10
    assert_bitwise_equal(resumed, ref)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["n_chunks"] == 4 and "chunk_size" in manifest["fields"]


def test_damaged_chunk_is_recomputed(tmp_path, chunk_calls):
    ref = sj.sweep(P, LRS, INITS, **KW, out_dir=tmp_path)
    (tmp_path / "chunk_00002.npz").write_bytes(b"PK\x03\x04 garbage")
    with pytest.warns(UserWarning, match=r"'chunk_00002.npz' is not used: it cannot be read.*recomputing chunk 2"):
        again = sj.sweep(P, LRS, INITS, **KW, out_dir=tmp_path)
    assert len(chunk_calls) == 5
    assert_bitwise_equal(again, ref)


def test_a_chunk_file_copied_onto_another_index_is_not_loaded(tmp_path, chunk_calls):
    ref = sj.sweep(P, LRS, INITS, **KW, out_dir=tmp_path)
    shutil.copy(tmp_path / "chunk_00000.npz", tmp_path / "chunk_00001.npz")  # a valid file of this sweep
    with pytest.warns(UserWarning, match="'chunk_00001.npz' is not used: it belongs to another chunk"):
        again = sj.sweep(P, LRS, INITS, **KW, out_dir=tmp_path)
    assert len(chunk_calls) == 4 + 1  # chunk 1 recomputed, not taken from chunk 0's file
    assert_bitwise_equal(again, ref)
    other = tmp_path / "other"  # a chunk of another configuration at the right index
    sj.sweep(P, LRS * 0.5, INITS, **KW, out_dir=other)
    shutil.copy(other / "chunk_00003.npz", tmp_path / "chunk_00003.npz")
    with pytest.warns(UserWarning, match="'chunk_00003.npz' is not used: it belongs to another chunk or sweep"):
        assert_bitwise_equal(sj.sweep(P, LRS, INITS, **KW, out_dir=tmp_path), ref)


def test_a_manifest_of_another_format_or_not_ours_is_refused(tmp_path):
    sj.sweep(P, LRS, INITS, **KW, out_dir=tmp_path)
    manifest = tmp_path / "manifest.json"
    body = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**body, "format": "sweepjax.resume/1"}))
    with pytest.raises(ValueError, match=r"written in resume format 'sweepjax.resume/1' by another sweepjax version"):
        sj.sweep(P, LRS, INITS, **KW, out_dir=tmp_path)
    for foreign in ({**body, "format": "someone-else/1"}, {"format": body["format"]}, [1, 2]):
        manifest.write_text(json.dumps(foreign))
        with pytest.raises(ValueError, match="is not a sweepjax resume manifest"):
            sj.sweep(P, LRS, INITS, **KW, out_dir=tmp_path)


@pytest.mark.parametrize(
    "change, fields",
    [
        (dict(lrs=LRS * 1.0000001), "lrs"),
        (dict(inits=INITS + 1e-6), "inits"),
        (dict(num_steps=50), "budgets, num_steps"),
        (dict(record=sj.Record(every=20)), "record"),
        (dict(record=sj.Record(every=10, sharpness=sj.Lanczos(order=2))), "record, sharpness"),
        (dict(chunk_size=5), "chunk_size"),
        (dict(batch_size=2), "batch_size"),
        # inits are cast to the dtype, and the loss and the step compute in it
        (dict(dtype=jnp.float64), "dtype, inits, problem.computation, rule"),
        (dict(divergence_threshold=1e5), "divergence_threshold"),
        (dict(problem=ProductLoss("rsym")), "problem.computation"),
        (dict(optimizer=optax.scale_by_adam()), "rule"),
    ],
)
def test_changed_configuration_is_refused_naming_the_fields(tmp_path, change, fields):
    sj.sweep(P, LRS, INITS, **KW, out_dir=tmp_path)
    kw = {**KW, "problem": P, "lrs": LRS, "inits": INITS, **change}
    with pytest.raises(ValueError, match="different sweep configuration") as err:
        sj.sweep(kw.pop("problem"), kw.pop("lrs"), kw.pop("inits"), **kw, out_dir=tmp_path)
    differing = str(err.value).split("configuration: ")[1].split(" differ")[0]
    assert differing == fields


def test_family_parameter_and_optimizer_hyperparameters_are_part_of_the_configuration(tmp_path):
    beta = ProductLoss("beta", beta=2.0)
    sj.sweep(beta, LRS, INITS, **KW, out_dir=tmp_path / "a")
    with pytest.raises(ValueError, match="problem.data differ"):
        sj.sweep(ProductLoss("beta", beta=2.5), LRS, INITS, **KW, out_dir=tmp_path / "a")
    sj.sweep(P, LRS, INITS, **KW, optimizer=lambda lr: optax.sgd(lr, momentum=0.9), out_dir=tmp_path / "b")
    sj.sweep(P, LRS, INITS, **KW, optimizer=lambda lr: optax.sgd(lr, momentum=0.9), out_dir=tmp_path / "b")
    with pytest.raises(ValueError, match="rule differ"):
        sj.sweep(P, LRS, INITS, **KW, optimizer=lambda lr: optax.sgd(lr, momentum=0.5), out_dir=tmp_path / "b")


def test_out_dir_must_be_a_folder_we_can_write(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(ValueError, match="not a folder"):
        sj.sweep(P, LRS, INITS, **KW, out_dir=afile)
    with pytest.raises(OSError, match="cannot create out_dir"):
        sj.sweep(P, LRS, INITS, **KW, out_dir=afile / "sub")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a sweepjax resume manifest"):
        sj.sweep(P, LRS, INITS, **KW, out_dir=tmp_path / "foreign")


DRILL = """
import pathlib, time, sys
import numpy as np
import sweepjax as sj
from sweepjax.problems import Objective, ProductLoss

out, marker = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
p = ProductLoss("sqrt")

def progress(done, total):
    if done == 2:
        marker.write_text("2")
        time.sleep(600)  # wait here to be killed mid-sweep

sj.sweep(p, np.geomspace(0.05, 1.5, 5), p.init_grid(np.array([1.0, 4.0, 9.0]), x0=0.5), num_steps=40,
         record=sj.Record(every=10), out_dir=out, progress=progress, {kwargs})
"""


def _kill_dash_nine_after_two_pieces(tmp_path, kwargs: str):
    """Run DRILL in a subprocess, SIGKILL it once two pieces (chunks or segments) are saved; its out_dir."""
    script = tmp_path / "drill.py"
    script.write_text(textwrap.dedent(DRILL).replace("{kwargs}", kwargs))
    out, marker = tmp_path / "out", tmp_path / "marker"
    proc = subprocess.Popen([sys.executable, str(script), str(out), str(marker)])
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, f"drill exited early with code {proc.returncode}"
            assert time.monotonic() < deadline, "drill did not save two pieces"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    return out


def test_kill_dash_nine_and_resume(tmp_path, chunk_calls):
    out = _kill_dash_nine_after_two_pieces(tmp_path, "chunk_size=4")
    assert sorted(p.name for p in out.glob("chunk_*.npz")) == ["chunk_00000.npz", "chunk_00001.npz"]
    (out / ".chunk_00002.npz.deadbeef.tmp").write_bytes(b"PK\x03\x04 half a chunk")  # as if killed mid-write
    resumed = sj.sweep(P, LRS, INITS, **KW, out_dir=out)
    assert not list(out.glob(".*.tmp"))
    assert len(chunk_calls) == 2  # chunks 2 and 3 only
    assert_bitwise_equal(resumed, sj.sweep(P, LRS, INITS, **KW))


def _dict_loss(th):
    return 0.5 * jnp.sum(th["a"] ** 2) + 2.0 * th["b"] ** 2


def test_resume_with_pytree_params_and_mapped_batches(tmp_path, chunk_calls):
    from sweepjax.problems import Objective

    prob = Objective(_dict_loss, params_like={"a": jnp.zeros(2), "b": jnp.zeros(())})
    inits = {"a": np.ones((3, 2)), "b": np.linspace(0.5, 1.5, 3)}
    kw = dict(num_steps=20, record=sj.Record(every=5, sharpness=None), chunk_size=2, batch_size=2)
    ref = sj.sweep(prob, [0.1, 0.3, 0.6], inits, **kw)
    sj.sweep(prob, [0.1, 0.3, 0.6], inits, **kw, out_dir=tmp_path)
    n = len(chunk_calls)
    (tmp_path / "chunk_00002.npz").unlink()
    again = sj.sweep(prob, [0.1, 0.3, 0.6], inits, **kw, out_dir=tmp_path)
    assert len(chunk_calls) == n + 1 and n == 2 * 5  # 9 runs in chunks of 2
    assert_bitwise_equal(again, ref)
    assert again.final_params["b"].shape == (3, 3)


# ----------------------------------------------------------------------------- checkpoints along the step axis

SEG_KW = dict(num_steps=40, record=sj.Record(every=10))  # one chunk of 15 runs, 5 records


def test_checkpointed_sweep_is_bitwise_equal_and_leaves_only_the_chunk(tmp_path, chunk_calls):
    from sweepjax.problems import Objective

    prob = Objective(_dict_loss, params_like={"a": jnp.zeros(2), "b": jnp.zeros(())})
    inits, lrs = {"a": np.ones((3, 2)), "b": np.linspace(0.5, 1.5, 3)}, [0.1, 0.3, 0.6]
    ref = sj.sweep(prob, lrs, inits, **SEG_KW)
    assert ref.diverged[-1].all() and not ref.diverged[:-1].any()  # η = 0.6 > 2/4: divergence is carried too
    n = len(chunk_calls)
    seg = sj.sweep(prob, lrs, inits, **SEG_KW, out_dir=tmp_path, checkpoint_every=20)
    assert len(chunk_calls) - n == 3  # records {0, 10}, {20, 30}, {40}: one call per segment
    assert_bitwise_equal(seg, ref)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chunk_00000.npz", "manifest.json"]


@pytest.mark.slow
def test_checkpoints_carry_optimizer_state_budgets_and_warm_starts(tmp_path):
    from sweepjax.problems import Objective

    prob = Objective(_dict_loss, params_like={"a": jnp.zeros(2), "b": jnp.zeros(())})
    inits = {"a": np.linspace(1, 2, 6).reshape(3, 2), "b": np.linspace(0.5, 1.5, 3)}
    lrs = [0.05, 0.2, 0.45]
    kw = dict(
        num_steps=30, record=sj.Record(every=3, sharpness=sj.Lanczos(order=2)), batch_size=2, chunk_size=4,
        optimizer=lambda lr: optax.sgd(lr, momentum=0.9), max_steps=np.array([30, 14, 7]),
    )  # fmt: skip
    ref = sj.sweep(prob, lrs, inits, **kw)
    seg = sj.sweep(prob, lrs, inits, **kw, out_dir=tmp_path, checkpoint_every=9)
    assert_bitwise_equal(seg, ref)


class _Stop(Exception):
    pass


def _stop_after(pieces: int):
    def progress(done, total):
        if done == pieces:
            raise _Stop

    return progress


@pytest.mark.slow
def test_resuming_from_a_carry_on_disk_restores_optimizer_state_and_warm_starts(tmp_path, chunk_calls):
    # momentum and the Lanczos start vector both live only in the carry: resetting either one on resume
    # changes every later step or sharpness estimate of this 6-parameter problem
    prob = Objective(lambda th: 0.5 * jnp.sum(jnp.arange(1.0, 7.0) * th**2) + 0.1 * jnp.sum(th**4))
    inits = np.linspace(0.2, 1.0, 12).reshape(2, 6)
    kw = dict(
        num_steps=40, record=sj.Record(every=5, sharpness=sj.Lanczos(order=2)), batch_size=2,
        optimizer=lambda lr: optax.sgd(lr, momentum=0.9),
    )  # fmt: skip
    ref = sj.sweep(prob, [0.02, 0.05], inits, **kw)
    with pytest.raises(_Stop):  # killed after 2 of 4 segments: their records and the carry are on disk
        sj.sweep(prob, [0.02, 0.05], inits, **kw, out_dir=tmp_path, checkpoint_every=10, progress=_stop_after(2))
    assert (tmp_path / "chunk_00000.carry.npz").exists()
    n = len(chunk_calls)
    resumed = sj.sweep(prob, [0.02, 0.05], inits, **kw, out_dir=tmp_path, checkpoint_every=10)
    assert len(chunk_calls) - n == 3  # segments 2, 3, 4 only, from the loaded carry
    assert_bitwise_equal(resumed, ref)


@pytest.mark.slow
def test_a_chunk_resumes_from_its_last_carry(tmp_path, chunk_calls):
    ref = sj.sweep(P, LRS, INITS, **SEG_KW)
    sj.sweep(P, LRS, INITS, **SEG_KW, out_dir=tmp_path, checkpoint_every=10)
    assert len(chunk_calls) == 1 + 5
    # as if killed after segment 2 (records at 0, 10, 20): recreate that state from a fresh run
    (tmp_path / "chunk_00000.npz").unlink()
    kill_after = {"segment": 2}

    class Killed(Exception):
        pass

    def progress(done, total):
        if done == kill_after["segment"] + 1:
            raise Killed

    with pytest.raises(Killed):
        sj.sweep(P, LRS, INITS, **SEG_KW, out_dir=tmp_path, checkpoint_every=10, progress=progress)
    names = sorted(p.name for p in tmp_path.glob("chunk_*"))
    assert names == ["chunk_00000.carry.npz"] + [f"chunk_00000.part_{s:05d}.npz" for s in range(3)]
    n = len(chunk_calls)
    resumed = sj.sweep(P, LRS, INITS, **SEG_KW, out_dir=tmp_path, checkpoint_every=10)
    assert len(chunk_calls) - n == 2  # segments 3 and 4 only
    assert_bitwise_equal(resumed, ref)
    assert sorted(p.name for p in tmp_path.glob("chunk_*")) == ["chunk_00000.npz"]


@pytest.mark.slow
def test_a_carry_of_another_segment_length_or_damaged_restarts_the_chunk(tmp_path, chunk_calls):
    ref = sj.sweep(P, LRS, INITS, **SEG_KW)

    def stop_at(k):
        def progress(done, total):
            if done == k:
                raise KeyboardInterrupt

        return progress

    with pytest.raises(KeyboardInterrupt):
        sj.sweep(P, LRS, INITS, **SEG_KW, out_dir=tmp_path, checkpoint_every=10, progress=stop_at(2))
    n = len(chunk_calls)
    with pytest.warns(UserWarning, match="'chunk_00000.carry.npz' is not used: it belongs to another"):
        other = sj.sweep(P, LRS, INITS, **SEG_KW, out_dir=tmp_path, checkpoint_every=20)
    assert len(chunk_calls) - n == 3  # from the chunk's start, in 3 segments of 2, 2 and 1 records
    assert_bitwise_equal(other, ref)
    (tmp_path / "chunk_00000.npz").unlink()
    with pytest.raises(KeyboardInterrupt):
        sj.sweep(P, LRS, INITS, **SEG_KW, out_dir=tmp_path, checkpoint_every=10, progress=stop_at(3))
    (tmp_path / "chunk_00000.part_00001.npz").write_bytes(b"PK\x03\x04 garbage")
    n = len(chunk_calls)
    with pytest.warns(UserWarning, match="'chunk_00000.part_00001.npz' is not used: it cannot be read"):
        again = sj.sweep(P, LRS, INITS, **SEG_KW, out_dir=tmp_path, checkpoint_every=10)
    assert len(chunk_calls) - n == 5
    assert_bitwise_equal(again, ref)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(checkpoint_every=10), "checkpoint_every needs out_dir"),
        (dict(checkpoint_every=15, out_dir="x"), "multiple of record.every=10"),
        (dict(checkpoint_every=0, out_dir="x"), "checkpoint_every must be a positive int"),
        (dict(checkpoint_every=2.0, out_dir="x"), "checkpoint_every must be a positive int"),
    ],
)
def test_bad_checkpoint_every_is_refused_before_compiling(kwargs, match, tmp_path, chunk_calls):
    if "out_dir" in kwargs:
        kwargs = {**kwargs, "out_dir": tmp_path / kwargs["out_dir"]}
    with pytest.raises(ValueError, match=match):
        sj.sweep(P, LRS, INITS, **SEG_KW, **kwargs)
    assert not chunk_calls and not (tmp_path / "x").exists()


@pytest.mark.slow
def test_kill_dash_nine_mid_chunk_and_resume_from_the_carry(tmp_path, chunk_calls):
    out = _kill_dash_nine_after_two_pieces(tmp_path, "checkpoint_every=10")
    assert sorted(p.name for p in out.glob("chunk_*")) == [
        "chunk_00000.carry.npz", "chunk_00000.part_00000.npz", "chunk_00000.part_00001.npz",
    ]  # fmt: skip
    resumed = sj.sweep(P, LRS, INITS, **SEG_KW, out_dir=out, checkpoint_every=10)
    assert len(chunk_calls) == 3  # segments 2, 3 and 4
    assert_bitwise_equal(resumed, sj.sweep(P, LRS, INITS, **SEG_KW))

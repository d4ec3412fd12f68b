"""Named experiments: each runs quick in-process through ``sweepjax reproduce`` and its files load back."""

import json

import numpy as np
import pytest

import sweepjax as sj
from sweepjax import cli, experiments

NAMES = ["product-phase-diagram", "ahn-mean-model", "ahn-relu-figure1", "huang-linear", "huang-catapult"]


def test_registry_names():
    assert list(experiments.REGISTRY) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_reproduce_quick_writes_loadable_files(name, tmp_path, capsys):
    out = tmp_path / name
    assert cli.main(["reproduce", name, "--quick", "--out", str(out), "--format", "both"]) == 0
    stdout = capsys.readouterr().out
    png, summary = out / f"{name}.png", out / f"{name}.json"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    headline = json.loads(summary.read_text())["headline"]
    assert headline and all({"ours", "paper"} <= set(h) for h in headline.values())
    for key in headline:
        assert key in stdout  # printed beside the paper's number
    npzs = sorted(out.glob("*.npz"))
    assert npzs and len(npzs) == len(list(out.glob("*.nc")))
    for npz in npzs:
        res, res_nc = sj.load(npz), sj.load(npz.with_suffix(".nc"))
        assert isinstance(res, sj.SweepResult) and res.shape == res_nc.shape
        np.testing.assert_array_equal(res.final["loss"], res_nc.final["loss"])
        assert str(npz) in stdout
    check = HEADLINE_CHECKS.get(name)
    if check:
        check({k: h["ours"] for k, h in headline.items()})


def _mean_model(h):
    assert h["b_inf at eta = 10 pi/d^2"] < -0.087  # Theorem 4: b∞ < g⁻¹(2/√(10π))
    assert h["max |b_inf| for eta < 8 pi/d^2"] < 0.01  # Theorem 3: O(1/d²)
    assert 1.0 <= h["located eta*(b_inf < -0.01) / (8 pi/d^2), median over A0"] < 1.5


def _huang_linear(h):
    assert h["max rel. error of located eta_c (exp) vs 2w0/sinh w0"] < 0.05
    assert h["max rel. error of located eta_c (logistic) vs 4w0/tanh(w0/2)"] < 0.05


def _huang_catapult(h):
    assert h["fraction of runs in the predicted phase"] >= 0.8
    assert 8 <= h["smallest eta*lambda0 classified CATAPULT (median)"] < 12


HEADLINE_CHECKS = {"ahn-mean-model": _mean_model, "huang-linear": _huang_linear, "huang-catapult": _huang_catapult}


def test_unknown_name_exits_2_listing_known_names(tmp_path, capsys):
    assert cli.main(["reproduce", "no-such-thing", "--quick", "--out", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sweepjax: error: unknown experiment 'no-such-thing'")
    assert all(name in lines[0] for name in NAMES) and captured.out == ""
    with pytest.raises(ValueError, match="known: product-phase-diagram"):
        experiments.run("no-such-thing")


def test_bad_format_and_out_is_a_file(tmp_path, capsys):
    assert cli.main(["reproduce", "huang-linear", "--format", "csv", "--out", str(tmp_path)]) == 2
    assert "--format" in capsys.readouterr().err
    afile = tmp_path / "afile"
    afile.write_text("")
    assert cli.main(["reproduce", "huang-linear", "--quick", "--out", str(afile)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sweepjax: error: ") and "not a folder" in err[0]


def test_list(capsys):
    assert cli.main(["list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == NAMES

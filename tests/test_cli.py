import subprocess
import sys

import numpy as np
import pytest

import sweepjax as sj
from sweepjax import cli


def test_demo_quick_writes_npz_and_png(tmp_path, capsys):
    out = tmp_path / "demo"
    assert cli.main(["demo", "--quick", "--out", str(out)]) == 0
    npz, png = out / "product_sqrt.npz", out / "product_sqrt.png"
    assert npz.is_file() and png.is_file()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = sj.load(npz)
    n_lr, n_init = cli.QUICK["n_lr"], cli.QUICK["n_init"]
    assert res.shape == (n_lr, n_init)
    assert res["final_sharpness"].shape == (n_lr, n_init)
    assert res.metadata["num_steps"] == cli.QUICK["steps"]
    assert np.asarray(res.inits).shape == (n_init, 2)
    np.testing.assert_allclose(res.lrs, np.geomspace(*cli.DEMO_LR_RANGE, n_lr), rtol=1e-6)
    stdout = capsys.readouterr().out
    assert str(npz) in stdout and str(png) in stdout and "within 5%" in stdout


def test_demo_sizes_override_quick(tmp_path):
    assert cli.main(["demo", "--quick", "--n-lr", "3", "--n-init", "2", "--steps", "100", "--out", str(tmp_path)]) == 0
    assert sj.load(tmp_path / "product_sqrt.npz").shape == (3, 2)


@pytest.mark.parametrize(
    "argv, words",
    [
        (["demo", "--n-lr", "0"], "--n-lr"),
        (["demo", "--steps", "many"], "--steps"),
        (["demo", "--bogus"], "unrecognized"),
        ([], "required"),
        (["demo", "--quick", "--lr-min", "1", "--lr-max", "0.1"], "lr-min < lr-max"),  # a ValueError from the demo
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv, words, capsys, tmp_path):
    assert cli.main([*argv, "--out", str(tmp_path)] if argv else argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sweepjax: error: ") and words in lines[0]
    assert "Traceback" not in captured.err and captured.out == ""


def test_out_is_a_file(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("")
    assert cli.main(["demo", "--quick", "--out", str(afile)]) == 2
    assert capsys.readouterr().err.startswith("sweepjax: error: ")


def test_python_dash_m(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "sweepjax", "demo", "--n-init", "-3"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["sweepjax: error: argument --n-init: expected a positive integer, got -3"]

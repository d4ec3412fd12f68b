"""benchmarks/accelerator.py runs end to end at toy sizes (``--tiny``) and writes a JSON with every case
measured: finite, positive times and rates, and the ratio of the sweep to the loop of jitted runs."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CASES = ("product", "mlp", "sgd", "fractal")
POSITIVE = ("sweep_steady_s", "sweep_run_steps_per_s", "loop_per_run_s", "loop_steady_s", "loop_run_steps_per_s", "sweep_vs_loop")


def run_script(name: str, *args: str, out, timeout: int):
    """``benchmarks/<name> *args --out out`` in a subprocess on the CPU: (the process, its JSON)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / name), *args, "--out", str(out)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, json.loads(out.read_text())


def test_accelerator_script_tiny(tmp_path):  # ~20 s on 2 cores: under the 30 s that would make it slow
    pytest.importorskip("sklearn")
    proc, data = run_script("accelerator.py", "--tiny", out=tmp_path / "acc.json", timeout=300)
    assert data["mode"] == "tiny" and data["backend"] == "cpu"
    assert set(data["cases"]) == set(CASES)
    for name, case in data["cases"].items():
        assert "error" not in case and "skipped" not in case, (name, case)
        for key in POSITIVE:
            assert math.isfinite(case[key]) and case[key] > 0, (name, key, case[key])
        assert math.isfinite(case["sweep_compile_s"]) and case["sweep_compile_s"] >= 0
        assert math.isfinite(case["loop_compile_s"]) and case["loop_compile_s"] >= 0
        assert case["runs"] > 0 and case["steps"] > 0 and 0 < case["loop_runs_timed"] <= case["runs"]
    fractal = data["cases"]["fractal"]
    assert math.isfinite(fractal["sweep_vs_public"]) and fractal["sweep_vs_public"] > 0
    # the markdown table on stdout names every case; progress lines on stderr carry timestamps
    assert proc.stdout.count("\n| (") == len(CASES)
    assert "] (iv) fractal" in proc.stderr


def test_accelerator_budget_guard_skips_cases(tmp_path):
    """With no budget left, every case is recorded as skipped (nothing is compiled)."""
    _, data = run_script("accelerator.py", "--tiny", "--budget-s", "0", out=tmp_path / "acc.json", timeout=120)
    assert set(data["cases"]) == set(CASES)
    assert all("skipped" in case for case in data["cases"].values())


def test_curvature_script_tiny(tmp_path):  # ~20 s on 2 cores
    """benchmarks/bench_curvature.py at toy sizes: every cost ratio against GD alone is finite and positive,
    and every accuracy statistic (against the float64 reference and against dense eigh) is finite."""
    pytest.importorskip("sklearn")
    proc, data = run_script("bench_curvature.py", "--tiny", out=tmp_path / "curvature.json", timeout=300)
    assert data["mode"] == "tiny"
    cost = data["cost"]
    assert {"gd", "top5_iters3", "top5_iters4", "top5_iters3_vmap", "lanczos20", "trace", "grad_norm"} <= set(cost)
    assert cost["gd"]["vs_gd"] == 1.0 and cost["gd"]["hvps_per_run"] == 0
    for name, row in cost.items():
        assert math.isfinite(row["vs_gd"]) and row["vs_gd"] > 0 and row["best_s"] > 0, (name, row)
    assert cost["top5_iters4"]["hvps_per_run"] > cost["top5_iters3"]["hvps_per_run"] > 0
    for part in ("accuracy_19k", "accuracy_dense"):
        acc = data[part]
        assert acc["runs"]["diverged"] == 0, (part, acc["runs"])
        for name in ("iters3", "iters4"):
            stats = acc[name]["all"]["all_k"]
            assert stats["n"] > 0 and all(math.isfinite(stats[k]) for k in ("median", "p90", "max")), (part, name, stats)
    assert data["accuracy_19k"]["reference_max_residual_over_lambda"] < 1e-3
    assert data["targets"] and {row["verdict"] for row in data["targets"]} <= {"met", "MISSED"}
    assert "| TopEigenvalues(k=5) every 10 |" in proc.stdout


def test_gallery_script_quick(tmp_path):  # ~10 s on 2 cores
    """benchmarks/gallery.py writes one small PNG thumbnail and its headline JSON per experiment. (Not through
    ``run_script``: that reads ``--out`` as a JSON file, and here it is a folder.)"""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    args = ["--quick", "--only", "product-phase-diagram", "--out", str(tmp_path)]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gallery.py"), *args],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    png = (tmp_path / "product-phase-diagram.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 150_000
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width == 840 and 100 < height < width
    assert json.loads((tmp_path / "product-phase-diagram.json").read_text())["quick"] is True
    assert proc.stdout.startswith("product-phase-diagram: ")

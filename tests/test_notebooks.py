"""Every notebook in notebooks/ runs top to bottom in smoke mode (SWEEPJAX_SMOKE=1 shrinks sizes), and its
``assert`` cells (checks on its numbers that hold at smoke size) pass."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ has no notebooks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_asserts_on_its_numbers(path):
    """Every notebook checks its results with ``assert`` (true at smoke size too), so a wrong number fails here."""
    nb = nbformat.read(path, as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    asserts = sum(line.lstrip().startswith("assert ") for src in code for line in src.splitlines())
    assert asserts >= 3, f"{path.name}: {asserts} assert statements"


@pytest.mark.slow  # 5–12 s each (a kernel start and a few compiled sweeps)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_smoke_mode(path, tmp_path, monkeypatch):
    monkeypatch.setenv("SWEEPJAX_SMOKE", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors

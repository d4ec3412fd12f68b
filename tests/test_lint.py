"""The tree passes ruff with the configuration in pyproject.toml, and the package ships its type marker."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_ruff_check_passes():
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_package_is_marked_as_typed():
    assert (ROOT / "sweepjax" / "py.typed").is_file()

import gc
import os
from unittest import mock

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def trace_counter():
    """Counts how often a batch of runs is traced (i.e. compiled) inside the engine: one trace per
    program, as every program runs its steps through ``Trajectory.segment``."""
    from sweepjax._trajectory import Trajectory

    calls = []
    original = Trajectory.segment

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    with mock.patch.object(Trajectory, "segment", counting):
        yield calls


@pytest.fixture(autouse=True, scope="module")
def _free_compiled_programs():
    """Drop each test module's compiled programs when it ends: the whole suite in one process otherwise
    accumulates thousands of XLA:CPU executables (memory and memory maps) until a compile crashes."""
    yield
    import jax

    jax.clear_caches()
    gc.collect()

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

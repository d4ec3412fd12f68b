import os
from unittest import mock

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def trace_counter():
    """Counts how often one run is traced (i.e. compiled) inside the engine."""
    from sweepjax._trajectory import Trajectory

    calls = []
    original = Trajectory.__call__

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    with mock.patch.object(Trajectory, "__call__", counting):
        yield calls

"""Assertions shared by the test modules."""

import jax
import numpy as np


def assert_bitwise_equal(a, b):
    """Two SweepResults hold the same bits in every record, final value, parameter and status."""
    assert sorted(a.records) == sorted(b.records) and sorted(a.final) == sorted(b.final)
    for name in a.records:
        np.testing.assert_array_equal(a.records[name], b.records[name], err_msg=name)
    for name in a.final:
        np.testing.assert_array_equal(a.final[name], b.final[name], err_msg=name)
    for x, y in zip(jax.tree.leaves(a.final_params), jax.tree.leaves(b.final_params), strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a.status, b.status)
    np.testing.assert_array_equal(a.diverged_step, b.diverged_step)

"""find_boundary with a criterion that holds only on an interior window of the bracket (e.g. "eos")."""

import numpy as np
import pytest

import sweepjax as sj


def test_interior_window_is_found_at_its_lower_edge():
    quad = sj.problems.Objective(lambda th: 0.5 * th @ th, params_like=np.zeros(1, np.float32))

    def window(res):  # True only for 1 < η < 1.5 inside the bracket (0.5, 1.9): both ends False
        lrs = np.broadcast_to(np.asarray(res.lrs).reshape(res.shape[0], -1), res.shape)
        return (lrs > 1.0) & (lrs < 1.5)

    b = sj.find_boundary(quad, np.ones((2, 1), np.float32), (0.5, 1.9), window, num_steps=1, rounds=12, points=3)
    assert b.found.all() and not b.value_at_lo.any()
    np.testing.assert_allclose(b.lr, 1.0, rtol=1e-3)
    assert np.all((b.lo <= 1.0) & (1.0 <= b.hi))
    # nothing flips anywhere on the first grid: still not found
    never = sj.find_boundary(quad, np.ones((1, 1), np.float32), (0.5, 1.9), lambda r: np.zeros(r.shape, bool), num_steps=1)
    assert not never.found.any() and np.isnan(never.lr).all()


@pytest.mark.slow
def test_eos_boundary_of_ahn_mean_model_is_8pi_over_d2():
    # regression: "eos" was NaN for every init, because at the bracket's top (2·8π/d²) the mean model's
    # limiting sharpness settles ~6% below 2/η (outside eos_tol): the rule is True only on a window
    d = 50
    model = sj.problems.AhnMeanModel(d)
    crit = sj.theory.threshold_neuron_lr(d)
    b = sj.find_boundary(model, model.init_grid([1.0]), (0.5 * crit, 2.0 * crit), "eos", horizon=10, rounds=2)
    assert b.found.all() and not b.value_at_lo.any()
    assert 0.95 < b.lr[0] / crit < 1.1 and b.lo[0] <= 1.02 * crit <= b.hi[0]

"""TanhTwoLayer (Sohl-Dickstein's fractal-boundary net): sizes, data, the loss against a NumPy forward
pass, and a per-layer step-size grid (``GD(groups=...)`` with named axes) against hand-written
per-layer GD runs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sweepjax as sj
from sweepjax.problems import TanhTwoLayer, make
from sweepjax.problems._fractal import fractal_data


def test_default_setting_has_as_many_points_as_parameters():
    p = make("tanh_two_layer")
    assert isinstance(p, TanhTwoLayer)
    assert p.X.shape == (272, 16) and p.y.shape == (272,) and p.width == 16
    shapes = p.param_shapes()
    assert shapes["w1"].shape == (16, 16) and shapes["w2"].shape == (16,)
    assert sum(np.prod(s.shape) for s in shapes.values()) == 272
    np.testing.assert_allclose(float(p.input_scale), np.sqrt(2 / 16), rtol=1e-7)
    inits = p.init(jax.random.key(0), 3)
    assert inits["w1"].shape == (3, 16, 16) and inits["w2"].shape == (3, 16)
    # N(0, 1) weights: 816 draws, mean and variance near 0 and 1
    flat = np.concatenate([np.ravel(inits["w1"]), np.ravel(inits["w2"])])
    assert abs(flat.mean()) < 0.15 and abs(flat.var() - 1) < 0.15


def test_from_seed_is_deterministic_and_seeded():
    a, b, c = TanhTwoLayer.from_seed(3), TanhTwoLayer.from_seed(3), TanhTwoLayer.from_seed(4)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.X, c.X)
    small = TanhTwoLayer.from_seed(0, width=4, input_dim=3)
    assert small.X.shape == (16, 3) and small.param_shapes()["w1"].shape == (4, 3)
    X, y = fractal_data(0, 4, 3)
    np.testing.assert_array_equal(small.X, X)
    np.testing.assert_array_equal(small.y, y)


@pytest.mark.parametrize("input_scale", [None, 1.0])
def test_loss_matches_numpy(input_scale):
    p = TanhTwoLayer.from_seed(1, width=5, input_dim=3, input_scale=input_scale)
    th = jax.tree.map(lambda a: a[0], p.init(jax.random.key(2), 1))
    X, y = np.asarray(p.X, np.float64), np.asarray(p.y, np.float64)
    W1, w2 = np.asarray(th["w1"], np.float64), np.asarray(th["w2"], np.float64)
    c = np.sqrt(2 / 3) if input_scale is None else 1.0
    f = np.array([w2 @ np.tanh(c * (W1 @ x)) / 5 for x in X])
    expected = np.mean((f - y) ** 2)  # MSE, no ½
    np.testing.assert_allclose(float(p.loss(th)), expected, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(p.outputs(th)), f, rtol=1e-5, atol=1e-6)


def test_explicit_data_and_bad_inputs():
    X = np.ones((6, 2), np.float32)
    p = TanhTwoLayer(X, np.zeros(6), width=3)
    assert p.param_shapes()["w1"].shape == (3, 2)
    with pytest.raises(ValueError, match="both X and y"):
        TanhTwoLayer(X)
    with pytest.raises(ValueError, match="y must have shape"):
        TanhTwoLayer(X, np.zeros(5))
    with pytest.raises(ValueError, match="width"):
        TanhTwoLayer(width=0)
    with pytest.raises(ValueError, match="finite"):
        TanhTwoLayer(np.full((6, 2), np.nan), np.zeros(6))


def test_per_layer_grid_equals_hand_written_per_layer_gd():
    """A sweep over (η₁, η₂) with GD(groups=...) gives, run by run, what GD with the per-layer steps
    written out by hand gives, to rounding (η·m is formed in another order). In float64: near the
    boundary the dynamics are chaotic, and float32 rounding grows to ~1e-3 within 30 steps."""
    p = TanhTwoLayer.from_seed(0, width=6, input_dim=4)
    inits = p.init(jax.random.key(1), 2)
    lr1, lr2, eta, steps, every = np.array([0.5, 4.0, 30.0]), np.array([1.0, 20.0, 300.0]), 0.7, 30, 10
    rule = sj.GD(groups={"w1": "lr1", "w2": "lr2"})
    record = sj.Record(every=every, sharpness=None, observables=False)
    res = sj.sweep(p, [eta], inits, num_steps=steps, record=record, rule=rule, axes={"lr1": lr1, "lr2": lr2},
                   dtype=jnp.float64)  # fmt: skip
    assert res.records["loss"].shape == (1, 3, 3, 2, steps // every + 1)

    @jax.jit
    def by_hand(p, h1, h2, th):
        def body(th, _):
            loss, g = jax.value_and_grad(p.loss)(th)
            return {"w1": th["w1"] - h1 * g["w1"], "w2": th["w2"] - h2 * g["w2"]}, loss

        def block(th, _):
            th, _ = jax.lax.scan(body, th, None, length=every)
            return th, None

        losses = [p.loss(th)]
        for _ in range(steps // every):
            th, _ = block(th, None)
            losses.append(p.loss(th))
        return jnp.stack(losses), th

    with jax.enable_x64(True):
        p64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a, p)
        for a, m1 in enumerate(lr1):
            for b, m2 in enumerate(lr2):
                for j in range(2):
                    th0 = jax.tree.map(lambda x, j=j: jnp.asarray(x[j], jnp.float64), inits)
                    losses, th = by_hand(p64, jnp.float64(eta * m1), jnp.float64(eta * m2), th0)
                    got = res.records["loss"][0, a, b, j]
                    if res.status[0, a, b, j] == 0:
                        np.testing.assert_allclose(got, losses, rtol=1e-9)
                        np.testing.assert_allclose(res.final_params["w1"][0, a, b, j], th["w1"], rtol=1e-8, atol=1e-12)
                        np.testing.assert_allclose(res.final_params["w2"][0, a, b, j], th["w2"], rtol=1e-8, atol=1e-12)
                    else:  # diverged in the sweep: the hand-written run blows up as well
                        assert not np.all(np.isfinite(losses)) or losses.max() > 1e6
    # the grid straddles both phases (η₂ = 0.7 · 300 diverges)
    assert set(np.unique(res.status)) == {0, 1}


def test_per_layer_multiplier_one_is_plain_gd():
    p = TanhTwoLayer.from_seed(2, width=4, input_dim=3)
    inits = p.init(jax.random.key(0), 2)
    record = sj.Record(every=5, sharpness=None, observables=False)
    grouped = sj.sweep(p, [0.3, 3.0], inits, num_steps=20, record=record, rule=sj.GD(groups={"w1": "a", "w2": "b"}))
    plain = sj.sweep(p, [0.3, 3.0], inits, num_steps=20, record=record)
    np.testing.assert_allclose(grouped.records["loss"], plain.records["loss"], rtol=1e-5)

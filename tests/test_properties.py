"""Property-based checks: random quadratics, random small networks, random grids, random exports.

Shapes are fixed per test so that every example reuses one compiled program (a compile costs
~0.5 s); examples vary only values.
"""

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from jax.flatten_util import ravel_pytree

import sweepjax as sj
from sweepjax.problems import AbstractProblem, ProductLoss

SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


class Quadratic(AbstractProblem):
    """½ θᵀAθ with A a field (a pytree leaf): new matrices do not recompile."""

    a: jax.Array

    def loss(self, params):
        return 0.5 * params @ self.a @ params


def random_spd(seed: int, eigs: np.ndarray, rotate: bool) -> np.ndarray:
    n = eigs.size
    if not rotate:
        return np.diag(eigs)
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    return q @ np.diag(eigs) @ q.T


# factors of 2/λ_max, kept ≥ 2% away from the boundary
FACTORS = st.one_of(st.floats(0.3, 0.98), st.floats(1.02, 1.6))


@SETTINGS
@given(
    eigs=hnp.arrays(np.float64, 3, elements=st.floats(0.1, 10.0)),
    rotate=st.booleans(),
    seed=st.integers(0, 2**16),
    factors=st.lists(FACTORS, min_size=4, max_size=4),
)
def test_gd_on_a_quadratic_diverges_iff_lr_exceeds_two_over_lambda_max(eigs, rotate, seed, factors):
    a = random_spd(seed, eigs, rotate)
    lam = float(np.max(eigs))
    lrs = np.array(factors) * 2 / lam
    init = np.ones((1, 3)) + 0.1 * np.random.default_rng(seed + 1).normal(size=(1, 3))
    res = sj.sweep(Quadratic(jnp.asarray(a)), lrs, init, num_steps=3000, record=sj.Record(every=3000))
    np.testing.assert_array_equal(res.diverged[:, 0], np.array(factors) > 1)
    np.testing.assert_allclose(res.records["sharpness"][0, 0, 0], lam, rtol=1e-4)


# -- a random small network: HVP and sharpness against the dense Hessian ------------------------

N_DATA, D_IN, HIDDEN = 5, 2, 3
SHAPES = {"w1": (D_IN, HIDDEN), "w2": (HIDDEN,)}
N_PARAMS = D_IN * HIDDEN + HIDDEN


def net_loss(params, x, y):
    return 0.5 * jnp.mean((jnp.tanh(x @ params["w1"]) @ params["w2"] - y) ** 2)


@jax.jit
def _curvature_facts(x, y, params, v):
    f = lambda p: net_loss(p, x, y)  # noqa: E731
    flat, unravel = ravel_pytree(params)
    dense = jax.hessian(lambda z: f(unravel(z)))(flat)
    hv = ravel_pytree(sj.hvp(f, params, unravel(v)))[0]
    lanczos = sj.sharpness(f, params, sj.Lanczos(order=N_PARAMS)).value
    exact = sj.sharpness(f, params, sj.DenseEigh()).value
    return dense, hv, lanczos, exact


@pytest.mark.slow
@SETTINGS
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(0.3, 2.0))
def test_hvp_and_sharpness_of_a_random_network_match_the_dense_hessian(seed, scale):
    with jax.enable_x64(True):
        keys = jax.random.split(jax.random.key(seed), 5)
        x = jax.random.normal(keys[0], (N_DATA, D_IN), jnp.float64)
        y = jax.random.normal(keys[1], (N_DATA,), jnp.float64)
        params = {"w1": scale * jax.random.normal(keys[2], SHAPES["w1"], jnp.float64),
                  "w2": scale * jax.random.normal(keys[3], SHAPES["w2"], jnp.float64)}  # fmt: skip
        v = jax.random.normal(keys[4], (N_PARAMS,), jnp.float64)
        dense, hv, lanczos, exact = map(np.asarray, _curvature_facts(x, y, params, v))
    np.testing.assert_allclose(hv, dense @ np.asarray(v), rtol=1e-9, atol=1e-12)
    top = np.linalg.eigvalsh(0.5 * (dense + dense.T))[-1]
    np.testing.assert_allclose(exact, top, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(lanczos, top, rtol=1e-8, atol=1e-10)


# -- random grids: vmapped == looped, chunked == unchunked --------------------------------------
# A run's bits depend on the vmap width it is computed at (XLA:CPU emits different code for a
# width-1 batch; see test_determinism.py), so "looped" (1×1 sweeps) is compared bitwise with a
# grid computed one run at a time (batch_size=1) and to rounding with the fully vmapped grid.

P = ProductLoss("sqrt")
REC = sj.Record(every=5)
LRS = st.lists(st.floats(0.01, 1.0), min_size=3, max_size=3)
GAPS = st.lists(st.floats(0.5, 10.0), min_size=2, max_size=2)


@SETTINGS
@given(lrs=LRS, gaps=GAPS, x0=st.floats(-1.0, 1.0))
@example(lrs=[1.0, 1.0, 0.99999], gaps=[1.0, 9.5], x0=0.96875)  # once off by 1 ulp in the last record
def test_vmapped_grid_equals_looped_single_runs(lrs, gaps, x0):
    inits = P.init_grid(np.array(gaps), x0=x0)
    grid = sj.sweep(P, lrs, inits, num_steps=20, record=REC)
    mapped = sj.sweep(P, lrs, inits, num_steps=20, record=REC, batch_size=1)
    for i, lr in enumerate(lrs):
        for j in range(len(gaps)):
            one = sj.sweep(P, [lr], inits[j : j + 1], num_steps=20, record=REC)  # a grid of one run
            for name in grid.records:
                np.testing.assert_array_equal(mapped.records[name][i, j], one.records[name][0, 0], err_msg=name)
                np.testing.assert_allclose(grid.records[name][i, j], one.records[name][0, 0], rtol=1e-4, atol=1e-5)
            np.testing.assert_array_equal(mapped.final_params[i, j], one.final_params[0, 0])
            np.testing.assert_allclose(grid.final_params[i, j], one.final_params[0, 0], rtol=1e-4, atol=1e-5)
            assert grid.status[i, j] == one.status[0, 0] == mapped.status[i, j]


@pytest.mark.slow
@SETTINGS
@given(lrs=st.lists(st.floats(0.01, 2.5), min_size=3, max_size=3), gaps=st.lists(st.floats(0.5, 40.0), min_size=2,
       max_size=2), chunk_size=st.integers(1, 6), batch_size=st.sampled_from([1, 2, 3]))  # fmt: skip
def test_chunked_grid_equals_unchunked_bitwise_at_a_fixed_batch_size(lrs, gaps, chunk_size, batch_size):
    inits = P.init_grid(np.array(gaps), x0=0.5)
    base = sj.sweep(P, lrs, inits, num_steps=20, record=REC, batch_size=batch_size)
    other = sj.sweep(P, lrs, inits, num_steps=20, record=REC, chunk_size=chunk_size, batch_size=batch_size)
    for name in base.records:
        np.testing.assert_array_equal(other.records[name], base.records[name], err_msg=name)
    np.testing.assert_array_equal(other.final_params, base.final_params)
    np.testing.assert_array_equal(other.diverged_step, base.diverged_step)


# -- random export contents round-trip exactly ----------------------------------------------------

ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True, width=32)


@st.composite
def results(draw):
    n_lr, n_init, n_rec = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    grid = lambda *tail, dt=dtype: draw(hnp.arrays(dt, (n_lr, n_init, *tail), elements=ANY_FLOAT))  # noqa: E731
    names = st.sampled_from(["loss", "sharpness", "xy", "a b", "x/y"])
    names = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    leaf = lambda *shape: draw(hnp.arrays(dtype, shape, elements=ANY_FLOAT))  # noqa: E731
    inits = {"w": leaf(n_init, 2), "b": [leaf(n_init)]}
    return sj.SweepResult(
        lrs=draw(hnp.arrays(np.float64, (n_lr,), elements=st.floats(1e-4, 10))),
        steps=np.arange(n_rec) * draw(st.integers(1, 5)),
        inits=inits,
        records={k: grid(n_rec) for k in names},
        final={k: grid() for k in names},
        final_params={"w": grid(2), "b": [grid()]},
        status=draw(hnp.arrays(np.int8, (n_lr, n_init), elements=st.integers(0, 1))),
        diverged_step=grid(dt=np.float64),
        num_steps=draw(hnp.arrays(np.int64, (n_lr, n_init), elements=st.integers(0, 10**6))),
        metadata={"note": draw(st.text(max_size=10)), "n": draw(st.integers(-5, 5))},
    )


def _assert_same(a, b):
    for x, y in zip(jax.tree.leaves((a.lrs, a.steps, a.inits, a.records, a.final, a.final_params, a.status,
                                     a.diverged_step, a.num_steps)),
                    jax.tree.leaves((b.lrs, b.steps, b.inits, b.records, b.final, b.final_params, b.status,
                                     b.diverged_step, b.num_steps)), strict=True):  # fmt: skip
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes()  # bit for bit, NaN payloads included
    assert a.metadata == b.metadata


@pytest.mark.parametrize("fmt", ["npz", "nc"])
@SETTINGS
@given(result=results())
def test_random_results_round_trip_exactly(result, fmt, tmp_path):
    if fmt == "nc":
        path = result.to_netcdf(tmp_path / "r.nc")
    else:
        path = result.save(tmp_path / "r.npz")
    _assert_same(sj.load(path), result)

"""Problems: closed-form facts of the Ahn et al. losses, ProductLoss, Objective, and a generic check
that every problem in ``sweepjax.problems.REGISTRY`` builds, samples finite inits and evaluates."""

from __future__ import annotations

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from sweepjax._curvature import DenseEigh, sharpness
from sweepjax.problems import REGISTRY, AbstractProblem, Objective, ProductLoss, make
from sweepjax.problems._base import describe

BETAS = (0.5, 1.5, 2.0, 4.0, 10.0)
LOSSES = [("rsym", None), ("sqrt", None), ("huber", None)] + [("beta", b) for b in BETAS]
LOSS_IDS = [name if beta is None else f"beta={beta}" for name, beta in LOSSES]


def _c_r(beta):
    return (beta / (beta + 1.0)) ** beta / (beta + 1.0), (beta + 1.0) / beta


def dell(name, s, beta=None):
    """ℓ'(s) in closed form (numpy, vectorised)."""
    s = np.asarray(s, np.float64)
    if name == "rsym":
        return np.tanh(s)
    if name == "sqrt":
        return s / np.sqrt(1.0 + s * s)
    if name == "huber":
        return np.clip(s, -1.0, 1.0)
    c, r = _c_r(beta)
    return np.where(np.abs(s) < r, s * (1.0 - c * np.abs(s) ** beta), np.sign(s))


def ddell(name, s, beta=None):
    """ℓ''(s) in closed form (numpy, vectorised; away from Huber's |s| = 1)."""
    s = np.asarray(s, np.float64)
    if name == "rsym":
        return 1.0 - np.tanh(s) ** 2
    if name == "sqrt":
        return (1.0 + s * s) ** -1.5
    if name == "huber":
        return (np.abs(s) < 1.0).astype(float)
    c, r = _c_r(beta)
    return np.where(np.abs(s) < r, 1.0 - c * (beta + 1.0) * np.abs(s) ** beta, 0.0)


def product_hessian(name, x, y, beta=None):
    """∇²ℓ(xy) = ℓ''(xy)[y; x][y; x]ᵀ + ℓ'(xy)[[0, 1], [1, 0]]."""
    u = np.array([y, x])
    return ddell(name, x * y, beta) * np.outer(u, u) + dell(name, x * y, beta) * np.array([[0.0, 1.0], [1.0, 0.0]])


@eqx.filter_jit
def _derivatives(problem, s):
    """ℓ, ℓ', ℓ'' of ``problem.ell`` by autodiff, elementwise over s (β is traced: one compile per name)."""
    d1 = jax.grad(problem.ell)
    return jax.vmap(problem.ell)(s), jax.vmap(d1)(s), jax.vmap(jax.grad(d1))(s)


# a grid that avoids the joins |s| = 1 (Huber) and r_β exactly
S = np.concatenate([np.linspace(-30.0, 30.0, 2001), [0.0, 0.3, -0.7, 1e-3]])


@pytest.mark.parametrize("name,beta", LOSSES, ids=LOSS_IDS)
def test_loss_facts(name, beta):
    """(A1): even, ℓ'(0) = 0, ℓ''(0) = 1, 1-Lipschitz, convex; ℓ', ℓ'' match closed forms
    (ℓ'_rsym = tanh, ℓ'_sqr = s/√(1+s²), ℓ'_Hub = clip(s, ±1), ℓ'_β = s(1 − c_β|s|^β) or sgn s)."""
    problem = ProductLoss(name, beta=beta)
    with jax.enable_x64(True):
        ell, d1, d2 = map(np.asarray, _derivatives(problem, jnp.asarray(S)))
        ell_neg = np.asarray(_derivatives(problem, -jnp.asarray(S))[0])
        np.testing.assert_allclose(ell, ell_neg, rtol=1e-14, atol=1e-14)  # even
        origin = [float(a[np.flatnonzero(S == 0.0)[0]]) for a in (ell, d1, d2)]
        assert origin[1] == 0.0
        assert abs(origin[2] - 1.0) < 1e-12  # ℓ''(0) = 1 through jax.grad twice
        assert np.all(np.abs(d1) <= 1.0 + 1e-12)  # 1-Lipschitz
        assert np.all(d2 >= -1e-12)  # convex
        np.testing.assert_allclose(d1, dell(name, S, beta), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(d2, ddell(name, S, beta), rtol=1e-10, atol=1e-10)
        # ℓ itself: ℓ(s) − ℓ(0) = ∫₀ˢ ℓ' (trapezoid on a fine grid, closed-form ℓ'), and ℓ(0)
        assert origin[0] == pytest.approx({"rsym": np.log(2.0), "sqrt": 1.0}.get(name, 0.0), abs=1e-15)
        t = np.linspace(0.0, 5.0, 200_001)
        d1_t = dell(name, t, beta)
        integral = np.concatenate([[0.0], np.cumsum(0.5 * (d1_t[1:] + d1_t[:-1]) * np.diff(t))])
        inside = (S >= 0.0) & (S <= 5.0)
        np.testing.assert_allclose(ell[inside] - origin[0], np.interp(S[inside], t, integral), atol=1e-8)
    # the same facts hold in float32 (the default dtype), to float32 accuracy
    ell32, d1_32, d2_32 = map(np.asarray, _derivatives(problem, jnp.asarray(S, jnp.float32)))
    assert ell32.dtype == np.float32
    np.testing.assert_allclose(d1_32, dell(name, S, beta), atol=1e-5)
    assert np.all(np.abs(d1_32) <= 1.0 + 1e-6)


@pytest.mark.parametrize("beta", BETAS)
def test_beta_loss_is_c1_at_r(beta):
    """ℓ'_β = s(1 − c_β|s|^β) inside, sgn(s) beyond r_β: value 1 and slope 0 at |s| = r_β from both sides."""
    problem = ProductLoss("beta", beta=beta)
    c, r = _c_r(beta)
    assert abs(r * (1.0 - c * r**beta) - 1.0) < 1e-14  # the formula meets sgn(s) at r_β
    with jax.enable_x64(True):
        delta = 1e-6
        s = jnp.asarray([r - delta, r, r + delta, -r + delta, -r, -r - delta])
        _, d1, d2 = map(np.asarray, _derivatives(problem, s))
        np.testing.assert_allclose(np.abs(d1), 1.0, atol=1e-9)
        np.testing.assert_allclose(np.sign(d1), [1, 1, 1, -1, -1, -1])
        # ℓ''(r − δ) = c(β+1)β r^(β−1) δ + O(δ²) → 0, and ℓ'' = 0 beyond
        np.testing.assert_allclose(d2, 0.0, atol=50 * beta * delta)
        assert abs(float(problem.ell(jnp.asarray(r + 1.0))) - float(problem.ell(jnp.asarray(r))) - 1.0) < 1e-12


# the origin, a minimiser, indefinite points, x = −y, and |xy| beyond Huber's / ℓ_β's quadratic part
POINTS = np.array(
    [[0.0, 0.0], [0.0, 2.0], [0.5, 1.9], [-0.7, 1.3], [0.8, -0.8], [1.1, -1.1], [2.0, 2.0], [3.0, -0.9], [0.37, -2.9]]
)


@eqx.filter_jit
def _loss_hessians(problem, points):
    return jax.vmap(jax.hessian(problem.loss))(points), jax.vmap(problem.observables)(points)


@pytest.mark.parametrize("name,beta", LOSSES, ids=LOSS_IDS)
def test_product_hessian_and_observables(name, beta):
    problem = ProductLoss(name, beta=beta)
    with jax.enable_x64(True):
        hessians, obs = _loss_hessians(problem, jnp.asarray(POINTS))
        for (x, y), h in zip(POINTS, np.asarray(hessians)):
            np.testing.assert_allclose(h, product_hessian(name, x, y, beta), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(hessians[0], 0.0)  # ℓ'(0) = 0: the origin is flat to second order
        assert set(obs) == {"xy", "y2_minus_x2"}
        np.testing.assert_allclose(obs["xy"], POINTS[:, 0] * POINTS[:, 1], rtol=1e-15, atol=1e-15)
        np.testing.assert_allclose(obs["y2_minus_x2"], POINTS[:, 1] ** 2 - POINTS[:, 0] ** 2, rtol=1e-15, atol=1e-15)
        # at a minimiser (0, y): ∇² = diag(y², 0), sharpness y²
        np.testing.assert_allclose(hessians[1], np.diag([4.0, 0.0]), atol=1e-15)


def test_family_parameter_is_traced():
    """β is a pytree leaf: a new β reuses the compiled function."""

    @eqx.filter_jit
    @eqx.debug.assert_max_traces(max_traces=1)
    def loss(problem, params):
        return problem.loss(params)

    values = [float(loss(ProductLoss("beta", beta=b), jnp.asarray([1.0, 2.5]))) for b in (1.5, 4.0)]
    assert values[0] != values[1]


def test_init_and_init_grid():
    problem = ProductLoss()
    pts = np.asarray(problem.init(jax.random.key(0), 64))
    assert pts.shape == (64, 2)
    gap = pts[:, 1] ** 2 - pts[:, 0] ** 2
    assert np.all((0.0 <= pts[:, 0]) & (pts[:, 0] <= 2.0)) and np.all(pts[:, 1] > 0)
    assert np.all((gap >= -1e-5) & (gap <= 16.0 + 1e-4))
    np.testing.assert_array_equal(pts, problem.init(jax.random.key(0), 64))  # pure in the key
    with jax.enable_x64(True):
        gaps = np.array([0.0, 0.5, 7.0, 27.0, -0.2])
        for x0 in (1.0, 3.0):
            grid = np.asarray(ProductLoss.init_grid(gaps, x0=x0))
            assert grid.shape == (5, 2)
            np.testing.assert_allclose(grid[:, 0], x0)
            np.testing.assert_allclose(grid[:, 1] ** 2 - grid[:, 0] ** 2, gaps, atol=1e-12)
            assert np.all(grid[:, 1] >= 0)
    for bad in (np.zeros((2, 2)), np.zeros(0), [1.0, np.nan], [1.0, np.inf], [-2.0]):
        with pytest.raises(ValueError, match="gap"):
            ProductLoss.init_grid(bad, x0=1.0)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"loss": "logistic"}, "loss"),
        ({"loss": 3}, "loss"),
        ({"loss": "beta"}, "beta"),  # missing β
        ({"loss": "beta", "beta": -1.0}, "beta"),
        ({"loss": "beta", "beta": 0.0}, "beta"),
        ({"loss": "beta", "beta": np.nan}, "beta"),
        ({"loss": "beta", "beta": [1.0, 2.0]}, "beta"),
        ({"loss": "sqrt", "beta": 2.0}, "beta"),  # β with a non-β loss
        ({"loss": "huber", "beta": 2.0}, "beta"),
    ],
)
def test_product_loss_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ProductLoss(**kwargs)


# ----------------------------------------------------------------------------- Objective


A_QUAD = jnp.asarray([[2.0, 1.0, 0.0], [1.0, -3.0, 0.5], [0.0, 0.5, 1.0]])


def _quadratic(theta):
    return 0.5 * theta["a"] @ A_QUAD @ theta["a"] + jnp.sum(theta["b"] ** 2)


def test_objective_plain_function():
    problem = Objective(_quadratic)
    theta = {"a": jnp.asarray([1.0, -1.0, 2.0]), "b": jnp.asarray([[0.5]])}
    assert float(problem.loss(theta)) == pytest.approx(float(_quadratic(theta)))
    assert problem.observables(theta) == {}
    assert problem.param_shapes() is None and problem.step_scale() is None
    with pytest.raises(NotImplementedError):
        problem.init(jax.random.key(0), 2)
    # ∇² = blockdiag(A, 2): λ_max = max(eig(A)[-1], 2)
    eig = jax.jit(lambda t: sharpness(problem.loss, t, DenseEigh()))(theta)
    assert float(eig.value) == pytest.approx(max(np.linalg.eigvalsh(np.asarray(A_QUAD))[-1], 2.0), rel=1e-5)
    assert isinstance(problem, AbstractProblem)
    json.dumps(describe(problem))


def test_objective_params_like_and_observables():
    like = {"a": jnp.zeros(3), "b": jnp.zeros((1, 1), jnp.int32)}
    observables = {"a0": lambda t: t["a"][0], "norm_b": lambda t: jnp.sum(t["b"] ** 2)}
    problem = Objective(_quadratic, params_like=like, observables=observables)
    shapes = problem.param_shapes()
    assert jax.tree.structure(shapes) == jax.tree.structure(like)
    assert shapes["a"] == jax.ShapeDtypeStruct((3,), jnp.float32)
    assert shapes["b"] == jax.ShapeDtypeStruct((1, 1), jnp.int32)
    theta = {"a": jnp.asarray([4.0, 0.0, 0.0]), "b": jnp.asarray([[3.0]])}
    obs = problem.observables(theta)
    assert list(obs) == ["a0", "norm_b"]
    assert float(obs["a0"]) == 4.0 and float(obs["norm_b"]) == 9.0
    # the same function object gives an equal static structure (no recompile)
    assert jax.tree.structure(Objective(_quadratic)) == jax.tree.structure(Objective(_quadratic))


def test_objective_rejects_non_callables():
    with pytest.raises(TypeError, match="loss_fn"):
        Objective(3.0)
    with pytest.raises(TypeError, match="observables"):
        Objective(_quadratic, observables={"x": 1.0})
    with pytest.raises(TypeError, match="observables"):
        Objective(_quadratic, observables={1: lambda t: t})


# ----------------------------------------------------------------------------- every registered problem

# Example constructor kwargs for registered problems, name -> list of kwargs (one generic check
# each). A class that builds with no arguments needs no entry ([{}] is used). A class that needs
# arguments (data, sizes) must be listed here; otherwise the generic test fails and says so.
# Kept in the test rather than on the classes so the library API carries no test data.
_RNG = np.random.default_rng(0)
_X = _RNG.normal(size=(6, 4)).astype(np.float32)
_Y = np.array([1.0, -1.0, 1.0, 1.0, -1.0, -1.0], np.float32)


def _make_mlp(key):
    return eqx.nn.MLP(4, "scalar", 3, 1, key=key)


REGISTRY_EXAMPLES: dict[str, list[dict]] = {
    "product": [{}, {"loss": "beta", "beta": 1.5}],
    "sparse_coding_relu": [{"X": _X, "y": _Y}],
    "ahn_mean_model": [{"d": 10.0}],
    "sparse_coding_network": [{"X": _X, "y": _Y, "m": 3}],
    "linear_predictor": [{"X": _X, "y": _Y}, {"X": _X[:, 0], "y": _Y, "loss": "logistic"}],
    "two_layer_linear": [{"X": _X, "y": _Y, "m": 3}],
    "regularity_family": [{"a": 1.0, "b": 1}, {"a": 2.0, "b": 3, "n": 3}, {"a": 0.0, "b": 5, "n": 2}],
    "wang_two_layer": [
        {"X": _X, "Y": np.stack([_Y, -_Y], axis=1), "width": 4},
        {"X": _X, "Y": _Y, "width": 3, "activation": "relu3", "loss": "huber", "batch_norm": True},
    ],
    "wang_three_layer": [{"X": _X, "Y": np.stack([_Y, -_Y], axis=1), "V": [[1.0, -1.0], [1.0, 1.0]], "width": 4}],
    "supervised": [
        {"model": _make_mlp(jax.random.key(0)), "X": _X, "y": _Y, "loss": "logistic", "init_fn": _make_mlp},
        {"model": _make_mlp(jax.random.key(1)), "X": _X, "y": _X[:, 0], "loss": "mse", "init_fn": _make_mlp},
    ],
    "cai_two_layer": [
        {"X": _X, "y": _Y, "m": 3},
        {"X": _X, "y": _Y, "m": 4, "activation": "gelu"},
        {"X": _X, "y": _Y, "m": 2, "activation": "huberized_relu", "h": 0.5},
    ],
    "fully_connected": [
        {"X": _X, "Y": _Y, "max_width": 4},
        {"X": _X, "Y": np.stack([_Y, -_Y], axis=1), "max_width": 5, "max_depth": 3, "width": 2, "depth": 2,
         "activation": "tanh", "bias_std": 0.5},
    ],
}
REGISTERED = [(name, kw) for name in REGISTRY for kw in REGISTRY_EXAMPLES.get(name, [{}])]
REGISTERED_IDS = [f"{name}-{i}" for i, (name, _) in enumerate(REGISTERED)]


def test_registry_examples_are_current():
    assert set(REGISTRY_EXAMPLES) <= set(REGISTRY), "REGISTRY_EXAMPLES names a problem that is not registered"
    for name, cls in REGISTRY.items():
        assert isinstance(name, str) and issubclass(cls, AbstractProblem)
    with pytest.raises(ValueError, match="no_such_problem"):
        make("no_such_problem")


@eqx.filter_jit
def _evaluate(problem, points):
    def one(p):
        return problem.loss(p), problem.observables(p), jax.grad(problem.loss)(p)

    return jax.vmap(one)(points)


@pytest.mark.parametrize("name,kwargs", REGISTERED, ids=REGISTERED_IDS)
def test_registered_problem_generic(name, kwargs):
    """Builds; ``init(key, 3)`` gives finite points of ``param_shapes``; loss, observables are finite scalars."""
    try:
        problem = make(name, **kwargs)
    except (TypeError, ValueError) as err:
        pytest.fail(f"{name!r} cannot be built with {kwargs}: add example kwargs to REGISTRY_EXAMPLES ({err})")
    assert type(problem) is REGISTRY[name]
    points = problem.init(jax.random.key(0), 3)
    leaves = jax.tree.leaves(points)
    assert leaves and all(leaf.shape[0] == 3 and bool(jnp.all(jnp.isfinite(leaf))) for leaf in leaves)
    shapes = problem.param_shapes()
    if shapes is not None:
        same = jax.tree.map(lambda s, a: tuple(s.shape) == a.shape[1:], shapes, points)
        assert all(jax.tree.leaves(same)), (shapes, jax.tree.map(jnp.shape, points))
    loss, obs, grad = _evaluate(problem, points)
    assert loss.shape == (3,) and bool(jnp.all(jnp.isfinite(loss)))
    assert all(isinstance(k, str) and v.shape == (3,) and bool(jnp.all(jnp.isfinite(v))) for k, v in obs.items())
    assert bool(jnp.all(jnp.isfinite(ravel_pytree(grad)[0])))
    one = jax.tree.map(lambda a: a[0], points)
    assert jax.eval_shape(problem.loss, one).shape == ()
    assert all(v.shape == () for v in jax.eval_shape(problem.observables, one).values())
    scale = problem.step_scale()
    if scale is not None:
        assert jax.tree.structure(scale) == jax.tree.structure(one)
        assert bool(jnp.all(ravel_pytree(scale)[0] > 0))
    json.dumps(describe(problem))

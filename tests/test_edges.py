"""Each update rule's stability edge and preconditioner (rule.stability_edge / edge_of / preconditioner), pinned to
optax's own updates, and the consumers that use the recorded edge: classify, the criteria, theory and the plots."""

import warnings

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
import pytest

import sweepjax as sj
from sweepjax import Phase, plot, schedules, theory
from sweepjax._phases import SparseRecordWarning
from sweepjax._rules import with_hyperparameters
from sweepjax.problems import AbstractProblem, Objective

ETA = 0.1
LR, T0 = jnp.asarray(ETA), jnp.asarray(0, jnp.int32)


def _edge(rule, lr=ETA, t=0):
    out = rule.stability_edge(jnp.asarray(lr), jnp.asarray(t, jnp.int32))
    return None if out is None else float(out)


# -- the edge of momentum, pinned to optax's parametrisation ------------------------------------------------------


def _sgd_matrix(lam, beta, nesterov, eta=ETA):
    """The 2×2 matrix that one optax.sgd(η, momentum=β) step applies to (θ, its trace) on f = λθ²/2 (the update is
    linear in both: its columns are the step from (1, 0) and (0, 1))."""
    tx = optax.sgd(eta, momentum=beta, nesterov=nesterov)
    cols = []
    for theta, trace in ((1.0, 0.0), (0.0, 1.0)):
        state = tx.init(jnp.zeros(()))
        state = (state[0]._replace(trace=jnp.asarray(trace)), *state[1:])
        upd, new = tx.update(jnp.asarray(lam * theta), state)
        cols.append([theta + float(upd), float(new[0].trace)])
    return np.array(cols).T


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9])
def test_momentum_edge_is_where_optax_sgd_iteration_matrix_leaves_the_unit_disc(beta, nesterov):
    with jax.enable_x64(True):
        edge = _edge(sj.Optax(optax.sgd, momentum=beta, nesterov=nesterov))
        exact = (2 + 2 * beta) / ((1 + 2 * beta) * ETA) if nesterov else (2 + 2 * beta) / ETA
        assert edge == pytest.approx(exact, rel=1e-14)
        radius = lambda lam: np.max(np.abs(np.linalg.eigvals(_sgd_matrix(lam, beta, nesterov))))  # noqa: E731
        assert radius(edge * (1 - 1e-6)) < 1 < radius(edge * (1 + 1e-6))
        assert radius(edge) == pytest.approx(1.0, abs=1e-9)  # an eigenvalue −1 at the edge


def _optax_run(tx, lam, theta0, steps, with_state=False):
    """θ (and the optax state) after ``steps`` steps of ``tx`` on f = λθ²/2 (1-D, one run per λ)."""

    def run(lam):
        def body(carry, _):
            theta, state = carry
            upd, state = tx.update(lam * theta, state, theta)
            return (theta + upd, state), None

        return jax.lax.scan(body, (jnp.asarray(theta0), tx.init(jnp.asarray(theta0))), None, length=steps)[0]

    theta, state = jax.jit(jax.vmap(run))(jnp.asarray(lam))
    return (np.asarray(theta), state) if with_state else np.asarray(theta)


RATIOS = np.array([0.9, 0.98, 0.995, 1.005, 1.02, 1.1])  # λ / edge


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9])
def test_optax_sgd_converges_exactly_below_the_momentum_edge(beta, nesterov):
    with jax.enable_x64(True):
        edge = _edge(sj.Optax(optax.sgd, momentum=beta, nesterov=nesterov))
        theta = _optax_run(optax.sgd(ETA, momentum=beta, nesterov=nesterov), RATIOS * edge, 1.0, 20_000)
    converged = np.abs(theta) < 1e-6
    np.testing.assert_array_equal(converged, RATIOS < 1)
    assert np.all(~np.isfinite(theta[RATIOS > 1]) | (np.abs(theta[RATIOS > 1]) > 1e6))


# -- Adam, Nadam, RMSProp: the preconditioner is optax's, and the edge bounds λ_max(D^{1/2} H D^{1/2}) -------------


def _quad(lams):
    lams = jnp.asarray(lams)
    return Objective(lambda th: 0.5 * jnp.sum(lams * th**2), params_like=jnp.zeros(lams.shape))


@pytest.mark.parametrize(
    "factory,b1,ratio",
    [(optax.adam, 0.9, 0.97), (optax.adam, 0.9, 1.03), (optax.adam, 0.5, 0.97), (optax.adam, 0.5, 1.03),
     (optax.nadam, 0.9, 0.97), (optax.nadam, 0.9, 1.03), (optax.nadam, 0.5, 0.97), (optax.nadam, 0.5, 1.03)],
)  # fmt: skip
def test_adam_edge_on_a_quadratic_with_a_frozen_preconditioner(factory, b1, ratio):
    # eps = 1 ≫ |g| (θ₀ = 1e-100): D = 1/(√v̂ + 1) ≈ 1 all along, so Adam is its momentum at a fixed P; the run's
    # asymptotic rate |θ_300/θ_150| tells converging from diverging
    rule = sj.Optax(factory, b1=b1, b2=0.999, eps=1.0)
    with jax.enable_x64(True):
        edge = _edge(rule)
        lam = ratio * edge
        tx = rule.tx(jnp.asarray(ETA))
        early = _optax_run(tx, [lam], 1e-100, 150)[0]
        late, state = _optax_run(tx, [lam], 1e-100, 300, with_state=True)
        # the preconditioned sharpness λ·D, D from the rule at θ_300 with the run's state
        state = jax.tree.map(lambda a: a[0], state)
        d = rule.preconditioner(_quad([lam]), jnp.asarray(late), jax.tree.map(lambda a: a.reshape(1) if a.ndim else a, state))
        late = late[0]
    assert float(d[0]) == pytest.approx(1.0, abs=1e-6)  # the edge in λ moves by < 1e-6, far inside the ±3% tested
    exact = (2 + 2 * b1) / ((1 + 2 * b1) if factory is optax.nadam else 1.0) / ((1 - b1) * ETA)
    assert edge == pytest.approx(exact, rel=1e-12)
    assert rule.edge_of == "preconditioned_sharpness"
    rate = abs(late / early)
    assert (rate < 1e-3) if ratio < 1 else (rate > 1e3)


class Scaled(AbstractProblem):
    """f = ½ Σ λᵢ θᵢ² on a dict pytree, with per-leaf step multipliers s."""

    def loss(self, params):
        return 0.5 * (jnp.sum(3.0 * params["a"] ** 2) + jnp.sum(params["b"] ** 4))

    def step_scale(self):
        return {"a": jnp.full(2, 0.5), "b": jnp.full(3, 2.0)}


def _grads(params, k):
    return jax.tree.map(lambda p: jnp.sin(3.0 * k + jnp.arange(p.size).reshape(p.shape) + 1.0) * (k + 1.0), params)


PARAMS = {"a": jnp.array([0.3, -1.2]), "b": jnp.array([2.0, -0.5, 1.0])}


def _check_diagonal(rule, direction, steps=5):
    """Over ``steps`` optax steps on the Scaled problem: the rule's D (before the step, from θ and the state) times
    its direction equals optax's update / (−η s); ``direction(new_state, grad)`` is what optax scales by D."""
    problem = Scaled()
    with jax.enable_x64(True):
        params = jax.tree.map(lambda p: p.astype(jnp.float64), PARAMS)
        tx = rule.tx(jnp.asarray(ETA, jnp.float64))
        state = tx.init(params)
        for k in range(steps):
            d = rule.preconditioner(problem, params, state)
            grad = jax.grad(problem.loss)(params)
            upd, state = tx.update(grad, state, params)
            s = problem.step_scale()
            for leaf in ("a", "b"):
                want = -ETA * d[leaf] * direction(state, grad, k + 1)[leaf]
                np.testing.assert_allclose(upd[leaf] * s[leaf], want, rtol=1e-12, atol=1e-300)
            params = jax.tree.map(lambda p, u, sc, g: p + sc * u + 0.1 * g, params, upd, s, _grads(params, k))  # move on


def _adam_mu_hat(b1):
    return lambda state, grad, count: optax.tree.bias_correction(state[0].mu, b1, count)


@pytest.mark.parametrize("eps_root", [0.0, 1e-6])
def test_adam_preconditioner_is_optax_divisor(eps_root):
    rule = sj.Optax(optax.adam, b1=0.8, b2=0.95, eps=1e-3, eps_root=eps_root)
    _check_diagonal(rule, _adam_mu_hat(0.8))
    _check_diagonal(sj.Optax(optax.adamw, b1=0.8, b2=0.95, eps=1e-3, weight_decay=0.0), _adam_mu_hat(0.8))


def test_adam_preconditioner_before_the_first_step_is_the_first_steps():
    # count 0: v̂ after the first moment update is g², so D = 1/(|g| + ε) (no NaN before any update)
    rule = sj.Optax(optax.adam)
    with jax.enable_x64(True):
        theta = jnp.array([1.0, -2.0, 3.0])
        d = rule.preconditioner(_quad([1.0, 1.0, 1.0]), theta, rule.init(_quad([1.0] * 3), theta, LR))
        np.testing.assert_allclose(d, 1 / (np.abs([1.0, -2.0, 3.0]) + 1e-8), rtol=1e-15)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"eps_in_sqrt": False}, {"centered": True}, {"bias_correction": True}, {"centered": True, "bias_correction": True}],
)
def test_rmsprop_preconditioner_is_optax_scaling(kwargs):
    rule = sj.Optax(optax.rmsprop, decay=0.7, eps=1e-3, **kwargs)
    _check_diagonal(rule, lambda state, grad, count: grad)
    assert _edge(rule) == pytest.approx(2 / ETA) and rule.edge_of == "preconditioned_sharpness"


def test_adagrad_preconditioner_is_optax_scaling():
    rule = sj.Optax(optax.adagrad, initial_accumulator_value=0.2, eps=1e-4)
    _check_diagonal(rule, lambda state, grad, count: grad)
    assert _edge(rule) == pytest.approx(2 / ETA) and rule.edge_of == "preconditioned_sharpness"


@pytest.mark.parametrize("momentum,ratio", [(None, 0.98), (None, 1.02), (0.5, 0.97), (0.5, 1.03)])
def test_rmsprop_edge_on_a_quadratic_with_a_frozen_preconditioner(momentum, ratio):
    rule = sj.Optax(optax.rmsprop, eps=1.0, momentum=momentum)  # √(v + 1) = 1 to ~1e-150 at θ₀ = 1e-100
    with jax.enable_x64(True):
        edge = _edge(rule)
        tx = rule.tx(jnp.asarray(ETA))
        early, late = _optax_run(tx, [ratio * edge], 1e-100, 500)[0], _optax_run(tx, [ratio * edge], 1e-100, 1000)[0]
    assert edge == pytest.approx((2 + 2 * (momentum or 0.0)) / ETA, rel=1e-14)
    rate = abs(late / early)
    assert (rate < 1e-3) if ratio < 1 else (rate > 1e3)


# -- GD, SGD, schedules, hyperparameters, wrappers, unknown factories -------------------------------------------


def test_gd_and_sgd_edges_and_preconditioners():
    assert _edge(sj.GD()) == pytest.approx(2 / ETA) and sj.GD().edge_of == "sharpness"
    assert sj.GD().preconditioner(_quad([1.0, 2.0]), jnp.zeros(2), ()) is None
    problem = Scaled()
    assert sj.GD().preconditioner(problem, PARAMS, ()) is problem.step_scale() or jax.tree.all(
        jax.tree.map(lambda a, b: bool(jnp.all(a == b)), sj.GD().preconditioner(problem, PARAMS, ()), problem.step_scale())
    )
    grouped = sj.GD(groups={"a": "m_a", "b": "m_b"}, m_a=3.0).resolve(problem, PARAMS, {})
    d = grouped.preconditioner(problem, PARAMS, ())
    np.testing.assert_allclose(d["a"], [1.5, 1.5])  # m_a · s_a = 3 · 0.5
    np.testing.assert_allclose(d["b"], [2.0, 2.0, 2.0])  # m_b · s_b = 1 · 2
    assert _edge(grouped) == pytest.approx(2 / ETA) and grouped.edge_of == "preconditioned_sharpness"
    sgd = sj.SGD(batch_size=4)
    assert _edge(sgd) == pytest.approx(2 / ETA) and sgd.edge_of == "batch_sharpness"
    assert _edge(sj.Optax(optax.sgd)) == pytest.approx(2 / ETA)  # momentum None: plain GD
    assert _edge(sj.Optax(optax.sgd, momentum=None, nesterov=True)) == pytest.approx(2 / ETA)


@pytest.mark.parametrize(
    "schedule",
    [
        schedules.LinearWarmup(warmup=10, start=0.1),
        schedules.Cosine(decay_steps=20, final=0.1),
        schedules.StepDecay(every=5, factor=0.5),
    ],
)
def test_schedules_give_the_edge_at_the_current_step_size(schedule):
    for t in (0, 3, 5, 10, 17, 40):
        eta_t = float(schedule(jnp.asarray(t, jnp.int32), LR))
        assert _edge(sj.GD(schedule), t=t) == pytest.approx(2 / eta_t, rel=1e-6)
        assert _edge(sj.Optax(optax.sgd, schedule, momentum=0.9), t=t) == pytest.approx(3.8 / eta_t, rel=1e-6)
        assert _edge(sj.SGD(batch_size=2, schedule=schedule), t=t) == pytest.approx(2 / eta_t, rel=1e-6)
    # traced t and η, vmapped
    ts, lrs = jnp.arange(12, dtype=jnp.int32), jnp.linspace(0.1, 1.0, 12)
    got = jax.jit(jax.vmap(sj.GD(schedule).stability_edge))(lrs, ts)
    np.testing.assert_allclose(got, 2 / jax.vmap(schedule)(ts, lrs), rtol=1e-6)


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def test_swept_hyperparameters_are_traced_into_the_edge(x64):
    rule = sj.Optax(optax.adam, b1=0.9)
    b1s = jnp.array([0.0, 0.5, 0.9])
    got = jax.jit(jax.vmap(lambda b1: with_hyperparameters(rule, {"b1": b1}).stability_edge(LR, T0)))(b1s)
    np.testing.assert_allclose(got, (2 + 2 * b1s) / ((1 - b1s) * ETA), rtol=1e-6)
    momentum = sj.Optax(optax.sgd, momentum=0.0)
    got = jax.vmap(lambda m: with_hyperparameters(momentum, {"momentum": m}).stability_edge(LR, T0))(b1s)
    np.testing.assert_allclose(got, (2 + 2 * b1s) / ETA, rtol=1e-6)
    assert _edge(sj.Optax(optax.adam)) == pytest.approx(38 / ETA, rel=1e-6)  # the signature's default β₁ = 0.9


def test_with_flow_delegates_to_its_rule():
    inner = sj.Optax(optax.adam, b1=0.5)
    rule = sj.WithFlow(inner)
    assert _edge(rule) == _edge(inner) and rule.edge_of == inner.edge_of == "preconditioned_sharpness"
    problem, theta = _quad([1.0, 4.0]), jnp.array([1.0, -1.0])
    state = rule.init(problem, theta, LR)
    np.testing.assert_array_equal(rule.preconditioner(problem, theta, state), inner.preconditioner(problem, theta, state.rule))
    assert _edge(sj.WithFlow(sj.GD(schedules.StepDecay(every=1, factor=0.5))), t=2) == pytest.approx(8 / ETA)
    assert _edge(sj.GradientFlow()) is None


def test_unknown_factories_have_no_edge_nor_preconditioner_unless_stated(x64):
    problem, theta = _quad([1.0, 2.0]), jnp.array([1.0, 1.0])
    for rule in (sj.Optax(lambda lr: optax.adam(lr)), sj.Optax(optax.lion), sj.Optax(optax.scale_by_adam())):
        assert rule.stability_edge(LR, T0) is None and rule.edge_of == "sharpness"
        assert rule.preconditioner(problem, theta, rule.init(problem, theta, LR)) is None
        with pytest.raises(ValueError, match="no known stability edge"):
            theory.stability_edge(rule, [0.1, 0.2])
    stated = sj.Optax(lambda lr, momentum: optax.sgd(lr, momentum=momentum), momentum=0.5,
                      edge=lambda eta, momentum: (2 + 2 * momentum) / eta)  # fmt: skip
    assert _edge(stated) == pytest.approx(30.0) and stated.edge_of == "sharpness"
    swept = jax.vmap(lambda m: with_hyperparameters(stated, {"momentum": m}).stability_edge(LR, T0))(jnp.array([0.0, 1.0]))
    np.testing.assert_allclose(swept, [20.0, 40.0])
    assert sj.Optax(optax.lion, edge=lambda eta, **_: 1 / eta, edge_of="preconditioned_sharpness").edge_of == (
        "preconditioned_sharpness"
    )
    with pytest.raises(TypeError, match="edge"):
        sj.Optax(optax.sgd, edge=3.0)
    with pytest.raises(ValueError, match="edge_of"):
        sj.Optax(optax.sgd, edge_of="sharpness")


# -- theory -----------------------------------------------------------------------------------------------------


def test_theory_edges():
    assert theory.momentum_edge(0.1, 0.9) == pytest.approx(38.0)
    assert theory.momentum_edge(0.1, 0.5, nesterov=True) == pytest.approx(15.0)
    assert theory.adam_edge(0.1) == pytest.approx(380.0)
    lrs = np.array([0.01, 0.1, 1.0])
    np.testing.assert_allclose(theory.stability_edge(sj.Optax(optax.adam), lrs), 38 / lrs, rtol=1e-6)
    np.testing.assert_allclose(theory.stability_edge(sj.GD(), lrs), 2 / lrs, rtol=1e-6)
    assert theory.stability_edge(sj.GD(schedules.StepDecay(every=10, factor=0.5)), 1.0, t=25) == pytest.approx(8.0)
    line = theory.edge_line(sj.Optax(optax.adam))
    assert line.label == "38/η" and line.edge_of == "preconditioned_sharpness"
    np.testing.assert_allclose(line(lrs), 38 / lrs, rtol=1e-6)
    assert theory.edge_line(sj.Optax(optax.sgd, momentum=0.9)).label == "3.8/η"
    assert theory.edge_line(sj.GD()).label == "2/η"
    with pytest.raises(TypeError, match="rule"):
        theory.stability_edge("adam", 0.1)


# -- consumers: classify on a recorded edge ---------------------------------------------------------------------

NAN = np.nan
BOUNCE = [1.0, 0.8, 0.9, 0.7, 0.75, 0.6]


def _result(curv, edge, *, name="preconditioned_sharpness", lrs=(0.5,), loss=None, steps=None, metadata=None):
    """A SweepResult with (n_lr, n_init, n_record) records ``name`` and ``edge`` (one lr row if 2-D)."""
    curv = np.asarray(curv, float)
    curv = curv[None] if curv.ndim == 2 else curv
    n_lr, n_init, n_rec = curv.shape
    loss = np.broadcast_to(np.asarray(BOUNCE if loss is None else loss, float), curv.shape)
    records = {"loss": loss, name: curv}
    if edge is not None:
        records["edge"] = np.broadcast_to(np.asarray(edge, float), curv.shape)
    final = {k: v[..., -1] for k, v in records.items()}
    steps = np.arange(n_rec) if steps is None else np.asarray(steps)
    return sj.SweepResult(
        lrs=np.asarray(lrs, float), steps=steps, inits=np.zeros((n_init, 1)), records=records, final=final,
        final_params=np.zeros((n_lr, n_init, 1)), status=np.zeros((n_lr, n_init), np.int8),
        diverged_step=np.full((n_lr, n_init), NAN), num_steps=np.full((n_lr, n_init), steps[-1]),
        metadata={"edge_of": name} if metadata is None else metadata,
    )  # fmt: skip


def test_classify_compares_the_rules_curvature_with_its_recorded_edge():
    # η = 0.5: Adam's edge 38/η = 76; a run at 75 is at it, one at 4 (= 2/η) is not
    res = _result([[70.0, 72, 74, 75, 75, 75], [3.0, 3.5, 4, 4, 4, 4]], 76.0)
    np.testing.assert_array_equal(sj.classify(res, lazy_tol=None), [[Phase.EOS, Phase.STABLE]])
    # an explicit number keeps its meaning edge/η: 2/η = 4 is reached by both
    np.testing.assert_array_equal(sj.classify(res, edge=2.0, lazy_tol=None), [[Phase.EOS, Phase.EOS]])
    np.testing.assert_array_equal(sj.criteria.eos()(res), [[True, False]])
    np.testing.assert_array_equal(sj.criteria.is_phase(Phase.EOS, lazy_tol=None)(res), [[True, False]])


def test_a_moving_edge_is_compared_record_by_record():
    # a step-size decay doubles the edge at t = 3: the curvature at the old edge (4) is no longer at the edge
    edge = [4.0, 4, 4, 8, 8, 8]
    res = _result([[3.0, 4, 4, 4, 4, 4], [3.0, 4, 4, 7.8, 7.9, 7.9]], edge, name="sharpness")
    np.testing.assert_array_equal(sj.classify(res, lazy_tol=None, window=0.5), [[Phase.STABLE, Phase.EOS]])
    # the late window only: a run at the edge before it is not EoS
    res = _result([[3.0, 4, 4, 4, 1, 1]], [4.0] * 6, name="sharpness")
    assert sj.classify(res, lazy_tol=None, window=0.2)[0, 0] == Phase.STABLE
    assert sj.classify(res, lazy_tol=None, window=1.0)[0, 0] == Phase.EOS


def test_the_default_curvature_is_the_record_the_edge_bounds():
    res = _result([[70.0, 72, 74, 75, 75, 75], [10.0] * 6], 76.0)
    res.records["sharpness"] = np.array([[[3.9] * 6, [3.0] * 6]])  # another record: not the default
    res.final["sharpness"] = res.records["sharpness"][..., -1]
    np.testing.assert_array_equal(sj.classify(res, lazy_tol=None), [[Phase.EOS, Phase.STABLE]])
    # another curvature than the edge's: compared with 2/η (= 4), not with the recorded edge (76)
    np.testing.assert_array_equal(sj.classify(res, curvature="sharpness", lazy_tol=None), [[Phase.EOS, Phase.STABLE]])
    np.testing.assert_array_equal(sj.classify(res, curvature="sharpness", edge=8.0, lazy_tol=None), [[Phase.STABLE] * 2])


def test_a_missing_curvature_record_says_how_to_record_it():
    res = _result([[1.0] * 6], 76.0, name="sharpness", metadata={"edge_of": "preconditioned_sharpness"})
    with pytest.raises(ValueError, match=r"curvature='preconditioned_sharpness'.*PreconditionedSharpness\(\)"):
        sj.classify(res)
    res = _result([[1.0] * 6], 76.0, name="sharpness", metadata={"edge_of": "batch_sharpness"})
    with pytest.raises(ValueError, match=r"BatchSharpness\(\)"):
        sj.classify(res)


def test_a_result_without_a_recorded_edge_keeps_two_over_eta():
    res = _result([[3.0, 3.5, 3.9, 3.9, 3.9, 3.9]], None, name="sharpness", metadata={})
    assert sj.classify(res, lazy_tol=None)[0, 0] == Phase.EOS  # 3.9 ≥ 0.95 · 2/η = 3.8


def test_a_malformed_edge_record_is_refused():
    res = _result([[3.0] * 6], 4.0, name="sharpness")
    res.records["edge"] = res.records["edge"][..., :3]
    with pytest.raises(ValueError, match="'edge' record must have shape"):
        sj.classify(res)


def test_the_missed_catapult_warning_uses_the_recorded_edge():
    # records 10 steps apart; κ_0 = 50 < the edge 76 (but > 2/η = 4): no warning with the recorded edge
    loss = [1.0, 0.5, 0.3]
    calm = _result([[50.0, 30.0, 20.0]], 76.0, loss=loss, steps=[0, 10, 20])
    with warnings.catch_warnings():
        warnings.simplefilter("error", SparseRecordWarning)
        sj.classify(calm, lazy_tol=None)
    with pytest.warns(SparseRecordWarning, match="> 2"):
        sj.classify(calm, edge=2.0, lazy_tol=None)
    wild = _result([[90.0, 70.0, 20.0]], 76.0, loss=loss, steps=[0, 10, 20])
    with pytest.warns(SparseRecordWarning, match=r"preconditioned_sharpness_0 > its recorded edge.*first ~10 steps"):
        sj.classify(wild, lazy_tol=None)


# -- consumers: plots ---------------------------------------------------------------------------------------------


def _two_lr_result():
    lrs = np.array([0.1, 0.5])
    curv = np.stack([np.full((2, 6), 300.0), np.full((2, 6), 70.0)])
    return _result(curv, (38 / lrs)[:, None, None], lrs=lrs)


def test_phase_diagram_overlays_the_recorded_edge_with_its_formula():
    res = _two_lr_result()
    ax = plot.phase_diagram(res, "final_preconditioned_sharpness", overlay="edge")
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_ydata(), 38 / line.get_xdata(), rtol=1e-9)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["38/η (preconditioned_sharpness)"]
    plt.close("all")
    ax = plot.phase_map(res, overlay=[theory.edge_line(sj.Optax(optax.adam)), "edge"], lazy_tol=None)
    assert [t.get_text() for t in ax.get_legend().get_texts()][-2:] == ["38/η", "38/η (preconditioned_sharpness)"]
    plt.close("all")
    plain = _result([[3.0] * 6], None, name="sharpness", metadata={})
    ax = plot.phase_diagram(plain, "final_sharpness", overlay="edge")
    assert ax.get_legend().get_texts()[0].get_text() == "2/η"
    plt.close("all")


def test_overlay_edge_refuses_a_moving_edge_and_other_names():
    res = _result([[3.0] * 6], [4.0, 4, 4, 8, 8, 8], name="sharpness")
    with pytest.raises(ValueError, match="not one c/η"):
        plot.phase_diagram(res, "final_sharpness", overlay="edge")
    with pytest.raises(ValueError, match="must be 'edge'"):
        plot.phase_diagram(res, "final_sharpness", overlay=["eos"])
    plt.close("all")


def test_trajectories_draw_the_recorded_edge_on_its_curvatures_panel():
    res = _two_lr_result()
    axes = plot.trajectories(res, lr_index=[0, 1], init_index=0, quantities=("loss", "preconditioned_sharpness"))
    dashed = [ln for ln in axes[1].get_lines() if ln.get_linestyle() == "--"]
    np.testing.assert_allclose([ln.get_ydata()[0] for ln in dashed], [380.0, 76.0])
    assert axes[1].get_ylabel() == "preconditioned_sharpness (dashed: 38/η)"
    assert not [ln for ln in axes[0].get_lines() if ln.get_linestyle() == "--"]
    plt.close("all")
    moving = _result([[3.0] * 6], [4.0, 4, 4, 8, 8, 8], name="sharpness")
    (ax,) = plot.trajectories(moving, lr_index=0, init_index=0, quantities=("sharpness",))
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), [4.0, 4, 4, 8, 8, 8])
    assert ax.get_ylabel() == "sharpness (dashed: its edge)"
    plt.close("all")


# -- a real sweep (the engine records "edge" = rule.stability_edge(η, t) and metadata["edge_of"]) -------------------


def test_a_momentum_sweep_records_its_edge_and_classify_uses_it():
    quad = _quad([1.0, 30.0])
    lrs = np.array([0.05, 0.1])
    res = sj.sweep(quad, lrs, np.array([[1.0, 1.0]]), num_steps=20, rule=sj.Optax(optax.sgd, momentum=0.9),
                   record=sj.Record(every=5))  # fmt: skip
    if "edge" not in res.records:
        pytest.skip("the engine does not record the rule's edge yet")
    assert res.metadata["edge_of"] == "sharpness"
    np.testing.assert_allclose(
        res.records["edge"], np.broadcast_to((3.8 / lrs)[:, None, None], res.records["edge"].shape), rtol=1e-6
    )
    # λ_max = 30: below 3.8/η for both η (76, 38), though above 2/η = 20 at η = 0.1: the momentum run converges
    assert not res.diverged.any()
    assert not sj.criteria.eos()(res).any()


def test_an_adam_sweep_records_the_preconditioned_sharpness_and_its_edge():
    measures = getattr(sj, "measures", None)
    if measures is None or not hasattr(measures, "PreconditionedSharpness"):
        pytest.skip("the engine has no PreconditionedSharpness measure yet")
    quad = _quad([1.0, 30.0])
    lrs = np.array([0.01, 0.05])
    with jax.enable_x64(True):
        res = sj.sweep(quad, lrs, np.array([[1.0, 1.0]]), num_steps=30, rule=sj.Optax(optax.adam),
                       record=sj.Record(every=10, measures=[measures.PreconditionedSharpness()]), dtype=jnp.float64)  # fmt: skip
    if "edge" not in res.records:
        pytest.skip("the engine does not record the rule's edge yet")
    assert res.metadata["edge_of"] == "preconditioned_sharpness"
    np.testing.assert_allclose(res.records["edge"][..., 0], (38 / lrs)[:, None], rtol=1e-9)
    # t = 0: the first step's D = 1/(|∇f(θ₀)| + ε) = (1, 1/30), so D^{1/2} H D^{1/2} = I
    np.testing.assert_allclose(res.records["preconditioned_sharpness"][..., 0], 1.0, rtol=1e-6)
    codes = sj.classify(res)  # on the preconditioned sharpness against 38/η: far below it
    assert codes.shape == res.shape and not np.any(codes == Phase.EOS)

"""GradientFlow (the flow dθ/dτ = −s ⊙ ∇f at the GD times, by diffrax) and WithFlow (a rule beside its flow),
checked against closed forms on quadratics: θ(τ) = exp(−τA)θ₀ and GD's θ_k = (I − ηA)^k θ₀."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sweepjax as sj
from sweepjax._flow import GradientFlow, WithFlow
from sweepjax._rules import hyperparameters

TIGHT = {"rtol": 1e-10, "atol": 1e-12}  # float64 tolerances for the closed-form checks
RECORD = sj.Record(every=5, sharpness=None)
A3 = np.array([[1.0, 0.2, 0.0], [0.2, 0.5, 0.1], [0.0, 0.1, 0.05]])  # SPD, λ_max ≈ 1.07
EIG3, VEC3 = np.linalg.eigh(A3)
D12 = np.linspace(0.05, 1.0, 12)  # a diagonal A over a dict of parameters (12 > 8: the pytree layout)
STIFF = np.array([1.0, 1e4])


def _quad3(theta):
    return 0.5 * theta @ (jnp.asarray(A3, theta.dtype) @ theta)


def _quad_dict(p):
    theta = jnp.concatenate([p["w"], p["b"]])
    return 0.5 * jnp.sum(jnp.asarray(D12, theta.dtype) * theta**2)


def _stiff(theta):
    return 0.5 * jnp.sum(jnp.asarray(STIFF, theta.dtype) * theta**2)


def _band(theta):  # NaN for θ₀ in (0.4, 0.45): the flow runs into it in finite time; GD at η = 0.9 jumps over it
    return 0.5 * jnp.sum(theta**2) + 0.01 * jnp.sqrt((theta[0] - 0.425) ** 2 - 0.025**2)


def _expm(eig, vec, tau, theta0):
    """exp(−τA) θ₀ for A = V diag(eig) Vᵀ, at every τ in ``tau``: (n_tau, n)."""
    return np.einsum("ij,kj,lj,l->ki", vec, np.exp(-np.outer(tau, eig)), vec, theta0)


QUAD3 = sj.problems.Objective(_quad3, params_like=np.zeros(3))
INITS3 = np.array([[1.0, -2.0, 0.5], [0.3, 0.1, -1.0]])


def _flat(res, i, j):  # the final parameters of run (i, j) as one vector
    return np.concatenate([np.ravel(a[i, j]) for a in jax.tree.leaves(res.final_params)])


@pytest.mark.parametrize("layout", ["flat scalars", "pytree"])
def test_records_are_the_exact_flow_at_the_gd_times(layout):
    if layout == "flat scalars":
        problem, inits, eig, vec = QUAD3, INITS3, EIG3, VEC3
    else:
        like = {"b": np.zeros(5), "w": np.zeros(7)}  # (leaves in key order: b, then w)
        problem, eig, vec = sj.problems.Objective(_quad_dict, params_like=like), np.r_[D12[7:], D12[:7]], np.eye(12)
        rng = np.random.default_rng(0)
        inits = {"b": rng.normal(size=(2, 5)), "w": rng.normal(size=(2, 7))}
    lrs = np.array([0.1, 0.7, 1.9, 3.0])  # past 2/λ_max too: the flow does not care
    res = sj.sweep(problem, lrs, inits, num_steps=40, record=RECORD, rule=GradientFlow(**TIGHT), dtype=jnp.float64)
    assert res.metadata["params_layout"] == layout and not res.diverged.any()
    flat0 = np.concatenate([np.reshape(a, (2, -1)) for a in jax.tree.leaves(inits)], axis=1)
    for i, lr in enumerate(lrs):
        tau = lr * res.steps
        np.testing.assert_allclose(res.records["flow_time"][i], np.broadcast_to(tau, (2, tau.size)), rtol=1e-14)
        for j in range(2):
            exact = _expm(eig, vec, tau, flat0[j])
            loss = 0.5 * np.einsum("ki,i,ki->k", exact @ vec, eig, exact @ vec)
            np.testing.assert_allclose(res.records["loss"][i, j], loss, rtol=1e-5)
            np.testing.assert_allclose(_flat(res, i, j), exact[-1], rtol=1e-5, atol=1e-12)


def test_a_schedule_sets_the_times_and_its_hyperparameters_are_an_axis():
    rule = GradientFlow(sj.schedules.LinearWarmup(warmup=5.0), **TIGHT)
    assert {"warmup", "start", "rtol", "atol"} <= set(hyperparameters(rule))
    res = sj.sweep(
        QUAD3, [0.5, 1.5], INITS3, num_steps=20, record=RECORD, rule=rule, axes={"warmup": [5.0, 10.0]}, dtype=jnp.float64
    )
    for i, lr in enumerate([0.5, 1.5]):
        for a, warmup in enumerate([5.0, 10.0]):
            eta = lr * np.minimum(np.arange(20) / warmup, 1.0)  # η_0 = 0: an empty first interval
            tau = np.r_[0.0, np.cumsum(eta)][res.steps]
            np.testing.assert_allclose(res.records["flow_time"][i, a, 0], tau, rtol=1e-12)
            exact = _expm(EIG3, VEC3, tau, INITS3[1])
            np.testing.assert_allclose(res.records["loss"][i, a, 1], 0.5 * np.einsum("ki,ij,kj->k", exact, A3, exact), rtol=1e-5)
    # beside GD, the flow takes GD's schedule: one name, "warmup", sets both
    shadow = WithFlow(sj.GD(sj.schedules.LinearWarmup(warmup=5.0)), GradientFlow(sj.schedules.LinearWarmup(warmup=5.0)))
    assert WithFlow(sj.GD(sj.schedules.LinearWarmup(warmup=5.0))).flow.schedule == shadow.flow.schedule
    both = sj.sweep(QUAD3, [0.5, 1.5], INITS3, num_steps=20, record=RECORD, rule=shadow, axes={"warmup": [5.0, 10.0]})
    np.testing.assert_allclose(both.records["flow_time"], res.records["flow_time"], rtol=1e-6)


def test_the_tolerances_are_a_sweep_axis():
    rule = GradientFlow(atol=1e-12)
    res = sj.sweep(QUAD3, [1.0], INITS3, num_steps=20, record=RECORD, rule=rule, axes={"rtol": [1e-2, 1e-10]}, dtype=jnp.float64)
    exact = np.stack([_expm(EIG3, VEC3, res.steps, x) for x in INITS3])
    err = np.abs(res.records["loss"][0] - 0.5 * np.einsum("nki,ij,nkj->nk", exact, A3, exact)).max(axis=(1, 2))
    assert err[0] > 1e3 * err[1] and err[1] < 1e-10  # one program, each run at its own rtol


def test_gd_with_its_flow_matches_the_closed_forms():
    lrs = np.array([0.01, 0.5, 2.0])  # small, stable, past 2/λ_max ≈ 1.87
    rule = WithFlow(sj.GD(), GradientFlow(**TIGHT))
    res = sj.sweep(QUAD3, lrs, INITS3, num_steps=30, record=RECORD, rule=rule, dtype=jnp.float64)
    assert not res.diverged.any()
    dist = res.records["flow_distance"]
    np.testing.assert_array_equal(dist[..., 0], 0.0)
    for i, lr in enumerate(lrs):
        for j in range(2):
            flow = _expm(EIG3, VEC3, lr * res.steps, INITS3[j])
            gd = np.stack([np.linalg.matrix_power(np.eye(3) - lr * A3, int(k)) @ INITS3[j] for k in res.steps])
            np.testing.assert_allclose(dist[i, j], np.linalg.norm(gd - flow, axis=1), rtol=1e-6, atol=1e-12)
            np.testing.assert_allclose(res.records["flow_loss"][i, j], 0.5 * np.einsum("ki,ij,kj->k", flow, A3, flow), rtol=1e-6)
            np.testing.assert_allclose(res.records["loss"][i, j], 0.5 * np.einsum("ki,ij,kj->k", gd, A3, gd), rtol=1e-9)
    assert dist[0].max() < 1e-3  # GD at small η shadows its flow (the gap is O(η))
    assert np.all(np.diff(dist[2], axis=-1) > 0) and dist[2, :, -1].min() > 10  # past 2/λ_max GD leaves it


def test_grouped_gd_carries_its_multipliers_into_the_flow():
    like = {"b": np.zeros(5), "w": np.zeros(7)}
    problem = sj.problems.Objective(_quad_dict, params_like=like)
    inits = {"b": np.ones((1, 5)), "w": np.ones((1, 7))}
    rule = WithFlow(sj.GD(groups={"b": "lr_b", "w": "lr_w"}), GradientFlow(**TIGHT))
    assert rule.needs_structure  # (and the sweep reaches GD's multiplier lr_b by name)
    res = sj.sweep(problem, [0.3], inits, num_steps=10, record=RECORD, rule=rule, axes={"lr_b": [1.0, 0.1]}, dtype=jnp.float64)
    for a, m in enumerate([1.0, 0.1]):
        rate = np.r_[D12[:7], m * D12[7:]]  # w, then b with its multiplier m
        flow = np.exp(-0.3 * np.outer(res.steps, rate))
        np.testing.assert_allclose(res.records["flow_loss"][0, a, 0], 0.5 * (flow**2) @ np.r_[D12[:7], D12[7:]], rtol=1e-7)


def test_chunking_and_one_run_agree_with_the_sweep():
    lrs, rule = np.array([0.05, 0.9, 1.9]), WithFlow(sj.GD())
    kw = dict(num_steps=20, record=RECORD, rule=rule, dtype=jnp.float64)
    wide = sj.sweep(QUAD3, lrs, INITS3, **kw)
    seq = sj.sweep(QUAD3, lrs, INITS3, **kw, batch_size=1)
    chunked = sj.sweep(QUAD3, lrs, INITS3, **kw, batch_size=1, chunk_size=4)
    for name in wide.records:
        np.testing.assert_allclose(seq.records[name], wide.records[name], rtol=1e-12, atol=1e-15, err_msg=name)
        np.testing.assert_array_equal(chunked.records[name], seq.records[name], err_msg=name)
    with jax.enable_x64(True):
        run = sj.one_run(QUAD3, INITS3[0], num_steps=20, record=RECORD, rule=rule, dtype=jnp.float64).compiled()
        for i, lr in enumerate(lrs):
            for j in range(2):
                out = run(jnp.float64(lr), INITS3[j])
                np.testing.assert_array_equal(out.params, seq.final_params[i, j])
                for name in seq.records:  # (the loss evaluations can differ by an ulp between the programs, GD's too)
                    np.testing.assert_allclose(out.records[name], seq.records[name][i, j], rtol=1e-14, err_msg=name)


@pytest.mark.parametrize("solver", [diffrax.Tsit5(), diffrax.Kvaerno5()], ids=["Tsit5", "Kvaerno5"])
def test_a_stiff_flow_stays_finite_and_accurate(solver):
    problem = sj.problems.Objective(_stiff, params_like=np.zeros(2))
    lrs, inits = np.array([1e-3, 0.05, 1.0]), np.array([[1.0, 1.0]])  # ηλ_max = 10 … 10⁴
    rule = GradientFlow(solver=solver, rtol=1e-8, atol=1e-12)
    res = sj.sweep(problem, lrs, inits, num_steps=20, record=RECORD, rule=rule, dtype=jnp.float64)
    assert not res.diverged.any()
    for i, lr in enumerate(lrs):
        exact = np.exp(-lr * np.outer(res.steps, STIFF))
        np.testing.assert_allclose(res.records["loss"][i, 0], 0.5 * (exact**2) @ STIFF, rtol=1e-5, atol=1e-14)
    if isinstance(solver, diffrax.Tsit5):  # float32 at the default tolerances (Kvaerno5's Newton iteration needs float64)
        out32 = sj.sweep(problem, lrs, inits, num_steps=20, record=RECORD, rule=GradientFlow())
        assert not out32.diverged.any()
        np.testing.assert_allclose(out32.records["loss"][:, 0, 1], 0.5 * np.exp(-2 * lrs * 5), rtol=1e-3)


def test_a_failed_inner_solve_marks_the_run_diverged_and_spares_its_neighbours():
    problem = sj.problems.Objective(_band, params_like=np.zeros(2))
    lrs, inits = np.array([0.002, 0.5]), np.array([[1.0, 0.5], [2.0, -1.0]])
    kw = dict(num_steps=20, record=RECORD, rule=GradientFlow(max_steps=64), batch_size=1, dtype=jnp.float64)
    res = sj.sweep(problem, lrs, inits, **kw)
    assert not res.diverged[0].any() and res.diverged[1].all()  # η = 0.5 reaches the band; η = 0.002 does not
    assert np.all(np.isfinite(res.records["loss"][0])) and np.all(res.diverged_step[1] < 20)
    alone = sj.sweep(problem, lrs[:1], inits, **kw)
    for name in res.records:
        np.testing.assert_array_equal(res.records[name][:1], alone.records[name], err_msg=name)
    # beside GD, the flow's failure is the flow's: its records turn NaN and the run goes on
    near = sj.sweep(problem, [0.9], inits[:1], **{**kw, "rule": WithFlow(sj.GD(), GradientFlow(max_steps=64))})
    assert not near.diverged.any() and np.isnan(near.records["flow_distance"][0, 0, -1])


def test_bad_settings_are_refused():
    with pytest.raises(TypeError, match="adaptive"):
        GradientFlow(solver=diffrax.Euler())
    with pytest.raises(ValueError, match="max_steps"):
        GradientFlow(max_steps=0)
    with pytest.raises(TypeError, match="update rule"):
        WithFlow(GradientFlow)
    with pytest.raises(ValueError, match="rtol must be positive"):
        sj.sweep(QUAD3, [0.1], INITS3, num_steps=5, record=RECORD, rule=GradientFlow(), axes={"rtol": [1e-6, -1.0]})

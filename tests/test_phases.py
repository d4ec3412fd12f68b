"""Phase classification: every rule and threshold on hand-built results, then on real sweeps."""

import dataclasses
import warnings

import jax.numpy as jnp
import numpy as np
import pytest

import sweepjax as sj
from sweepjax import Phase
from sweepjax._phases import SparseRecordWarning
from sweepjax.problems import Objective, ProductLoss

NAN = np.nan
ETA = 0.5  # 2/η = 4, so the EoS band at the default eos_tol = 0.05 is κ ≥ 3.8

MONO = [1.0, 0.8, 0.6, 0.5, 0.4, 0.35]  # monotone loss
BOUNCE = [1.0, 0.8, 0.9, 0.7, 0.75, 0.6]  # non-monotone loss
AT_EDGE = [2.0, 3.0, 3.9, 3.95, 3.9, 3.85]  # curvature rises to 2/η


def make_result(loss, curv, *, lrs=(ETA,), status=None, num_steps=None, final_loss=None, final_curv=None,
                name="sharpness", extra=None):  # fmt: skip
    """A SweepResult from (n_lr, n_init, n_record) loss/curvature records (one lr row if 2-D given)."""
    loss = np.asarray(loss, float)
    curv = np.asarray(curv, float)
    if loss.ndim == 2:
        loss, curv = loss[None], curv[None]
    n_lr, n_init, n_rec = loss.shape
    def last(a):  # last finite record of each run
        return np.array([[r[np.isfinite(r)][-1] if np.isfinite(r).any() else NAN for r in row] for row in a])

    status = np.zeros((n_lr, n_init), np.int8) if status is None else np.asarray(status, np.int8).reshape(n_lr, n_init)
    final_loss = last(loss) if final_loss is None else np.asarray(final_loss, float).reshape(n_lr, n_init)
    final_curv = last(curv) if final_curv is None else np.asarray(final_curv, float).reshape(n_lr, n_init)
    final_loss = np.where(status == 1, NAN, final_loss)
    final_curv = np.where(status == 1, NAN, final_curv)
    records = {"loss": loss, name: curv, **(extra or {})}
    final = {"loss": final_loss, name: final_curv}
    budgets = np.full((n_lr, n_init), n_rec - 1) if num_steps is None else np.asarray(num_steps).reshape(n_lr, n_init)
    return sj.SweepResult(
        lrs=np.asarray(lrs, float),
        steps=np.arange(n_rec),
        inits=np.zeros((n_init, 1)),
        records=records,
        final=final,
        final_params=np.zeros((n_lr, n_init, 1)),
        status=status,
        diverged_step=np.where(status == 1, 3.0, NAN),
        num_steps=budgets,
        metadata={},
    )


def labels(result, **kw):
    out = sj.classify(result, **kw)
    assert out.dtype == np.int8 and out.shape == result.shape
    return [Phase(c) for c in out.ravel()]


def test_each_rule_on_hand_built_runs():
    runs = {
        Phase.DIVERGED: ([1.0, 5.0, 50.0, NAN, NAN, NAN], [2.0, 3.0, 9.0, NAN, NAN, NAN]),
        Phase.EOS: (BOUNCE, AT_EDGE),
        Phase.CATAPULT: ([1.0, 5.0, 3.0, 0.5, 0.2, 0.1], [6.0, 6.0, 3.0, 2.0, 2.0, 2.0]),
        Phase.LAZY: (MONO, [2.0, 2.01, 2.02, 2.03, 2.03, 2.03]),
        Phase.STABLE: (MONO, [1.0, 1.5, 2.0, 2.5, 3.0, 3.0]),
    }
    res = make_result([r[0] for r in runs.values()], [r[1] for r in runs.values()], status=[1, 0, 0, 0, 0])
    assert labels(res) == list(runs)
    assert list(Phase) == [Phase.STABLE, Phase.LAZY, Phase.EOS, Phase.CATAPULT, Phase.DIVERGED]


def test_eos_needs_non_monotone_loss():
    res = make_result([MONO, BOUNCE], [AT_EDGE, AT_EDGE])
    assert labels(res) == [Phase.STABLE, Phase.EOS]


def test_curvature_keyword_names_another_record():
    ntk = np.array([AT_EDGE])
    flat = [[1.0] * 6]
    res = make_result([BOUNCE], flat, extra={"ntk": ntk})
    res.final["ntk"] = ntk[:, -1:]
    assert labels(res) == [Phase.LAZY]
    assert labels(res, curvature="ntk") == [Phase.EOS]
    with pytest.raises(ValueError, match="curvature='nope'"):
        sj.classify(res, curvature="nope")


def test_edge_keyword():
    # κ = 15.5 at η = 0.5: far above 2/η = 4 (the EoS band's lower end only), at 8/η = 16 within 5%
    curv = [[10.0, 15.0, 15.5, 15.6, 15.5, 15.5]]
    res = make_result([BOUNCE], curv)
    assert labels(res) == [Phase.EOS]  # ≥ 0.95·4 counts as "reached the edge"
    assert labels(res, edge=8.0) == [Phase.EOS]
    assert labels(res, edge=9.0) == [Phase.STABLE]  # 15.5 < 0.95·18


def test_eos_tol_keyword():
    curv = [[2.0, 3.0, 3.5, 3.5, 3.5, 3.5]]  # 0.875 of 2/η
    res = make_result([BOUNCE], curv)
    assert labels(res) == [Phase.STABLE]
    assert labels(res, eos_tol=0.2) == [Phase.EOS]


def test_window_keyword():
    curv = [[2.0, 3.0, 3.9, 3.95, 3.4, 3.0]]  # at the edge mid-run, well below it at the end
    res = make_result([BOUNCE], curv)
    assert labels(res, window=0.0) == [Phase.STABLE]
    assert labels(res, window=0.2) == [Phase.STABLE]  # steps 4, 5 of 5
    assert labels(res, window=0.5) == [Phase.EOS]  # steps ≥ 2.5 include 3.95


def test_rise_tol_keyword():
    loss = [[1.0, 0.8, 0.808, 0.7, 0.6, 0.5]]  # one 1% rise
    res = make_result(loss, [AT_EDGE])
    assert labels(res) == [Phase.EOS]
    assert labels(res, rise_tol=0.05) == [Phase.STABLE]


def test_catapult_factor_keyword():
    loss = [[1.0, 1.5, 1.2, 0.5, 0.2, 0.1]]  # spike to 1.5× the initial loss
    curv = [[6.0, 5.0, 3.0, 2.0, 2.0, 2.0]]
    res = make_result(loss, curv)
    assert labels(res) == [Phase.STABLE]  # the loss rose but the spike is below 2×
    assert labels(res, catapult_factor=1.4) == [Phase.CATAPULT]


def test_catapult_needs_convergence_and_curvature_drop():
    spike = [1.0, 5.0, 3.0, 0.5, 0.2, 0.1]
    res = make_result(
        [spike, [1.0, 5.0, 3.0, 2.0, 1.5, 1.2], spike],
        [[6.0, 6, 3, 2, 2, 2], [6.0, 6, 3, 2, 2, 2], [2.0, 2, 3, 3.5, 3.6, 3.6]],
    )
    # converged but curvature rose: not a catapult (and 3.6 is not at the edge 4 within 5%)
    assert labels(res) == [Phase.CATAPULT, Phase.STABLE, Phase.STABLE]


def test_catapult_takes_precedence_over_eos():
    loss = [[1.0, 5.0, 3.0, 0.5, 0.6, 0.2]]
    curv = [[6.0, 6.0, 4.5, 3.9, 3.9, 3.9]]  # settles at the edge after the spike
    res = make_result(loss, curv)
    assert labels(res) == [Phase.CATAPULT]
    assert sj.criteria.eos()(res).tolist() == [[True]]  # the EoS rule holds on its own
    assert sj.criteria.catapults()(res).tolist() == [[True]]


def test_lazy_tol_keyword():
    curv = [[2.0, 2.1, 2.2, 2.2, 2.2, 2.2]]  # +10%
    res = make_result([MONO], curv)
    assert labels(res) == [Phase.STABLE]
    assert labels(res, lazy_tol=0.2) == [Phase.LAZY]
    const = make_result([MONO], [[2.0] * 6])
    assert labels(const) == [Phase.LAZY]
    assert labels(const, lazy_tol=None) == [Phase.STABLE]


def test_nan_tails_of_budgeted_runs_use_each_runs_own_window():
    # run 0 stops after step 3 (budget), so its late window is steps ≥ 2.7 → κ = 3.9
    loss = [[1.0, 0.8, 0.9, 0.7, NAN, NAN], BOUNCE]
    curv = [[2.0, 3.0, 3.9, 3.9, NAN, NAN], [2.0, 3.0, 3.9, 3.95, 3.4, 3.0]]
    res = make_result(loss, curv, num_steps=[3, 5])
    assert labels(res, window=0.2) == [Phase.EOS, Phase.STABLE]


def test_nan_curvature_of_a_live_run_is_stable_and_diverged_wins():
    res = make_result(
        [BOUNCE, [1.0, 0.5, 0.2, 0.1, 0.1, 0.1], BOUNCE],
        [[NAN] * 6, [2.0, 2, 2, 2, 2, 2], AT_EDGE],
        status=[0, 1, 1],
    )
    assert labels(res) == [Phase.STABLE, Phase.DIVERGED, Phase.DIVERGED]


def test_per_init_step_sizes():
    # the same records at η = 0.5 (edge 4) and η = 0.25 (edge 8): EoS only in the first column
    res = make_result([[BOUNCE, BOUNCE]], [[AT_EDGE, AT_EDGE]], lrs=[[0.5, 0.25]])
    assert labels(res) == [Phase.EOS, Phase.STABLE]
    shared = make_result(np.stack([[BOUNCE, BOUNCE]] * 2), np.stack([[AT_EDGE, AT_EDGE]] * 2), lrs=[0.5, 0.25])
    np.testing.assert_array_equal(sj.classify(shared), [[Phase.EOS] * 2, [Phase.STABLE] * 2])


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"edge": 0.0}, "edge"),
        ({"eos_tol": -0.1}, "eos_tol"),
        ({"eos_tol": 1.5}, "eos_tol"),
        ({"window": 2.0}, "window"),
        ({"rise_tol": -1.0}, "rise_tol"),
        ({"catapult_factor": float("nan")}, "catapult_factor"),
        ({"lazy_tol": -0.5}, "lazy_tol"),
        ({"curvature": 3}, "curvature"),
    ],
)
def test_bad_thresholds_raise(kw, match):
    res = make_result([MONO], [AT_EDGE])
    with pytest.raises(ValueError, match=match):
        sj.classify(res, **kw)


def test_missing_sharpness_record_raises():
    res = make_result([MONO], [AT_EDGE], name="other")
    with pytest.raises(ValueError, match="sharpness"):
        sj.classify(res)
    with pytest.raises(TypeError, match="SweepResult"):
        sj.classify({"loss": 1})


# ---- real sweeps ----

A_DIAG = jnp.array([4.0, 1.0, 0.25])


def quad_loss(theta):
    return 0.5 * jnp.sum(A_DIAG * theta**2)


def test_quadratic_is_lazy_below_two_over_lambda_and_diverged_above():
    factors = np.array([0.5, 0.9, 0.99, 1.02, 1.2])
    res = sj.sweep(Objective(quad_loss, params_like=jnp.zeros(3)), 0.5 * factors, jnp.ones((2, 3)), num_steps=1500)
    below = factors < 1
    expected = np.where(below, Phase.LAZY, Phase.DIVERGED)[:, None].repeat(2, axis=1)
    np.testing.assert_array_equal(sj.classify(res), expected)  # constant curvature: lazy
    expected = np.where(below, Phase.STABLE, Phase.DIVERGED)[:, None].repeat(2, axis=1)
    np.testing.assert_array_equal(sj.classify(res, lazy_tol=None), expected)


def test_product_loss_gradient_flow_vs_edge_of_stability():
    # Ahn et al. Fig. 9: ℓ = √(1+s²), η = 1/4 (2/η = 8): gap 7 from (3, 4) is GF, gap 27 from (3, 6) is EoS
    res = sj.sweep(ProductLoss("sqrt"), [0.25], jnp.array([[3.0, 4.0], [3.0, 6.0]]), num_steps=1000)
    assert labels(res) == [Phase.STABLE, Phase.EOS]


def uv_loss(p):
    return 0.5 * (p[0] * p[1]) ** 2


def test_uv_model_lazy_catapult_diverged():
    # ½(uv)² from (2, 0.1): λ₀ ≈ 4.01; lazy for η < 2/λ₀, catapult above it, divergence past ≈ 4/λ₀
    res = sj.sweep(Objective(uv_loss, params_like=jnp.zeros(2)), [0.3, 0.7, 0.9, 1.1], jnp.array([[2.0, 0.1]]),
                   num_steps=300)  # fmt: skip
    assert labels(res) == [Phase.LAZY, Phase.CATAPULT, Phase.CATAPULT, Phase.DIVERGED]


# ---- records too sparse to see a catapult ----

SPIKE = [1.0, 5.0, 0.8, 0.5, 0.2, 0.1]  # a catapult's loss: a one-step spike, seen with every = 1
SPIKE_CURV = [6.0, 6.0, 3.0, 2.0, 2.0, 2.0]  # κ_0 = 6 > 2/η = 4: unstable start; back below the edge at t = 2


def test_sparse_records_warn_when_a_catapult_may_be_missed():
    # the same run recorded only at t = 0, 2, 4 (every = 2): the spike at t = 1 falls between records
    res = make_result([SPIKE[::2]], [SPIKE_CURV[::2]])
    res = dataclasses.replace(res, steps=np.array([0, 2, 4]), num_steps=np.array([[4]]),
                              final={"loss": np.array([[0.1]]), "sharpness": np.array([[2.0]])})  # fmt: skip
    match = r"1 run\(s\) .* records 2 steps apart .*Record\(every=1\) over the first ~2 steps"
    with pytest.warns(SparseRecordWarning, match=match):
        assert labels(res) == [Phase.STABLE]


def test_dense_records_and_stable_starts_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert labels(make_result([SPIKE], [SPIKE_CURV])) == [Phase.CATAPULT]  # every = 1: the spike is seen
        quiet = make_result([MONO[::2]], [[3.0, 2.5, 2.0]])  # κ_0 = 3 < 2/η: a stable start, nothing to miss
        quiet = dataclasses.replace(quiet, steps=np.array([0, 2, 4]), num_steps=np.array([[4]]))
        assert labels(quiet) == [Phase.STABLE]


def test_uv_model_catapults_are_flagged_with_every_50_not_with_every_1():
    # the situation on ½(uv)²: with every = 50 the catapults at η = 0.7, 0.9 are labelled STABLE
    problem, lrs, inits = Objective(uv_loss, params_like=jnp.zeros(2)), [0.3, 0.7, 0.9, 1.1], jnp.array([[2.0, 0.1]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dense = sj.sweep(problem, lrs, inits, num_steps=300, record=sj.Record(every=1))
        assert labels(dense) == [Phase.LAZY, Phase.CATAPULT, Phase.CATAPULT, Phase.DIVERGED]
    sparse = sj.sweep(problem, lrs, inits, num_steps=300, record=sj.Record(every=50))
    with pytest.warns(SparseRecordWarning, match=r"2 run\(s\) .*records 50 steps apart.*Record\(every=1\)"):
        assert labels(sparse) == [Phase.LAZY, Phase.STABLE, Phase.STABLE, Phase.DIVERGED]

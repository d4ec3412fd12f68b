"""How a chunk executes: the coordinate layout of tiny problems and the cached FLOP estimate."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import sweepjax as sj
from sweepjax import _execution
from sweepjax._execution import FlatScalars, coordinates, flat_scalars, gradient_flops
from sweepjax.problems import Objective, ProductLoss


def _tree_loss(params):
    w, b = params["w"], params["b"]
    return jnp.log1p(jnp.exp(-(w[0] * w[1] + b))) + 0.1 * (w @ w) + b**4


def _tree_obs(params):
    return {"b": params["b"], "w_norm": jnp.linalg.norm(params["w"])}


TREE_INITS = {"w": np.array([[1.0, -0.5], [0.3, 0.8], [-1.2, 0.1]], np.float32), "b": np.array([0.2, -0.4, 1.0], np.float32)}


def test_flat_scalars_only_for_tiny_problems():
    product = ProductLoss("sqrt")
    assert isinstance(flat_scalars(product, jnp.ones(2)), FlatScalars)
    quadratic = Objective(lambda th: 0.5 * th @ th)
    assert flat_scalars(quadratic, jnp.ones(_execution.FLAT_SCALARS_MAX)) is not None
    assert flat_scalars(quadratic, jnp.ones(_execution.FLAT_SCALARS_MAX + 1)) is None  # too many parameters
    x = jnp.ones((400, 100))
    data_heavy = Objective(lambda th: jnp.mean((x @ jnp.full(100, th[0]) - th[1]) ** 2))
    assert flat_scalars(data_heavy, jnp.ones(2)) is None  # tiny in parameters, not in FLOPs


def test_coordinates_round_trip_a_pytree():
    one = jax.tree.map(lambda a: jnp.asarray(a[0]), TREE_INITS)
    view = flat_scalars(Objective(_tree_loss), one)
    cols = coordinates(TREE_INITS)
    assert len(cols) == 3 and all(c.shape == (3,) for c in cols)
    back = jax.vmap(view.params)(tuple(jnp.asarray(c) for c in cols))
    jax.tree.map(np.testing.assert_array_equal, back, TREE_INITS)
    assert float(view.loss(tuple(c[0] for c in cols))) == pytest.approx(float(_tree_loss(one)))


CASES = {
    "product, dense": (ProductLoss("sqrt"), ProductLoss.init_grid([1.0, 6.0, 12.0]), sj.Record(every=1), None),
    "product, power iteration, momentum": (
        ProductLoss("rsym"), ProductLoss.init_grid([2.0, 9.0]),
        sj.Record(every=5, sharpness=sj.PowerIteration(num_iters=4)), lambda lr: optax.sgd(lr, momentum=0.9),
    ),
    "ahn mean model, step scale": (
        sj.problems.AhnMeanModel(20.0), jnp.array([[0.1, 0.05], [0.4, -0.2]]), sj.Record(every=2), None,
    ),
    "pytree objective, lanczos": (
        Objective(_tree_loss, observables={"b": lambda p: p["b"]}), TREE_INITS,
        sj.Record(every=3, sharpness=sj.Lanczos(order=3)), None,
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_flat_scalar_layout_gives_the_same_bits(case, monkeypatch):
    problem, inits, record, optimizer = CASES[case]
    lrs = [0.05, 0.3, 1.9]
    run = lambda: sj.sweep(problem, lrs, inits, num_steps=30, record=record, optimizer=optimizer)  # noqa: E731
    flat = run()
    monkeypatch.setattr(_execution, "FLAT_SCALARS_MAX", 0)  # the same sweep in the pytree layout
    tree = run()
    assert (flat.metadata["params_layout"], tree.metadata["params_layout"]) == ("flat scalars", "pytree")
    for name in tree.records:
        np.testing.assert_array_equal(flat.records[name], tree.records[name], err_msg=name)
    for name in tree.final:
        np.testing.assert_array_equal(flat.final[name], tree.final[name], err_msg=name)
    jax.tree.map(np.testing.assert_array_equal, flat.final_params, tree.final_params)
    assert jax.tree.structure(flat.final_params) == jax.tree.structure(jax.tree.map(np.asarray, inits))
    np.testing.assert_array_equal(flat.status, tree.status)


def test_flop_estimate_is_computed_once_per_structure(monkeypatch):
    calls = []
    lowered = _execution._lowered_flops
    monkeypatch.setattr(_execution, "_lowered_flops", lambda *a: calls.append(1) or lowered(*a))
    monkeypatch.setattr(_execution, "_FLOPS", {})
    p = ProductLoss("huber")
    first = gradient_flops(p, jnp.ones(2))
    assert gradient_flops(ProductLoss("huber"), jnp.zeros(2)) == first and len(calls) == 1  # same shapes
    gradient_flops(ProductLoss("sqrt"), jnp.ones(2))  # another static field: another structure
    gradient_flops(p, jnp.ones(3))  # another shape
    assert len(calls) == 3


# ----------------------------------------------------------------------------- the result's memory, up front


def test_a_result_beyond_host_memory_is_refused_before_anything_runs(trace_counter):
    # the grid: 10⁴ step sizes × 10⁵ inits, every step recorded for 1,000 steps (~30 TB)
    p = ProductLoss("sqrt")
    with pytest.raises(ValueError, match=r"result would take ~3e\+04 GiB .*1,000,000,000 runs x 1,001 records.*"
                                         r"Record\(every=num_steps\)"):  # fmt: skip
        sj.sweep(p, np.geomspace(0.01, 1, 10_000), p.init_grid(np.linspace(1, 2, 100_000), x0=0.5),
                 num_steps=1000, record=sj.Record(every=1))  # fmt: skip
    assert not trace_counter


def test_max_result_bytes_sets_the_limit():
    from sweepjax._execution import result_bytes

    p, lrs, inits = ProductLoss("sqrt"), [0.1, 0.2], np.ones((3, 2))
    kw = dict(num_steps=20, record=sj.Record(every=10, sharpness=None))
    # 6 runs × (4 records × 3 fields (loss, xy, y²−x²) + 2 params) × 4 bytes + 40 bytes a run
    need = result_bytes(6, 3, 3, 2, 4, 1)
    assert need == 6 * ((3 + 1) * 3 * 4 + 2 * 4 + 40)
    assert sj.sweep(p, lrs, inits, **kw, max_result_bytes=need).shape == (2, 3)
    with pytest.raises(ValueError, match=f"over max_result_bytes={need - 1}"):
        sj.sweep(p, lrs, inits, **kw, max_result_bytes=need - 1)


@pytest.mark.slow
def test_a_finals_only_sweep_of_ten_million_runs_runs():
    p = ProductLoss("sqrt")
    res = sj.sweep(p, np.geomspace(0.01, 1, 1000), p.init_grid(np.geomspace(1, 100, 10_000), x0=0.5),
                   num_steps=10, record=sj.Record(every=10))  # fmt: skip
    assert res.shape == (1000, 10_000) and res.records["loss"].shape == (1000, 10_000, 2)
    assert np.isfinite(res.final["loss"][0]).all()


@pytest.mark.parametrize(
    "problem,kwargs",
    [
        (ProductLoss("sqrt"), dict()),  # GD, flat-scalar layout
        (ProductLoss("sqrt"), dict(max_steps=np.array([400, 123]))),
        (ProductLoss("sqrt"), dict(rule=sj.Optax(optax.adam, b1=0.9), divergence_threshold=5.0)),
        (ProductLoss("sqrt"), dict(rule=sj.Optax(optax.sgd, momentum=0.9))),
        (sj.problems.RegularityFamily(a=1.0, b=1), dict(record=sj.Record(every=100, sharpness=None))),  # remainders
    ],
)
def test_a_runs_bits_do_not_depend_on_whether_its_batch_speculated(problem, kwargs):
    """Steps between records run speculatively for tiny problems, and a sub-block is redone exactly when a
    run of its batch diverges: the stable runs of a batch come out the same either way."""
    inits = np.array([[0.5, 1.0], [0.3, 2.0], [1.5, 0.2], [2.0, 2.0]], np.float32)
    kw = {"num_steps": 400, "record": sj.Record(every=50, sharpness=None), "batch_size": 8, **kwargs}
    stable = [0.01, 0.05]
    with_diverging = sj.sweep(problem, [0.01, 5.0], inits, **kw)  # one batch of 8: the second row diverges
    assert with_diverging.metadata["params_layout"] == "flat scalars" and with_diverging.diverged[1].any()
    quiet = sj.sweep(problem, stable, inits, **kw)
    assert not quiet.diverged.any()
    for name in quiet.records:
        np.testing.assert_array_equal(with_diverging.records[name][0], quiet.records[name][0], err_msg=name)
    for x, y in zip(jax.tree.leaves(with_diverging.final_params), jax.tree.leaves(quiet.final_params)):
        np.testing.assert_array_equal(x[0], y[0])


def _quadratic(theta):
    return 0.5 * jnp.sum(jnp.linspace(1.0, 3.0, theta.size) * theta**2)


@pytest.mark.parametrize("max_steps", [None, np.array([[40, 7, 40], [40, 40, 40], [3, 40, 40]])])
def test_a_batch_whose_runs_all_stopped_skips_its_work_with_the_same_results(max_steps):
    """With batch_size=1 a diverged (or spent) run is a batch of its own that skips its remaining steps and
    measurements (lax.cond); its records, finals, status and frozen parameters are those it gets beside a live
    run (batch_size=3, nothing skipped), and so are the live runs'."""
    problem = Objective(_quadratic, params_like=jnp.zeros(12))
    inits = np.random.default_rng(0).standard_normal((3, 12)).astype(np.float32)
    kw = dict(num_steps=40, record=sj.Record(every=5, sharpness=sj.Lanczos(order=6)), max_steps=max_steps)
    lrs = [0.2, 0.6, 1.0]  # 2/λ_max = 0.667: the last row diverges
    alone, together = (sj.sweep(problem, lrs, inits, batch_size=b, **kw) for b in (1, 3))
    assert alone.diverged[2, 1:].all() and not alone.diverged[:2].any()  # (row 2, init 0 may stop at step 3)
    for name in ("status", "diverged_step", "num_steps"):
        np.testing.assert_array_equal(getattr(alone, name), getattr(together, name), err_msg=name)
    for part in ("records", "final"):
        for k, v in getattr(alone, part).items():
            np.testing.assert_allclose(v, getattr(together, part)[k], rtol=1e-5, atol=1e-7, err_msg=f"{part} {k}")
    np.testing.assert_allclose(alone.final_params, together.final_params, rtol=1e-6)
    assert np.isfinite(alone.final["loss"][:2]).all()  # the runs past their budget are still measured at T

"""Record: what a sweep measures, and the records' layout (names and shapes) derived from it."""

import jax.numpy as jnp
import numpy as np

import sweepjax as sj
from sweepjax.problems import Objective


def _quadratic_2(theta):
    return 0.5 * jnp.sum(jnp.asarray([1.0, 3.0], theta.dtype) * theta**2)


def test_an_array_observable_is_recorded_with_its_shape_and_exported(tmp_path):
    """Record names and shapes come from what the problem's observables return: here the parameters."""
    prob = Objective(_quadratic_2, params_like=jnp.zeros(2), observables={"theta": lambda t: t})
    inits = np.array([[1.0, 1.0], [0.5, -0.2]], np.float32)
    kw = dict(num_steps=20, record=sj.Record(every=5))
    res = sj.sweep(prob, [0.1, 0.9], inits, **kw)  # η = 0.9 diverges (0.9·3 > 2)
    assert res.records["theta"].shape == (2, 2, 5, 2) and res.final["theta"].shape == (2, 2, 2)
    expected = inits[:, None, :] * (1 - 0.1 * np.array([1.0, 3.0])) ** (5 * np.arange(5))[None, :, None]
    np.testing.assert_allclose(res.records["theta"][0], expected, rtol=1e-5)
    np.testing.assert_array_equal(res.final["theta"][0], res.final_params[0])
    assert np.isnan(res.records["theta"][1][..., -1, :]).all()  # past divergence, like every record
    assert res.to_xarray()["theta"].dims == ("lr", "init", "step", "theta_dim0")
    for back in (sj.load(res.save(tmp_path / "r")), sj.load(res.to_netcdf(tmp_path / "r"))):
        np.testing.assert_array_equal(back.records["theta"], res.records["theta"])
        np.testing.assert_array_equal(back.final["theta"], res.final["theta"])
    chunked = sj.sweep(prob, [0.1, 0.9], inits, chunk_size=1, batch_size=1, **kw)
    np.testing.assert_array_equal(
        chunked.records["theta"], sj.sweep(prob, [0.1, 0.9], inits, batch_size=1, **kw).records["theta"]
    )
    out = sj.one_run(prob, inits[0], **kw)(jnp.float32(0.1), inits[1])
    np.testing.assert_allclose(out.records["theta"], res.records["theta"][0, 1], rtol=1e-6)


def test_the_layout_lists_what_a_sweep_records():
    record = sj.Record(every=5, sharpness=sj.Lanczos(order=3))
    layout = record.layout({"xy": (), "theta": (2,)}, {"flow_distance": ()}, num_params=2)
    assert layout == {"loss": (), "xy": (), "theta": (2,), "flow_distance": (), "sharpness": (), "sharpness_residual": ()}
    assert sj.Record(sharpness=sj.DenseEigh(), observables=False).layout({"xy": ()}, {}, 2) == {"loss": (), "sharpness": ()}
    prob = sj.problems.ProductLoss("sqrt")
    res = sj.sweep(prob, [0.1], prob.init_grid(np.array([2.0]), x0=0.5), num_steps=10, record=record, rule=sj.WithFlow(sj.GD()))
    assert set(res.records) == set(record.layout({n: () for n in ("xy", "y2_minus_x2")}, {
        n: () for n in ("flow_distance", "flow_loss", "flow_time")}, 2, edge=True))  # fmt: skip
    assert res.metadata["edge_of"] == "sharpness"  # WithFlow(GD()) records GD's edge 2/η

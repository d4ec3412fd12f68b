"""Cai et al.'s two-layer networks: activations, the model, bad input, monotone_onset, and the rates:
with η = cT the final loss falls like T⁻², with a small fixed η like T⁻¹; the margin rises when stable."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sweepjax as sj
from sweepjax import Status, SweepResult
from sweepjax.datasets import cai_five_points, linearly_separable
from sweepjax.problems import CaiTwoLayer
from sweepjax.problems._cai import CAI_ACTIVATIONS

Z = np.linspace(-12.0, 12.0, 4801)


def test_activation_closed_forms_and_constants():
    from scipy.stats import norm

    @jax.jit
    def values(z):
        phi = {k: f(z, 0.5, 0.7) for k, f in CAI_ACTIVATIONS.items()}
        dphi = {k: jax.vmap(jax.grad(lambda s, f=f: f(s, 0.5, 0.7)))(z) for k, f in CAI_ACTIVATIONS.items()}
        return phi, dphi

    with jax.enable_x64(True):
        phi, dphi = jax.tree.map(np.asarray, values(jnp.asarray(Z)))
    np.testing.assert_allclose(phi["leaky_softplus"], 0.5 * Z + 0.5 * np.logaddexp(0.0, Z), rtol=1e-12)
    np.testing.assert_allclose(phi["gelu"], Z * norm.cdf(Z), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(phi["silu"], Z / (1.0 + np.exp(-Z)), rtol=1e-12)
    hub = np.where(Z < 0, 0.0, np.where(Z <= 0.7, Z**2 / 1.4, Z - 0.35))
    np.testing.assert_allclose(phi["huberized_relu"], hub, atol=1e-12)
    # leaky softplus: φ' ∈ [c, 1]; Huberized ReLU is C¹ with φ' ∈ [0, 1]
    assert dphi["leaky_softplus"].min() >= 0.5 - 1e-12 and dphi["leaky_softplus"].max() <= 1.0 + 1e-12
    assert dphi["huberized_relu"].min() >= 0.0 and dphi["huberized_relu"].max() <= 1.0 + 1e-12
    # near-homogeneity constants κ = sup|φ'z − φ| (formulas.md §3.2 table)
    kappa = {k: np.max(np.abs(dphi[k] * Z - phi[k])) for k in phi}
    assert kappa["leaky_softplus"] == pytest.approx(0.5 * np.log(2.0), rel=1e-6)
    assert kappa["gelu"] == pytest.approx(2.0 / (np.e * np.sqrt(2.0 * np.pi)), rel=1e-4)
    assert kappa["silu"] == pytest.approx(0.4392, abs=1e-4)
    assert kappa["huberized_relu"] == pytest.approx(0.35, rel=1e-6)


def test_model_outputs_and_observables():
    X, y = cai_five_points()
    p = CaiTwoLayer(X, y, m=3, activation="silu")
    np.testing.assert_array_equal(p.base.constants.a, [1.0, 1.0, -1.0])
    w = jax.random.normal(jax.random.key(0), (3, 3))
    Xd, wd = X.astype(float), np.asarray(w, float)
    pre = Xd @ wd.T
    f = np.mean(np.array([1.0, 1.0, -1.0]) * pre / (1.0 + np.exp(-pre)), axis=1)
    np.testing.assert_allclose(p.outputs(w), f, rtol=1e-5, atol=1e-6)
    assert float(p.loss(w)) == pytest.approx(np.mean(np.logaddexp(0.0, -y * f)), rel=1e-5)
    obs = p.observables(w)
    assert float(obs["w_norm"]) == pytest.approx(np.linalg.norm(wd), rel=1e-6)
    assert float(obs["normalized_margin"]) == pytest.approx(np.min(y * f) / np.linalg.norm(wd), rel=1e-5)
    assert p.init(jax.random.key(0), 4).shape == (4, 3, 3)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"activation": "relu"}, "activation"),
        ({"activation": 3}, "activation"),
        ({"c": 0.0}, "c"),
        ({"c": 1.5}, "c"),
        ({"c": float("nan")}, "c"),
        ({"activation": "huberized_relu", "h": 0.0}, "h"),
        ({"m": 0}, "m"),
        ({"y": np.array([1.0, 0.0, 1.0, 1.0, -1.0])}, "y"),
        ({"y": np.array([1.0, 2.0, 1.0, 1.0, -1.0])}, "y"),
        ({"X": np.zeros((5,))}, "X"),
    ],
)
def test_rejects_bad_input(kwargs, match):
    X, y = cai_five_points()
    args = {"X": X, "y": y, "m": 2} | kwargs
    with pytest.raises(ValueError, match=match):
        CaiTwoLayer(**args)


def _result(loss, status=None):
    loss = np.asarray(loss, float)[None]
    shape = loss.shape[:2]
    return SweepResult(
        lrs=np.ones(shape[0]), steps=np.arange(loss.shape[-1]) * 10, inits=np.zeros((shape[1], 1)),
        records={"loss": loss}, final={}, final_params=np.zeros(shape + (1,)),
        status=np.zeros(shape, np.int8) if status is None else np.asarray(status, np.int8)[None],
        diverged_step=np.full(shape, np.nan), num_steps=np.full(shape, 10 * (loss.shape[-1] - 1)), metadata={},
    )  # fmt: skip


def test_monotone_onset_rules():
    nan = np.nan
    res = _result(
        [
            [5.0, 4.0, 3.0, 2.0, 1.0],  # monotone from the start
            [5.0, 6.0, 4.0, 4.5, 1.0],  # last rise 4 -> 4.5, then down: onset at record 3 (t = 30)
            [5.0, 4.0, 3.0, 2.0, 2.5],  # rises at the end: never
            [5.0, 6.0, 1.0, nan, nan],  # budget ended: onset at t = 10 (one decreasing pair follows)
            [5.0, 6.0, 1.0, 0.5, 0.4],  # diverged (status): NaN
            [5.0, nan, nan, nan, nan],  # a single record: NaN
        ],
        status=[0, 0, 0, 0, Status.DIVERGED, 0],
    )
    np.testing.assert_array_equal(sj.monotone_onset(res), [[0.0, 30.0, nan, 10.0, nan, nan]])
    # rise_tol: a 1% rise is ignored with rise_tol = 0.05
    res = _result([[5.0, 5.05, 4.0, 3.0]])
    assert sj.monotone_onset(res)[0, 0] == 10.0 and sj.monotone_onset(res, rise_tol=0.05)[0, 0] == 0.0
    with pytest.raises(ValueError, match="record"):
        sj.monotone_onset(res, record="sharpness")
    with pytest.raises(ValueError, match="rise_tol"):
        sj.monotone_onset(res, rise_tol=-1.0)
    with pytest.raises(TypeError, match="SweepResult"):
        sj.monotone_onset(np.zeros(3))


# The rate experiment (reduced size): separable data squeezed onto the margin (width = 0) so the
# first large steps misclassify points (an EoS phase), m = 8 leaky-softplus neurons, c = 0.5.
TS = np.array([200, 400, 800, 2000])
C_ETA, SMALL_ETA = 3.0, 50.0


def test_rates_eos_then_stable_and_margin():
    X, y = linearly_separable(16, 5, 0.1, width=0.0, seed=0)
    p = CaiTwoLayer(X, y, m=8)
    inits = p.init(jax.random.key(0), 2)
    lrs = np.concatenate([C_ETA * TS, np.full(TS.size, SMALL_ETA)])
    res = sj.sweep(
        p, lrs, inits, num_steps=int(TS.max()), max_steps=np.concatenate([TS, TS]),
        record=sj.Record(every=1, sharpness=None), dtype=jnp.float64, divergence_threshold=np.inf,
    )  # fmt: skip
    assert not res.diverged.any()
    final = res.final["loss"]
    k = TS.size
    for j in range(2):
        large = np.polyfit(np.log(TS), np.log(final[:k, j]), 1)[0]
        small = np.polyfit(np.log(TS), np.log(final[k:, j]), 1)[0]
        assert -2.3 <= large <= -1.7, large  # L(w_T) = Õ(1/T²) with η = Θ(T)
        assert -1.2 <= small <= -0.8, small  # monotone GD: L(w_T) = Θ(1/T)
    onset = sj.monotone_onset(res)
    assert np.all(onset[k:] == 0)  # the small step size never oscillates
    assert np.all(onset[1:k] > 0) and np.all(onset[:k] <= TS[:, None] / 2)  # EoS, then stable before T/2
    # in the stable phase the normalized margin rises (nearly monotonically) to its best value
    nm = res.records["normalized_margin"]
    for i in range(1, k):
        for j in range(2):
            v = nm[i, j, int(onset[i, j]) : TS[i] + 1]
            assert v[-1] > 0 > v[0]
            assert v[-1] == pytest.approx(v.max(), rel=1e-3)
            assert np.mean(np.diff(v) >= 0) > 0.95


def test_fig4_neurons_negative_network_positive():
    """Fig. 4: m = 2 (outer weights ±½), leaky softplus c = 0.5, η = 3: the network's margin turns
    positive while each neuron, as a linear classifier aⱼwⱼ, keeps a negative margin."""
    X, y = cai_five_points()
    p = CaiTwoLayer(X, y, m=2)
    inits = 0.1 * p.init(jax.random.key(0), 2)
    res = sj.sweep(p, [3.0], inits, num_steps=3000, record=sj.Record(every=100, sharpness=None), dtype=jnp.float64)
    assert np.all(res.final["normalized_margin"] > 0)
    w = res.final_params[0]  # (n_init, 2, 3)
    a = np.array([1.0, -1.0])
    neuron = np.min(y[None, :, None] * a * np.einsum("nd,ikd->ink", X, w), axis=1)
    assert np.all(neuron < 0)

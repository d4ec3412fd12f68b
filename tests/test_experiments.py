"""Named experiments: each runs quick in-process through ``sweepjax reproduce`` and its files load back."""

import json

import numpy as np
import pytest

import sweepjax as sj
from sweepjax import cli, experiments
from sweepjax.experiments import _adaptive

NAMES = [
    "product-phase-diagram",
    "ahn-mean-model",
    "ahn-relu-figure1",
    "huang-linear",
    "huang-catapult",
    "huang-catapult-exp",
    "wang-regularity",
    "wang-networks",
    "cai-rates",
    "cohen-progressive-sharpening",
    "cohen-adaptive-eos",
    "stochastic-eos",
    "fractal-boundary",
    "central-flow",
    "kalra-early-training",
]


def test_registry_names():
    assert list(experiments.REGISTRY) == NAMES


def test_every_experiment_is_checked_on_its_numbers():
    assert set(HEADLINE_CHECKS) == set(NAMES)


#: quick runs over ~4 s on 2 CPU cores (the others take 1–3 s): in CI, not in the fast subset
SLOW = {
    "wang-networks", "huang-catapult", "cohen-progressive-sharpening", "cohen-adaptive-eos", "stochastic-eos",
    "fractal-boundary", "central-flow", "kalra-early-training",
}  # fmt: skip


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in NAMES])
def test_reproduce_quick_writes_loadable_files(name, tmp_path, capsys):
    out = tmp_path / name
    assert cli.main(["reproduce", name, "--quick", "--out", str(out), "--format", "both"]) == 0
    stdout = capsys.readouterr().out
    png, summary = out / f"{name}.png", out / f"{name}.json"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    headline = json.loads(summary.read_text())["headline"]
    assert headline and all({"ours", "paper"} <= set(h) for h in headline.values())
    for key in headline:
        assert key in stdout  # printed beside the paper's number
    npzs = sorted(out.glob("*.npz"))
    assert npzs and len(npzs) == len(list(out.glob("*.nc")))
    for npz in npzs:
        res, res_nc = sj.load(npz), sj.load(npz.with_suffix(".nc"))
        assert isinstance(res, sj.SweepResult) and res.shape == res_nc.shape
        np.testing.assert_array_equal(res.final["loss"], res_nc.final["loss"])
        assert str(npz) in stdout
    HEADLINE_CHECKS[name]({k: h["ours"] for k, h in headline.items()})


def _product(h):
    # quick: 12 × 10 runs, 2,000 steps (the full demo: 100% of 128 × 128 within 5%)
    assert h["fraction of runs within 5% of min(y0^2 - x0^2, 2/eta)"] >= 0.8
    assert h["diverged runs"] == 0


def _mean_model(h):
    assert h["b_inf at eta = 10 pi/d^2"] < -0.087  # Theorem 4: b∞ < g⁻¹(2/√(10π))
    assert h["max |b_inf| for eta < 8 pi/d^2"] < 0.01  # Theorem 3: O(1/d²)
    assert 1.0 <= h["located eta*(b_inf < -0.01) / (8 pi/d^2), median over A0"] < 1.5


def _relu_figure1(h):
    # quick: d = 30, n = 100, 3 data seeds; the threshold shows in the early bias of every seed
    assert h["max over seeds of b(eta*T = 1) at 1.25x minus at 0.9x 8pi/d^2"] < -0.05
    b1_above, b1_below = (h[f"b at eta*T = 1, eta = {r}*8pi/d^2 (mean over seeds)"] for r in ("1.25", "0.9"))
    assert b1_above < b1_below
    # below 8π/d² the drift is (nearly) η-independent: far smaller than the drop across the threshold
    assert h["max over seeds of |b(eta*T = 10) at 0.9x minus at 0.5x 8pi/d^2|"] < 0.05
    b10_above, b10_below = (h[f"b at eta*T = 10, eta = {r}*8pi/d^2 (mean over seeds)"] for r in ("2", "0.9"))
    assert b10_above < b10_below < 0


def _huang_linear(h):
    assert h["max rel. error of located eta_c (exp) vs 2w0/sinh w0"] < 0.05
    assert h["max rel. error of located eta_c (logistic) vs 4w0/tanh(w0/2)"] < 0.05


def _huang_catapult(h):
    assert h["fraction of runs with eta < 8/lambda0 classified LAZY"] == 1.0
    assert h["fraction of non-diverged runs with eta > 8/lambda0 classified CATAPULT"] >= 0.8
    assert 8 <= h["smallest eta*lambda0 classified CATAPULT (median)"] < 12
    assert h["max eta * final NTK / 8 over converged runs"] <= 1.0 + 1e-5  # Theorem 2
    assert abs(h["eta*lambda0 where one GD step first grows the NTK (median over inits)"] - 16) < 1.0
    # the divergence edge depends on the width: just above 16/λ₀ at m = 10, well above it at m = 100
    m10, m100 = h["divergence edge eta*lambda0, m = 10 (median)"], h["divergence edge eta*lambda0, m = 100 (median)"]
    assert 15.5 < m10 < 18 and 18 < m100 < 25 and m100 > m10 + 1


def _huang_catapult_exp(h):
    assert abs(h["lower edge eta*lambda0 (loss first rises), median over inits"] - 2.0) < 0.2
    assert h["lower edge: max |located - first-step edge (1 - sqrt(1 - 8a))/(2a)|"] < 0.05
    assert abs(h["upper edge eta*lambda0 (divergence), median over inits"] - 4.0) < 0.1
    assert h["fraction of runs in the predicted phase (2/lambda0, 4/lambda0)"] >= 0.9
    assert h["max eta * final NTK / 2 over converged runs"] <= 1.0 + 1e-5  # Theorem 2


def _wang_regularity(h):
    assert abs(h["(a,b)=(1,1), eta=0.05: limiting sharpness"] - 40.0) < 0.2  # EoS: 2/η − O(η)
    assert h["(a,b)=(1,1), eta=0.05: final |x^2 - y^2| (init 60)"] < 0.7 * 60  # balancing
    assert h["(a,b)=(2,3), eta=0.05: limiting sharpness * eta"] <= 1.0  # Th. 8: λ∞ ≤ 1/η
    assert h["(a,b)=(2,3), eta=0.05: final / initial |x^2 - y^2|"] > 0.99  # no balancing
    assert h["good members (b=1, a<2), eta >= 0.035: min limiting sharpness * eta/2"] > 0.98
    assert h["bad members (a=2, b>=3), all eta: max limiting sharpness * eta"] <= 1.0


def _wang_networks(h):
    # quick: 100 digits, width 16, a fifth of the steps; the full run's verdicts are in the README
    tanh, relu3, relu3_bn = (h[f"{k}: final sharpness * eta/2"] for k in ("tanh + MSE", "ReLU³ + MSE", "ReLU³ + MSE + BN"))
    assert 0.8 < tanh < 1.1 and 0.8 < relu3_bn < 1.1  # at (or reaching) the edge of stability
    assert relu3 < 0.2 and h["3-layer ReLU³ + Huber: final sharpness * eta/2"] < 0.2  # far below 2/η


def _cai_rates(h):
    assert abs(h["log-log slope of L(w_T) vs T, eta = 3T (median over inits)"] + 2.0) < 0.3
    assert abs(h["log-log slope of L(w_T) vs T, eta = 50 (median over inits)"] + 1.0) < 0.15
    assert h["EoS -> stable onset tau / T, eta = 3T (max over T and inits)"] <= 0.5
    assert h["normalized margin increase from tau to T, eta = 3T (min over T and inits)"] > 0
    assert h["runs whose risk never settles (no monotone onset)"] == 0


ADAM = "adam eta={:g}: median preconditioned sharpness / (38/eta), last half"
RMSPROP = "rmsprop eta={:g}: median preconditioned sharpness / (2/eta), last half"
MOMENTUM = "heavy ball beta={:g} eta={:g}: median sharpness / ((2+2beta)/eta), last half"
BATCH = "eta={:g} b={}: median batch_sharpness*eta/2, last half"
LMAX = "eta={:g} b={}: median sharpness*eta/2, last half"


def check_cohen_adaptive_eos(h: dict[str, float]) -> None:
    """Quick (3,000 steps): Adam at the two larger η and heavy ball at the largest η hover at their edge; RMSProp
    reaches its edge and sits above it (1.2–1.35 measured: its fast-moving preconditioner overshoots); no run is
    far above its edge."""
    adam = [h[ADAM.format(eta)] for eta in _adaptive.COHEN_ADAM_LRS]
    assert 0.8 <= adam[-1] <= 1.2 and 0.8 <= adam[-2] <= 1.2, adam
    assert adam[0] < adam[-1]  # the smallest η is still sharpening towards its edge
    rms = [h[RMSPROP.format(eta)] for eta in _adaptive.COHEN_RMSPROP_LRS]
    assert all(0.9 <= r <= 1.5 for r in rms), rms
    top = _adaptive.COHEN_MOMENTUM_LRS[-1]
    hb = [h[MOMENTUM.format(beta, top)] for beta in _adaptive.COHEN_MOMENTA]
    assert all(0.85 <= r <= 1.15 for r in hb), hb
    assert all(0.0 < v <= 1.5 for v in h.values()), h  # finite (no divergence), never far above the edge


def check_stochastic_eos(h: dict[str, float]) -> None:
    """Quick (1,000 SGD steps): at the largest η the batch sharpness sits near 2/η; for the smallest batch it is
    closer to 2/η than λ_max is; λ_max is lower for the smallest batch than for the largest at every η."""
    lrs, batches = _adaptive.STOCHASTIC_LRS, _adaptive.STOCHASTIC_BATCHES
    top, small, large = lrs[-1], batches[0], batches[-1]
    assert h["runs diverged"] == 0
    batch_top = [h[BATCH.format(top, b)] for b in batches]
    assert all(0.7 <= v <= 1.1 for v in batch_top), batch_top
    assert abs(h[BATCH.format(top, small)] - 1) < abs(h[LMAX.format(top, small)] - 1)
    for eta in lrs:
        assert h[LMAX.format(eta, small)] < h[LMAX.format(eta, large)], eta
    # smaller batches: λ_max further below 2/η at the largest η (monotone in b)
    assert np.all(np.diff([h[LMAX.format(top, b)] for b in batches]) > 0)


def check_fractal_boundary(h: dict[str, float]) -> None:
    """What quick mode must satisfy (32² tanh images, 64² quadratic + cosine images)."""
    zooms = [v for k, v in h.items() if k.startswith("tanh net: boundary dimension, zoom")]
    assert len(zooms) >= 3 and all(np.isfinite(zooms)), zooms
    assert all(0.8 < d <= 2.0 for d in zooms), zooms  # a 32² image of a near-straight edge fits ≈ 1 ± 0.05
    assert 1.0 < h["tanh net: largest boundary dimension over the zooms"] <= 2.0
    assert 0.0 < h["trainable fraction, min over all images"] and h["trainable fraction, max over all images"] < 1.0
    d = [h[f"x^2 + theta cos(2 pi x): boundary dimension, theta = {t:g}"] for t in (0.03, 0.06, 0.1)]
    assert abs(d[0] - 1.0) < 0.1, d  # convex (θ < 1/(2π²)): a non-fractal boundary
    assert d[0] < d[1] < d[2] <= 2.0, d  # rises with the roughness


def check_cohen_progressive_sharpening(h: dict[str, float]) -> None:
    """What quick mode must satisfy (200 digits, width 32, 240 steps, η ∈ {0.4, 0.5, 0.62})."""
    for act in ("tanh", "elu"):
        assert h[f"{act}: number of eta at 2/eta by T/2"] >= 2  # progressive sharpening reaches 2/η
        # at the edge of stability: λ_max·η/2 hovers at (just above) 1 over the last half
        assert h[f"{act}: min over eta at 2/eta by T/2 of the median sharpness*eta/2"] >= 0.8
        assert h[f"{act}: max over eta at 2/eta by T/2 of the median sharpness*eta/2"] <= 1.1
        # GD tracks its gradient flow until λ_max reaches 2/η, then leaves it
        before = h[f"{act}: max |theta - theta_flow|/|theta| at the record before the crossing"]
        assert before < 0.05
        assert h[f"{act}: max |theta - theta_flow|/|theta| at the end"] > before
        assert h[f"{act}: min end / before-crossing flow distance"] > 1.5


def check_central_flow(h: dict[str, float]) -> None:
    """What the quick central-flow run must show: the flow holds S at 2/η, GD hovers there, and the flow's
    predicted loss is within 25% of GD's time-averaged loss (median over the EoS phase) at every η."""
    errors = [v for k, v in h.items() if k.startswith("median rel. error")]
    assert len(errors) == 3 and all(np.isfinite(errors)) and max(errors) < 0.25, errors
    assert abs(h["central flow sharpness * eta/2, EoS phase (median, worst eta)"] - 1) < 0.02
    assert h["central flow max |sharpness * eta/2 - 1| over EoS phase and eta"] < 0.1
    assert 0.9 < h["GD sharpness * eta/2, second half (median, worst eta)"] < 1.25
    assert h["central flow EoS onset step (first sigma2 > 0, min over eta)"] < 200


def check_kalra_early_training(h: dict[str, float]) -> None:
    """Quick mode (64 digits, ReLU widths 8, 32 × depths 1, 3, 2 inits, 12 values of c): the catapult needs
    c > 2 and comes before divergence; deeper/narrower nets need a larger c to catapult and lose more
    sharpness at c = 0.5; the wide linear net's edges sit near Lewkowycz et al.'s 2 and 4."""
    assert 2.0 < h["<c_loss> at the smallest depth/width (1/32), ReLU"] < 8.0
    assert h["<c_loss> at the smallest depth/width (1/32), ReLU"] < h["<c_max> at the smallest depth/width (1/32), ReLU"]
    assert h["rank correlation of <c_loss> with depth/width (ReLU, 4 nets)"] > 0
    drop = [h[f"lambda_10/lambda_0 at c = 0.5, {w} depth/width, ReLU"] for w in ("smallest", "largest")]
    assert 0 < drop[1] < drop[0] <= 1.0, drop
    assert 2.0 <= h["<c_loss>, depth 1, width 256, linear"] < 3.5
    assert 3.8 < h["<c_max>, depth 1, width 256, linear"] < 6.0
    for act in ("linear", "relu"):
        assert h[f"<c_loss>, depth 1, width 256, {act}"] < h[f"<c_max>, depth 1, width 256, {act}"]


HEADLINE_CHECKS = {
    "product-phase-diagram": _product,
    "ahn-mean-model": _mean_model,
    "ahn-relu-figure1": _relu_figure1,
    "huang-linear": _huang_linear,
    "huang-catapult": _huang_catapult,
    "huang-catapult-exp": _huang_catapult_exp,
    "wang-regularity": _wang_regularity,
    "wang-networks": _wang_networks,
    "cai-rates": _cai_rates,
    "cohen-progressive-sharpening": check_cohen_progressive_sharpening,
    "cohen-adaptive-eos": check_cohen_adaptive_eos,
    "stochastic-eos": check_stochastic_eos,
    "fractal-boundary": check_fractal_boundary,
    "central-flow": check_central_flow,
    "kalra-early-training": check_kalra_early_training,
}


def test_unknown_name_exits_2_listing_known_names(tmp_path, capsys):
    assert cli.main(["reproduce", "no-such-thing", "--quick", "--out", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sweepjax: error: unknown experiment 'no-such-thing'")
    assert all(name in lines[0] for name in NAMES) and captured.out == ""
    with pytest.raises(ValueError, match="known: product-phase-diagram"):
        experiments.run("no-such-thing")


def test_bad_format_and_out_is_a_file(tmp_path, capsys):
    assert cli.main(["reproduce", "huang-linear", "--format", "csv", "--out", str(tmp_path)]) == 2
    assert "--format" in capsys.readouterr().err
    afile = tmp_path / "afile"
    afile.write_text("")
    assert cli.main(["reproduce", "huang-linear", "--quick", "--out", str(afile)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sweepjax: error: ") and "not a folder" in err[0]


def test_list(capsys):
    assert cli.main(["list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == NAMES


@pytest.mark.parametrize("kwargs", [{"window": 0}, {"window": 41}, {"sharp_tol": 1.0}, {"steps": 2.5}])
def test_kalra_settings_are_checked_before_anything_runs(kwargs):
    with pytest.raises((ValueError, TypeError), match="window|sharp_tol|steps"):
        experiments.run("kalra-early-training", quick=True, **kwargs)

"""Cohen et al. 2021: progressive sharpening, then the edge of stability (λ_max ≈ 2/η), and where GD leaves
its gradient flow, on MLPs trained by full-batch GD on real digits."""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from .. import datasets, plot, problems, sweep
from .._bifurcation import late_values
from .._curvature import Lanczos
from .._flow import GradientFlow, WithFlow
from .._record import Record
from .._rules import GD
from ._base import Headline, Reproduction, _record_every

if TYPE_CHECKING:
    from jaxtyping import Array, Float, Int, PRNGKeyArray

    from .._result import SweepResult

#: the activations compared (Cohen et al.'s fc-tanh and fc-elu)
PROGRESSIVE_ACTIVATIONS = ("tanh", "elu")
#: step sizes: 2/η from 10 down to ≈ 3.1, above the initial sharpness (2.65 tanh, 2.80 ELU at n = 500;
#: 2.73 / 2.96 at the quick size)
PROGRESSIVE_LRS = (0.2, 0.27, 0.37, 0.5, 0.65)
PROGRESSIVE_QUICK_LRS = (0.4, 0.5, 0.62)


#: the activation code: an integer leaf of the model, so it is a traced constant, not a trained parameter,
#: and both activations share one compiled program
ACTIVATION_CODES = {"tanh": 0, "elu": 1}


def activation(code: Int[Array, ""], z: Float[Array, "*s"]) -> Float[Array, "*s"]:
    """σ(z) = tanh z (code 0) or ELU: z for z > 0, eᶻ − 1 else (code 1); a select, so each is exact."""
    return jnp.where(code == 0, jnp.tanh(z), jax.nn.elu(z))


def mlp(model: dict, X: Float[Array, "n d"]) -> Float[Array, "n k"]:
    """f(x) = W₃ σ(W₂ σ(W₁x + b₁) + b₂) + b₃ with σ chosen by ``model["activation"]``."""
    code = model["activation"]
    h = activation(code, X @ model["w1"] + model["b1"])
    h = activation(code, h @ model["w2"] + model["b2"])
    return h @ model["w3"] + model["b3"]


def param_norm(model: dict) -> Float[Array, ""]:
    """‖θ‖₂ over every weight and bias."""
    return jnp.sqrt(sum(jnp.sum(model[k] ** 2) for k in model if k != "activation"))


def mlp_init(key: PRNGKeyArray, sizes: tuple[int, ...]) -> dict:
    """PyTorch's default ``nn.Linear`` init: W, b ~ U(±1/√fan_in)."""
    params = {}
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        key, kw, kb = jax.random.split(key, 3)
        bound = 1 / np.sqrt(fan_in)
        params[f"w{i}"] = jax.random.uniform(kw, (fan_in, fan_out), minval=-bound, maxval=bound)
        params[f"b{i}"] = jax.random.uniform(kb, (fan_out,), minval=-bound, maxval=bound)
    return params


def first_crossing(sharpness: np.ndarray, lr: float) -> int | None:
    """Index of the first record where λ_max ≥ 2/η (None if never)."""
    hit = np.flatnonzero(sharpness >= 2 / lr)
    return int(hit[0]) if hit.size else None


def cohen_progressive_sharpening(quick: bool = False) -> Reproduction:
    """Cohen et al. 2021: under full-batch GD the sharpness rises, then hovers at 2/η; GD leaves its flow there.

    Data: the first 500 of scikit-learn's 8×8 digits (quick: 200), standardized, one-hot targets, MSE
    ½‖f − y‖². Model: two hidden layers of width 64 (quick: 32), tanh and ELU (the paper's fc-tanh /
    fc-elu, on a CIFAR-10 subset there), PyTorch's default init, seed 0; both nets are one compiled program
    (the activation is an integer leaf of the model). Full-batch GD at η ∈ {0.2, 0.27, 0.37, 0.5, 0.65}
    for 2,000 steps (quick: η ∈ {0.4, 0.5, 0.62}, 240 steps), every η with λ_max(θ₀) < 2/η, and
    ``rule=WithFlow(GD())``: the gradient flow from the same θ₀ at GD's times (Tsit5, rtol 1e-5,
    atol 1e-7), recording ‖θ_GD − θ_flow‖; λ_max by Lanczos(20) at 40 records. Per η: the median of
    λ_max·η/2 over the last half of the records (the paper: ≈ 1, hovering just above 2/η), the first
    record with λ_max ≥ 2/η, and the GD–flow distance relative to ‖θ‖ at the record before that crossing
    and at the end (the paper: GD tracks the gradient flow until λ_max reaches 2/η, then leaves it).
    The summaries run over the η whose sharpness reached 2/η by T/2 (the others are still sharpening for
    part of the last half); the flow ones over those with a record between t = 0 and the crossing.
    """
    n, width, steps = (200, 32, 240) if quick else (500, 64, 2000)
    lrs = np.array(PROGRESSIVE_QUICK_LRS if quick else PROGRESSIVE_LRS)
    X, Y = datasets.load_digits(num=n)
    sizes = (X.shape[1], width, width, Y.shape[1])
    theta0 = mlp_init(jax.random.key(0), sizes)
    every = _record_every(steps, 40)
    rule = WithFlow(GD(), flow=GradientFlow(rtol=1e-5, atol=1e-7))
    results: dict[str, SweepResult] = {}
    for act in PROGRESSIVE_ACTIVATIONS:
        model = {**theta0, "activation": jnp.asarray(ACTIVATION_CODES[act], jnp.int32)}
        problem = problems.Supervised(model, X, Y, loss="mse", apply=mlp, observables={"param_norm": param_norm})
        inits = problems.stack_inits([model])
        results[f"progressive_{act}"] = sweep(
            problem, lrs, inits, num_steps=steps, rule=rule, record=Record(every=every, sharpness=Lanczos(order=20))
        )

    headline: dict[str, Headline] = {}
    summary = {}
    for act in PROGRESSIVE_ACTIVATIONS:
        res = results[f"progressive_{act}"]
        half = late_values(res, res["sharpness"] * lrs[:, None, None] / 2, fraction=0.5)[:, 0]
        medians = np.nanmedian(half, axis=-1)
        crossings = [first_crossing(res["sharpness"][i, 0], lr) for i, lr in enumerate(lrs)]
        rel = res["flow_distance"][:, 0] / res["param_norm"][:, 0]
        n_rec = len(res.steps)
        at_eos = [i for i, c in enumerate(crossings) if c is not None and c <= n_rec // 2]
        # the flow comparison needs a record strictly between t = 0 and the crossing
        before = {i: float(rel[i, crossings[i] - 1]) for i in at_eos if crossings[i] >= 2}
        summary[act] = (medians, crossings, rel, at_eos)
        for i, lr in enumerate(lrs):
            t = "never" if crossings[i] is None else f"step {int(res.steps[crossings[i]])}"
            headline[f"{act}, eta = {lr:g}: median sharpness*eta/2 over the last half"] = Headline(
                float(medians[i]), "≈ 1 (hovers at, slightly above, 2/η)", f"λ_max first ≥ 2/η at {t}"
            )
        headline[f"{act}: number of eta at 2/eta by T/2"] = Headline(float(len(at_eos)), f"{lrs.size} (every η)")
        if at_eos:
            headline[f"{act}: min over eta at 2/eta by T/2 of the median sharpness*eta/2"] = Headline(
                float(medians[at_eos].min()), "≈ 1", "last half of the records"
            )
            headline[f"{act}: max over eta at 2/eta by T/2 of the median sharpness*eta/2"] = Headline(
                float(medians[at_eos].max()), "≈ 1 (Cohen et al.: just above 1)", "last half of the records"
            )
        if before:
            tracked = sorted(before)
            note = f"η = {', '.join(f'{lrs[i]:g}' for i in tracked)} (at 2/η by T/2, from below)"
            headline[f"{act}: max |theta - theta_flow|/|theta| at the record before the crossing"] = Headline(
                max(before.values()), "≈ 0 (GD tracks the flow)", note
            )
            headline[f"{act}: max |theta - theta_flow|/|theta| at the end"] = Headline(
                float(np.max(rel[tracked, -1])), "> before (GD leaves the flow)", note
            )
            headline[f"{act}: min end / before-crossing flow distance"] = Headline(
                float(min(rel[i, -1] / before[i] for i in tracked)), "> 1", note
            )

    fig = _figure_of(results, lrs, summary, n, width, steps)
    return Reproduction(results, fig, headline, cohen_progressive_sharpening.__doc__)


def _figure_of(results, lrs, summary, n, width, steps):
    import matplotlib.figure

    from ._base import _color

    rows = len(PROGRESSIVE_ACTIVATIONS)
    fig = matplotlib.figure.Figure(figsize=(15, 3.8 * rows), layout="constrained")
    axes = fig.subplots(rows, 3, squeeze=False)
    for r, act in enumerate(PROGRESSIVE_ACTIVATIONS):
        res = results[f"progressive_{act}"]
        medians, crossings, rel, _ = summary[act]
        ax0, ax1, ax2 = axes[r]
        plot.trajectories(res, ax0, lr_index=list(range(lrs.size)), init_index=0, quantities=("sharpness",))
        ax0.set_title(f"{act}: sharpness (dashed: 2/η)", fontsize="medium")
        for i, lr in enumerate(lrs):
            ax1.plot(res.steps, rel[i], color=f"C{i % 10}", label=f"η = {lr:g}")
            if crossings[i] is not None:
                ax1.axvline(res.steps[crossings[i]], color=f"C{i % 10}", ls=":", lw=1.0)
        ax1.set(
            xlabel="step t",
            ylabel="‖θ_GD − θ_flow‖ / ‖θ_GD‖",
            title=f"{act}: distance to the flow (dotted: λ_max first ≥ 2/η)",
        )
        ax1.title.set_fontsize("medium")
        ax1.legend(fontsize="x-small")
        scaled = res["sharpness"] * lrs[:, None, None] / 2
        plot.bifurcation(res, scaled, ax2, fraction=0.5, label="λ_max·η/2, last half of the records")
        for i, lr in enumerate(lrs):
            ax2.plot([lr], [medians[i]], "_", color=_color(i, lrs.size), ms=14, mew=2)
        ax2.axhline(1.0, color="k", ls="--", lw=0.8)
        ax2.set_title(f"{act}: late λ_max·η/2 vs η (bars: medians)", fontsize="medium")
    fig.suptitle(f"Cohen et al.: progressive sharpening and EoS, {n} digits, MLP 2×{width}, {steps} GD steps")
    return fig

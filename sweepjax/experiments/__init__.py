"""Named reproductions of the papers' headline experiments, each a short function over the public API.

``REGISTRY`` maps a name to ``fn(quick: bool) -> Reproduction``: the sweep result(s) (file stem ->
``SweepResult``), a matplotlib ``Figure`` and the headline numbers beside the paper's. ``quick=True``
shrinks every size (seconds on a CPU; used by the tests). ``sweepjax reproduce NAME`` writes them
to disk; ``sweepjax list`` lists them.

Example:
    ```python
    rep = sweepjax.experiments.run("ahn-mean-model", quick=True)
    rep.results["mean_model"].final["b"]; rep.headline["b_inf at eta = 10 pi/d^2"]
    ```
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._adaptive import cohen_adaptive_eos, stochastic_eos
from ._ahn import ahn_mean_model, ahn_relu_figure1
from ._base import Headline, Reproduction
from ._cai import cai_rates
from ._central import central_flow
from ._early import kalra_early_training
from ._fractal import fractal_boundary
from ._huang import huang_catapult, huang_catapult_exp, huang_linear
from ._product import (
    PRODUCT_GAP_RANGE,
    PRODUCT_LR_RANGE,
    PRODUCT_QUICK,
    PRODUCT_RTOL,
    PRODUCT_STEPS,
    PRODUCT_X0,
    product_phase_diagram,
)  # fmt: skip
from ._progressive import cohen_progressive_sharpening
from ._wang import wang_networks, wang_regularity

#: name -> fn(quick) -> Reproduction
REGISTRY: dict[str, Callable[[bool], Reproduction]] = {
    "product-phase-diagram": product_phase_diagram,
    "ahn-mean-model": ahn_mean_model,
    "ahn-relu-figure1": ahn_relu_figure1,
    "huang-linear": huang_linear,
    "huang-catapult": huang_catapult,
    "huang-catapult-exp": huang_catapult_exp,
    "wang-regularity": wang_regularity,
    "wang-networks": wang_networks,
    "cai-rates": cai_rates,
    "cohen-progressive-sharpening": cohen_progressive_sharpening,
    "cohen-adaptive-eos": cohen_adaptive_eos,
    "stochastic-eos": stochastic_eos,
    "fractal-boundary": fractal_boundary,
    "central-flow": central_flow,
    "kalra-early-training": kalra_early_training,
}


def run(name: str, quick: bool = False, **kwargs: Any) -> Reproduction:
    """Run the named experiment; an unknown name is a ValueError listing the known ones."""
    if name not in REGISTRY:
        raise ValueError(f"unknown experiment {name!r}; known: {', '.join(REGISTRY)}")
    return REGISTRY[name](quick, **kwargs)


__all__ = [
    "REGISTRY", "Headline", "Reproduction", "run", "product_phase_diagram", "ahn_mean_model", "ahn_relu_figure1",
    "huang_linear", "huang_catapult", "huang_catapult_exp", "wang_regularity", "wang_networks", "cai_rates",
    "cohen_progressive_sharpening", "cohen_adaptive_eos", "stochastic_eos", "fractal_boundary", "central_flow",
    "kalra_early_training",
    "PRODUCT_GAP_RANGE",
    "PRODUCT_LR_RANGE", "PRODUCT_QUICK", "PRODUCT_RTOL", "PRODUCT_STEPS", "PRODUCT_X0",
]  # fmt: skip

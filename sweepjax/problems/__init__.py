"""Problems: objectives with initializers, observables and closed-form facts.

``REGISTRY`` maps names to problem classes; ``make(name, **kwargs)`` builds one.
"""

from ._ahn import AhnMeanModel as AhnMeanModel, SparseCodingNetwork as SparseCodingNetwork, SparseCodingReLU as SparseCodingReLU
from ._base import AbstractProblem as AbstractProblem, Objective as Objective
from ._cai import CaiNetwork as CaiNetwork, CaiTwoLayer as CaiTwoLayer
from ._fcn import FullyConnected as FullyConnected
from ._fractal import TanhTwoLayer as TanhTwoLayer
from ._huang import LinearPredictor as LinearPredictor, TwoLayerLinear as TwoLayerLinear
from ._model import Supervised as Supervised, stack_inits as stack_inits
from ._product import ProductLoss as ProductLoss
from ._regularity import RegularityFamily as RegularityFamily
from ._wang_networks import WangThreeLayer as WangThreeLayer, WangTwoLayer as WangTwoLayer

REGISTRY: dict[str, type[AbstractProblem]] = {
    "product": ProductLoss,
    "sparse_coding_relu": SparseCodingReLU,
    "ahn_mean_model": AhnMeanModel,
    "sparse_coding_network": SparseCodingNetwork,
    "linear_predictor": LinearPredictor,
    "two_layer_linear": TwoLayerLinear,
    "supervised": Supervised,
    "cai_two_layer": CaiTwoLayer,
    "regularity_family": RegularityFamily,
    "wang_two_layer": WangTwoLayer,
    "wang_three_layer": WangThreeLayer,
    "tanh_two_layer": TanhTwoLayer,
    "fully_connected": FullyConnected,
}


def make(name: str, **kwargs) -> AbstractProblem:
    """Build the registered problem ``name`` with keyword arguments."""
    if name not in REGISTRY:
        raise ValueError(f"unknown problem {name!r}; known: {sorted(REGISTRY)}")
    return REGISTRY[name](**kwargs)

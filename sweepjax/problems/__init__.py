"""Problems: objectives with initializers, observables and closed-form facts.

``REGISTRY`` maps names to problem classes; ``make(name, **kwargs)`` builds one.
"""

from ._base import AbstractProblem as AbstractProblem
from ._base import Objective as Objective
from ._product import ProductLoss as ProductLoss

REGISTRY: dict[str, type[AbstractProblem]] = {
    "product": ProductLoss,
}


def make(name: str, **kwargs) -> AbstractProblem:
    """Build the registered problem ``name`` with keyword arguments."""
    if name not in REGISTRY:
        raise ValueError(f"unknown problem {name!r}; known: {sorted(REGISTRY)}")
    return REGISTRY[name](**kwargs)

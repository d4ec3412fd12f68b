"""Measurements a sweep records per run beside the loss: ``Record(measures=[...])``.

Curvature of the Hessian H = ∇²f(θ_t): ``Sharpness`` (λ_max, what ``Record(sharpness=...)`` records),
``PreconditionedSharpness`` (λ_max(P⁻¹H) with the update rule's preconditioner), ``TopEigenvalues``
(the k largest, optionally the k most negative, warm-started), ``HessianTrace`` (Hutchinson),
``SpectralDensity`` (stochastic Lanczos quadrature). Gradients: ``GradNorm``, ``BatchSharpness`` and
``GradientNoiseScale`` (minibatches), ``NTKEigenvalue`` (supervised problems). Write a new one by
subclassing ``AbstractMeasure``: ``shapes``, ``init`` (its carry), ``__call__(point, carry)``.

The matrix-free kernels they use work on any symmetric matvec: ``TopK`` (warm-started block Krylov),
``hutchinson_trace``, ``slq``; and the density's summaries: ``density``, ``negative_mass``, ``spectral_moment``.
"""

from .._spectrum import (
    Eigs as Eigs,
    TopK as TopK,
    density as density,
    hutchinson_trace as hutchinson_trace,
    negative_mass as negative_mass,
    slq as slq,
    spectral_moment as spectral_moment,
)
from ._base import AbstractMeasure as AbstractMeasure, Point as Point
from ._gradients import (
    BatchSharpness as BatchSharpness,
    GradientNoiseScale as GradientNoiseScale,
    GradNorm as GradNorm,
    NTKEigenvalue as NTKEigenvalue,
    random_batches as random_batches,
)
from ._hessian import (
    HessianTrace as HessianTrace,
    PreconditionedSharpness as PreconditionedSharpness,
    Sharpness as Sharpness,
    SpectralDensity as SpectralDensity,
    TopEigenvalues as TopEigenvalues,
)

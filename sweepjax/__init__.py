"""sweepjax: gradient descent over stepsize × initialization grids in one compiled JAX program."""

__version__ = "0.1.0"

from . import (
    datasets as datasets,
    measures as measures,
    plot as plot,
    problems as problems,
    schedules as schedules,
    theory as theory,
)
from ._bifurcation import late_values as late_values
from ._boundary import Boundary as Boundary, find_boundary as find_boundary
from ._central import CentralFlow as CentralFlow
from ._criteria import criteria as criteria
from ._curvature import (
    DenseEigh as DenseEigh,
    Eig as Eig,
    Lanczos as Lanczos,
    PowerIteration as PowerIteration,
    hessian_matvec as hessian_matvec,
    hvp as hvp,
    sharpness as sharpness,
)
from ._dimension import (
    BoxCounting as BoxCounting,
    boundary_point as boundary_point,
    box_counting_dimension as box_counting_dimension,
)
from ._export import load as load
from ._flow import GradientFlow as GradientFlow, WithFlow as WithFlow
from ._phases import (
    Phase as Phase,
    SparseRecordWarning as SparseRecordWarning,
    classify as classify,
    monotone_onset as monotone_onset,
)
from ._record import Record as Record
from ._result import Status as Status, SweepResult as SweepResult
from ._rules import GD as GD, SGD as SGD, AbstractRule as AbstractRule, Optax as Optax
from ._run import OneRun as OneRun, RunOutput as RunOutput, one_run as one_run
from ._sweep import initial_sharpness as initial_sharpness, sweep as sweep, time_horizon as time_horizon

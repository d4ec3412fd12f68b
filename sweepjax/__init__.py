"""sweepjax: gradient descent over stepsize × initialization grids in one compiled JAX program."""

__version__ = "0.1.0"

from . import datasets as datasets
from . import plot as plot
from . import problems as problems
from . import theory as theory
from ._boundary import Boundary as Boundary
from ._boundary import criteria as criteria
from ._boundary import find_boundary as find_boundary
from ._curvature import DenseEigh as DenseEigh
from ._curvature import Eig as Eig
from ._curvature import Lanczos as Lanczos
from ._curvature import PowerIteration as PowerIteration
from ._curvature import hessian_matvec as hessian_matvec
from ._curvature import hvp as hvp
from ._curvature import sharpness as sharpness
from ._export import load as load
from ._phases import Phase as Phase
from ._phases import SparseRecordWarning as SparseRecordWarning
from ._phases import classify as classify
from ._phases import monotone_onset as monotone_onset
from ._record import Record as Record
from ._result import Status as Status
from ._result import SweepResult as SweepResult
from ._sweep import sweep as sweep
from ._sweep import time_horizon as time_horizon

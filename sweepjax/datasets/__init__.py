"""Host-side data generators: NumPy arrays to pass as problem fields (the only data I/O)."""

from ._synthetic import huang_degenerate as huang_degenerate
from ._synthetic import huang_nonseparable as huang_nonseparable
from ._synthetic import sparse_coding as sparse_coding

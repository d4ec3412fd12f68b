"""Box-counting dimension (``sweepjax._dimension``) against exact answers, and the fractal-boundary
experiment (Sohl-Dickstein 2024; Liu 2024) in quick mode against its check."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sweepjax._dimension import (
    boundary_box_counts,
    boundary_cells,
    boundary_point,
    box_counting_dimension,
    box_counts,
)

# ----------------------------------------------------------------------------- synthetic sets


def _cantor(x: np.ndarray, depth: int) -> np.ndarray:
    """x ∈ [0, 1) in the middle-thirds Cantor set to ``depth`` ternary digits (no digit 1)."""
    x = np.asarray(x, float)
    keep = (x >= 0) & (x < 1)
    for _ in range(depth):
        x = 3.0 * x
        digit = np.floor(x)
        keep &= digit != 1
        x = x - digit
    return keep


def _carpet(level: int) -> np.ndarray:
    """The Sierpinski carpet on a 3^level grid: True where no ternary digit pair is (1, 1)."""
    n = 3**level
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    keep = np.ones((n, n), bool)
    for _ in range(level):
        keep &= ~((i % 3 == 1) & (j % 3 == 1))
        i, j = i // 3, j // 3
    return keep


def test_straight_boundary_is_exactly_one():
    img = np.zeros((64, 64), bool)
    img[:, :32] = True  # boundary between columns 31 and 32
    mask = boundary_cells(img)
    assert mask.sum() == 64 and mask[:, 31].all()  # one cell thick
    fit = box_counting_dimension(img)
    np.testing.assert_array_equal(fit.sizes, [1, 2, 4, 8, 16])
    np.testing.assert_array_equal(fit.counts, [64, 32, 16, 8, 4])
    assert fit.dimension == pytest.approx(1.0, abs=1e-12) and fit.cells == 64
    # horizontal and diagonal straight lines
    assert box_counting_dimension(img.T).dimension == pytest.approx(1.0, abs=1e-12)
    i, j = np.indices((128, 128))
    assert box_counting_dimension(i > j).dimension == pytest.approx(1.0, abs=0.05)
    # slanted lines: closed boxes count every crossing, so N(s) ∝ 1/s at any angle
    for angle in (0.2, 0.5, 1.2):
        line = np.cos(angle) * (i - 63.5) + np.sin(angle) * (j - 63.5) > 0
        assert box_counting_dimension(line).dimension == pytest.approx(1.0, abs=0.05)


def test_filled_region_boundary_is_one_and_filled_set_is_two():
    i, j = np.indices((256, 256))
    disk = (i - 127.5) ** 2 + (j - 127.5) ** 2 < 90.0**2
    assert box_counting_dimension(disk).dimension == pytest.approx(1.0, abs=0.05)
    full = np.ones((64, 64), bool)
    fit = box_counting_dimension(full, boundary=False)
    np.testing.assert_array_equal(fit.counts, [64**2, 32**2, 16**2, 8**2, 4**2])
    assert fit.dimension == pytest.approx(2.0, abs=1e-12)
    # a checkerboard: the boundary crosses every box (but the 1 × 1 one in the edge-padded corner)
    checker = (i[:64, :64] + j[:64, :64]) % 2 == 0
    fit = box_counting_dimension(checker)
    np.testing.assert_array_equal(fit.counts, [64**2 - 1, 32**2, 16**2, 8**2, 4**2])
    assert fit.dimension == pytest.approx(2.0, abs=1e-4)


def test_sierpinski_carpet_and_cantor_dust_exact():
    """Self-similar sets with box sizes 3^k: N(3^k) = 8^(L−k) (carpet), 4^(L−k) (Cantor dust), exactly."""
    level = 5
    sizes = 3 ** np.arange(level)
    fit = box_counting_dimension(_carpet(level), sizes, boundary=False)
    np.testing.assert_array_equal(fit.counts, 8 ** (level - np.arange(level)))
    assert fit.dimension == pytest.approx(math.log(8) / math.log(3), abs=1e-12)  # 1.8928
    c = _cantor((np.arange(3**level) + 0.5) / 3**level, level)
    dust = c[:, None] & c[None, :]
    fit = box_counting_dimension(dust, sizes, boundary=False)
    np.testing.assert_array_equal(fit.counts, 4 ** (level - np.arange(level)))
    assert fit.dimension == pytest.approx(2 * math.log(2) / math.log(3), abs=1e-12)  # 1.2619


def test_boundary_of_cantor_stripes_has_dimension_one_plus_log2_over_log3():
    """Columns in the Cantor set: the boundary is (Cantor endpoints) × a line, D = 1 + log 2/log 3."""
    level = 6
    c = _cantor((np.arange(3**level) + 0.5) / 3**level, level)
    stripes = np.broadcast_to(c[:, None], (3**level, 3**level))
    fit = box_counting_dimension(stripes, 3 ** np.arange(level - 1))
    assert fit.dimension == pytest.approx(1 + math.log(2) / math.log(3), abs=0.05)  # 1.6309


def test_empty_boundary_and_bad_input():
    fit = box_counting_dimension(np.ones((16, 16), bool))
    assert math.isnan(fit.dimension) and fit.cells == 0 and np.all(fit.counts == 0)
    with pytest.raises(ValueError, match="2-D"):
        box_counting_dimension(np.ones(8, bool))
    with pytest.raises(ValueError, match="≥ 1"):
        box_counts(np.ones((4, 4), bool), [0])
    with pytest.raises(ValueError, match="≥ 1"):
        boundary_box_counts(np.ones((4, 4), bool), [0])
    with pytest.raises(ValueError, match="no boundary"):
        boundary_point(np.zeros((8, 8), bool))
    # box counts pad a ragged image with empty cells
    np.testing.assert_array_equal(box_counts(np.ones((5, 3), bool), [1, 2, 4]), [15, 6, 2])


def _zoom_images(member, center, width: float, n: int, zooms: int, factor: float):
    """Successive n × n images of ``member(x, y)`` on windows shrinking by ``factor``, each centred on the
    boundary cell of the previous one nearest its centre (as the experiment zooms)."""
    images = []
    for _ in range(zooms + 1):
        gx = center[0] + width * (np.arange(n) / (n - 1) - 0.5)
        gy = center[1] + width * (np.arange(n) / (n - 1) - 0.5)
        img = member(gx[:, None], gy[None, :])
        images.append(img)
        i, j = boundary_point(img)
        center, width = (gx[i], gy[j]), width / factor
    return images


def test_successive_zooms_smooth_boundary_straightens_fractal_one_keeps_its_dimension():
    # a circle: every zoom is centred on the boundary, which looks ever straighter: D → 1
    circle = _zoom_images(lambda x, y: x**2 + y**2 < 1.0, (0.3, 0.2), 3.0, 128, 3, 8.0)
    for img in circle:
        assert 0.0 < img.mean() < 1.0  # each zoom straddles the boundary
        assert box_counting_dimension(img).dimension == pytest.approx(1.0, abs=0.05)
    # Cantor stripes, zoomed 3× around a boundary point: the dimension stays ≈ 1 + log 2/log 3
    stripes = _zoom_images(lambda x, y: _cantor(x, 12) & (y == y), (0.5, 0.5), 1.0, 243, 2, 3.0)
    dims = [box_counting_dimension(img, 3 ** np.arange(4)).dimension for img in stripes]
    for img in stripes:
        assert 0.0 < img.mean() < 1.0
    np.testing.assert_allclose(dims, 1 + math.log(2) / math.log(3), atol=0.12)


def test_boundary_point_is_nearest_boundary_cell_to_centre():
    img = np.zeros((64, 64), bool)
    img[:, :32] = True
    assert boundary_point(img) == (31, 31) or boundary_point(img) == (32, 31)
    assert boundary_point(img, near=(0, 0)) == (0, 31)

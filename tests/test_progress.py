"""Progress: the bar moves while a single chunk runs, the results keep their bits, callbacks see pieces."""

import numpy as np
import pytest
from _asserts import assert_bitwise_equal

import sweepjax as sj
from sweepjax import _progress
from sweepjax.problems import ProductLoss

P = ProductLoss("sqrt")
LRS = np.geomspace(0.01, 0.2, 8)
INITS = P.init_grid(np.geomspace(2, 40, 8), x0=0.5)
KW = dict(num_steps=2000, record=sj.Record(every=10, sharpness=None))


@pytest.fixture
def shown(monkeypatch):
    """The fraction of its total the bar shows, after each time it is asked to move."""
    seen = []
    original = _progress.Progress._show

    def show(self, fraction):
        original(self, fraction)
        if self.bar is not None:
            seen.append(self.bar.n / self.bar.total)

    monkeypatch.setattr(_progress.Progress, "_show", show)
    return seen


def test_the_bar_moves_inside_a_single_chunk_and_the_bits_do_not_change(shown, capsys):
    ref = sj.sweep(P, LRS, INITS, **KW)
    res = sj.sweep(P, LRS, INITS, **KW, progress=True)
    assert_bitwise_equal(res, ref)
    inside = sorted(set(f for f in shown if 0 < f < 1))
    # 201 records: a tick every ceil(201/100) = 3 records, ~67 in all, then the end
    assert 50 <= len(inside) <= _progress.TICKS_PER_PIECE and shown[-1] == 1.0
    err = capsys.readouterr().err
    assert "128k/128k" in err and "run-step" in err  # tqdm's bar over 64 runs × 2000 steps
    assert not _progress._LIVE  # the bar is unregistered when the sweep ends


def test_a_second_sweep_with_a_new_bar_does_not_recompile(trace_counter):
    kw = {**KW, "num_steps": 1000}  # a program no other test compiled
    sj.sweep(P, LRS, INITS, **kw, progress=True)
    sj.sweep(P, LRS * 0.5, INITS, **kw, progress=True)
    assert len(trace_counter) == 1


def test_ticks_span_mapped_batches_and_chunks(shown):
    res = sj.sweep(P, LRS, INITS, **KW, progress=True, chunk_size=32, batch_size=8)
    assert_bitwise_equal(res, sj.sweep(P, LRS, INITS, **KW, chunk_size=32, batch_size=8))
    inside = sorted(set(f for f in shown if 0 < f < 1))
    assert len(inside) >= 2 * 50  # both chunks tick, across their 4 mapped batches
    assert any(0 < f < 0.5 for f in inside) and any(0.5 < f < 1 for f in inside) and shown[-1] == 1.0
    assert shown == sorted(shown)  # the bar never moves back (a late tick of a finished chunk is dropped)


def test_a_callback_sees_each_piece():
    seen = []
    sj.sweep(P, LRS, INITS, **KW, chunk_size=16, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_the_bar_is_released_when_a_sweep_is_interrupted(monkeypatch):
    def interrupted(self, k):
        raise KeyboardInterrupt

    monkeypatch.setattr(_progress.Progress, "piece_done", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sj.sweep(P, LRS, INITS, **KW, chunk_size=16, progress=True)
    assert not _progress._LIVE

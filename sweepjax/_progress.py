"""Progress of a sweep: a tqdm bar (or a callback) that moves between pieces and inside them.

A *piece* is one call of the compiled program: a chunk, or one segment of a chunk with
``checkpoint_every``. A callback ``progress(done, total)`` is called on the host after each piece
(``total`` pieces). The bar (``progress=True``) also moves while a piece runs: the program calls
back to the host about ``TICKS_PER_PIECE`` times per piece through ``jax.debug.callback``, never
once per run (the callback sits outside the vmap), so ticking costs ~``TICKS_PER_PIECE`` × 80 µs
per piece whatever the grid. The compiled program finds its bar through a traced token, so a new
sweep (a new bar) reuses the compiled program.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

import jax

#: host callbacks per piece while it runs (each costs ~50-80 µs on CPU)
TICKS_PER_PIECE = 100

_LIVE: dict[int, Callable[[float], None]] = {}  # token -> the bar of a running sweep
_LOCK = threading.Lock()
_TOKENS = itertools.count(1)


class Progress:
    """Reports a sweep's progress: ``piece_done(k)`` from the host, ticks from inside the program.

    Each running piece has its own token, so a tick delivered late (callbacks run on another thread)
    by a piece that has finished is dropped instead of moving the bar back.
    """

    def __init__(self, progress: bool | Callable[[int, int], None], n_pieces: int, run_steps: int):
        self.n_pieces = n_pieces
        self.callback = progress if callable(progress) else None
        self.bar = None
        if progress is True:
            try:
                from tqdm.auto import tqdm
            except ImportError as e:  # pragma: no cover - depends on the environment
                raise ImportError("progress=True needs tqdm: pip install 'sweepjax[progress]'") from e
            self.bar = tqdm(total=run_steps, unit="run-step", unit_scale=True, smoothing=0.1)
        self.done = 0  # pieces finished
        self.token = 0  # of the running piece; 0: no ticks from the program
        self._next_piece()

    @property
    def ticks(self) -> bool:
        """Whether the compiled program should tick (only a bar moves inside a piece)."""
        return self.bar is not None

    def piece_done(self, k: int) -> None:
        """Pieces 0 … k−1 are finished (computed, or loaded from ``out_dir``)."""
        self.done = k
        self._next_piece()
        self._show(k / self.n_pieces)
        if self.callback is not None:
            self.callback(k, self.n_pieces)

    def _next_piece(self) -> None:
        if self.bar is None:
            return
        with _LOCK:
            _LIVE.pop(self.token, None)
            self.token = next(_TOKENS)
            done = self.done
            _LIVE[self.token] = lambda fraction: self._show((done + min(fraction, 1.0)) / self.n_pieces)

    def _show(self, fraction: float) -> None:
        if self.bar is not None:
            n = int(round(fraction * self.bar.total))
            if n > self.bar.n:
                self.bar.update(n - self.bar.n)

    def close(self) -> None:
        with _LOCK:
            _LIVE.pop(self.token, None)
        if self.bar is not None:
            self.bar.close()


def _on_tick(token, fraction) -> None:
    with _LOCK:
        report = _LIVE.get(int(token))
        if report is not None:
            report(float(fraction))


def tick(token: jax.Array, done: jax.Array, total: int, every: int) -> None:
    """Inside the program: report ``done``/``total`` of the piece to the bar of ``token``, when ``done``
    is a multiple of ``every`` (or the end). ``done`` must not be batched over runs."""
    fire = (done % every == 0) | (done == total)
    jax.lax.cond(
        fire, lambda: jax.debug.callback(_on_tick, token, done / total, ordered=False), lambda: None
    )


def tick_every(n_units: int) -> int:
    """Fire one tick every this many units (records × batches) of a piece: ~TICKS_PER_PIECE in all."""
    return max(1, -(-n_units // TICKS_PER_PIECE))

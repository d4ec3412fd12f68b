"""Shared helpers for the benchmark scripts: timing, matmul peak, peak memory, machine line."""

from __future__ import annotations

import os
import platform
import resource
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    """Best wall time of ``repeat`` calls of ``fn`` (outputs blocked on), after one warm-up call."""
    jax.block_until_ready(fn())
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - t0)
    return best


def matmul_peak_gflops(n: int = 2048) -> float:
    """float32 GFLOP/s of an n×n @ n×n matmul in JAX on the default device (2n³ FLOPs)."""
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    return 2 * n**3 / best_of(lambda: f(a), repeat=5) / 1e9


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    dev = jax.devices()[0]
    return f"{cpu}; {os.cpu_count()} cores; jax {jax.__version__} on {jax.device_count()}x {dev.device_kind}"

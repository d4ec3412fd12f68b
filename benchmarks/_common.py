"""Shared helpers for the benchmark scripts: timing, matmul peak, peak memory, machine line."""

from __future__ import annotations

import os
import platform
import resource
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np


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


def head_to_head(contenders: dict[str, Callable[[], object]], rounds: int = 3) -> dict[str, float]:
    """Best wall time of each contender over ``rounds`` interleaved rounds (A, B, A, B, …) after one
    warm-up call each, so load from other processes on a shared machine hits every contender alike."""
    for fn in contenders.values():
        jax.block_until_ready(fn())
    best = dict.fromkeys(contenders, float("inf"))
    for _ in range(rounds):
        for name, fn in contenders.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn())
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def sweep_call(problem, lrs, inits, steps: int, record, batch_size) -> Callable[[], object]:
    """The sweep as a benchmark contender (its final losses, so the work cannot be skipped)."""
    import sweepjax as sj

    return lambda: sj.sweep(problem, lrs, inits, num_steps=steps, record=record, batch_size=batch_size).final["loss"]


def jit_loop_call(problem, lrs, inits, steps: int, record, n_runs: int | None = None) -> Callable[[], object]:
    """A Python loop of the library's one-run program (``sj.one_run``: the sweep's own ``Trajectory``, in
    the parameter layout the sweep picks for this problem), jitted once, one call per (η, θ₀) pair (the
    first ``n_runs``, arguments placed on the device outside the timing); each call returns its records
    and final metrics, the outputs the sweep gives."""
    import sweepjax as sj

    program = sj.one_run(problem, jax.tree.map(lambda a: a[0], inits), num_steps=steps, record=record)
    # the problem's data closed over as constants: ~6 µs a call leaner than program.compiled()
    run = jax.jit(lambda lr, th: program(lr, th))
    rows = jax.tree.leaves(inits)[0].shape[0]
    pairs = [(jnp.float32(lr), jax.tree.map(lambda a, i=i: jnp.asarray(a[i], jnp.float32), inits))
             for lr in lrs for i in range(rows)][:n_runs]  # fmt: skip
    return lambda: [(out.records, out.final) for out in (run(*args) for args in pairs)]


def time_strategies(problem, lrs, inits, steps: int, record, strategies, out: dict, rounds: int = 3) -> None:
    """Run-steps/s and compile time of ``sj.sweep`` under each (label, batch_size) (one timed call
    each), then the default strategy against the loop of jitted runs head to head (``rounds``
    interleaved rounds, best of each): ``sweep_auto_run_steps_per_s``, ``jit_loop_run_steps_per_s``."""
    import sweepjax as sj

    work = np.size(lrs) * steps
    for label, batch in strategies:
        call = lambda b=batch: sj.sweep(problem, lrs, inits, num_steps=steps, record=record, batch_size=b)  # noqa: E731
        t0 = time.perf_counter()
        result = call()
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        jax.block_until_ready(call().final["loss"])
        t = time.perf_counter() - t0
        out[f"sweep_{label}_run_steps_per_s"] = work / t
        out[f"sweep_{label}_compile_s"] = max(first - t, 0.0)
        if batch == "auto":
            out["auto_batch_size"] = result.metadata["batch_size"]
    best = head_to_head(
        {"sweep": sweep_call(problem, lrs, inits, steps, record, "auto"),
         "loop": jit_loop_call(problem, lrs, inits, steps, record)},
        rounds,
    )  # fmt: skip
    out["sweep_auto_run_steps_per_s"] = work / best["sweep"]
    out["jit_loop_run_steps_per_s"] = work / best["loop"]
    out["sweep_vs_loop"] = best["loop"] / best["sweep"]

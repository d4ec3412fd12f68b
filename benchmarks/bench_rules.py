"""Update rules and named axes, side by side with what a researcher would otherwise run.

(a) Minibatch SGD (``sj.SGD``, batches shuffled per epoch from each run's seed): a tanh MLP (64-32-10,
    2,410 parameters) on 1,000 scikit-learn digits, MSE on one-hot targets, 4 step sizes × 4 seeds ×
    2 batch sizes (16, 64), 500 steps, the full-batch loss every 50 steps, as one sweep with the named
    axes ``seed`` and ``batch_size``; against a Python loop of the library's one-run program
    (``sj.one_run(...).compiled()``, one program per batch size, so each loop run draws exactly its
    batch, with no padding), one call per run. Target: the sweep ≥ 1.0× the loop.
(b) Sohl-Dickstein's fractal net (``problems.TanhTwoLayer``: width 16, 272 data points, MSE), a
    256 × 256 grid of per-layer step sizes (η₁, η₂) ∈ [1e-3, 1e6]² (the public notebook's default view),
    final loss only, as one sweep (``GD(groups={"w1": "lr1", "w2": "lr2"})``, ``axes={"lr1", "lr2"}``);
    against the public notebook's approach: a jitted GD step vmapped over the grid (written by hand for
    this net; grids above 50,000 points halved, as the notebook does), driven by a Python loop over
    steps. Target: the sweep ≥ 5× that. On 2 CPU cores a 1,000-step pass over this grid takes minutes
    for the sweep and over an hour for the baseline, so both are timed over ``--fractal-timed-steps``
    (default 5) steps on the full grid and the per-step cost is extrapolated to ``--fractal-steps``
    (default 1,000); the JSON says so.

Each contender is called once to warm up (compile + run), then timed in ``--rounds`` interleaved rounds
(median of each), so compilation is reported apart from the steady state; ratios are baseline time /
sweep time (> 1: the sweep is faster). Prints JSON.

    python benchmarks/bench_rules.py [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from _common import machine

import sweepjax as sj

# ---------------------------------------------------------------------------------------------- timing


def race(contenders: dict[str, Callable[[], object]], rounds: int = 3, cap_s: float | None = None) -> dict[str, dict]:
    """Each contender called once (compile + run: ``first_s``), then ``rounds`` interleaved timed rounds
    (A, B, A, B, ...), outputs blocked on; ``steady_s`` is the median of the rounds and ``compile_s``
    = first − steady. With ``cap_s``, rounds stop early (after at least one) once the next round would end
    past ``cap_s`` seconds since the first round began; ``rounds`` says how many ran."""
    out = {}
    for name, fn in contenders.items():
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        out[name] = {"first_s": time.perf_counter() - t0, "times": []}
    start = time.perf_counter()
    for r in range(rounds):
        round_s = sum(np.median(v["times"]) for v in out.values()) if r else 0.0
        if r and cap_s is not None and time.perf_counter() - start + round_s > cap_s:
            break
        for name, fn in contenders.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn())
            out[name]["times"].append(time.perf_counter() - t0)
    for v in out.values():
        v["steady_s"] = float(np.median(v["times"]))
        v["compile_s"] = max(v["first_s"] - v["steady_s"], 0.0)
        v["rounds"] = len(v["times"])
    return out


# ------------------------------------------------------------------------------------- (a) SGD on an MLP


def digits(n: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """n standardized scikit-learn digits (64 pixels) and one-hot targets; synthetic Gaussian blobs of the
    same shapes where scikit-learn is missing."""
    try:
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
    except ImportError:  # pragma: no cover - the bench extra installs it
        rng = np.random.default_rng(0)
        y = rng.integers(0, 10, 1797)
        x = rng.normal(size=(10, 64))[y] + rng.normal(size=(1797, 64))
    x = x[:n].astype(np.float32)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    return x, np.eye(10, dtype=np.float32)[y[:n]]


def mlp_problem(n: int = 1000, hidden: int = 32) -> sj.problems.Supervised:
    """A tanh MLP 64-``hidden``-10 on ``n`` digits, ½‖f − onehot‖² (``problems.Supervised``)."""
    x, y = digits(n)

    def init_fn(key):
        return eqx.nn.MLP(x.shape[1], y.shape[1], hidden, 1, activation=jnp.tanh, key=key)

    return sj.problems.Supervised(init_fn(jax.random.key(0)), x, y, "mse", init_fn=init_fn)


def sgd_loop_call(problem, lrs, one_init, seeds, batch_sizes, steps: int, record, replace: bool = False, n_runs=None):
    """A Python loop of ``sj.one_run(...).compiled()`` SGD runs: one program per batch size (each run
    draws exactly its own batch), one call per (η, seed, b), the first ``n_runs`` of them; each call
    returns its records and final metrics (what the sweep returns)."""
    programs = {
        b: sj.one_run(problem, one_init, num_steps=steps, record=record, rule=sj.SGD(batch_size=b, replace=replace)).compiled()
        for b in batch_sizes
    }
    calls = [(programs[b], jnp.float32(lr), {"seed": jnp.uint32(s)}) for lr in lrs for s in seeds for b in batch_sizes]
    calls = calls[:n_runs]
    init = jax.tree.map(jnp.asarray, one_init)
    return lambda: [(o.records, o.final) for o in (run(lr, init, hyper=h) for run, lr, h in calls)], len(calls)


def bench_sgd(steps: int, rounds: int) -> dict:
    """Two SGD sweeps against the loop of single runs: η × seed at one batch size (the target), and η × seed
    × batch size, where the sweep's batch is the largest size's shape with a mask (a b = 16 run computes 64
    slots) while each loop program has its own exact batch shape."""
    p = mlp_problem()
    inits = p.init(jax.random.key(1), 1)
    one = jax.tree.map(lambda a: a[0], inits)
    lrs, seeds = np.array([0.05, 0.1, 0.2, 0.4]), np.arange(8)
    record = sj.Record(every=steps // 10, sharpness=None, observables=False)
    n_params = sum(a.size for a in jax.tree.leaves(one))
    out = {}
    for name, batch_sizes in (("one_batch_size", np.array([16])), ("batch_size_axis", np.array([16, 64]))):
        axes = {"seed": seeds} if batch_sizes.size == 1 else {"seed": seeds, "batch_size": batch_sizes}
        rule = sj.SGD(batch_size=int(batch_sizes[0]))

        def sweep(axes=axes, rule=rule):
            return sj.sweep(p, lrs, inits, num_steps=steps, record=record, rule=rule, axes=axes).final["loss"]

        loop, n_runs = sgd_loop_call(p, lrs, one, seeds, batch_sizes, steps, record)
        best = race({"sweep": sweep, "loop": loop}, rounds)
        res = sj.sweep(p, lrs, inits, num_steps=steps, record=record, rule=rule, axes=axes)
        work = n_runs * steps
        out[name] = {
            "workload": f"SGD, tanh MLP 64-32-10 ({n_params} params) on 1000 digits, {len(lrs)} lr x {len(seeds)} seeds x "
            f"batch {batch_sizes.tolist()}, {steps} steps, full-batch loss every {record.every}",
            "runs": n_runs,
            "steps": steps,
            "auto_batch_size": res.metadata["batch_size"],
            "sweep_compile_s": best["sweep"]["compile_s"],
            "sweep_steady_s": best["sweep"]["steady_s"],
            "sweep_run_steps_per_s": work / best["sweep"]["steady_s"],
            "loop_compile_s": best["loop"]["compile_s"],
            "loop_steady_s": best["loop"]["steady_s"],
            "loop_run_steps_per_s": work / best["loop"]["steady_s"],
            "sweep_vs_loop": best["loop"]["steady_s"] / best["sweep"]["steady_s"],
            "rounds": best["sweep"]["rounds"],
            "target_met": best["loop"]["steady_s"] / best["sweep"]["steady_s"] >= 1.0,
        }
    return out


# ------------------------------------------------------------------------------ (b) the fractal grid

#: the public notebook's default view, log10 of both layers' step sizes
FRACTAL_LOG10_RANGE = (-3.0, 6.0)
FRACTAL_RULE = sj.GD(groups={"w1": "lr1", "w2": "lr2"})


def fractal_grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    g = np.logspace(*FRACTAL_LOG10_RANGE, n)
    return g, g.copy()


def fractal_sweep_call(problem, theta, lr1, lr2, steps: int, **kwargs):
    """The per-layer grid as one sweep, final loss only."""
    record = sj.Record(every=steps, sharpness=None, observables=False)
    axes = {"lr1": lr1, "lr2": lr2}
    return lambda: sj.sweep(problem, [1.0], theta, num_steps=steps, record=record, rule=FRACTAL_RULE, axes=axes, **kwargs)


def public_code_step(problem):
    """The public notebook's GD step for this net, written by hand: loss and gradient of one network,
    θ_layer ← θ_layer − η_layer g_layer, vmapped over the grid's (η₁, η₂) pairs and jitted (the
    parameters donated, as the notebook does)."""
    h, c = problem.width, problem.input_scale

    def loss(theta, X, Y):
        return jnp.mean((jnp.tanh(c * (X @ theta["w1"].T)) @ theta["w2"] / h - Y) ** 2)

    def step(theta, lrs, X, Y):
        value, g = jax.value_and_grad(loss)(theta, X, Y)
        return {"w1": theta["w1"] - lrs[0] * g["w1"], "w2": theta["w2"] - lrs[1] * g["w2"]}, value

    vstep = jax.jit(jax.vmap(step, in_axes=(0, 0, None, None)), donate_argnums=(0,))
    vloss = jax.jit(jax.vmap(loss, in_axes=(0, None, None)))
    return vstep, vloss


def public_code_call(problem, theta, lr1, lr2, steps: int, outer_batch_size: int = 50_000, max_batches: int | None = None):
    """The notebook's ``train``: the grid's (η₁, η₂) pairs, halved recursively while above
    ``outer_batch_size``; for each batch, the initial parameters tiled over it and a Python loop of
    ``steps`` calls of the vmapped step; the final losses. ``max_batches``: run only the first batches
    (to time a subset); returns (call, the number of runs it covers)."""
    vstep, vloss = public_code_step(problem)
    a, b = np.meshgrid(lr1, lr2, indexing="ij")
    pairs = np.stack([a.ravel(), b.ravel()], -1).astype(np.float32)

    def split(p):
        return [p] if len(p) <= outer_batch_size else split(p[: len(p) // 2]) + split(p[len(p) // 2 :])

    batches = [jnp.asarray(p) for p in split(pairs)][:max_batches]
    X, Y = problem.X, problem.y
    one = jax.tree.map(lambda u: jnp.asarray(u[0]), theta)

    def call():
        out = []
        for lrs in batches:
            th = jax.tree.map(lambda u, n=len(lrs): jnp.tile(u, (n,) + (1,) * u.ndim), one)
            for _ in range(steps):
                th, _ = vstep(th, lrs, X, Y)
            out.append(vloss(th, X, Y))
        return out

    return call, sum(len(b) for b in batches)


def bench_fractal(n: int, steps: int, timed_steps: int, rounds: int) -> dict:
    p = sj.problems.TanhTwoLayer.from_seed(0)
    theta = p.init(jax.random.key(0), 1)
    lr1, lr2 = fractal_grid(n)
    public, n_runs = public_code_call(p, theta, lr1, lr2, timed_steps)
    with warnings.catch_warnings():  # XLA:CPU may not use donated buffers
        warnings.filterwarnings("ignore", message="Some donated buffers were not usable")
        best = race({"sweep": lambda: fractal_sweep_call(p, theta, lr1, lr2, timed_steps)().final["loss"], "public": public},
                    rounds)  # fmt: skip
        res = fractal_sweep_call(p, theta, lr1, lr2, timed_steps)()
        ref = np.concatenate([np.asarray(v) for v in public()]).reshape(n, n)
    got = res.final["loss"][0, :, :, 0]
    alive = res.status[0, :, :, 0] == 0
    both = alive & np.isfinite(ref)
    sweep_s, public_s = best["sweep"]["steady_s"], best["public"]["steady_s"]
    return {
        "workload": f"Sohl-Dickstein tanh net (width 16, n=272, 272 params), {n}x{n} per-layer lr grid "
        f"10^[{FRACTAL_LOG10_RANGE[0]:g}, {FRACTAL_LOG10_RANGE[1]:g}], final loss only",
        "runs": n_runs,
        "steps": steps,
        "timed_steps": timed_steps,
        "extrapolated": timed_steps != steps,
        "auto_batch_size": res.metadata["batch_size"],
        "sweep_compile_s": best["sweep"]["compile_s"],
        "sweep_steady_s": sweep_s,
        "sweep_run_steps_per_s": n_runs * timed_steps / sweep_s,
        "sweep_projected_s": sweep_s * steps / timed_steps,
        "public_compile_s": best["public"]["compile_s"],
        "public_steady_s": public_s,
        "public_run_steps_per_s": n_runs * timed_steps / public_s,
        "public_projected_s": public_s * steps / timed_steps,
        "sweep_vs_public": public_s / sweep_s,
        "rounds": best["sweep"]["rounds"],
        "diverged_fraction": float(1 - alive.mean()),
        "max_rel_diff_final_loss": float(np.max(np.abs(got[both] - ref[both]) / np.abs(ref[both]))) if both.any() else None,
        "target_met": public_s / sweep_s >= 5.0,
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds after the warm-up (median of each)")
    ap.add_argument("--sgd-steps", type=int, default=500)
    ap.add_argument("--fractal-grid", type=int, default=256, help="n × n per-layer step sizes")
    ap.add_argument("--fractal-steps", type=int, default=1000, help="the workload's steps (time extrapolated to these)")
    ap.add_argument("--fractal-timed-steps", type=int, default=5, help="steps actually run and timed")
    ap.add_argument("--quick", action="store_true", help="SGD 100 steps; a 32 × 32 grid, 100 steps run in full")
    ap.add_argument("--only", choices=("sgd", "fractal"), default=None)
    args = ap.parse_args(argv)
    if args.quick:
        args.sgd_steps, args.fractal_grid, args.fractal_steps, args.fractal_timed_steps = 100, 32, 100, 100
    out = {"machine": machine(), "backend": jax.default_backend()}
    if args.only in (None, "sgd"):
        out["sgd"] = bench_sgd(args.sgd_steps, args.rounds)
    if args.only in (None, "fractal"):
        out["fractal"] = bench_fractal(args.fractal_grid, args.fractal_steps, min(args.fractal_timed_steps, args.fractal_steps),
                                       args.rounds)  # fmt: skip
    return out


if __name__ == "__main__":
    print(json.dumps(main(), indent=1))

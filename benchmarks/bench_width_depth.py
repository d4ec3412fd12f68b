"""Width and depth as named axes (``problems.FullyConnected``, one masked max-size network, one program)
against the loop a researcher writes: one network, one λ₀ call and one sweep per (width, depth).

Workload (the ``kalra-early-training`` grid): ReLU nets on 128 digits, MSE, widths 16–128 × depths 1–4,
3 inits, η = c/λ₀ for 16 values of c, 40 GD steps, the loss every step. Both include λ₀ (``sj.initial_sharpness``).
Cold = the first call (compiles included: 2 programs for the axes, 2 per (width, depth) for the loop); warm =
again with new inits of the same shapes. The masked network costs every run the largest network's FLOPs;
the loop pays each net's own, and a compile per net.

    python benchmarks/bench_width_depth.py [--tiny] [--out result.json]
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import numpy as np
from _common import machine

import sweepjax as sj


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="a seconds-long smoke run (2 widths × 2 depths)")
    ap.add_argument("--out", default=None, help="also write the JSON here")
    args = ap.parse_args(argv)
    widths, depths, n, n_c, steps = ((8, 16), (1, 2), 32, 4, 8) if args.tiny else ((16, 32, 64, 128), (1, 2, 3, 4), 128, 16, 40)
    X, Y = sj.datasets.load_digits(num=n)
    c = np.geomspace(0.5, 40.0, n_c)
    record = sj.Record(every=1, sharpness=None, observables=False)
    solver = sj.Lanczos(order=20)
    axes = {"width": np.asarray(widths, float), "depth": np.asarray(depths, float)}
    net = sj.problems.FullyConnected(X, Y, max_width=max(widths), max_depth=max(depths))

    def with_axes(key):
        inits = net.init(key, 3)
        lam0 = sj.initial_sharpness(net, inits, axes=axes, sharpness=solver)
        res = sj.sweep(net, c[:, None, None, None] / lam0[None], inits, num_steps=steps, axes=axes, record=record)
        return lam0, res["loss"]

    def loop(key):  # each (width, depth) its own network, from the same draws' leading blocks
        inits = net.init(key, 3)
        lam0, loss = np.empty((len(widths), len(depths), 3)), np.empty((n_c, len(widths), len(depths), 3, steps + 1))
        for i, w in enumerate(widths):
            for j, d in enumerate(depths):
                small = sj.problems.FullyConnected(X, Y, max_width=w, max_depth=d)
                rows = [small.restrict({k: v[r] for k, v in inits.items()}, w, d) for r in range(3)]
                sub = {k: np.stack([row[k] for row in rows]) for k in rows[0]}
                lam0[i, j] = sj.initial_sharpness(small, sub, sharpness=solver)
                loss[:, i, j] = sj.sweep(small, c[:, None] / lam0[i, j][None], sub, num_steps=steps, record=record)["loss"]
        return lam0, loss

    out = {"machine": machine(), "widths": widths, "depths": depths, "inits": 3, "c_values": n_c, "steps": steps,
           "runs": n_c * len(widths) * len(depths) * 3}  # fmt: skip
    for name, fn in (("axes", with_axes), ("loop", loop)):
        (lam0, loss), cold = timed(lambda fn=fn: fn(jax.random.key(0)))
        _, warm = timed(lambda fn=fn: fn(jax.random.key(1)))
        out[name] = {"cold_s": cold, "warm_s": warm}
        out.setdefault("_results", {})[name] = (lam0, loss)
    (la, loss_a), (lb, loss_b) = out.pop("_results").values()
    out["max_rel_diff_lambda0"] = float(np.max(np.abs(la - lb) / lb))
    early = np.isfinite(loss_a[..., :4]) & np.isfinite(loss_b[..., :4])
    out["max_rel_diff_loss_first_3_steps"] = float(
        np.max(np.abs(loss_a[..., :4] - loss_b[..., :4])[early] / loss_b[..., :4][early])
    )
    for kind in ("cold", "warm"):
        out[f"loop_over_axes_{kind}"] = out["loop"][f"{kind}_s"] / out["axes"][f"{kind}_s"]
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return out


if __name__ == "__main__":
    main()

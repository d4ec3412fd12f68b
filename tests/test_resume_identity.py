"""The resume identity: the same code and data give the same configuration in a new process; any change
to what the loss computes (values it reads from module globals included) gives a different one."""

import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sweepjax as sj
from sweepjax._resume import computation_hash
from sweepjax.problems import Objective

SCALE = 1.0
A = jnp.diag(jnp.array([1.0, 2.0]))


def _quadratic(th):
    return 0.5 * SCALE * th @ A @ th


KW = dict(num_steps=20, record=sj.Record(every=10))
INITS = np.array([[1.0, 1.0], [0.5, -1.0]])


def test_a_changed_global_float_or_array_is_a_different_configuration(tmp_path, monkeypatch):
    # a resumed sweep must never return the results of the loss as it was before the change
    prob = Objective(_quadratic)
    sj.sweep(prob, [0.1, 0.9], INITS, **KW, out_dir=tmp_path)
    assert sj.sweep(prob, [0.1, 0.9], INITS, **KW, out_dir=tmp_path).diverged.sum() == 0  # same code and data: loads
    monkeypatch.setattr(sys.modules[__name__], "SCALE", 3.0)  # λ_max = 6: η = 0.9 now diverges
    with pytest.raises(ValueError, match=r"configuration: problem\.computation differ"):
        sj.sweep(prob, [0.1, 0.9], INITS, **KW, out_dir=tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "SCALE", 1.0)
    monkeypatch.setattr(sys.modules[__name__], "A", jnp.diag(jnp.array([1.0, 3.0])))
    with pytest.raises(ValueError, match=r"configuration: problem\.computation differ"):
        sj.sweep(prob, [0.1, 0.9], INITS, **KW, out_dir=tmp_path)


def test_computation_hash_sees_constants_inside_sub_jaxprs_and_ignores_object_identity():
    def f(c):
        return lambda v: jax.lax.cond(v[0] > 0, lambda u: jnp.sum(c * u), jnp.sum, v)

    x, c = jnp.ones(3), np.arange(3.0)
    assert computation_hash(f(c), x) == computation_hash(f(c.copy()), x)  # same values, new objects
    assert computation_hash(f(c), x) != computation_hash(f(c + 1), x)  # a constant of a cond branch


MLP_SCRIPT = """
import sys, pathlib, json, jax, numpy as np, equinox as eqx, sweepjax as sj

def init_fn(key):
    return eqx.nn.MLP(3, 1, 8, 1, activation=jax.nn.relu, final_activation=jax.nn.tanh, key=key)

X = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
prob = sj.problems.Supervised(init_fn(jax.random.key(0)), X, X[:, :1] ** 2, init_fn=init_fn)
out = pathlib.Path(sys.argv[1])
before = {p.name: p.stat().st_mtime_ns for p in out.glob("chunk_*.npz")}
res = sj.sweep(prob, [0.01, 0.1], prob.init(jax.random.key(1), 2), num_steps=10,
               record=sj.Record(every=5), out_dir=out, chunk_size=2)
after = {p.name: p.stat().st_mtime_ns for p in out.glob("chunk_*.npz")}
print(json.dumps({"loaded": sorted(k for k in before if before[k] == after.get(k)),
                  "loss": res["final_loss"].tolist()}))
"""

GLOBAL_SCRIPT = """
import sys, numpy as np, jax.numpy as jnp, sweepjax as sj
A = jnp.diag(jnp.array([1.0, float(sys.argv[2])]))
SCALE = float(sys.argv[3])

def f(th):
    return 0.5 * SCALE * th @ A @ th

sj.sweep(sj.problems.Objective(f), [0.1, 0.9], np.array([[1.0, 1.0]]), num_steps=20,
         record=sj.Record(every=10), out_dir=sys.argv[1])
print("ok")
"""


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script), *map(str, args)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip


@pytest.mark.slow
def test_an_equinox_mlp_sweep_resumes_in_a_new_process(tmp_path):
    import json

    first = _run(MLP_SCRIPT, tmp_path)
    assert first.returncode == 0, first.stderr
    second = _run(MLP_SCRIPT, tmp_path)
    assert second.returncode == 0, second.stderr
    a, b = json.loads(first.stdout.splitlines()[-1]), json.loads(second.stdout.splitlines()[-1])
    assert b["loaded"] == ["chunk_00000.npz", "chunk_00001.npz"]  # both chunks loaded, none recomputed
    assert a["loss"] == b["loss"]


@pytest.mark.slow
@pytest.mark.parametrize("changed", [("3.0", "1.0"), ("2.0", "1.5")], ids=["global array", "global float"])
def test_a_changed_global_is_refused_in_a_new_process(tmp_path, changed):
    assert _run(GLOBAL_SCRIPT, tmp_path, "2.0", "1.0").returncode == 0
    same = _run(GLOBAL_SCRIPT, tmp_path, "2.0", "1.0")
    assert same.returncode == 0, same.stderr
    other = _run(GLOBAL_SCRIPT, tmp_path, *changed)
    assert other.returncode != 0 and "problem.computation differ" in other.stderr

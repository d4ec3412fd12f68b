"""Sharding the run axis: several devices (emulated on CPU) and two jax.distributed processes on
localhost give the same bits as one device, with no change to the user's call."""

import os
import socket
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import pytest
from _asserts import assert_bitwise_equal

import sweepjax as sj

SWEEP = """
import numpy as np
import jax, jax.numpy as jnp
import sweepjax as sj

def mlp_loss(params):
    x = jnp.linspace(-1.0, 1.0, 24).reshape(8, 3)
    return 0.5 * jnp.mean((jnp.tanh(x @ params["w1"]) @ params["w2"] - jnp.sin(x[:, 0])) ** 2)

def net_sweep(**kwargs):
    mlp = sj.problems.Objective(mlp_loss, params_like={"w1": jnp.zeros((3, 4)), "w2": jnp.zeros(4)})
    k1, k2 = jax.random.split(jax.random.key(0))
    inits = {"w1": jax.random.normal(k1, (3, 3, 4)), "w2": jax.random.normal(k2, (3, 4))}
    return sj.sweep(mlp, np.geomspace(0.1, 5.0, 4), inits, num_steps=40,
                    record=sj.Record(every=10, sharpness=sj.Lanczos(order=4), measures=[
                        sj.measures.TopEigenvalues(k=2, iters=2, every=20), sj.measures.SpectralDensity(order=3, every=20)]),
                    batch_size=1, **kwargs)

def linear(model, X):
    return X @ model["w"]

def sgd_sweep():
    X = np.linspace(-1.0, 1.0, 60, dtype=np.float32).reshape(20, 3)
    prob = sj.problems.Supervised({"w": jnp.zeros(3)}, X, np.sin(3 * X[:, 0]), apply=linear)
    return sj.sweep(prob, [0.05, 0.2], {"w": np.zeros((3, 3), np.float32)}, num_steps=30,
                    record=sj.Record(every=10, sharpness=None, measures=[sj.measures.BatchSharpness(num_batches=2)]),
                    rule=sj.SGD(batch_size=4), batch_size=2,
                    axes={"seed": [0, 1, 2], "batch_size": [2, 5]})

def run():
    p = sj.problems.ProductLoss("sqrt")
    product = sj.sweep(p, np.geomspace(0.05, 3.0, 5), p.init(jax.random.key(2), 4), num_steps=50,
                       record=sj.Record(every=10, sharpness=sj.Lanczos(order=2)), batch_size=2, chunk_size=8)
    return product, net_sweep(), sgd_sweep()
"""

WORKER = SWEEP + """
import sys
if __name__ == "__main__":
    out, port, pid = sys.argv[1], sys.argv[2], sys.argv[3]
    if port != "-":
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=int(pid))
    assert jax.device_count() == 4, jax.devices()
    product, net, sgd = run()
    assert product.metadata["devices"] == 4 and net.metadata["devices"] == 4 and sgd.metadata["devices"] == 4
    # the carry of a checkpointed sweep is sharded too, and its segments give the same bits
    checkpointed = net_sweep(out_dir=f"{out}_ckpt{jax.process_index()}", checkpoint_every=20)
    for name in net.records:
        np.testing.assert_array_equal(checkpointed.records[name], net.records[name])
    if jax.process_index() == 0:
        product.save(out + "_product")
        net.save(out + "_net")
        sgd.save(out + "_sgd")
"""


def _single_device():
    scope: dict = {}
    exec(textwrap.dedent(SWEEP), scope)
    return scope["run"]()


@pytest.fixture(scope="module")
def single():
    product, net, sgd = _single_device()
    assert product.metadata["devices"] == 1
    return product, net, sgd





def _env(devices: int) -> dict:
    return {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", "JAX_PLATFORMS": "cpu"}


@pytest.mark.slow
def test_four_emulated_devices_equal_one(tmp_path, single):
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(WORKER))
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "r"), "-", "0"], env=_env(4),
                          capture_output=True, text=True, timeout=180)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_bitwise_equal(sj.load(tmp_path / "r_product.npz"), single[0])
    assert_bitwise_equal(sj.load(tmp_path / "r_net.npz"), single[1])
    assert_bitwise_equal(sj.load(tmp_path / "r_sgd.npz"), single[2])  # SGD over seed × batch-size axes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_on_localhost_equal_one_device(tmp_path, single):
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(WORKER))
    port = str(_free_port())
    procs = [
        subprocess.Popen([sys.executable, str(script), str(tmp_path / "r"), port, str(pid)], env=_env(2),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        for pid in (0, 1)
    ]
    try:
        outs = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    assert_bitwise_equal(sj.load(tmp_path / "r_product.npz"), single[0])
    assert_bitwise_equal(sj.load(tmp_path / "r_net.npz"), single[1])
    assert_bitwise_equal(sj.load(tmp_path / "r_sgd.npz"), single[2])  # SGD over seed × batch-size axes


def test_single_device_metadata_and_auto_strategy():
    p = sj.problems.ProductLoss("sqrt")
    res = sj.sweep(p, [0.1, 0.2, 0.3], p.init(jax.random.key(0), 3), num_steps=4, record=sj.Record(every=2))
    assert res.metadata["devices"] == jax.device_count() == 1
    assert res.metadata["batch_size"] == 16  # tiny problem: one vmap over the grid (rounded up to 2^k)
    xs = jnp.ones((64, 256))

    def heavy(w):  # a matmul-bound loss: runs in sequence on CPU
        return jnp.mean(jnp.tanh(xs @ w) ** 2)

    res = sj.sweep(sj.problems.Objective(heavy), [0.1, 0.2], jnp.ones((2, 256, 256)) * 0.01, num_steps=2,
                   record=sj.Record(every=2, sharpness=None))  # fmt: skip
    assert res.metadata["batch_size"] == 1

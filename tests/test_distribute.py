"""--distribute=data_parallel on the JAX backend: two virtual CPU devices, two local processes, and the refusals.

The runs are real command-line runs in subprocesses (the backend and the
device count are fixed when JAX starts), on a tiny archive with a tiny model.
"""
import importlib.util
import os
import re
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

import distribute
from configurator import default_settings
from conftest import chord_song, musicnet_entry, refused

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "classically_deep.py")
TIMEOUT = 300  # seconds any one run may take before it is killed and the test fails
needs_jax = pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")


def jax_env(devices):
    """The environment for a JAX run on `devices` virtual CPU devices, with no distributed setup inherited."""
    env = {name: value for name, value in os.environ.items() if name not in distribute.ENVIRONMENT}
    env.update(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="3",
               XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    return env


def tiny_args(tmp_path, name, *extra):
    """Settings for a quick data-parallel run on a tiny archive (built once under tmp_path), output in tmp_path/name."""
    data = tmp_path / "tiny.npz"
    if not data.exists():
        np.savez(data, **{f"{i:04d}": musicnet_entry(chord_song(i, 6)) for i in range(8)})
    return [f"--data_path={data}", f"--output_dir={tmp_path / name}", f"--cache_dir={tmp_path / name / 'cache'}",
            "--time_base=seconds", "--steps_per_second=4", "--epochs=3", "--hidden_size=16", "--head=sigmoid",
            "--seq_len=16", "--batch_size=4", "--primer_frames=8", "--generate_frames=8", "--num_outputs=1",
            "--distribute=data_parallel", *extra]


def epoch_lines(stdout):
    """The progress lines that end each epoch, as printed."""
    return [line for line in stdout.splitlines() if re.match(r"epoch \d+: \d+/\d+ steps", line)]


def without_times(lines):
    """Progress lines with their seconds and ms per step left out."""
    return [re.sub(r"[\d.]+ s\b|\d+ ms/step", "", line) for line in lines]


@needs_jax
def test_two_virtual_devices_train_score_and_generate_with_the_weights_on_both(tmp_path):
    run = subprocess.run([sys.executable, SCRIPT, *tiny_args(tmp_path, "out")], env=jax_env(2),
                         capture_output=True, text=True, timeout=TIMEOUT)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "data parallel: 2 devices in 1 process(es), this is process 0; each batch of 4 windows is split 2 per device" \
        in run.stdout
    assert re.search(r"^weights: \d+ variables, each on 2 device\(s\), 2 copies here, identical$", run.stdout, re.M)
    assert len(epoch_lines(run.stdout)) == 3
    assert {"metrics.json", "best.keras", "generated_1.mid"} <= {path.name for path in (tmp_path / "out").iterdir()}


@needs_jax
def test_two_local_processes_train_in_step_and_only_process_0_writes(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    processes = [subprocess.Popen([sys.executable, SCRIPT, *tiny_args(tmp_path, f"out{index}"),
                                   f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2",
                                   f"--process_id={index}"],
                                  env=jax_env(1), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for index in (0, 1)]
    try:
        outputs = [process.communicate(timeout=TIMEOUT) for process in processes]
    finally:
        for process in processes:
            process.kill()
    for process, (_, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr[-3000:]
    (first, _), (second, _) = outputs
    assert "data parallel: 2 devices in 2 process(es), this is process 1" in second
    assert {"settings.json", "metrics.json", "best.keras", "generated_1.mid"} <= {p.name for p in (tmp_path / "out0").iterdir()}
    assert not (tmp_path / "out1").exists()  # neither its output folder nor its cache
    assert len(epoch_lines(first)) == 3
    assert without_times(epoch_lines(first)) == without_times(epoch_lines(second))  # same losses, NLLs, decisions


@needs_jax
def test_a_batch_that_does_not_split_over_the_devices_is_refused(tmp_path):
    run = subprocess.run([sys.executable, SCRIPT, *tiny_args(tmp_path, "out", "--batch_size=3")], env=jax_env(2),
                         capture_output=True, text=True, timeout=TIMEOUT)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1] == ("error: batch_size 3 does not split evenly over 2 devices: "
                                                   "use a multiple of 2")


@pytest.mark.skipif(keras.backend.backend() == "jax", reason="the JAX backend runs data_parallel")
def test_data_parallel_on_another_backend_is_refused_naming_the_one_to_use(tmp_path, capsys):
    err = refused(capsys, tiny_args(tmp_path, "out"))
    assert err == (f"error: --distribute=data_parallel needs the JAX backend (Keras' distribution API runs on JAX "
                   f"only), not {keras.backend.backend()}: set KERAS_BACKEND=jax\n")
    assert not (tmp_path / "out").exists()


def test_several_processes_without_data_parallel_are_refused(capsys):
    assert "need --distribute=data_parallel" in refused(capsys, ["--num_processes=2"])


def test_the_environment_can_name_several_processes():
    settings = default_settings()
    assert not distribute.several_processes(settings, {})
    assert distribute.several_processes(settings, {"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234"})
    assert distribute.several_processes({**settings, "num_processes": 2}, {})
    assert not distribute.several_processes({**settings, "num_processes": 1, "process_id": 0}, {})


def test_one_process_feeds_every_row_of_a_batch():
    assert distribute.local_rows(16) == slice(0, 16)

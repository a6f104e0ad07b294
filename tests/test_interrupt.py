"""Ctrl-C (SIGINT) and SIGTERM: training finishes its batch, saves a checkpoint, and the printed command resumes it.

The runs are real command-line runs in a subprocess on a tiny archive, each
bounded by a timeout so that a hang fails the test instead of stalling it.
"""
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading

import keras
import numpy as np
import pytest
from intervaltree import IntervalTree

import classically_deep as cd
import training
import model  # noqa: F401  registers the custom layers, so best.keras loads
from conftest import chord_song, musicnet_entry, refused

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "classically_deep.py")
TIMEOUT = 300  # seconds any one subprocess may take before it is killed and the test fails
EPOCHS = 40    # a few seconds of training on the tiny archive: long enough to be stopped in


def tiny_args(tmp_path):
    """Settings for a small, quick run on a tiny archive under tmp_path (built once)."""
    data = tmp_path / "tiny.npz"
    if not data.exists():
        np.savez(data, **{f"{i:04d}": musicnet_entry(chord_song(i, 6)) for i in range(8)},
                 **{"0099": musicnet_entry(IntervalTree())})
    return [f"--data_path={data}", f"--output_dir={tmp_path / 'out'}", f"--cache_dir={tmp_path / 'cache'}",
            "--time_base=seconds", "--steps_per_second=4", f"--epochs={EPOCHS}", "--patience=1000",
            "--hidden_size=16", "--head_size=8", "--seq_len=16", "--batch_size=4", "--primer_frames=8",
            "--generate_frames=12", "--num_outputs=2"]


def run_and_signal(args, tmp_path, signum, when):
    """Run the command line; send `signum` once a stdout line starts with `when` → (exit code, stdout, stderr)."""
    stderr_path = tmp_path / f"stderr-{signum}.txt"
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen([sys.executable, SCRIPT, *args], stdout=subprocess.PIPE, stderr=stderr,
                                   text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    watchdog = threading.Timer(TIMEOUT, process.kill)  # a hang ends the output, and the asserts fail
    watchdog.start()
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith(when):
                process.send_signal(signum)
                break
        lines.append(process.stdout.read())
        process.wait()
    finally:
        watchdog.cancel()
    return process.returncode, "".join(lines), stderr_path.read_text()


def continue_command(stderr):
    """The command the run printed to continue it."""
    commands = [line[len("to continue: "):] for line in stderr.splitlines() if line.startswith("to continue: ")]
    assert len(commands) == 1, stderr
    return commands[0]


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """A tiny run stopped with SIGINT in its first epoch → (args, its folder, exit code, stdout, stderr, a copy of out)."""
    tmp_path = tmp_path_factory.mktemp("interrupted")
    args = tiny_args(tmp_path)
    code, stdout, stderr = run_and_signal(args, tmp_path, signal.SIGINT, when="Epoch 1/")
    shutil.copytree(tmp_path / "out", tmp_path / "snapshot")  # as the interruption left it
    return args, tmp_path, code, stdout, stderr


def snapshot_copy(interrupted, tmp_path):
    """A fresh copy of the interrupted run's output folder → its path."""
    return shutil.copytree(interrupted[1] / "snapshot", tmp_path / "out")


def test_sigint_in_training_exits_130_with_a_checkpoint_and_the_command_to_continue(interrupted):
    args, tmp_path, code, stdout, stderr = interrupted
    assert code == 130, stderr
    assert "Traceback" not in stderr
    assert "SIGINT: training stopped in epoch " in stderr
    command = continue_command(stderr)
    assert command.endswith(shlex.join(args + ["--resume=True"]))
    snapshot = tmp_path / "snapshot"
    assert {"settings.json", "best.keras", "resume.keras", "resume.json"} <= {p.name for p in snapshot.iterdir()}
    assert not (snapshot / "metrics.json").exists()
    progress = json.loads((snapshot / "resume.json").read_text())
    assert 1 <= progress["epoch"] < EPOCHS and len(progress["history"]["loss"]) == progress["epoch"]
    assert keras.saving.load_model(snapshot / "best.keras").count_params() > 0


def test_the_printed_command_continues_the_run_to_the_end(interrupted):
    _, tmp_path, _, _, stderr = interrupted
    resumed_from = json.loads((tmp_path / "snapshot" / "resume.json").read_text())["epoch"]
    finished = subprocess.run(continue_command(stderr), shell=True, capture_output=True, text=True, timeout=TIMEOUT)
    assert finished.returncode == 0, finished.stderr
    assert f"resuming the interrupted run at epoch {resumed_from + 1}" in finished.stdout
    assert f"Epoch {resumed_from + 1}/{EPOCHS}" in finished.stdout and "Epoch 1/" not in finished.stdout
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["epochs"] == EPOCHS  # the epochs before the interruption count
    assert not (tmp_path / "out" / "resume.json").exists() and not (tmp_path / "out" / "resume.keras").exists()


def test_resuming_with_a_changed_model_setting_is_refused(interrupted, tmp_path, capsys):
    out = snapshot_copy(interrupted, tmp_path)
    err = refused(capsys, [*interrupted[0], f"--output_dir={out}", "--hidden_size=32", "--resume=True"])
    assert "cannot resume" in err and "hidden_size (was 16, now 32)" in err


def test_resuming_may_change_the_epochs_and_the_time_budget(interrupted, tmp_path):
    out = snapshot_copy(interrupted, tmp_path)
    progress = json.loads((out / "resume.json").read_text())
    settings = cd.resolve_settings([*interrupted[0], f"--output_dir={out}", f"--epochs={EPOCHS + 5}",
                                    "--max_minutes=9", "--resume=True"], cd.default_settings())
    fingerprint = json.loads((out / "settings.json").read_text())["data_fingerprint"]
    assert training.resume_state(settings, fingerprint) == progress


def test_a_fresh_run_over_an_interrupted_one_is_refused(interrupted, tmp_path, capsys):
    out = snapshot_copy(interrupted, tmp_path)
    assert "holds an interrupted run: continue it with --resume=True" in refused(
        capsys, [*interrupted[0], f"--output_dir={out}"])
    assert (out / "resume.keras").exists()


def test_a_damaged_resume_checkpoint_is_refused(interrupted, tmp_path, capsys):
    out = snapshot_copy(interrupted, tmp_path)
    checkpoint = (out / "resume.keras").read_bytes()
    (out / "resume.keras").write_bytes(checkpoint[:len(checkpoint) // 2])
    assert "is not the checkpoint" in refused(capsys, [*interrupted[0], f"--output_dir={out}", "--resume=True"])


def test_resume_where_no_run_was_interrupted_is_refused(interrupted, tmp_path, capsys):
    err = refused(capsys, [*interrupted[0], f"--output_dir={tmp_path / 'empty'}", "--resume=True"])
    assert "holds no interrupted run to continue" in err


def test_sigterm_in_training_exits_143_with_a_checkpoint(tmp_path):
    code, _, stderr = run_and_signal(tiny_args(tmp_path), tmp_path, signal.SIGTERM, when="Epoch 1/")
    assert code == 143, stderr
    assert "SIGTERM: training stopped in epoch " in stderr and "to continue: " in stderr
    assert (tmp_path / "out" / "resume.json").exists() and (tmp_path / "out" / "resume.keras").exists()


def test_sigint_before_training_exits_130_in_one_line(tmp_path):
    code, _, stderr = run_and_signal(tiny_args(tmp_path), tmp_path, signal.SIGINT, when="settings saved:")
    assert code == 130, stderr
    assert "Traceback" not in stderr
    assert stderr.splitlines()[-1] == "interrupted (SIGINT): stopped; files already written are complete"
    assert not (tmp_path / "out" / "resume.json").exists()

"""JAX and PyTorch: the tests that run Keras code, and a whole tiny run through the command line, on each.

`python -m pytest` runs the suite on the default backend (TensorFlow). For each
other backend that is installed (JAX comes with requirements.txt; PyTorch is
skipped where it is not installed), this module runs, in fresh processes with
KERAS_BACKEND set:
- the backend-sensitive tests (the model, training that stops on a non-finite
  loss, stopping and resuming), with TensorFlow hidden as on a machine without it;
- the command line on a tiny archive twice with the same seed, once as installed
  and once with TensorFlow hidden: both finish, beat the baseline and agree to
  the byte, and the best checkpoint loads on the default backend and scores the same.
Every run is bounded by a timeout, so that a hang fails the test instead of stalling it.
"""
import json
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from intervaltree import IntervalTree

import model  # noqa: F401  registers the custom layers, so best.keras loads
import songs
import sources
from configurator import default_settings, resolve_settings
from training import evaluate
from conftest import chord_song, musicnet_entry
from midi_io import midi_to_roll

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKENDS = ["jax", "torch"]
TIMEOUT = 600  # seconds any one subprocess may take before it is killed and the test fails

# the tests whose outcome depends on the backend: everything else is numpy, files and settings
BACKEND_SENSITIVE = [
    "tests/test_model.py",
    "tests/test_training.py::test_a_loss_that_stops_being_finite_ends_training_with_the_best_weights",
    "tests/test_training.py::test_a_loss_that_is_never_finite_is_a_training_error",
    "tests/test_training.py::test_evaluate_reports_the_onset_nll_beside_the_sounding_keys_nll_of_whole_songs",
    "tests/test_compose.py::test_the_keys_a_model_strikes_again_are_written_as_a_note_off_and_a_note_on_at_one_tick",
    "tests/test_compose.py::test_the_pieces_go_on_in_their_primers_meter_and_the_midi_carries_its_time_signature",
    "tests/test_resume.py::test_sigint_in_training_exits_130_with_a_checkpoint_and_the_command_to_continue",
    "tests/test_resume.py::test_the_printed_command_continues_the_run_to_the_end",
    "tests/test_resume.py::test_a_resume_model_exactly_as_training_saved_it_loads",
    "tests/test_saved_models.py::test_the_model_loads_safely_as_it_was_trained",
    "tests/test_saved_models.py::test_the_weights_counted_from_a_config_are_the_models",
    "tests/test_saved_models.py::test_a_model_saved_before_onsets_and_meter_reads_as_one_without_them",
    "tests/test_shipped_model.py",
]

# the Python code run in each process: it says which backend Keras chose, then runs pytest or the script
SHOW_BACKEND = "import sys, keras; print('keras backend:', keras.backend.backend(), flush=True); "
PYTEST = SHOW_BACKEND + "import pytest; sys.exit(pytest.main(sys.argv[1:]))"
SCRIPT = SHOW_BACKEND + "import runpy; sys.argv = sys.argv[1:]; sys.path.insert(0, '.'); runpy.run_path(sys.argv[0], run_name='__main__')"


def backend_env(backend, tmp_path, hide_tensorflow):
    """os.environ with KERAS_BACKEND set; hide_tensorflow: a `tensorflow` that cannot be imported comes first on the path."""
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONUNBUFFERED": "1"}
    if hide_tensorflow:
        stub = tmp_path / "no_tensorflow" / "tensorflow"
        stub.mkdir(parents=True, exist_ok=True)
        (stub / "__init__.py").write_text('raise ImportError("TensorFlow is hidden: this run checks that it is not needed")\n')
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(stub.parent), env.get("PYTHONPATH")]))
    return env


def run_on(backend, code, args, tmp_path, hide_tensorflow=False):
    """Run `python -c code args` in the repository on a backend → the CompletedProcess, checked to have used that backend."""
    finished = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=TIMEOUT, env=backend_env(backend, tmp_path, hide_tensorflow))
    assert f"keras backend: {backend}\n" in finished.stdout, finished.stderr[-3000:]
    return finished


def other_backend(name):
    """name, once it is installed and not the backend this suite is running on (that one runs every test anyway)."""
    pytest.importorskip(name)
    if keras.backend.backend() == name:
        pytest.skip(f"the whole suite is running on {name}")
    return name


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Each of JAX and PyTorch; skipped where it is not installed."""
    return other_backend(request.param)


def test_backend_sensitive_tests_pass_without_tensorflow(backend, tmp_path):
    finished = run_on(backend, PYTEST, ["-q", "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'pytest'}",
                                        *BACKEND_SENSITIVE], tmp_path, hide_tensorflow=True)
    summary = finished.stdout.strip().splitlines()[-1]
    assert finished.returncode == 0, finished.stdout[-6000:] + finished.stderr[-2000:]
    assert "failed" not in summary and "skipped" not in summary and " passed" in summary, summary


TINY = ["--time_base=seconds", "--steps_per_second=4", "--epochs=20", "--hidden_size=16", "--head_size=8",
        "--seq_len=16", "--batch_size=4", "--primer_frames=8", "--generate_frames=12", "--num_outputs=2",
        "--ema=0"]  # a weight average needs more than this run's ~90 steps


@pytest.fixture(scope="module", params=BACKENDS)
def tiny_runs(request, tmp_path_factory):
    """The command line twice on a tiny archive, same settings and seed: as installed, then with TensorFlow hidden
    → (backend, data path, cache folder, [(CompletedProcess, output folder)] * 2)."""
    backend = other_backend(request.param)
    tmp_path = tmp_path_factory.mktemp(f"tiny-{backend}")
    data, cache = tmp_path / "tiny.npz", tmp_path / "cache"
    np.savez(data, **{f"{i:04d}": musicnet_entry(chord_song(i, 6)) for i in range(8)},
             **{"0099": musicnet_entry(IntervalTree())})
    runs = []
    for name, hide in (("installed", False), ("no_tensorflow", True)):
        out = tmp_path / name
        args = [os.path.join(ROOT, "classically_deep.py"), f"--data_path={data}", f"--output_dir={out}",
                f"--cache_dir={cache}", *TINY]
        runs.append((run_on(backend, SCRIPT, args, tmp_path, hide_tensorflow=hide), out))
    return backend, data, cache, runs


def outcome(out):
    """A run's validation and test NLL and its training losses, from its metrics.json."""
    metrics = json.loads((out / "metrics.json").read_text())
    return metrics["valid_frame_nll"], metrics["test_frame_nll"], metrics["history"]["loss"]


def test_whole_run_finishes_writes_midi_and_beats_the_baseline(tiny_runs):
    _, _, _, runs = tiny_runs
    for finished, out in runs:
        assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
        metrics = json.loads((out / "metrics.json").read_text())
        assert math.isfinite(metrics["valid_frame_nll"]) and math.isfinite(metrics["test_frame_nll"])
        assert metrics["test_frame_nll"] < metrics["test_frame_nll_baseline"]
        for number in (1, 2):
            roll = midi_to_roll(out / f"generated_{number}.mid", lowest_note=21, highest_note=108,
                                frames_per_second=4).roll
            assert roll.shape == (8 + 12, 88) and roll[8:].any()  # the primer, then a continuation that sounds
            assert (out / f"generated_{number}.wav").exists()
        assert (out / "report.html").exists()


def test_same_seed_gives_the_same_run_with_or_without_tensorflow_installed(tiny_runs):
    _, _, _, [(_, first), (_, second)] = tiny_runs
    assert outcome(first) == outcome(second)
    for number in (1, 2):
        assert (first / f"generated_{number}.mid").read_bytes() == (second / f"generated_{number}.mid").read_bytes()


def test_best_checkpoint_loads_on_this_suites_backend_and_scores_the_same(tiny_runs):
    _, data, cache, [(_, out), _] = tiny_runs
    settings = resolve_settings([f"--data_path={data}", f"--cache_dir={cache}", "--save_mode=False", *TINY],
                                default_settings())
    parts, _, _ = songs.load_songs(sources.open_source(str(data)), settings, save=False)
    loaded = keras.saving.load_model(out / "best.keras")
    scored = evaluate(loaded, parts)
    assert scored["test_frame_nll"] == pytest.approx(outcome(out)[1], rel=1e-5)
    assert scored["test_onset_nll"] == pytest.approx(json.loads((out / "metrics.json").read_text())["test_onset_nll"],
                                                     rel=1e-5)

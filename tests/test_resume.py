"""Ctrl-C (SIGINT) and SIGTERM: training finishes its batch, saves a checkpoint, and the printed command resumes it;
a resume folder someone handed over that holds anything else is refused in one line.

The runs are real command-line runs in a subprocess on a tiny archive, each
bounded by a timeout (and, for the refusals, a memory limit) so that a hang
fails the test instead of stalling it.
"""
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import zipfile

import keras
import numpy as np
import pytest
from intervaltree import IntervalTree

import configurator
import hostile
import model  # registers the custom layers, so best.keras loads
import resume
import training
from conftest import chord_song, musicnet_entry, refused
from files import DataError
from rolls import frame_width

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "classically_deep.py")
TIMEOUT = 300  # seconds any one subprocess may take before it is killed and the test fails
EPOCHS = 40    # a few seconds of training on the tiny archive: long enough to be stopped in
CHANNELS = frame_width(88, True, True)  # per frame of the interrupted run's model: keys sounding, keys struck, meter


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
    assert "kept the earlier run" not in finished.stdout and not (tmp_path / "out" / "earlier").exists()  # same run


def test_resuming_with_a_changed_model_setting_is_refused(interrupted, tmp_path, capsys):
    out = snapshot_copy(interrupted, tmp_path)
    err = refused(capsys, [*interrupted[0], f"--output_dir={out}", "--hidden_size=32", "--resume=True"])
    assert "cannot resume" in err and "hidden_size (was 16, now 32)" in err


def test_resuming_a_run_saved_before_onsets_and_meter_is_refused_saying_how_to_start_afresh(interrupted, tmp_path,
                                                                                            capsys):
    out = snapshot_copy(interrupted, tmp_path)
    saved = json.loads((out / "settings.json").read_text())
    (out / "settings.json").write_text(json.dumps({k: v for k, v in saved.items() if k not in ("onsets", "meter")}))
    err = refused(capsys, [*interrupted[0], f"--output_dir={out}", "--resume=True"])
    assert "was saved by an earlier version, without the settings onsets, meter" in err
    assert f"delete {out / 'resume.json'}" in err


def test_resuming_may_change_the_epochs_and_the_time_budget(interrupted, tmp_path):
    out = snapshot_copy(interrupted, tmp_path)
    progress = json.loads((out / "resume.json").read_text())
    settings = configurator.resolve_settings([*interrupted[0], f"--output_dir={out}", f"--epochs={EPOCHS + 5}",
                                              "--max_minutes=4.5", "--resume=True"], configurator.default_settings())
    fingerprint = json.loads((out / "settings.json").read_text())["data_fingerprint"]
    assert resume.resume_state(settings, fingerprint) == progress


def test_a_fresh_run_over_an_interrupted_one_is_refused(interrupted, tmp_path, capsys):
    out = snapshot_copy(interrupted, tmp_path)
    assert "holds an interrupted run: continue it with --resume=True" in refused(
        capsys, [*interrupted[0], f"--output_dir={out}"])
    assert (out / "resume.keras").exists()
    assert sorted(os.listdir(out)) == sorted(os.listdir(interrupted[1] / "snapshot"))  # nothing moved to earlier/


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



# ------------------------------------------------------------------ resume files someone handed you

PEAK_LIMIT_MB = 1024  # what refusing a resume folder may cost, at most


def refused_in_its_own_process(interrupted, out, *names):
    """Resume the interrupted run's settings on folder out through the command line, in a subprocess → its error
    line, which must name every one of names (exit 2, no traceback, nothing else on stderr, under PEAK_LIMIT_MB)."""
    command = [sys.executable, SCRIPT, *interrupted[0], f"--output_dir={out}", "--resume=True"]
    code, _, err, peak = hostile.run_measured(command, out.parent, timeout=TIMEOUT)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: cannot resume: "), err[-3000:]
    assert "Traceback" not in err and len(lines[0]) < 400
    for name in names:
        assert name in lines[0]
    assert peak < PEAK_LIMIT_MB
    return lines[0]


def with_progress(out, change):
    """Pass out/resume.json's progress through change (which edits it, or returns what to write instead) → out."""
    progress = json.loads((out / "resume.json").read_text())
    changed = change(progress)
    (out / "resume.json").write_text(json.dumps(progress if changed is None else changed))
    return out


def set_in(path, value):
    """A change for with_progress: set the item at path (a tuple of keys) to value."""
    def change(progress):
        *parents, last = path
        for key in parents:
            progress = progress[key]
        progress[last] = value
    return change


def without(path):
    """A change for with_progress: delete the item at path (a tuple of keys)."""
    def change(progress):
        *parents, last = path
        for key in parents:
            progress = progress[key]
        del progress[last]
    return change


DAMAGED_PROGRESS = {  # a change of resume.json → what the refusal says
    "history_of_objects": (set_in(("history", "loss"), {"1": 2.0}), "history['loss'] is an object, not a list"),
    "history_of_strings": (set_in(("history", "loss"), ["2.5"]), "history['loss'] holds something other than numbers"),
    "history_of_booleans": (set_in(("history", "val_frame_nll"), [True]), "holds something other than numbers"),
    "history_without_loss": (without(("history", "loss")), "history lacks loss"),
    "history_not_an_object": (set_in(("history",), [1.0]), "history is [1.0], not an object"),
    "history_longer_than_the_epochs": (set_in(("history", "loss"), [1.0] * 1001),
                                       "history['loss'] holds 1001 values for 1 epochs"),
    "callbacks_a_string": (set_in(("callbacks",), "Plateau"), "callbacks is 'Plateau', not an object"),
    "callback_state_a_string": (set_in(("callbacks", "Plateau"), "best"),
                                "callbacks['Plateau'] is 'best', not an object of best, wait, cooldown_counter"),
    "callback_state_a_list": (set_in(("callbacks", "Patience"), [1, 2, 3]), "callbacks['Patience'] is [1, 2, 3]"),
    "callback_state_missing": (without(("callbacks", "BestCheckpoint")),
                               "callbacks are ['Patience', 'Plateau'], not Plateau, Patience, BestCheckpoint"),
    "callback_wait_a_string": (set_in(("callbacks", "Patience", "wait"), "0"),
                               "callbacks['Patience']['wait'] is '0', not a count of epochs up to epoch"),
    "callback_best_epoch_past_the_epochs": (set_in(("callbacks", "BestCheckpoint", "best_epoch"), 99),
                                            "callbacks['BestCheckpoint']['best_epoch'] is 99"),
    "callback_best_nan": (set_in(("callbacks", "Plateau", "best"), float("nan")),
                          "callbacks['Plateau']['best'] is nan, not null or a number"),
    "epoch_negative": (set_in(("epoch",), -3), "epoch is -3, not a count of epochs"),
    "epoch_nan": (set_in(("epoch",), float("nan")), "epoch is nan, not an integer"),
    "epoch_huge": (set_in(("epoch",), 1e300), "epoch is 1e+300, not an integer"),
    "epoch_huge_integer": (set_in(("epoch",), 10 ** 300), "history['loss'] holds 1 values for 1000000"),
    "epoch_true": (set_in(("epoch",), True), "epoch is True, not an integer"),
    "minutes_nan": (set_in(("minutes",), float("nan")), "minutes is nan, not a time trained"),
    "minutes_past_a_float": (set_in(("minutes",), 10 ** 400), "minutes is 1000000"),
    "learning_rate_huge": (set_in(("learning_rate",), 1e300), "learning_rate is 1e+300, not between 0 and"),
    "learning_rate_negative": (set_in(("learning_rate",), -0.01), "learning_rate is -0.01"),
    "hash_a_number": (set_in(("checkpoint_sha256",), 7), "checkpoint_sha256 is 7, not a string"),
    "an_unknown_field": (set_in(("code",), "print(1)"), "its fields are ['callbacks', 'checkpoint_sha256', 'code',"),
    "not_an_object": (lambda p: [p], "it holds a list, not an object"),
}


@pytest.mark.parametrize("case", DAMAGED_PROGRESS)
def test_a_resume_file_that_holds_what_training_never_writes_is_refused_in_one_line(interrupted, tmp_path, case):
    change, reason = DAMAGED_PROGRESS[case]
    out = with_progress(snapshot_copy(interrupted, tmp_path), change)
    refused_in_its_own_process(interrupted, out, f"{out / 'resume.json'} is damaged: ", reason)


def test_a_resume_file_with_a_history_of_ten_million_entries_is_refused_unread(interrupted, tmp_path):
    out = snapshot_copy(interrupted, tmp_path)
    progress = json.loads((out / "resume.json").read_text())
    progress.update(epoch=10 ** 7, history={"loss": "HISTORY", "val_frame_nll": []})
    head, tail = json.dumps(progress).split('"HISTORY"')
    (out / "resume.json").write_text(head + "[" + "0.5, " * (10 ** 7 - 1) + "0.5]" + tail)  # 50 MB
    refused_in_its_own_process(interrupted, out, f"resume file {out / 'resume.json'} holds ", "more than it ever needs")


def test_a_history_just_under_the_size_cap_is_refused_within_bounded_memory(interrupted, tmp_path):
    out = snapshot_copy(interrupted, tmp_path)
    count = (resume.MAX_RESUME_BYTES - 2000) // len("0.5, ")
    with_progress(out, set_in(("history", "loss"), [0.5] * count))
    assert (out / "resume.json").stat().st_size <= resume.MAX_RESUME_BYTES
    refused_in_its_own_process(interrupted, out, f"history['loss'] holds {count} values for 1 epochs")


def test_a_settings_file_too_large_to_be_ours_is_refused_unread(interrupted, tmp_path):
    out = snapshot_copy(interrupted, tmp_path)
    settings = json.loads((out / "settings.json").read_text())
    (out / "settings.json").write_text(json.dumps({**settings, "padding": "x" * resume.MAX_SETTINGS_BYTES}))
    refused_in_its_own_process(interrupted, out, f"settings file {out / 'settings.json'} holds ")


# ------------------------------------------------------------------ a resume.keras that holds another model

def rewritten_model_file(path, config=None, weights=None):
    """Rewrite the .keras archive at path with another config.json (a dict) and / or model.weights.h5 (bytes)."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    if config is not None:
        members["config.json"] = json.dumps(config).encode()
    if weights is not None:
        members["model.weights.h5"] = weights
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def matching_hash(out):
    """Write into out/resume.json the hash of out/resume.keras as it is now (as someone handing it over can) → out."""
    return with_progress(out, set_in(("checkpoint_sha256",), resume.file_sha256(out / "resume.keras")))


def saved_model(tmp_path, name, compiled=True, max_notes=3, **changes):
    """A model like the interrupted run's (hidden_size 16, head_size 8, with changes), trained one step when
    compiled, saved to tmp_path/name → its path."""
    settings = {"hidden_size": 16, "num_layers": 1, "dropout": 0.3, "head": "nade", "head_size": 8,
                "pitch_profile": True, "ema": 0.99, "learning_rate": 1e-2, "onsets": True, "meter": True, **changes}
    windows = (np.zeros((4, 17, CHANNELS), np.float32), np.zeros((4, 12), np.float32))
    if compiled:
        net = training.build_model(settings, num_keys=88, max_notes=max_notes)
        net.fit(windows, model.song_targets(windows[0], 88, True), epochs=1, verbose=0)
    else:
        net = model.MusicLSTM(**training.model_config(settings, 88, max_notes))
        net(windows)
    net.save(tmp_path / name)
    return tmp_path / name


def test_a_resume_model_of_another_architecture_is_refused_in_one_line(interrupted, tmp_path):
    out = snapshot_copy(interrupted, tmp_path)
    shutil.copy(saved_model(tmp_path, "wider.keras", hidden_size=32), out / "resume.keras")
    refused_in_its_own_process(interrupted, matching_hash(out), f"{out / 'resume.keras'} holds another model than "
                               "these settings build: units 32, not 16")


def test_an_uncompiled_resume_model_is_refused_in_one_line(interrupted, tmp_path):
    out = snapshot_copy(interrupted, tmp_path)
    max_notes = json.loads(zipfile.ZipFile(out / "resume.keras").read("config.json"))["config"]["max_notes"]
    shutil.copy(saved_model(tmp_path, "bare.keras", compiled=False, max_notes=max_notes), out / "resume.keras")
    refused_in_its_own_process(interrupted, matching_hash(out), "saved without its optimizer (an uncompiled model)")


def test_a_resume_model_of_another_class_is_refused_in_one_line(interrupted, tmp_path):
    out = snapshot_copy(interrupted, tmp_path)
    dense = keras.Sequential([keras.Input((17, CHANNELS)), keras.layers.Dense(88)])
    dense.compile(optimizer="adam", loss="mse")
    dense.save(out / "resume.keras")
    refused_in_its_own_process(interrupted, matching_hash(out), "'Sequential', not a classically_deep>MusicLSTM")


def test_a_resume_model_with_our_config_and_another_models_weights_is_refused_in_one_line(interrupted, tmp_path):
    out = snapshot_copy(interrupted, tmp_path)
    wider = zipfile.ZipFile(saved_model(tmp_path, "wider.keras", hidden_size=32)).read("model.weights.h5")
    rewritten_model_file(out / "resume.keras", weights=wider)
    refused_in_its_own_process(interrupted, matching_hash(out), f"{out / 'resume.keras'} cannot be loaded (ValueError")


def test_a_resume_model_built_for_inputs_of_a_billion_keys_is_refused_before_keras_builds_it(interrupted, tmp_path):
    out = snapshot_copy(interrupted, tmp_path)
    config = json.loads(zipfile.ZipFile(out / "resume.keras").read("config.json"))
    rewritten_model_file(out / "resume.keras", config={**config, "build_config": {"input_shape": [
        [None, 17, 10 ** 9], [None, 12]]}})  # Keras would allocate the weights of its first call: 256 GB
    refused_in_its_own_process(interrupted, matching_hash(out), "holds another model than these settings build: it "
                               "was built for inputs {'input_shape': [[None, 17, 1000000000], [None, 12]]}")


def built_for(shape):
    """A change of a config.json: the model was built for inputs of this shape."""
    return lambda config: config["build_config"].update(input_shape=shape)


MODEL_CONFIG_CHANGES = {  # a change of resume.keras's config.json → what the refusal says
    "inputs_of_a_billion_frames": (built_for([[None, 10 ** 9, CHANNELS], [None, 12]]), "built for inputs"),
    "a_batch_larger_than_batch_size": (built_for([[5, 17, CHANNELS], [5, 12]]), "built for inputs"),
    "counts_of_13_pitch_classes": (built_for([[None, 17, CHANNELS], [None, 13]]), "built for inputs"),
    "inputs_without_the_counts": (built_for([[None, 17, CHANNELS]]), "built for inputs"),
    "inputs_of_the_keys_alone": (built_for([[None, 17, 88], [None, 12]]), "built for inputs"),
    "inputs_not_a_shape": (built_for("garbage"), "built for inputs"),
    "no_build_config": (lambda c: c.update(build_config=None), "built for inputs None"),
    "another_optimizer": (lambda c: c["compile_config"]["optimizer"].update(class_name="SGD"),
                          "compiled otherwise (optimizer)"),
    "an_optimizer_without_ema": (lambda c: c["compile_config"]["optimizer"]["config"].update(use_ema=False),
                                 "compiled otherwise (optimizer)"),
    "another_loss": (lambda c: c["compile_config"].update(loss="mse"), "compiled otherwise (loss)"),
    "a_billion_steps_per_execution": (lambda c: c["compile_config"].update(steps_per_execution=10 ** 9),
                                      "compiled otherwise (steps_per_execution)"),
    "jit_compile_a_list": (lambda c: c["compile_config"].update(jit_compile=[]), "compiled otherwise (jit_compile)"),
    "metrics": (lambda c: c["compile_config"].update(metrics=["mse"]), "compiled otherwise (metrics)"),
    "uncompiled": (lambda c: c.update(compile_config=None), "saved without its optimizer"),
    "compile_config_a_string": (lambda c: c.update(compile_config="adam"), "its compile_config holds 'adam'"),
    "a_billion_units": (lambda c: c["config"].update(units=10 ** 9), "units 1000000000, not 16"),
    "other_layers_and_head": (lambda c: c["config"].update(layers=2, head="sigmoid"),
                              "layers 2, not 1, head 'sigmoid', not 'nade'"),
    "pitch_profile_an_integer": (lambda c: c["config"].update(pitch_profile=1), "pitch_profile 1, not True"),
    "without_onsets": (lambda c: c["config"].update(onsets=False), "onsets False, not True"),
    "meter_an_integer": (lambda c: c["config"].update(meter=1), "meter 1, not True"),
    "saved_before_onsets_and_meter": (lambda c: [c["config"].pop(name) for name in ("onsets", "meter")],
                                      "its config holds ["),
    "another_loss_function": (lambda c: c["compile_config"].update(loss=keras.saving.serialize_keras_object(
        model.frame_nll)), "compiled otherwise (loss)"),
    "max_notes_unbounded": (lambda c: c["config"].update(max_notes=None), "max_notes None, not "),
    "an_unknown_argument": (lambda c: c["config"].update(extra=1), "its config holds ["),
    "float64": (lambda c: c["config"].update(dtype="float64"), "dtype 'float64', not "),
    "config_a_string": (lambda c: c.update(config="MusicLSTM"), "its config holds 'MusicLSTM'"),
    "registered_as_another_class": (lambda c: c.update(registered_name="keras>Sequential"),
                                    "'keras>Sequential', not a classically_deep>MusicLSTM"),
    "another_module": (lambda c: c.update(module="os"), "not a classically_deep>MusicLSTM"),
}


@pytest.mark.parametrize("case", MODEL_CONFIG_CHANGES)
def test_a_resume_model_config_unlike_ours_is_refused_naming_the_difference(interrupted, tmp_path, case):
    change, reason = MODEL_CONFIG_CHANGES[case]
    out = snapshot_copy(interrupted, tmp_path)
    config = json.loads(zipfile.ZipFile(out / "resume.keras").read("config.json"))
    change(config)
    rewritten_model_file(out / "resume.keras", config=config)
    settings = configurator.resolve_settings([*interrupted[0], f"--output_dir={out}", "--resume=True"],
                                             configurator.default_settings())
    max_notes = json.loads(zipfile.ZipFile(interrupted[1] / "snapshot" / "resume.keras").read("config.json"))[
        "config"]["max_notes"]
    with pytest.raises(DataError, match=f"^cannot resume: {re.escape(str(out / 'resume.keras'))} holds another model "
                                        f"than these settings build: .*{re.escape(reason)}"):
        training.load_resume_model(settings, {"learning_rate": 0.01}, 88, max_notes)


def test_a_resume_model_exactly_as_training_saved_it_loads(interrupted):
    snapshot = interrupted[1] / "snapshot"
    settings = configurator.resolve_settings([*interrupted[0], f"--output_dir={snapshot}", "--resume=True"],
                                             configurator.default_settings())
    max_notes = json.loads(zipfile.ZipFile(snapshot / "resume.keras").read("config.json"))["config"]["max_notes"]
    loaded = training.load_resume_model(settings, {"learning_rate": 0.005}, 88, max_notes)
    assert isinstance(loaded, model.MusicLSTM) and loaded.optimizer.use_ema
    assert float(keras.ops.convert_to_numpy(loaded.optimizer.learning_rate)) == pytest.approx(0.005)


def test_a_resume_model_that_is_no_keras_file_is_refused_in_one_line(interrupted, tmp_path):
    out = snapshot_copy(interrupted, tmp_path)
    (out / "resume.keras").write_bytes(b"\x1b[31m not a zip")
    refused_in_its_own_process(interrupted, matching_hash(out), f"{out / 'resume.keras'} is no Keras model file")


# ------------------------------------------------------------------ a fresh run keeps the earlier one

def earlier_run(folder, *names):
    """Files of a finished run (each holding its own name) in folder → {name: bytes}."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(name.encode())
    return {name: name.encode() for name in names}


RUN = ("settings.json", "metrics.json", "best.keras", "generated_1.mid", "generated_1.wav", "generated_1.png",
       "generated_12.mid", "loss.png", "report.html")


def test_a_fresh_run_moves_every_file_of_the_earlier_run_into_earlier_1(tmp_path, capsys):
    written = earlier_run(tmp_path, *RUN)
    assert resume.keep_earlier_run(str(tmp_path)) == str(tmp_path / "earlier" / "1")
    assert capsys.readouterr().out == f"kept the earlier run in {tmp_path / 'earlier' / '1'}\n"
    assert os.listdir(tmp_path) == ["earlier"]
    assert {path.name: path.read_bytes() for path in (tmp_path / "earlier" / "1").iterdir()} == written


def test_the_users_own_files_and_folders_stay_where_they_are(tmp_path):
    mine = earlier_run(tmp_path, "notes.txt", "generated_x.mid", "my_best.keras", "settings.json.bak", "resume.json")
    (tmp_path / "report.html").mkdir()  # a folder is never a run's file
    earlier_run(tmp_path, "best.keras")
    resume.keep_earlier_run(str(tmp_path))
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()} == mine
    assert (tmp_path / "report.html").is_dir() and os.listdir(tmp_path / "earlier" / "1") == ["best.keras"]


def test_each_earlier_run_gets_the_number_above_the_highest_kept(tmp_path):
    for number in (1, 2):
        earlier_run(tmp_path, "best.keras", f"generated_{number}.mid")
        resume.keep_earlier_run(str(tmp_path))
        assert sorted(os.listdir(tmp_path / "earlier" / str(number))) == ["best.keras", f"generated_{number}.mid"]
    (tmp_path / "earlier" / "1").rename(tmp_path / "earlier" / "7")
    earlier_run(tmp_path, "settings.json")
    assert resume.keep_earlier_run(str(tmp_path)) == str(tmp_path / "earlier" / "8")  # after 7, never before it


def test_an_output_dir_without_an_earlier_run_is_left_alone(tmp_path, capsys):
    earlier_run(tmp_path, "notes.txt")
    assert resume.keep_earlier_run(str(tmp_path)) is None
    assert os.listdir(tmp_path) == ["notes.txt"] and capsys.readouterr().out == ""


def test_a_file_where_the_earlier_folder_goes_is_refused_in_one_line_moving_nothing(tmp_path):
    earlier_run(tmp_path, "earlier", "best.keras")
    with pytest.raises(DataError, match=r"^cannot create folder for earlier runs .*earlier: a file is in the way$"):
        resume.keep_earlier_run(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["best.keras", "earlier"]


@pytest.mark.parametrize("config, members", [({"config": {"members": 3}}, 3), ({"config": {}}, 1),
                                             ({"config": {"members": "3"}}, 1), ([], 1)])
def test_a_resumed_run_keeps_the_networks_its_checkpoint_holds(tmp_path, config, members):
    with zipfile.ZipFile(tmp_path / "resume.keras", "w") as archive:
        archive.writestr("config.json", json.dumps(config))
    assert resume.resumed_members(str(tmp_path)) == members

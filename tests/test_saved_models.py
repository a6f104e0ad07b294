"""Trained-model files: what read_model_file checks before Keras builds anything, the settings a model restores,
models saved before onsets and meter existed, and hostile model files through the command line, each in its own
process (a crash fails the test, not pytest)."""
import json
import os
import shutil
import sys
import zipfile

import keras
import numpy as np
import pytest

import classically_deep as cd
import hostile
import midi_io
import saved_models
import training
from conftest import quick_args, score_notes
from configurator import default_settings
from files import DataError
from model import MusicLSTM
from rolls import frame_width

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEAK_LIMIT_MB = 2048
TINY = ["--epochs=3", "--hidden_size=16", "--head_size=8", "--seq_len=16", "--batch_size=4", "--primer_frames=8",
        "--generate_frames=12", "--num_outputs=1", "--ema=0"]
ROLL = {"lowest_note": 21, "highest_note": 108, "time_base": "seconds", "steps_per_second": 4.0, "steps_per_beat": 4}


@pytest.fixture(scope="module")
def trained(tiny_archive, tmp_path_factory):
    """A tiny run on the seconds grid (4 frames a second) → its output folder, best.keras and settings.json in it."""
    tmp_path = tmp_path_factory.mktemp("trained")
    assert cd.main(quick_args(tiny_archive, tmp_path, *TINY)) == 0
    return tmp_path / "out"


@pytest.fixture(scope="module")
def primer(tmp_path_factory):
    """A MIDI file of a few notes in its first two seconds → its path."""
    path = tmp_path_factory.mktemp("primer") / "primer.mid"
    midi_io.notes_to_midi(score_notes((60, 0, 2), (64, 0, 2), (67, 2, 2), (72, 3, 1)), path)
    return path


def members(path):
    """A .keras archive → {member name: bytes}."""
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write_members(path, files, compression=zipfile.ZIP_STORED):
    """{member name: bytes} → a zip at path → path."""
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def with_config(model_file, path, change):
    """The .keras file model_file with change(config.json as a dict) applied, written to path → path."""
    files = members(model_file)
    config = json.loads(files["config.json"])
    change(config)
    return write_members(path, {**files, "config.json": json.dumps(config).encode()})


# ------------------------------------------------------------------ what a saved model holds


def test_a_run_folder_and_its_best_keras_read_the_same_with_the_roll_settings_trained_on(trained):
    from_folder, from_file = saved_models.read_model_file(str(trained)), saved_models.read_model_file(
        str(trained / "best.keras"))
    assert from_folder == from_file and from_file["path"] == str(trained / "best.keras")
    assert from_file["roll"] == ROLL
    assert saved_models.describe(from_file).startswith("88 keys (MIDI 21 to 108), 4 frames per second, 1 x 16 LSTM")
    assert ", onsets, meter; " in saved_models.describe(from_file)


def test_best_keras_holds_the_weights_and_not_the_optimizer_state(trained):
    files = members(trained / "best.keras")
    saved = saved_models.read_model_file(str(trained))
    assert not json.loads(files["config.json"]).get("compile_config")
    assert 4 * saved["parameters"] <= len(files["model.weights.h5"]) < 4 * saved["parameters"] + 100_000


@pytest.mark.parametrize("onsets, meter", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("pitch_profile", [False, True])
@pytest.mark.parametrize("head, layers", [("nade", 1), ("sigmoid", 2)])
def test_the_weights_counted_from_a_config_are_the_models(head, layers, pitch_profile, onsets, meter):
    net = MusicLSTM(num_keys=30, units=7, layers=layers, head=head, head_units=5, pitch_profile=pitch_profile,
                    onsets=onsets, meter=meter)
    frames = np.zeros((1, 2, frame_width(30, onsets, meter)), np.float32)
    net((frames, np.zeros((1, 12), np.float32)) if pitch_profile else frames)
    config = net.get_config()
    assert saved_models.parameter_count(config) == net.count_params()
    if not (onsets or meter):  # a config saved before onsets and meter existed counts as neither
        assert saved_models.parameter_count({name: config[name] for name in config
                                             if name not in ("onsets", "meter")}) == net.count_params()


@pytest.mark.parametrize("onsets", [False, True])
def test_the_weights_counted_from_a_config_of_several_members_are_all_of_theirs(onsets):
    net = MusicLSTM(num_keys=30, units=7, layers=1, head="nade", head_units=5, onsets=onsets, members=3)
    net(np.zeros((1, 2, frame_width(30, onsets, False)), np.float32))
    assert saved_models.parameter_count(net.get_config()) == net.count_params()
    one = {name: value for name, value in net.get_config().items() if name != "members"}  # saved before members
    assert 3 * saved_models.parameter_count(one) == net.count_params()


def test_a_mixture_trained_through_the_command_line_says_so_loads_and_composes(tiny_archive, tmp_path):
    assert cd.main(quick_args(tiny_archive, tmp_path, *TINY, "--members=2")) == 0
    with open(tmp_path / "out" / "metrics.json") as file:
        assert json.load(file)["members"] == 2
    saved = saved_models.read_model_file(str(tmp_path / "out"))
    assert saved_models.describe(saved).startswith("a mixture of 2 networks, each 88 keys (MIDI 21 to 108)")
    loaded = saved_models.load_model(saved)
    assert len(loaded.networks()) == 2 and loaded.count_params() == saved["parameters"]
    settings = saved_models.restore_settings(saved, default_settings(), default_settings())
    assert settings["members"] == 2
    composed = quick_args(tiny_archive, tmp_path, *TINY, f"--model_path={tmp_path / 'out'}",
                          f"--output_dir={tmp_path / 'composed'}")
    assert cd.main([arg for arg in composed if not arg.startswith("--epochs")]) == 0
    assert (tmp_path / "composed" / "generated_1.mid").stat().st_size > 0


def test_the_model_loads_safely_as_it_was_trained(trained):
    saved = saved_models.read_model_file(str(trained))
    loaded = saved_models.load_model(saved)
    assert isinstance(loaded, MusicLSTM) and loaded.count_params() == saved["parameters"]
    assert loaded.config["roll_settings"] == ROLL and getattr(loaded, "optimizer", None) is None


def test_settings_left_at_their_defaults_take_the_models_values_and_others_are_refused(trained):
    saved = saved_models.read_model_file(str(trained))
    defaults = default_settings()
    restored = saved_models.restore_settings(saved, defaults, defaults)
    assert {name: restored[name] for name in ROLL} == ROLL
    assert (restored["hidden_size"], restored["head_size"], restored["num_layers"]) == (16, 8, 1)
    assert (restored["onsets"], restored["meter"]) == (True, True)
    assert saved_models.restore_settings(saved, {**defaults, "steps_per_beat": 2}, defaults)["steps_per_beat"] == 4
    with pytest.raises(DataError, match=r"best.keras was trained with other settings than lowest_note=36 \(the "
                                        r"model's: 21\), steps_per_second=2.0 \(the model's: 4.0\), hidden_size=32 "
                                        r"\(the model's: 16\): leave them out"):
        saved_models.restore_settings(saved, {**defaults, "lowest_note": 36, "steps_per_second": 2.0,
                                              "hidden_size": 32}, defaults)


def test_a_model_with_onsets_and_meter_refuses_settings_without_them_in_one_line(trained):
    saved = saved_models.read_model_file(str(trained))
    defaults = default_settings()
    with pytest.raises(DataError) as refusal:
        saved_models.restore_settings(saved, {**defaults, "onsets": False, "meter": False}, defaults)
    assert str(refusal.value) == (f"model_path {trained / 'best.keras'} was trained with other settings than "
                                  "onsets=False (the model's: True), meter=False (the model's: True): leave them out "
                                  "to use the model's, or use another model")


def model_from_before_onsets(tmp_path):
    """An untrained model of the tiny run's size without onsets or meter, its config.json stripped of both fields as
    in a model saved before they existed → its path."""
    settings = {**default_settings(), "hidden_size": 16, "head_size": 8, "onsets": False, "meter": False}
    net = training.built(MusicLSTM(**training.model_config(settings, 88, None), roll_settings=ROLL))
    net.save(tmp_path / "new.keras")

    def strip(config):
        del config["config"]["onsets"], config["config"]["meter"]
    return with_config(tmp_path / "new.keras", tmp_path / "old.keras", strip)


def test_a_model_saved_before_onsets_and_meter_reads_as_one_without_them(tmp_path):
    path = model_from_before_onsets(tmp_path)
    assert not {"onsets", "meter"} & set(json.loads(members(path)["config.json"])["config"])
    saved = saved_models.read_model_file(str(path))
    defaults = default_settings()
    values = saved_models.model_values(saved)
    assert (values["onsets"], values["meter"]) == (False, False)
    assert saved_models.describe(saved).endswith(f"1 x 16 LSTM, NADE head of 8, pitch-class profile; "
                                                 f"{saved['parameters']:,} weights")
    restored = saved_models.restore_settings(saved, defaults, defaults)  # the defaults, onsets and meter, give way
    assert (restored["onsets"], restored["meter"]) == (False, False)
    loaded = saved_models.load_model(saved)
    assert (loaded.config["onsets"], loaded.config["meter"]) == (False, False)
    assert loaded.count_params() == saved["parameters"]


def test_a_model_saved_before_onsets_and_meter_composes_through_the_command_line(primer, tmp_path):
    path = model_from_before_onsets(tmp_path)
    out = tmp_path / "out"
    assert cd.main([f"--model_path={path}", f"--primer_path={primer}", f"--data_path={tmp_path / 'no data'}",
                    f"--output_dir={out}", "--primer_frames=8", "--generate_frames=12", "--num_outputs=1"]) == 0
    settings = json.loads((out / "settings.json").read_text())
    assert (settings["onsets"], settings["meter"]) == (False, False)
    roll = midi_io.midi_to_roll(out / "generated_1.mid", lowest_note=21, highest_note=108, frames_per_second=4).roll
    assert roll.shape == (20, 88) and roll[:4, [60 - 21, 64 - 21]].all()  # the primer's chord, then the model's


def test_a_model_saved_before_models_stored_their_roll_settings_reads_them_beside_it_or_says_how_to_rebuild(
        trained, tmp_path):
    old = with_config(trained / "best.keras", tmp_path / "old.keras", lambda config: config["config"].pop("roll_settings"))
    with pytest.raises(DataError, match="old.keras does not say which piano rolls it was trained on.*rebuild"):
        saved_models.read_model_file(str(old))
    shutil.copy(trained / "settings.json", tmp_path / "settings.json")
    assert saved_models.read_model_file(str(old))["roll"] == ROLL
    (tmp_path / "settings.json").write_text(json.dumps({**ROLL, "lowest_note": 30}))
    with pytest.raises(DataError, match="the settings.json beside it does not describe its rolls"):
        saved_models.read_model_file(str(old))


# ------------------------------------------------------------------ hostile model files, each in its own process


def lambda_layer(trained, tmp_path, marker):
    """A Keras model whose Lambda layer would run `touch marker` (building it here runs it once: removed)."""
    touch = eval(f"lambda x: x + 0 * __import__('os').system('touch {marker}')")
    net = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(touch)])
    net.save(tmp_path / "evil.keras")
    marker.unlink(missing_ok=True)
    return tmp_path / "evil.keras"


def foreign_layer(trained, tmp_path, marker):
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(4)]).save(tmp_path / "evil.keras")
    return tmp_path / "evil.keras"


def arbitrary_callable(trained, tmp_path, marker):
    call = {"module": "os", "class_name": "system", "config": {"command": f"touch {marker}"}, "registered_name": None}
    return with_config(trained / "best.keras", tmp_path / "evil.keras", lambda config: config.update(call))


def callable_inside_our_config(trained, tmp_path, marker):
    call = {"module": "os", "class_name": "system", "config": {"command": f"touch {marker}"}, "registered_name": None}
    return with_config(trained / "best.keras", tmp_path / "evil.keras", lambda config: config["config"].update(dtype=call))


def sizes_its_weights_cannot_hold(trained, tmp_path, marker):
    return with_config(trained / "best.keras", tmp_path / "evil.keras", lambda config: config["config"].update(units=4096, layers=16))


def members_its_weights_cannot_hold(trained, tmp_path, marker):
    return with_config(trained / "best.keras", tmp_path / "evil.keras", lambda config: config["config"].update(members=64))


def members_not_a_count(trained, tmp_path, marker):
    return with_config(trained / "best.keras", tmp_path / "evil.keras", lambda config: config["config"].update(members="2"))


def weights_of_another_shape(trained, tmp_path, marker):
    net = MusicLSTM(num_keys=88, units=17, layers=1, head="nade", head_units=8, pitch_profile=True, onsets=True,
                    meter=True)
    net((np.zeros((1, 2, frame_width(88, True, True)), np.float32), np.zeros((1, 12), np.float32)))
    net.save(tmp_path / "other.keras")
    files = members(trained / "best.keras")
    return write_members(tmp_path / "evil.keras", {**files, "model.weights.h5": members(tmp_path / "other.keras")[
        "model.weights.h5"]})


def zip_bomb(trained, tmp_path, marker):
    """Weights that inflate from a few hundred kB to 300 MB."""
    files = {**members(trained / "best.keras"), "model.weights.h5": bytes(300 * 2 ** 20)}
    return write_members(tmp_path / "evil.keras", files, zipfile.ZIP_DEFLATED)


def another_member(trained, tmp_path, marker):
    """An asset Keras would extract to disk, named to climb out of its folder."""
    files = {**members(trained / "best.keras"), f"assets/../../{marker.name}": b"pwned"}
    return write_members(tmp_path / "evil.keras", files)


def truncated(trained, tmp_path, marker):
    data = (trained / "best.keras").read_bytes()
    (tmp_path / "evil.keras").write_bytes(data[:len(data) // 2])
    return tmp_path / "evil.keras"


def not_a_zip(trained, tmp_path, marker):
    (tmp_path / "evil.keras").write_bytes(b"\x1b[31m not a model\n")
    return tmp_path / "evil.keras"


def huge_config(trained, tmp_path, marker):
    return with_config(trained / "best.keras", tmp_path / "evil.keras", lambda config: config["config"].update(name="x" * 2 ** 21))


MODEL_ATTACKS = {  # each attack → what its refusal says
    lambda_layer: "it holds a 'Sequential', not a classically_deep>MusicLSTM",
    foreign_layer: "it holds a 'Sequential', not a classically_deep>MusicLSTM",
    arbitrary_callable: "it holds a 'system', not a classically_deep>MusicLSTM",
    callable_inside_our_config: "its dtype is {'module': 'os'",
    sizes_its_weights_cannot_hold: "which do not fit the 2,086,105,240 weights its config declares",
    members_its_weights_cannot_hold: "weights its config declares",
    members_not_a_count: "its members is '2', not 1 to 64",
    weights_of_another_shape: "cannot be loaded (ValueError: ",
    zip_bomb: "model.weights.h5 would expand to 314572800 bytes",
    another_member: "'assets/../../pwned'",
    truncated: "is no Keras model file (BadZipFile",
    not_a_zip: "is no Keras model file (BadZipFile",
    huge_config: "its config.json holds 2097",
}


def run_driver(tmp_path, *args):
    """classically_deep.py with args in a subprocess → (exit code, stdout, stderr, its peak memory in MB)."""
    command = [sys.executable, os.path.join(ROOT, "classically_deep.py"), f"--output_dir={tmp_path / 'out'}",
               f"--cache_dir={tmp_path / 'cache'}", "--generate_frames=4", "--num_outputs=1", *args]
    return hostile.run_measured(command, tmp_path)


@pytest.mark.parametrize("attack", MODEL_ATTACKS, ids=lambda attack: attack.__name__)
def test_a_hostile_model_file_is_refused_in_one_line_without_running_code(trained, primer, tmp_path, attack):
    marker = tmp_path / "pwned"
    path = attack(trained, tmp_path, marker)
    code, out, err, peak = run_driver(tmp_path, f"--model_path={path}", f"--primer_path={primer}")
    assert code == 2, f"exit code {code}: {err[-2000:]}"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: model_path {path} ") and len(lines[0]) < 400, err
    assert MODEL_ATTACKS[attack] in lines[0]
    assert not marker.exists() and not (tmp_path.parent / marker.name).exists()
    assert peak < PEAK_LIMIT_MB
    assert not (tmp_path / "out" / "generated_1.mid").exists()


@pytest.mark.parametrize("attack", [lambda_layer, weights_of_another_shape], ids=lambda attack: attack.__name__)
def test_a_hostile_model_to_train_from_is_refused_in_one_line(trained, tiny_archive, tmp_path, attack):
    marker = tmp_path / "pwned"
    path = attack(trained, tmp_path, marker)
    code, out, err, _ = run_driver(tmp_path, f"--init_from={path}", f"--data_path={tiny_archive}", "--epochs=1")
    assert code == 2, f"exit code {code}: {err[-2000:]}"
    lines = [line for line in err.strip().splitlines() if not line.lstrip().startswith(("preprocessing:", "Epoch"))]
    assert len(lines) == 1 and lines[0].startswith(f"error: init_from {path} "), err
    assert MODEL_ATTACKS[attack] in lines[0]
    assert not marker.exists()

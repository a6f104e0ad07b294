"""Settings, splits, the baseline, refusals of bad input, and a tiny end-to-end run through the command line."""
import json
import os
import stat
import wave

import keras
import numpy as np
import pytest
from intervaltree import IntervalTree

import classically_deep as cd
import training
from conftest import chord_song, labels, musicnet_entry, quick_args, refused, timed_messages
import midi_io
from midi_io import midi_to_roll


def test_override_is_typed_like_its_default():
    settings = cd.resolve_settings(["--epochs=3", "--temperature=0.5", "--output_dir=x", "--save_mode=false"],
                                   cd.default_settings())
    assert (settings["epochs"], settings["temperature"], settings["output_dir"], settings["save_mode"]) == (3, 0.5, "x", False)
    assert cd.default_settings()["epochs"] == cd.epochs  # defaults untouched


def test_unknown_setting_is_refused_with_the_valid_names():
    with pytest.raises(cd.SettingsError, match="unknown setting --epoch;.*epochs"):
        cd.resolve_settings(["--epoch=3"], cd.default_settings())


@pytest.mark.parametrize("arg", ["--epochs=three", "--time_base=bars", "--dropout=1.5", "epochs=3", "--learning_rate=-1",
                                 "--note_floor=1", "--note_floor=-0.1"])
def test_bad_values_are_refused(arg):
    with pytest.raises(cd.SettingsError):
        cd.resolve_settings([arg], cd.default_settings())


def test_bad_setting_on_the_command_line_is_a_one_line_error(capsys):
    assert cd.main(["--epochs=many"]) == 2
    assert capsys.readouterr().err.strip() == "error: --epochs needs a int value, not 'many'"


def test_missing_explicit_data_path_is_an_error(tmp_path, capsys):
    assert cd.main([f"--data_path={tmp_path / 'nope.npz'}", f"--output_dir={tmp_path}"]) == 2
    assert "nope.npz not found" in capsys.readouterr().err


def test_missing_default_data_path_falls_back_to_the_sample(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cd.resolve_data_path(cd.DEFAULT_DATA_PATH) == cd.SAMPLE_PATH


def test_standard_musicnet_test_recordings_form_the_test_set():
    ids = [str(i) for i in range(1700, 2700, 7)] + cd.STANDARD_TEST_IDS
    split = cd.split_ids(sorted(set(ids)))
    assert split["test"] == cd.STANDARD_TEST_IDS
    assert not set(split["train"]) & set(split["valid"])
    assert len(split["train"]) + len(split["valid"]) + len(split["test"]) == len(set(ids))
    assert split == cd.split_ids(sorted(set(ids)))


def test_other_archives_get_a_deterministic_three_way_split():
    ids = [f"{i:04d}" for i in range(20)]
    split = cd.split_ids(ids)
    assert all(split[part] for part in ("train", "valid", "test"))
    assert sorted(sum(split.values(), [])) == ids


def test_split_file_is_used_and_checked(tmp_path):
    path = tmp_path / "split.json"
    path.write_text(json.dumps({"train": ["0001"], "valid": ["0002"], "test": ["0003"]}))
    assert cd.split_ids(["0001", "0002", "0003"], str(path))["test"] == ["0003"]
    with pytest.raises(cd.DataError, match="0003"):
        cd.split_ids(["0001", "0002"], str(path))


def test_bernoulli_baseline_is_the_key_frequency_nll():
    train = [np.array([[1, 0], [1, 0], [0, 0], [1, 1]], bool)]  # key 0: 3/4 -> (3+1)/(4+2); key 1: 2/6
    test = [np.array([[0, 0], [1, 1]], bool)]                   # only the second frame is predicted
    expected = -(np.log(4 / 6) + np.log(2 / 6))
    assert cd.bernoulli_nll(train, test) == pytest.approx(expected)


def run_tiny(tmp_path, name):
    """Run the command line on a tiny archive of chord songs → its output folder."""
    data = tmp_path / "tiny.npz"
    if not data.exists():
        np.savez(data, **{f"{i:04d}": musicnet_entry(chord_song(i, 6)) for i in range(8)},
                 **{"0099": musicnet_entry(IntervalTree())})
    out = tmp_path / name
    code = cd.main([f"--data_path={data}", f"--output_dir={out}", f"--cache_dir={tmp_path / 'cache'}",
                    "--time_base=seconds", "--steps_per_second=4", "--epochs=20", "--hidden_size=16",
                    "--head_size=8", "--seq_len=16", "--batch_size=4", "--primer_frames=8",
                    "--generate_frames=12", "--num_outputs=2", "--ema=0"])  # ~90 steps: too few for an average
    assert code == 0
    return out


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """Two runs with the same settings and seed, under umask 022."""
    tmp_path = tmp_path_factory.mktemp("tiny")
    old_umask = os.umask(0o022)
    try:
        return run_tiny(tmp_path, "first"), run_tiny(tmp_path, "second")
    finally:
        os.umask(old_umask)


def test_tiny_end_to_end_run_writes_midi_metrics_and_settings(tiny_runs):
    out, _ = tiny_runs
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"valid_frame_nll", "test_frame_nll", "test_frame_nll_baseline"} <= set(metrics)
    assert json.loads((out / "settings.json").read_text())["epochs"] == 20
    assert (out / "best.keras").exists()
    for number in (1, 2):
        path = out / f"generated_{number}.mid"
        roll = midi_to_roll(path, lowest_note=21, highest_note=108, frames_per_second=4)
        assert roll.shape == (8 + 12, 88)  # the primer, then the continuation
        markers = [(message.text, tick) for message, tick in timed_messages(path) if message.type == "marker"]
        assert markers == [("model continues", 8 * midi_io.TICKS_PER_FRAME)]
        with wave.open(str(out / f"generated_{number}.wav")) as audio:  # as long as the MIDI, plus its release
            assert 5.0 <= audio.getnframes() / audio.getframerate() <= 6.0
        assert (out / f"generated_{number}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(metrics["statistics"]["pieces"]) == {"generated_1", "generated_2"}
    assert "pitch_class_entropy" in metrics["statistics"]["reference"]
    page = (out / "report.html").read_text()
    assert 'src="generated_1.wav"' in page and 'src="loss.png"' in page


def test_files_a_run_writes_have_ordinary_permissions(tiny_runs):
    out = tiny_runs[0]
    written = [out / "settings.json", out / "metrics.json", out / "best.keras", out / "generated_1.mid",
               *(out.parent / "cache").glob("rolls-*.npz")]
    assert len(written) == 5
    modes = {path.name: oct(stat.S_IMODE(path.stat().st_mode)) for path in written}
    assert modes == {path.name: oct(0o666 & ~0o022) for path in written}
    assert not [path.name for path in out.iterdir() if path.name.startswith(".")]  # no temporary files left


def test_a_finished_run_leaves_no_resume_checkpoint(tiny_runs):
    assert not (tiny_runs[0] / "resume.json").exists() and not (tiny_runs[0] / "resume.keras").exists()


def test_tiny_run_learns_the_chord_pattern_beyond_key_frequencies(tiny_runs):
    metrics = json.loads((tiny_runs[0] / "metrics.json").read_text())
    assert metrics["test_frame_nll"] < metrics["test_frame_nll_baseline"]


def test_same_seed_gives_the_same_run(tiny_runs):
    first, second = (json.loads((out / "metrics.json").read_text()) for out in tiny_runs)
    assert (first["valid_frame_nll"], first["test_frame_nll"]) == (second["valid_frame_nll"], second["test_frame_nll"])
    for number in (1, 2):
        assert (tiny_runs[0] / f"generated_{number}.mid").read_bytes() == (tiny_runs[1] / f"generated_{number}.mid").read_bytes()


def test_transposition_keeps_every_note_on_the_keyboard():
    rng = np.random.default_rng(0)
    piece = np.zeros((6, 88), bool)
    piece[0:3, [0, 4, 7]] = True  # a chord at the very bottom: it can only move up
    shifts = {training.transposition(piece, rng, 5) for _ in range(50)}
    assert shifts == set(range(6))
    top = np.roll(piece, 80, axis=1)  # the same chord with its top note on the last key: it can only move down
    assert {training.transposition(top, rng, 5) for _ in range(50)} == set(range(-5, 1))
    assert training.transposition(piece, rng, 0) == 0 and training.transposition(piece[:0], rng, 5) == 0


def test_training_windows_cover_songs_and_mark_padding():
    songs = [np.ones((5, 88), bool), np.ones((40, 88), bool)]
    settings = {**cd.default_settings(), "seq_len": 16, "batch_size": 8, "transpose_range": 0, "pitch_profile": False}
    windows, targets, weights = training.make_window_dataset(songs, settings)[0]
    assert windows.shape == (8, 17, 88) and targets.shape == (8, 16, 88)
    np.testing.assert_array_equal(targets, windows[:, 1:])
    for window, weight in zip(windows, weights):
        real = int(window.any(axis=1).sum())    # the short song gives 5 real frames, the long one 17
        assert real in (5, 17)
        assert weight.sum() == real - 1         # weight 1 exactly on targets inside the song


def test_training_windows_bring_the_pitch_classes_heard_before_them_transposed_with_them():
    song = np.eye(88, dtype=bool)                # frame t sounds key t: a window's first key is its start + shift
    settings = {**cd.default_settings(), "seq_len": 16, "batch_size": 32, "transpose_range": 6, "pitch_profile": True}
    (windows, heard), targets, weights = training.make_window_dataset([song], settings)[0]
    assert heard.shape == (32, 12)

    def heard_before(start):
        return np.bincount(np.arange(start) % 12, minlength=12)

    shifts = set()
    for window, counts in zip(windows, heard):
        first = int(np.argmax(window[0]))
        matches = [shift for shift in range(-6, 7)
                   if 0 <= first - shift and np.array_equal(counts, np.roll(heard_before(first - shift), shift))]
        assert matches, (first, counts)
        shifts.update(matches)
    assert len(shifts) > 1                       # transposed windows were drawn and their counts moved with them


def test_help_lists_every_setting(capsys):
    assert cd.main(["--help"]) == 0
    printed = capsys.readouterr().out
    assert all(f"--{name}=" in printed for name in cd.SETTING_NAMES)


def test_a_silent_piece_is_written_and_reported(tmp_path, capsys):
    settings = {**cd.default_settings(), "output_dir": str(tmp_path)}
    paths = cd.generate_MIDI([np.zeros((8, 88), bool)], settings, program=1)
    assert paths == [str(tmp_path / "generated_1.mid")]
    assert "is silent" in capsys.readouterr().out


def test_generated_midi_uses_the_program_that_covers_most_training_frames():
    assert cd.most_played_program([1, 41, 41, 1], [500, 100, 100, 50]) == 1
    assert cd.most_played_program([1, 41, 41], [100, 80, 80]) == 41


# ------------------------------------------------------------------ refusals: one line on stderr, exit 2

@pytest.mark.parametrize("arg", ["--max_minutes=nan", "--max_minutes=inf", "--steps_per_second=inf",
                                 "--learning_rate=nan", "--temperature=inf", "--bpm=nan", "--dropout=nan",
                                 "--max_member_mb=inf"])
def test_numbers_that_are_not_finite_are_refused(arg, tmp_path, capsys):
    name = arg[2:].split("=")[0]
    assert f"{name} must be a finite number" in refused(capsys, [arg, f"--output_dir={tmp_path / 'out'}"])
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("arg, message", [
    ("--seed=-1", "seed must be between 0 and 4294967295"),
    (f"--seed={2 ** 32}", "seed must be between 0 and 4294967295"),
    ("--steps_per_second=1000", "steps_per_second must be at most 273"),
    ("--steps_per_beat=500", "steps_per_beat must be at most 273"),
    ("--bpm=100000", "bpm must be between 4 and 1000"),
    ("--max_member_mb=0", "max_member_mb must be positive"),
    ("--max_frames=0", "max_frames must be positive"),
    ("--epochs=-1", "epochs must not be negative"),  # 0 preprocesses only
    ("--hidden_size=10000000", "hidden_size must be at most 4096"),
    ("--output_dir=", "output_dir must not be empty"),
])
def test_numbers_out_of_range_are_refused(arg, message, capsys):
    assert message in refused(capsys, [arg])


def test_output_dir_that_is_a_file_is_refused_before_preprocessing(tiny_archive, tmp_path, capsys):
    (tmp_path / "out").write_text("not a folder")
    err = refused(capsys, quick_args(tiny_archive, tmp_path))
    assert "cannot create output folder" in err and "a file is in the way" in err
    assert not (tmp_path / "cache").exists()


def test_output_dir_under_a_file_is_refused(tiny_archive, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert "cannot create output folder" in refused(capsys, quick_args(tiny_archive, tmp_path,
                                                                       f"--output_dir={tmp_path / 'file' / 'out'}"))


def test_cache_dir_that_cannot_be_created_is_refused(tiny_archive, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    err = refused(capsys, quick_args(tiny_archive, tmp_path, f"--cache_dir={tmp_path / 'file' / 'cache'}"))
    assert "cannot create cache folder" in err


def test_a_fifo_as_data_path_is_refused_without_opening_it(tmp_path, capsys):
    os.mkfifo(tmp_path / "data.npz")  # opening it would block until a writer came
    assert "is not a regular file" in refused(capsys, quick_args(tmp_path / "data.npz", tmp_path))


def test_a_folder_without_midi_files_or_a_csv_release_is_refused(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.txt").write_text("hello")
    assert "holds no .mid or .midi files" in refused(capsys, quick_args(tmp_path / "data", tmp_path))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_data_path_is_refused(tiny_archive, tmp_path, capsys):
    data = tmp_path / "data.npz"
    data.write_bytes(tiny_archive.read_bytes())
    data.chmod(0)
    assert "permission denied" in refused(capsys, quick_args(data, tmp_path))


def test_a_missing_split_file_is_refused(tiny_archive, tmp_path, capsys):
    err = refused(capsys, quick_args(tiny_archive, tmp_path, f"--split_path={tmp_path / 'split.json'}"))
    assert "split.json not found" in err
    assert not (tmp_path / "cache").exists()  # refused before the preprocessing


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_a_split_path_that_is_not_a_file_is_refused(kind, tiny_archive, tmp_path, capsys):
    path = tmp_path / "split.json"
    path.mkdir() if kind == "folder" else os.mkfifo(path)
    assert "split file" in refused(capsys, quick_args(tiny_archive, tmp_path, f"--split_path={path}"))


def test_a_split_with_a_test_recording_also_in_train_is_refused_naming_it(tiny_archive, tmp_path, capsys):
    path = tmp_path / "split.json"
    path.write_text(json.dumps({"train": ["0001", "0002", "0003"], "valid": ["0004"], "test": ["0003", "0005"]}))
    err = refused(capsys, quick_args(tiny_archive, tmp_path, f"--split_path={path}"))
    assert "more than once: 0003 (train and test)" in err


@pytest.mark.parametrize("content", ['["0001"]', '{"train": ["0001"], "valid": ["0002"]}',
                                     '{"train": "0001", "valid": ["0002"], "test": ["0003"]}',
                                     '{"train": [1.5], "valid": ["0002"], "test": ["0003"]}',
                                     '{"train": [true], "valid": ["0002"], "test": ["0003"]}',
                                     '{"train": [["0001"]], "valid": ["0002"], "test": ["0003"]}',
                                     '{"train": ["0001"', "[" * 100_000])
def test_a_malformed_split_file_is_refused(content, tiny_archive, tmp_path, capsys):
    path = tmp_path / "split.json"
    path.write_text(content)
    assert "split file" in refused(capsys, quick_args(tiny_archive, tmp_path, f"--split_path={path}"))


def test_split_ids_may_be_numbers(tmp_path):
    path = tmp_path / "split.json"
    path.write_text(json.dumps({"train": [1], "valid": [2], "test": ["3"]}))
    assert cd.split_ids(["1", "2", "3"], str(path)) == {"train": ["1"], "valid": ["2"], "test": ["3"]}


def test_a_split_naming_a_skipped_recording_leaves_it_out_with_a_note(tmp_path, capsys):
    path = tmp_path / "split.json"
    path.write_text(json.dumps({"train": ["0001", "0099"], "valid": ["0002"], "test": ["0003"]}))
    split = cd.split_ids(["0001", "0002", "0003"], str(path), unusable=["0099"])
    assert split == {"train": ["0001"], "valid": ["0002"], "test": ["0003"]}
    assert "skipped as unusable; left out of the split: 0099" in capsys.readouterr().out


def test_empty_and_one_frame_recordings_are_skipped_with_a_note(tmp_path, capsys):
    songs = {"ids": ["a", "b", "c", "d", "e"], "programs": [1] * 5, "skipped": [],
             "rolls": [np.zeros((0, 88), bool), np.zeros((9, 88), bool), np.eye(3, 88, dtype=bool)[:1],
                       np.ones((4, 88), bool), np.ones((5, 88), bool)]}
    settings = {**cd.default_settings(), "cache_dir": str(tmp_path), "save_mode": False,
                "data_path": str(cd.SAMPLE_PATH)}
    source = cd.sources.open_source(cd.SAMPLE_PATH)
    cd.rolls.save_rolls(cd.rolls.cache_path(cd.cache_key(source, settings), str(tmp_path), settings), songs)
    with pytest.raises(cd.DataError, match="need at least one usable song"):  # two usable songs cannot fill three parts
        cd.load_songs(source, settings)
    assert "skipped 3 of 5 recordings with fewer than two frames that sound (empty, or too short to learn from): " \
           "a, b, c" in capsys.readouterr().out


def test_a_folder_where_settings_json_goes_is_a_one_line_error(tiny_archive, tmp_path, capsys):
    (tmp_path / "out" / "settings.json").mkdir(parents=True)
    assert cd.main(quick_args(tiny_archive, tmp_path)) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "settings.json" in err, err


# ------------------------------------------------------------------ a loss that stops being finite

@keras.saving.register_keras_serializable(package="tests")
class BlowUp(keras.optimizers.schedules.LearningRateSchedule):
    """Learning rate 1e-2 for `steps` updates, then infinite: the weights, and the loss, stop being finite."""

    def __init__(self, steps):
        self.steps = steps

    def __call__(self, step):
        return keras.ops.where(step < self.steps, 1e-2, float("inf"))

    def get_config(self):
        return {"steps": self.steps}


def train_until_it_blows_up(tmp_path, steps):
    """cd.train on three chord songs (2 batches an epoch) with a BlowUp learning rate → (model, history)."""
    from model import MusicLSTM, frame_nll
    songs = [np.zeros((40, 88), bool) for _ in range(4)]
    for i, roll in enumerate(songs):
        roll[:, [40 + i, 44 + i, 47 + i]] = True
        roll[::4] = False
    settings = {**cd.default_settings(), "hidden_size": 16, "head_size": 8, "seq_len": 16, "batch_size": 4,
                "output_dir": str(tmp_path), "epochs": 30}
    keras.utils.set_random_seed(1)
    model = MusicLSTM(num_keys=88, units=16, layers=1, head="nade", head_units=8)
    model.compile(optimizer=keras.optimizers.Adam(BlowUp(steps), clipnorm=1.0), loss=frame_nll)
    history, _ = training.train(model, songs[:3], songs[3:], settings)
    return model, history


def test_a_loss_that_stops_being_finite_ends_training_with_the_best_weights(tmp_path, capsys):
    model, history = train_until_it_blows_up(tmp_path, steps=12)  # 6 good epochs
    assert len(history["loss"]) == 7 and np.isnan(history["loss"][-1])
    assert "training stopped in epoch 7: the training loss became nan; going on with the best weights (epoch 6" \
        in capsys.readouterr().out
    best = keras.saving.load_model(tmp_path / "best.keras")
    for ours, saved in zip(model.get_weights(), best.get_weights()):
        assert np.isfinite(ours).all()
        np.testing.assert_array_equal(ours, saved)


def test_a_loss_that_is_never_finite_is_a_training_error(tmp_path):
    with pytest.raises(training.TrainingError, match="no epoch gave a finite validation NLL before the training loss "
                                               "became nan in epoch 1.*lower --learning_rate"):
        train_until_it_blows_up(tmp_path, steps=0)
    assert not (tmp_path / "best.keras").exists()

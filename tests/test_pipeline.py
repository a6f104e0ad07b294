"""Settings, splits, the baseline, and a tiny end-to-end run through the command line."""
import json

import numpy as np
import pytest
from intervaltree import IntervalTree

import classically_deep as cd
from conftest import labels, musicnet_entry
from midi_io import midi_to_roll


def test_override_is_typed_like_its_default():
    settings = cd.resolve_settings(["--epochs=3", "--temperature=0.5", "--output_dir=x", "--save_mode=false"],
                                   cd.default_settings())
    assert (settings["epochs"], settings["temperature"], settings["output_dir"], settings["save_mode"]) == (3, 0.5, "x", False)
    assert cd.default_settings()["epochs"] == cd.epochs  # defaults untouched


def test_unknown_setting_is_refused_with_the_valid_names():
    with pytest.raises(cd.SettingsError, match="unknown setting --epoch;.*epochs"):
        cd.resolve_settings(["--epoch=3"], cd.default_settings())


@pytest.mark.parametrize("arg", ["--epochs=three", "--time_base=bars", "--dropout=1.5", "epochs=3", "--learning_rate=-1"])
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


def chord_song(root, bars):
    """A tiny archive song: one three-note chord per half second, rising by fifths."""
    notes = []
    for step in range(bars * 4):
        pitch = 48 + (root + 7 * step) % 12
        notes += [(pitch + offset, step * 0.5, step * 0.5 + 0.5) for offset in (0, 4, 7)]
    return labels(*notes, instrument=41)


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
                    "--generate_frames=12", "--num_outputs=2"])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """Two runs with the same settings and seed."""
    tmp_path = tmp_path_factory.mktemp("tiny")
    return run_tiny(tmp_path, "first"), run_tiny(tmp_path, "second")


def test_tiny_end_to_end_run_writes_midi_metrics_and_settings(tiny_runs):
    out, _ = tiny_runs
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"valid_frame_nll", "test_frame_nll", "test_frame_nll_baseline"} <= set(metrics)
    assert json.loads((out / "settings.json").read_text())["epochs"] == 20
    assert (out / "best.keras").exists()
    for number in (1, 2):
        roll = midi_to_roll(out / f"generated_{number}.mid", lowest_note=21, highest_note=108, frames_per_second=4)
        assert roll.shape == (12, 88)


def test_tiny_run_learns_the_chord_pattern_beyond_key_frequencies(tiny_runs):
    metrics = json.loads((tiny_runs[0] / "metrics.json").read_text())
    assert metrics["test_frame_nll"] < metrics["test_frame_nll_baseline"]


def test_same_seed_gives_the_same_run(tiny_runs):
    first, second = (json.loads((out / "metrics.json").read_text()) for out in tiny_runs)
    assert (first["valid_frame_nll"], first["test_frame_nll"]) == (second["valid_frame_nll"], second["test_frame_nll"])
    for number in (1, 2):
        assert (tiny_runs[0] / f"generated_{number}.mid").read_bytes() == (tiny_runs[1] / f"generated_{number}.mid").read_bytes()


def test_transposition_moves_every_note_together_and_keeps_it_on_the_keyboard():
    rng = np.random.default_rng(0)
    piece = np.zeros((6, 88), bool)
    piece[0:3, [0, 4, 7]] = True  # a chord at the very bottom: it can only move up
    for _ in range(50):
        moved = cd.transpose(piece, rng, 5)
        shift = np.nonzero(moved[0])[0][0]
        assert 0 <= shift <= 5
        np.testing.assert_array_equal(moved, np.roll(piece, shift, axis=1))


def test_training_windows_cover_songs_and_mark_padding():
    songs = [np.ones((5, 88), bool), np.ones((40, 88), bool)]
    settings = {**cd.default_settings(), "seq_len": 16, "batch_size": 8, "transpose_range": 0}
    windows, targets, weights = cd.make_window_dataset(songs, settings)[0]
    assert windows.shape == (8, 17, 88) and targets.shape == (8, 16, 88)
    np.testing.assert_array_equal(targets, windows[:, 1:])
    for window, weight in zip(windows, weights):
        real = int(window.any(axis=1).sum())    # the short song gives 5 real frames, the long one 17
        assert real in (5, 17)
        assert weight.sum() == real - 1         # weight 1 exactly on targets inside the song


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

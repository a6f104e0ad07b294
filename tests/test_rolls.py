"""Notes → piano rolls and the roll cache."""
import os

import numpy as np
import pytest
from intervaltree import Interval, IntervalTree

import rolls
import sources
from classically_deep import load_or_preprocess as load_or_preprocess_songs, organize_song
from conftest import SR, labels, musicnet_entry

FPS = 4  # frames per second in these tests: frame k is the instant k / 4 s


def test_notes_sound_in_frames_whose_instant_falls_inside():
    roll = organize_song(labels((60, 0.0, 1.0), (64, 0.5, 1.3)), steps_per_second=FPS)
    expected = np.zeros((6, 88), bool)  # ceil(1.3 s * 4) = 6 frames
    expected[0:4, 60 - 21] = True       # instants 0, .25, .5, .75 in [0, 1)
    expected[2:6, 64 - 21] = True       # instants .5 .. 1.25 in [0.5, 1.3)
    np.testing.assert_array_equal(roll, expected)


def test_note_shorter_than_a_frame_still_sounds_in_its_nearest_frame():
    roll = organize_song(labels((60, 0.0, 1.0), (72, 0.26, 0.40)), steps_per_second=FPS)
    expected = np.zeros((4, 88), bool)
    expected[0:4, 60 - 21] = True
    expected[1, 72 - 21] = True  # no instant in [0.26, 0.40); its middle, 0.33 s, is nearest 0.25 s
    np.testing.assert_array_equal(roll, expected)


def test_touching_notes_of_one_pitch_fill_every_frame_once():
    roll = organize_song(labels((60, 0.0, 0.5), (60, 0.5, 1.0)), steps_per_second=FPS)
    expected = np.zeros((4, 88), bool)
    expected[0:4, 60 - 21] = True
    np.testing.assert_array_equal(roll, expected)


def test_notes_outside_the_keyboard_are_dropped_but_still_set_the_length():
    roll = organize_song(labels((20, 0.0, 2.0), (109, 0.0, 1.0), (21, 0.0, 0.5), (108, 0.25, 0.5)),
                         steps_per_second=FPS)
    expected = np.zeros((8, 88), bool)
    expected[0:2, 0] = True
    expected[1:2, 87] = True
    np.testing.assert_array_equal(roll, expected)


def test_keyboard_range_is_configurable():
    roll = organize_song(labels((60, 0.0, 0.5), (72, 0.0, 0.5)), steps_per_second=FPS,
                         lowest_note=60, highest_note=71)
    expected = np.zeros((2, 12), bool)
    expected[:, 0] = True
    np.testing.assert_array_equal(roll, expected)


def test_bytes_note_value_reads_like_str():
    as_bytes = organize_song(labels((60, 0.0, 1.0, b"Dotted Quarter")), steps_per_second=FPS)
    as_str = organize_song(labels((60, 0.0, 1.0, "Dotted Quarter")), steps_per_second=FPS)
    np.testing.assert_array_equal(as_bytes, as_str)
    assert sources.quarters_from_name(b"Dotted Quarter") == 1.5
    assert sources.quarters_from_name("Triplet Eighth") == pytest.approx(1 / 3)
    assert np.isnan(sources.quarters_from_name("Unknown"))


def test_empty_labels_give_an_empty_roll():
    assert organize_song(IntervalTree(), steps_per_second=FPS).shape == (0, 88)


def test_roll_matches_querying_the_tree_at_every_frame_instant():
    rng = np.random.default_rng(0)
    tree = IntervalTree()
    for _ in range(300):
        start = int(rng.integers(0, 20 * SR))
        tree.add(Interval(start, start + int(rng.integers(SR // 2, 2 * SR)), (1, int(rng.integers(21, 109)), 0, 0.0, "Quarter")))
    roll = organize_song(tree, steps_per_second=10)
    queried = np.zeros_like(roll)
    for frame in range(len(roll)):
        for interval in tree[frame * SR / 10]:
            queried[frame, interval.data[1] - 21] = True
    np.testing.assert_array_equal(roll, queried)


def test_beats_time_base_is_tempo_free():
    """The same score played at two tempi gives one roll on the beat grid."""
    def score(seconds_per_quarter):
        # 4/4: (pitch, measure, beat as fraction of the bar, quarters)
        notes = [(60, 0, 0.0, 1.0), (64, 0, 0.25, 1.0), (67, 0, 0.5, 2.0), (72, 1, 0.0, 0.5), (71, 1, 0.125, 3.5)]
        tree = IntervalTree()
        for pitch, measure, beat, quarters in notes:
            start = (measure * 4 + beat * 4) * seconds_per_quarter * SR
            value = {0.5: "Eighth", 1.0: "Quarter", 2.0: "Half", 3.5: "Unknown"}[quarters]
            tree.add(Interval(round(start), round(start + quarters * seconds_per_quarter * SR), (1, pitch, measure, beat, value)))
        return tree
    slow = organize_song(score(0.8), time_base="beats", steps_per_beat=2)
    fast = organize_song(score(0.5), time_base="beats", steps_per_beat=2)
    expected = np.zeros((16, 88), bool)  # 8 quarters at 2 frames per quarter
    expected[0:2, 60 - 21] = True
    expected[2:4, 64 - 21] = True
    expected[4:8, 67 - 21] = True
    expected[8:9, 72 - 21] = True
    expected[9:16, 71 - 21] = True
    np.testing.assert_array_equal(slow, expected)
    np.testing.assert_array_equal(fast, expected)


# ---------------------------------------------------------------- cache

SETTINGS = {"lowest_note": 21, "highest_note": 108, "time_base": "seconds", "steps_per_second": 4.0, "steps_per_beat": 4}


def write_two_song_archive(path):
    np.savez(path, **{"0001": musicnet_entry(labels((60, 0.0, 1.0), (64, 0.5, 2.0))),
                      "0002": musicnet_entry(labels((48, 0.0, 3.0), instrument=41))})


def load_or_preprocess(data, cache_dir, save_mode, settings):
    return load_or_preprocess_songs(data, {**settings, "cache_dir": cache_dir, "save_mode": save_mode, "max_member_mb": 1000.0})


def test_cache_hit_equals_cache_miss(tmp_path):
    data = tmp_path / "a.npz"
    write_two_song_archive(data)
    built = load_or_preprocess(data, tmp_path / "cache", "auto", SETTINGS)
    assert len(os.listdir(tmp_path / "cache")) == 1
    cached = load_or_preprocess(data, tmp_path / "cache", False, SETTINGS)
    assert built["ids"] == cached["ids"] == ["0001", "0002"]
    assert built["programs"] == cached["programs"] == [1, 41]
    for fresh, stored in zip(built["rolls"], cached["rolls"]):
        np.testing.assert_array_equal(fresh, stored)
        assert stored.dtype == bool


def test_cache_is_plain_npz_without_pickles(tmp_path):
    data = tmp_path / "a.npz"
    write_two_song_archive(data)
    load_or_preprocess(data, tmp_path / "cache", True, SETTINGS)
    (cache,) = (tmp_path / "cache").iterdir()
    with np.load(cache, allow_pickle=False) as stored:
        assert all(stored[name].dtype != object for name in stored.files)


def test_changed_settings_never_reuse_a_stale_cache(tmp_path):
    data = tmp_path / "a.npz"
    write_two_song_archive(data)
    load_or_preprocess(data, tmp_path / "cache", "auto", SETTINGS)
    with pytest.raises(rolls.DataError, match="no roll cache matches"):
        load_or_preprocess(data, tmp_path / "cache", False, {**SETTINGS, "steps_per_second": 8.0})
    finer = load_or_preprocess(data, tmp_path / "cache", "auto", {**SETTINGS, "steps_per_second": 8.0})
    assert len(finer["rolls"][1]) == 24


def test_a_repeat_keeps_moving_forward_on_the_beat_grid():
    """Bars 0-1 played twice (measure numbers jump back): the repeat follows the first time through."""
    tree = IntervalTree()
    for time_through in range(2):
        for measure, pitch in ((0, 60), (1, 62)):
            for beat in range(2):  # 2/4: two quarter notes a bar, one second each
                start = (time_through * 4 + measure * 2 + beat) * SR
                tree.add(Interval(start, start + SR, (1, pitch + time_through * 12, measure, beat / 2, "Quarter")))
    roll = organize_song(tree, time_base="beats", steps_per_beat=1)
    expected = np.zeros((8, 88), bool)
    expected[0:2, 60 - 21] = True
    expected[2:4, 62 - 21] = True
    expected[4:6, 72 - 21] = True
    expected[6:8, 74 - 21] = True
    np.testing.assert_array_equal(roll, expected)


def test_beats_time_base_uses_start_beat_and_duration_when_the_labels_carry_them():
    notes = np.zeros(2, dtype=rolls.NOTE_DTYPE)
    notes["start"], notes["end"] = [0, 44100], [44100, 3 * 44100]   # seconds say nothing about beats here
    notes["note"], notes["instrument"] = [60, 67], 1
    notes["start_beat"], notes["beats"] = [0.5, 1.0], [0.5, 1.5]      # CSV release: onset and duration in beats
    roll = organize_song(notes, time_base="beats", steps_per_beat=2)
    expected = np.zeros((5, 88), bool)
    expected[1, 60 - 21] = True
    expected[2:5, 67 - 21] = True
    np.testing.assert_array_equal(roll, expected)


def test_labels_without_bar_data_are_refused_for_the_beat_grid():
    flat = IntervalTree([Interval(0, SR, (1, 60, 0, 0.0, "Quarter")), Interval(SR, 2 * SR, (1, 62, 0, 0.0, "Quarter"))])
    with pytest.raises(rolls.DataError, match="measure/beat"):
        organize_song(flat, time_base="beats")


def test_a_damaged_cache_is_a_clear_error(tmp_path):
    data = tmp_path / "a.npz"
    write_two_song_archive(data)
    load_or_preprocess(data, tmp_path / "cache", "auto", SETTINGS)
    (cache,) = (tmp_path / "cache").iterdir()
    cache.write_bytes(cache.read_bytes()[:100])
    with pytest.raises(rolls.DataError, match="damaged"):
        load_or_preprocess(data, tmp_path / "cache", "auto", SETTINGS)

"""songs.py: data path, roll cache, reader pool and train/validation/test split."""
import io
import json
import os
import zipfile

import numpy as np
import pytest

import midi_io
import rolls
import songs
import sources
from conftest import AUDIO, bpm_of, corpus, labels, musicnet_entry, rising_line, score_notes, write_csv_release
from files import DataError

# The data settings songs reads, at the driver's defaults; each test changes what it is about.
DEFAULTS = {"lowest_note": 21, "highest_note": 108, "time_base": "beats", "steps_per_beat": 4, "steps_per_second": 8.0,
            "max_frames": 1_000_000, "max_member_mb": 1000.0, "workers": 0, "composers": "", "ensembles": "",
            "programs": "", "cache_dir": "data/cache", "save_mode": "auto", "split_path": ""}


def same_songs(ours, theirs):
    """Two lists of Songs hold the same rolls, onsets and meter, to the byte."""
    assert len(ours) == len(theirs)
    for one, other in zip(ours, theirs):
        for name in ("roll", "onsets", "meter"):
            mine, yours = getattr(one, name), getattr(other, name)
            assert mine.tobytes() == yours.tobytes() and mine.shape == yours.shape and mine.dtype == yours.dtype, name


# ------------------------------------------------------------------ one corpus in three formats

@pytest.mark.parametrize("grid", [{"time_base": "beats", "steps_per_beat": 4}, {"time_base": "seconds", "steps_per_second": 10.0}],
                         ids=["beats", "seconds"])
def test_one_corpus_in_three_formats_gives_byte_identical_rolls_and_onsets(three_ways, tmp_path, grid):
    paths, _ = three_ways
    settings = {**DEFAULTS, "cache_dir": str(tmp_path), **grid}
    built = {kind: songs.preprocess(sources.open_source(str(path)), settings) for kind, path in paths.items()}
    assert built["npz"]["ids"] == built["csv"]["ids"] == built["midi"]["ids"] == sorted(corpus())
    same_songs(built["csv"]["songs"], built["npz"]["songs"])  # neither knows the bar: unknown meter both
    assert built["midi"]["programs"] == built["csv"]["programs"] == built["npz"]["programs"]
    for ours, theirs in zip(built["midi"]["songs"], built["npz"]["songs"]):
        assert ours.roll.tobytes() == theirs.roll.tobytes() and ours.onsets.tobytes() == theirs.onsets.tobytes()
        assert ours.roll.shape == theirs.roll.shape and theirs.onsets.sum() == 48  # 12 chords of 4 notes
        assert (theirs.meter == rolls.UNKNOWN_METER).all()


def test_midi_files_know_their_bars_on_the_beat_grid_only(three_ways, tmp_path):
    """MIDI files without a time signature are in 4/4 from their first tick."""
    paths, _ = three_ways
    source = sources.open_source(str(paths["midi"]))
    beats = songs.preprocess(source, {**DEFAULTS, "steps_per_beat": 2})["songs"][0]
    seconds = songs.preprocess(source, {**DEFAULTS, "time_base": "seconds"})["songs"][0]
    np.testing.assert_array_equal(beats.meter, [[since, 8, 4, 4] for since in range(8)] * 3)  # 12 beats
    assert (seconds.meter == rolls.UNKNOWN_METER).all()


def test_a_csv_release_holds_out_its_test_folder(three_ways):
    paths, _ = three_ways
    source = sources.open_source(str(paths["csv"]))
    split = songs.split_ids(sorted(source.recordings), test_ids=source.test_ids)
    assert split["test"] == ["1006", "1007"] and len(split["valid"]) == 1 and len(split["train"]) == 5


def test_npz_labels_built_from_the_csv_release_are_reported(three_ways, tmp_path, capsys):
    paths, _ = three_ways
    songs.preprocess(sources.open_source(str(paths["npz"])), {**DEFAULTS, "cache_dir": str(tmp_path)})
    assert "label timing: 8 recordings with start_beat/end_beat" in capsys.readouterr().out


# ------------------------------------------------------------------ messy MIDI collections


def write_midi_folder(folder, count, broken=()):
    """count small MIDI files under folder/a and folder/b (some stems repeated) plus the broken files given."""
    pieces = corpus()
    for number in range(count):
        notes = list(pieces.values())[number % len(pieces)]
        sub = folder / ("a" if number % 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        midi_io.notes_to_midi(notes, sub / f"piece{number}.mid", bpm=bpm_of(notes))
    for name, content in broken:
        (folder / name).write_bytes(content)


def test_broken_midi_files_are_skipped_one_line_each_and_counted(tmp_path, capsys):
    write_midi_folder(tmp_path / "music", 20, broken=[("empty.mid", b""), ("text.mid", b"hello"),
                                                     ("cut.midi", b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\x01\x00")])
    settings = {**DEFAULTS, "cache_dir": str(tmp_path / "cache"), "workers": 2}
    loaded = songs.load_or_preprocess(sources.open_source(str(tmp_path / "music")), settings)
    out = capsys.readouterr()
    assert len(loaded["ids"]) == 20 and sorted(song_id for song_id, _ in loaded["skipped"]) == ["cut", "empty", "text"]
    warnings = [line for line in (out.out + out.err).splitlines() if line.startswith("warning: skipped recording")]
    assert len(warnings) == 3 and all("mid" in line for line in warnings)


def test_midi_ids_are_stems_or_relative_paths_where_stems_repeat(tmp_path):
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        midi_io.notes_to_midi(corpus()["1000"], tmp_path / folder / "same.mid", bpm=100)
    midi_io.notes_to_midi(corpus()["1001"], tmp_path / "x" / "unique.MIDI")
    source = sources.open_source(str(tmp_path))
    assert sorted(source.recordings) == ["unique", "x/same", "y/same"]
    assert source.aliases == {"x/unique": "unique"}  # a split file may name it either way
    (tmp_path / "split.json").write_text(json.dumps({"train": ["x/same"], "valid": ["y/same"], "test": ["x/unique"]}))
    split = songs.split_ids(sorted(source.recordings), str(tmp_path / "split.json"), aliases=source.aliases)
    assert split == {"train": ["x/same"], "valid": ["y/same"], "test": ["unique"]}
    single = sources.open_source(str(tmp_path / "x" / "unique.MIDI"))
    assert single.kind == "midi" and list(single.recordings) == ["unique"]


def test_pool_and_single_process_give_the_same_rolls(tmp_path):
    write_midi_folder(tmp_path / "music", 24)
    source = sources.open_source(str(tmp_path / "music"))
    one, two = (songs.preprocess(source, {**DEFAULTS, "workers": n}) for n in (1, 2))
    assert one["ids"] == two["ids"] and len(one["ids"]) == 24
    same_songs(one["songs"], two["songs"])
    assert all((song.meter[:, 1:] == (16, 4, 4)).all() for song in two["songs"])  # the pool ships the meter back


def test_adding_or_changing_a_file_changes_the_cache_key(tmp_path):
    write_midi_folder(tmp_path / "music", 3)

    def key():
        return songs.cache_path(songs.cache_key(sources.open_source(str(tmp_path / "music")), DEFAULTS), "cache", DEFAULTS)

    before = key()
    midi_io.notes_to_midi(corpus()["1002"], tmp_path / "music" / "new.mid", bpm=100)
    added = key()
    path = tmp_path / "music" / "a" / "piece1.mid"
    os.utime(path, ns=(0, os.stat(path).st_mtime_ns + 10 ** 9))
    assert len({before, added, key()}) == 3


# ------------------------------------------------------------------ filters


def test_ensemble_and_composer_filters_choose_recordings_from_the_metadata(tmp_path):
    pieces = corpus()
    metadata = {song_id: (("Bach", "Solo Piano") if int(song_id) % 2 else ("Mozart", "String Quartet")) for song_id in pieces}
    write_csv_release(tmp_path, pieces, metadata=metadata)
    source = sources.open_source(str(tmp_path))
    solo = songs.note_filters(source, {**DEFAULTS, "ensembles": "solo piano"})[0]
    assert solo == ["1001", "1003", "1005", "1007"]
    assert songs.note_filters(source, {**DEFAULTS, "composers": "Mozart"})[0] == ["1000", "1002", "1004", "1006"]
    with pytest.raises(DataError, match="no recording has ensemble 'brass band'; known: Solo Piano, String Quartet"):
        songs.note_filters(source, {**DEFAULTS, "ensembles": "Brass Band"})


def test_filters_needing_metadata_are_refused_without_it(three_ways):
    paths, _ = three_ways
    with pytest.raises(DataError, match="needs MusicNet's metadata"):
        songs.note_filters(sources.open_source(str(paths["midi"])), {**DEFAULTS, "composers": "Bach"})


def test_program_filter_keeps_only_those_notes(three_ways):
    paths, _ = three_ways
    only = songs.preprocess(sources.open_source(str(paths["csv"])), {**DEFAULTS, "programs": "41", "steps_per_beat": 2})
    assert set(only["programs"]) == {41}
    everything = songs.preprocess(sources.open_source(str(paths["csv"])), {**DEFAULTS, "steps_per_beat": 2})
    assert all(kept.roll.sum() < full.roll.sum() and not (kept.roll & ~full.roll).any()
               for kept, full in zip(only["songs"], everything["songs"]))


@pytest.mark.parametrize("value", ["piano", "0", "129"])
def test_a_bad_program_list_is_refused(three_ways, value):
    paths, _ = three_ways
    with pytest.raises(DataError, match="--programs"):
        songs.note_filters(sources.open_source(str(paths["csv"])), {**DEFAULTS, "programs": value})


# ------------------------------------------------------------------ reader processes on an npz archive

def test_reader_processes_give_the_rolls_of_one_process_for_an_npz_archive(tmp_path):
    assert AUDIO.nbytes >= sources.SKIP_FROM
    members = {f"{2000 + number}": musicnet_entry(rising_line(number), AUDIO) for number in range(20)}
    members["2100"] = musicnet_entry(labels((200, 0.0, 1.0)))  # no MIDI note: skipped
    np.savez(tmp_path / "a.npz", **members)
    source = sources.open_source(str(tmp_path / "a.npz"))
    one, two = (songs.preprocess(source, {**DEFAULTS, "workers": n}) for n in (1, 2))
    assert one["ids"] == two["ids"] and len(one["ids"]) == 20
    assert one["programs"] == two["programs"] and one["skipped"] == two["skipped"] and one["skipped"][0][0] == "2100"
    same_songs(one["songs"], two["songs"])
    assert all((song.meter[:, 1:] == (4, 1, 4)).all() for song in two["songs"])  # a bar a second: two eighths, 1/4


# ------------------------------------------------------------------ cache policy

CACHE_SETTINGS = {**DEFAULTS, "time_base": "seconds", "steps_per_second": 4.0}


def write_two_song_archive(path):
    np.savez(path, **{"0001": musicnet_entry(labels((60, 0.0, 1.0), (64, 0.5, 2.0))),
                      "0002": musicnet_entry(labels((48, 0.0, 3.0), instrument=41))})


def load_or_preprocess(data, cache_dir, save_mode, settings):
    return songs.load_or_preprocess(sources.open_source(str(data)), {**settings, "cache_dir": cache_dir, "save_mode": save_mode})


def test_cache_hit_equals_cache_miss(tmp_path):
    data = tmp_path / "a.npz"
    write_two_song_archive(data)
    built = load_or_preprocess(data, tmp_path / "cache", "auto", CACHE_SETTINGS)
    assert len(os.listdir(tmp_path / "cache")) == 1
    cached = load_or_preprocess(data, tmp_path / "cache", False, CACHE_SETTINGS)
    assert built["ids"] == cached["ids"] == ["0001", "0002"]
    assert built["programs"] == cached["programs"] == [1, 41]
    same_songs(built["songs"], cached["songs"])


def test_cache_is_plain_npz_without_pickles(tmp_path):
    data = tmp_path / "a.npz"
    write_two_song_archive(data)
    load_or_preprocess(data, tmp_path / "cache", True, CACHE_SETTINGS)
    (cache,) = (tmp_path / "cache").iterdir()
    with np.load(cache, allow_pickle=False) as stored:
        assert all(stored[name].dtype != object for name in stored.files)


def test_changed_settings_never_reuse_a_stale_cache(tmp_path):
    data = tmp_path / "a.npz"
    write_two_song_archive(data)
    load_or_preprocess(data, tmp_path / "cache", "auto", CACHE_SETTINGS)
    with pytest.raises(DataError, match="no roll cache matches"):
        load_or_preprocess(data, tmp_path / "cache", False, {**CACHE_SETTINGS, "steps_per_second": 8.0})
    finer = load_or_preprocess(data, tmp_path / "cache", "auto", {**CACHE_SETTINGS, "steps_per_second": 8.0})
    assert len(finer["songs"][1]) == 24


def test_a_damaged_cache_is_a_clear_error(tmp_path):
    data = tmp_path / "a.npz"
    write_two_song_archive(data)
    load_or_preprocess(data, tmp_path / "cache", "auto", CACHE_SETTINGS)
    (cache,) = (tmp_path / "cache").iterdir()
    cache.write_bytes(cache.read_bytes()[:100])
    with pytest.raises(DataError, match="damaged"):
        load_or_preprocess(data, tmp_path / "cache", "auto", CACHE_SETTINGS)


# ------------------------------------------------------------------ untrusted cache files

def cached_songs():
    """Two short songs of 12 keys, the first a key struck twice in bars of 1/4 at two frames a beat (a pickup frame
    first), the second in no known meter, and one skipped recording, as preprocess makes them."""
    first, second = np.zeros((3, 12), bool), np.zeros((5, 12), bool)
    first[0:2, 4] = True
    second[4, 11] = True
    struck = np.zeros((3, 12), bool)
    struck[[0, 1], 4] = True
    meter = [[1, 2, 1, 4], [0, 2, 1, 4], [1, 2, 1, 4]]
    return {"ids": ["a", "b"], "songs": [rolls.Song(first, struck, meter), rolls.Song(second)], "programs": [1, 41],
            "skipped": [("c", "a negative start time")]}


def write_cache(path, **changes):
    """Write cached_songs() with save_rolls, then replace arrays (None: leave one out) as an attacker might."""
    songs.save_rolls(path, cached_songs())
    with np.load(path) as cache:
        arrays = {name: cache[name] for name in cache.files}
    arrays.update(changes)
    np.savez(path, **{name: value for name, value in arrays.items() if value is not None})
    return path


def replace_member(path, name, data):
    """Rewrite one member of the cache's zip with raw bytes."""
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    members[name] = data
    with zipfile.ZipFile(path, "w") as archive:
        for member, content in members.items():
            archive.writestr(member, content)


def test_a_cache_round_trips_through_load_rolls(tmp_path):
    loaded = songs.load_rolls(write_cache(tmp_path / "rolls.npz"), num_keys=12)
    assert loaded["ids"] == ["a", "b"] and loaded["programs"] == [1, 41]
    assert loaded["skipped"] == [("c", "a negative start time")]
    same_songs(loaded["songs"], cached_songs()["songs"])
    np.testing.assert_array_equal(loaded["songs"][0].onsets[:, 4], [True, True, False])  # struck again, not held
    np.testing.assert_array_equal(loaded["songs"][0].meter[:, 0], [1, 0, 1])


def test_a_cache_of_only_skipped_recordings_loads(tmp_path):
    path = tmp_path / "rolls.npz"
    songs.save_rolls(path, {"ids": [], "songs": [], "programs": [], "skipped": [("a", "no notes")]})
    assert songs.load_rolls(path, num_keys=88) == {"ids": [], "songs": [], "programs": [], "skipped": [("a", "no notes")]}


@pytest.mark.parametrize("changes, reason", [
    ({"packed": None}, "no 'packed' array"),
    ({"skipped": None}, "no 'skipped' array"),
    ({"packed": np.zeros((7, 2), np.uint8)}, "packed frames have shape"),
    ({"packed": np.zeros((8, 3), np.uint8)}, "packed frames have shape"),   # 12 keys take two bytes, not three
    ({"packed": np.zeros(8, np.uint8)}, "1-d uint8"),
    ({"packed": np.zeros((8, 1), np.float32)}, "float32"),
    ({"ids": np.array([1, 2])}, "int64"),
    ({"ids": np.array(["a", "a"])}, "an id appears twice"),
    ({"lengths": np.array([3.0, 5.0])}, "float64"),
    ({"lengths": np.array([3])}, "2 ids but 1 lengths"),
    ({"lengths": np.array([-2, 10])}, "negative or beyond"),
    ({"lengths": np.array([2**62, 2**62])}, "negative or beyond"),
    ({"num_keys": np.int64(10**9)}, "num_keys is 1000000000"),
    ({"num_keys": np.int64(0)}, "num_keys is 0"),
    ({"num_keys": np.array([12, 12])}, "1-d int64"),
    ({"programs": np.array([1, 0], np.int16)}, "program outside"),
    ({"programs": np.array([1, 41, 1], np.int16)}, "3 programs"),
    ({"skipped": np.array(["c", "why"])}, "1-d"),
    ({"skipped": np.array([["c", "why", "extra"]])}, "not \\(id, reason\\) pairs"),
    ({"skipped": np.array([[1, 2]])}, "int64"),
    ({"onsets": None}, "no 'onsets' array"),
    ({"meter": None}, "no 'meter' array"),
    ({"onsets": np.zeros((7, 2), np.uint8)}, "onsets have shape \\(7, 2\\), not \\(8, 2\\)"),
    ({"onsets": np.zeros((8, 2), np.uint16)}, "'onsets' is uint16, not uint8"),
    ({"onsets": np.zeros((8, 2), np.int8)}, "2-d int8"),
    ({"meter": np.zeros((8, 4), np.int32)}, "'meter' is int32, not int16"),
    ({"meter": np.zeros((8, 4), np.float32)}, "2-d float32"),
    ({"meter": np.zeros((8, 3), np.int16)}, "meter has shape \\(8, 3\\), not \\(8, 4\\)"),
    ({"meter": np.zeros((9, 4), np.int16)}, "meter has shape \\(9, 4\\)"),
    ({"meter": np.zeros((8, 4), np.int16)}, "meter of frame 0 is \\[0, 0, 0, 0\\], not a place in a bar nor unknown"),
    ({"meter": np.tile(np.int16([4, 4, 4, 4]), (8, 1))}, "meter of frame 0 is \\[4, 4, 4, 4\\]"),   # past its bar
    ({"meter": np.tile(np.int16([0, 4, 4, -4]), (8, 1))}, "meter of frame 0 is \\[0, 4, 4, -4\\]"),
])
def test_a_damaged_cache_array_is_named_in_a_data_error(tmp_path, changes, reason):
    path = write_cache(tmp_path / "rolls.npz", **changes)
    with pytest.raises(DataError, match=f"roll cache .* is damaged \\(.*{reason}.*\\); delete it"):
        songs.load_rolls(path)


def test_a_cache_for_another_keyboard_is_refused(tmp_path):
    with pytest.raises(DataError, match="rolls of 12 keys where the settings make 88"):
        songs.load_rolls(write_cache(tmp_path / "rolls.npz"), num_keys=88)


def test_a_truncated_cache_is_a_data_error(tmp_path):
    path = write_cache(tmp_path / "rolls.npz")
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(DataError, match="is damaged"):
        songs.load_rolls(path)


def test_a_cache_array_claiming_more_than_the_file_holds_is_refused_before_reading(tmp_path):
    header = io.BytesIO()  # a terabyte of packed frames, claimed by a 200-byte member
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": (10**12, 1)})
    path = write_cache(tmp_path / "rolls.npz")
    replace_member(path, "packed.npy", header.getvalue() + bytes(64))
    with pytest.raises(DataError, match="claims shape \\(1000000000000, 1\\)"):
        songs.load_rolls(path)


def test_a_cache_holding_a_pickle_is_refused(tmp_path):
    path = write_cache(tmp_path / "rolls.npz", ids=np.array(["a", "b"], dtype=object))
    with pytest.raises(DataError, match="object"):
        songs.load_rolls(path)


def test_a_compressed_cache_is_not_the_one_we_wrote(tmp_path):
    path = write_cache(tmp_path / "rolls.npz")
    with np.load(path) as cache:
        np.savez_compressed(path, **{name: cache[name] for name in cache.files})
    with pytest.raises(DataError, match="not stored the way save_rolls stores it"):
        songs.load_rolls(path)


def test_a_cache_that_is_a_folder_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="is a folder"):
        songs.load_rolls(tmp_path)


# ------------------------------------------------------------------ data path, splits and usable songs (from test_pipeline.py)

def test_missing_default_data_path_falls_back_to_the_sample(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert songs.resolve_data_path(songs.DEFAULT_DATA_PATH) == songs.SAMPLE_PATH


def test_standard_musicnet_test_recordings_form_the_test_set():
    ids = [str(i) for i in range(1700, 2700, 7)] + songs.STANDARD_TEST_IDS
    split = songs.split_ids(sorted(set(ids)))
    assert split["test"] == songs.STANDARD_TEST_IDS
    assert not set(split["train"]) & set(split["valid"])
    assert len(split["train"]) + len(split["valid"]) + len(split["test"]) == len(set(ids))
    assert split == songs.split_ids(sorted(set(ids)))


def test_other_archives_get_a_deterministic_three_way_split():
    ids = [f"{i:04d}" for i in range(20)]
    split = songs.split_ids(ids)
    assert all(split[part] for part in ("train", "valid", "test"))
    assert sorted(sum(split.values(), [])) == ids


def test_split_file_is_used_and_checked(tmp_path):
    path = tmp_path / "split.json"
    path.write_text(json.dumps({"train": ["0001"], "valid": ["0002"], "test": ["0003"]}))
    assert songs.split_ids(["0001", "0002", "0003"], str(path))["test"] == ["0003"]
    with pytest.raises(DataError, match="0003"):
        songs.split_ids(["0001", "0002"], str(path))


def test_split_ids_may_be_numbers(tmp_path):
    path = tmp_path / "split.json"
    path.write_text(json.dumps({"train": [1], "valid": [2], "test": ["3"]}))
    assert songs.split_ids(["1", "2", "3"], str(path)) == {"train": ["1"], "valid": ["2"], "test": ["3"]}


def test_a_split_naming_a_skipped_recording_leaves_it_out_with_a_note(tmp_path, capsys):
    path = tmp_path / "split.json"
    path.write_text(json.dumps({"train": ["0001", "0099"], "valid": ["0002"], "test": ["0003"]}))
    split = songs.split_ids(["0001", "0002", "0003"], str(path), unusable=["0099"])
    assert split == {"train": ["0001"], "valid": ["0002"], "test": ["0003"]}
    assert "skipped as unusable; left out of the split: 0099" in capsys.readouterr().out


def test_empty_and_one_frame_recordings_are_skipped_with_a_note(tmp_path, capsys):
    built = {"ids": ["a", "b", "c", "d", "e"], "programs": [1] * 5, "skipped": [],
             "songs": [rolls.Song(roll) for roll in (np.zeros((0, 88), bool), np.zeros((9, 88), bool),
                                                      np.eye(3, 88, dtype=bool)[:1], np.ones((4, 88), bool),
                                                      np.ones((5, 88), bool))]}
    settings = {**DEFAULTS, "cache_dir": str(tmp_path), "save_mode": False, "data_path": str(songs.SAMPLE_PATH)}
    source = sources.open_source(songs.SAMPLE_PATH)
    songs.save_rolls(songs.cache_path(songs.cache_key(source, settings), str(tmp_path), settings), built)
    with pytest.raises(DataError, match="need at least one usable song"):  # two usable songs cannot fill three parts
        songs.load_songs(source, settings)
    assert "skipped 3 of 5 recordings with fewer than two frames that sound (empty, or too short to learn from): " \
           "a, b, c" in capsys.readouterr().out


def test_generated_midi_uses_the_program_that_covers_most_training_frames():
    assert songs.most_played_program([1, 41, 41, 1], [500, 100, 100, 50]) == 1
    assert songs.most_played_program([1, 41, 41], [100, 80, 80]) == 41


# ------------------------------------------------------------------ small and sloppy inputs

@pytest.mark.parametrize("name, kind", [("bach.mid", "MIDI file"), ("Bach.MIDI", "MIDI file"), ("mine", "folder"),
                                        ("mine/", "folder"), ("musicnet.npz", "MusicNet npz archive"),
                                        ("notes.csv", "data file")])
def test_a_missing_data_path_says_what_kind_of_source_was_looked_for(tmp_path, name, kind):
    path = os.path.join(str(tmp_path), name)
    with pytest.raises(DataError) as refusal:
        songs.resolve_data_path(path)
    assert str(refusal.value).startswith(f"{kind} {path} not found; pass --data_path=")
    assert "MusicNet (see" not in str(refusal.value)


def test_download_musicnet_is_said_only_when_the_default_and_the_sample_are_both_missing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(songs, "SAMPLE_PATH", str(tmp_path / "gone" / "sample.npz"))
    with pytest.raises(DataError, match=r"^data/musicnet\.npz not found, nor the embedded sample gone/sample\.npz "
                                        r"— download MusicNet \(see data/README\.md\) or pass --data_path=\.\.\.$"):
        songs.resolve_data_path(songs.DEFAULT_DATA_PATH)


def test_too_few_songs_are_split_into_stretches_of_each():
    roll = np.zeros((100, 4), bool)
    roll[::3, 1] = True
    roll[:, 2] = True
    struck = roll.copy()
    struck[:, 2] = np.arange(100) % 4 == 0  # key 2 held throughout, struck again every 4 frames: bars of 4/4 at one frame a beat
    meter = [[frame % 4, 4, 4, 4] for frame in range(100)]
    short = np.ones((5, 4), bool)  # 2 + 2 frames held out leave 1 to train on: too short
    parts, split = songs.held_out_stretches(["a", "b"], {"a": rolls.Song(roll, struck, meter), "b": rolls.Song(short)})
    assert split == {"train": ["a"], "valid": ["a (frames 80-90)"], "test": ["a (frames 90-100)"]}
    for part, (start, end) in {"train": (0, 80), "valid": (80, 90), "test": (90, 100)}.items():
        assert len(parts[part]) == 1
        np.testing.assert_array_equal(parts[part][0].roll, roll[start:end])
        np.testing.assert_array_equal(parts[part][0].onsets[1:], struck[start + 1:end])
        np.testing.assert_array_equal(parts[part][0].meter, meter[start:end])
    assert not struck[90, 2]
    np.testing.assert_array_equal(parts["test"][0].onsets[0], [False, True, True, False])  # key 2 held into it: struck


@pytest.mark.parametrize("count", [1, 2])
def test_one_or_two_midi_files_train_on_stretches_and_say_so(tmp_path, capsys, count):
    for number in range(count):
        notes = score_notes(*((48 + number + step % 12, step / 2, 0.5) for step in range(80)))  # 160 frames
        midi_io.notes_to_midi(notes, tmp_path / f"piece{number}.mid")
    data = tmp_path / "piece0.mid" if count == 1 else tmp_path
    settings = {**DEFAULTS, "cache_dir": str(tmp_path / "cache"), "data_path": str(data)}
    parts, split, program = songs.load_songs(sources.open_source(str(data)), settings)
    assert [len(parts[part]) for part in ("train", "valid", "test")] == [count] * 3
    assert all(isinstance(song, rolls.Song) and (song.meter[:, 1:] == (16, 4, 4)).all() for song in parts["test"])
    assert split["train"] == [f"piece{number}" for number in range(count)]
    assert split["test"] == [f"piece{number} (frames 144-160)" for number in range(count)]
    assert program == 1
    said = capsys.readouterr().out
    assert (f"note: {count} usable recording(s) are too few to split into train, valid and test recordings: each is "
            "validated on its 10% of frames before the last 10% and tested on those last ones\n") in said
    assert f"songs: {count} train, {count} valid, {count} test" in said


def test_a_split_file_leaving_a_part_empty_is_still_refused(tmp_path):
    midi_io.notes_to_midi(score_notes(*((48 + step % 12, step / 2, 0.5) for step in range(80))), tmp_path / "piece.mid")
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": ["piece"], "valid": [], "test": []}))
    settings = {**DEFAULTS, "cache_dir": str(tmp_path / "cache"), "split_path": str(split)}
    with pytest.raises(DataError, match="need at least one usable song in each of train, valid and test"):
        songs.load_songs(sources.open_source(str(tmp_path / "piece.mid")), settings)

"""The archive reader: MusicNet's pickled npz read safely, damaged or hostile archives refused with one line."""
import os
import zipfile

import numpy as np
import pytest
from intervaltree import Interval, IntervalTree

import sources
from conftest import CSV_HEADER, labels, musicnet_entry, score_notes, start_beat_tree, write_csv_release, write_py2_style_archive
from files import DataError


def assert_same_notes(actual, expected):
    """Structured NOTE_DTYPE arrays equal field by field (NaN equals NaN)."""
    assert actual.dtype == expected.dtype
    for field in expected.dtype.names:
        np.testing.assert_array_equal(actual[field], expected[field], err_msg=field)


def test_reader_loads_an_archive_pickled_the_way_musicnet_was(tmp_path):
    tree = labels((60, 0.0, 1.0, "Quarter"), (64, 0.5, 1.5, "Half"))
    path = tmp_path / "musicnet.npz"
    write_py2_style_archive(path, {"2494": musicnet_entry(tree, np.ones(10, np.float32)), "1727": musicnet_entry(IntervalTree())})
    songs = {song_id: notes for song_id, notes, _ in sources.read_archive(path)}
    assert sorted(songs) == ["1727", "2494"]
    assert_same_notes(songs["2494"], sources.notes_from_labels(tree))
    assert list(songs["2494"]["note"]) == [60, 64]
    assert len(songs["1727"]) == 0


def test_py2_style_member_names_python2_modules(tmp_path):
    path = tmp_path / "musicnet.npz"
    write_py2_style_archive(path, {"2494": musicnet_entry(labels((60, 0.0, 1.0)))})
    raw = zipfile.ZipFile(path).read("2494.npy")
    assert b"copy_reg" in raw or b"__builtin__" in raw  # the fixture really is Python-2 flavoured


def test_reader_loads_an_archive_written_with_np_savez(tmp_path):
    tree = labels((60, 0.0, 1.0))
    np.savez(tmp_path / "a.npz", **{"0001": musicnet_entry(tree)})
    (song_id, notes, problem), = sources.read_archive(tmp_path / "a.npz")
    assert song_id == "0001" and problem is None
    assert_same_notes(notes, sources.notes_from_labels(tree))


class Exploit:
    """Pickles to a call of os.system: loading it must never run the command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_malicious_pickle_is_refused_and_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    write_py2_style_archive(path, {"0666": musicnet_entry(labels((60, 0.0, 1.0))), "0667": Exploit(marker)})
    with pytest.raises(DataError, match="'0667'.*refused"):
        list(sources.read_archive(path))
    assert not marker.exists()


def test_member_that_is_not_an_audio_labels_pair_is_refused(tmp_path):
    path = tmp_path / "odd.npz"
    write_py2_style_archive(path, {"0001": [1, 2, 3]})
    with pytest.raises(DataError, match="'0001'"):
        list(sources.read_archive(path))


def test_a_file_that_is_not_an_archive_is_a_clear_error(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("not a zip")
    with pytest.raises(DataError, match="not a readable MusicNet npz archive"):
        sources.archive_ids(path)




# ---------------------------------------------------------------- bad values inside a good file

class PickledAs:
    """Pickles as a call of `func(*args)`: writes what intervaltree itself would, without its own checks."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def tree_with(*fields, begin=0, end=44100):
    """A one-label IntervalTree pickle whose label is (begin, end, fields), even where intervaltree would refuse it."""
    return PickledAs(IntervalTree, [PickledAs(Interval, begin, end, tuple(fields))])


@pytest.mark.parametrize("tree, reason", [
    (tree_with(1, 60, 0, 0.0, "Quarter", begin=-44100, end=0), "negative start"),
    (tree_with(1, 60, 0, 0.0, "Quarter", begin=0, end=float("nan")), "not a finite number"),
    (tree_with(1, 60, 0, 0.0, "Quarter", begin=0, end=float("inf")), "not a finite number"),
    (tree_with(1, 40000, 0, 0.0, "Quarter"), "outside MIDI 0-127"),
    (tree_with(1, "C4", 0, 0.0, "Quarter"), "a note is str"),
    (tree_with(1, 60.5, 0, 0.0, "Quarter"), "not a whole number"),
    (tree_with(1, 60, "one", 0.0, "Quarter"), "a measure is str"),
    (tree_with(1, 60, 0, 0.0), "not (start, end, (instrument"),
    (tree_with(1, 60, 0, 0.0, "Quarter", begin=0, end=10 ** 400), "too large"),
], ids=["negative-start", "nan-end", "inf-end", "note-40000", "note-C4", "note-60.5", "measure-one", "four-fields", "huge-end"])
def test_bad_label_values_skip_the_recording_with_a_reason(tmp_path, tree, reason):
    path = tmp_path / "a.npz"
    write_py2_style_archive(path, {"0001": musicnet_entry(labels((60, 0.0, 1.0))), "0002": musicnet_entry(tree)})
    results = {song_id: (notes, problem) for song_id, notes, problem in sources.read_archive(path)}
    assert results["0001"][1] is None and len(results["0001"][0]) == 1  # the good recording is unaffected
    notes, problem = results["0002"]
    assert notes is None and reason in problem


def test_begin_after_end_is_a_skip_not_an_attack(tmp_path):
    path = tmp_path / "a.npz"
    write_py2_style_archive(path, {"0001": musicnet_entry(tree_with(1, 60, 0, 0.0, "Quarter", begin=88200, end=44100))})
    (_, notes, problem), = sources.read_archive(path)
    assert notes is None and "ends before it starts" in problem


# ---------------------------------------------------------------- the CSV release and source detection

def two_scores():
    return {"1727": score_notes((60, 0, 1), (64, 0, 2, 41), (67, 1, 1.5), (72, 2.5, 0.5)),
            "2494": score_notes((48, 0, 4), (55, 1, 0.5), (59, 1.5, 0.25), (62, 3, 1, 41), bpm=90)}


def test_csv_release_and_the_npz_built_from_it_give_the_same_notes(tmp_path):
    songs = two_scores()
    write_csv_release(tmp_path / "release", songs, test_ids=["2494"])
    np.savez(tmp_path / "from_csv.npz", **{song_id: musicnet_entry(start_beat_tree(notes)) for song_id, notes in songs.items()})
    from_csv = sources.open_source(str(tmp_path / "release"))
    from_npz = sources.open_source(str(tmp_path / "from_csv.npz"))
    assert (from_csv.kind, from_npz.kind) == ("csv", "npz")
    read_csv = {song_id: sources.read_song(from_csv, song_id)[0] for song_id in from_csv.recordings}
    read_npz = {song_id: sources.read_song(from_npz, song_id)[0] for song_id in from_npz.recordings}
    for song_id, notes in songs.items():
        assert_same_notes(read_csv[song_id], notes[np.lexsort((notes["note"], notes["start"]))])
        assert_same_notes(read_npz[song_id], read_csv[song_id])
        assert sources.label_form(read_npz[song_id]) == "start_beat/end_beat"


def test_original_measure_beat_labels_are_told_apart_from_start_beat_labels():
    original = sources.notes_from_labels(labels((60, 0.0, 1.0), (64, 0.5, 1.5), (67, 1.25, 2.0)))
    assert sources.label_form(original) == "measure/beat"
    assert np.isnan(original["start_beat"]).all()
    csv_form = sources.notes_from_labels(start_beat_tree(score_notes((60, 0, 1), (64, 0.5, 1.5))))
    assert sources.label_form(csv_form) == "start_beat/end_beat"
    assert list(csv_form["start_beat"]) == [0.0, 0.5] and list(csv_form["beats"]) == [1.0, 1.5]


@pytest.mark.parametrize("nesting", [[], ["musicnet"], ["musicnet", "musicnet"]])
def test_csv_release_is_found_from_its_own_folder_or_the_folders_above(tmp_path, nesting):
    root = tmp_path.joinpath(*nesting)
    write_csv_release(root, two_scores(), test_ids=["2494"], metadata={"1727": ("Bach", "Solo Piano"), "2494": ("Mozart", "String Quartet")})
    source = sources.open_source(str(tmp_path))
    assert source.kind == "csv" and sorted(source.recordings) == ["1727", "2494"]
    assert source.test_ids == ("2494",)
    assert source.metadata["1727"]["composer"] == "Bach" and source.metadata["2494"]["ensemble"] == "String Quartet"
    assert source.metadata["1727"]["composition"] == "Sonata, No. 1"  # quoted commas survive


@pytest.mark.parametrize("content, reason", [
    ("start,end\n1,2\n", "header"),
    (CSV_HEADER + "\n0,44100,1,C4,0,1,Quarter\n", "'C4' is not a number"),
    (CSV_HEADER + "\n0,44100,1,60.5,0,1,Quarter\n", "not a whole number"),
    (CSV_HEADER + "\n0,44100,1,60,0\n", "fields"),
    (CSV_HEADER + "\n44100,0,1,60,0,1,Quarter\n", "ends before it starts"),
    ("", "header"),
], ids=["header", "text-note", "fractional-note", "short-line", "backwards", "empty"])
def test_a_bad_label_csv_is_skipped_with_its_reason(tmp_path, content, reason):
    write_csv_release(tmp_path, two_scores())
    (tmp_path / "train_labels" / "9999.csv").write_text(content)
    source = sources.open_source(str(tmp_path))
    results = {song_id: sources.read_song(source, song_id) for song_id in source.recordings}
    assert results["1727"][1] is None
    assert results["9999"][0] is None and reason in results["9999"][1]


@pytest.mark.parametrize("make", ["text_file", "empty_folder", "folder_of_text"])
def test_a_data_path_that_is_no_known_source_is_a_one_line_error(tmp_path, make):
    if make == "text_file":
        path = tmp_path / "notes.txt"
        path.write_text("hello")
    else:
        path = tmp_path / "folder"
        path.mkdir()
        if make == "folder_of_text":
            (path / "a.txt").write_text("hello")
    with pytest.raises(DataError, match="neither|no .mid"):
        sources.open_source(str(path))

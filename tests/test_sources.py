"""The archive reader: MusicNet's pickled npz read safely, damaged or hostile archives refused with one line."""
import os
import zipfile

import numpy as np
import pytest
from intervaltree import Interval, IntervalTree

import sources
from conftest import labels, musicnet_entry, write_py2_style_archive
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

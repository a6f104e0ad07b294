"""The readers: npz archives read safely, CSV releases and folders as ordinary tools write them, bad input named in one line."""
import csv
import io
import os
import struct
import zipfile

import numpy as np
import pytest
from intervaltree import Interval, IntervalTree

import hostile
import sources
from conftest import AUDIO, CSV_HEADER, labels, rising_line, musicnet_entry, score_notes, start_beat_tree, write_csv_release, write_py2_style_archive
from files import DataError
from safe_pickle import SkippedArray


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
    metadata = sources.read_metadata(source)
    assert metadata["1727"]["composer"] == "Bach" and metadata["2494"]["ensemble"] == "String Quartet"
    assert metadata["1727"]["composition"] == "Sonata, No. 1"  # quoted commas survive


@pytest.mark.parametrize("content, reason", [
    ("start,end\n1,2\n", "header"),
    (CSV_HEADER + "\n0,44100,1,C4,0,1,Quarter\n", "'C4' is not a number"),
    (CSV_HEADER + "\n0,44100,1,60.5,0,1,Quarter\n", "not a whole number"),
    (CSV_HEADER + "\n0,44100,1,60,0\n", "fields"),
    (CSV_HEADER + "\n44100,0,1,60,0,1,Quarter\n", "ends before it starts"),
    ("", "header"),
    (CSV_HEADER + "\n0,44100,1,60,0,1," + "x" * 2000 + "\n", "line 2 is longer than 1000 characters"),
    (CSV_HEADER + '\n0,44100,1,60,0,1,"Quarter\n0,1,1,60,0,1,Quarter"\n', "line 2: a quoted field runs past the end"),
    (CSV_HEADER + "\n0,44100,1,60,0,1,Quarter\n\n", "line 3 does not have the 7 fields"),
], ids=["header", "text-note", "fractional-note", "short-line", "backwards", "empty", "long-line", "open-quote", "blank-line"])
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


# ---------------------------------------------------------------- CSV files as ordinary tools write them

def as_spreadsheet_saves_it(path):
    """Rewrite a CSV file the way spreadsheet programs save one: a UTF-8 byte-order mark, CRLF, every field quoted."""
    with open(path, newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    text = io.StringIO()
    csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(rows)
    path.write_bytes(b"\xef\xbb\xbf" + text.getvalue().encode("utf-8"))


def test_csvs_with_a_byte_order_mark_crlf_and_quoted_fields_read_the_same(tmp_path):
    metadata = {"1727": ("Bach", "Solo Piano"), "2494": ("Mozart", "String Quartet")}
    for name in ("plain", "spreadsheet"):
        write_csv_release(tmp_path / name, two_scores(), test_ids=["2494"], metadata=metadata)
    for path in (tmp_path / "spreadsheet").rglob("*.csv"):
        as_spreadsheet_saves_it(path)
    assert (tmp_path / "spreadsheet" / "train_labels" / "1727.csv").read_bytes().startswith(b'\xef\xbb\xbf"start_time"')
    plain, sheet = (sources.open_source(str(tmp_path / name)) for name in ("plain", "spreadsheet"))
    assert sheet.recordings.keys() == plain.recordings.keys() and sheet.test_ids == ("2494",)
    for song_id in plain.recordings:
        notes, problem = sources.read_song(sheet, song_id)
        assert problem is None
        assert_same_notes(notes, sources.read_song(plain, song_id)[0])
    assert sources.read_metadata(sheet) == sources.read_metadata(plain)
    assert sources.read_metadata(sheet)["1727"]["composition"] == "Sonata, No. 1"


def test_label_csvs_are_read_in_chunks_with_the_same_notes_and_line_numbers(tmp_path, monkeypatch):
    notes = score_notes(*[(48 + step % 30, step * 0.5, 0.5) for step in range(11)])
    write_csv_release(tmp_path, {"0001": notes})
    path = tmp_path / "train_labels" / "0001.csv"
    whole = sources.read_csv_labels(path)
    monkeypatch.setattr(sources, "CSV_CHUNK_ROWS", 3)
    assert_same_notes(sources.read_csv_labels(path), whole)
    lines = path.read_text().splitlines()
    lines[9] = "0,44100,1,C4,0,1,Quarter"  # line 10, in the third chunk
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="line 10: note 'C4' is not a number"):
        sources.read_csv_labels(path)


def test_a_label_csv_over_the_row_limit_is_refused_without_reading_it_all(tmp_path, monkeypatch):
    hostile.label_csv(tmp_path / "big.csv", 5)
    monkeypatch.setattr(sources, "MAX_CSV_ROWS", 5)
    assert len(sources.read_csv_labels(tmp_path / "big.csv")) == 5
    monkeypatch.setattr(sources, "MAX_CSV_ROWS", 4)
    with pytest.raises(DataError, match="more than 4 rows"):
        sources.read_csv_labels(tmp_path / "big.csv")


# ---------------------------------------------------------------- metadata: read when a filter asks, problems named

def release_with_metadata(root, text):
    write_csv_release(root, two_scores())
    (root / "musicnet_metadata.csv").write_text(text)
    return sources.open_source(str(root))


def test_metadata_is_not_read_when_the_source_is_opened(tmp_path):
    source = release_with_metadata(tmp_path, "not,a,metadata,file\n")
    assert source.metadata_path == str(tmp_path / "musicnet_metadata.csv")
    assert "with musicnet_metadata.csv" in sources.describe(source)
    with pytest.raises(DataError, match=r"^metadata file .*musicnet_metadata.csv line 1: the header has no column "
                                        r"id, composer, ensemble$"):
        sources.read_metadata(source)


def test_a_huge_metadata_field_is_named_with_its_line(tmp_path):
    source = release_with_metadata(tmp_path, "id,composer,ensemble\n1727,Bach,Solo Piano\n2494,Mozart," + "x" * 200_000 + "\n")
    with pytest.raises(DataError, match="musicnet_metadata.csv line 3: field larger than field limit"):
        sources.read_metadata(source)


def test_metadata_over_the_size_limit_is_refused_before_it_is_read(tmp_path):
    source = release_with_metadata(tmp_path, "")
    with open(tmp_path / "musicnet_metadata.csv", "wb") as file:
        file.truncate(int(sources.MAX_METADATA_MB * 1e6) + 1)  # sparse: nothing written
    with pytest.raises(DataError, match=r"musicnet_metadata.csv is 2.0 MB, over the 2 MB limit"):
        sources.read_metadata(source)


def test_a_source_without_metadata_reads_as_empty(tmp_path):
    write_csv_release(tmp_path, two_scores())
    source = sources.open_source(str(tmp_path))
    assert source.metadata_path is None and sources.read_metadata(source) == {}


# ---------------------------------------------------------------- folders: links, depth, repeated names

def test_links_leading_outside_the_release_are_skipped_with_one_warning(tmp_path, capsys):
    write_csv_release(tmp_path / "elsewhere", {"9999": two_scores()["1727"]})
    write_csv_release(tmp_path / "release", two_scores())
    (tmp_path / "release" / "test_labels").rmdir()
    (tmp_path / "release" / "test_labels").symlink_to(tmp_path / "elsewhere" / "train_labels")
    (tmp_path / "release" / "train_labels" / "0001.csv").symlink_to(tmp_path / "elsewhere" / "train_labels" / "9999.csv")
    (tmp_path / "release" / "train_labels" / "0002.csv").symlink_to("1727.csv")  # inside: read
    source = sources.open_source(str(tmp_path / "release"))
    assert sorted(source.recordings) == ["0002", "1727", "2494"] and source.test_ids == ()
    warnings = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: skipped 2 of the entries in {tmp_path / 'release'}: symbolic links leading "
                        "outside it (the first: train_labels/0001.csv)"]


def test_folders_deeper_than_the_limit_are_skipped_and_counted(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sources, "MAX_FOLDER_DEPTH", 2)
    write_csv_release(tmp_path, two_scores())
    shallow = hostile.nested_folders(tmp_path / "train_labels", 2)  # train_labels/d/d: 2 deep, read
    os.rename(tmp_path / "train_labels" / "1727.csv", os.path.join(shallow, "1727.csv"))
    for name in ("e", "f"):  # train_labels/d/d/e and .../f: 3 deep, skipped
        os.mkdir(os.path.join(shallow, name))
    os.rename(tmp_path / "train_labels" / "2494.csv", os.path.join(shallow, "e", "2494.csv"))
    source = sources.open_source(str(tmp_path))
    assert sorted(source.recordings) == ["1727"]
    warnings = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: skipped 2 of the entries in {tmp_path}: folders more than 2 levels deep "
                        "(the first: train_labels/d/d/e)"]


def test_one_stem_in_two_train_subfolders_names_both_files(tmp_path):
    write_csv_release(tmp_path, two_scores())
    for folder in ("a", "b"):
        (tmp_path / "train_labels" / folder).mkdir()
        (tmp_path / "train_labels" / folder / "1727.csv").write_text(CSV_HEADER + "\n")
    os.unlink(tmp_path / "train_labels" / "1727.csv")
    with pytest.raises(DataError, match="recording 1727 has two label files: train_labels/a/1727.csv and "
                                        "train_labels/b/1727.csv"):
        sources.open_source(str(tmp_path))


def test_names_in_messages_are_escaped(tmp_path):
    path = os.path.join(os.fsdecode(tmp_path), os.fsdecode(b"odd\xff\x1b[31m.txt"))
    with open(path, "w") as file:
        file.write("hello")
    with pytest.raises(DataError, match=r"odd\\xff\\x1b\[31m\.txt is neither") as refusal:
        sources.open_source(path)
    assert str(refusal.value).isprintable()


# ------------------------------------------------------------------ the audio passed over unread


def py2_member(pitches, audio):
    """A member as Python 2 pickled MusicNet: the audio a BINSTRING (Python 2's str), labels on the measure grid."""
    data = audio.tobytes()
    intervals = [hostile.interval(step * 22050, step * 22050 + 22050, pitch, beat=(step % 4) / 4)
                 for step, pitch in enumerate(pitches)]
    return hostile.pickled(hostile.entry(hostile.call(hostile.TREE, hostile.lst(*intervals)),
                                         hostile.array(hostile.dtype("f4"), audio.shape,
                                                       b"T" + struct.pack("<i", len(data)) + data)))


def both_ways(path, song_id):
    """load_member keeping the audio and passing it over → ((audio, labels), (audio, labels))."""
    with zipfile.ZipFile(path) as archive:
        return (sources.load_member(archive, str(path), song_id),
                sources.load_member(archive, str(path), song_id, keep_audio=False))


@pytest.mark.parametrize("writer", ["np.savez", "python2", "protocol 2"])
def test_skipping_the_audio_gives_the_same_labels(tmp_path, writer):
    path, expected = tmp_path / "a.npz", rising_line(0)
    if writer == "np.savez":  # the audio is BINBYTES
        np.savez(path, **{"0001": musicnet_entry(expected, AUDIO)})
    elif writer == "protocol 2":  # Python 3's protocol 2 spells bytes as text: the reader reads it in full
        write_py2_style_archive(path, {"0001": musicnet_entry(expected, AUDIO)})
    else:
        hostile.write_archive(path, {"0001": py2_member([60, 62, 64, 65], AUDIO)})
    (audio, kept), (skipped, read) = both_ways(path, "0001")
    np.testing.assert_array_equal(audio, AUDIO)
    assert read == kept and len(read) == (4 if writer == "python2" else len(expected))
    if writer == "protocol 2":
        np.testing.assert_array_equal(skipped, AUDIO)
    else:
        assert skipped == SkippedArray((len(AUDIO),), np.dtype("<f4"))
    if writer != "python2":
        assert sorted(read) == sorted(tuple(interval) for interval in expected)


def test_damage_inside_skipped_audio_still_fails_the_crc(tmp_path):
    path = tmp_path / "a.npz"
    np.savez(path, **{"0001": musicnet_entry(rising_line(0), AUDIO)})
    data = bytearray(path.read_bytes())
    data[data.index(AUDIO[5000:5010].tobytes())] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="damaged"):
        list(sources.read_archive(path))


def test_skipped_audio_cut_short_is_refused(tmp_path):
    data = AUDIO.tobytes()
    member = hostile.pickled(hostile.entry(hostile.lst(), hostile.array(hostile.dtype("f4"), AUDIO.shape, hostile.raw(data))))
    hostile.write_archive(tmp_path / "a.npz", {"0001": member[:len(member) - 100]})
    with pytest.raises(DataError, match="cut short"):
        list(sources.read_archive(tmp_path / "a.npz"))


@pytest.mark.parametrize("where", ["label field", "dtype name", "bytes()"])
def test_a_skipped_byte_string_is_refused_anywhere_but_array_data(tmp_path, where):
    big = hostile.raw(b"x" * sources.SKIP_FROM)
    fields = hostile.tup(hostile.integer(1), hostile.integer(60), hostile.integer(0), big, hostile.text("Quarter"))
    pickles = {"label field": hostile.entry(hostile.lst(hostile.call(hostile.INTERVAL, hostile.integer(0),
                                                                     hostile.integer(10), fields))),
               "dtype name": hostile.entry(hostile.lst(), hostile.array(hostile.call(hostile.DTYPE, big), (0,), hostile.raw(b""))),
               "bytes()": hostile.entry(hostile.call(hostile.glob("__builtin__", "bytes"), big))}
    hostile.write_archive(tmp_path / "a.npz", {"0001": hostile.pickled(pickles[where])})
    with pytest.raises(DataError, match="cannot be read safely"):
        list(sources.read_archive(tmp_path / "a.npz"))


def test_a_link_to_a_folder_inside_the_data_is_not_followed_and_is_counted(tmp_path, capsys):
    write_csv_release(tmp_path, two_scores())
    (tmp_path / "train_labels" / "again").symlink_to(tmp_path / "train_labels")  # a loop, were links followed
    source = sources.open_source(str(tmp_path))
    assert sorted(source.recordings) == ["1727", "2494"]
    warnings = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: skipped 1 of the entries in {tmp_path}: symbolic links to folders, not followed "
                        "(the first: train_labels/again)"]

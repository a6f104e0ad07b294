"""Hostile and broken inputs through the real command line, each in its own process.

A crafted load runs in a subprocess so that a segfault fails the test instead
of killing pytest. Every refusal must end with exit code 2 and one line on
stderr naming the file (and member or line), with no traceback, no code run
(the marker file an attack would create stays absent) and under 2 GB of
memory; every skip must be one warning line, counted, and the run goes on.
"""
import json
import os
import re
import struct
import sys
import zipfile

import intervaltree
import numpy as np
import pytest

import hostile
import midi_io
import safe_pickle
import sources
from conftest import score_notes, write_csv_release
from files import DataError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEAK_LIMIT_MB = 2048
PROGRESS_BAR = re.compile(r"^\s*\w[\w ]*:\s+\d+%\|")  # tqdm's lines, e.g. 'preprocessing:  50%|█   | 1/2'


def run_cli(tmp_path, data_path, *extra, setup="", env=None):
    """Run classically_deep.py on data_path in a subprocess → (exit code, stdout, stderr, its peak memory in MB).
    setup: Python statements run first in that process (to lower a limit); env: its environment."""
    driver = [sys.executable, os.path.join(ROOT, "classically_deep.py")]
    if setup:
        driver = [sys.executable, "-c", f"import sys; sys.path.insert(0, {ROOT!r}); {setup}; "
                                        "import classically_deep; sys.exit(classically_deep.main())"]
    command = [*driver, f"--data_path={data_path}", f"--output_dir={tmp_path / 'out'}",
               f"--cache_dir={tmp_path / 'cache'}", *extra]
    return hostile.run_measured(command, tmp_path, env=env)


def assert_refused_in_one_line(code, err, *names):
    """Exit 2, and stderr holds one line (beside progress bars): the error, naming the file and member."""
    assert code == 2, f"exit code {code}: {err[-2000:]}"
    lines = [line for line in err.strip().splitlines() if not PROGRESS_BAR.match(line)]
    assert len(lines) == 1 and lines[0].startswith("error: "), err[-2000:]
    assert "Traceback" not in err
    assert len(lines[0]) < 400
    for name in names:
        assert name in lines[0]


@pytest.mark.parametrize("attack", hostile.ATTACKS, ids=lambda attack: attack.__name__)
def test_hostile_member_is_refused_without_running_or_crashing(tmp_path, attack):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    hostile.write_archive(path, {"0001": hostile.honest(), "0666": attack(marker)})
    code, _, err, peak = run_cli(tmp_path, path)
    assert_refused_in_one_line(code, err, "evil.npz", "'0666'")
    assert not marker.exists()
    assert peak < PEAK_LIMIT_MB
    assert not (tmp_path / "cache").exists() or not os.listdir(tmp_path / "cache")  # no cache from a refused archive


def test_a_class_patching_member_leaves_later_honest_members_intact(tmp_path):
    """In one process: a member that tries to set IntervalTree.__iter__, then an honest archive."""
    before = intervaltree.IntervalTree.__iter__
    hostile.write_archive(tmp_path / "evil.npz", {"0001": hostile.patch_tree_class(None)})
    with pytest.raises(DataError, match="'0001'"):
        list(sources.read_archive(tmp_path / "evil.npz"))
    assert intervaltree.IntervalTree.__iter__ is before
    assert "__iter__" not in vars(safe_pickle._interval_tree) and not hasattr(safe_pickle.PendingArray, "__iter__")
    hostile.write_archive(tmp_path / "good.npz", {"0002": hostile.honest()})
    (song_id, notes, problem), = sources.read_archive(tmp_path / "good.npz")
    assert problem is None and list(notes["note"]) == [60, 64]


@pytest.mark.parametrize("protocol", range(6))
def test_a_genuine_member_loads_with_every_pickle_protocol(tmp_path, protocol):
    hostile.write_archive(tmp_path / "a.npz", {"0001": hostile.honest_pickle(protocol)})
    (song_id, notes, problem), = sources.read_archive(tmp_path / "a.npz")
    assert problem is None
    assert list(notes["note"]) == [60, 64] and list(notes["instrument"]) == [1, 41]
    assert list(notes["quarters"]) == [1.0, 2.0]


# ------------------------------------------------------------------ damaged zips


def honest_archive(path, compression=zipfile.ZIP_STORED, protocol=2):
    with zipfile.ZipFile(path, "w", compression) as archive:
        archive.writestr("0001.npy", hostile.npy_member(hostile.honest_pickle(protocol)))


def patch_central_directory(path, offset, fmt, value):
    """Overwrite one field of the (only) central directory entry."""
    data = bytearray(path.read_bytes())
    start = data.rindex(b"PK\x01\x02")
    struct.pack_into(fmt, data, start + offset, value)
    path.write_bytes(bytes(data))


def test_bad_crc_is_a_one_line_error(tmp_path):
    path = tmp_path / "crc.npz"
    honest_archive(path, protocol=4)  # protocol 4 stores the audio as raw bytes
    data = bytearray(path.read_bytes())
    audio = np.linspace(-1, 1, 64).tobytes()
    data[data.index(audio) + 100] ^= 0xFF  # inside the audio: the pickle still parses, the CRC does not match
    path.write_bytes(bytes(data))
    code, _, err, _ = run_cli(tmp_path, path)
    assert_refused_in_one_line(code, err, "crc.npz", "'0001'", "damaged")


@pytest.mark.parametrize("name, offset, value, reason", [
    ("locked.npz", 8, 1, "encrypted"),        # general-purpose flags: bit 0, encrypted
    ("odd.npz", 10, 99, "compression"),       # compression method 99: unknown
], ids=["encrypted", "unknown-compression"])
def test_a_member_zip_cannot_open_is_a_one_line_error(tmp_path, name, offset, value, reason):
    path = tmp_path / name
    honest_archive(path)
    patch_central_directory(path, offset, "<H", value)
    code, _, err, _ = run_cli(tmp_path, path)
    assert_refused_in_one_line(code, err, name, "'0001'", reason)


def test_member_claiming_gigabytes_is_refused_before_reading(tmp_path):
    path = tmp_path / "bomb.npz"
    honest_archive(path, zipfile.ZIP_DEFLATED)
    patch_central_directory(path, 24, "<I", 0xFFFFFFF0)  # uncompressed size: 4 GB
    code, _, err, peak = run_cli(tmp_path, path)
    assert_refused_in_one_line(code, err, "bomb.npz", "'0001'", "MB limit")
    assert peak < PEAK_LIMIT_MB


def test_member_over_a_lowered_size_cap_is_refused(tmp_path):
    path = tmp_path / "big.npz"
    hostile.write_archive(path, {"0001": hostile.honest_pickle(4)})
    code, _, err, _ = run_cli(tmp_path, path, "--max_member_mb=0.0001")
    assert_refused_in_one_line(code, err, "big.npz", "'0001'", "--max_member_mb")


def test_deflate_stream_longer_than_declared_is_cut_and_refused(tmp_path):
    """A zip bomb that lies about its size: reading stops at the declared size and the CRC fails."""
    path = tmp_path / "liar.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("0001.npy", hostile.npy_member(hostile.honest_pickle(2)) + b"\0" * 50_000_000)
    patch_central_directory(path, 24, "<I", 1000)
    code, _, err, peak = run_cli(tmp_path, path)
    assert_refused_in_one_line(code, err, "liar.npz", "'0001'")
    assert peak < PEAK_LIMIT_MB


@pytest.mark.parametrize("damage", ["truncated", "empty", "text", "numeric_member"])
def test_files_that_are_not_archives_are_one_line_errors(tmp_path, damage):
    path = tmp_path / "x.npz"
    honest_archive(path)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "text":
        path.write_text("hello")
    else:
        np.savez(path, **{"0001": np.arange(10)})
    code, _, err, _ = run_cli(tmp_path, path)
    assert_refused_in_one_line(code, err, "x.npz")


def test_a_fifo_as_data_path_is_refused_without_hanging(tmp_path):
    path = tmp_path / "pipe.npz"
    os.mkfifo(path)
    code, _, err, _ = run_cli(tmp_path, path)
    assert_refused_in_one_line(code, err, "pipe.npz", "not a regular file")


# ------------------------------------------------------------------ CSV releases, folders and names


def songs(count):
    """count short one-voice scores {id: notes}, enough for a train / valid / test split."""
    return {f"{number:04d}": score_notes(*[(60 + (number + step) % 12, step * 0.5, 0.5) for step in range(32)])
            for number in range(count)}


def warnings_in(out):
    return [line for line in out.splitlines() if line.startswith("warning:")]


def assert_ran_with_warnings(code, out, err, *expected):
    """Exit 0 (preprocessing only), no traceback, and exactly the expected warning lines (substrings, in order)."""
    assert code == 0, f"exit code {code}: {err[-2000:]}"
    assert "Traceback" not in err
    warnings = warnings_in(out)
    assert len(warnings) == len(expected), warnings
    for line, words in zip(warnings, expected):
        assert all(word in line for word in words), line


def test_a_label_csv_over_the_row_limit_is_skipped_with_one_warning(tmp_path):
    write_csv_release(tmp_path / "release", songs(4))
    hostile.label_csv(tmp_path / "release" / "train_labels" / "9999.csv", 1001)
    code, out, err, peak = run_cli(tmp_path, tmp_path / "release", "--epochs=0",
                                   setup="import sources; sources.MAX_CSV_ROWS = 1000")
    assert_ran_with_warnings(code, out, err, ("skipped recording '9999'", "more than 1000 rows"))
    assert peak < PEAK_LIMIT_MB


def test_a_label_csv_over_the_size_limit_is_skipped_unread(tmp_path):
    write_csv_release(tmp_path / "release", songs(4))
    with open(tmp_path / "release" / "train_labels" / "9999.csv", "wb") as file:
        file.truncate(int(sources.MAX_CSV_MB * 1e6) + 1)  # sparse: nothing written
    code, out, err, _ = run_cli(tmp_path, tmp_path / "release", "--epochs=0")
    assert_ran_with_warnings(code, out, err, ("skipped recording '9999'", "over the 200 MB limit"))


@pytest.mark.parametrize("metadata, filters, refusal", [
    ("composer,ensemble\n", [], None),
    ("id,composer,ensemble\n0001,Bach," + "x" * 200_000 + "\n", [], None),
    ("composer,ensemble\n", ["--composers=Bach"], "line 1: the header has no column id"),
    ("id,composer,ensemble\n0000,Bach,Solo Piano\n0001,Bach," + "x" * 200_000 + "\n", ["--ensembles=Solo Piano"],
     "line 3: field larger than field limit"),
    ("sparse", ["--composers=Bach"], "over the 2 MB limit"),
], ids=["bad-header-unused", "huge-field-unused", "bad-header", "huge-field", "over-the-size-limit"])
def test_metadata_is_read_only_for_a_filter_and_its_problems_are_named(tmp_path, metadata, filters, refusal):
    write_csv_release(tmp_path / "release", songs(4))
    path = tmp_path / "release" / sources.METADATA_FILE
    if metadata == "sparse":
        with open(path, "wb") as file:
            file.truncate(int(sources.MAX_METADATA_MB * 1e6) + 1)
    else:
        path.write_text(metadata)
    code, out, err, _ = run_cli(tmp_path, tmp_path / "release", "--epochs=0", *filters)
    if refusal is None:
        assert_ran_with_warnings(code, out, err)
    else:
        assert_refused_in_one_line(code, err, sources.METADATA_FILE, refusal)


@pytest.mark.parametrize("kind", ["csv", "midi"])
def test_a_folder_nested_1100_deep_is_walked_without_recursion(tmp_path, kind):
    data = tmp_path / "data"
    if kind == "csv":
        write_csv_release(data, songs(4))
        top, name = data / "train_labels", "9999.csv"
    else:
        data.mkdir()
        for song_id, notes in songs(4).items():
            midi_io.notes_to_midi(notes, data / f"{song_id}.mid", bpm=120)
        top, name = data, "9999.mid"
    deepest = hostile.nested_folders(top, 1100)
    try:
        with open(os.path.join(deepest, name), "w") as file:
            file.write("never read")
        code, out, err, _ = run_cli(tmp_path, data, "--epochs=0")
    finally:
        hostile.remove_nested(top, 1100)
    assert_ran_with_warnings(code, out, err,
                             ("skipped 1 of the entries", f"folders more than {sources.MAX_FOLDER_DEPTH} levels deep"))


def test_links_to_system_files_and_folders_are_skipped(tmp_path):
    write_csv_release(tmp_path / "release", songs(4))
    (tmp_path / "release" / "test_labels").rmdir()
    (tmp_path / "release" / "test_labels").symlink_to("/etc")
    (tmp_path / "release" / "train_labels" / "9999.csv").symlink_to("/etc/passwd")
    code, out, err, _ = run_cli(tmp_path, tmp_path / "release", "--epochs=0")
    assert_ran_with_warnings(code, out, err, ("skipped 2 of the entries", "symbolic links leading outside it"))
    assert "data: 4 recordings" in out


@pytest.mark.parametrize("encoding", ["", "utf-8"], ids=["default-console", "utf-8-console"])
def test_file_names_that_are_not_text_reach_the_console_escaped(tmp_path, encoding):
    folder = tmp_path / "music"
    folder.mkdir()
    for name, notes in zip([b"bad\xff", b"esc\x1b[31mred", b"plain1", b"plain2"], songs(4).values()):
        midi_io.notes_to_midi(notes, os.path.join(os.fsdecode(folder), os.fsdecode(name + b".mid")), bpm=120)
    for name in (b"brok\xffen", b"broken\x1b[32m"):
        with open(os.path.join(os.fsencode(folder), name + b".mid"), "wb") as file:
            file.write(b"hello")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONIOENCODING"}
    code, out, err, _ = run_cli(tmp_path, folder, "--epochs=0", env={**env, "PYTHONIOENCODING": encoding} if encoding else env)
    assert_ran_with_warnings(code, out, err, ("skipped recording 'broken\\x1b[32m'", "broken\\x1b[32m.mid is not"),
                             ("skipped recording 'brok\\xffen'", "brok\\xffen.mid is not"))
    assert "\x1b" not in out + err and "\udcff" not in out + err


@pytest.mark.parametrize("encoding", ["", "utf-8"], ids=["default-console", "utf-8-console"])
def test_an_output_folder_and_soundfont_named_in_bytes_that_are_not_text_reach_console_and_report_escaped(
        tmp_path, tiny_archive, encoding):
    out = os.path.join(os.fsdecode(tmp_path), os.fsdecode(b"out\xff\x1b[31m"))
    soundfont = os.path.join(os.fsdecode(tmp_path), os.fsdecode(b"no\xff\x1b[32m.sf2"))
    command = [sys.executable, os.path.join(ROOT, "classically_deep.py"), f"--data_path={tiny_archive}",
               f"--output_dir={out}", f"--cache_dir={tmp_path / 'cache'}", f"--soundfont={soundfont}",
               "--time_base=seconds", "--steps_per_second=4", "--epochs=1", "--hidden_size=8", "--head_size=4",
               "--seq_len=8", "--batch_size=4", "--primer_frames=4", "--generate_frames=4", "--num_outputs=1"]
    env = {key: value for key, value in os.environ.items() if key != "PYTHONIOENCODING"}
    code, stdout, stderr, _ = hostile.run_measured(command, tmp_path, env={**env, "PYTHONIOENCODING": encoding} if encoding else env)
    assert code == 0, stderr[-2000:]
    assert "\x1b" not in stdout + stderr and "\udcff" not in stdout + stderr and "Traceback" not in stderr
    assert f"wrote {tmp_path}/out\\xff\\x1b[31m/report.html" in stdout
    assert "warning: no audio for generated_1: " in stdout and "no\\xff\\x1b[32m.sf2 not found" in stdout
    page = open(os.path.join(out, "report.html"), "rb").read()
    assert b"\x1b" not in page and b"out\\xff\\x1b[31m" in page
    saved = json.load(open(os.path.join(out, "settings.json")))
    assert saved["output_dir"] == out  # settings.json keeps the name losslessly (a JSON \udcff escape)

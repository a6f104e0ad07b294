"""Preprocessing at scale: epochs=0, npz members on several processes, and the reader that passes audio over unread."""
import os
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import classically_deep as cd
import hostile
import sources
from conftest import labels, musicnet_entry, write_py2_style_archive
from files import DataError
from safe_pickle import SkippedArray

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AUDIO = np.linspace(-1, 1, 20_000, dtype=np.float32)  # 80 kB: over sources.SKIP_FROM, so the reader skips it
assert AUDIO.nbytes >= sources.SKIP_FROM


def tree(number):
    """A small recording: a rising line of quarter notes starting on pitch 48 + number."""
    return labels(*((48 + number + step, step / 2, step / 2 + 0.5, "Eighth") for step in range(12)))


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


def test_epochs_zero_writes_the_cache_and_no_model(tmp_path):
    command = [sys.executable, os.path.join(ROOT, "classically_deep.py"), "--epochs=0",
               f"--output_dir={tmp_path / 'out'}", f"--cache_dir={tmp_path / 'cache'}"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(os.listdir(tmp_path / "cache")) == 1 and os.listdir(tmp_path / "cache")[0].startswith("rolls-")
    assert sorted(os.listdir(tmp_path / "out")) == ["settings.json"]  # no checkpoint, metrics or MIDI
    assert "epochs=0: preprocessing only, nothing trained" in done.stdout
    assert "labels" in done.stdout and "28 train recordings" in done.stdout


def test_reader_processes_give_the_rolls_of_one_process_for_an_npz_archive(tmp_path):
    members = {f"{2000 + number}": musicnet_entry(tree(number), AUDIO) for number in range(20)}
    members["2100"] = musicnet_entry(labels((200, 0.0, 1.0)))  # no MIDI note: skipped
    np.savez(tmp_path / "a.npz", **members)
    source = sources.open_source(str(tmp_path / "a.npz"))
    one, two = (cd.preprocess(source, cd.resolve_settings([f"--workers={n}"], cd.default_settings())) for n in (1, 2))
    assert one["ids"] == two["ids"] and len(one["ids"]) == 20
    assert one["programs"] == two["programs"] and one["skipped"] == two["skipped"] and one["skipped"][0][0] == "2100"
    assert all(a.tobytes() == b.tobytes() and a.shape == b.shape for a, b in zip(one["rolls"], two["rolls"]))


@pytest.mark.parametrize("writer", ["np.savez", "python2", "protocol 2"])
def test_skipping_the_audio_gives_the_same_labels(tmp_path, writer):
    path, expected = tmp_path / "a.npz", tree(0)
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
    np.savez(path, **{"0001": musicnet_entry(tree(0), AUDIO)})
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

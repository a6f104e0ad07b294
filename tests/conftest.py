"""Shared fixture builders: MusicNet-style labels and archives made from readable tuples."""
import io
import json
import pickle
import zipfile

import numpy as np
import pytest
from intervaltree import Interval, IntervalTree

import classically_deep as cd
import midi_io

SR = 44100  # MusicNet's sample rate


def labels(*notes, instrument=1):
    """(pitch, start_seconds, end_seconds[, note_value]) tuples → IntervalTree in MusicNet's label form."""
    tree = IntervalTree()
    for pitch, start, end, *value in notes:
        tree.add(Interval(round(start * SR), round(end * SR),
                          (instrument, pitch, int(start), start % 1.0, value[0] if value else "Quarter")))
    return tree


def musicnet_entry(tree, audio=None):
    """(audio, labels) object pair, the shape of one MusicNet archive member."""
    entry = np.empty(2, dtype=object)
    entry[0] = np.zeros(0, np.float32) if audio is None else audio
    entry[1] = tree
    return entry


def write_py2_style_archive(path, members):
    """Write {id: object} as an npz whose members are pickled with protocol 2 and Python 2 module names.

    This is how MusicNet's archive was written: an .npy header for an object array
    followed by a protocol-2 pickle (copy_reg / __builtin__ names).
    """
    with zipfile.ZipFile(path, "w") as archive:
        for song_id, obj in members.items():
            stream = io.BytesIO()
            np.lib.format.write_array_header_1_0(stream, {"descr": "|O", "fortran_order": False, "shape": (2,)})
            pickle.dump(obj, stream, protocol=2, fix_imports=True)
            archive.writestr(song_id + ".npy", stream.getvalue())


CSV_HEADER = "start_time,end_time,instrument,note,start_beat,end_beat,note_value"
VALUE_NAMES = {0.25: "Sixteenth", 0.5: "Eighth", 1.0: "Quarter", 1.5: "Dotted Quarter", 2.0: "Half", 4.0: "Whole"}


def score_notes(*notes, bpm=120.0):
    """(pitch, start_beat, beats[, instrument]) tuples at a steady tempo → NOTE_DTYPE array (samples and beats)."""
    from rolls import NOTE_DTYPE
    array = np.zeros(len(notes), NOTE_DTYPE)
    for row, (pitch, start_beat, beats, *instrument) in enumerate(notes):
        samples_per_beat = SR * 60.0 / bpm
        array[row] = (round(start_beat * samples_per_beat), round((start_beat + beats) * samples_per_beat),
                      instrument[0] if instrument else 1, pitch, np.nan, np.nan, beats, start_beat, beats, 0, 0)
    return array


def write_csv_release(root, songs, test_ids=(), metadata=None):
    """{id: NOTE_DTYPE notes} → a MusicNet CSV release folder (train_labels/, test_labels/, metadata CSV)."""
    for part in ("train_labels", "test_labels"):
        (root / part).mkdir(parents=True, exist_ok=True)
    for song_id, notes in songs.items():
        lines = [CSV_HEADER] + [f"{int(n['start'])},{int(n['end'])},{n['instrument']},{n['note']},{float(n['start_beat'])!r},"
                                f"{float(n['beats'])!r},{VALUE_NAMES.get(float(n['beats']), 'Unknown')}" for n in notes]
        part = "test_labels" if song_id in test_ids else "train_labels"
        (root / part / f"{song_id}.csv").write_text("\n".join(lines) + "\n")
    if metadata:
        rows = ["id,composer,composition,movement,ensemble,source,transcriber,catalog_name,seconds"]
        rows += [f'{song_id},{composer},"Sonata, No. 1",1. Allegro,{ensemble},CC,x,Op. 1,100'
                 for song_id, (composer, ensemble) in metadata.items()]
        (root / "musicnet_metadata.csv").write_text("\n".join(rows) + "\n")


def start_beat_tree(notes):
    """NOTE_DTYPE notes → IntervalTree in the CSV-derived npz form: (instrument, note, start_beat, end_beat, note_value)."""
    return IntervalTree(Interval(int(n["start"]), int(n["end"]),
                                 (int(n["instrument"]), int(n["note"]), float(n["start_beat"]), float(n["beats"]),
                                  VALUE_NAMES.get(float(n["beats"]), "Unknown"))) for n in notes)


def timed_messages(path):
    """(message, absolute tick) for every message of every track of a MIDI file."""
    import mido
    for track in mido.MidiFile(path).tracks:
        tick = 0
        for message in track:
            tick += message.time
            yield message, tick


def chord_song(root, bars):
    """A tiny archive song: one three-note chord per half second, rising by fifths."""
    notes = []
    for step in range(bars * 4):
        pitch = 48 + (root + 7 * step) % 12
        notes += [(pitch + offset, step * 0.5, step * 0.5 + 0.5) for offset in (0, 4, 7)]
    return labels(*notes, instrument=41)


@pytest.fixture(scope="module")
def tiny_archive(tmp_path_factory):
    """A small archive of chord songs (and one empty recording, 0099) → its path."""
    path = tmp_path_factory.mktemp("archive") / "tiny.npz"
    np.savez(path, **{f"{i:04d}": musicnet_entry(chord_song(i, 6)) for i in range(8)},
             **{"0099": musicnet_entry(IntervalTree())})
    return path


def quick_args(data, tmp_path, *extra):
    """Arguments for a run on the tiny archive with everything under tmp_path, plus extra ones."""
    return [f"--data_path={data}", f"--output_dir={tmp_path / 'out'}", f"--cache_dir={tmp_path / 'cache'}",
            "--time_base=seconds", "--steps_per_second=4", *extra]


def refused(capsys, args):
    """Run the command line → its one-line error (asserting exit status 2 and nothing else on stderr)."""
    code = cd.main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


def corpus():
    """Eight little pieces: chords rising by fifths with a moving top voice, two programs, at two tempi."""
    pieces = {}
    for number in range(8):
        notes = []
        for step in range(12):
            root = 48 + (number + 7 * step) % 12
            notes += [(root, step, 1.0), (root + 4, step, 1.0), (root + 7, step, 0.5, 41), (root + 12, step + 0.5, 0.5, 41)]
        pieces[f"{1000 + number}"] = score_notes(*notes, bpm=120.0 if number % 2 else 100.0)
    return pieces


def bpm_of(notes):
    """The steady tempo score_notes wrote these notes at."""
    return round(44100 * 60 / (notes["end"][0] - notes["start"][0]) * notes["beats"][0])


def write_three_ways(folder, pieces, test_ids):
    """The same notes as a CSV-built npz, a CSV release and a MIDI folder, plus one split file → paths."""
    np.savez(folder / "corpus.npz", **{song_id: musicnet_entry(start_beat_tree(notes)) for song_id, notes in pieces.items()})
    write_csv_release(folder / "release", pieces, test_ids=test_ids)
    (folder / "midi" / "pieces").mkdir(parents=True)
    for song_id, notes in pieces.items():
        midi_io.notes_to_midi(notes, folder / "midi" / "pieces" / f"{song_id}.mid", bpm=bpm_of(notes))
    ids = sorted(pieces)
    split = {"train": [i for i in ids if i not in test_ids][:-1], "valid": [i for i in ids if i not in test_ids][-1:],
             "test": list(test_ids)}
    (folder / "split.json").write_text(json.dumps(split))
    return {"npz": folder / "corpus.npz", "csv": folder / "release", "midi": folder / "midi"}, folder / "split.json"


@pytest.fixture(scope="module")
def three_ways(tmp_path_factory):
    folder = tmp_path_factory.mktemp("three")
    return write_three_ways(folder, corpus(), test_ids=["1006", "1007"])


AUDIO = np.linspace(-1, 1, 20_000, dtype=np.float32)  # 80 kB: over sources.SKIP_FROM, so the reader skips it


def rising_line(number):
    """A small recording: a rising line of eighth-note labels starting on pitch 48 + number."""
    return labels(*((48 + number + step, step / 2, step / 2 + 0.5, "Eighth") for step in range(12)))

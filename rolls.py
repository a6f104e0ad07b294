"""MusicNet labels → piano rolls, with no TensorFlow anywhere in the path.

Reads a MusicNet-format archive one recording at a time through a restricted
unpickler, turns each recording's labels into a `(frames, keys)` bool piano
roll, and keeps the rolls in a plain (pickle-free) npz cache named by a hash of
the settings that produced it.

    from rolls import read_archive, organize_song
    for song_id, labels in read_archive("data/sample.npz"):
        roll = organize_song(labels, steps_per_second=8.0)   # (frames, 88) bool
"""
import hashlib
import io
import json
import os
import pickle
import tempfile
import zipfile

import numpy as np
from tqdm import tqdm

SAMPLE_RATE = 44100  # MusicNet's label clock: samples per second

# One note per row, in the sample clock of the labels. Fields a source does not
# carry are NaN (start_beat / beats come only from the CSV release).
NOTE_DTYPE = np.dtype([
    ("start", "f8"),       # onset, samples at SAMPLE_RATE
    ("end", "f8"),         # offset, samples at SAMPLE_RATE
    ("instrument", "i2"),  # 1-based MIDI program
    ("note", "i2"),        # MIDI pitch
    ("measure", "f8"),     # bar number of the onset
    ("beat", "f8"),        # onset inside its bar, fraction of the bar in [0, 1)
    ("quarters", "f8"),    # written duration in quarter notes (NaN: 'Unknown')
    ("start_beat", "f8"),  # onset in beats from the piece's start (CSV release)
    ("beats", "f8"),       # duration in beats (the CSV release's 'end_beat')
])

_BASE_VALUES = {"Sixty Fourth": 1 / 16, "Thirty Second": 1 / 8, "Sixteenth": 1 / 4,
                "Eighth": 1 / 2, "Quarter": 1.0, "Half": 2.0, "Whole": 4.0}


class DataError(Exception):
    """A data file or label set that cannot be used; the message is for the user."""


# ---------------------------------------------------------------- reading archives

# The only globals a MusicNet archive may name (Python 2 names mapped first).
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
    ("intervaltree.intervaltree", "IntervalTree"), ("intervaltree.interval", "Interval"),
    ("copyreg", "_reconstructor"), ("_codecs", "encode"),
    ("builtins", "object"), ("builtins", "set"), ("builtins", "frozenset"),
    ("builtins", "list"), ("builtins", "tuple"), ("builtins", "dict"), ("builtins", "bytes"), ("builtins", "bytearray"),
}
_RENAMED_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg",
                    "numpy.core.multiarray": "numpy._core.multiarray"}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that builds only numpy arrays, intervaltree objects and builtin containers."""

    def find_class(self, module, name):
        module = _RENAMED_MODULES.get(module, module)
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}")
        return super().find_class(module, name)


def load_member(raw, name):
    """Bytes of one .npy archive member → the object it holds, never running code from it."""
    stream = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(stream)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}[version]
        shape, fortran, dtype = read_header(stream)
        if not dtype.hasobject:
            stream.seek(0)
            return np.lib.format.read_array(stream, allow_pickle=False)
        return RestrictedUnpickler(stream, encoding="latin1").load()
    except Exception as err:  # any malformed or hostile member
        raise DataError(f"archive member '{name}' cannot be read safely: {err}") from None


def archive_ids(path):
    """Recording ids in a MusicNet-format npz archive, sorted."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile) as err:
        raise DataError(f"{path} is not a readable MusicNet npz archive ({err})") from None
    return sorted(name[:-4] for name in names if name.endswith(".npy"))


def read_archive(path, ids=None):
    """Yield (id, labels) for each recording of a MusicNet npz, one at a time."""
    with zipfile.ZipFile(path) as archive:
        for song_id in ids if ids is not None else archive_ids(path):
            entry = load_member(archive.read(song_id + ".npy"), song_id)
            if not (isinstance(entry, np.ndarray) and entry.dtype == object and entry.shape == (2,)):
                raise DataError(f"archive member '{song_id}' is not an (audio, labels) pair")
            yield song_id, entry[1]


# ------------------------------------------------------------------ labels → notes

def quarters_from_name(note_value):
    """MusicNet note-value name ('Dotted Quarter', b'Eighth') → quarter notes; NaN if unknown."""
    if isinstance(note_value, bytes):
        note_value = note_value.decode("latin1")
    name, scale = str(note_value).strip(), 1.0
    for prefix, factor in (("Dotted ", 1.5), ("Triplet ", 2 / 3)):
        if name.startswith(prefix):
            name, scale = name[len(prefix):], factor
    return _BASE_VALUES.get(name, np.nan) * scale


def labels_to_notes(labels):
    """IntervalTree / iterable of Interval(start, end, (instrument, note, measure, beat, note_value)) → NOTE_DTYPE array."""
    if isinstance(labels, np.ndarray) and labels.dtype == NOTE_DTYPE:
        return labels
    rows = []
    for interval in labels:
        try:
            instrument, note, measure, beat, note_value = interval[2]
            rows.append((interval[0], interval[1], instrument, note, measure, beat,
                         quarters_from_name(note_value), np.nan, np.nan))
        except (TypeError, ValueError, IndexError):
            raise DataError(f"label {interval!r} is not (start, end, (instrument, note, measure, beat, note_value))") from None
    notes = np.array(rows, dtype=NOTE_DTYPE)
    return notes[np.lexsort((notes["note"], notes["start"]))]


# ------------------------------------------------------------------ notes → rolls

def roll_from_spans(start_frames, end_frames, keys, num_keys, num_frames=0):
    """Note spans in frame units → (frames, num_keys) bool roll.

    Frame k is the instant k: a note sounds in frame k when start <= k < end.
    A note containing no such instant sounds in the frame nearest its middle.
    The roll has max(num_frames, ceil(max end)) frames.
    """
    eps = 1e-6  # absorbs float error in the frame positions
    extent = int(np.ceil(end_frames.max() - eps)) if len(end_frames) else 0
    first = np.ceil(start_frames - eps).astype(np.int64)
    stop = np.ceil(end_frames - eps).astype(np.int64)
    short = stop <= first
    nearest = np.floor((start_frames + end_frames) / 2 + 0.5).astype(np.int64)
    first = np.where(short, np.minimum(nearest, extent - 1), first)
    stop = np.where(short, first + 1, stop)
    edges = np.zeros((max(num_frames, extent) + 1, num_keys), np.int32)
    np.add.at(edges, (first, keys), 1)
    np.add.at(edges, (stop, keys), -1)
    return np.cumsum(edges[:-1], axis=0) > 0


def weighted_median(values, weights):
    """The value below which half the total weight lies."""
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return values[order][np.searchsorted(cumulative, cumulative[-1] / 2)]


def performed_bars(notes):
    """Notes → (onset times in samples, each note's index into them, bar position at each onset time, bars per sample).

    Bar position is measure + beat (MusicNet's beat is the fraction of the bar),
    made to move only forward as the performance does: a jump back of a bar or
    more (a repeat) or far beyond what the elapsed time allows (a skip, a da
    capo) becomes the elapsed time at the piece's typical tempo; smaller
    backward wobbles (label noise, parts out of step) are held flat.
    """
    clock, group = np.unique(notes["start"], return_inverse=True)
    bar_at = np.bincount(group, weights=notes["measure"] + notes["beat"]) / np.bincount(group)
    steps, gaps = np.diff(bar_at), np.diff(clock)
    forward = steps > 0
    if not forward.any():
        raise DataError("labels have no usable measure/beat data for time_base='beats'")
    rate = weighted_median(steps[forward] / gaps[forward], gaps[forward])  # near-simultaneous onsets weigh little
    expected = gaps * rate
    jumps = (steps <= -1) | (steps > expected + np.maximum(1.0, expected))
    unwrapped = bar_at[0] + np.concatenate([[0.0], np.cumsum(np.where(jumps, expected, steps))])
    return clock, group, np.maximum.accumulate(unwrapped), rate


def beat_positions(notes):
    """Notes → (onsets, offsets) in quarter-note beats from the first bar line.

    Uses the CSV release's start_beat / beats when present; otherwise the
    archive's measure and beat fields through performed_bars: offsets in bars
    come from interpolating bar position over the sample clock, and the bar's
    length in quarters is the median ratio of written durations to durations
    in bars (snapped to half quarters).
    """
    if not np.isnan(notes["start_beat"]).any():
        return notes["start_beat"], notes["start_beat"] + notes["beats"]
    clock, group, position, rate = performed_bars(notes)
    onsets = position[group]
    offsets = np.where(notes["end"] <= clock[-1], np.interp(notes["end"], clock, position),
                       position[-1] + (notes["end"] - clock[-1]) * rate)
    lengths = offsets - onsets
    known = ~np.isnan(notes["quarters"]) & (lengths > 0)
    per_bar = np.median(notes["quarters"][known] / lengths[known]) if known.any() else 4.0
    per_bar = max(0.5, round(per_bar * 2) / 2)
    origin = np.floor(onsets.min() * per_bar)
    return onsets * per_bar - origin, offsets * per_bar - origin


def organize_song(labels, *, lowest_note=21, highest_note=108, time_base="seconds",
                  steps_per_second=8.0, steps_per_beat=4, sample_rate=SAMPLE_RATE, **_):
    """One recording's labels → (frames, highest_note - lowest_note + 1) bool piano roll.

    time_base 'seconds': frame k is the instant k / steps_per_second seconds;
    'beats': frame k is k / steps_per_beat quarter-note beats from the first bar.
    Notes outside lowest_note..highest_note (MIDI) are dropped. Extra keyword
    settings are ignored, so `organize_song(labels, **settings)` works.
    """
    notes = labels_to_notes(labels)
    num_keys = highest_note - lowest_note + 1
    if len(notes) == 0:
        return np.zeros((0, num_keys), bool)
    if time_base == "seconds":
        starts = notes["start"] * steps_per_second / sample_rate
        ends = notes["end"] * steps_per_second / sample_rate
    elif time_base == "beats":
        onsets, offsets = beat_positions(notes)
        starts, ends = onsets * steps_per_beat, offsets * steps_per_beat
    else:
        raise DataError(f"time_base must be 'seconds' or 'beats', not {time_base!r}")
    inside = (notes["note"] >= lowest_note) & (notes["note"] <= highest_note)
    return roll_from_spans(starts[inside], ends[inside], notes["note"][inside] - lowest_note, num_keys,
                           num_frames=int(np.ceil(ends.max() - 1e-6)))  # dropped notes still set the length


def main_program(notes):
    """Most common 1-based MIDI program among the notes (1, piano, if none)."""
    if len(notes) == 0:
        return 1
    values, counts = np.unique(notes["instrument"], return_counts=True)
    return int(values[np.argmax(counts)])


# ------------------------------------------------------------------ roll cache

ROLL_FORMAT = 2  # bump whenever organize_song changes what it makes, so old caches are not reused
ROLL_SETTINGS = ("lowest_note", "highest_note", "time_base", "steps_per_second", "steps_per_beat")


def cache_path(data_path, cache_dir, settings):
    """Path of the roll cache for this archive (identified by path, size, mtime) and these settings."""
    stat = os.stat(data_path)
    used = {name: settings[name] for name in ROLL_SETTINGS}
    used.pop("steps_per_beat" if settings["time_base"] == "seconds" else "steps_per_second")
    key = json.dumps({"data": os.path.abspath(data_path), "size": stat.st_size,
                      "mtime_ns": stat.st_mtime_ns, "format": ROLL_FORMAT, **used}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return os.path.join(cache_dir, f"rolls-{digest}.npz")


def build_rolls(data_path, settings):
    """Preprocess every recording of an archive → {'ids', 'rolls' (list of bool arrays), 'programs'}."""
    ids = archive_ids(data_path)
    rolls, programs = [], []
    for song_id, labels in tqdm(read_archive(data_path, ids), total=len(ids), desc="preprocessing", unit="song"):
        try:
            notes = labels_to_notes(labels)
            rolls.append(organize_song(notes, **settings))
        except DataError as err:
            raise DataError(f"recording '{song_id}': {err}") from None
        programs.append(main_program(notes))
    return {"ids": ids, "rolls": rolls, "programs": programs}


def save_rolls(path, songs):
    """Write songs to a pickle-free npz: packed bits, frame offsets, ids, programs (atomic)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    lengths = np.array([len(roll) for roll in songs["rolls"]], np.int64)
    frames = np.concatenate(songs["rolls"]) if songs["rolls"] else np.zeros((0, 0), bool)
    handle, temp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", suffix=".tmp")
    with os.fdopen(handle, "wb") as file:
        np.savez(file, ids=np.array(songs["ids"], dtype=str), lengths=lengths,
                 num_keys=np.int64(frames.shape[1]), packed=np.packbits(frames, axis=1),
                 programs=np.array(songs["programs"], np.int16))
    os.replace(temp, path)


def load_rolls(path):
    """Read a cache written by save_rolls → the same dict of ids, rolls, programs."""
    try:
        with np.load(path, allow_pickle=False) as cache:
            frames = np.unpackbits(cache["packed"], axis=1, count=int(cache["num_keys"])).astype(bool)
            bounds = np.cumsum(cache["lengths"])[:-1]
            return {"ids": [str(song_id) for song_id in cache["ids"]],
                    "rolls": np.split(frames, bounds) if len(cache["lengths"]) else [],
                    "programs": [int(program) for program in cache["programs"]]}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise DataError(f"roll cache {path} is damaged ({err}); delete it or run with --save_mode=True") from None


def load_or_build_rolls(data_path, cache_dir, save_mode, settings):
    """Rolls for an archive: 'auto' uses a matching cache or builds one; True rebuilds; False only loads."""
    path = cache_path(data_path, cache_dir, settings)
    if save_mode is False or (save_mode == "auto" and os.path.exists(path)):
        if not os.path.exists(path):
            raise DataError(f"no roll cache matches these settings ({path}); run with --save_mode=True or auto")
        print(f"using roll cache {path}")
        return load_rolls(path)
    songs = build_rolls(data_path, settings)
    save_rolls(path, songs)
    print(f"built roll cache {path}")
    return songs

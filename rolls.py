"""Notes → piano rolls on the seconds or beat grid, and the roll cache; no TensorFlow anywhere in the path.

Turns one recording's notes (the NOTE_DTYPE form every reader in `sources`
produces) into a `(frames, keys)` bool piano roll, and keeps rolls in a plain
(pickle-free) npz cache named by a hash of what produced them.

    from sources import read_archive
    from rolls import organize_song
    for song_id, notes, problem in read_archive("data/sample.npz"):
        roll = organize_song(notes, steps_per_second=8.0)   # (frames, 88) bool
"""
import hashlib
import json
import os
import zipfile

import numpy as np

from files import DataError, atomic_write

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

class BadRecording(DataError):
    """One recording's notes cannot be used (NaN times, impossible pitches...); the run skips it."""


def check_notes(notes):
    """Raise BadRecording naming the first problem in a NOTE_DTYPE array; return it unchanged if usable."""
    starts, ends = notes["start"], notes["end"]
    problems = [
        (~np.isfinite(starts) | ~np.isfinite(ends), "a start or end time that is not a finite number"),
        (starts < 0, "a negative start time"),
        (ends < starts, "a note that ends before it starts"),
        ((notes["note"] < 0) | (notes["note"] > 127), "a note outside MIDI 0-127"),
        ((notes["instrument"] < 0) | (notes["instrument"] > 128), "an instrument outside MIDI programs 1-128"),
    ]
    for bad, reason in problems:
        if bad.any():
            first = int(np.argmax(bad))
            raise BadRecording(f"{reason} (label {first} of {len(notes)})")
    return notes


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


def organize_song(notes, *, lowest_note=21, highest_note=108, time_base="seconds",
                  steps_per_second=8.0, steps_per_beat=4, sample_rate=SAMPLE_RATE, **_):
    """One recording's NOTE_DTYPE notes → (frames, highest_note - lowest_note + 1) bool piano roll.

    time_base 'seconds': frame k is the instant k / steps_per_second seconds;
    'beats': frame k is k / steps_per_beat quarter-note beats from the first bar.
    Notes outside lowest_note..highest_note (MIDI) are dropped. Extra keyword
    settings are ignored, so `organize_song(notes, **settings)` works.
    """
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

ROLL_FORMAT = 3  # bump whenever organize_song changes what it makes, so old caches are not reused
ROLL_SETTINGS = ("lowest_note", "highest_note", "time_base", "steps_per_second", "steps_per_beat")


def cache_path(fingerprint, cache_dir, settings):
    """Path of the roll cache for a data source (its fingerprint: files, sizes, mtimes) and these settings."""
    used = {name: settings[name] for name in ROLL_SETTINGS}
    used.pop("steps_per_beat" if settings["time_base"] == "seconds" else "steps_per_second")
    key = json.dumps({"data": fingerprint, "format": ROLL_FORMAT, **used}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return os.path.join(cache_dir, f"rolls-{digest}.npz")


def save_rolls(path, songs):
    """Write songs to a pickle-free npz (atomic): packed bits, frame offsets, ids, programs, skipped ids and reasons."""
    lengths = np.array([len(roll) for roll in songs["rolls"]], np.int64)
    frames = np.concatenate(songs["rolls"]) if songs["rolls"] else np.zeros((0, 0), bool)
    with atomic_write(path) as file:
        np.savez(file, ids=np.array(songs["ids"], dtype=str), lengths=lengths,
                 num_keys=np.int64(frames.shape[1]), packed=np.packbits(frames, axis=1),
                 programs=np.array(songs["programs"], np.int16),
                 skipped=np.array(songs["skipped"], dtype=str).reshape(-1, 2))


def load_rolls(path):
    """Read a cache written by save_rolls → the same dict of ids, rolls, programs."""
    try:
        with np.load(path, allow_pickle=False) as cache:
            frames = np.unpackbits(cache["packed"], axis=1, count=int(cache["num_keys"])).astype(bool)
            bounds = np.cumsum(cache["lengths"])[:-1]
            return {"ids": [str(song_id) for song_id in cache["ids"]],
                    "rolls": np.split(frames, bounds) if len(cache["lengths"]) else [],
                    "programs": [int(program) for program in cache["programs"]],
                    "skipped": [(str(song_id), str(reason)) for song_id, reason in cache["skipped"]]}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise DataError(f"roll cache {path} is damaged ({err}); delete it or run with --save_mode=True") from None

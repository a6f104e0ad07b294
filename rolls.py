"""Notes ↔ piano rolls on the seconds or beat grid; no TensorFlow anywhere in the path.

Turns one recording's notes (the NOTE_DTYPE form every reader in `sources`
produces) into a `(frames, keys)` bool piano roll, and a roll back into notes.
The roll cache lives in `songs`.

    from sources import read_archive
    from rolls import organize_song
    for song_id, notes, problem in read_archive("data/sample.npz"):
        roll = organize_song(notes, steps_per_second=8.0)   # (frames, 88) bool
"""
import numpy as np

from files import DataError

SAMPLE_RATE = 44100  # MusicNet's label clock: samples per second
MAX_FRAMES = 1_000_000  # default cap on one roll's frames: a 30-minute recording has ~15,000-30,000
MAX_TIME = 2.0 ** 53  # largest time, in samples, bars or beats, a note may have: float64 counts whole units up to here

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


def _first_problem(problems, count):
    """Raise BadRecording for the first (bad mask, reason) pair with a True entry, naming the label."""
    for bad, reason in problems:
        if bad.any():
            first = int(np.argmax(bad))
            raise BadRecording(f"{reason} (label {first} of {count})")


def check_notes(notes):
    """Raise BadRecording naming the first problem in a NOTE_DTYPE array; return it unchanged if usable."""
    starts, ends = notes["start"], notes["end"]
    _first_problem([
        (~np.isfinite(starts) | ~np.isfinite(ends), "a start or end time that is not a finite number"),
        (starts < 0, "a negative start time"),
        (ends < starts, "a note that ends before it starts"),
        (ends > MAX_TIME, "an end time beyond 2**53 samples"),
        ((notes["note"] < 0) | (notes["note"] > 127), "a note outside MIDI 0-127"),
        ((notes["instrument"] < 0) | (notes["instrument"] > 128), "an instrument outside MIDI programs 1-128"),
    ], len(notes))
    return notes


# ------------------------------------------------------------------ notes → rolls

def roll_to_notes(roll):
    """(frames, keys) bool roll → (key, start_frame, end_frame) int arrays, held frames merged into one note,
    sorted by key and then time (a note repeated in consecutive frames reads as one held note)."""
    roll = np.asarray(roll, bool)
    if roll.ndim != 2:
        raise ValueError(f"a roll must be a (frames, keys) array, not shape {roll.shape}")
    changes = np.diff(np.pad(roll.astype(np.int8), ((1, 1), (0, 0))), axis=0)
    on_key, on_frame = np.nonzero(changes.T == 1)    # key-major order: a key's notes in time order
    off_key, off_frame = np.nonzero(changes.T == -1)
    return on_key, on_frame, off_frame


def roll_from_spans(start_frames, end_frames, keys, num_keys, num_frames=0, max_frames=MAX_FRAMES):
    """Note spans in frame units → (frames, num_keys) bool roll.

    Frame k is the instant k: a note sounds in frame k when start <= k < end.
    A note containing no such instant sounds in the frame nearest its middle
    (a tie goes to the later frame), clipped to the last frame. The roll has
    max(num_frames, ceil(max end)) frames; anything before frame 0 is cut off.
    Raises BadRecording, before allocating the roll, for times that are not
    finite, keys outside 0..num_keys-1 or more than max_frames frames.
    """
    start_frames, end_frames = np.asarray(start_frames, float), np.asarray(end_frames, float)
    keys = np.asarray(keys, np.int64)
    if not (np.isfinite(start_frames).all() and np.isfinite(end_frames).all()):
        raise BadRecording("a note time that is not a finite number of frames")
    if len(keys) and (keys.min() < 0 or keys.max() >= num_keys):
        raise BadRecording(f"a key outside 0-{num_keys - 1}")
    eps = 1e-6  # absorbs float error in the frame positions
    length = max(num_frames, np.ceil(end_frames.max() - eps) if len(end_frames) else 0, 0)
    if length > max_frames:
        raise BadRecording(f"would have {length:.0f} frames, over max_frames={max_frames} "
                           "(times far too long for music, or raise --max_frames)")
    length = int(length)
    low, high = -1.0, length + 1.0  # a position beyond these is off the roll either way; clipping keeps the casts safe
    first = np.ceil(np.clip(start_frames, low, high) - eps).astype(np.int64)
    stop = np.ceil(np.clip(end_frames, low, high) - eps).astype(np.int64)
    nearest = np.floor(np.clip(start_frames / 2 + end_frames / 2, low, high) + 0.5 + eps).astype(np.int64)
    short = stop <= first
    first = np.where(short, np.minimum(nearest, length - 1), first)
    stop = np.where(short, first + 1, stop)
    first, stop = np.maximum(first, 0), np.clip(stop, 0, length)  # a span wholly before frame 0 becomes empty
    edges = np.zeros((length + 1) * num_keys, np.int32)  # +1 where a note starts, -1 where it stops, then summed
    for frames, step in ((first, 1), (stop, -1)):
        cells, counts = np.unique(frames * num_keys + keys, return_counts=True)
        edges[cells] += step * counts.astype(np.int32)
    edges = np.cumsum(edges.reshape(length + 1, num_keys), axis=0, out=edges.reshape(length + 1, num_keys))
    return edges[:-1] > 0


def pitch_class_fold(num_keys):
    """(keys, 12) float32 matrix summing the keys of each pitch class (key 0 counts as pitch class 0)."""
    return np.eye(12, dtype=np.float32)[np.arange(num_keys) % 12]


def most_keys_on(songs):
    """The most keys on in any one frame of a list of (frames, keys) rolls (0 for none)."""
    return max((int(roll.sum(axis=1).max()) for roll in songs if len(roll)), default=0)


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
    backward wobbles (label noise, parts out of step) are held flat. Raises
    BadRecording for bar data that is not finite or gives no usable tempo.
    """
    measure, beat = notes["measure"], notes["beat"]
    _first_problem([
        (~np.isfinite(measure) | ~np.isfinite(beat), "a measure or beat that is not a finite number"),
        ((np.abs(measure) > MAX_TIME) | (np.abs(beat) > MAX_TIME), "a measure or beat beyond 2**53"),
    ], len(notes))
    clock, group = np.unique(notes["start"], return_inverse=True)
    bar_at = np.bincount(group, weights=measure + beat) / np.bincount(group)
    steps, gaps = np.diff(bar_at), np.diff(clock)
    forward = steps > 0
    if not forward.any():
        raise BadRecording("labels have no usable measure/beat data for time_base='beats'")
    with np.errstate(over="ignore"):  # onsets a hair apart give huge rates: outvoted by the median or refused below
        rates = steps[forward] / gaps[forward]
    rate = weighted_median(rates, gaps[forward])  # near-simultaneous onsets weigh little
    if not 0 < rate <= 1:
        raise BadRecording(f"the measure/beat data give a tempo of {rate:g} bars per sample")
    expected = gaps * rate
    jumps = (steps <= -1) | (steps > expected + np.maximum(1.0, expected))
    unwrapped = bar_at[0] + np.concatenate([[0.0], np.cumsum(np.where(jumps, expected, steps))])
    return clock, group, np.maximum.accumulate(unwrapped), rate


def beat_positions(notes):
    """Notes → (onsets, offsets) in quarter-note beats from the first bar line, never negative.

    Uses the CSV release's start_beat / beats when any note has them; otherwise the
    archive's measure and beat fields through performed_bars: offsets in bars
    come from interpolating bar position over the sample clock, and the bar's
    length in quarters is the median ratio of written durations to durations
    in bars (snapped to half quarters). Raises BadRecording for unusable beat data.
    """
    if not np.isnan(notes["start_beat"]).all():
        onsets, lengths = notes["start_beat"], notes["beats"]
        _first_problem([
            (~np.isfinite(onsets) | ~np.isfinite(lengths), "a start_beat or beats value that is not a finite number"),
            (onsets < 0, "a negative start_beat"),
            (lengths < 0, "a note that ends before it starts (negative beats)"),
            ((onsets > MAX_TIME) | (lengths > MAX_TIME), "a start_beat or beats value beyond 2**53"),
        ], len(notes))
        return onsets, onsets + lengths
    clock, group, position, rate = performed_bars(notes)
    onsets = position[group]
    offsets = np.where(notes["end"] <= clock[-1], np.interp(notes["end"], clock, position),
                       position[-1] + (notes["end"] - clock[-1]) * rate)
    lengths, quarters = offsets - onsets, notes["quarters"]
    known = (quarters > 0) & (quarters <= MAX_TIME) & (lengths > 1e-6)  # a millionth of a bar says nothing of its length
    per_bar = np.median(quarters[known] / lengths[known]) if known.any() else 4.0
    per_bar = max(0.5, round(per_bar * 2) / 2)
    origin = np.floor(onsets.min() * per_bar)
    return onsets * per_bar - origin, offsets * per_bar - origin


def organize_song(notes, *, lowest_note=21, highest_note=108, time_base="seconds", steps_per_second=8.0,
                  steps_per_beat=4, sample_rate=SAMPLE_RATE, max_frames=MAX_FRAMES, **_):
    """One recording's NOTE_DTYPE notes → (frames, highest_note - lowest_note + 1) bool piano roll.

    time_base 'seconds': frame k is the instant k / steps_per_second seconds;
    'beats': frame k is k / steps_per_beat quarter-note beats from the first bar.
    Notes outside lowest_note..highest_note (MIDI) are dropped but still set
    the length. Raises BadRecording, before building the roll, when the notes
    cannot be used or the roll would have over max_frames frames; DataError
    for unusable settings. Extra keyword settings are ignored, so
    `organize_song(notes, **settings)` works.
    """
    if time_base not in ("seconds", "beats"):
        raise DataError(f"time_base must be 'seconds' or 'beats', not {time_base!r}")
    rates = {"steps_per_second": steps_per_second, "sample_rate": sample_rate} if time_base == "seconds" else \
        {"steps_per_beat": steps_per_beat}
    for name, value in rates.items():
        if not (np.isfinite(value) and value > 0):
            raise DataError(f"{name} must be a positive number, not {value!r}")
    if not 0 <= lowest_note <= highest_note <= 127:
        raise DataError(f"need 0 <= lowest_note <= highest_note <= 127, not {lowest_note} and {highest_note}")
    num_keys = highest_note - lowest_note + 1
    check_notes(notes)
    if len(notes) == 0:
        return np.zeros((0, num_keys), bool)
    if time_base == "seconds":
        starts = notes["start"] * steps_per_second / sample_rate
        ends = notes["end"] * steps_per_second / sample_rate
    else:
        onsets, offsets = beat_positions(notes)
        starts, ends = onsets * steps_per_beat, offsets * steps_per_beat
    inside = (notes["note"] >= lowest_note) & (notes["note"] <= highest_note)
    return roll_from_spans(starts[inside], ends[inside], notes["note"][inside] - lowest_note, num_keys,
                           num_frames=np.ceil(ends.max() - 1e-6), max_frames=max_frames)  # dropped notes set the length too

def main_program(notes):
    """Most common 1-based MIDI program among the notes (1, piano, if none is in 1-128)."""
    programs = notes["instrument"][(notes["instrument"] >= 1) & (notes["instrument"] <= 128)]
    if len(programs) == 0:
        return 1
    values, counts = np.unique(programs, return_counts=True)
    return int(values[np.argmax(counts)])

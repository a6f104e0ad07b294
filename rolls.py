"""Notes ↔ piano rolls on the seconds or beat grid; no TensorFlow anywhere in the path.

Turns one recording's notes (the NOTE_DTYPE form every reader in `sources`
produces) into a Song: the `(frames, keys)` bool piano roll of the keys
sounding, the keys struck in each frame (onsets), and where each frame lies in
its bar (meter, on the beat grid where the notes carry bars); and a Song back
into notes. The roll cache lives in `songs`.

    from sources import read_archive
    from rolls import organize_song
    for song_id, notes, problem in read_archive("data/sample.npz"):
        song = organize_song(notes, time_base="beats")   # song.roll, song.onsets: (frames, 88) bool; song.meter: (frames, 4)
"""
import numpy as np

from files import DataError

SAMPLE_RATE = 44100  # MusicNet's label clock: samples per second
MAX_FRAMES = 1_000_000  # default cap on one roll's frames: a 30-minute recording has ~15,000-30,000
MAX_TIME = 2.0 ** 53  # largest time, in samples, bars or beats, a note may have: float64 counts whole units up to here

# One note per row, in the sample clock of the labels. Fields a source does not
# carry are NaN (start_beat / beats: the CSV release and MIDI files; measure /
# beat: the archive and MIDI files), the time signature 0 (MIDI files only).
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
    ("numerator", "i2"),   # time signature of the onset's bar: beats in the bar (0: unknown)
    ("denominator", "i2"), # time signature of the onset's bar: the beat's note value, 4 a quarter (0: unknown)
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
        ((notes["numerator"] < 0) | (notes["denominator"] < 0), "a time signature below 0"),
    ], len(notes))
    return notes


# ------------------------------------------------------------------ songs: what sounds, what is struck, the bar

UNKNOWN_METER = (-1, 0, 0, 0)  # a frame's meter where the source gives none (the seconds grid, the CSV release)


def struck(roll):
    """(frames, keys) bool roll → (frames, keys) bool: the keys that start to sound in each frame (frame 0: all sounding)."""
    roll = np.asarray(roll, bool)
    return roll & ~np.concatenate([np.zeros((1, roll.shape[1]), bool), roll[:-1]])


class Song:
    """One piece on the roll grid: the keys sounding, the keys struck, and where each frame lies in its bar.

    roll: (frames, keys) bool, the keys sounding. onsets: (frames, keys) bool,
    the keys struck in each frame: a subset of roll, and every key that starts
    to sound is struck (the constructor makes it so; None: struck(roll), each
    run of frames one note). meter: (frames, 4) int16, per frame: frames since
    the last bar line, frames in that bar, and the bar's time signature
    (numerator, denominator); UNKNOWN_METER where the source gives none (None:
    unknown throughout). `len(song)` is its frames; `song[a:b]` the Song of
    those frames (a key sounding in the first of them counts as struck there).
    """
    __slots__ = ("roll", "onsets", "meter")

    def __init__(self, roll, onsets=None, meter=None):
        self.roll = np.asarray(roll, bool)
        if self.roll.ndim != 2:
            raise ValueError(f"a roll must be a (frames, keys) array, not shape {self.roll.shape}")
        self.onsets = struck(self.roll) if onsets is None else (np.asarray(onsets, bool) & self.roll) | struck(self.roll)
        self.meter = np.tile(np.int16(UNKNOWN_METER), (len(self.roll), 1)) if meter is None else np.asarray(meter, np.int16)
        if self.onsets.shape != self.roll.shape or self.meter.shape != (len(self.roll), 4):
            raise ValueError(f"a song's onsets {self.onsets.shape} and meter {self.meter.shape} must fit its roll "
                             f"{self.roll.shape}: (frames, keys) and (frames, 4)")

    def __len__(self):
        return len(self.roll)

    def __getitem__(self, frames):
        if not isinstance(frames, slice):
            raise TypeError("a Song is sliced by frames, song[a:b]; use song.roll[t] for one frame")
        return Song(self.roll[frames], self.onsets[frames], self.meter[frames])

    def __repr__(self):
        return f"Song({len(self)} frames, {self.roll.shape[1]} keys, {int(self.onsets.sum())} onsets)"


def as_song(piece):
    """A Song, or a bare (frames, keys) roll read as one (each run of sounding frames one note, meter unknown) → Song."""
    return piece if isinstance(piece, Song) else Song(piece)


def roll_to_notes(piece):
    """A Song (or a bare roll, see as_song) → (key, start_frame, end_frame) int arrays, sorted by key and then time.

    A note starts at each onset and lasts while its key sounds, until the key's
    next onset: a re-struck key gives two notes, a held one a single note.
    """
    song = as_song(piece)
    frames, keys = song.roll.shape
    padded = np.concatenate([song.roll, np.zeros((1, keys), bool)])
    released = np.concatenate([np.zeros((1, keys), bool), padded[:-1] & ~padded[1:]])  # frame t: the key stopped at t
    starts = np.concatenate([song.onsets, np.zeros((1, keys), bool)])
    on_key, on_frame = np.nonzero(starts.T)  # key-major: a key's notes in time order
    boundary = np.flatnonzero((starts | released).T)  # positions key * (frames + 1) + frame
    position = on_key * (frames + 1) + on_frame
    ends = boundary[np.searchsorted(boundary, position, side="right")] - on_key * (frames + 1)
    return on_key, on_frame, ends


METER_STEPS = 48  # bar positions and bar lengths, in frames, the model tells apart (a 12/8 bar at 4 frames a beat: 24)
METER_FEATURES = 2 * METER_STEPS  # one-hot frames since the bar line, one-hot frames in the bar; zeros where unknown


def meter_features(meter):
    """(frames, 4) int meter (see Song) → (frames, METER_FEATURES) float32: one-hot frames since the bar line and
    one-hot frames in the bar, each capped at METER_STEPS - 1; all zeros where the meter is unknown."""
    meter = np.asarray(meter)
    features = np.zeros((len(meter), METER_FEATURES), np.float32)
    known = np.flatnonzero((meter[:, 0] >= 0) & (meter[:, 1] > 0))
    features[known, np.minimum(meter[known, 0], METER_STEPS - 1)] = 1.0
    features[known, METER_STEPS + np.minimum(meter[known, 1], METER_STEPS - 1)] = 1.0
    return features


def continue_meter(meter, count):
    """A song's (frames, 4) meter → the (count, 4) int16 meter of the count frames after it: its last bar's signature
    going on, bar after bar (unknown if its last frame's meter is; a song of no frames: unknown)."""
    last = np.asarray(meter[-1] if len(meter) else UNKNOWN_METER, np.int64)
    following = np.tile(last, (count, 1))
    if last[0] >= 0 and last[1] > 0:
        following[:, 0] = (last[0] + 1 + np.arange(count)) % last[1]
    return following.astype(np.int16)


def frame_width(num_keys, onsets, meter):
    """The model's channels per frame: the keys sounding, the keys struck (onsets) and the meter features (meter)."""
    return num_keys * (2 if onsets else 1) + (METER_FEATURES if meter else 0)


def model_frames(song, onsets, meter, frames=slice(None)):
    """A Song's frames → (frames, frame_width) float32, the model's view of each: the keys sounding, then with onsets
    the keys struck, then with meter its meter_features. frames: a slice, taken from the song's own arrays (a key held
    into the first frame stays held)."""
    parts = [song.roll[frames]]
    if onsets:
        parts.append(song.onsets[frames])
    if meter:
        parts.append(meter_features(song.meter[frames]))
    return np.concatenate(parts, axis=1, dtype=np.float32)


# ------------------------------------------------------------------ notes → rolls

def roll_from_spans(start_frames, end_frames, keys, num_keys, num_frames=0, max_frames=MAX_FRAMES):
    """Note spans in frame units → Song: (frames, num_keys) bool roll and onsets, meter unknown.

    Frame k is the instant k: a note sounds in frame k when start <= k < end.
    A note containing no such instant sounds in the frame nearest its middle
    (a tie goes to the later frame), clipped to the last frame. Each note is
    struck in the first frame it sounds in: a note of a key that starts where
    another of that key ends, or inside it, re-strikes the key; notes of one
    key struck in one frame are one onset. The roll has max(num_frames,
    ceil(max end)) frames; anything before frame 0 is cut off (a note sounding
    at frame 0 is struck there). Raises BadRecording, before allocating the
    roll, for times that are not finite, keys outside 0..num_keys-1 or more
    than max_frames frames.
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
    onsets = np.zeros((length, num_keys), bool)
    sounds = stop > first
    onsets[first[sounds], keys[sounds]] = True
    return Song(edges[:-1] > 0, onsets)


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


def performed_beats(notes):
    """Archive notes (measure/beat) → (onsets, offsets) in bars along the performance, and the bar's length in quarters.

    Onsets and offsets come from performed_bars, offsets by interpolating bar
    position over the sample clock. The bar's length (per_bar) is the median
    ratio of written durations to durations in bars, snapped to half quarters
    (4 when no written duration says). Raises BadRecording for unusable bar data.
    """
    clock, group, position, rate = performed_bars(notes)
    onsets = position[group]
    offsets = np.where(notes["end"] <= clock[-1], np.interp(notes["end"], clock, position),
                       position[-1] + (notes["end"] - clock[-1]) * rate)
    lengths, quarters = offsets - onsets, notes["quarters"]
    known = (quarters > 0) & (quarters <= MAX_TIME) & (lengths > 1e-6)  # a millionth of a bar says nothing of its length
    per_bar = np.median(quarters[known] / lengths[known]) if known.any() else 4.0
    return onsets, offsets, max(0.5, round(per_bar * 2) / 2)


def beat_positions(notes):
    """Notes → (onsets, offsets) in quarter-note beats from the first bar line, never negative, and the bar's
    length in quarters that performed_beats found (None where the notes give their beats).

    Uses start_beat / beats (the CSV release, MIDI files) when any note has
    them; otherwise the archive's measure and beat fields through
    performed_beats, the first onset's quarter taken as the first bar line.
    Raises BadRecording for unusable beat data.
    """
    if not np.isnan(notes["start_beat"]).all():
        onsets, lengths = notes["start_beat"], notes["beats"]
        _first_problem([
            (~np.isfinite(onsets) | ~np.isfinite(lengths), "a start_beat or beats value that is not a finite number"),
            (onsets < 0, "a negative start_beat"),
            (lengths < 0, "a note that ends before it starts (negative beats)"),
            ((onsets > MAX_TIME) | (lengths > MAX_TIME), "a start_beat or beats value beyond 2**53"),
        ], len(notes))
        return onsets, onsets + lengths, None
    onsets, offsets, per_bar = performed_beats(notes)
    origin = np.floor(onsets.min() * per_bar)
    return onsets * per_bar - origin, offsets * per_bar - origin, per_bar


def time_signatures(notes, per_bar):
    """Notes and beat_positions' bar length → (numerator, denominator) int64 arrays: each note's time signature, 0
    where unknown.

    Notes with start_beat (the CSV release, MIDI files; per_bar None) carry
    their own; for archive notes it is the bar length performed_beats found,
    per_bar quarters: (per_bar, 4) when whole, else (2 * per_bar, 8).
    """
    if per_bar is None:
        return notes["numerator"].astype(np.int64), notes["denominator"].astype(np.int64)
    numerator, denominator = (int(per_bar), 4) if per_bar == int(per_bar) else (int(2 * per_bar), 8)
    return np.full(len(notes), numerator, np.int64), np.full(len(notes), denominator, np.int64)


# ------------------------------------------------------------------ the meter on the beat grid

def bar_occurrences(onsets, measure, beat, lengths):
    """Notes (onsets and bar lengths in quarters, bar numbers, beats as fractions of the bar) → (starts in quarters,
    index of a note in it) of each time a bar is played, sorted by start.

    Each note says its bar starts at onset - beat * length. The notes of one bar
    number whose starts lie within half a bar of the next are one playing of it
    (parts a little out of step, interleaved, agree on it); further apart, the
    bar is played again (a repeat). A playing starts at the median of its notes' starts.
    """
    guesses = onsets - beat * lengths
    order = np.lexsort((guesses, measure))  # by bar number, then by start
    guesses, numbers, halves = guesses[order], measure[order], lengths[order] / 2
    firsts = np.flatnonzero(np.concatenate([[True], (numbers[1:] != numbers[:-1]) | (np.diff(guesses) > halves[1:])]))
    counts = np.diff(np.append(firsts, len(order)))
    starts = (guesses[firsts + (counts - 1) // 2] + guesses[firsts + counts // 2]) / 2
    by_start = np.argsort(starts, kind="stable")
    return starts[by_start], order[firsts][by_start]


def steady_starts(starts, lengths, slack=0.25):
    """Bar starts (ascending, in quarters) and lengths → the starts with each one that lies within slack of a bar of
    where whole bars of the bar before it lead put there: bars follow each other at their length, and only a
    larger step (a repeat, a skip, a bar of another length) starts a new run. Performance-derived starts wobble
    by a fraction of a beat; a score's starts are unchanged."""
    steady = np.array(starts, float)
    for i in range(1, len(steady)):
        step = lengths[i - 1]
        expected = steady[i - 1] + max(1.0, np.round((steady[i] - steady[i - 1]) / step)) * step
        if abs(steady[i] - expected) < slack * step:
            steady[i] = expected
    return steady


def bar_lines(starts, lengths, end):
    """Known bars' starts (ascending, each before end) and lengths, in quarters → (every bar line in quarters, the
    known bar each line's bar follows), from the last line at or before 0 to the first at or after end.

    Before the first known bar (a pickup) and after the last, bars take that
    bar's length; a gap between two known bars (bars of rests) is filled with
    the nearest whole number, at least one, of bars of the earlier one's
    length, the last of them ending where the next known bar starts.
    """
    gaps = np.diff(np.append(starts, end))
    counts = np.append(np.maximum(1, np.round(gaps[:-1] / lengths[:-1])), np.ceil(gaps[-1] / lengths[-1]) + 1)
    counts = counts.astype(np.int64)
    known = np.repeat(np.arange(len(starts)), counts)
    steps = np.arange(len(known)) - np.repeat(np.cumsum(counts) - counts, counts)
    pickup = starts[0] - lengths[0] * np.arange(np.ceil(max(starts[0], 0.0) / lengths[0]), 0, -1)
    return (np.concatenate([pickup, starts[known] + steps * lengths[known]]),
            np.concatenate([np.zeros(len(pickup), np.int64), known]))


METER_LIMIT = np.iinfo(np.int16).max  # meter values are int16: a bar longer than this many frames is cut to it


def beat_meter(onsets, notes, per_bar, frames, steps_per_beat):
    """Notes on the beat grid (onsets in quarters from frame 0, per_bar from beat_positions) → (frames, 4) int16 meter
    (see Song); None when no note's bar is known (no measure/beat, or no time signature: the CSV release).

    Bar lines come from the bars the notes are played in (bar_occurrences),
    kept steady (steady_starts); starts closer than half a frame are one bar line; bar_lines fills in bars
    without notes. A bar line lies on the frame nearest it; a bar shorter than
    a frame counts as one frame long.
    """
    numerator, denominator = time_signatures(notes, per_bar)
    known = np.isfinite(notes["measure"]) & np.isfinite(notes["beat"]) & (numerator > 0) & (denominator > 0)
    if frames == 0 or not known.any():
        return None
    numerator, denominator = numerator[known], denominator[known]
    lengths = np.maximum(4.0 * numerator / denominator, 1.0 / steps_per_beat)
    starts, firsts = bar_occurrences(onsets[known], notes["measure"][known], notes["beat"][known], lengths)
    end = frames / steps_per_beat
    inside = (starts + lengths[firsts] > 0) & (starts < end)  # bars off the roll (from absurd beats) say nothing
    starts, firsts = starts[inside], firsts[inside]
    if not len(starts):
        return None
    starts = steady_starts(starts, lengths[firsts])
    distinct = np.concatenate([[True], np.diff(starts) >= 0.5 / steps_per_beat])
    starts, firsts = starts[distinct], firsts[distinct]
    lines, bar = bar_lines(starts, lengths[firsts], end)
    at = np.floor(lines * steps_per_beat + 0.5).astype(np.int64)
    kept = np.append(at[:-1] < at[1:], True)  # a bar rounded to no frames gives way to the next
    at, first = at[kept], firsts[bar[kept]]
    frame = np.arange(frames)
    line = np.searchsorted(at, frame, side="right") - 1
    size = np.minimum(at[line + 1] - at[line], METER_LIMIT)
    return np.stack([np.minimum(frame - at[line], size - 1), size, np.minimum(numerator[first[line]], METER_LIMIT),
                     np.minimum(denominator[first[line]], METER_LIMIT)], axis=1).astype(np.int16)


# ------------------------------------------------------------------ notes → songs

def _check_grid(time_base, steps_per_second, steps_per_beat, sample_rate, lowest_note, highest_note):
    """Raise DataError for grid settings organize_song cannot use."""
    if time_base not in ("seconds", "beats"):
        raise DataError(f"time_base must be 'seconds' or 'beats', not {time_base!r}")
    rates = {"steps_per_second": steps_per_second, "sample_rate": sample_rate} if time_base == "seconds" else \
        {"steps_per_beat": steps_per_beat}
    for name, value in rates.items():
        if not (np.isfinite(value) and value > 0):
            raise DataError(f"{name} must be a positive number, not {value!r}")
    if not 0 <= lowest_note <= highest_note <= 127:
        raise DataError(f"need 0 <= lowest_note <= highest_note <= 127, not {lowest_note} and {highest_note}")


def organize_song(notes, *, lowest_note=21, highest_note=108, time_base="seconds", steps_per_second=8.0,
                  steps_per_beat=4, sample_rate=SAMPLE_RATE, max_frames=MAX_FRAMES, **_):
    """One recording's NOTE_DTYPE notes → Song of (frames, highest_note - lowest_note + 1) keys.

    time_base 'seconds': frame k is the instant k / steps_per_second seconds;
    the meter is unknown (UNKNOWN_METER: bar lines move with the tempo, and
    nothing here follows it). 'beats': frame k is k / steps_per_beat
    quarter-note beats from the first bar; the meter comes from the notes' bars
    (beat_meter), unknown where they have none (the CSV release). Each note is
    struck in the first frame it sounds in (roll_from_spans). Notes outside
    lowest_note..highest_note (MIDI) are dropped but still set the length and
    the bars. Raises BadRecording, before building the roll, when the notes
    cannot be used or the roll would have over max_frames frames; DataError
    for unusable settings. Extra keyword settings are ignored, so
    `organize_song(notes, **settings)` works.
    """
    _check_grid(time_base, steps_per_second, steps_per_beat, sample_rate, lowest_note, highest_note)
    num_keys = highest_note - lowest_note + 1
    check_notes(notes)
    if len(notes) == 0:
        return Song(np.zeros((0, num_keys), bool))
    if time_base == "seconds":
        starts = notes["start"] * steps_per_second / sample_rate
        ends = notes["end"] * steps_per_second / sample_rate
    else:
        onsets, offsets, per_bar = beat_positions(notes)
        starts, ends = onsets * steps_per_beat, offsets * steps_per_beat
    inside = (notes["note"] >= lowest_note) & (notes["note"] <= highest_note)
    song = roll_from_spans(starts[inside], ends[inside], notes["note"][inside] - lowest_note, num_keys,
                           num_frames=np.ceil(ends.max() - 1e-6), max_frames=max_frames)  # dropped notes set the length too
    if time_base == "seconds":
        return song
    return Song(song.roll, song.onsets, beat_meter(onsets, notes, per_bar, len(song), steps_per_beat))


def main_program(notes):
    """Most common 1-based MIDI program among the notes (1, piano, if none is in 1-128)."""
    programs = notes["instrument"][(notes["instrument"] >= 1) & (notes["instrument"] <= 128)]
    if len(programs) == 0:
        return 1
    values, counts = np.unique(programs, return_counts=True)
    return int(values[np.argmax(counts)])

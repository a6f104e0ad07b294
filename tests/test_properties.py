"""Property tests: organize_song against slow frame-by-frame references, and rolls through MIDI files and back."""
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import rolls
from midi_io import midi_to_roll, roll_to_midi

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

SR = rolls.SAMPLE_RATE
EXAMPLES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

pitches = st.integers(0, 127)
# Frame rates p/q with small q: every frame instant is then at least 1/(q * SR) frames from a whole sample,
# far more than the float slack roll_from_spans allows, so exact and float arithmetic agree.
frame_rates = st.builds(Fraction, st.integers(1, 160), st.sampled_from([1, 2, 4, 5, 10])).filter(lambda f: f <= 32)
durations = st.one_of(st.integers(0, 3000), st.integers(0, 3 * SR))  # many notes shorter than a frame, some long
sample_notes = st.lists(st.tuples(st.integers(0, 10 * SR), durations, pitches), max_size=20)


@st.composite
def keyboards(draw):
    """(lowest_note, highest_note): the default piano or any range of MIDI notes."""
    lowest = draw(st.integers(0, 127))
    return draw(st.sampled_from([(21, 108), (lowest, draw(st.integers(lowest, 127)))]))


def note_array(rows):
    """(start, end, pitch) rows → NOTE_DTYPE notes, the fields a row does not give NaN (instrument 1)."""
    notes = np.zeros(len(rows), rolls.NOTE_DTYPE)
    for field in ("measure", "beat", "quarters", "start_beat", "beats"):
        notes[field] = np.nan
    notes["instrument"] = 1
    if rows:
        notes["start"], notes["end"], notes["note"] = zip(*rows)
    return notes


def reference_roll(spans, lowest, highest):
    """(start, end, pitch) in exact frame units → roll, asking of every frame and note: does the note sound here?

    A note sounds in frame k when start <= k < end; a note that contains no
    frame instant sounds in the frame nearest its middle (ties to the later
    frame), clipped to the last frame. The roll lasts ceil(last end) frames,
    notes off the keyboard included.
    """
    frames = math.ceil(max((end for _, end, _ in spans), default=0))
    roll = np.zeros((frames, highest - lowest + 1), bool)
    for start, end, pitch in spans:
        if not lowest <= pitch <= highest:
            continue
        sounding = [k for k in range(frames) if start <= k < end]
        if not sounding and frames:
            sounding = [min(math.floor((start + end) / 2 + Fraction(1, 2)), frames - 1)]
        for k in sounding:
            roll[k, pitch - lowest] = True
    return roll


@EXAMPLES
@given(rows=sample_notes, fps=frame_rates, keyboard=keyboards())
def test_seconds_grid_matches_the_frame_by_frame_reference(rows, fps, keyboard):
    rows = [(start, start + length, pitch) for start, length, pitch in rows]
    lowest, highest = keyboard
    roll = rolls.organize_song(note_array(rows), time_base="seconds", steps_per_second=float(fps),
                               lowest_note=lowest, highest_note=highest)
    spans = [(Fraction(start) * fps / SR, Fraction(end) * fps / SR, pitch) for start, end, pitch in rows]
    np.testing.assert_array_equal(roll, reference_roll(spans, lowest, highest))


eighths = st.integers(0, 8 * 40).map(lambda n: Fraction(n, 8))  # beat values in eighths: exact in floats


@EXAMPLES
@given(rows=st.lists(st.tuples(eighths, st.integers(0, 8 * 6).map(lambda n: Fraction(n, 8)), pitches), max_size=20),
       steps_per_beat=st.integers(1, 12), keyboard=keyboards())
def test_beat_grid_from_start_beat_and_beats_matches_the_reference(rows, steps_per_beat, keyboard):
    notes = note_array([(0, SR, pitch) for _, _, pitch in rows])  # sample times play no part on this grid
    notes["start_beat"] = [float(onset) for onset, _, _ in rows]
    notes["beats"] = [float(length) for _, length, _ in rows]
    lowest, highest = keyboard
    roll = rolls.organize_song(notes, time_base="beats", steps_per_beat=steps_per_beat,
                               lowest_note=lowest, highest_note=highest)
    spans = [(onset * steps_per_beat, (onset + length) * steps_per_beat, pitch) for onset, length, pitch in rows]
    np.testing.assert_array_equal(roll, reference_roll(spans, lowest, highest))


@st.composite
def keyboard_rolls(draw):
    """(roll, lowest_note): a random (frames, keys) bool roll placed somewhere on the MIDI range."""
    keys = draw(st.integers(1, 24))
    roll = draw(arrays(bool, st.tuples(st.integers(0, 40), st.just(keys))))
    return roll, draw(st.integers(0, 128 - keys))


@EXAMPLES
@given(roll_and_lowest=keyboard_rolls(), fps=st.integers(1, 16))
def test_roll_through_a_midi_file_and_back_on_the_seconds_grid(tmp_path, roll_and_lowest, fps):
    roll, lowest = roll_and_lowest
    path = tmp_path / "song.mid"
    roll_to_midi(roll, path, lowest_note=lowest, frames_per_beat=fps, bpm=60)  # one MIDI beat = one second
    back = midi_to_roll(path, lowest_note=lowest, highest_note=lowest + roll.shape[1] - 1, frames_per_second=fps)
    np.testing.assert_array_equal(back, roll)


@EXAMPLES
@given(roll_and_lowest=keyboard_rolls(), steps_per_beat=st.integers(1, 12),
       bpm=st.sampled_from([48, 50, 75, 80, 96, 100, 120, 125, 150, 160, 200, 240]))  # whole microseconds a beat
def test_roll_through_a_midi_file_and_back_on_the_beat_grid(tmp_path, roll_and_lowest, steps_per_beat, bpm):
    roll, lowest = roll_and_lowest
    path = tmp_path / "song.mid"
    roll_to_midi(roll, path, lowest_note=lowest, frames_per_beat=steps_per_beat, bpm=bpm)
    back = midi_to_roll(path, lowest_note=lowest, highest_note=lowest + roll.shape[1] - 1,
                        frames_per_second=steps_per_beat * bpm / 60)
    np.testing.assert_array_equal(back, roll)

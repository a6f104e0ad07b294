"""Rolls → MIDI files → rolls, through real files written and read with mido."""
import os

import mido
import numpy as np
import pytest

import rolls
from midi_io import TICKS_PER_FRAME, midi_to_roll, roll_to_midi
from rolls import roll_to_notes


def example_roll():
    roll = np.zeros((24, 88), bool)
    roll[0:4, 39] = True    # a held note
    roll[4:8, 39] = True    # ... tied on: still one note (frames 0-7)
    roll[2:3, 43] = True    # one-frame note
    roll[10:12, 43] = True  # same pitch again later: a second note
    roll[0, 0] = True       # lowest key
    roll[23, 87] = True     # highest key, last frame
    return roll


def test_held_frames_become_one_note():
    keys, starts, ends = roll_to_notes(example_roll())
    assert sorted(zip(keys, starts, ends)) == [(0, 0, 1), (39, 0, 8), (43, 2, 3), (43, 10, 12), (87, 23, 24)]


def test_roll_to_midi_to_roll_round_trip_in_seconds(tmp_path):
    path = tmp_path / "song.mid"
    notes = roll_to_midi(example_roll(), path, lowest_note=21, frames_per_beat=8, bpm=60)
    assert notes == 5
    back = midi_to_roll(path, lowest_note=21, highest_note=108, frames_per_second=8)
    np.testing.assert_array_equal(back, example_roll())


def test_round_trip_on_the_beat_grid_at_another_tempo(tmp_path):
    path = tmp_path / "song.mid"
    roll_to_midi(example_roll(), path, lowest_note=21, frames_per_beat=4, bpm=100)
    back = midi_to_roll(path, lowest_note=21, highest_note=108, frames_per_second=4 * 100 / 60)
    np.testing.assert_array_equal(back, example_roll())


def test_trailing_silence_survives_the_round_trip(tmp_path):
    roll = np.zeros((16, 88), bool)
    roll[0:2, 40] = True
    roll_to_midi(roll, tmp_path / "a.mid", lowest_note=21, frames_per_beat=4, bpm=60)
    assert midi_to_roll(tmp_path / "a.mid", lowest_note=21, highest_note=108, frames_per_second=4).shape == (16, 88)


def test_midi_file_has_the_program_tempo_and_pitches(tmp_path):
    path = tmp_path / "song.mid"
    roll_to_midi(example_roll(), path, lowest_note=21, frames_per_beat=4, bpm=90, program=41)
    messages = list(mido.MidiFile(path).tracks[0])
    assert [m.program for m in messages if m.type == "program_change"] == [40]  # MusicNet 41 = violin = GM 40
    assert [round(mido.tempo2bpm(m.tempo)) for m in messages if m.type == "set_tempo"] == [90]
    pitches = sorted(m.note for m in messages if m.type == "note_on" and m.velocity > 0)
    assert pitches == [21, 60, 64, 64, 108]


def test_empty_roll_writes_a_valid_silent_file(tmp_path):
    path = tmp_path / "empty.mid"
    assert roll_to_midi(np.zeros((8, 88), bool), path, lowest_note=21, frames_per_beat=4, bpm=60) == 0
    assert not midi_to_roll(path, lowest_note=21, highest_note=108, frames_per_second=4).any()


def test_midi_file_is_written_whole_with_ordinary_permissions(tmp_path):
    (tmp_path / "plain").write_bytes(b"")  # what open() gives under this umask
    roll_to_midi(example_roll(), tmp_path / "song.mid", lowest_note=21, frames_per_beat=4, bpm=60)
    assert sorted(os.listdir(tmp_path)) == ["plain", "song.mid"]  # no temporary file left beside it
    assert os.stat(tmp_path / "song.mid").st_mode == os.stat(tmp_path / "plain").st_mode


def test_a_file_that_is_not_midi_is_a_data_error(tmp_path):
    path = tmp_path / "song.mid"
    path.write_bytes(b"RIFF....WAVEfmt ")
    with pytest.raises(rolls.DataError, match="is not a readable MIDI file"):
        midi_to_roll(path, lowest_note=21, highest_note=108, frames_per_second=4)


def test_a_truncated_midi_file_is_a_data_error(tmp_path):
    path = tmp_path / "song.mid"
    roll_to_midi(example_roll(), path, lowest_note=21, frames_per_beat=4, bpm=60)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(rolls.DataError, match="is not a readable MIDI file"):
        midi_to_roll(path, lowest_note=21, highest_note=108, frames_per_second=4)


def test_a_midi_file_over_max_frames_is_refused_before_the_roll_is_built(tmp_path):
    path = tmp_path / "long.mid"
    track = mido.MidiTrack([mido.Message("note_on", note=60, velocity=80, time=0),
                            mido.Message("note_off", note=60, velocity=0, time=0x0FFFFFFF)])  # the largest delta time
    mido.MidiFile(ticks_per_beat=1, tracks=[track]).save(path)  # 2**28 beats at 120 bpm: 4 years
    with pytest.raises(rolls.BadRecording, match="over max_frames=1000000"):
        midi_to_roll(path, lowest_note=21, highest_note=108, frames_per_second=4)


def absolute_events(path):
    """(absolute tick, message) pairs of a MIDI file's first track."""
    tick, events = 0, []
    for message in mido.MidiFile(path).tracks[0]:
        tick += message.time
        events.append((tick, message))
    return events


def test_marker_marks_the_frame_where_the_model_takes_over(tmp_path):
    path = tmp_path / "song.mid"
    roll_to_midi(example_roll(), path, lowest_note=21, frames_per_beat=4, bpm=60, marker_frame=10)
    markers = [(tick, message.text) for tick, message in absolute_events(path) if message.type == "marker"]
    assert markers == [(10 * TICKS_PER_FRAME, "model continues")]
    back = midi_to_roll(path, lowest_note=21, highest_note=108, frames_per_second=4)
    np.testing.assert_array_equal(back, example_roll())  # the marker changes no note


def test_marker_comes_after_the_notes_that_end_and_before_those_that_start_at_its_frame(tmp_path):
    roll = np.zeros((8, 88), bool)
    roll[0:4, 60 - 21] = True  # primer
    roll[4:8, 62 - 21] = True  # continuation
    path = tmp_path / "song.mid"
    roll_to_midi(roll, path, lowest_note=21, frames_per_beat=4, bpm=60, marker_frame=4, marker_text="primer ends")
    at_frame = [(message.type, getattr(message, "note", getattr(message, "text", None)))
                for tick, message in absolute_events(path) if tick == 4 * TICKS_PER_FRAME]
    assert at_frame == [("note_off", 60), ("marker", "primer ends"), ("note_on", 62)]


@pytest.mark.parametrize("frame", [0, 24])
def test_marker_may_sit_at_the_first_or_after_the_last_frame(tmp_path, frame):
    path = tmp_path / "song.mid"
    roll_to_midi(example_roll(), path, lowest_note=21, frames_per_beat=4, bpm=60, marker_frame=frame)
    assert [tick for tick, message in absolute_events(path) if message.type == "marker"] == [frame * TICKS_PER_FRAME]
    assert midi_to_roll(path, lowest_note=21, highest_note=108, frames_per_second=4).shape == (24, 88)


def test_no_marker_unless_asked(tmp_path):
    roll_to_midi(example_roll(), tmp_path / "song.mid", lowest_note=21, frames_per_beat=4, bpm=60)
    assert not [message for _, message in absolute_events(tmp_path / "song.mid") if message.type == "marker"]


@pytest.mark.parametrize("frame", [-1, 25, 2.5])
def test_a_marker_off_the_roll_is_a_data_error(tmp_path, frame):
    with pytest.raises(rolls.DataError, match="marker_frame must be a whole frame from 0 to 24"):
        roll_to_midi(example_roll(), tmp_path / "song.mid", lowest_note=21, frames_per_beat=4, bpm=60, marker_frame=frame)
    assert not os.listdir(tmp_path)


def test_drums_are_left_out_of_a_roll_read_from_midi(tmp_path):
    path = tmp_path / "drums.mid"
    track = mido.MidiTrack([mido.Message("note_on", channel=9, note=36, velocity=100, time=0),
                            mido.Message("note_on", channel=0, note=60, velocity=80, time=0),
                            mido.Message("note_off", channel=9, note=36, time=480),
                            mido.Message("note_off", channel=0, note=60, time=0)])
    mido.MidiFile(ticks_per_beat=480, tracks=[track]).save(path)  # one beat at 120 bpm: 2 frames at 4 a second
    expected = np.zeros((2, 88), bool)
    expected[:, 60 - 21] = True
    np.testing.assert_array_equal(midi_to_roll(path, lowest_note=21, highest_note=108, frames_per_second=4), expected)

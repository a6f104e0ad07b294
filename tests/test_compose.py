"""Composing: primers, MIDI for each piece (silent ones reported), the MIDI grid, and a WAV or the reason there is none."""
import re

import mido
import numpy as np
import pytest

import compose
import configurator
import midi_io
from conftest import score_notes
from files import DataError

SETTINGS = {"lowest_note": 21, "highest_note": 108, "time_base": "beats", "steps_per_beat": 4, "steps_per_second": 8.0,
            "bpm": 100.0, "primer_frames": 8, "max_frames": 1_000_000, "soundfont": "", "velocity": 80, "instrument": "piano",
            "primer_path": ""}


def test_a_silent_piece_is_written_and_reported(tmp_path, capsys):
    settings = {**SETTINGS, "output_dir": str(tmp_path)}
    paths = compose.generate_MIDI([np.zeros((8, 88), bool)], settings, program=1)
    assert paths == [str(tmp_path / "generated_1.mid")]
    assert "is silent" in capsys.readouterr().out


def test_beats_are_written_at_the_run_tempo_and_seconds_one_beat_a_second():
    assert compose.frames_per_beat_and_bpm(SETTINGS) == (4, 100.0)
    assert compose.frames_per_beat_and_bpm({**SETTINGS, "time_base": "seconds"}) == (8.0, 60.0)


def test_a_primer_is_read_on_the_runs_grid_and_a_short_one_noted(tmp_path, capsys):
    path = tmp_path / "primer.mid"
    midi_io.notes_to_midi(score_notes((60, 0, 1), (64, 1, 0.5)), path)
    roll = compose.read_primer({**SETTINGS, "primer_path": str(path)})
    expected = np.zeros((6, 88), bool)
    expected[0:4, 60 - 21] = True
    expected[4:6, 64 - 21] = True
    np.testing.assert_array_equal(roll, expected)
    assert capsys.readouterr().out == f"note: primer {path} is 6 frames long, shorter than primer_frames=8\n"


def test_a_primer_without_notes_on_the_keyboard_is_refused(tmp_path):
    path = tmp_path / "high.mid"
    midi_io.notes_to_midi(score_notes((120, 0, 4)), path)
    with pytest.raises(DataError, match="has no notes between MIDI 21 and 108 in its first 8 frames"):
        compose.read_primer({**SETTINGS, "primer_path": str(path)})


def test_nothing_is_composed_when_no_piece_or_no_frame_is_asked_for(capsys):
    assert compose.compose(None, [], 1, {**SETTINGS, "num_outputs": 0, "generate_frames": 8}) == []
    assert compose.compose(None, [], 1, {**SETTINGS, "num_outputs": 2, "generate_frames": 0}) == []
    assert capsys.readouterr().out.count("generation skipped: num_outputs or generate_frames is 0\n") == 2


def test_held_out_songs_shorter_than_the_primer_are_refused():
    settings = {**SETTINGS, "num_outputs": 1, "generate_frames": 8, "primer_path": ""}
    with pytest.raises(DataError, match="no held-out song has primer_frames=8 frames"):
        compose.compose(None, [np.ones((7, 88), bool)], 1, settings)


def test_each_piece_gets_a_wav_or_the_reason_it_has_none(tmp_path, capsys):
    settings = {**SETTINGS, "output_dir": str(tmp_path)}
    roll = np.zeros((16, 88), bool)
    roll[:, 60 - 21] = True
    compose.generate_MIDI([roll], settings, program=1)
    capsys.readouterr()
    piece = {"name": "generated_1", "midi": str(tmp_path / "generated_1.mid"), "roll": roll, "primer_frames": 0}
    rendered = compose.render_audio(piece, settings)
    assert rendered == {**piece, "wav": str(tmp_path / "generated_1.wav")} and "wav" not in piece
    assert (tmp_path / "generated_1.wav").stat().st_size > 0
    said = capsys.readouterr().out
    assert said.startswith(f"wrote {tmp_path / 'generated_1.wav'}: 2.") and said.endswith(")\n") and said.count("\n") == 1
    missing = compose.render_audio({**piece, "name": "missing", "midi": str(tmp_path / "missing.mid")}, settings)
    assert missing["wav"] is None and "missing.mid" in missing["wav_error"]
    assert capsys.readouterr().out == f"warning: no audio for missing: {missing['wav_error']}\n"


def test_a_primer_whose_times_no_roll_can_hold_is_refused_naming_the_primer(tmp_path):
    path = tmp_path / "absurd.mid"
    song = mido.MidiFile(ticks_per_beat=1)
    song.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=16777215, time=0),
                                       mido.Message("note_on", note=60, velocity=80, time=0),
                                       mido.Message("note_off", note=60, velocity=0, time=0x0FFFFFFF)]))
    song.save(path)
    settings = {**configurator.default_settings(), "primer_path": str(path)}
    with pytest.raises(DataError, match=f"^primer {re.escape(str(path))} cannot be used: would have 1073741820 frames"):
        compose.read_primer(settings)


def written(path):
    """A written piece read back with mido → (programs, note_on velocities, tempos in microseconds per quarter)."""
    messages = [message for track in mido.MidiFile(path).tracks for message in track]
    return ([message.program + 1 for message in messages if message.type == "program_change"],
            sorted({message.velocity for message in messages if message.type == "note_on"}),
            [message.tempo for message in messages if message.type == "set_tempo"])


@pytest.mark.parametrize("instrument, program", [("piano", 1), ("Violin", 41), ("41", 41), ("string ensemble 1", 49),
                                                 ("data", 7)])
def test_the_instrument_is_written_by_name_or_number_or_the_datas(tmp_path, capsys, instrument, program):
    settings = {**SETTINGS, "output_dir": str(tmp_path), "instrument": instrument, "velocity": 64}
    chosen, line = compose.what_is_played(settings, 7)
    compose.generate_MIDI([np.eye(8, 88, dtype=bool)], settings, chosen)
    assert written(tmp_path / "generated_1.mid") == ([program], [64], [600_000])  # 100 bpm
    assert line.startswith(f"{midi_io.GM_PROGRAMS[program - 1]} (General MIDI program {program}")
    assert line.endswith(") at velocity 64, 100 bpm (the bpm setting)")
    assert ("the training data's most played" in line) == (instrument == "data")


def test_a_primers_tempo_is_kept_unless_bpm_is_set(tmp_path):
    primer = tmp_path / "primer.mid"
    midi_io.notes_to_midi(score_notes((60, 0, 4), bpm=72.0), primer, bpm=72.0)
    settings = {**SETTINGS, "output_dir": str(tmp_path), "bpm": 0.0, "primer_path": str(primer)}
    assert compose.written_tempo(settings) == (pytest.approx(72.0), "the primer's tempo")
    compose.generate_MIDI([np.eye(8, 88, dtype=bool)], settings, 1)
    assert written(tmp_path / "generated_1.mid")[2] == written(primer)[2] == [mido.bpm2tempo(72.0)]
    assert compose.written_tempo({**settings, "bpm": 90.0}) == (90.0, "the bpm setting")
    assert compose.written_tempo({**settings, "primer_path": ""}) == (100.0, "the default")
    assert compose.written_tempo({**settings, "time_base": "seconds"})[0] == 60.0


def test_the_console_and_each_piece_say_what_was_played(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(compose, "generate_song", lambda model, primers, frames, *args: np.ones((len(primers), frames, 88), bool))
    settings = {**SETTINGS, "output_dir": str(tmp_path), "num_outputs": 2, "generate_frames": 4, "include_primer": True,
                "temperature": 1.0, "sample_seed": 1, "note_floor": 0.0, "instrument": "cello", "bpm": 0.0}
    pieces = compose.compose(None, [np.ones((8, 88), bool)], 41, settings)
    played = "Cello (General MIDI program 43) at velocity 80, 100 bpm (the default)"
    assert [piece["played"] for piece in pieces] == [played, played]
    assert f"the pieces are written for {played}\n" in capsys.readouterr().out

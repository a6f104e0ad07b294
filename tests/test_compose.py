"""Composing: primers (their onsets and meter), MIDI for each piece (silent ones reported; re-struck notes and the
time signature written), the MIDI grid, and a WAV or the reason there is none."""
import re

import keras
import mido
import numpy as np
import pytest

import compose
import configurator
import midi_io
import training
from conftest import score_notes, timed_messages
from files import DataError
from rolls import Song

SETTINGS = {"lowest_note": 21, "highest_note": 108, "time_base": "beats", "steps_per_beat": 4, "steps_per_second": 8.0,
            "bpm": 100.0, "primer_frames": 8, "max_frames": 1_000_000, "soundfont": "", "velocity": 80, "instrument": "piano",
            "primer_path": ""}


def test_a_silent_piece_is_written_and_reported(tmp_path, capsys):
    settings = {**SETTINGS, "output_dir": str(tmp_path)}
    paths = compose.generate_MIDI([Song(np.zeros((8, 88), bool))], settings, program=1)
    assert paths == [str(tmp_path / "generated_1.mid")]
    assert "is silent" in capsys.readouterr().out


def test_beats_are_written_at_the_run_tempo_and_seconds_one_beat_a_second():
    assert compose.frames_per_beat_and_bpm(SETTINGS) == (4, 100.0)
    assert compose.frames_per_beat_and_bpm({**SETTINGS, "time_base": "seconds"}) == (8.0, 60.0)


def test_a_primer_is_read_on_the_runs_grid_and_a_short_one_noted(tmp_path, capsys):
    path = tmp_path / "primer.mid"
    midi_io.notes_to_midi(score_notes((60, 0, 1), (64, 1, 0.5)), path)
    song = compose.read_primer({**SETTINGS, "primer_path": str(path)})
    expected = np.zeros((6, 88), bool)
    expected[0:4, 60 - 21] = True
    expected[4:6, 64 - 21] = True
    np.testing.assert_array_equal(song.roll, expected)
    struck = np.zeros((6, 88), bool)
    struck[0, 60 - 21] = struck[4, 64 - 21] = True
    np.testing.assert_array_equal(song.onsets, struck)
    np.testing.assert_array_equal(song.meter, [[frame, 16, 4, 4] for frame in range(6)])  # a file without one: 4/4
    assert capsys.readouterr().out == f"note: primer {path} is 6 frames long, shorter than primer_frames=8\n"


def note_events(path):
    """A MIDI file read back with mido → sorted (tick, 'on' or 'off', key) of its notes (a velocity-0 note_on: off)."""
    return sorted((tick, "on" if message.type == "note_on" and message.velocity else "off", message.note)
                  for message, tick in timed_messages(path) if message.type in ("note_on", "note_off"))


def test_a_primers_re_struck_notes_are_read_as_onsets_and_written_back_as_new_notes(tmp_path):
    path = tmp_path / "primer.mid"
    midi_io.notes_to_midi(score_notes((60, 0, 1), (60, 1, 1), (64, 0, 2)), path)  # 60 struck twice, 64 held
    song = compose.read_primer({**SETTINGS, "primer_path": str(path)})
    np.testing.assert_array_equal(song.roll[:, [60 - 21, 64 - 21]], np.ones((8, 2), bool))
    assert np.argwhere(song.onsets).tolist() == [[0, 60 - 21], [0, 64 - 21], [4, 60 - 21]]
    compose.generate_MIDI([song], {**SETTINGS, "output_dir": str(tmp_path)}, program=1)
    frame = midi_io.TICKS_PER_FRAME
    assert note_events(tmp_path / "generated_1.mid") == [(0, "on", 60), (0, "on", 64), (4 * frame, "off", 60),
                                                         (4 * frame, "on", 60), (8 * frame, "off", 60),
                                                         (8 * frame, "off", 64)]


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
        compose.compose(None, [Song(np.ones((7, 88), bool))], 1, settings)


def test_primers_are_the_openings_of_the_held_out_songs_long_enough_in_turn_with_their_onsets_and_meter():
    songs = [Song(np.eye(10, 88, dtype=bool), meter=[[frame % 6, 6, 3, 8] for frame in range(10)]),
             Song(np.ones((5, 88), bool)), Song(np.ones((12, 88), bool), np.ones((12, 88), bool))]
    primers = compose.choose_primers(songs, {**SETTINGS, "num_outputs": 3})
    assert [len(primer) for primer in primers] == [8, 8, 8]
    for primer, song in zip(primers, [songs[0], songs[2], songs[0]]):
        for field in ("roll", "onsets", "meter"):
            np.testing.assert_array_equal(getattr(primer, field), getattr(song, field)[:8])


def test_each_piece_gets_a_wav_or_the_reason_it_has_none(tmp_path, capsys):
    settings = {**SETTINGS, "output_dir": str(tmp_path)}
    roll = np.zeros((16, 88), bool)
    roll[:, 60 - 21] = True
    compose.generate_MIDI([Song(roll)], settings, program=1)
    capsys.readouterr()
    piece = {"name": "generated_1", "midi": str(tmp_path / "generated_1.mid"), "song": Song(roll), "primer_frames": 0}
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
    compose.generate_MIDI([Song(np.eye(8, 88, dtype=bool))], settings, chosen)
    assert written(tmp_path / "generated_1.mid") == ([program], [64], [600_000])  # 100 bpm
    assert line.startswith(f"{midi_io.GM_PROGRAMS[program - 1]} (General MIDI program {program}")
    assert line.endswith(") at velocity 64, 100 bpm (the bpm setting)")
    assert ("the training data's most played" in line) == (instrument == "data")


def test_a_primers_tempo_is_kept_unless_bpm_is_set(tmp_path):
    primer = tmp_path / "primer.mid"
    midi_io.notes_to_midi(score_notes((60, 0, 4), bpm=72.0), primer, bpm=72.0)
    settings = {**SETTINGS, "output_dir": str(tmp_path), "bpm": 0.0, "primer_path": str(primer)}
    assert compose.written_tempo(settings) == (pytest.approx(72.0), "the primer's tempo")
    compose.generate_MIDI([Song(np.eye(8, 88, dtype=bool))], settings, 1)
    assert written(tmp_path / "generated_1.mid")[2] == written(primer)[2] == [mido.bpm2tempo(72.0)]
    assert compose.written_tempo({**settings, "bpm": 90.0}) == (90.0, "the bpm setting")
    assert compose.written_tempo({**settings, "primer_path": ""}) == (100.0, "the default")
    assert compose.written_tempo({**settings, "time_base": "seconds"})[0] == 60.0


def test_the_console_and_each_piece_say_what_was_played(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(compose, "generate_song", lambda model, primers, frames, *args: [
        Song(np.concatenate([primer.roll, np.ones((frames, 88), bool)])) for primer in primers])
    settings = {**SETTINGS, "output_dir": str(tmp_path), "num_outputs": 2, "generate_frames": 4, "include_primer": True,
                "temperature": 1.0, "sample_seed": 1, "note_floor": 0.0, "instrument": "cello", "bpm": 0.0}
    pieces = compose.compose(None, [Song(np.ones((8, 88), bool))], 41, settings)
    played = "Cello (General MIDI program 43) at velocity 80, 100 bpm (the default)"
    assert [piece["played"] for piece in pieces] == [played, played]
    assert f"the pieces are written for {played}\n" in capsys.readouterr().out



# ------------------------------------------------------------------ a model with onsets and meter composes both

def waltz(number):
    """A 48-frame Song in 3/4 at 4 frames a beat (12 frames a bar): a chord held throughout, struck on every beat."""
    roll = np.zeros((48, 88), bool)
    roll[:, [36 + number, 40 + number, 43 + number]] = True
    onsets = np.zeros_like(roll)
    onsets[::4] = roll[::4]
    frames = np.arange(48)
    return Song(roll, onsets, np.stack([frames % 12, np.full(48, 12), np.full(48, 3), np.full(48, 4)], axis=1))


COMPOSING = {**SETTINGS, "num_outputs": 2, "generate_frames": 16, "include_primer": True, "temperature": 1.0,
             "sample_seed": 1, "note_floor": 0.0, "hidden_size": 16, "num_layers": 1, "dropout": 0.0, "head": "nade",
             "head_size": 8, "pitch_profile": True, "onsets": True, "meter": True, "ema": 0, "learning_rate": 1e-2,
             "seq_len": 16, "batch_size": 4, "seed": 1, "transpose_range": 3, "epochs": 4, "max_minutes": 5.0,
             "plateau": 50, "patience": 100}


@pytest.fixture(scope="module")
def waltz_model(tmp_path_factory):
    """A tiny model with onsets and meter, trained a few epochs on waltzes of held chords struck on every beat."""
    keras.utils.set_random_seed(1)
    net = training.build_model(COMPOSING, num_keys=88)
    training.train(net, [waltz(number) for number in range(4)], [waltz(4)],
                   {**COMPOSING, "output_dir": str(tmp_path_factory.mktemp("waltz"))})
    return net


def test_the_keys_a_model_strikes_again_are_written_as_a_note_off_and_a_note_on_at_one_tick(waltz_model, tmp_path):
    settings = {**COMPOSING, "output_dir": str(tmp_path)}
    pieces = compose.compose(waltz_model, [waltz(5), waltz(6)], 1, settings)
    frame = midi_io.TICKS_PER_FRAME
    for piece in pieces:
        song = piece["song"]
        assert len(song) == 8 + 16 and piece["primer_frames"] == 8
        again = song.onsets[1:] & song.roll[:-1]  # struck in frame t + 1 while it sounded in frame t
        assert again[8:].any()                   # the model itself struck held keys again
        events = set(note_events(piece["midi"]))
        for before, key in np.argwhere(again):
            assert {((before + 1) * frame, "off", key + 21), ((before + 1) * frame, "on", key + 21)} <= events
        assert sum(kind == "on" for _, kind, _ in events) == song.onsets.sum()  # every onset, and nothing else


def test_the_pieces_go_on_in_their_primers_meter_and_the_midi_carries_its_time_signature(waltz_model, tmp_path):
    primer = tmp_path / "waltz.mid"
    notes = [mido.Message("note_on", note=pitch, velocity=80, time=0) for pitch in (60, 64, 67)]
    notes += [mido.Message("note_off", note=pitch, velocity=0, time=480 * 2 if pitch == 60 else 0) for pitch in (60, 64, 67)]
    track = [mido.MetaMessage("time_signature", numerator=3, denominator=4, time=0),
             mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(90), time=0), *notes]
    mido.MidiFile(ticks_per_beat=480, tracks=[mido.MidiTrack(track)]).save(primer)
    settings = {**COMPOSING, "output_dir": str(tmp_path), "num_outputs": 1, "primer_path": str(primer)}
    [piece] = compose.compose(waltz_model, [], 1, settings)
    np.testing.assert_array_equal(piece["song"].meter, [[frame % 12, 12, 3, 4] for frame in range(8 + 16)])
    signatures = [(tick, message.numerator, message.denominator)
                  for message, tick in timed_messages(piece["midi"]) if message.type == "time_signature"]
    assert signatures == [(0, 3, 4)]

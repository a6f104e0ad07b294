"""listen: MIDI → WAV, lengths, tempo, programs, the pedal, silence and the errors, through real files."""
import os
import wave

import mido
import numpy as np
import pytest

import listen
from files import DataError
from midi_io import midi_to_notes, roll_to_midi
from soundfont import default_soundfont

RATE = 22050  # Hz: half CD rate keeps the tests quick
RENDERERS = ["builtin", pytest.param("fluidsynth", marks=pytest.mark.skipif(
    not listen.fluidsynth_path(), reason="no fluidsynth program on PATH"))]


def chord_roll(frames=16):
    """(frames, 88) roll: a C major triad held for the first half, then a G for the second half."""
    roll = np.zeros((frames, 88), bool)
    roll[:frames // 2, [60 - 21, 64 - 21, 67 - 21]] = True
    roll[frames // 2:, 67 - 21] = True
    return roll


def write_midi(path, roll, bpm=120, program=1):
    """Write a roll at 4 frames per quarter note → the path."""
    roll_to_midi(roll, path, lowest_note=21, frames_per_beat=4, bpm=bpm, program=program, marker_frame=min(4, len(roll)))
    return path


def wav_facts(path):
    """A WAV file → (channels, sample width in bytes, rate, seconds, (samples, channels) float audio)."""
    with wave.open(os.fspath(path), "rb") as file:
        frames = file.readframes(file.getnframes())
        facts = file.getnchannels(), file.getsampwidth(), file.getframerate(), file.getnframes() / file.getframerate()
    return (*facts, np.frombuffer(frames, "<i2").reshape(-1, facts[0]) / 32768.0)


def only_file(folder):
    """The names in a folder, hidden temporaries included."""
    return sorted(os.listdir(folder))


@pytest.mark.parametrize("renderer", RENDERERS)
def test_render_writes_a_16_bit_wav_as_long_as_the_midi(tmp_path, renderer):
    midi = write_midi(tmp_path / "chords.mid", chord_roll())  # 16 frames = 4 quarters at 120 bpm = 2 s
    info = listen.render_wav(midi, tmp_path / "chords.wav", sample_rate=RATE, renderer=renderer)
    channels, width, rate, seconds, audio = wav_facts(tmp_path / "chords.wav")
    assert (width, rate) == (2, RATE) and channels in (1, 2)
    assert 2.0 <= seconds <= 2.0 + listen.RELEASE_TAIL + 1e-6
    assert info["seconds"] == pytest.approx(seconds)
    assert info["renderer"] == renderer
    assert info["rms"] == pytest.approx(np.sqrt(np.mean(audio ** 2)), rel=1e-3)
    assert info["rms"] > 0.01


@pytest.mark.parametrize("renderer", RENDERERS)
def test_tempo_sets_the_length(tmp_path, renderer):
    midi = write_midi(tmp_path / "slow.mid", chord_roll(), bpm=60)  # 4 quarters at 60 bpm = 4 s
    listen.render_wav(midi, tmp_path / "slow.wav", sample_rate=RATE, renderer=renderer)
    assert 4.0 <= wav_facts(tmp_path / "slow.wav")[3] <= 4.0 + listen.RELEASE_TAIL + 1e-6


def test_a_roll_ending_in_silence_keeps_its_silent_end(tmp_path):
    roll = chord_roll(32)
    roll[8:] = False  # sound for 1 s, then 3 s of rest written to the MIDI file's end
    listen.render_wav(write_midi(tmp_path / "rest.mid", roll), tmp_path / "rest.wav", sample_rate=RATE, renderer="builtin")
    _, _, rate, seconds, audio = wav_facts(tmp_path / "rest.wav")
    assert seconds == pytest.approx(4.0, abs=1 / rate)
    assert np.abs(audio[3 * rate:]).max() == 0.0


def sustain_ratio(audio, rate):
    """RMS of the second half of a 2 s held note over the first half, the first 0.1 s left out."""
    mono = audio.mean(axis=1)
    early, late = mono[int(0.1 * rate):rate], mono[rate:2 * rate]
    return np.sqrt(np.mean(late ** 2)) / np.sqrt(np.mean(early ** 2))


@pytest.mark.parametrize("renderer", RENDERERS)
def test_program_changes_the_instrument_violin_sustains_where_piano_decays(tmp_path, renderer):
    roll = np.zeros((16, 88), bool)
    roll[:, 69 - 21] = True  # A4 held 2 s
    ratios = {}
    for program in (1, 41):  # 1-based: acoustic grand piano, violin
        midi = write_midi(tmp_path / f"{program}.mid", roll, program=program)
        listen.render_wav(midi, tmp_path / f"{program}.wav", sample_rate=RATE, renderer=renderer)
        ratios[program] = sustain_ratio(wav_facts(tmp_path / f"{program}.wav")[4], RATE)
    assert ratios[1] < 0.7 < ratios[41]


def test_renders_repeat_exactly(tmp_path):
    midi = write_midi(tmp_path / "chords.mid", chord_roll())
    for name in ("a.wav", "b.wav"):
        listen.render_wav(midi, tmp_path / name, sample_rate=RATE, renderer="builtin")
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()


def test_silent_midi_raises_and_leaves_no_wav(tmp_path):
    midi = write_midi(tmp_path / "silent.mid", np.zeros((16, 88), bool))
    with pytest.raises(DataError, match="silent.*no notes"):
        listen.render_wav(midi, tmp_path / "silent.wav", sample_rate=RATE)
    assert only_file(tmp_path) == ["silent.mid"]


def test_zero_length_midi_raises(tmp_path):
    midi = write_midi(tmp_path / "empty.mid", np.zeros((0, 88), bool))
    with pytest.raises(DataError, match="0 seconds"):
        listen.render_wav(midi, tmp_path / "empty.wav", sample_rate=RATE)
    assert only_file(tmp_path) == ["empty.mid"]


def test_missing_midi_raises(tmp_path):
    with pytest.raises(DataError, match="not found"):
        listen.render_wav(tmp_path / "nowhere.mid", tmp_path / "out.wav")
    assert only_file(tmp_path) == []


def test_damaged_midi_raises(tmp_path):
    midi = tmp_path / "junk.mid"
    midi.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\x00\x40\x00\x90")  # cut short
    with pytest.raises(DataError, match="not a readable MIDI file"):
        listen.render_wav(midi, tmp_path / "junk.wav")
    assert only_file(tmp_path) == ["junk.mid"]


def pedal_midi(path, pedal):
    """A piano C4 struck at 0 and released at 0.25 s, the file 2 s long; with pedal, the sustain pedal is down to 1.5 s."""
    track = mido.MidiTrack([mido.Message("control_change", control=64, value=127 if pedal else 0, time=0),
                            mido.Message("note_on", note=60, velocity=100, time=0),
                            mido.Message("note_off", note=60, time=240),
                            mido.Message("control_change", control=64, value=0, time=1440 - 240),
                            mido.MetaMessage("text", text="end", time=1920 - 1440)])
    mido.MidiFile(ticks_per_beat=480, tracks=[track]).save(path)  # 120 bpm: 960 ticks a second
    return path


def test_the_renderer_plays_what_midi_io_reads_the_sustain_pedal_holds_a_released_note(tmp_path):
    loudness = {}
    for pedal in (False, True):
        listen.render_wav(pedal_midi(tmp_path / f"{pedal}.mid", pedal), tmp_path / f"{pedal}.wav", sample_rate=RATE,
                          renderer="builtin")
        audio = wav_facts(tmp_path / f"{pedal}.wav")[4]
        loudness[pedal] = np.sqrt(np.mean(audio[int(0.6 * RATE):int(1.4 * RATE)] ** 2))  # after the key is let go
    assert loudness[False] < 0.01 < loudness[True]


def test_a_damaged_midi_file_is_refused_in_midi_ios_words(tmp_path):
    midi = tmp_path / "junk.mid"
    midi.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\x00\x04\x00\x90\x3c\xc0")
    with pytest.raises(DataError) as read:
        midi_to_notes(midi)
    with pytest.raises(DataError) as rendered:
        listen.render_wav(midi, tmp_path / "junk.wav")
    assert str(rendered.value) == str(read.value) and "a data byte over 127" in str(read.value)


@pytest.mark.parametrize("content", [b"", b"RIFF\x04\x00\x00\x00sfbk", b"this is not a soundfont at all"])
def test_bad_soundfont_raises_and_leaves_no_wav(tmp_path, content):
    midi = write_midi(tmp_path / "chords.mid", chord_roll())
    soundfont = tmp_path / "bad.sf2"
    soundfont.write_bytes(content)
    with pytest.raises(DataError, match="soundfont .*bad.sf2 cannot be loaded"):
        listen.render_wav(midi, tmp_path / "chords.wav", soundfont=soundfont)
    assert only_file(tmp_path) == ["bad.sf2", "chords.mid"]


def test_truncated_soundfont_raises(tmp_path):
    midi = write_midi(tmp_path / "chords.mid", chord_roll())
    soundfont = tmp_path / "cut.sf2"
    soundfont.write_bytes(open(default_soundfont(), "rb").read(100_000))
    with pytest.raises(DataError, match="cut.sf2 cannot be loaded.*truncated"):
        listen.render_wav(midi, tmp_path / "chords.wav", soundfont=soundfont)


def test_missing_soundfont_raises(tmp_path):
    midi = write_midi(tmp_path / "chords.mid", chord_roll())
    with pytest.raises(DataError, match="nowhere.sf2 not found"):
        listen.render_wav(midi, tmp_path / "chords.wav", soundfont=tmp_path / "nowhere.sf2")


def test_failed_render_keeps_an_earlier_wav(tmp_path):
    good = write_midi(tmp_path / "chords.mid", chord_roll())
    listen.render_wav(good, tmp_path / "out.wav", sample_rate=RATE, renderer="builtin")
    before = (tmp_path / "out.wav").read_bytes()
    silent = write_midi(tmp_path / "silent.mid", np.zeros((16, 88), bool))
    with pytest.raises(DataError):
        listen.render_wav(silent, tmp_path / "out.wav", sample_rate=RATE, renderer="builtin")
    assert (tmp_path / "out.wav").read_bytes() == before


def test_unknown_renderer_is_refused(tmp_path):
    with pytest.raises(DataError, match="renderer must be"):
        listen.render_wav(tmp_path / "a.mid", tmp_path / "a.wav", renderer="timidity")


def program_folder(folder, script):
    """A folder holding an executable `fluidsynth` shell script with this body → the folder, to put on PATH."""
    folder.mkdir()
    program = folder / "fluidsynth"
    program.write_text("#!/bin/sh\n" + script)
    program.chmod(0o755)
    return folder


def test_auto_uses_the_builtin_renderer_without_fluidsynth_on_path(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(program_folder(tmp_path / "bin", "exit 0")) + "-nothing-here")
    midi = write_midi(tmp_path / "chords.mid", chord_roll())
    assert listen.render_wav(midi, tmp_path / "chords.wav", sample_rate=RATE)["renderer"] == "builtin"


@pytest.mark.skipif(os.name != "posix", reason="the stand-in fluidsynth is a shell script")
def test_auto_falls_back_to_builtin_when_fluidsynth_fails_and_says_why(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(program_folder(tmp_path / "bin", "echo 'fluidsynth: error: broken' >&2; exit 3")))
    midi = write_midi(tmp_path / "chords.mid", chord_roll())
    info = listen.render_wav(midi, tmp_path / "chords.wav", sample_rate=RATE)
    assert info["renderer"] == "builtin (fluidsynth failed (exit 3): fluidsynth: error: broken)"
    assert info["rms"] > 0.01
    with pytest.raises(DataError, match=r"fluidsynth failed \(exit 3\)"):
        listen.render_wav(midi, tmp_path / "again.wav", sample_rate=RATE, renderer="fluidsynth")
    assert not (tmp_path / "again.wav").exists()

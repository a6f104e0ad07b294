"""Notes → audio: a MIDI file rendered to a WAV with a General MIDI soundfont.

    from listen import render_wav
    info = render_wav("output/generated_1.mid", "output/generated_1.wav")
    # {'seconds': 38.4, 'rms': 0.071, 'renderer': 'builtin'}

Two renderers, the same result shape:

- `fluidsynth`: the FluidSynth command-line program, used when `shutil.which("fluidsynth")`
  finds it on PATH (`apt-get install fluidsynth`, `brew install fluid-synth`); it is
  never required. If it fails, the built-in renderer takes over and says why.
- `builtin`: soundfont.py's sample player, playing the notes midi_io reads from
  the file (midi_to_performance: velocities, programs and banks, drums, tempo
  changes, volume / expression / pan at each onset, the sustain pedal).

The soundfont defaults to TimGM6mb.sf2, the General MIDI soundfont that ships in
the pretty_midi wheel. The WAV is 16-bit PCM stereo at `sample_rate`, as long
as the MIDI file (its last event, tempo map honoured) plus the release of the
last notes, cut off at RELEASE_TAIL seconds; trailing silence in that tail is
trimmed. A result whose RMS is below SILENT_RMS (−80 dBFS, 1e-4 of full scale)
before scaling counts as silent; otherwise it is scaled so that its peak is
−1 dBFS, whichever renderer made it.
"""
import os
import shutil
import subprocess
import tempfile
import wave

import numpy as np

from files import DataError, atomic_write, printable
from midi_io import midi_to_performance
from soundfont import default_soundfont, load_soundfont, render_builtin

RELEASE_TAIL = 1.0  # seconds of release kept after the MIDI file's end, at most
SILENT_RMS = 1e-4  # a render whose RMS (full scale = 1) is below this (−80 dBFS) is silent: DataError
PEAK = 10 ** (-1 / 20)  # every render is scaled so that its peak is −1 dBFS
FLUIDSYNTH_GAIN = 0.5  # FluidSynth's -g: low enough that its 16-bit output does not clip before scaling
FLUIDSYNTH_TIMEOUT = 600  # seconds before a FluidSynth render is given up
MAX_SECONDS = 30 * 60  # a MIDI file longer than this is refused before rendering (30 min of float stereo: 640 MB)
FADE_SECONDS = 0.02  # fade applied where the tail is cut off


# ------------------------------------------------------------------ FluidSynth

def fluidsynth_path():
    """Path of the `fluidsynth` program on PATH, or None when the system has none."""
    return shutil.which("fluidsynth")


def render_fluidsynth(midi_path, soundfont_path, rate, program):
    """Render with the FluidSynth program → (samples, channels) float32; DataError with its message if it fails."""
    with tempfile.TemporaryDirectory(prefix="listen-") as folder:
        temp = os.path.join(folder, "render.wav")
        command = [program, "-ni", "-q", "-g", str(FLUIDSYNTH_GAIN), "-r", str(int(rate)), "-T", "wav", "-O", "s16",
                   "-F", temp, os.path.abspath(soundfont_path), os.path.abspath(midi_path)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=FLUIDSYNTH_TIMEOUT,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise DataError(f"fluidsynth took over {FLUIDSYNTH_TIMEOUT} s") from None
        except OSError as err:
            raise DataError(f"fluidsynth could not be started: {err.strerror or err}") from None
        message = " ".join((done.stderr + done.stdout).split())[:200]
        if done.returncode != 0 or not os.path.isfile(temp):
            raise DataError(f"fluidsynth failed (exit {done.returncode}): {message or 'no output'}")
        return read_wav(temp)[0]


# ------------------------------------------------------------------ WAV files

def read_wav(path):
    """A 16-bit PCM WAV → ((samples, channels) float32 in -1..1, sample rate)."""
    with wave.open(os.fspath(path), "rb") as file:
        if file.getsampwidth() != 2:
            raise DataError(f"{printable(path)} is not 16-bit PCM")
        frames = file.readframes(file.getnframes())
        channels, rate = file.getnchannels(), file.getframerate()
    return np.frombuffer(frames, "<i2").reshape(-1, channels).astype(np.float32) / 32768.0, rate


def fit_length(audio, length_seconds, rate):
    """Audio → cut to length_seconds + RELEASE_TAIL (faded where cut) or padded to length_seconds; trailing silence in the tail trimmed."""
    length, most = int(round(length_seconds * rate)), int(round((length_seconds + RELEASE_TAIL) * rate))
    if len(audio) > most:
        audio = audio[:most].copy()
        fade = min(most - length, int(FADE_SECONDS * rate))
        if fade:
            audio[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)[:, None]
    if len(audio) < length:
        audio = np.concatenate([audio, np.zeros((length - len(audio), audio.shape[1]), audio.dtype)])
    loud = np.flatnonzero(np.abs(audio[length:]).max(axis=1) >= 1.0 / 32768.0)
    return audio[:length + (loud[-1] + 1 if len(loud) else 0)]


def write_wav(path, audio, rate, chunk=1 << 20):
    """(samples, channels) float audio in -1..1 → 16-bit PCM WAV, written atomically a chunk of samples at a time."""
    with atomic_write(path) as file:
        with wave.open(file, "wb") as out:
            out.setnchannels(audio.shape[1])
            out.setsampwidth(2)
            out.setframerate(int(rate))
            for start in range(0, len(audio), chunk):
                part = np.clip(np.rint(audio[start:start + chunk] * 32767.0), -32768, 32767).astype("<i2")
                out.writeframes(part.tobytes())


# ------------------------------------------------------------------ the one entry point

def render_wav(midi_path, wav_path, *, soundfont="", sample_rate=44100, renderer="auto"):
    """Render a MIDI file to a 16-bit WAV (atomically) → {"seconds", "rms", "renderer"}.

    soundfont: a .sf2 path, "" for the pretty_midi GM soundfont. renderer:
    "auto" (FluidSynth when on PATH, else built-in), "fluidsynth" or "builtin".
    seconds is the WAV's length; rms its root mean square (full scale 1.0).
    Raises DataError, leaving no WAV behind, for a MIDI file that is missing or
    unreadable, a soundfont that cannot be loaded, an empty or silent result.
    """
    if renderer not in ("auto", "fluidsynth", "builtin"):
        raise DataError(f"renderer must be auto, fluidsynth or builtin, not {renderer!r}")
    if not (isinstance(sample_rate, (int, np.integer)) and 8000 <= sample_rate <= 192000):
        raise DataError(f"sample_rate must be a whole number of Hz from 8000 to 192000, not {sample_rate!r}")
    notes, length_seconds = midi_to_performance(midi_path)
    if length_seconds > MAX_SECONDS:
        raise DataError(f"MIDI file {printable(midi_path)} lasts over {MAX_SECONDS / 3600:g} hours; not rendered")
    soundfont_path = soundfont or default_soundfont()
    bank = load_soundfont(soundfont_path)
    if length_seconds <= 0:
        raise DataError(f"{printable(midi_path)} lasts 0 seconds: nothing to render")
    program = fluidsynth_path() if renderer != "builtin" else None
    if renderer == "fluidsynth" and not program:
        raise DataError("renderer=fluidsynth, but no fluidsynth program is on PATH")
    used = "builtin"
    if program:
        try:
            audio, used = render_fluidsynth(midi_path, soundfont_path, sample_rate, program), "fluidsynth"
        except DataError as err:
            if renderer == "fluidsynth":
                raise
            used = f"builtin ({err})"
    if used.startswith("builtin"):
        audio = render_builtin(notes, length_seconds + RELEASE_TAIL, bank, sample_rate)
    audio = fit_length(audio, length_seconds, sample_rate)
    rms = _rms(audio)
    if rms < SILENT_RMS:
        raise DataError(f"{printable(midi_path)} renders silent (RMS {rms:.1e}, below {SILENT_RMS:g}): "
                        f"{'it has no notes' if len(notes) == 0 else 'its notes make no sound with this soundfont'}")
    audio *= np.float32(PEAK / np.abs(audio).max())
    write_wav(wav_path, audio, sample_rate)
    return {"seconds": len(audio) / sample_rate, "rms": _rms(audio), "renderer": used}


def _rms(audio):
    """Root mean square of audio (full scale 1.0); 0.0 for none."""
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0

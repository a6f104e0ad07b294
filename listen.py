"""MIDI → audio: a WAV rendered with a General MIDI soundfont.

    from listen import render_wav
    info = render_wav("output/generated_1.mid", "output/generated_1.wav")
    # {'seconds': 38.4, 'rms': 0.071, 'renderer': 'builtin'}

Two renderers, the same result shape:

- `fluidsynth`: the FluidSynth command-line program, used when `shutil.which("fluidsynth")`
  finds it on PATH (`apt-get install fluidsynth`, `brew install fluid-synth`); it is
  never required. If it fails, the built-in renderer takes over and says why.
- `builtin`: a small SoundFont 2 sample player in numpy, here, so that a fresh
  machine needs nothing beyond `pip install -r requirements.txt` (the tinysoundfont
  package would do this in C, but every release requires PyAudio, which has no
  Linux wheel and needs PortAudio's headers and a compiler to install). It plays each
  note's sample zones (key and velocity ranges, root key and tuning, loops,
  attenuation, pan, the volume envelope) and honours program changes, bank select,
  channel 10 drums, tempo changes, volume / expression / pan controllers (taken at
  each note's onset) and the sustain pedal. It leaves out filters, LFOs
  (vibrato), the modulation envelope, pitch bend, reverb and chorus.

The soundfont defaults to TimGM6mb.sf2, the General MIDI soundfont that ships in
the pretty_midi wheel. The WAV is 16-bit PCM stereo at `sample_rate`, as long
as the MIDI file (its last event, tempo map honoured) plus the release of the
last notes, cut off at RELEASE_TAIL seconds; trailing silence in that tail is
trimmed. A result whose RMS is below SILENT_RMS (−80 dBFS, 1e-4 of full scale)
before scaling counts as silent; otherwise it is scaled so that its peak is
−1 dBFS, whichever renderer made it.
"""
import functools
import importlib.util
import os
import shutil
import struct
import subprocess
import tempfile
import wave

import mido
import numpy as np

from files import DataError, atomic_write, check_readable_file

RELEASE_TAIL = 1.0  # seconds of release kept after the MIDI file's end, at most
SILENT_RMS = 1e-4  # a render whose RMS (full scale = 1) is below this (−80 dBFS) is silent: DataError
PEAK = 10 ** (-1 / 20)  # every render is scaled so that its peak is −1 dBFS
EMU_ATTENUATION = 0.4  # share of a zone's initialAttenuation applied, as FluidSynth does (EMU8000 hardware did)
FLUIDSYNTH_GAIN = 0.5  # FluidSynth's -g: low enough that its 16-bit output does not clip before scaling
FLUIDSYNTH_TIMEOUT = 600  # seconds before a FluidSynth render is given up
MAX_MIDI_BYTES = 16_000_000  # a MIDI file over this is refused (generated ones are kilobytes)
MAX_SECONDS = 30 * 60  # a MIDI file longer than this is refused before rendering (30 min of float stereo: 640 MB)
DRUM_CHANNEL = 9  # General MIDI percussion: channel 10, counted from 1
FADE_SECONDS = 0.02  # fade applied where the tail is cut off
ENVELOPE_CACHE_SAMPLES = 16_000_000  # envelopes kept for reuse in one render (64 MB of float32), then dropped
ENVELOPE_FLOOR_DB = -90.0  # a note is rendered until its release falls this far below full level


def default_soundfont():
    """Path of TimGM6mb.sf2, the General MIDI soundfont in the pretty_midi package; DataError if it is not installed."""
    try:
        spec = importlib.util.find_spec("pretty_midi")
    except (ImportError, ValueError):
        spec = None
    path = os.path.join(os.path.dirname(spec.origin), "TimGM6mb.sf2") if spec and spec.origin else ""
    if not os.path.isfile(path):
        raise DataError("no soundfont: pip install -r requirements.txt (pretty_midi ships TimGM6mb.sf2) "
                        "or pass a .sf2 file")
    return path


def fluidsynth_path():
    """Path of the `fluidsynth` program on PATH, or None when the system has none."""
    return shutil.which("fluidsynth")


# ------------------------------------------------------------------ the soundfont

GEN_DEFAULTS = np.zeros(61, np.float64)
GEN_DEFAULTS[[8, 21, 23, 25, 26, 27, 28, 30, 33, 34, 35, 36, 38]] = [13500] + [-12000] * 12  # filter, delays, envelope times
GEN_DEFAULTS[[46, 47, 56, 58]] = [-1, -1, 100, -1]  # keynum, velocity, scaleTuning, overridingRootKey
KEY_RANGE, VEL_RANGE, INSTRUMENT, SAMPLE_ID = 43, 44, 41, 53
RATE_SLOT = 60  # a region's generator array carries its sample's rate here (generator 60 is the unused endOper)
ADDRESS_GENS = (0, 1, 2, 3, 4, 12, 45, 50)  # sample offsets: instrument level only
NOT_ADDED = {KEY_RANGE, VEL_RANGE, INSTRUMENT, SAMPLE_ID, 46, 47, 54, 57, 58, *ADDRESS_GENS}  # not summed at preset level


class _BadSoundfont(Exception):
    """What is wrong with a soundfont's bytes; load_soundfont turns it into a DataError naming the file."""


def _riff_chunks(data, start, end):
    """RIFF sub-chunks between byte offsets start and end → {id: (data start, size)} (LIST chunks by their type)."""
    chunks = {}
    while start + 8 <= end:
        name, size = data[start:start + 4], struct.unpack_from("<I", data, start + 4)[0]
        if start + 8 + size > end:
            raise _BadSoundfont(f"chunk {name!r} runs past the end of the file (truncated?)")
        if name == b"LIST":
            chunks[bytes(data[start + 8:start + 12])] = (start + 12, size - 4)
        else:
            chunks[bytes(name)] = (start + 8, size)
        start += 8 + size + (size & 1)
    return chunks


def _records(data, chunks, name, fmt):
    """One pdta sub-chunk → list of tuples of struct format fmt."""
    if name not in chunks:
        raise _BadSoundfont(f"no {name.decode()} chunk")
    start, size = chunks[name]
    width = struct.calcsize(fmt)
    if size % width or size < width:
        raise _BadSoundfont(f"{name.decode()} chunk of {size} bytes is not whole {width}-byte records")
    return list(struct.iter_unpack(fmt, data[start:start + size]))


def _zones(bags, gens, first, last):
    """Bags first..last-1 → list of {generator: amount}; amount is (lo, hi) for ranges, an int otherwise."""
    zones = []
    for bag in range(first, last):
        zone = {}
        for oper, amount in gens[bags[bag][0]:bags[bag + 1][0]]:
            if oper in (KEY_RANGE, VEL_RANGE):
                zone[oper] = (amount & 0xFF, amount >> 8)
            elif oper < len(GEN_DEFAULTS):
                zone[oper] = amount if oper in (INSTRUMENT, SAMPLE_ID, 54) else struct.unpack("<h", struct.pack("<H", amount))[0]
        zones.append(zone)
    return zones


def _split_global(zones, terminal):
    """Zones → (global zone or {}, local zones that end with their terminal generator)."""
    glob = zones[0] if zones and terminal not in zones[0] else {}
    return glob, [zone for zone in zones if terminal in zone]


def _in_range(zone, oper, value):
    """Whether value lies in a zone's key or velocity range (absent: 0-127)."""
    lo, hi = zone.get(oper, (0, 127))
    return lo <= value <= hi


class Soundfont:
    """A parsed SoundFont 2 file: presets by (bank, program), instruments, samples as int16."""

    def __init__(self, path):
        with open(path, "rb") as file:
            data = memoryview(file.read())
        if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"sfbk":
            raise _BadSoundfont("not a SoundFont 2 file (no RIFF sfbk header)")
        top = _riff_chunks(data, 12, min(len(data), 8 + struct.unpack_from("<I", data, 4)[0]))
        if b"sdta" not in top or b"pdta" not in top:
            raise _BadSoundfont("no sample data or no preset data")
        sdta = _riff_chunks(data, top[b"sdta"][0], sum(top[b"sdta"]))
        if b"smpl" not in sdta:
            raise _BadSoundfont("no smpl chunk")
        start, size = sdta[b"smpl"]
        self.samples = np.frombuffer(data[start:start + size - size % 2], "<i2").astype(np.float32) / 32768.0
        pdta = _riff_chunks(data, top[b"pdta"][0], sum(top[b"pdta"]))
        phdr = _records(data, pdta, b"phdr", "<20sHHHIII")
        pbag, pgen = _records(data, pdta, b"pbag", "<HH"), _records(data, pdta, b"pgen", "<HH")
        inst = _records(data, pdta, b"inst", "<20sH")
        ibag, igen = _records(data, pdta, b"ibag", "<HH"), _records(data, pdta, b"igen", "<HH")
        self.headers = _records(data, pdta, b"shdr", "<20sIIIIIBbHH")
        try:
            self.instruments = [_split_global(_zones(ibag, igen, inst[i][1], inst[i + 1][1]), SAMPLE_ID)
                                for i in range(len(inst) - 1)]
            self.presets = {(bank, program): _split_global(_zones(pbag, pgen, phdr[i][3], phdr[i + 1][3]), INSTRUMENT)
                            for i, (_, program, bank, *_) in enumerate(phdr[:-1])}
        except IndexError:
            raise _BadSoundfont("a zone points past the end of its generator list") from None
        if not self.presets:
            raise _BadSoundfont("it holds no presets")
        self._regions = {}

    def preset(self, bank, program):
        """(bank, program) → the key that finds it: the drum kit or melodic bank asked for, else bank 0 (128 for drums), else the first."""
        for key in ((bank, program), (128 if bank == 128 else 0, program), (bank, 0), (0, 0)):
            if key in self.presets:
                return key
        return min(self.presets)

    def regions(self, preset, key, velocity):
        """The sample regions a note sounds → list of (sample start, end, loop start, loop end, generators array)."""
        found = self._regions.get((preset, key, velocity))
        if found is None:
            found = self._regions[preset, key, velocity] = self._find_regions(preset, key, velocity)
        return found

    def _find_regions(self, preset, key, velocity):
        """Walk preset zones → instrument zones → samples for one key and velocity (SF2 2.01 §9.4)."""
        pglobal, pzones = self.presets[preset]
        found = []
        for pzone in pzones:
            pz = {**pglobal, **pzone}
            if not (_in_range(pz, KEY_RANGE, key) and _in_range(pz, VEL_RANGE, velocity)):
                continue
            if not 0 <= pz[INSTRUMENT] < len(self.instruments):
                continue
            iglobal, izones = self.instruments[pz[INSTRUMENT]]
            for izone in izones:
                iz = {**iglobal, **izone}
                if not (_in_range(iz, KEY_RANGE, key) and _in_range(iz, VEL_RANGE, velocity)):
                    continue
                if not 0 <= iz[SAMPLE_ID] < len(self.headers) - 1:
                    continue
                gens = GEN_DEFAULTS.copy()
                for oper, amount in iz.items():
                    if oper not in (KEY_RANGE, VEL_RANGE):
                        gens[oper] = amount
                for oper, amount in pz.items():
                    if oper not in NOT_ADDED:
                        gens[oper] += amount
                _, start, end, loop_start, loop_end, rate, root, correction, _, kind = self.headers[iz[SAMPLE_ID]]
                if kind & 0x8000 or rate == 0:  # ROM samples are not in the file
                    continue
                start += int(gens[0] + 32768 * gens[4])
                end += int(gens[1] + 32768 * gens[12])
                loop_start += int(gens[2] + 32768 * gens[45])
                loop_end += int(gens[3] + 32768 * gens[50])
                end = min(end, len(self.samples) - 1)
                if not 0 <= start < end:
                    continue
                gens[58] = gens[58] if gens[58] >= 0 else root  # the root key played at the sample's own pitch
                gens[52] += correction  # the sample's pitch correction, cents, joins fineTune
                gens[RATE_SLOT] = rate
                found.append((start, end, loop_start, loop_end, gens))
        return found


@functools.lru_cache(maxsize=4)
def _load_soundfont(path, size, mtime):
    """Parse a soundfont once per (path, size, modification time)."""
    return Soundfont(path)


def load_soundfont(path=""):
    """A .sf2 file ("" = the pretty_midi GM soundfont) → Soundfont; DataError saying why it cannot be used."""
    path = path or default_soundfont()
    info = check_readable_file(path, "soundfont")
    try:
        return _load_soundfont(os.path.abspath(path), info.st_size, info.st_mtime_ns)
    except _BadSoundfont as err:
        raise DataError(f"soundfont {path} cannot be loaded: {err}") from None
    except (struct.error, ValueError, OSError) as err:
        raise DataError(f"soundfont {path} cannot be loaded: {str(err)[:120]}") from None


# ------------------------------------------------------------------ MIDI → note events

NOTE_FIELDS = [("start", "f8"), ("end", "f8"), ("key", "i2"), ("velocity", "i2"), ("bank", "i2"), ("program", "i2"),
               ("gain", "f4"), ("pan", "f4")]  # seconds; gain from volume and expression; pan -1..1


def read_midi(path):
    """A MIDI file → (notes as a NOTE_FIELDS array, the file's length in seconds to its last event); DataError if unreadable."""
    info = check_readable_file(path, "MIDI file")
    if info.st_size > MAX_MIDI_BYTES:
        raise DataError(f"MIDI file {path} is {info.st_size / 1e6:.1f} MB, over the {MAX_MIDI_BYTES / 1e6:g} MB limit")
    try:
        midi = mido.MidiFile(path)
        messages = list(midi)  # merged tracks, times in seconds through the tempo map
    except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError) as err:
        raise DataError(f"{path} is not a readable MIDI file ({str(err)[:120] or type(err).__name__})") from None
    banks, programs = [0] * 16, [0] * 16
    volume, expression, pan, pedal = [100] * 16, [127] * 16, [64] * 16, [False] * 16
    sounding, held, notes, now = {}, {}, [], 0.0
    for message in messages:
        now += message.time
        if now > MAX_SECONDS:
            raise DataError(f"MIDI file {path} lasts over {MAX_SECONDS / 3600:g} hours; not rendered")
        kind, channel = message.type, getattr(message, "channel", None)
        if kind == "note_on" and message.velocity > 0:
            gain = (volume[channel] / 127.0) ** 2 * (expression[channel] / 127.0) ** 2
            bank = 128 if channel == DRUM_CHANNEL else banks[channel]
            note = [now, None, message.note, message.velocity, bank, programs[channel], gain, (pan[channel] - 64) / 63.0]
            sounding.setdefault((channel, message.note), []).append(note)
            notes.append(note)
        elif kind in ("note_on", "note_off"):
            waiting = sounding.get((channel, message.note))
            if waiting:
                note = waiting.pop(0)
                if pedal[channel]:
                    held.setdefault(channel, []).append(note)
                else:
                    note[1] = now
        elif kind == "program_change":
            programs[channel] = message.program
        elif kind == "control_change":
            if message.control == 0:
                banks[channel] = message.value
            elif message.control == 7:
                volume[channel] = message.value
            elif message.control == 11:
                expression[channel] = message.value
            elif message.control == 10:
                pan[channel] = message.value
            elif message.control == 64:
                pedal[channel] = message.value >= 64
                if not pedal[channel]:
                    for note in held.pop(channel, []):
                        note[1] = now
    for note in notes:
        note[1] = now if note[1] is None else note[1]  # notes still sounding end with the file
    array = np.array([tuple(note) for note in notes], NOTE_FIELDS) if notes else np.zeros(0, NOTE_FIELDS)
    return array, now


# ------------------------------------------------------------------ the built-in renderer

def _seconds(timecents):
    """SoundFont timecents → seconds."""
    return 2.0 ** (np.clip(timecents, -12000, 8000) / 1200.0)


def _envelope(gens, key, on_samples, rate):
    """Volume envelope (delay, attack, hold, decay to sustain, release after on_samples) → float32 gains, to silence."""
    delay, attack = _seconds(gens[33]), _seconds(gens[34])
    hold, decay = _seconds(gens[35] + gens[39] * (60 - key)), _seconds(gens[36] + gens[40] * (60 - key))
    sustain_db = -np.clip(gens[37], 0, 1440) / 10.0
    release = _seconds(gens[38])
    times = [0.0, delay, delay + attack, delay + attack + hold, delay + attack + hold + decay * (-sustain_db / 100.0)]
    levels = [ENVELOPE_FLOOR_DB, ENVELOPE_FLOOR_DB, 0.0, 0.0, sustain_db]  # attack is linear in amplitude: set below
    t = np.arange(on_samples, dtype=np.float64) / rate
    db = np.interp(t, times, levels)
    attack_part = (t >= delay) & (t < delay + attack)
    amplitude = 10.0 ** (db / 20.0)
    amplitude[t < delay] = 0.0
    amplitude[attack_part] = (t[attack_part] - delay) / attack
    last_db = 20 * np.log10(max(amplitude[-1], 1e-5)) if on_samples else sustain_db
    release_samples = int(max(0.0, (last_db - ENVELOPE_FLOOR_DB) / 100.0) * release * rate)
    fall = last_db - 100.0 * np.arange(1, release_samples + 1) / (release * rate)
    return np.concatenate([amplitude, 10.0 ** (fall / 20.0)]).astype(np.float32)


class _Envelopes:
    """Volume envelopes by (region, key, samples held), kept for reuse up to ENVELOPE_CACHE_SAMPLES in all."""

    def __init__(self):
        self.kept, self.samples = {}, 0

    def get(self, region, key, on, rate):
        """The envelope of a note of `on` samples at `key` through `region` (see _envelope)."""
        envelope = self.kept.get((id(region), key, on))
        if envelope is None:
            envelope = _envelope(region[4], key, on, rate)
            if self.samples + len(envelope) > ENVELOPE_CACHE_SAMPLES:
                self.kept, self.samples = {}, 0
            self.kept[id(region), key, on], self.samples = envelope, self.samples + len(envelope)
        return envelope


def _play_sample(samples, start, end, loop_start, loop_end, looping, step, count):
    """Read count output samples from a sample at `step` source samples each, linear interpolation, looping or not."""
    position = np.arange(count, dtype=np.float64) * step
    if looping:
        loop_at, loop_length = loop_start - start, loop_end - loop_start
        over = position >= loop_end - start
        position[over] = loop_at + np.mod(position[over] - loop_at, loop_length)
    else:
        count = min(count, int(np.ceil((end - start - 1) / step)) if step > 0 else 0)
        position = position[:count]
    index = position.astype(np.int64)
    fraction = (position - index).astype(np.float32)
    index += start
    after = index + 1
    if looping:
        after[after >= loop_end] -= loop_end - loop_start
    return samples[index] * (1.0 - fraction) + samples[after] * fraction


def _render_region(soundfont, region, note, rate, length, envelopes):
    """One note through one sample region → (first output sample, mono float32 audio including the release).

    envelopes: an _Envelopes that keeps each envelope for the next note like it.
    """
    start, end, loop_start, loop_end, gens = region
    first = int(round(note["start"] * rate))
    if first >= length:
        return first, np.zeros(0, np.float32)
    key = int(note["key"]) if gens[46] < 0 else int(gens[46])
    cents = (key - gens[58]) * gens[56] + gens[51] * 100 + gens[52]
    step = 2.0 ** (cents / 1200.0) * gens[RATE_SLOT] / rate
    looping = int(gens[54]) & 1 and start <= loop_start < loop_end <= end + 1 and loop_end - loop_start > 1
    on = max(1, int(round((note["end"] - note["start"]) * rate)))
    envelope = envelopes.get(region, key, on, rate)[:length - first]
    audio = _play_sample(soundfont.samples, start, end, loop_start, loop_end, looping, step, len(envelope))
    velocity = note["velocity"] if gens[47] < 0 else gens[47]
    gain = note["gain"] * (velocity / 127.0) ** 2 * 10.0 ** (-EMU_ATTENUATION * max(gens[48], 0) / 200.0)
    return first, audio * envelope[:len(audio)] * np.float32(gain)


def render_builtin(notes, length_seconds, soundfont, rate):
    """Notes (NOTE_FIELDS) → (samples, 2) float32 stereo audio of length_seconds + RELEASE_TAIL, by the sample player."""
    length = int(np.ceil((length_seconds + RELEASE_TAIL) * rate))
    out, envelopes = np.zeros((2, length), np.float32), _Envelopes()
    for note in notes:
        preset = soundfont.preset(int(note["bank"]), int(note["program"]))
        for region in soundfont.regions(preset, int(note["key"]), int(note["velocity"])):
            first, audio = _render_region(soundfont, region, note, rate, length, envelopes)
            if len(audio):
                pan = np.clip(note["pan"] + region[4][17] / 500.0, -1.0, 1.0)
                angle = (pan + 1.0) * np.pi / 4
                out[0, first:first + len(audio)] += audio * np.float32(np.cos(angle))
                out[1, first:first + len(audio)] += audio * np.float32(np.sin(angle))
    return out.T


# ------------------------------------------------------------------ FluidSynth

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
            raise DataError(f"{path} is not 16-bit PCM")
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
    notes, length_seconds = read_midi(midi_path)
    soundfont_path = soundfont or default_soundfont()
    bank = load_soundfont(soundfont_path)
    if length_seconds <= 0:
        raise DataError(f"{midi_path} lasts 0 seconds: nothing to render")
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
        audio = render_builtin(notes, length_seconds, bank, sample_rate)
    audio = fit_length(audio, length_seconds, sample_rate)
    rms = _rms(audio)
    if rms < SILENT_RMS:
        raise DataError(f"{midi_path} renders silent (RMS {rms:.1e}, below {SILENT_RMS:g}): "
                        f"{'it has no notes' if len(notes) == 0 else 'its notes make no sound with this soundfont'}")
    audio *= np.float32(PEAK / np.abs(audio).max())
    write_wav(wav_path, audio, sample_rate)
    return {"seconds": len(audio) / sample_rate, "rms": _rms(audio), "renderer": used}


def _rms(audio):
    """Root mean square of audio (full scale 1.0); 0.0 for none."""
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0

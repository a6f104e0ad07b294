"""SoundFont 2 files and the built-in sample player: a .sf2 file → Soundfont, notes → stereo audio.

    from soundfont import load_soundfont, render_builtin
    bank = load_soundfont()                            # "" or no path: TimGM6mb.sf2 from pretty_midi
    audio = render_builtin(notes, 12.5, bank, 44100)   # midi_io.PERFORMANCE_DTYPE notes → (samples, 2) float32

The player is a small SoundFont 2 synthesizer in numpy, here so that a fresh
machine needs nothing beyond `pip install -r requirements.txt` (the tinysoundfont
package would do this in C, but every release requires PyAudio, which has no
Linux wheel and needs PortAudio's headers and a compiler to install). It plays
each note's sample zones (key and velocity ranges, root key and tuning, loops,
attenuation, pan, the volume envelope) and honours program and bank, channel 10
drums (the bank 128 kit) and the volume, expression and pan controllers taken
at each note's onset; midi_io has already held notes on through the sustain
pedal. It leaves out filters, LFOs (vibrato), the modulation envelope, pitch
bend, reverb and chorus.

A soundfont is a file a user hands us, so reading it is bounded: the RIFF
header is checked before anything else is read, then the chunks are read one
by one by their sizes; a file over MAX_SOUNDFONT_BYTES, preset data over
MAX_PRESET_BYTES, zone indices out of order or a preset whose zones fan out
past MAX_ZONE_PAIRS is refused in one line naming the file (DataError), and so
is a note that would sound over MAX_VOICES samples. Tunings are clamped to the
SF2 ranges and envelopes computed only as far as the render reaches, so that a
render's time follows the MIDI's length.
"""
import functools
import importlib.util
import os

import numpy as np

from files import DataError, check_readable_file, printable
from midi_io import DRUM_CHANNEL

EMU_ATTENUATION = 0.4  # share of a zone's initialAttenuation applied, as FluidSynth does (EMU8000 hardware did)
ENVELOPE_CACHE_SAMPLES = 16_000_000  # envelopes kept for reuse in one render (64 MB of float32), then dropped
ENVELOPE_FLOOR_DB = -90.0  # a note is rendered until its release falls this far below full level
DRUM_BANK = 128  # the SoundFont bank of General MIDI drum kits, played on DRUM_CHANNEL
MAX_SOUNDFONT_BYTES = 500_000_000  # a larger .sf2 file is refused before it is read: General MIDI ones are 6-400 MB
MAX_PRESET_BYTES = 16_000_000  # a larger preset-data (pdta) chunk is refused: real ones are well under 1 MB
MAX_CHUNKS = 256  # chunks one RIFF list may hold: an SF2 file has 3 at its top and about 10 in each
MAX_ZONE_PAIRS = 16384  # a preset's zones × the zones of the instruments they play: what a note's search walks
MAX_VOICES = 32  # samples one note may sound at once: General MIDI soundfonts layer up to about 6


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



# ------------------------------------------------------------------ the soundfont

GEN_DEFAULTS = np.zeros(61, np.float64)
GEN_DEFAULTS[[8, 21, 23, 25, 26, 27, 28, 30, 33, 34, 35, 36, 38]] = [13500] + [-12000] * 12  # filter, delays, envelope times
GEN_DEFAULTS[[46, 47, 56, 58]] = [-1, -1, 100, -1]  # keynum, velocity, scaleTuning, overridingRootKey
KEY_RANGE, VEL_RANGE, INSTRUMENT, SAMPLE_ID = 43, 44, 41, 53
RATE_SLOT = 60  # a region's generator array carries its sample's rate here (generator 60 is the unused endOper)
ADDRESS_GENS = (0, 1, 2, 3, 4, 12, 45, 50)  # sample offsets: instrument level only
NOT_ADDED = {KEY_RANGE, VEL_RANGE, INSTRUMENT, SAMPLE_ID, 46, 47, 54, 57, 58, *ADDRESS_GENS}  # not summed at preset level
GEN_LIMITS = {46: (-1, 127), 47: (-1, 127), 48: (0, 1440), 51: (-120, 120), 52: (-99, 99), 56: (0, 1200), 58: (-1, 127)}
# SF2 2.04 §8.1.3's ranges of keynum, velocity, attenuation, coarse and fine tune, scale tuning and root key: the summed
# values are clamped to them, so that no tuning sends the player past its sample (-1: the note's own key or velocity)
_LIMITED, _LIMITS = list(GEN_LIMITS), np.array(list(GEN_LIMITS.values()), np.float64).T  # generators; (lowest, highest)
RECORDS = {  # the pdta sub-chunks: one numpy record a struct in the file
    b"phdr": np.dtype([("name", "S20"), ("program", "<u2"), ("bank", "<u2"), ("bag", "<u2"), ("library", "<u4"),
                       ("genre", "<u4"), ("morphology", "<u4")]),
    b"pbag": np.dtype([("gen", "<u2"), ("mod", "<u2")]),
    b"pgen": np.dtype([("oper", "<u2"), ("amount", "<u2")]),
    b"inst": np.dtype([("name", "S20"), ("bag", "<u2")]),
    b"ibag": np.dtype([("gen", "<u2"), ("mod", "<u2")]),
    b"igen": np.dtype([("oper", "<u2"), ("amount", "<u2")]),
    b"shdr": np.dtype([("name", "S20"), ("start", "<u4"), ("end", "<u4"), ("loop_start", "<u4"), ("loop_end", "<u4"),
                       ("rate", "<u4"), ("root", "u1"), ("correction", "i1"), ("link", "<u2"), ("kind", "<u2")]),
}


class _BadSoundfont(Exception):
    """What is wrong with a soundfont's bytes; load_soundfont turns it into a DataError naming the file."""


def _chunk_id(name):
    """A chunk's 4-byte id as text safe to print: 'smpl', or '\\x00\\xffab' for bytes that are not letters."""
    return repr(bytes(name))[1:]


def _read_at(file, start, size):
    """size bytes of an open file from byte start; _BadSoundfont if it holds fewer."""
    file.seek(start)
    data = file.read(size)
    if len(data) < size:
        raise _BadSoundfont(f"it ends at byte {start + len(data)}, inside a chunk (truncated, or changed while read?)")
    return data


def _riff_chunks(file, start, end):
    """RIFF sub-chunks between byte offsets start and end → {id: (data start, size)} (LIST chunks by their type).

    Reads only the chunk headers, MAX_CHUNKS of them at most; _BadSoundfont for a chunk that runs past end.
    """
    chunks, count = {}, 0
    while start + 8 <= end:
        count += 1
        if count > MAX_CHUNKS:
            raise _BadSoundfont(f"over {MAX_CHUNKS} chunks in one list (an SF2 file has about 10)")
        head = _read_at(file, start, 8)
        name, size = head[:4], int.from_bytes(head[4:], "little")
        if start + 8 + size > end:
            raise _BadSoundfont(f"chunk {_chunk_id(name)} runs past the end of the file (truncated?)")
        if name == b"LIST":
            if size < 4:
                raise _BadSoundfont(f"a LIST chunk of {size} bytes, too short for its type")
            chunks[_read_at(file, start + 8, 4)] = (start + 12, size - 4)
        else:
            chunks[name] = (start + 8, size)
        start += 8 + size + (size & 1)
    return chunks


def _file_chunks(file, size):
    """An open .sf2 file of size bytes → (sdta sub-chunks, pdta sub-chunks), the header checked before the size."""
    head = file.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:] != b"sfbk":
        raise _BadSoundfont("not a SoundFont 2 file (no RIFF sfbk header)")
    if size > MAX_SOUNDFONT_BYTES:
        raise _BadSoundfont(f"it is {size / 1e6:.0f} MB, over the {MAX_SOUNDFONT_BYTES / 1e6:g} MB limit "
                            "(General MIDI soundfonts are 6-400 MB)")
    top = _riff_chunks(file, 12, min(size, 8 + int.from_bytes(head[4:8], "little")))
    if b"sdta" not in top or b"pdta" not in top:
        raise _BadSoundfont("no sample data or no preset data")
    if top[b"pdta"][1] > MAX_PRESET_BYTES:
        raise _BadSoundfont(f"its preset data (pdta chunk) is {top[b'pdta'][1] / 1e6:.1f} MB, over the "
                            f"{MAX_PRESET_BYTES / 1e6:g} MB limit (real ones are well under 1 MB)")
    return _riff_chunks(file, top[b"sdta"][0], sum(top[b"sdta"])), _riff_chunks(file, top[b"pdta"][0], sum(top[b"pdta"]))


def _records(file, chunks, name):
    """One pdta sub-chunk → numpy array of its RECORDS; _BadSoundfont if it is missing or not whole records."""
    if name not in chunks:
        raise _BadSoundfont(f"no {name.decode()} chunk")
    start, size = chunks[name]
    width = RECORDS[name].itemsize
    if size % width or size < width:
        raise _BadSoundfont(f"{name.decode()} chunk of {size} bytes is not whole {width}-byte records")
    return np.frombuffer(_read_at(file, start, size), RECORDS[name])


def _read_samples(file, start, size):
    """The smpl chunk → int16 samples, read straight into their array."""
    samples = np.empty(size // 2, "<i2")
    file.seek(start)
    if file.readinto(memoryview(samples).cast("B")) < samples.nbytes:
        raise _BadSoundfont("the sample data ends early (truncated, or changed while read?)")
    return samples


def _check_indices(pdta):
    """_BadSoundfont unless every zone's bags and every bag's generators are in order and inside their chunks.

    In order, each preset's and instrument's zones are its own: no zone is walked twice, however the indices are set.
    """
    for owner, bags, gens in ((b"phdr", b"pbag", b"pgen"), (b"inst", b"ibag", b"igen")):
        for name, first, count in ((owner, pdta[owner]["bag"], len(pdta[bags]) - 1),
                                   (bags, pdta[bags]["gen"], len(pdta[gens]))):
            backwards = np.flatnonzero(np.diff(first.astype(np.int64)) < 0)
            if len(backwards):
                raise _BadSoundfont(f"the {name.decode()} chunk's indices go backwards at its record {backwards[0] + 2}")
            if first[-1] > count:
                raise _BadSoundfont(f"a zone points past the end of its generator list ({name.decode()} index "
                                    f"{first[-1]}, {count} there)")


def _check_fan_out(pdta):
    """_BadSoundfont if one preset's zones, counted with the zones of the instruments they play, are over MAX_ZONE_PAIRS."""
    phdr, pbag, pgen = pdta[b"phdr"], pdta[b"pbag"], pdta[b"pgen"]
    zones = np.diff(pdta[b"inst"]["bag"].astype(np.int64))  # each instrument's zones
    at = np.flatnonzero(pgen["oper"] == INSTRUMENT)
    instrument = pgen["amount"][at].astype(np.int64)
    preset = np.searchsorted(phdr["bag"], np.searchsorted(pbag["gen"], at, side="right") - 1, side="right") - 1
    played = (instrument < len(zones)) & (preset >= 0) & (preset < len(phdr) - 1)
    pairs = np.bincount(preset[played], weights=zones[instrument[played]], minlength=len(phdr))
    worst = int(np.argmax(pairs))
    if pairs[worst] > MAX_ZONE_PAIRS:
        raise _BadSoundfont(f"preset {_name(phdr[worst])} (bank {phdr['bank'][worst]}, program {phdr['program'][worst]}) "
                            f"layers {pairs[worst]:.0f} instrument zones, over the {MAX_ZONE_PAIRS} a note may search")


def _name(record):
    """A preset's or instrument's 20-byte name → text safe to print, in quotes."""
    return repr(record["name"].split(b"\0")[0].decode("latin-1"))


def _zones(bags, gens, first, last):
    """Bags first..last-1 → list of {generator: amount}; amount is (lo, hi) for ranges, an int otherwise."""
    zones, edges = [], bags["gen"][first:last + 1].tolist()
    for begin, end in zip(edges, edges[1:]):
        zone = {}
        for oper, amount in zip(gens["oper"][begin:end].tolist(), gens["amount"][begin:end].tolist()):
            if oper in (KEY_RANGE, VEL_RANGE):
                zone[oper] = (amount & 0xFF, amount >> 8)
            elif oper < len(GEN_DEFAULTS):
                zone[oper] = amount if oper in (INSTRUMENT, SAMPLE_ID, 54) else (amount ^ 0x8000) - 0x8000  # int16
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


def _matching(zones, key, velocity):
    """(global zone, local zones) → yield each local zone, the global one merged under it, whose ranges hold the note."""
    glob, local = zones
    for zone in local:
        merged = {**glob, **zone}
        if _in_range(merged, KEY_RANGE, key) and _in_range(merged, VEL_RANGE, velocity):
            yield merged


class Soundfont:
    """A parsed SoundFont 2 file (checked as the module docstring says): presets by (bank, program), their zones
    read when first played, samples as int16."""

    def __init__(self, path, size):
        self.path, self._zones, self._regions = path, {}, {}
        with open(path, "rb") as file:
            sdta, pdta = _file_chunks(file, size)
            if b"smpl" not in sdta:
                raise _BadSoundfont("no smpl chunk")
            self._pdta = {name: _records(file, pdta, name) for name in RECORDS}
            _check_indices(self._pdta)
            _check_fan_out(self._pdta)
            phdr = self._pdta[b"phdr"][:-1]  # the last is the terminal record
            self.presets = {(bank, program): i for i, (bank, program) in enumerate(zip(phdr["bank"].tolist(),
                                                                                       phdr["program"].tolist()))}
            if not self.presets:
                raise _BadSoundfont("it holds no presets")
            self.samples = _read_samples(file, *sdta[b"smpl"])

    def preset(self, bank, program):
        """(bank, program) → the key that finds it: the drum kit or melodic bank asked for, else bank 0 (128 for drums), else the first."""
        for key in ((bank, program), (DRUM_BANK if bank == DRUM_BANK else 0, program), (bank, 0), (0, 0)):
            if key in self.presets:
                return key
        return min(self.presets)

    def zones(self, kind, index):
        """A preset's (kind b"phdr") or instrument's (b"inst") zones, read once → (global zone or {}, local zones)."""
        found = self._zones.get((kind, index))
        if found is None:
            bags, gens, terminal = (b"pbag", b"pgen", INSTRUMENT) if kind == b"phdr" else (b"ibag", b"igen", SAMPLE_ID)
            first, last = self._pdta[kind]["bag"][index:index + 2].tolist()
            found = self._zones[kind, index] = _split_global(_zones(self._pdta[bags], self._pdta[gens], first, last), terminal)
        return found

    def regions(self, preset, key, velocity):
        """The sample regions a note sounds → list of (sample start, end, loop start, loop end, generators array)."""
        found = self._regions.get((preset, key, velocity))
        if found is None:
            found = self._regions[preset, key, velocity] = self._find_regions(preset, key, velocity)
        return found

    def _find_regions(self, preset, key, velocity):
        """Walk preset zones → instrument zones → samples for one key and velocity (SF2 2.01 §9.4).

        DataError, naming the soundfont, where they are over MAX_VOICES.
        """
        found = []
        for pz in _matching(self.zones(b"phdr", self.presets[preset]), key, velocity):
            if not 0 <= pz[INSTRUMENT] < len(self._pdta[b"inst"]) - 1:
                continue
            for iz in _matching(self.zones(b"inst", pz[INSTRUMENT]), key, velocity):
                region = self._region(pz, iz)
                if region:
                    found.append(region)
                if len(found) > MAX_VOICES:
                    raise DataError(f"soundfont {printable(self.path)} cannot be played: preset "
                                    f"{_name(self._pdta[b'phdr'][self.presets[preset]])} (bank {preset[0]}, program "
                                    f"{preset[1]}) sounds over {MAX_VOICES} samples at once for key {key}, "
                                    f"velocity {velocity}")
        return found

    def _region(self, pz, iz):
        """A preset zone and an instrument zone (globals merged in) → (sample start, end, loop start, loop end, generators),
        or None where the sample is not in the file or its offsets leave nothing to play."""
        if not 0 <= iz[SAMPLE_ID] < len(self._pdta[b"shdr"]) - 1:
            return None
        gens = GEN_DEFAULTS.copy()
        for oper, amount in iz.items():
            if oper not in (KEY_RANGE, VEL_RANGE):
                gens[oper] = amount
        for oper, amount in pz.items():
            if oper not in NOT_ADDED:
                gens[oper] += amount
        gens[_LIMITED] = np.clip(gens[_LIMITED], *_LIMITS)
        _, start, end, loop_start, loop_end, rate, root, correction, _, kind = self._pdta[b"shdr"][iz[SAMPLE_ID]].item()
        if kind & 0x8000 or rate == 0:  # ROM samples are not in the file
            return None
        start += int(gens[0] + 32768 * gens[4])
        end += int(gens[1] + 32768 * gens[12])
        loop_start += int(gens[2] + 32768 * gens[45])
        loop_end += int(gens[3] + 32768 * gens[50])
        end = min(end, len(self.samples) - 1)
        if not 0 <= start < end:
            return None
        gens[58] = gens[58] if gens[58] >= 0 else root if root <= 127 else 60  # the key at the sample's own pitch (255: none)
        gens[52] += correction  # the sample's pitch correction, cents, joins fineTune
        gens[RATE_SLOT] = rate
        return start, end, loop_start, loop_end, gens


@functools.lru_cache(maxsize=2)
def _load_soundfont(path, size, mtime):
    """Parse a soundfont once per (path, size, modification time)."""
    return Soundfont(path, size)


def load_soundfont(path=""):
    """A .sf2 file ("" = the pretty_midi GM soundfont) → Soundfont; DataError, one line naming it, if it cannot be used."""
    path = path or default_soundfont()
    info = check_readable_file(path, "soundfont")
    try:
        return _load_soundfont(os.path.abspath(path), info.st_size, info.st_mtime_ns)
    except _BadSoundfont as err:
        raise DataError(f"soundfont {printable(path)} cannot be loaded: {err}") from None
    except MemoryError:
        raise DataError(f"soundfont {printable(path)} cannot be loaded: not enough memory for its "
                        f"{info.st_size / 1e6:.0f} MB") from None
    except OSError as err:
        raise DataError(f"soundfont {printable(path)} cannot be loaded: {err.strerror or err}") from None


# ------------------------------------------------------------------ the sample player

def _seconds(timecents):
    """SoundFont timecents → seconds."""
    return 2.0 ** (np.clip(timecents, -12000, 8000) / 1200.0)


def _held_levels(t, times, levels, delay, attack):
    """Envelope gains at times t (s, float64) while the key is held: delay, linear attack, hold, decay to sustain."""
    db = np.interp(t, times, levels)
    attack_part = (t >= delay) & (t < delay + attack)
    amplitude = 10.0 ** (db / 20.0)
    amplitude[t < delay] = 0.0
    amplitude[attack_part] = (t[attack_part] - delay) / attack
    return amplitude


def _envelope(gens, key, on_samples, rate, most):
    """Volume envelope (delay, attack, hold, decay to sustain, release after on_samples) → float32 gains, to silence
    or to `most` samples, whichever comes first (the same gains as far as it goes)."""
    delay, attack = _seconds(gens[33]), _seconds(gens[34])
    hold, decay = _seconds(gens[35] + gens[39] * (60 - key)), _seconds(gens[36] + gens[40] * (60 - key))
    sustain_db = -np.clip(gens[37], 0, 1440) / 10.0
    release = _seconds(gens[38])
    times = [0.0, delay, delay + attack, delay + attack + hold, delay + attack + hold + decay * (-sustain_db / 100.0)]
    levels = [ENVELOPE_FLOOR_DB, ENVELOPE_FLOOR_DB, 0.0, 0.0, sustain_db]  # attack is linear in amplitude: set below
    amplitude = _held_levels(np.arange(min(on_samples, most), dtype=np.float64) / rate, times, levels, delay, attack)
    last = _held_levels(np.array([on_samples - 1], dtype=np.float64) / rate, times, levels, delay, attack)[0]
    last_db = 20 * np.log10(max(last, 1e-5)) if on_samples else sustain_db
    release_samples = int(max(0.0, (last_db - ENVELOPE_FLOOR_DB) / 100.0) * release * rate)
    fall = last_db - 100.0 * np.arange(1, min(release_samples, most - len(amplitude)) + 1) / (release * rate)
    return np.concatenate([amplitude, 10.0 ** (fall / 20.0)]).astype(np.float32)


class _Envelopes:
    """Volume envelopes by (region, key, samples held), kept for reuse up to ENVELOPE_CACHE_SAMPLES in all."""

    def __init__(self):
        self.kept, self.samples = {}, 0

    def get(self, region, key, on, rate, most):
        """The envelope of a note of `on` samples at `key` through `region`, `most` samples at most (see _envelope).

        Only whole envelopes (ending before `most`) are kept: a cut one would not serve a note with more room.
        """
        envelope = self.kept.get((id(region), key, on))
        if envelope is None:
            envelope = _envelope(region[4], key, on, rate, most)
            if len(envelope) < most:
                if self.samples + len(envelope) > ENVELOPE_CACHE_SAMPLES:
                    self.kept, self.samples = {}, 0
                self.kept[id(region), key, on], self.samples = envelope, self.samples + len(envelope)
        return envelope[:most]


def _play_sample(samples, start, end, loop_start, loop_end, looping, step, count):
    """Read count float32 output samples from int16 samples, `step` source samples each, linearly interpolated, looping or not."""
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
    scale = np.float32(1 / 32768)  # int16 → -1..1, exactly
    return samples[index] * scale * (1.0 - fraction) + samples[after] * scale * fraction


def _render_region(soundfont, region, note, channel_gain, rate, length, envelopes):
    """One note (its channel's gain applied) through one sample region → (first output sample, mono float32 audio).

    The audio holds the release too, as far as the render's `length` samples reach; envelopes: an _Envelopes
    that keeps each envelope for the next note like it.
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
    envelope = envelopes.get(region, key, on, rate, length - first)
    audio = _play_sample(soundfont.samples, start, end, loop_start, loop_end, looping, step, len(envelope))
    velocity = note["velocity"] if gens[47] < 0 else gens[47]
    gain = channel_gain * (velocity / 127.0) ** 2 * 10.0 ** (-EMU_ATTENUATION * max(gens[48], 0) / 200.0)
    return first, audio * envelope[:len(audio)] * np.float32(gain)


def _channel_mix(notes):
    """Notes → per note: (float32 gain from channel volume and expression, float32 pan -1..1, bank; drums DRUM_BANK)."""
    levels = np.array([(value / 127.0) ** 2 for value in range(128)])  # a 0-127 controller → gain (squared)
    gains = (levels[notes["volume"]] * levels[notes["expression"]]).astype(np.float32)
    pans = ((notes["pan"].astype(np.int64) - 64) / 63.0).astype(np.float32)
    banks = np.where(notes["channel"] == DRUM_CHANNEL, DRUM_BANK, notes["bank"])
    return gains, pans, banks.tolist()


def render_builtin(notes, seconds, soundfont, rate):
    """Notes (midi_io.PERFORMANCE_DTYPE) → (samples, 2) float32 stereo audio `seconds` long at `rate`."""
    length = int(np.ceil(seconds * rate))
    out, envelopes = np.zeros((2, length), np.float32), _Envelopes()
    for note, gain, note_pan, bank in zip(notes, *_channel_mix(notes)):
        preset = soundfont.preset(bank, int(note["program"]))
        for region in soundfont.regions(preset, int(note["key"]), int(note["velocity"])):
            first, audio = _render_region(soundfont, region, note, gain, rate, length, envelopes)
            if len(audio):
                pan = np.clip(note_pan + region[4][17] / 500.0, -1.0, 1.0)
                angle = (pan + 1.0) * np.pi / 4
                out[0, first:first + len(audio)] += audio * np.float32(np.cos(angle))
                out[1, first:first + len(audio)] += audio * np.float32(np.sin(angle))
    return out.T

"""The one MIDI parser and writer: MIDI files ↔ notes, songs (piano rolls with onsets and bars) and performances.

A song is a `rolls.Song`: the keys sounding and the keys struck, `(frames, keys)`
bool, key 0 = MIDI note `lowest_note`, and each frame's place in its bar. Time
is kept in frames: a file is written with `frames_per_beat` frames to a quarter
note at `bpm`, so every frame boundary falls on a whole tick, with a note_on at
every onset (a re-struck key is a note_off and a note_on at one tick) and time
signatures where the song's bars say. Read back at the same frame rate it gives
the roll and onsets that were written; on the beat grid the bars too (a pickup
comes back as a short first bar of its own time signature).

Notes are `rolls.NOTE_DTYPE` arrays. `midi_to_notes` reads any type 0 or 1
file into them (times through the file's tempo map, beats from its ticks, bars
from its time signatures: 4/4 from the start when it has none);
`notes_to_midi` writes them so that `midi_to_notes` gives them back, all but
their bars (it writes no time signatures). A performance is what a synthesizer
plays from the same file: `midi_to_performance` gives every note, drums too,
with its velocity, channel, bank, program, volume, expression and pan at its
onset and held on through the sustain pedal (PERFORMANCE_DTYPE, seconds);
listen.py renders it.

    notes = midi_to_notes("bach.mid")                  # NOTE_DTYPE, sorted by start then note, with bar and beat
    song = organize_song(notes, time_base="beats")     # the beat grid and the bars come straight from the ticks
    roll_to_midi(song, "again.mid", lowest_note=21, frames_per_beat=4, bpm=100)
    played, seconds = midi_to_performance("bach.mid")  # PERFORMANCE_DTYPE, in onset order

Files are read with a small parser of our own rather than mido's: it is about
seven times faster (a folder of thousands of files is read one by one) and keeps
only the notes, program changes, five controllers (bank, volume, pan,
expression, sustain), tempos and time signatures, a few bytes per event, where
mido keeps an object of about 240 bytes for every message; it never runs past
the bytes it was given. It reads what mido reads (tests/test_midi_io.py checks
it against mido), but refuses a data byte over 127 rather than clipping it (a
damaged file), a tempo of 0, type 2 files (no shared timeline) and SMPTE time,
and ignores a time signature that is not one (a numerator of 0...); it skips
non-MTrk chunks as the standard asks. Files are written with mido.
"""
import re
from array import array
from collections import deque
from operator import itemgetter

import mido
import numpy as np

from files import DataError, atomic_write, check_readable_file, printable
from rolls import (MAX_FRAMES, NOTE_DTYPE, SAMPLE_RATE, BadRecording, as_song, beat_positions, check_notes, roll_from_spans,
                   roll_to_notes)

TICKS_PER_FRAME = 120  # MIDI ticks per roll frame
MAX_MIDI_BYTES = 16_000_000  # default cap on a MIDI file's size: real ones are kilobytes; reading one takes up to ~35x its size in memory
DRUM_CHANNEL = 9  # General MIDI percussion: channel 10, counted from 1
DEFAULT_TEMPO = 500000  # microseconds per quarter note until a file sets one (120 bpm)
MAX_DELTA = 0x0FFFFFFF  # the largest gap between events a MIDI variable-length number holds (4 bytes)
MAX_DENOMINATOR_POWER = 6  # time signatures up to n/64 are read; a larger denominator is taken for damage and ignored


# ------------------------------------------------------------------ General MIDI programs

GM_PROGRAMS = (  # General MIDI level 1 program names; program n (1-based) is GM_PROGRAMS[n - 1]
    "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano", "Honky-tonk Piano", "Electric Piano 1",
    "Electric Piano 2", "Harpsichord", "Clavinet", "Celesta", "Glockenspiel", "Music Box", "Vibraphone", "Marimba",
    "Xylophone", "Tubular Bells", "Dulcimer", "Drawbar Organ", "Percussive Organ", "Rock Organ", "Church Organ",
    "Reed Organ", "Accordion", "Harmonica", "Tango Accordion", "Acoustic Guitar (nylon)", "Acoustic Guitar (steel)",
    "Electric Guitar (jazz)", "Electric Guitar (clean)", "Electric Guitar (muted)", "Overdriven Guitar",
    "Distortion Guitar", "Guitar Harmonics", "Acoustic Bass", "Electric Bass (finger)", "Electric Bass (pick)",
    "Fretless Bass", "Slap Bass 1", "Slap Bass 2", "Synth Bass 1", "Synth Bass 2", "Violin", "Viola", "Cello",
    "Contrabass", "Tremolo Strings", "Pizzicato Strings", "Orchestral Harp", "Timpani", "String Ensemble 1",
    "String Ensemble 2", "Synth Strings 1", "Synth Strings 2", "Choir Aahs", "Voice Oohs", "Synth Choir",
    "Orchestra Hit", "Trumpet", "Trombone", "Tuba", "Muted Trumpet", "French Horn", "Brass Section", "Synth Brass 1",
    "Synth Brass 2", "Soprano Sax", "Alto Sax", "Tenor Sax", "Baritone Sax", "Oboe", "English Horn", "Bassoon",
    "Clarinet", "Piccolo", "Flute", "Recorder", "Pan Flute", "Blown Bottle", "Shakuhachi", "Whistle", "Ocarina",
    "Lead 1 (square)", "Lead 2 (sawtooth)", "Lead 3 (calliope)", "Lead 4 (chiff)", "Lead 5 (charang)",
    "Lead 6 (voice)", "Lead 7 (fifths)", "Lead 8 (bass + lead)", "Pad 1 (new age)", "Pad 2 (warm)",
    "Pad 3 (polysynth)", "Pad 4 (choir)", "Pad 5 (bowed)", "Pad 6 (metallic)", "Pad 7 (halo)", "Pad 8 (sweep)",
    "FX 1 (rain)", "FX 2 (soundtrack)", "FX 3 (crystal)", "FX 4 (atmosphere)", "FX 5 (brightness)", "FX 6 (goblins)",
    "FX 7 (echoes)", "FX 8 (sci-fi)", "Sitar", "Banjo", "Shamisen", "Koto", "Kalimba", "Bagpipe", "Fiddle", "Shanai",
    "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock", "Taiko Drum", "Melodic Tom", "Synth Drum", "Reverse Cymbal",
    "Guitar Fret Noise", "Breath Noise", "Seashore", "Bird Tweet", "Telephone Ring", "Helicopter", "Applause", "Gunshot",
)
PROGRAM_ALIASES = {  # short names → 1-based program: the usual member of its family
    "piano": 1, "grand piano": 1, "electric piano": 5, "organ": 20, "guitar": 25, "bass": 33, "double bass": 44,
    "harp": 47, "strings": 49, "string ensemble": 49, "choir": 53, "voice": 54, "horn": 61, "brass": 62,
    "sax": 66, "saxophone": 66, "bells": 15,
}


def _plain_name(name):
    """An instrument name → lower case, runs of anything but letters and digits one space ('Lead 8 (bass + lead)' → 'lead 8 bass lead')."""
    return re.sub(r"[^a-z0-9]+", " ", name.lower()).strip()


_PROGRAM_OF = {**{_plain_name(name): number for number, name in enumerate(GM_PROGRAMS, start=1)}, **PROGRAM_ALIASES}


def program_number(name):
    """An instrument as a user writes it → its 1-based General MIDI program, or None if it names none: a number
    1-128, one of GM_PROGRAMS or PROGRAM_ALIASES, in any case, with any spaces, brackets, hyphens or underscores."""
    text = name.strip()
    if text.isascii() and text.isdigit():
        return int(text) if 1 <= int(text) <= 128 else None
    return _PROGRAM_OF.get(_plain_name(text))


# ------------------------------------------------------------------ rolls → MIDI

def _pickup_signature(ticks, denominator, ticks_per_beat):
    """What is left of a bar, in ticks → (numerator, denominator) counting it whole in the bar's denominator or
    the first finer one up to 2**MAX_DENOMINATOR_POWER that does; None if none does (e.g. a third of a beat)."""
    for den in (1 << power for power in range(MAX_DENOMINATOR_POWER + 1)):
        if den >= denominator and ticks * den % (4 * ticks_per_beat) == 0 and ticks * den // (4 * ticks_per_beat) <= 255:
            return ticks * den // (4 * ticks_per_beat), den
    return None


def _signature_frames(meter, ticks_per_beat):
    """A Song's (frames, 4) meter → [(frame, numerator, denominator)]: the time signatures that give its bars back.

    At the first frame of known meter; if that frame is inside a bar (a pickup),
    first one for the rest of the bar when _pickup_signature finds one, then the
    bar's own at its end. Then one at each bar line where the signature changes
    or the bar before was not its signature's length (a MIDI time signature
    starts a new bar at its tick). Frames of unknown meter, or a signature MIDI
    cannot hold, get none.
    """
    position, length, numerator, denominator = np.asarray(meter, np.int64).T
    known = (position >= 0) & (length > 0) & (numerator >= 1) & (numerator <= 255) & \
        np.isin(denominator, 1 << np.arange(MAX_DENOMINATOR_POWER + 1))
    if not known.any():
        return []
    first = int(np.argmax(known))
    pickup = position[first] > 0 and _pickup_signature(
        int(length[first] - position[first]) * TICKS_PER_FRAME, int(denominator[first]), ticks_per_beat)
    signatures = [(first, *pickup)] if pickup else []
    for frame in np.flatnonzero(known & (position == 0)).tolist():
        signature = int(numerator[frame]), int(denominator[frame])
        if signatures:
            _, bar_numerator, bar_denominator = signatures[-1]
            bar_ticks = int(length[frame - 1]) * TICKS_PER_FRAME * bar_denominator if known[frame - 1] else -1
            if signature == signatures[-1][1:] and bar_ticks == 4 * bar_numerator * ticks_per_beat:
                continue
        signatures.append((frame, *signature))
    return signatures


def roll_to_midi(song, path, *, lowest_note, frames_per_beat, bpm, program=1, velocity=80, marker_frame=None,
                 marker_text="model continues"):
    """Write a Song (or a bare roll, see rolls.as_song) as a one-track MIDI file (atomically); program is 1-based
    as in MusicNet.

    A note_on at every onset: a re-struck key is a note_off and a note_on at
    one tick. The song's bars as time signatures (see _signature_frames).
    With marker_frame (0..frames) a marker meta message holding marker_text is
    written at that frame, e.g. where a primer ends and the model takes over.
    At one tick: time signature, note_offs, marker, note_ons.
    Returns the number of notes written.
    """
    song = as_song(song)
    if marker_frame is not None and not (isinstance(marker_frame, (int, np.integer)) and 0 <= marker_frame <= len(song)):
        raise DataError(f"marker_frame must be a whole frame from 0 to {len(song)}, not {marker_frame!r}")
    try:
        marker_text.encode("latin1")
    except UnicodeEncodeError:
        raise DataError(f"marker text {marker_text!r} has characters a MIDI file cannot hold (Latin-1 only)") from None
    ticks_per_beat = int(round(frames_per_beat * TICKS_PER_FRAME))
    keys, starts, ends = roll_to_notes(song)
    timed = [(frame, -1, mido.MetaMessage("time_signature", numerator=numerator, denominator=denominator))
             for frame, numerator, denominator in _signature_frames(song.meter, ticks_per_beat)]
    timed += [(int(start), 2, mido.Message("note_on", note=int(key) + lowest_note, velocity=velocity))
              for key, start in zip(keys, starts)]
    timed += [(int(end), 0, mido.Message("note_off", note=int(key) + lowest_note, velocity=0)) for key, end in zip(keys, ends)]
    if marker_frame is not None:
        timed.append((int(marker_frame), 1, mido.MetaMessage("marker", text=marker_text)))
    track = _track([(0, -3, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))),
                    (0, -2, mido.Message("program_change", program=program - 1, channel=0))] +
                   [(frame * TICKS_PER_FRAME, order, message) for frame, order, message in timed])
    previous = sum(message.time for message in track)
    track.append(mido.MetaMessage("end_of_track", time=len(song) * TICKS_PER_FRAME - previous))
    midi = mido.MidiFile(ticks_per_beat=ticks_per_beat, tracks=[track])
    with atomic_write(path) as file:
        midi.save(file=file)
    return len(keys)


# ------------------------------------------------------------------ MIDI files → notes

NOTE_OFF, NOTE_ON, PROGRAM, CONTROL = 0, 1, 2, 3  # event kinds, packed: kind << 18 | channel << 14 | data1 << 7 | data2
BANK, VOLUME, PAN, EXPRESSION, SUSTAIN = 0, 7, 10, 11, 64  # the controllers kept; others are skipped
_KINDS = [-1] * 0x80 + [NOTE_OFF] * 16 + [NOTE_ON] * 16 + [-1] * 16 + [CONTROL] * 16 + [PROGRAM] * 16 + [-1] * 48
_SETTING_SHIFTS = {"bank": 0, "program": 7, "volume": 14, "expression": 21, "pan": 28, "velocity": 35}  # 7 bits each
_CONTROL_SHIFTS = {BANK: 0, VOLUME: 14, EXPRESSION: 21, PAN: 28}  # controller → its place in a channel's settings
_DEFAULT_SETTINGS = 100 << 14 | 127 << 21 | 64 << 28  # bank 0, program 0, volume 100, expression 127, pan 64 (centre)
_SYSTEM_DATA_BYTES = {0xF1: 1, 0xF2: 2, 0xF3: 1, 0xF6: 0, 0xF8: 0, 0xFA: 0, 0xFB: 0, 0xFC: 0, 0xFE: 0}

PERFORMANCE_DTYPE = np.dtype([  # a note as a synthesizer plays it: midi_to_performance
    ("start", "f8"),       # onset, seconds
    ("end", "f8"),         # when it stops sounding (its note_off, or the sustain pedal's release after it), seconds
    ("channel", "u1"),     # 0-based; DRUM_CHANNEL is General MIDI percussion
    ("key", "u1"),         # MIDI pitch
    ("velocity", "u1"),    # 1-127
    ("bank", "u1"),        # bank select (controller 0) on the channel at the onset; 0 if never set
    ("program", "u1"),     # 0-based program on the channel at the onset; 0 if never set
    ("volume", "u1"),      # channel volume (controller 7) at the onset; 100 if never set
    ("expression", "u1"),  # expression (controller 11) at the onset; 127 if never set
    ("pan", "u1"),         # pan (controller 10) at the onset; 64, the centre, if never set
])


class _Unreadable(Exception):
    """What is wrong with a MIDI file's bytes; _read_file turns it into a DataError naming the file."""


def _varint(data, pos):
    """The MIDI variable-length number (at most 4 bytes) at data[pos] → (value, position after it)."""
    value = 0
    for pos in range(pos, pos + 4):
        byte = data[pos]
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, pos + 1
    raise _Unreadable("a variable-length number longer than 4 bytes")


def _read_track(track):
    """One MTrk chunk's bytes → (event ticks, packed events, tempo ticks, tempos in µs/quarter, step ticks,
    time signature ticks, time signatures packed numerator << 8 | log2 denominator, last tick).

    Keeps note on/off, program changes, the controllers BANK to SUSTAIN (every
    channel), set_tempo and time_signature; skips the rest by its length. A
    note_on of velocity 0 is a note_off. A time_signature that is not one (no
    numerator, a denominator over 2**MAX_DENOMINATOR_POWER, fewer than 2 data
    bytes) is ignored: the bars it would start say less than the notes do.
    Step ticks: each tick holding an event but end_of_track, once.
    Running status carries over meta events (as mido reads them), not sysex.
    """
    ticks, events, tempo_ticks, tempos, steps = array("q"), array("I"), array("q"), array("q"), array("q")
    meter_ticks, meters = array("q"), array("q")
    add_tick, add_event, add_step = ticks.append, events.append, steps.append
    tick, status, pos, size, stepped = 0, None, 0, len(track), -1
    while pos < size:
        byte = track[pos]
        if byte < 0x80:
            tick, pos = tick + byte, pos + 1
        else:
            delta, pos = _varint(track, pos)
            tick += delta
        byte = track[pos]
        if byte >= 0x80:
            pos += 1
            if byte < 0xF0:
                status = byte
        elif status is None:
            raise _Unreadable("a data byte where an event should start (running status with no status before it)")
        else:
            byte = status
        if tick != stepped and (byte != 0xFF or track[pos] != 0x2F):
            add_step(tick)
            stepped = tick
        if byte < 0xF0:
            first, second = track[pos], 0 if 0xC0 <= byte < 0xE0 else track[pos + 1]
            pos += 1 if 0xC0 <= byte < 0xE0 else 2
            if (first | second) & 0x80:
                raise _Unreadable(f"a data byte over 127 in a {byte:#04x} event")
            kind = _KINDS[byte]
            if kind < 0 or kind == CONTROL and first not in _CONTROL_SHIFTS and first != SUSTAIN:
                continue
            add_tick(tick)
            kind = NOTE_OFF if kind == NOTE_ON and not second else kind
            add_event(kind << 18 | (byte & 0x0F) << 14 | first << 7 | second)
        elif byte == 0xFF:
            meta = track[pos]
            length, pos = _varint(track, pos + 1)
            if meta == 0x51:
                tempo = int.from_bytes(track[pos:pos + 3], "big")
                if length < 3 or tempo == 0:
                    raise _Unreadable("a set_tempo event that is not a tempo of 1 or more microseconds per quarter")
                tempo_ticks.append(tick)
                tempos.append(tempo)
            elif meta == 0x58 and length >= 2 and track[pos] and track[pos + 1] <= MAX_DENOMINATOR_POWER:
                meter_ticks.append(tick)
                meters.append(track[pos] << 8 | track[pos + 1])
            pos += length
        elif byte in (0xF0, 0xF7):
            length, pos = _varint(track, pos)
            pos, status = pos + length, None
        elif byte in _SYSTEM_DATA_BYTES:
            pos += _SYSTEM_DATA_BYTES[byte]
        else:
            raise _Unreadable(f"an undefined status byte {byte:#04x}")
    if pos > size:
        raise _Unreadable("an event that runs past the end of its track")
    return ticks, events, tempo_ticks, tempos, steps, meter_ticks, meters, tick


def _read_chunks(data):
    """A standard MIDI file's bytes → (ticks per quarter, list of _read_track results); _Unreadable if not one."""
    if data[:4] != b"MThd":
        raise _Unreadable("no MThd header: not a standard MIDI file")
    header_size = int.from_bytes(data[4:8], "big")
    if header_size < 6 or 8 + header_size > len(data):
        raise _Unreadable("the header is cut short")
    file_format, num_tracks, division = (int.from_bytes(data[at:at + 2], "big") for at in (8, 10, 12))
    if file_format == 2:
        raise _Unreadable("it is a type 2 file (independent sequences, no shared timeline), which is not supported")
    if file_format > 2:
        raise _Unreadable(f"its header gives type {file_format}, not 0, 1 or 2")
    if division & 0x8000:
        raise _Unreadable("it uses SMPTE time division (frames per second), which is not supported; "
                          "re-save it with ticks per quarter note")
    if division == 0:
        raise _Unreadable("its header gives 0 ticks per quarter note")
    tracks, pos = [], 8 + header_size
    while len(tracks) < num_tracks:
        if pos + 8 > len(data):
            raise _Unreadable(f"the file ends after {len(tracks)} of its {num_tracks} tracks (truncated?)")
        name, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "big")
        if pos + 8 + size > len(data):
            raise _Unreadable(f"the chunk at byte {pos} claims {size} bytes, more than the file holds (truncated?)")
        if name == b"MTrk":  # other chunk types are skipped, as the standard asks
            try:
                tracks.append(_read_track(data[pos + 8:pos + 8 + size]))
            except IndexError:
                raise _Unreadable(f"track {len(tracks) + 1} ends in the middle of an event") from None
            except _Unreadable as err:
                raise _Unreadable(f"track {len(tracks) + 1} has {err}") from None
        pos += 8 + size
    return division, tracks


def _joined(tracks, field, dtype):
    """One field (0 ticks, 1 events, 2 tempo ticks, 3 tempos, 4 steps, 5 time signature ticks, 6 time signatures)
    of every _read_track result → one numpy array."""
    return np.concatenate([np.frombuffer(track[field], dtype) for track in tracks] + [np.zeros(0, dtype)])


def _merged(tracks, chunk=1 << 16):
    """Yield (tick, packed event) of all tracks by tick, earlier tracks first at a tie, a chunk at a time."""
    ticks, events = _joined(tracks, 0, np.int64), _joined(tracks, 1, np.uint32)
    order = np.argsort(ticks, kind="stable")
    for first in range(0, len(order), chunk):
        some = order[first:first + chunk]
        yield from zip(ticks[some].tolist(), events[some].tolist())


def _pair_notes(tracks):
    """Events of all tracks, merged by tick (earlier tracks first at a tie) → notes in onset order, as arrays:
    (start ticks, note_off ticks, channel << 7 | pitch, settings, {note: tick the sustain pedal let it go}).

    A note_off ends the earliest sounding note of its channel and pitch (first
    in, first out); one with nothing sounding is ignored. A note's settings are
    its velocity and its channel's bank, program, volume, expression and pan at
    its onset, packed 7 bits each at _SETTING_SHIFTS. A note whose note_off
    comes while its channel's sustain pedal is down (64 or more) sounds on
    until the pedal is let go. Notes with no note_off, or still held by the
    pedal at the end, get tick -1.
    """
    starts, offs, keys, settings = array("q"), array("q"), array("H"), array("q")
    channel_settings, pedal, held, sustained, sounding = [_DEFAULT_SETTINGS] * 16, [False] * 16, {}, {}, {}
    for tick, event in _merged(tracks):
        kind, key, value = event >> 18, event >> 7 & 0x7FF, event & 0x7F
        if kind == NOTE_ON:
            sounding.setdefault(key, deque()).append(len(starts))
            starts.append(tick)
            offs.append(-1)
            keys.append(key)
            settings.append(channel_settings[key >> 7] | value << _SETTING_SHIFTS["velocity"])
        elif kind == NOTE_OFF:
            waiting = sounding.get(key)
            if waiting:
                note = waiting.popleft()
                offs[note] = tick
                if pedal[key >> 7]:
                    held.setdefault(key >> 7, []).append(note)
        elif kind == PROGRAM:
            channel_settings[key >> 7] = channel_settings[key >> 7] & ~(0x7F << 7) | (key & 0x7F) << 7
        elif key & 0x7F == SUSTAIN:
            pedal[key >> 7] = value >= 64
            if value < 64:
                sustained.update(dict.fromkeys(held.pop(key >> 7, ()), tick))
        else:
            shift = _CONTROL_SHIFTS[key & 0x7F]
            channel_settings[key >> 7] = channel_settings[key >> 7] & ~(0x7F << shift) | value << shift
    for notes in held.values():
        sustained.update(dict.fromkeys(notes, -1))
    starts, offs, keys, settings = (np.frombuffer(values, values.typecode) for values in (starts, offs, keys, settings))
    return starts, offs, keys, settings, sustained


def _tempo_map(tracks):
    """The set_tempo events of all tracks → (ticks of the changes, 0 first; µs per quarter from each, DEFAULT_TEMPO first).

    At one tick the last tempo set (earlier tracks first) wins.
    """
    tempo_ticks, tempos = _joined(tracks, 2, np.int64), _joined(tracks, 3, np.int64)
    order = np.argsort(tempo_ticks, kind="stable")
    return np.concatenate([[0], tempo_ticks[order]]), np.concatenate([[DEFAULT_TEMPO], tempos[order]])


def _meter_map(tracks):
    """The time_signature events of all tracks → (ticks where a bar starts a signature, 0 first; numerators;
    denominators): 4/4 from tick 0 unless the file says otherwise; at one tick the last set (earlier tracks first) wins."""
    meter_ticks, meters = _joined(tracks, 5, np.int64), _joined(tracks, 6, np.int64)
    order = np.argsort(meter_ticks, kind="stable")
    ticks, meters = np.concatenate([[0], meter_ticks[order]]), np.concatenate([[4 << 8 | 2], meters[order]])
    last = np.append(ticks[1:] != ticks[:-1], True)
    return ticks[last], meters[last] >> 8, 1 << (meters[last] & 0xFF)


def _bars_at(ticks, meter_map, ticks_per_beat):
    """Ticks → (bar number from 0, place in the bar as a fraction in [0, 1), numerator, denominator) through the
    meter map: each time signature starts a new bar at its tick (a bar it cuts short still counts). Exact: whole ticks."""
    changes, numerators, denominators = meter_map
    bar_length = 4 * numerators * ticks_per_beat  # a bar in ticks × its denominator: whole numbers
    bars_before = np.concatenate([[0], np.cumsum(-(-np.diff(changes) * denominators[:-1] // bar_length[:-1]))])
    which = np.searchsorted(changes, ticks, side="right") - 1
    scaled = (ticks - changes[which]) * denominators[which]
    bars, inside = np.divmod(scaled, bar_length[which])
    return bars_before[which] + bars, inside / bar_length[which], numerators[which], denominators[which]


def _samples_at(ticks, tempo_map, ticks_per_beat):
    """Ticks → samples at SAMPLE_RATE through the tempo map (the last tempo set at or before each tick; 120 bpm before any)."""
    changes, tempo = (values.astype(float) for values in tempo_map)
    elapsed = np.concatenate([[0.0], np.cumsum(np.diff(changes) * tempo[:-1])])  # tick-microseconds at each change
    which = np.searchsorted(changes, ticks, side="right") - 1
    return (elapsed[which] + (ticks - changes[which]) * tempo[which]) * (SAMPLE_RATE / 1e6 / ticks_per_beat)


def _played_seconds(steps, tempo_map, ticks_per_beat):
    """Step ticks (sorted, distinct, 0 first) → seconds at each, the clock summed step by step as a player runs it.

    Each step adds its ticks times (tempo × 1e-6 / ticks_per_beat) at the tempo
    before it, in floating point and in this order, as mido plays a file: the
    renders come out the same to the last bit as they did when mido read them.
    """
    changes, tempo = tempo_map
    scale = tempo[np.searchsorted(changes, steps[:-1], side="right") - 1] * 1e-6 / ticks_per_beat
    return np.concatenate([[0.0], np.cumsum(np.diff(steps) * scale)])


def _read_bytes(path, max_bytes):
    """A MIDI file's bytes, its path checked and its size capped; DataError naming it if not."""
    size = check_readable_file(path, "MIDI file").st_size
    if size > max_bytes:
        raise DataError(f"MIDI file {printable(path)} is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:g} MB limit "
                        "(real MIDI files are kilobytes)")
    try:
        with open(path, "rb") as file:
            data = file.read(size + 1)  # no more than the file holds: a huge read() would allocate its size up front
    except OSError as err:
        raise DataError(f"cannot read MIDI file {printable(path)}: {err.strerror or err}") from None
    if len(data) > size:
        raise DataError(f"MIDI file {printable(path)} changed while it was read")
    if not data:
        raise DataError(f"{printable(path)} is not a readable MIDI file (it is empty)")
    return data


def _read_file(path, max_bytes):
    """A MIDI file → (ticks per quarter, _read_track results, last tick); DataError naming it if it cannot be read."""
    data = _read_bytes(path, max_bytes)
    try:
        ticks_per_beat, tracks = _read_chunks(data)
    except _Unreadable as err:
        raise DataError(f"{printable(path)} is not a readable MIDI file ({err})") from None
    return ticks_per_beat, tracks, max((track[-1] for track in tracks), default=0)


def _read_midi(path, max_bytes):
    """A MIDI file → (NOTE_DTYPE notes, the file's length in samples: its last event)."""
    ticks_per_beat, tracks, last_tick = _read_file(path, max_bytes)
    starts, ends, keys, settings, _ = _pair_notes(tracks)
    keep = keys >> 7 != DRUM_CHANNEL
    starts, ends, keys, settings = starts[keep], ends[keep], keys[keep], settings[keep]
    ends = np.where(ends < 0, last_tick, ends)  # notes still sounding end with the file
    keep = ends > starts  # zero-length notes say nothing
    starts, ends = starts[keep], ends[keep]
    tempo_map = _tempo_map(tracks)
    notes = np.zeros(len(starts), NOTE_DTYPE)
    notes["start"] = _samples_at(starts, tempo_map, ticks_per_beat)
    notes["end"] = _samples_at(ends, tempo_map, ticks_per_beat)
    notes["instrument"] = (settings[keep] >> _SETTING_SHIFTS["program"] & 0x7F) + 1
    notes["note"] = keys[keep] & 0x7F
    notes["measure"], notes["beat"], notes["numerator"], notes["denominator"] = _bars_at(
        starts, _meter_map(tracks), ticks_per_beat)
    notes["start_beat"] = starts / ticks_per_beat
    notes["beats"] = notes["quarters"] = (ends - starts) / ticks_per_beat
    try:
        check_notes(notes)
    except BadRecording as err:
        raise BadRecording(f"{printable(path)}: {err}") from None
    length = _samples_at(np.array([last_tick]), tempo_map, ticks_per_beat)[0]
    return notes[np.lexsort((notes["note"], notes["start"]))], length


def midi_to_notes(path, max_bytes=MAX_MIDI_BYTES):
    """A type 0 or 1 MIDI file → NOTE_DTYPE notes, sorted by start then note: every track and channel but drums.

    start/end are samples at SAMPLE_RATE through the file's tempo map (set_tempo
    in any track); start_beat/beats (and quarters) are quarter notes from the
    ticks; instrument is the 1-based program on the note's channel at its onset;
    measure (bar number from 0), beat (place in the bar, a fraction in [0, 1))
    and numerator/denominator (the bar's time signature) come from the file's
    time signatures in any track: 4/4 from tick 0 when it has none, each one
    starting a new bar at its tick, the last of several at one tick holding,
    a malformed one ignored (see _read_track). note_offs pair first in, first
    out (the sustain pedal is not heard here); notes still sounding end at the
    file's last event; zero-length notes are dropped.
    Raises DataError naming the file for one that is missing, not a regular
    file, empty, over max_bytes, damaged or truncated, of type 2, or in SMPTE time.
    """
    return _read_midi(path, max_bytes)[0]


def first_tempo(path, max_bytes=MAX_MIDI_BYTES):
    """A type 0 or 1 MIDI file → its first tempo, quarter notes per minute: the tempo its earliest set_tempo sets
    (the last of several at that tick), or MIDI's default 120 when it sets none. DataError as midi_to_notes."""
    changes, tempos = _tempo_map(_read_file(path, max_bytes)[1])
    return 6e7 / int(tempos[np.searchsorted(changes, changes[min(1, len(changes) - 1)], side="right") - 1])


def midi_to_roll(path, *, lowest_note, highest_note, frames_per_second, max_frames=MAX_FRAMES,
                 max_bytes=MAX_MIDI_BYTES):
    """Read a MIDI file (all tracks but drums, tempo changes honoured) → rolls.Song to its last event, on the
    seconds grid: roll and onsets (frames, keys) bool, each note struck in its first frame; meter unknown.

    Raises DataError for a file that cannot be read (see midi_to_notes), BadRecording for one longer than max_frames frames.
    """
    notes, length = _read_midi(path, max_bytes)
    frames = frames_per_second / SAMPLE_RATE
    inside = (notes["note"] >= lowest_note) & (notes["note"] <= highest_note)
    return roll_from_spans(notes["start"][inside] * frames, notes["end"][inside] * frames,
                           notes["note"][inside].astype(np.int64) - lowest_note, highest_note - lowest_note + 1,
                           num_frames=np.ceil(length * frames - 1e-6), max_frames=max_frames)


def midi_to_performance(path, max_bytes=MAX_MIDI_BYTES):
    """A type 0 or 1 MIDI file → (PERFORMANCE_DTYPE notes in onset order, the file's length in seconds to its last event).

    Every channel, drums too, and every note, zero-length ones too. note_offs
    pair first in, first out; a note released while its channel's sustain
    pedal is down sounds until the pedal is let go; notes still sounding end
    with the file. Times are seconds through the tempo map, summed as a player
    runs the file (see _played_seconds). Raises DataError naming the file for
    one that cannot be read, as midi_to_notes does.
    """
    ticks_per_beat, tracks, last_tick = _read_file(path, max_bytes)
    starts, offs, keys, settings, sustained = _pair_notes(tracks)
    ends = offs.copy()
    ends[list(sustained)] = list(sustained.values())
    ends[ends < 0] = last_tick  # notes still sounding end with the file
    steps = np.unique(np.concatenate([[0], _joined(tracks, 4, np.int64), [last_tick]]))
    seconds = _played_seconds(steps, _tempo_map(tracks), ticks_per_beat)
    notes = np.zeros(len(starts), PERFORMANCE_DTYPE)
    notes["start"], notes["end"] = seconds[np.searchsorted(steps, starts)], seconds[np.searchsorted(steps, ends)]
    notes["channel"], notes["key"] = keys >> 7, keys & 0x7F
    for field, shift in _SETTING_SHIFTS.items():
        notes[field] = settings >> shift & 0x7F
    return notes, float(seconds[-1])


# ------------------------------------------------------------------ notes → MIDI

WRITE_CHANNELS = [channel for channel in range(16) if channel != DRUM_CHANNEL]  # mido's 0-based channels


def _note_beats(notes, tempo, bpm):
    """Notes → (onsets, offsets) in quarter notes: start_beat/beats when any note has them, else start/end at the tempo.

    With start_beat the times must agree with it at the tempo to a sample, or DataError.
    """
    samples_per_beat = tempo / 1e6 * SAMPLE_RATE
    if np.isnan(notes["start_beat"]).all():
        return notes["start"] / samples_per_beat, notes["end"] / samples_per_beat
    onsets, offsets, _ = beat_positions(notes)
    drift = np.maximum(np.abs(notes["start"] - onsets * samples_per_beat), np.abs(notes["end"] - offsets * samples_per_beat))
    if (drift > 1).any():
        first = int(np.argmax(drift > 1))
        raise DataError(f"note {first} (start_beat {onsets[first]:g}, beats {offsets[first] - onsets[first]:g}) is at "
                        f"{notes['start'][first]:.0f}-{notes['end'][first]:.0f} samples, not at "
                        f"{onsets[first] * samples_per_beat:.0f}-{offsets[first] * samples_per_beat:.0f} as {bpm:g} bpm "
                        "puts it: pass the bpm the notes follow, or set start_beat and beats to NaN to write them by their times")
    return onsets, offsets


def _voices(starts, ends, pitches):
    """Voice (0, 1...) for each note so that in no voice does a note lie inside another of its pitch.

    Within a voice, same-pitch notes then end in the order they start, so
    first-in-first-out pairing of note_offs gives back the notes written.
    """
    voice, last_end = np.zeros(len(starts), np.int64), []  # per voice: pitch → end of its latest note
    starts, ends, pitches = starts.tolist(), ends.tolist(), pitches.tolist()
    for i in sorted(range(len(starts)), key=lambda i: (starts[i], ends[i])):
        free = [number for number, held in enumerate(last_end) if held.get(pitches[i], -1) <= ends[i]]
        voice[i] = free[0] if free else len(last_end)
        if not free:
            last_end.append({})
        last_end[voice[i]][pitches[i]] = ends[i]
    return voice


def _track(timed):
    """(tick, order, message) triples → mido.MidiTrack in tick order with delta times; DataError for gaps MIDI cannot hold."""
    track, previous = mido.MidiTrack(), 0
    for tick, _, message in sorted(timed, key=itemgetter(0, 1)):
        if tick - previous > MAX_DELTA:
            raise DataError(f"a gap of {tick - previous} ticks between events, more than a MIDI file holds ({MAX_DELTA})")
        track.append(message.copy(time=tick - previous))
        previous = tick
    return track


def notes_to_midi(notes, path, *, bpm=120.0, ticks_per_beat=480, velocity=80):
    """Write NOTE_DTYPE notes as a type-1 MIDI file (atomically) → the number of notes written.

    One tempo, bpm, for the whole file (track 0). Ticks come from start_beat/beats
    when any note has them (rounded to the nearest tick), and then every note's
    start/end must be its beats at bpm to within a sample, so that seconds and
    beats both read back; notes without start_beat are placed by their times.
    One track per program (1-based instrument → program_change instrument - 1),
    each on its own channels, never channel 10 (drums); a program gets a second
    channel where a note would lie inside another of its pitch, so first-in-first-out
    reading gives back these notes. Notes shorter than a tick are not written.
    Writes no time signatures: the notes' bars (measure, beat, numerator,
    denominator) do not say where bars without notes fall, so they are left out
    and a reader sees 4/4.
    Raises DataError (BadRecording for unusable notes) for what cannot be written.
    """
    check_notes(notes)
    if not (np.isfinite(bpm) and bpm > 0) or not 1 <= mido.bpm2tempo(bpm) <= 0xFFFFFF:
        raise DataError(f"bpm must give 1 to {0xFFFFFF} microseconds per quarter note, not {bpm!r}")
    if not (isinstance(ticks_per_beat, (int, np.integer)) and 1 <= ticks_per_beat <= 0x7FFF):
        raise DataError(f"ticks_per_beat must be a whole number from 1 to {0x7FFF}, not {ticks_per_beat!r}")
    if not (isinstance(velocity, (int, np.integer)) and 1 <= velocity <= 127):
        raise DataError(f"velocity must be a whole number from 1 to 127, not {velocity!r}")
    if len(notes) and (notes["instrument"].min() < 1):
        raise DataError(f"instrument {notes['instrument'].min()} is not a MIDI program (1-128)")
    tempo = mido.bpm2tempo(bpm)
    onsets, offsets = _note_beats(notes, tempo, bpm)
    starts, ends = np.rint(onsets * ticks_per_beat), np.rint(offsets * ticks_per_beat)
    if len(notes) and ends.max() > 2 ** 53:
        raise DataError(f"notes last {ends.max() / ticks_per_beat:g} beats, far more than a MIDI file holds")
    keep = ends > starts
    starts, ends = starts[keep].astype(np.int64), ends[keep].astype(np.int64)
    pitches, programs = notes["note"][keep], notes["instrument"][keep]
    voices = _voices(starts, ends, pitches.astype(np.int64) + 128 * programs)
    parts = sorted(set(zip(programs.tolist(), voices.tolist())))  # (program, voice) → one channel each
    if len(parts) > len(WRITE_CHANNELS):
        raise DataError(f"the notes need {len(parts)} MIDI channels ({len(set(programs.tolist()))} programs and "
                        f"same-pitch notes inside others), more than the {len(WRITE_CHANNELS)} a file has besides drums")
    channel_of = {part: WRITE_CHANNELS[number] for number, part in enumerate(parts)}
    tracks = [mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=tempo, time=0)])]
    for program in sorted(set(programs.tolist())):
        timed = [(0, 0, mido.Message("program_change", channel=channel, program=program - 1))
                 for (part_program, _), channel in channel_of.items() if part_program == program]
        for i in np.flatnonzero(programs == program):
            channel, note = channel_of[program, int(voices[i])], int(pitches[i])
            timed.append((int(starts[i]), 2, mido.Message("note_on", channel=channel, note=note, velocity=velocity)))
            timed.append((int(ends[i]), 1, mido.Message("note_off", channel=channel, note=note, velocity=0)))
        tracks.append(_track(timed))  # at one tick: program changes, then offs, then ons
    midi = mido.MidiFile(type=1, ticks_per_beat=int(ticks_per_beat), tracks=tracks)
    with atomic_write(path) as file:
        midi.save(file=file)
    return len(starts)

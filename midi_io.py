"""Piano rolls ↔ standard MIDI files, with mido.

A roll is `(frames, keys)` bool, key 0 = MIDI note `lowest_note`. Time is kept
in frames: a file is written with `frames_per_beat` frames to a quarter note at
`bpm`, so every frame boundary falls on a whole tick and a roll read back with
the same frame rate is the roll that was written.
"""
import mido
import numpy as np

from files import DataError, atomic_write, check_readable_file
from rolls import MAX_FRAMES, roll_from_spans

TICKS_PER_FRAME = 120  # MIDI ticks per roll frame


def roll_to_notes(roll):
    """(frames, keys) bool roll → (start_frame, end_frame, key) int arrays, held frames merged into one note."""
    changes = np.diff(np.pad(roll.astype(np.int8), ((1, 1), (0, 0))), axis=0)
    on_frame, on_key = np.nonzero(changes == 1)
    off_frame, off_key = np.nonzero(changes == -1)
    on, off = np.lexsort((on_frame, on_key)), np.lexsort((off_frame, off_key))  # by key, then frame
    return on_key[on], on_frame[on], off_frame[off]


def roll_to_midi(roll, path, *, lowest_note, frames_per_beat, bpm, program=1, velocity=80):
    """Write a roll as a one-track MIDI file (atomically); program is 1-based as in MusicNet.

    Returns the number of notes written.
    """
    keys, starts, ends = roll_to_notes(roll)
    events = sorted([(start, 1, key) for key, start in zip(keys, starts)] +
                    [(end, 0, key) for key, end in zip(keys, ends)])  # offs before ons at a tick
    track = mido.MidiTrack([
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0),
        mido.Message("program_change", program=program - 1, channel=0, time=0),
    ])
    previous = 0
    for frame, is_on, key in events:
        kind = "note_on" if is_on else "note_off"
        track.append(mido.Message(kind, note=int(key) + lowest_note, velocity=velocity if is_on else 0,
                                  time=(int(frame) - previous) * TICKS_PER_FRAME))
        previous = int(frame)
    track.append(mido.MetaMessage("end_of_track", time=(len(roll) - previous) * TICKS_PER_FRAME))
    midi = mido.MidiFile(ticks_per_beat=int(round(frames_per_beat * TICKS_PER_FRAME)), tracks=[track])
    with atomic_write(path) as file:
        midi.save(file=file)
    return len(keys)


def _read_spans(path):
    """A MIDI file → ((start s, end s, pitch) float array, length in seconds); DataError if it cannot be read."""
    check_readable_file(path, "MIDI file")
    try:
        midi = mido.MidiFile(path)
        now, sounding, spans = 0.0, {}, []
        for message in midi:  # merged tracks, message.time in seconds
            now += message.time
            if message.type == "note_on" and message.velocity > 0:
                sounding.setdefault((message.channel, message.note), now)
            elif message.type in ("note_on", "note_off"):
                start = sounding.pop((message.channel, message.note), None)
                if start is not None:
                    spans.append((start, now, message.note))
    except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError) as err:
        raise DataError(f"{path} is not a readable MIDI file ({type(err).__name__}: {str(err)[:120]})") from None
    return np.array(spans, dtype=float).reshape(-1, 3), now


def midi_to_roll(path, *, lowest_note, highest_note, frames_per_second, max_frames=MAX_FRAMES):
    """Read a MIDI file (all tracks, tempo changes honoured) → (frames, keys) bool roll.

    Raises DataError for a file mido cannot read, BadRecording for one longer than max_frames frames.
    """
    spans, seconds = _read_spans(path)
    inside = (spans[:, 2] >= lowest_note) & (spans[:, 2] <= highest_note)
    num_keys = highest_note - lowest_note + 1
    return roll_from_spans(spans[inside, 0] * frames_per_second, spans[inside, 1] * frames_per_second,
                           spans[inside, 2].astype(np.int64) - lowest_note, num_keys,
                           num_frames=np.ceil(seconds * frames_per_second - 1e-6), max_frames=max_frames)

"""midi_io: MIDI files → notes, rolls and performances, and notes and rolls → MIDI files, through real files
written with mido or byte by byte."""
import math
import os
import struct
import tracemalloc
from fractions import Fraction

import mido
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import midi_io
import rolls
from files import DataError
from midi_io import (PERFORMANCE_DTYPE, TICKS_PER_FRAME, midi_to_notes, midi_to_performance, midi_to_roll, notes_to_midi,
                     roll_to_midi)
from rolls import roll_to_notes

SR = rolls.SAMPLE_RATE
EXAMPLES = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# ------------------------------------------------------------------ building files

def midi_file(path, *tracks, ticks_per_beat=480, file_type=1):
    """Write tracks of (absolute tick, message) pairs with mido (order kept at a tie) → path."""
    midi = mido.MidiFile(type=file_type, ticks_per_beat=ticks_per_beat)
    for events in tracks:
        track, previous = mido.MidiTrack(), 0
        for tick, message in sorted(events, key=lambda event: event[0]):
            track.append(message.copy(time=tick - previous))
            previous = tick
        midi.tracks.append(track)
    midi.save(path)
    return path


def notes_track(*notes, channel=0, program=None):
    """(pitch, velocity, start_tick, end_tick) tuples → (tick, message) events on one channel, offs first at a tick."""
    events = [] if program is None else [(0, -1, mido.Message("program_change", channel=channel, program=program - 1))]
    for pitch, velocity, start, end in notes:
        events.append((start, 1, mido.Message("note_on", channel=channel, note=pitch, velocity=velocity)))
        events.append((end, 0, mido.Message("note_off", channel=channel, note=pitch)))
    return [(tick, message) for tick, _, message in sorted(events, key=lambda event: event[:2])]


def tempo(tick, bpm):
    """A set_tempo event at tick."""
    return tick, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))


def on(tick, pitch, velocity=80, channel=0):
    return tick, mido.Message("note_on", channel=channel, note=pitch, velocity=velocity)


def off(tick, pitch, channel=0):
    return tick, mido.Message("note_off", channel=channel, note=pitch)


def beats(notes):
    """Notes → [(pitch, instrument, start_beat, beats)] in their order."""
    return [(int(n["note"]), int(n["instrument"]), float(n["start_beat"]), float(n["beats"])) for n in notes]


def bars(notes):
    """Notes → [(measure, beat, numerator, denominator)] in their order."""
    return [(int(n["measure"]), float(n["beat"]), int(n["numerator"]), int(n["denominator"])) for n in notes]


def seconds(notes):
    """Notes → [(start, end)] in seconds, rounded to the microsecond."""
    return [(round(n["start"] / SR, 6), round(n["end"] / SR, 6)) for n in notes]


def delta_file(path, tracks, ticks_per_beat):
    """Write tracks of (delta tick, message) pairs as a type-1 file with mido → path."""
    midi = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat,
                         tracks=[mido.MidiTrack(message.copy(time=delta) for delta, message in track) for track in tracks])
    midi.save(path)
    return path


def smf(*tracks, file_type=1, division=480, num_tracks=None):
    """Raw bytes of a MIDI file: a header and one MTrk chunk per bytes object given."""
    header = b"MThd" + struct.pack(">LHHH", 6, file_type, len(tracks) if num_tracks is None else num_tracks, division)
    return header + b"".join(b"MTrk" + struct.pack(">L", len(body)) + body for body in tracks)


def csv_notes(rows, bpm=120.0):
    """(instrument, pitch, start_beat, beats) rows → NOTE_DTYPE notes as the CSV release has them, times at one tempo."""
    notes = np.zeros(len(rows), rolls.NOTE_DTYPE)
    notes["measure"] = notes["beat"] = np.nan
    if rows:
        notes["instrument"], notes["note"], notes["start_beat"], notes["beats"] = zip(*rows)
    notes["quarters"] = notes["beats"]
    notes["start"] = notes["start_beat"] * 60 / bpm * SR
    notes["end"] = (notes["start_beat"] + notes["beats"]) * 60 / bpm * SR
    return notes


def in_order(notes):
    """Notes sorted by every field that identifies a note, so two lists can be compared row by row."""
    return notes[np.lexsort((notes["end"], notes["instrument"], notes["note"], notes["start"]))]


# ------------------------------------------------------------------ reading: what a file means

def test_two_tracks_are_merged_into_one_list_sorted_by_start_then_note(tmp_path):
    path = midi_file(tmp_path / "a.mid", notes_track((64, 80, 480, 960), (60, 80, 0, 480)),
                     notes_track((55, 80, 480, 1440), channel=1))
    assert beats(midi_to_notes(path)) == [(60, 1, 0.0, 1.0), (55, 1, 1.0, 2.0), (64, 1, 1.0, 1.0)]


def test_times_are_samples_at_120_bpm_when_the_file_sets_no_tempo(tmp_path):
    path = midi_file(tmp_path / "a.mid", notes_track((60, 80, 480, 960)))
    notes = midi_to_notes(path)
    assert (notes["start"][0], notes["end"][0]) == (SR / 2, SR)


def test_drums_on_channel_10_are_left_out(tmp_path):
    path = midi_file(tmp_path / "a.mid", notes_track((60, 80, 0, 480)),
                     notes_track((36, 100, 0, 120), (38, 100, 480, 600), channel=9, program=1))
    assert beats(midi_to_notes(path)) == [(60, 1, 0.0, 1.0)]


def test_a_tempo_change_in_another_track_moves_seconds_but_not_beats(tmp_path):
    conductor = [tempo(0, 120), tempo(960, 60)]  # 120 bpm for two beats, then 60
    path = midi_file(tmp_path / "a.mid", conductor, notes_track((60, 80, 0, 480), (62, 80, 1440, 1920)))
    notes = midi_to_notes(path)
    assert beats(notes) == [(60, 1, 0.0, 1.0), (62, 1, 3.0, 1.0)]
    assert seconds(notes) == [(0.0, 0.5), (2.0, 3.0)]


def test_two_tempos_at_one_tick_the_later_one_holds(tmp_path):
    path = midi_file(tmp_path / "a.mid", [tempo(0, 30), tempo(0, 60)], notes_track((60, 80, 480, 960)))
    assert seconds(midi_to_notes(path)) == [(1.0, 2.0)]


def test_program_changes_give_each_channel_its_1_based_instrument_at_each_onset(tmp_path):
    violin = notes_track((76, 80, 0, 480), channel=0, program=41)
    violin.append((480, mido.Message("program_change", channel=0, program=42)))  # viola (43 in MusicNet's numbering) from beat 1
    violin += notes_track((64, 80, 480, 960), channel=0)
    untouched = notes_track((48, 80, 0, 960), channel=1)
    path = midi_file(tmp_path / "a.mid", violin, untouched)
    assert beats(midi_to_notes(path)) == [(48, 1, 0.0, 2.0), (76, 41, 0.0, 1.0), (64, 43, 1.0, 1.0)]


def test_a_program_change_in_one_track_holds_for_its_channel_in_another(tmp_path):
    setup = [(0, mido.Message("program_change", channel=3, program=73))]
    path = midi_file(tmp_path / "a.mid", setup, notes_track((72, 80, 0, 480), channel=3))
    assert beats(midi_to_notes(path)) == [(72, 74, 0.0, 1.0)]


def test_note_on_with_velocity_0_ends_a_note(tmp_path):
    path = midi_file(tmp_path / "a.mid", [on(0, 60), on(240, 60, velocity=0), on(480, 62), on(960, 62, velocity=0)])
    assert beats(midi_to_notes(path)) == [(60, 1, 0.0, 0.5), (62, 1, 1.0, 1.0)]


def test_overlapping_notes_of_one_pitch_pair_first_in_first_out(tmp_path):
    path = midi_file(tmp_path / "a.mid", [on(0, 60), on(240, 60), off(480, 60), off(960, 60), off(1200, 60)])
    assert beats(midi_to_notes(path)) == [(60, 1, 0.0, 1.0), (60, 1, 0.5, 1.5)]  # the spare note_off is ignored


def test_same_pitch_on_two_channels_pairs_each_channel_on_its_own(tmp_path):
    path = midi_file(tmp_path / "a.mid", [on(0, 60, channel=0), on(0, 60, channel=1), off(480, 60, channel=1),
                                          off(960, 60, channel=0)])
    assert beats(midi_to_notes(path)) == [(60, 1, 0.0, 2.0), (60, 1, 0.0, 1.0)]


def test_notes_still_sounding_end_with_the_files_last_event(tmp_path):
    last = (1920, mido.MetaMessage("end_of_track"))
    path = midi_file(tmp_path / "a.mid", [on(0, 60), on(480, 64), off(960, 64)], [tempo(0, 60), last])
    notes = midi_to_notes(path)
    assert beats(notes) == [(60, 1, 0.0, 4.0), (64, 1, 1.0, 1.0)]
    assert seconds(notes) == [(0.0, 4.0), (1.0, 2.0)]


def test_zero_length_notes_are_dropped(tmp_path):
    path = midi_file(tmp_path / "a.mid", [on(0, 60), off(0, 60), on(480, 62), off(960, 62), on(960, 64)])
    assert beats(midi_to_notes(path)) == [(62, 1, 1.0, 1.0)]  # 64 starts at the last event: no length either


def test_written_duration_is_the_length_in_quarters_and_bars_are_4_4_without_a_time_signature(tmp_path):
    notes = midi_to_notes(midi_file(tmp_path / "a.mid", notes_track((60, 80, 0, 720), (62, 80, 2400, 2880))))
    assert notes["quarters"][0] == 1.5
    assert bars(notes) == [(0, 0.0, 4, 4), (1, 0.25, 4, 4)]  # beat 5 is the second beat of bar 1


def test_type_0_file_reads_like_type_1(tmp_path):
    events = [tempo(0, 90), *notes_track((60, 80, 0, 480), channel=0, program=41),
              *notes_track((48, 80, 240, 960), channel=1, program=43)]
    single = midi_to_notes(midi_file(tmp_path / "type0.mid", events, file_type=0))
    split = midi_to_notes(midi_file(tmp_path / "type1.mid", events[:1], events[1:4], events[4:]))
    assert beats(single) == [(60, 41, 0.0, 1.0), (48, 43, 0.5, 1.5)]
    assert single.tobytes() == split.tobytes()  # NaN fields too


def test_other_events_sysex_and_running_status_are_read_through(tmp_path):
    events = [(0, mido.MetaMessage("track_name", name="Piano")), (0, mido.Message("sysex", data=[1, 2, 3])),
              (0, mido.Message("control_change", control=64, value=127)), on(0, 60), on(0, 64),
              (240, mido.Message("pitchwheel", pitch=100)), off(480, 60), off(480, 64),
              (480, mido.MetaMessage("text", text="x" * 300))]  # mido writes running status where it can
    assert beats(midi_to_notes(midi_file(tmp_path / "a.mid", events))) == [(60, 1, 0.0, 1.0), (64, 1, 0.0, 1.0)]


def test_an_empty_track_list_gives_no_notes(tmp_path):
    path = tmp_path / "a.mid"
    path.write_bytes(smf())
    assert len(midi_to_notes(path)) == 0 and midi_to_notes(path).dtype == rolls.NOTE_DTYPE


def test_chunks_other_than_tracks_are_skipped(tmp_path):
    path = tmp_path / "a.mid"
    track = bytes([0, 0x90, 60, 80, 0x83, 0x60, 0x80, 60, 0])  # note 60 for 480 ticks
    path.write_bytes(smf(num_tracks=1) + b"XFIH" + struct.pack(">L", 3) + b"abc" + b"MTrk" + struct.pack(">L", 9) + track)
    assert beats(midi_to_notes(path)) == [(60, 1, 0.0, 1.0)]


# ------------------------------------------------------------------ reading: bars from time signatures

def meter(tick, numerator, denominator):
    """A time_signature event at tick."""
    return tick, mido.MetaMessage("time_signature", numerator=numerator, denominator=denominator)


def repeated(pitch, count, length=480, start=0):
    """count notes of one pitch one after another from tick start, each `length` ticks: the key re-struck."""
    return notes_track(*[(pitch, 80, start + length * i, start + length * (i + 1)) for i in range(count)])


def test_3_4_bars_count_from_0_and_beat_is_the_fraction_of_the_bar(tmp_path):
    path = midi_file(tmp_path / "a.mid", [meter(0, 3, 4)], repeated(60, 7))
    assert bars(midi_to_notes(path)) == [(0, 0.0, 3, 4), (0, 1 / 3, 3, 4), (0, 2 / 3, 3, 4), (1, 0.0, 3, 4),
                                         (1, 1 / 3, 3, 4), (1, 2 / 3, 3, 4), (2, 0.0, 3, 4)]


def test_a_6_8_bar_holds_six_eighths(tmp_path):
    path = midi_file(tmp_path / "a.mid", [meter(0, 6, 8)], repeated(67, 8, length=240))
    assert bars(midi_to_notes(path)) == [(0, step / 6, 6, 8) for step in range(6)] + [(1, 0.0, 6, 8), (1, 1 / 6, 6, 8)]


def test_a_short_first_time_signature_is_a_pickup_bar(tmp_path):
    path = midi_file(tmp_path / "a.mid", [meter(0, 1, 4), meter(480, 3, 4)], repeated(60, 5))
    assert bars(midi_to_notes(path)) == [(0, 0.0, 1, 4), (1, 0.0, 3, 4), (1, 1 / 3, 3, 4), (1, 2 / 3, 3, 4),
                                         (2, 0.0, 3, 4)]


def test_leading_rests_put_the_first_note_inside_bar_0(tmp_path):
    path = midi_file(tmp_path / "a.mid", [meter(0, 3, 4)], repeated(60, 3, start=960))  # an upbeat on beat 3
    assert bars(midi_to_notes(path)) == [(0, 2 / 3, 3, 4), (1, 0.0, 3, 4), (1, 1 / 3, 3, 4)]


def test_a_time_signature_inside_a_bar_starts_a_new_bar_there(tmp_path):
    path = midi_file(tmp_path / "a.mid", [meter(0, 4, 4), meter(960, 3, 4), meter(2400, 3, 4), meter(2880, 3, 4)],
                     repeated(60, 7))  # the same signature again at 2880 starts a bar too
    assert bars(midi_to_notes(path)) == [(0, 0.0, 4, 4), (0, 0.25, 4, 4), (1, 0.0, 3, 4), (1, 1 / 3, 3, 4),
                                         (1, 2 / 3, 3, 4), (2, 0.0, 3, 4), (3, 0.0, 3, 4)]


def test_tempo_and_meter_changes_mid_piece_move_seconds_and_bars_each_on_its_own(tmp_path):
    conductor = [tempo(0, 120), meter(0, 2, 4), tempo(960, 60), meter(1920, 3, 8)]
    notes = midi_to_notes(midi_file(tmp_path / "a.mid", conductor, repeated(72, 12, length=240)))
    assert bars(notes) == [(0, 0.0, 2, 4), (0, 0.25, 2, 4), (0, 0.5, 2, 4), (0, 0.75, 2, 4),
                           (1, 0.0, 2, 4), (1, 0.25, 2, 4), (1, 0.5, 2, 4), (1, 0.75, 2, 4),
                           (2, 0.0, 3, 8), (2, 1 / 3, 3, 8), (2, 2 / 3, 3, 8), (3, 0.0, 3, 8)]
    assert [start for start, _ in seconds(notes)][::4] == [0.0, 1.0, 3.0]  # 60 bpm from beat 2


def test_time_signatures_at_one_tick_the_last_holds_earlier_tracks_first(tmp_path):
    path = midi_file(tmp_path / "a.mid", [meter(0, 3, 4)], [meter(0, 7, 8), meter(0, 2, 4), *repeated(60, 3)])
    assert bars(midi_to_notes(path)) == [(0, 0.0, 2, 4), (0, 0.5, 2, 4), (1, 0.0, 2, 4)]


MALFORMED_SIGNATURES = {  # name: the time_signature meta event's bytes after its delta time
    "numerator_0": bytes([0xFF, 0x58, 4, 0, 2, 24, 8]),
    "denominator_512": bytes([0xFF, 0x58, 4, 3, 9, 24, 8]),
    "one_data_byte": bytes([0xFF, 0x58, 1, 3]),
}


@pytest.mark.parametrize("name", sorted(MALFORMED_SIGNATURES))
def test_a_malformed_time_signature_is_ignored(tmp_path, name):
    note = bytes([0, 0x90, 60, 80, 0x87, 0x40, 0x80, 60, 0])  # note 60 held 960 ticks
    again = bytes([0x8B, 0x20, 0x90, 60, 80, 0x83, 0x60, 0x80, 60, 0])  # 1440 ticks later, for 480
    path = tmp_path / "a.mid"
    path.write_bytes(smf(bytes([0]) + MALFORMED_SIGNATURES[name] + note + again))
    assert bars(midi_to_notes(path)) == [(0, 0.0, 4, 4), (1, 0.25, 4, 4)]  # as if it were not there: 4/4


# ------------------------------------------------------------------ reading: files that cannot be used

BROKEN = {  # name: (bytes, what the error says)
    "empty": (b"", "it is empty"),
    "wave": (b"RIFF\x24\x00\x00\x00WAVEfmt ", "not a standard MIDI file"),
    "short_header": (b"MThd\x00\x00\x00\x06\x00\x01", "header is cut short"),
    "missing_track": (smf(bytes([0, 0xFF, 0x2F, 0]), num_tracks=2), "ends after 1 of its 2 tracks"),
    "huge_track_claim": (smf() [:10] + b"\x00\x01\x01\xe0MTrk\xff\xff\xff\xff", "claims 4294967295 bytes, more than the file holds"),
    "cut_event": (smf(bytes([0, 0x90, 60])), "track 1 ends in the middle of an event"),
    "meta_past_end": (smf(bytes([0, 0xFF, 0x01, 0x10, 65, 66])), "runs past the end of its track"),
    "data_byte_over_127": (smf(bytes([0, 0x90, 60, 0xC0])), "a data byte over 127"),
    "no_running_status": (smf(bytes([0, 60, 80])), "running status with no status"),
    "long_number": (smf(bytes([0x80, 0x80, 0x80, 0x80, 0, 0x90, 60, 80])), "longer than 4 bytes"),
    "undefined_status": (smf(bytes([0, 0xF4])), "undefined status byte 0xf4"),
    "short_tempo": (smf(bytes([0, 0xFF, 0x51, 0x02, 7, 0xA1])), "set_tempo"),
    "zero_tempo": (smf(bytes([0, 0xFF, 0x51, 0x03, 0, 0, 0])), "set_tempo"),
    "type_2": (smf(bytes([0, 0xFF, 0x2F, 0]), file_type=2), "type 2"),
    "type_7": (smf(file_type=7), "type 7"),
    "smpte": (smf(bytes([0, 0xFF, 0x2F, 0]), division=0xE728), "SMPTE"),  # 25 frames a second, 40 ticks a frame
    "no_ticks": (smf(division=0), "0 ticks per quarter"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_damaged_or_unsupported_file_is_a_data_error_naming_it(tmp_path, name):
    data, reason = BROKEN[name]
    path = tmp_path / f"{name}.mid"
    path.write_bytes(data)
    with pytest.raises(DataError) as caught:
        midi_to_notes(path)
    assert str(path) in str(caught.value) and reason in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_truncated_file_is_a_data_error(tmp_path):
    path = midi_file(tmp_path / "a.mid", notes_track(*[(60 + i, 80, 480 * i, 480 * i + 240) for i in range(10)]))
    whole = path.read_bytes()
    for cut in range(1, len(whole)):
        path.write_bytes(whole[:cut])
        with pytest.raises(DataError, match="a.mid is not a readable MIDI file"):
            midi_to_notes(path)


def test_a_header_claiming_gigabytes_allocates_nothing_like_it(tmp_path):
    path = tmp_path / "claim.mid"
    path.write_bytes(BROKEN["huge_track_claim"][0])
    tracemalloc.start()
    try:
        with pytest.raises(DataError):
            midi_to_notes(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_a_file_over_max_bytes_is_refused_by_its_size(tmp_path):
    path = midi_file(tmp_path / "big.mid", notes_track(*[(60, 80, 480 * i, 480 * i + 240) for i in range(100)]))
    with pytest.raises(DataError, match=r"big.mid is 0.0 MB, over the 0.0001 MB limit"):
        midi_to_notes(path, max_bytes=100)
    assert len(midi_to_notes(path, max_bytes=os.path.getsize(path))) == 100


def test_a_folder_a_fifo_or_a_missing_file_is_a_data_error(tmp_path):
    os.mkfifo(tmp_path / "pipe.mid")
    (tmp_path / "folder.mid").mkdir()
    for name, reason in [("folder.mid", "is a folder"), ("pipe.mid", "not a regular file"), ("gone.mid", "not found")]:
        with pytest.raises(DataError, match=f"{name}.* {reason}|{name} {reason}"):
            midi_to_notes(tmp_path / name)


def test_a_file_with_many_events_is_read_whole(tmp_path):
    notes = [(36 + i % 60, 80, 10 * i, 10 * i + 15) for i in range(50_000)]  # overlapping: every pitch reused
    path = midi_file(tmp_path / "long.mid", notes_track(*notes), ticks_per_beat=10)
    read = midi_to_notes(path)
    assert len(read) == 50_000 and read["beats"].min() == read["beats"].max() == 1.5


# ------------------------------------------------------------------ reading: against mido's own reading

CONTROLLERS = {0: "bank", 7: "volume", 10: "pan", 11: "expression", 64: "pedal"}
PERFORMANCE_FIELDS = ["channel", "key", "velocity", "bank", "program", "volume", "expression", "pan", "start", "sounding"]


def mido_playback(path):
    """What mido makes of a file, slowly → (notes in onset order as dicts, ticks per beat, seconds at the last message).

    Merged messages; times in ticks and in seconds summed message by message;
    note_offs pair first in, first out per channel and pitch; a note released
    while its channel's pedal is down (64 or more) sounds until the pedal is let go
    ("sounding"); notes left sounding end at the last message.
    """
    midi = mido.MidiFile(path)
    now, tick, found, sounding, held = 0.0, 0, [], {}, {}
    channels = [{"bank": 0, "program": 0, "volume": 100, "expression": 127, "pan": 64, "pedal": 0} for _ in range(16)]
    for timed, message in zip(mido.merge_tracks(midi.tracks), midi):  # the same messages: delta ticks and delta seconds
        now, tick = now + message.time, tick + timed.time
        channel = getattr(message, "channel", None)
        if message.type == "program_change":
            channels[channel]["program"] = message.program
        elif message.type == "control_change" and message.control in CONTROLLERS:
            channels[channel][CONTROLLERS[message.control]] = message.value
            if message.control == 64 and message.value < 64:
                for note in held.pop(channel, []):
                    note["sounding"] = now
        elif message.type == "note_on" and message.velocity > 0:
            found.append({"channel": channel, "key": message.note, "velocity": message.velocity, "start_tick": tick,
                          "start": now, **{name: value for name, value in channels[channel].items() if name != "pedal"}})
            sounding.setdefault((channel, message.note), []).append(found[-1])
        elif message.type in ("note_on", "note_off") and sounding.get((channel, message.note)):
            note = sounding[channel, message.note].pop(0)
            note.update(end_tick=tick, end=now)
            if channels[channel]["pedal"] >= 64:
                held.setdefault(channel, []).append(note)
            else:
                note["sounding"] = now
    for note in found:
        note.update({name: note.get(name, default) for name, default in (("end_tick", tick), ("end", now), ("sounding", now))})
    return found, midi.ticks_per_beat, now


def reference_notes(path):
    """What mido makes of a file for the rolls: mido_playback's notes but drums and zero-length ones, by start then pitch."""
    found, ticks_per_beat, _ = mido_playback(path)
    kept = sorted((note for note in found if note["channel"] != 9 and note["end_tick"] > note["start_tick"]),
                  key=lambda note: (note["start_tick"], note["key"]))
    return [(note["key"], note["program"] + 1, note["start_tick"] / ticks_per_beat,
             (note["end_tick"] - note["start_tick"]) / ticks_per_beat, note["start"], note["end"], note["start_tick"])
            for note in kept]


def reference_bars(path, ticks):
    """Where ticks fall in the bars of a file, counted slowly with fractions from mido's reading →
    [(measure, beat, numerator, denominator)]: 4/4 until a time signature, each one starting a bar, the last at a tick holding."""
    midi, tick, changes = mido.MidiFile(path), 0, [(0, 4, 4)]
    for message in mido.merge_tracks(midi.tracks):
        tick += message.time
        if message.type == "time_signature":
            changes.append((tick, message.numerator, message.denominator))
    found = []
    for at in ticks:
        bar, start, numerator, denominator = 0, 0, 4, 4
        for change, *signature in (change for change in changes if change[0] <= at):
            bar += math.ceil(Fraction((change - start) * denominator, 4 * numerator * midi.ticks_per_beat))
            start, (numerator, denominator) = change, signature
        position = Fraction((at - start) * denominator, 4 * numerator * midi.ticks_per_beat)
        found.append((bar + math.floor(position), float(position % 1), numerator, denominator))
    return found


channels = st.sampled_from([0, 0, 1, 9])  # few channels and pitches: notes of one pitch overlap often
note_ons = st.builds(lambda c, n, v: mido.Message("note_on", channel=c, note=n, velocity=v),
                     channels, st.integers(60, 61), st.sampled_from([64, 1, 0]))
messages = st.one_of(
    note_ons, note_ons,
    st.builds(lambda c, n: mido.Message("note_off", channel=c, note=n), channels, st.integers(60, 61)),
    st.builds(lambda c, p: mido.Message("program_change", channel=c, program=p), st.sampled_from([0, 1, 9]),
              st.integers(0, 127)),
    st.builds(lambda t: mido.MetaMessage("set_tempo", tempo=t), st.integers(1, 2_000_000)),
    st.just(mido.Message("control_change", control=7, value=100)),
    st.just(mido.Message("sysex", data=[0x7E, 0x7F])),
    st.just(mido.MetaMessage("text", text="hello")),
    st.builds(lambda n, d: mido.MetaMessage("time_signature", numerator=n, denominator=d),
              st.integers(1, 13), st.sampled_from([1, 2, 4, 8, 16, 64])),
)
tracks = st.lists(st.lists(st.tuples(st.sampled_from([0, 0, 1, 60, 300]), messages), min_size=4, max_size=40),
                  min_size=1, max_size=3)


@EXAMPLES
@given(events=tracks, ticks_per_beat=st.sampled_from([1, 96, 480, 7]))
def test_any_file_reads_as_mido_reads_it(tmp_path, events, ticks_per_beat):
    path = delta_file(tmp_path / "random.mid", events, ticks_per_beat)
    notes, expected = midi_to_notes(path), reference_notes(path)
    assert beats(notes) == [row[:4] for row in expected]
    assert bars(notes) == reference_bars(path, [row[6] for row in expected])
    np.testing.assert_allclose(notes["start"], [row[4] * SR for row in expected], rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(notes["end"], [row[5] * SR for row in expected], rtol=1e-9, atol=1e-6)


# ------------------------------------------------------------------ reading a performance: what the renderer plays

def performance(notes):
    """PERFORMANCE_DTYPE notes → [(channel, key, velocity, bank, program, volume, expression, pan, start, end)]."""
    fields = ["channel", "key", "velocity", "bank", "program", "volume", "expression", "pan", "start", "end"]
    return [tuple(note) for note in notes[fields].tolist()]


def control(tick, number, value, channel=0):
    return tick, mido.Message("control_change", channel=channel, control=number, value=value)


def program_change(tick, program, channel=0):
    return tick, mido.Message("program_change", channel=channel, program=program)


def test_a_performance_has_each_notes_velocity_bank_program_and_controllers_at_its_onset(tmp_path):
    events = [control(0, 0, 8), program_change(0, 48), control(0, 7, 90), control(0, 10, 20), on(0, 60, velocity=100),
              control(480, 11, 60), control(480, 10, 127), on(480, 64, velocity=30), off(960, 60), off(960, 64)]
    path = midi_file(tmp_path / "a.mid", [tempo(0, 60)], events)  # one second a beat
    notes, length = midi_to_performance(path)
    assert notes.dtype == PERFORMANCE_DTYPE and length == 2.0
    assert performance(notes) == [(0, 60, 100, 8, 48, 90, 127, 20, 0.0, 2.0), (0, 64, 30, 8, 48, 90, 60, 127, 1.0, 2.0)]


def test_a_channel_that_sets_nothing_plays_at_the_general_midi_defaults(tmp_path):
    notes, _ = midi_to_performance(midi_file(tmp_path / "a.mid", notes_track((60, 80, 0, 480), channel=3)))
    assert performance(notes) == [(3, 60, 80, 0, 0, 100, 127, 64, 0.0, 0.5)]


def test_the_sustain_pedal_holds_released_notes_until_it_is_let_go(tmp_path):
    events = [control(0, 64, 127), on(0, 60), off(240, 60), on(240, 62), off(480, 62), control(960, 64, 0),
              on(960, 64), off(1200, 64), control(1200, 64, 64), on(1440, 65), off(1680, 65),
              (1920, mido.MetaMessage("text", text="end"))]
    path = midi_file(tmp_path / "a.mid", events)  # 120 bpm: a beat is half a second
    notes, length = midi_to_performance(path)
    assert [(key, start, end) for _, key, *_, start, end in performance(notes)] == [
        (60, 0.0, 1.0), (62, 0.25, 1.0), (64, 1.0, 1.25), (65, 1.5, 2.0)]  # 65 is still held when the file ends
    assert length == 2.0
    assert seconds(midi_to_notes(path)) == [(0.0, 0.25), (0.25, 0.5), (1.0, 1.25), (1.5, 1.75)]  # rolls: the notes as written


def test_a_performance_keeps_drums_and_zero_length_notes_in_onset_order(tmp_path):
    events = [on(0, 64), on(0, 36, velocity=120, channel=9), off(0, 64), off(240, 36, channel=9), on(240, 60), off(480, 60)]
    path = midi_file(tmp_path / "a.mid", events)
    assert [(channel, key, start, end) for channel, key, *_, start, end in performance(midi_to_performance(path)[0])] == [
        (0, 64, 0.0, 0.0), (9, 36, 0.0, 0.25), (0, 60, 0.25, 0.5)]
    assert beats(midi_to_notes(path)) == [(60, 1, 0.5, 0.5)]


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_damaged_file_is_refused_in_the_same_words_for_a_performance_as_for_notes(tmp_path, name):
    path = tmp_path / f"{name}.mid"
    path.write_bytes(BROKEN[name][0])
    with pytest.raises(DataError) as for_notes:
        midi_to_notes(path)
    with pytest.raises(DataError) as for_performance:
        midi_to_performance(path)
    assert str(for_performance.value) == str(for_notes.value)


controls = st.builds(lambda c, number, value: mido.Message("control_change", channel=c, control=number, value=value),
                     channels, st.sampled_from([0, 7, 10, 11, 64, 64, 1]), st.sampled_from([0, 63, 64, 127, 5]))
played = st.lists(st.lists(st.tuples(st.sampled_from([0, 0, 1, 60, 300]), st.one_of(messages, controls)),
                           min_size=4, max_size=40), min_size=1, max_size=3)


@EXAMPLES
@given(events=played, ticks_per_beat=st.sampled_from([1, 96, 480, 7]))
def test_any_file_plays_as_mido_plays_it_to_the_last_bit(tmp_path, events, ticks_per_beat):
    path = delta_file(tmp_path / "random.mid", events, ticks_per_beat)
    notes, length = midi_to_performance(path)
    expected, _, now = mido_playback(path)
    assert performance(notes) == [tuple(note[field] for field in PERFORMANCE_FIELDS) for note in expected]
    assert length == now  # seconds summed as mido sums them: the built-in renderer's samples stay where they were


# ------------------------------------------------------------------ writing notes and reading them back

QUARTET = [(41, 76, 0.0, 1.0), (41, 74, 1.0, 0.5), (41, 72, 1.5, 0.5),  # (instrument, pitch, start_beat, beats)
           (42, 64, 0.0, 2.0), (43, 48, 0.0, 4.0), (43, 48, 1.0, 1.0),   # a cello note inside another of its pitch
           (1, 60, 2.0, 2.0), (1, 60, 3.0, 1.5)]                          # a piano note overlapping the next


def test_notes_to_midi_writes_a_tempo_track_then_one_track_per_program_never_on_channel_10(tmp_path):
    path = tmp_path / "quartet.mid"
    assert notes_to_midi(csv_notes(QUARTET, bpm=100), path, bpm=100) == 8
    midi = mido.MidiFile(path)
    assert midi.type == 1 and len(midi.tracks) == 5  # tempo, then programs 1, 41, 42, 43
    assert [m.tempo for m in midi.tracks[0] if m.type == "set_tempo"] == [600000]
    programs = [sorted({m.program for m in track if m.type == "program_change"}) for track in midi.tracks[1:]]
    assert programs == [[0], [40], [41], [42]]
    channels = {m.channel for track in midi.tracks for m in track if not m.is_meta}
    assert 9 not in channels and len(channels) == 5  # the cello's inner note gets a channel of its own


def test_written_notes_read_back_the_same(tmp_path):
    notes = csv_notes(QUARTET, bpm=100)
    notes_to_midi(notes, tmp_path / "quartet.mid", bpm=100)
    back = midi_to_notes(tmp_path / "quartet.mid")
    assert beats(back) == beats(notes[np.lexsort((notes["note"], notes["start"]))])
    np.testing.assert_allclose(back["start"], np.sort(notes["start"]), rtol=1e-12)


def test_notes_without_beats_are_written_by_their_times_to_the_nearest_tick(tmp_path):
    notes = csv_notes([(1, 60, 0.0, 1.0), (1, 62, 1.0, 1.0)])
    notes["start_beat"] = notes["beats"] = np.nan
    notes["start"] += [100, 0]  # 100 samples late: 2.18 ticks at 120 bpm and 480 ticks a beat
    notes_to_midi(notes, tmp_path / "a.mid")
    back = midi_to_notes(tmp_path / "a.mid")
    assert back["start_beat"].tolist() == [2 / 480, 1.0]
    assert np.abs(back["start"] - notes["start"]).max() < SR / 2 / 480 / 2  # half a tick


def test_times_that_disagree_with_start_beat_at_the_tempo_are_refused(tmp_path):
    notes = csv_notes(QUARTET, bpm=100)
    with pytest.raises(DataError, match=r"note 0 \(start_beat 0, beats 1\) is at 0-26460 samples, not at 0-22050 as 120 bpm"):
        notes_to_midi(notes, tmp_path / "a.mid", bpm=120)
    assert not (tmp_path / "a.mid").exists()


def test_notes_that_need_more_than_15_channels_are_refused(tmp_path):
    notes = csv_notes([(program, 60, 0.0, 1.0) for program in range(1, 17)])
    with pytest.raises(DataError, match="need 16 MIDI channels"):
        notes_to_midi(notes, tmp_path / "a.mid")


def test_a_note_shorter_than_a_tick_is_not_written(tmp_path):
    notes = csv_notes([(1, 60, 0.0, 1.0), (1, 62, 0.5, 0.0)])
    assert notes_to_midi(notes, tmp_path / "a.mid") == 1
    assert beats(midi_to_notes(tmp_path / "a.mid")) == [(60, 1, 0.0, 1.0)]


def test_no_notes_write_a_file_with_no_notes(tmp_path):
    assert notes_to_midi(csv_notes([]), tmp_path / "a.mid") == 0
    assert len(midi_to_notes(tmp_path / "a.mid")) == 0


def test_the_same_music_gives_the_same_rolls_from_notes_and_from_midi(tmp_path):
    notes = csv_notes(QUARTET, bpm=120)
    notes_to_midi(notes, tmp_path / "quartet.mid", bpm=120)
    back = midi_to_notes(tmp_path / "quartet.mid")
    for grid in ({"time_base": "seconds", "steps_per_second": 8.0}, {"time_base": "beats", "steps_per_beat": 4}):
        expected, read = rolls.organize_song(notes, **grid), rolls.organize_song(back, **grid)
        assert expected.roll.any()
        np.testing.assert_array_equal(read.roll, expected.roll)
        np.testing.assert_array_equal(read.onsets, expected.onsets)


eighths = st.integers(0, 8 * 50).map(lambda n: n / 8)
csv_rows = st.lists(st.tuples(st.sampled_from([1, 41, 43]), st.one_of(st.integers(58, 61), st.integers(0, 127)),
                              eighths, st.integers(1, 8 * 8).map(lambda n: n / 8)), max_size=25)
tempos = st.sampled_from([60.0, 80.0, 100.0, 120.0, 150.0])  # whole microseconds per beat, as MIDI stores them


@EXAMPLES
@given(rows=csv_rows, bpm=tempos, ticks_per_beat=st.sampled_from([8, 96, 480, 960]))
def test_notes_to_midi_then_midi_to_notes_gives_the_notes_back(tmp_path, rows, bpm, ticks_per_beat):
    notes = csv_notes(rows, bpm)
    try:
        notes_to_midi(notes, tmp_path / "a.mid", bpm=bpm, ticks_per_beat=ticks_per_beat)
    except DataError as err:
        assume("MIDI channels" not in str(err))  # same-pitch notes nested too deep for 15 channels
        raise
    back, notes = in_order(midi_to_notes(tmp_path / "a.mid")), in_order(notes)
    assert beats(back) == beats(notes)
    np.testing.assert_allclose(back["start"], notes["start"], rtol=1e-12, atol=1e-6)
    np.testing.assert_allclose(back["end"], notes["end"], rtol=1e-12, atol=1e-6)
    for grid in ({"time_base": "seconds", "steps_per_second": 10.0}, {"time_base": "beats", "steps_per_beat": 8}):
        read, expected = rolls.organize_song(back, **grid), rolls.organize_song(notes, **grid)
        np.testing.assert_array_equal(read.roll, expected.roll)
        np.testing.assert_array_equal(read.onsets, expected.onsets)


# ------------------------------------------------------------------ rolls → MIDI files → rolls

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
    np.testing.assert_array_equal(back.roll, example_roll())
    np.testing.assert_array_equal(back.onsets, rolls.struck(example_roll()))
    assert (back.meter == rolls.UNKNOWN_METER).all()  # the seconds grid knows no bars


def test_round_trip_on_the_beat_grid_at_another_tempo(tmp_path):
    path = tmp_path / "song.mid"
    roll_to_midi(example_roll(), path, lowest_note=21, frames_per_beat=4, bpm=100)
    back = midi_to_roll(path, lowest_note=21, highest_note=108, frames_per_second=4 * 100 / 60)
    np.testing.assert_array_equal(back.roll, example_roll())


def test_trailing_silence_survives_the_round_trip(tmp_path):
    roll = np.zeros((16, 88), bool)
    roll[0:2, 40] = True
    roll_to_midi(roll, tmp_path / "a.mid", lowest_note=21, frames_per_beat=4, bpm=60)
    assert midi_to_roll(tmp_path / "a.mid", lowest_note=21, highest_note=108, frames_per_second=4).roll.shape == (16, 88)


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
    assert not midi_to_roll(path, lowest_note=21, highest_note=108, frames_per_second=4).roll.any()


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
    np.testing.assert_array_equal(back.roll, example_roll())  # the marker changes no note


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
    assert midi_to_roll(path, lowest_note=21, highest_note=108, frames_per_second=4).roll.shape == (24, 88)


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
    np.testing.assert_array_equal(midi_to_roll(path, lowest_note=21, highest_note=108, frames_per_second=4).roll, expected)


# ------------------------------------------------------------------ songs → MIDI files: re-struck notes and time signatures

def song_of(frames, notes, meter=None, keys=88):
    """(key, start_frame, end_frame) notes → Song struck at each start (a key re-struck where one note follows another)."""
    roll, onsets = np.zeros((frames, keys), bool), np.zeros((frames, keys), bool)
    for key, start, end in notes:
        roll[start:end, key] = onsets[start, key] = True
    return rolls.Song(roll, onsets, meter)


def bar_meter(*bars, start=0):
    """(frames, numerator, denominator) bars one after another → (frames, 4) meter, from `start` frames into the first."""
    return np.array([(at, frames, numerator, denominator) for frames, numerator, denominator in bars
                     for at in range(frames)][start:], np.int16)


def note_events(path):
    """(tick, 'on' or 'off', pitch) of a file's first track, in the order written."""
    return [(tick, "on" if message.type == "note_on" and message.velocity else "off", message.note)
            for tick, message in absolute_events(path) if message.type in ("note_on", "note_off")]


def signatures(path):
    """(tick, numerator, denominator) of the time signatures in a file's first track."""
    return [(tick, message.numerator, message.denominator)
            for tick, message in absolute_events(path) if message.type == "time_signature"]


def test_a_re_struck_key_is_a_note_off_then_a_note_on_at_one_tick(tmp_path):
    path = tmp_path / "a.mid"
    assert roll_to_midi(song_of(8, [(39, 0, 2), (39, 2, 4), (39, 4, 8)]), path, lowest_note=21, frames_per_beat=4,
                        bpm=120) == 3
    assert note_events(path) == [(0, "on", 60), (240, "off", 60), (240, "on", 60), (480, "off", 60), (480, "on", 60),
                                 (960, "off", 60)]


def test_a_tremolo_writes_every_stroke(tmp_path):
    strokes = [(39, frame, frame + 1) for frame in range(8)] + [(43, 0, 4), (43, 4, 8)]  # 16ths on C, E twice held
    path = tmp_path / "a.mid"
    assert roll_to_midi(song_of(8, strokes), path, lowest_note=21, frames_per_beat=4, bpm=120) == 10
    assert beats(midi_to_notes(path)) == sorted([(60, 1, frame / 4, 0.25) for frame in range(8)] +
                                                [(64, 1, 0.0, 1.0), (64, 1, 1.0, 1.0)], key=lambda note: (note[2], note[0]))


def test_a_note_tied_across_a_bar_line_is_one_note(tmp_path):
    path = tmp_path / "a.mid"
    song = song_of(24, [(39, 8, 16), (43, 0, 24)], bar_meter((12, 3, 4), (12, 3, 4)))
    assert roll_to_midi(song, path, lowest_note=21, frames_per_beat=4, bpm=120) == 2
    assert note_events(path) == [(0, "on", 64), (960, "on", 60), (1920, "off", 60), (2880, "off", 64)]
    assert signatures(path) == [(0, 3, 4)]


def test_time_signatures_are_written_at_frame_0_and_where_they_change(tmp_path):
    path = tmp_path / "a.mid"
    song = song_of(56, [(39, 0, 56)], bar_meter((12, 3, 4), (12, 3, 4), (12, 6, 8), (12, 6, 8), (8, 2, 4)))
    roll_to_midi(song, path, lowest_note=21, frames_per_beat=4, bpm=120)
    assert signatures(path) == [(0, 3, 4), (24 * TICKS_PER_FRAME, 6, 8), (48 * TICKS_PER_FRAME, 2, 4)]


def test_a_bar_cut_short_is_followed_by_its_time_signature_again(tmp_path):
    path = tmp_path / "a.mid"
    song = song_of(40, [(39, 0, 40)], bar_meter((16, 4, 4), (8, 4, 4), (16, 4, 4)))
    roll_to_midi(song, path, lowest_note=21, frames_per_beat=4, bpm=120)
    assert signatures(path) == [(0, 4, 4), (24 * TICKS_PER_FRAME, 4, 4)]  # MIDI starts a bar at each time signature


def test_a_pickup_gets_a_time_signature_for_the_rest_of_its_bar_then_its_bars_own(tmp_path):
    path = tmp_path / "a.mid"
    song = song_of(27, [(39, 0, 27)], bar_meter((12, 3, 4), (12, 3, 4), (12, 3, 4), start=9))  # 3 16ths before bar 1
    roll_to_midi(song, path, lowest_note=21, frames_per_beat=4, bpm=120)
    assert signatures(path) == [(0, 3, 16), (3 * TICKS_PER_FRAME, 3, 4)]


def test_a_pickup_counted_in_eighths_gets_eighths(tmp_path):
    path = tmp_path / "a.mid"
    roll_to_midi(song_of(18, [(39, 0, 18)], bar_meter((16, 4, 4), (16, 4, 4), start=14)), path, lowest_note=21,
                 frames_per_beat=4, bpm=120)
    assert signatures(path) == [(0, 1, 8), (2 * TICKS_PER_FRAME, 4, 4)]


def test_a_pickup_no_time_signature_can_count_gets_none_before_its_first_bar_line(tmp_path):
    path = tmp_path / "a.mid"  # 3 frames a beat: one frame is a third of a beat, which no n/2**k counts
    roll_to_midi(song_of(10, [(39, 0, 10)], bar_meter((9, 3, 4), (9, 3, 4), start=8)), path, lowest_note=21,
                 frames_per_beat=3, bpm=120)
    assert signatures(path) == [(1 * TICKS_PER_FRAME, 3, 4)]


def test_no_time_signature_where_the_meter_is_unknown(tmp_path):
    roll_to_midi(example_roll(), tmp_path / "bare.mid", lowest_note=21, frames_per_beat=4, bpm=120)
    assert signatures(tmp_path / "bare.mid") == []
    meter = np.concatenate([np.tile(np.int16(rolls.UNKNOWN_METER), (4, 1)), bar_meter((8, 2, 4), (8, 2, 4))])
    roll_to_midi(song_of(20, [(39, 0, 20)], meter), tmp_path / "later.mid", lowest_note=21, frames_per_beat=4, bpm=120)
    assert signatures(tmp_path / "later.mid") == [(4 * TICKS_PER_FRAME, 2, 4)]


def test_the_time_signature_comes_first_at_its_tick(tmp_path):
    path = tmp_path / "a.mid"
    song = song_of(16, [(39, 0, 8), (39, 8, 16)], bar_meter((8, 2, 4), (8, 3, 8)))
    roll_to_midi(song, path, lowest_note=21, frames_per_beat=4, bpm=120, marker_frame=8)
    at_bar_line = [message.type for tick, message in absolute_events(path) if tick == 8 * TICKS_PER_FRAME]
    assert at_bar_line == ["time_signature", "note_off", "marker", "note_on"]


def read_on_the_beat_grid(path, steps_per_beat=4):
    """A MIDI file → its Song on the beat grid, MIDI 21-108."""
    return rolls.organize_song(midi_to_notes(path), time_base="beats", steps_per_beat=steps_per_beat)


def assert_same_song(song, expected):
    np.testing.assert_array_equal(song.roll, expected.roll)
    np.testing.assert_array_equal(song.onsets, expected.onsets)
    np.testing.assert_array_equal(song.meter, expected.meter)


def test_a_written_song_reads_back_the_same_on_the_beat_grid(tmp_path):
    notes = [(39, 0, 2), (39, 2, 4), (39, 4, 12), (43, 6, 18), (46, 12, 13), (46, 13, 14), (46, 14, 15),
             (39, 24, 30), (39, 30, 36), (43, 24, 48), (46, 36, 38), (46, 38, 40), (46, 42, 48)]
    song = song_of(48, notes, bar_meter((12, 3, 4), (12, 3, 4), (12, 6, 8), (12, 6, 8)))
    roll_to_midi(song, tmp_path / "a.mid", lowest_note=21, frames_per_beat=4, bpm=90)
    assert_same_song(read_on_the_beat_grid(tmp_path / "a.mid"), song)


def test_a_written_pickup_reads_back_as_a_short_first_bar(tmp_path):
    song = song_of(27, [(39, 0, 3), (39, 3, 15), (43, 15, 27)], bar_meter((12, 3, 4), (12, 3, 4), (12, 3, 4), start=9))
    roll_to_midi(song, tmp_path / "a.mid", lowest_note=21, frames_per_beat=4, bpm=90)
    back = read_on_the_beat_grid(tmp_path / "a.mid")
    assert_same_song(back[3:], song[3:])
    np.testing.assert_array_equal(back.meter[:3], [(0, 3, 3, 16), (1, 3, 3, 16), (2, 3, 3, 16)])


def struck_frames(path, frames_per_beat):
    """{pitch: sorted frames struck}: each note_on of a file counted with mido, its tick rounded to the nearest frame
    (half up)."""
    midi, found = mido.MidiFile(path), {}
    tick = 0
    for message in mido.merge_tracks(midi.tracks):
        tick += message.time
        if message.type == "note_on" and message.velocity:
            found.setdefault(message.note, set()).add(math.floor(tick * frames_per_beat / midi.ticks_per_beat + 0.5))
    return {pitch: sorted(frames) for pitch, frames in sorted(found.items())}


def test_midi_through_a_song_and_back_keeps_every_onset_the_grid_resolves(tmp_path):
    chords = [(pitch, 80, start, start + 240) for start in range(0, 1920, 240) for pitch in (60, 64, 67)]  # 8th chords
    tremolo = [(48, 80, start, start + 60) for start in range(1920, 2880, 60)]  # 32nds: 16 strokes in 9 frames
    tie = [(72, 80, 960, 2400), (72, 80, 2400, 2520), (76, 80, 2520, 3000)]  # across the bar line at 1440 (3/4)
    source = midi_file(tmp_path / "source.mid", [meter(0, 3, 4), tempo(0, 80), tempo(1440, 100)],
                       notes_track(*chords), notes_track(*tremolo, channel=1), notes_track(*tie, channel=2))
    song = read_on_the_beat_grid(source)
    roll_to_midi(song, tmp_path / "written.mid", lowest_note=21, frames_per_beat=4, bpm=80)
    assert struck_frames(tmp_path / "written.mid", 4) == struck_frames(source, 4)
    assert struck_frames(source, 4) == {48: list(range(16, 25)), 60: list(range(0, 16, 2)), 64: list(range(0, 16, 2)),
                                        67: list(range(0, 16, 2)), 72: [8, 20], 76: [21]}
    assert signatures(tmp_path / "written.mid") == [(0, 3, 4)]


# ------------------------------------------------------------------ property tests: rolls through MIDI files and back

ROUND_TRIP_EXAMPLES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def keyboard_songs(draw):
    """(song, lowest_note): a Song of random keys sounding and struck (meter unknown) somewhere on the MIDI range."""
    keys = draw(st.integers(1, 24))
    roll = draw(arrays(bool, st.tuples(st.integers(0, 40), st.just(keys))))
    song = rolls.Song(roll, draw(arrays(bool, st.just(roll.shape))))
    return song, draw(st.integers(0, 128 - keys))


@ROUND_TRIP_EXAMPLES
@given(song_and_lowest=keyboard_songs(), fps=st.integers(1, 16))
@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_a_song_through_a_midi_file_and_back_on_the_seconds_grid(tmp_path, song_and_lowest, fps):
    song, lowest = song_and_lowest
    path = tmp_path / "song.mid"
    roll_to_midi(song, path, lowest_note=lowest, frames_per_beat=fps, bpm=60)  # one MIDI beat = one second
    back = midi_to_roll(path, lowest_note=lowest, highest_note=lowest + song.roll.shape[1] - 1, frames_per_second=fps)
    np.testing.assert_array_equal(back.roll, song.roll)
    np.testing.assert_array_equal(back.onsets, song.onsets)


@ROUND_TRIP_EXAMPLES
@given(song_and_lowest=keyboard_songs(), steps_per_beat=st.integers(1, 12),
       bpm=st.sampled_from([48, 50, 75, 80, 96, 100, 120, 125, 150, 160, 200, 240]))  # whole microseconds a beat
@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_a_song_through_a_midi_file_and_back_on_the_beat_grid(tmp_path, song_and_lowest, steps_per_beat, bpm):
    song, lowest = song_and_lowest
    path = tmp_path / "song.mid"
    roll_to_midi(song, path, lowest_note=lowest, frames_per_beat=steps_per_beat, bpm=bpm)
    back = midi_to_roll(path, lowest_note=lowest, highest_note=lowest + song.roll.shape[1] - 1,
                        frames_per_second=steps_per_beat * bpm / 60)
    np.testing.assert_array_equal(back.roll, song.roll)
    np.testing.assert_array_equal(back.onsets, song.onsets)


# ------------------------------------------------------------------ tempo and General MIDI programs

def test_the_first_tempo_is_the_earliest_set_tempo_and_120_without_one(tmp_path):
    notes = notes_track((60, 80, 0, 480))
    assert midi_io.first_tempo(midi_file(tmp_path / "none.mid", notes)) == 120.0
    later = midi_file(tmp_path / "later.mid", notes, [tempo(960, 60), tempo(480, 90), tempo(1440, 200)])
    assert midi_io.first_tempo(later) == pytest.approx(90.0)
    at_zero = midi_file(tmp_path / "zero.mid", [tempo(0, 72), *notes], [tempo(0, 66)])  # the last at the tick wins
    assert midi_io.first_tempo(at_zero) == pytest.approx(66.0)


def test_a_tempo_read_back_writes_the_same_microseconds_per_quarter(tmp_path):
    path = midi_file(tmp_path / "odd.mid", [(0, mido.MetaMessage("set_tempo", tempo=461_539))])
    assert mido.bpm2tempo(midi_io.first_tempo(path)) == 461_539


def test_the_first_tempo_of_a_file_that_is_not_midi_is_a_data_error(tmp_path):
    (tmp_path / "text.mid").write_text("not MIDI")
    with pytest.raises(DataError, match="is not a readable MIDI file"):
        midi_io.first_tempo(tmp_path / "text.mid")


@pytest.mark.parametrize("name, program", [("piano", 1), ("Acoustic Grand Piano", 1), ("VIOLIN", 41), ("41", 41),
                                           ("128", 128), (" strings ", 49), ("acoustic_guitar_nylon", 25),
                                           ("Acoustic Guitar (nylon)", 25), ("honky-tonk piano", 4), ("flute", 74),
                                           ("Lead 8 (bass + lead)", 88), ("sax", 66)])
def test_an_instrument_is_a_general_midi_name_an_alias_or_a_number(name, program):
    assert midi_io.program_number(name) == program


@pytest.mark.parametrize("name", ["0", "129", "-1", "kazoo", "", "data", "1.5", "４１"])
def test_what_names_no_general_midi_program_gives_none(name):
    assert midi_io.program_number(name) is None


def test_every_general_midi_name_gives_its_own_number():
    assert len(midi_io.GM_PROGRAMS) == 128
    assert [midi_io.program_number(name) for name in midi_io.GM_PROGRAMS] == list(range(1, 129))

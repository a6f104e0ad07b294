"""rolls.py: notes ↔ piano rolls on the seconds and beat grids, against examples and slow references."""
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from intervaltree import Interval, IntervalTree

import rolls
import sources
from conftest import SR, labels, score_notes, write_csv_release

FPS = 4  # frames per second in these tests: frame k is the instant k / 4 s
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")  # every bad input handled, none slipping through numpy


def organize_labels(tree, **settings):
    """MusicNet labels → Song, read into notes the way the archive reader reads them."""
    return rolls.organize_song(sources.notes_from_labels(tree), **settings)


def test_notes_sound_in_frames_whose_instant_falls_inside():
    roll = organize_labels(labels((60, 0.0, 1.0), (64, 0.5, 1.3)), steps_per_second=FPS).roll
    expected = np.zeros((6, 88), bool)  # ceil(1.3 s * 4) = 6 frames
    expected[0:4, 60 - 21] = True       # instants 0, .25, .5, .75 in [0, 1)
    expected[2:6, 64 - 21] = True       # instants .5 .. 1.25 in [0.5, 1.3)
    np.testing.assert_array_equal(roll, expected)


def test_note_shorter_than_a_frame_still_sounds_in_its_nearest_frame():
    roll = organize_labels(labels((60, 0.0, 1.0), (72, 0.26, 0.40)), steps_per_second=FPS).roll
    expected = np.zeros((4, 88), bool)
    expected[0:4, 60 - 21] = True
    expected[1, 72 - 21] = True  # no instant in [0.26, 0.40); its middle, 0.33 s, is nearest 0.25 s
    np.testing.assert_array_equal(roll, expected)


def test_touching_notes_of_one_pitch_fill_every_frame_once_and_the_second_is_struck_again():
    song = organize_labels(labels((60, 0.0, 0.5), (60, 0.5, 1.0)), steps_per_second=FPS)
    expected = np.zeros((4, 88), bool)
    expected[0:4, 60 - 21] = True
    np.testing.assert_array_equal(song.roll, expected)
    struck = np.zeros((4, 88), bool)
    struck[[0, 2], 60 - 21] = True
    np.testing.assert_array_equal(song.onsets, struck)


def test_notes_outside_the_keyboard_are_dropped_but_still_set_the_length():
    roll = organize_labels(labels((20, 0.0, 2.0), (109, 0.0, 1.0), (21, 0.0, 0.5), (108, 0.25, 0.5)),
                           steps_per_second=FPS).roll
    expected = np.zeros((8, 88), bool)
    expected[0:2, 0] = True
    expected[1:2, 87] = True
    np.testing.assert_array_equal(roll, expected)


def test_keyboard_range_is_configurable():
    roll = organize_labels(labels((60, 0.0, 0.5), (72, 0.0, 0.5)), steps_per_second=FPS,
                           lowest_note=60, highest_note=71).roll
    expected = np.zeros((2, 12), bool)
    expected[:, 0] = True
    np.testing.assert_array_equal(roll, expected)


def test_bytes_note_value_reads_like_str():
    as_bytes = organize_labels(labels((60, 0.0, 1.0, b"Dotted Quarter")), steps_per_second=FPS)
    as_str = organize_labels(labels((60, 0.0, 1.0, "Dotted Quarter")), steps_per_second=FPS)
    np.testing.assert_array_equal(as_bytes.roll, as_str.roll)
    assert sources.quarters_from_name(b"Dotted Quarter") == 1.5
    assert sources.quarters_from_name("Triplet Eighth") == pytest.approx(1 / 3)
    assert np.isnan(sources.quarters_from_name("Unknown"))


def test_empty_labels_give_an_empty_song():
    song = organize_labels(IntervalTree(), steps_per_second=FPS)
    assert song.roll.shape == song.onsets.shape == (0, 88) and song.meter.shape == (0, 4)


def test_roll_matches_querying_the_tree_at_every_frame_instant():
    rng = np.random.default_rng(0)
    tree = IntervalTree()
    for _ in range(300):
        start = int(rng.integers(0, 20 * SR))
        tree.add(Interval(start, start + int(rng.integers(SR // 2, 2 * SR)), (1, int(rng.integers(21, 109)), 0, 0.0, "Quarter")))
    roll = organize_labels(tree, steps_per_second=10).roll
    queried = np.zeros_like(roll)
    for frame in range(len(roll)):
        for interval in tree[frame * SR / 10]:
            queried[frame, interval.data[1] - 21] = True
    np.testing.assert_array_equal(roll, queried)


def test_beats_time_base_is_tempo_free():
    """The same score played at two tempi gives one roll on the beat grid."""
    def score(seconds_per_quarter):
        # 4/4: (pitch, measure, beat as fraction of the bar, quarters)
        notes = [(60, 0, 0.0, 1.0), (64, 0, 0.25, 1.0), (67, 0, 0.5, 2.0), (72, 1, 0.0, 0.5), (71, 1, 0.125, 3.5)]
        tree = IntervalTree()
        for pitch, measure, beat, quarters in notes:
            start = (measure * 4 + beat * 4) * seconds_per_quarter * SR
            value = {0.5: "Eighth", 1.0: "Quarter", 2.0: "Half", 3.5: "Unknown"}[quarters]
            tree.add(Interval(round(start), round(start + quarters * seconds_per_quarter * SR), (1, pitch, measure, beat, value)))
        return tree
    slow = organize_labels(score(0.8), time_base="beats", steps_per_beat=2).roll
    fast = organize_labels(score(0.5), time_base="beats", steps_per_beat=2).roll
    expected = np.zeros((16, 88), bool)  # 8 quarters at 2 frames per quarter
    expected[0:2, 60 - 21] = True
    expected[2:4, 64 - 21] = True
    expected[4:8, 67 - 21] = True
    expected[8:9, 72 - 21] = True
    expected[9:16, 71 - 21] = True
    np.testing.assert_array_equal(slow, expected)
    np.testing.assert_array_equal(fast, expected)


def test_a_repeat_keeps_moving_forward_on_the_beat_grid():
    """Bars 0-1 played twice (measure numbers jump back): the repeat follows the first time through."""
    tree = IntervalTree()
    for time_through in range(2):
        for measure, pitch in ((0, 60), (1, 62)):
            for beat in range(2):  # 2/4: two quarter notes a bar, one second each
                start = (time_through * 4 + measure * 2 + beat) * SR
                tree.add(Interval(start, start + SR, (1, pitch + time_through * 12, measure, beat / 2, "Quarter")))
    song = organize_labels(tree, time_base="beats", steps_per_beat=1)
    expected = np.zeros((8, 88), bool)
    expected[0:2, 60 - 21] = True
    expected[2:4, 62 - 21] = True
    expected[4:6, 72 - 21] = True
    expected[6:8, 74 - 21] = True
    np.testing.assert_array_equal(song.roll, expected)
    np.testing.assert_array_equal(song.onsets[:, [60 - 21, 62 - 21]], [[1, 0], [1, 0], [0, 1], [0, 1]] + [[0, 0]] * 4)
    np.testing.assert_array_equal(song.meter, bar_meter(2, 2, 4) * 4)  # each bar's length and 2/4 from the labels


def test_beats_time_base_uses_start_beat_and_duration_when_the_labels_carry_them():
    notes = np.zeros(2, dtype=rolls.NOTE_DTYPE)
    notes["start"], notes["end"] = [0, 44100], [44100, 3 * 44100]   # seconds say nothing about beats here
    notes["note"], notes["instrument"] = [60, 67], 1
    notes["start_beat"], notes["beats"] = [0.5, 1.0], [0.5, 1.5]      # CSV release: onset and duration in beats
    roll = rolls.organize_song(notes, time_base="beats", steps_per_beat=2).roll
    expected = np.zeros((5, 88), bool)
    expected[1, 60 - 21] = True
    expected[2:5, 67 - 21] = True
    np.testing.assert_array_equal(roll, expected)


def test_labels_without_bar_data_are_refused_for_the_beat_grid():
    flat = IntervalTree([Interval(0, SR, (1, 60, 0, 0.0, "Quarter")), Interval(SR, 2 * SR, (1, 62, 0, 0.0, "Quarter"))])
    with pytest.raises(rolls.DataError, match="measure/beat"):
        organize_labels(flat, time_base="beats")


# ---------------------------------------------------------------- untrusted notes: refused with a reason, never a crash

def notes_at_samples(rows):
    """(start, end, pitch) rows, times in samples → NOTE_DTYPE notes, the fields a row does not give NaN (instrument 1)."""
    notes = np.zeros(len(rows), rolls.NOTE_DTYPE)
    for name in ("measure", "beat", "quarters", "start_beat", "beats"):
        notes[name] = np.nan
    notes["instrument"] = 1
    if rows:
        notes["start"], notes["end"], notes["note"] = zip(*rows)
    return notes


def note_array(*rows, **fields):
    """(pitch, start_seconds, end_seconds) rows → NOTE_DTYPE notes (instrument 1, bar data NaN); fields override columns."""
    notes = notes_at_samples([(start * SR, end * SR, pitch) for pitch, start, end in rows])
    for name, values in fields.items():
        notes[name] = values
    return notes


def bar_notes(**fields):
    """Four quarter notes a second apart in 4/4, with measure/beat data (the archive's beat grid input)."""
    notes = note_array((60, 0, 1), (62, 1, 2), (64, 2, 3), (65, 3, 4), measure=0.0,
                       beat=[0.0, 0.25, 0.5, 0.75], quarters=1.0)
    for name, values in fields.items():
        notes[name] = values
    return notes


@pytest.mark.parametrize("start, end, reason", [
    (np.nan, 1.0, "not a finite number"),
    (0.0, np.inf, "not a finite number"),
    (-0.5, 1.0, "negative start time"),
    (2.0, 1.0, "ends before it starts"),
    (0.0, 1e12, "beyond 2\\*\\*53 samples"),
])
def test_unusable_times_are_a_bad_recording(start, end, reason):
    with pytest.raises(rolls.BadRecording, match=reason):
        rolls.organize_song(note_array((60, 0.0, 1.0), (62, start, end)), steps_per_second=FPS)


def test_a_note_beyond_midi_is_a_bad_recording():
    with pytest.raises(rolls.BadRecording, match="outside MIDI 0-127"):
        rolls.organize_song(note_array((200, 0.0, 1.0)), steps_per_second=FPS)


def test_a_roll_over_max_frames_is_refused_before_it_is_built():
    with pytest.raises(rolls.BadRecording, match="would have 41 frames, over max_frames=40"):
        rolls.organize_song(note_array((60, 0.0, 10.25)), steps_per_second=FPS, max_frames=40)


def test_max_frames_arrives_with_the_other_settings():
    settings = {"lowest_note": 21, "highest_note": 108, "time_base": "seconds", "steps_per_second": 4.0, "steps_per_beat": 4,
                "max_frames": 40, "cache_dir": "unused"}
    assert rolls.organize_song(note_array((60, 0.0, 10.0)), **settings).roll.shape == (40, 88)
    with pytest.raises(rolls.BadRecording, match="over max_frames=40"):
        rolls.organize_song(note_array((60, 0.0, 10.25)), **settings)


def test_a_recording_years_long_is_refused_not_allocated():
    with pytest.raises(rolls.BadRecording, match="over max_frames=1000000"):  # 8e9 frames x 88 keys if it were built
        rolls.organize_song(note_array((60, 0.0, 1e9)), steps_per_second=8.0)


def test_a_note_off_the_keyboard_still_counts_toward_the_frame_cap():
    with pytest.raises(rolls.BadRecording, match="over max_frames"):
        rolls.organize_song(note_array((60, 0.0, 1.0), (10, 0.0, 100.0)), steps_per_second=FPS, max_frames=40)


def test_an_unknown_time_base_is_a_settings_error_not_a_bad_recording():
    with pytest.raises(rolls.DataError, match="time_base must be") as caught:
        rolls.organize_song(note_array((60, 0.0, 1.0)), time_base="bars")
    assert not isinstance(caught.value, rolls.BadRecording)


def test_bar_notes_make_a_roll_on_the_beat_grid():
    expected = np.zeros((4, 88), bool)
    for frame, pitch in enumerate((60, 62, 64, 65)):
        expected[frame, pitch - 21] = True
    np.testing.assert_array_equal(rolls.organize_song(bar_notes(), time_base="beats", steps_per_beat=1).roll, expected)


@pytest.mark.parametrize("fields, reason", [
    ({"measure": [0.0, np.nan, 0.0, 0.0]}, "measure or beat that is not a finite number"),
    ({"beat": [0.0, np.inf, 0.5, 0.75]}, "measure or beat that is not a finite number"),
    ({"measure": [0.0, 1e300, 0.0, 0.0]}, "beyond 2\\*\\*53"),
    ({"measure": [0.0, -1e300, 0.0, 0.0]}, "beyond 2\\*\\*53"),
    ({"beat": 0.0}, "no usable measure/beat data"),                       # bar position never moves
    ({"start": [0, 1e-300, 2e-300, 3e-300], "end": 4 * SR}, "tempo of"),  # a bar in a fraction of a sample
])
def test_unusable_bar_data_is_a_bad_recording(fields, reason):
    with pytest.raises(rolls.BadRecording, match=reason):
        rolls.organize_song(bar_notes(**fields), time_base="beats")


def test_a_lone_absurd_bar_number_is_read_as_a_skip_at_the_typical_tempo():
    song = rolls.organize_song(bar_notes(measure=[0.0, 0.0, 0.0, 1e12]), time_base="beats", steps_per_beat=1)
    assert song.roll.shape == (4, 88)


def test_bar_numbers_ten_thousand_bars_apart_are_refused_by_the_frame_cap():
    with pytest.raises(rolls.BadRecording, match="over max_frames=1000"):
        rolls.organize_song(bar_notes(measure=[0.0, 1e4, 2e4, 3e4], beat=0.0), time_base="beats", max_frames=1000)


@pytest.mark.parametrize("start_beat, beats, reason", [
    ([0.0, np.nan], [1.0, 1.0], "start_beat or beats value that is not a finite number"),
    ([0.0, 1.0], [1.0, np.inf], "start_beat or beats value that is not a finite number"),
    ([0.0, -1.0], [1.0, 1.0], "negative start_beat"),
    ([0.0, 1.0], [1.0, -0.5], "ends before it starts"),
    ([0.0, 1e300], [1.0, 1e300], "beyond 2\\*\\*53"),
    ([0.0, 1e12], [1.0, 1.0], "over max_frames"),
])
def test_unusable_start_beat_and_beats_are_a_bad_recording(start_beat, beats, reason):
    notes = note_array((60, 0.0, 1.0), (62, 1.0, 2.0), start_beat=start_beat, beats=beats)
    with pytest.raises(rolls.BadRecording, match=reason):
        rolls.organize_song(notes, time_base="beats")


def test_a_negative_start_cannot_erase_another_note():
    """Index -3 would wrap to the end of the roll and its +1/-1 pair would cancel the other note's frames."""
    roll = rolls.roll_from_spans(np.array([0.0, -3.5]), np.array([10.0, 2.0]), np.array([5, 5]), 12).roll
    expected = np.zeros((10, 12), bool)
    expected[:, 5] = True
    np.testing.assert_array_equal(roll, expected)


def test_spans_before_frame_zero_are_cut_off():
    roll = rolls.roll_from_spans(np.array([-2.5, -5.0, -0.7, 0.0]), np.array([1.5, -2.0, -0.6, 4.0]),
                                 np.array([0, 1, 2, 3]), 4).roll
    expected = np.zeros((4, 4), bool)
    expected[0:2, 0] = True  # the part from frame 0 on
    expected[:, 3] = True    # keys 1 and 2: wholly before the roll, so absent
    np.testing.assert_array_equal(roll, expected)


def test_a_key_off_the_roll_is_refused_not_wrapped():
    with pytest.raises(rolls.BadRecording, match="key outside 0-11"):
        rolls.roll_from_spans(np.array([0.0]), np.array([1.0]), np.array([-1]), 12)


def test_a_short_note_at_the_very_end_sounds_in_the_last_frame():
    roll = rolls.roll_from_spans(np.array([0.0, 3.6]), np.array([2.0, 3.9]), np.array([0, 1]), 2, num_frames=0).roll
    expected = np.zeros((4, 2), bool)
    expected[0:2, 0] = True
    expected[3, 1] = True  # its middle, 3.75, is nearest frame 4, which the roll does not have
    np.testing.assert_array_equal(roll, expected)


def test_main_program_ignores_instruments_outside_midi_programs():
    notes = note_array((60, 0, 1), (62, 1, 2), (64, 2, 3), instrument=[0, 0, 41])
    assert rolls.main_program(notes) == 41


# ---------------------------------------------------------------- onsets: a note that starts is told from one that goes on

def frames_struck(song, pitch):
    """The frames in which a MIDI pitch (on the 88-key roll) is struck."""
    return np.flatnonzero(song.onsets[:, pitch - 21]).tolist()


def frames_sounding(song, pitch):
    """The frames in which a MIDI pitch (on the 88-key roll) sounds."""
    return np.flatnonzero(song.roll[:, pitch - 21]).tolist()


def test_a_note_repeated_on_consecutive_frames_is_struck_in_each():
    song = rolls.organize_song(score_notes((60, 0, 0.5), (60, 0.5, 0.5), (60, 1, 0.5), (60, 1.5, 0.5)),
                               time_base="beats", steps_per_beat=2)
    assert frames_sounding(song, 60) == [0, 1, 2, 3]
    assert frames_struck(song, 60) == [0, 1, 2, 3]
    assert [len(part) for part in rolls.roll_to_notes(song)] == [4, 4, 4]  # four notes, not one held


def test_a_held_note_is_struck_once():
    song = rolls.organize_song(score_notes((60, 0, 2)), time_base="beats", steps_per_beat=2)
    assert frames_sounding(song, 60) == [0, 1, 2, 3] and frames_struck(song, 60) == [0]


def test_a_short_note_inside_a_held_note_of_its_key_strikes_it_again():
    song = rolls.organize_song(note_array((60, 0.0, 2.0), (60, 1.0, 1.1)), steps_per_second=FPS)
    assert frames_sounding(song, 60) == list(range(8)) and frames_struck(song, 60) == [0, 4]


def test_a_tremolo_at_the_grid_keeps_every_note():
    song = rolls.organize_song(score_notes(*((60 + 4 * (step % 2), step / 2, 0.5) for step in range(6))),
                               time_base="beats", steps_per_beat=2)
    assert frames_struck(song, 60) == frames_sounding(song, 60) == [0, 2, 4]
    assert frames_struck(song, 64) == frames_sounding(song, 64) == [1, 3, 5]


def test_a_tremolo_faster_than_the_grid_strikes_each_key_once_a_frame():
    """Sixteenths at two frames a beat: each note is half a frame long and sounds in its nearest frame; two notes of a
    key that land in one frame are one onset."""
    notes = score_notes(*((60, step / 2, 0.25) for step in range(4)), *((64, step / 2 + 0.25, 0.25) for step in range(4)))
    song = rolls.organize_song(notes, time_base="beats", steps_per_beat=2)
    assert frames_struck(song, 60) == frames_sounding(song, 60) == [0, 1, 2, 3]  # C at 0, 0.5, 1, 1.5 beats
    assert frames_struck(song, 64) == frames_sounding(song, 64) == [1, 2, 3]  # E's last two both nearest frame 3


def test_notes_faster_than_the_grid_on_one_key_are_one_onset():
    song = rolls.organize_song(score_notes(*((60, step / 8, 1 / 8) for step in range(4))), time_base="beats",
                               steps_per_beat=2)
    assert frames_sounding(song, 60) == [0] and frames_struck(song, 60) == [0]


# ---------------------------------------------------------------- meter: where each frame lies in its bar

def bar_meter(size, numerator, denominator, first=0, stop=None):
    """The meter rows of one bar of `size` frames (frames first..stop-1 of it): [frames since the bar line, size,
    numerator, denominator]."""
    return [[since, size, numerator, denominator] for since in range(first, size if stop is None else stop)]


def bar_score(*rows, signatures, first_bar=0.0):
    """(pitch, measure, quarters into the bar, quarters long) rows → NOTE_DTYPE notes with bars as the MIDI reader
    gives them: start_beat in quarters from frame 0, measure, beat as a fraction of the bar, the bar's time signature.
    signatures: {first measure: (numerator, denominator)}; first_bar: where bar 0 starts, in quarters (below 0: frame 0
    is inside it, a pickup)."""
    bars = max(row[1] for row in rows) + 1
    signature = [signatures[max(m for m in signatures if m <= measure)] for measure in range(bars)]
    lengths = [4 * numerator / denominator for numerator, denominator in signature]
    lines = first_bar + np.concatenate([[0.0], np.cumsum(lengths)])
    notes = score_notes(*((pitch, lines[measure] + into, quarters) for pitch, measure, into, quarters in rows))
    notes["measure"] = [measure for _, measure, _, _ in rows]
    notes["beat"] = [into / lengths[measure] for _, measure, into, _ in rows]
    notes["numerator"], notes["denominator"] = zip(*(signature[measure] for _, measure, _, _ in rows))
    return notes


def test_three_four_bars_on_the_beat_grid():
    notes = bar_score((48, 0, 0, 3), (60, 0, 1, 1), (64, 0, 2, 1), (48, 1, 0, 3), (60, 1, 1, 1), (64, 1, 2, 1),
                      signatures={0: (3, 4)})
    song = rolls.organize_song(notes, time_base="beats", steps_per_beat=2)
    np.testing.assert_array_equal(song.meter, bar_meter(6, 3, 4) * 2)


def test_six_eight_bars_are_three_quarters_long():
    notes = bar_score(*((60 + step, measure, step / 2, 0.5) for measure in range(2) for step in range(6)),
                      signatures={0: (6, 8)})
    song = rolls.organize_song(notes, time_base="beats", steps_per_beat=2)
    np.testing.assert_array_equal(song.meter, bar_meter(6, 6, 8) * 2)


def test_a_note_tied_across_the_bar_line_is_one_onset():
    notes = bar_score((60, 0, 0, 3), (67, 0, 3, 2), (64, 1, 1, 3), signatures={0: (4, 4)})  # G: beat 4 into bar 2
    song = rolls.organize_song(notes, time_base="beats", steps_per_beat=2)
    assert frames_sounding(song, 67) == [6, 7, 8, 9] and frames_struck(song, 67) == [6]
    np.testing.assert_array_equal(song.meter, bar_meter(8, 4, 4) * 2)  # the bar line at frame 8, under the held G


def test_a_pickup_lies_at_the_end_of_a_bar_before_the_first_bar_line():
    notes = bar_score((67, 0, 2, 1), (72, 1, 0, 3), (71, 2, 0, 3), signatures={0: (3, 4)}, first_bar=-2.0)
    song = rolls.organize_song(notes, time_base="beats", steps_per_beat=2)
    assert frames_struck(song, 67) == [0] and frames_struck(song, 72) == [2]
    np.testing.assert_array_equal(song.meter, bar_meter(6, 3, 4, first=4) + bar_meter(6, 3, 4) * 2)


def test_an_archive_pickup_starts_the_roll_on_its_own_beat():
    """MusicNet labels: the piece starts on beat 4 of bar 0; the roll starts at that beat, inside the bar."""
    tree = labels((67, 0.75, 1.0, "Quarter"), (72, 1.0, 1.5, "Half"), (71, 1.5, 2.0, "Half"))  # a bar a second
    song = organize_labels(tree, time_base="beats", steps_per_beat=1)
    np.testing.assert_array_equal(song.roll[:, [67 - 21, 72 - 21, 71 - 21]], [[1, 0, 0], [0, 1, 0], [0, 1, 0],
                                                                              [0, 0, 1], [0, 0, 1]])
    np.testing.assert_array_equal(song.meter, bar_meter(4, 4, 4, first=3) + bar_meter(4, 4, 4))


def test_the_meter_changes_where_the_time_signature_does():
    notes = bar_score((60, 0, 0, 4), (62, 1, 0, 4), (64, 2, 0, 3), (65, 3, 0, 3), (67, 4, 0, 4),
                      signatures={0: (4, 4), 2: (3, 4), 4: (4, 4)})
    song = rolls.organize_song(notes, time_base="beats", steps_per_beat=1)
    np.testing.assert_array_equal(song.meter, bar_meter(4, 4, 4) * 2 + bar_meter(3, 3, 4) * 2 + bar_meter(4, 4, 4))


def test_bars_of_rests_are_filled_with_the_bars_around_them():
    notes = bar_score((60, 0, 0, 2), (62, 3, 0, 1), signatures={0: (2, 4)})  # bars 1 and 2 silent
    song = rolls.organize_song(notes, time_base="beats", steps_per_beat=2)
    np.testing.assert_array_equal(song.meter, bar_meter(4, 2, 4) * 3 + bar_meter(4, 2, 4, stop=2))  # the roll ends mid-bar


def test_a_part_out_of_step_does_not_move_the_bar_line():
    """Labels of two parts that disagree: the bass's last note of bar 0 sounds a quarter and more late, after the
    melody's next downbeat; it still belongs to bar 0, which the other notes place."""
    notes = bar_score(*((72, measure, into, 1) for measure in range(2) for into in range(4)), (48, 0, 3, 1),
                      signatures={0: (4, 4)})
    notes["start_beat"][-1] += 1.25
    song = rolls.organize_song(notes, time_base="beats", steps_per_beat=4)
    assert frames_struck(song, 48) == [17]
    np.testing.assert_array_equal(song.meter, bar_meter(16, 4, 4) * 2)


def test_a_tempo_change_moves_the_seconds_grid_but_not_the_beat_grid():
    """Eight quarter notes in 4/4, the second bar at half the tempo: on the seconds grid its notes last twice as many
    frames and no frame knows its bar; on the beat grid both bars are alike."""
    notes = bar_score(*((60 + 2 * step, step // 4, step % 4, 1) for step in range(8)), signatures={0: (4, 4)})
    slower = notes["start"] >= notes["start"][4]
    notes["end"] += np.where(slower, notes["end"] - notes["start"][4], 0)  # 120 bpm, then 60
    notes["start"] += np.where(slower, notes["start"] - notes["start"][4], 0)
    seconds = rolls.organize_song(notes, time_base="seconds", steps_per_second=4.0)
    assert [len(frames_sounding(seconds, 60 + 2 * step)) for step in range(8)] == [2] * 4 + [4] * 4
    assert (seconds.meter == rolls.UNKNOWN_METER).all() and len(seconds) == 24
    beats = rolls.organize_song(notes, time_base="beats", steps_per_beat=2)
    assert [len(frames_sounding(beats, 60 + 2 * step)) for step in range(8)] == [2] * 8
    np.testing.assert_array_equal(beats.meter, bar_meter(8, 4, 4) * 2)


def test_start_beats_without_bars_have_an_unknown_meter(tmp_path):
    """The CSV release: onsets in beats, but no bar numbers."""
    write_csv_release(tmp_path, {"0001": score_notes((60, 0, 1), (64, 1, 1), (60, 2, 0.5), (60, 2.5, 0.5))})
    song = rolls.organize_song(sources.read_csv_labels(tmp_path / "train_labels" / "0001.csv"), time_base="beats",
                               steps_per_beat=2)
    assert frames_struck(song, 60) == [0, 4, 5]
    np.testing.assert_array_equal(song.meter, [rolls.UNKNOWN_METER] * 6)


def test_a_negative_time_signature_is_a_bad_recording():
    with pytest.raises(rolls.BadRecording, match="time signature below 0"):
        rolls.organize_song(bar_score((60, 0, 0, 1), signatures={0: (-3, 4)}), time_base="beats")


# ---------------------------------------------------------------- properties: against slow frame-by-frame references

EXAMPLES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

pitches = st.integers(0, 127)
# Frame rates p/q with small q: every frame instant is then at least 1/(q * SR) frames from a whole sample,
# far more than the float slack roll_from_spans allows, so exact and float arithmetic agree.
frame_rates = st.builds(Fraction, st.integers(1, 160), st.sampled_from([1, 2, 4, 5, 10])).filter(lambda f: f <= 32)
durations = st.one_of(st.integers(0, 3000), st.integers(0, 3 * SR))  # many notes shorter than a frame, some long
sample_notes = st.lists(st.tuples(st.integers(0, 10 * SR), durations, pitches), max_size=20)


@st.composite
def keyboards(draw):
    """(lowest_note, highest_note): the default piano or any range of MIDI notes."""
    lowest = draw(st.integers(0, 127))
    return draw(st.sampled_from([(21, 108), (lowest, draw(st.integers(lowest, 127)))]))


def reference_song(spans, lowest, highest):
    """(start, end, pitch) in exact frame units → (roll, onsets), asking of every frame and note: does the note sound here?

    A note sounds in frame k when start <= k < end; a note that contains no
    frame instant sounds in the frame nearest its middle (ties to the later
    frame), clipped to the last frame. It is struck in the first frame it
    sounds in. The roll lasts ceil(last end) frames, notes off the keyboard included.
    """
    frames = math.ceil(max((end for _, end, _ in spans), default=0))
    roll = np.zeros((frames, highest - lowest + 1), bool)
    onsets = np.zeros_like(roll)
    for start, end, pitch in spans:
        if not lowest <= pitch <= highest:
            continue
        sounding = [k for k in range(frames) if start <= k < end]
        if not sounding and frames:
            sounding = [min(math.floor((start + end) / 2 + Fraction(1, 2)), frames - 1)]
        for k in sounding:
            roll[k, pitch - lowest] = True
        if sounding:
            onsets[sounding[0], pitch - lowest] = True
    return roll, onsets


def assert_song(song, roll, onsets):
    """A Song's roll and onsets equal the expected arrays."""
    np.testing.assert_array_equal(song.roll, roll)
    np.testing.assert_array_equal(song.onsets, onsets)


@EXAMPLES
@given(rows=sample_notes, fps=frame_rates, keyboard=keyboards())
def test_seconds_grid_matches_the_frame_by_frame_reference(rows, fps, keyboard):
    rows = [(start, start + length, pitch) for start, length, pitch in rows]
    lowest, highest = keyboard
    song = rolls.organize_song(notes_at_samples(rows), time_base="seconds", steps_per_second=float(fps),
                               lowest_note=lowest, highest_note=highest)
    spans = [(Fraction(start) * fps / SR, Fraction(end) * fps / SR, pitch) for start, end, pitch in rows]
    assert_song(song, *reference_song(spans, lowest, highest))
    assert (song.meter == rolls.UNKNOWN_METER).all()


eighths = st.integers(0, 8 * 40).map(lambda n: Fraction(n, 8))  # beat values in eighths: exact in floats


@EXAMPLES
@given(rows=st.lists(st.tuples(eighths, st.integers(0, 8 * 6).map(lambda n: Fraction(n, 8)), pitches), max_size=20),
       steps_per_beat=st.integers(1, 12), keyboard=keyboards())
def test_beat_grid_from_start_beat_and_beats_matches_the_reference(rows, steps_per_beat, keyboard):
    notes = notes_at_samples([(0, SR, pitch) for _, _, pitch in rows])  # sample times play no part on this grid
    notes["start_beat"] = [float(onset) for onset, _, _ in rows]
    notes["beats"] = [float(length) for _, length, _ in rows]
    lowest, highest = keyboard
    song = rolls.organize_song(notes, time_base="beats", steps_per_beat=steps_per_beat,
                               lowest_note=lowest, highest_note=highest)
    spans = [(onset * steps_per_beat, (onset + length) * steps_per_beat, pitch) for onset, length, pitch in rows]
    assert_song(song, *reference_song(spans, lowest, highest))


@EXAMPLES
@given(signatures=st.lists(st.tuples(st.integers(1, 7), st.sampled_from([4, 8])), min_size=1, max_size=8),
       silent=st.sets(st.integers(1, 6)))
def test_the_meter_follows_every_bar_and_time_signature(signatures, silent):
    """Bars of any time signature, each with a note on its downbeat but the silent ones (a bar of rests in the time
    signature of the bar before it, not the last): two frames a quarter put every bar line on a frame, so each bar's
    frames count its own length."""
    rows = [(60, measure, 0, 4 * numerator / denominator) for measure, (numerator, denominator) in enumerate(signatures)
            if not (measure in silent and measure < len(signatures) - 1 and signatures[measure - 1] == signatures[measure])]
    song = rolls.organize_song(bar_score(*rows, signatures=dict(enumerate(signatures))), time_base="beats",
                               steps_per_beat=2)
    expected = [row for numerator, denominator in signatures
                for row in bar_meter(8 * numerator // denominator, numerator, denominator)]
    np.testing.assert_array_equal(song.meter, expected)


def test_bar_starts_that_wobble_by_a_fraction_of_a_beat_are_kept_steady_and_a_real_jump_starts_anew():
    lengths = np.full(5, 2.0)                       # 2/4 bars, in quarters
    wobbly = np.array([0.0, 2.3, 3.8, 6.1, 9.0])   # label noise of up to 0.3 quarter; then a jump of half a bar
    np.testing.assert_allclose(rolls.steady_starts(wobbly, lengths), [0.0, 2.0, 4.0, 6.0, 9.0])
    score = np.array([0.0, 2.0, 4.0, 7.0])          # a score's bars, a 3/4 bar after two 2/4: unchanged
    np.testing.assert_allclose(rolls.steady_starts(score, np.array([2.0, 2.0, 3.0, 3.0])), score)

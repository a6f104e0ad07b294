"""Music statistics and novelty of hand-made songs and rolls, longest_copy against a brute-force search, and judging pieces."""
import math

import numpy as np
import pytest

from musicstats import (COPY_LIMIT_BARS, compare_to_reference, distinct_pitches, empty_frame_rate, frames_per_bar,
                        frames_per_unit, groove_consistency, judge, longest_copy, mean_note_length, music_statistics,
                        onsets_per_unit, overlapping_area, piece_statistics, pitch_class_entropy, pitch_range, polyphony,
                        polyphony_rate, scale_consistency)
from rolls import UNKNOWN_METER, Song

LOW = 21  # key 0 is MIDI 21 (A0), as on the piano
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")  # empty rolls give NaN without numpy warnings


def roll_of(*notes, frames=None, keys=88):
    """(midi_pitch, start_frame, end_frame) tuples → (frames, keys) bool roll, key 0 = MIDI LOW."""
    length = frames if frames is not None else max((end for _, _, end in notes), default=0)
    roll = np.zeros((length, keys), bool)
    for pitch, start, end in notes:
        roll[start:end, pitch - LOW] = True
    return roll


def meter_of(*bars, pickup=0):
    """(frames in the bar, numerator, denominator) per bar → (frames, 4) int16 meter, as rolls.Song holds it;
    pickup: frames of the first bar that lie before frame 0."""
    rows = [(since, length, numerator, denominator) for length, numerator, denominator in bars for since in range(length)]
    return np.array(rows[pickup:], np.int16)


def melody(*keys, keys_total=40):
    """Key indices → a roll of one single-key frame per key, in order."""
    roll = np.zeros((len(keys), keys_total), bool)
    roll[np.arange(len(keys)), keys] = True
    return roll


C_MAJOR_SCALE = roll_of(*[(pitch, 2 * i, 2 * i + 2) for i, pitch in enumerate([60, 62, 64, 65, 67, 69, 71])])
CHROMATIC = roll_of(*[(60 + i, i, i + 1) for i in range(12)])
C_CHORD = roll_of((60, 0, 8), (64, 0, 8), (67, 0, 8))  # C E G held for 8 frames
EMPTY = np.zeros((0, 88), bool)
SILENT = np.zeros((8, 88), bool)


# ------------------------------------------------------------------ pitch statistics

def test_c_major_scale_has_entropy_log2_7_and_lies_in_one_scale():
    assert pitch_class_entropy(C_MAJOR_SCALE, LOW) == pytest.approx(math.log2(7))
    assert scale_consistency(C_MAJOR_SCALE, LOW) == 1.0


def test_chromatic_run_has_entropy_log2_12_and_seven_twelfths_in_the_best_scale():
    assert pitch_class_entropy(CHROMATIC, LOW) == pytest.approx(math.log2(12))
    assert scale_consistency(CHROMATIC, LOW) == 7 / 12


def test_entropy_counts_notes_not_frames():
    roll = roll_of((60, 0, 30), (62, 30, 31))  # a long C and a short D: two notes, one each
    assert pitch_class_entropy(roll, LOW) == 1.0


def test_octaves_share_a_pitch_class():
    roll = roll_of((60, 0, 1), (72, 1, 2), (48, 2, 3))
    assert pitch_class_entropy(roll, LOW) == 0.0
    assert scale_consistency(roll, LOW) == 1.0


def test_three_semitone_cluster_fits_two_thirds_in_a_scale():
    cluster = roll_of((60, 0, 1), (61, 0, 1), (62, 0, 1))  # C C# D: no major or minor scale holds all three
    assert scale_consistency(cluster, LOW) == 2 / 3


def test_pitch_class_statistics_do_not_change_under_transposition():
    for lowest_note in (21, 22, 30):  # another lowest_note rotates the pitch classes; both statistics ignore that
        assert pitch_class_entropy(CHROMATIC[:7], lowest_note) == pytest.approx(math.log2(7))
        assert scale_consistency(C_MAJOR_SCALE, lowest_note) == 1.0


def test_pitch_range_and_distinct_pitches():
    roll = roll_of((60, 0, 2), (64, 0, 2), (60, 4, 6), (72, 3, 4))
    assert pitch_range(roll) == 12.0
    assert distinct_pitches(roll) == 3.0


# ------------------------------------------------------------------ polyphony and silence

def test_held_chord_has_polyphony_three_and_rate_one():
    assert polyphony(C_CHORD) == 3.0
    assert polyphony_rate(C_CHORD) == 1.0
    assert empty_frame_rate(C_CHORD) == 0.0


def test_polyphony_rate_counts_frames_of_three_or_more_keys_as_muspy_does():
    dyad = roll_of((60, 0, 4), (64, 0, 4))
    assert polyphony_rate(dyad) == 0.0  # MusPy: more than threshold=2 keys
    assert polyphony_rate(dyad, threshold=1) == 1.0


def test_polyphony_ignores_silent_frames_but_rate_counts_them():
    roll = roll_of((60, 0, 2), (64, 0, 2), (67, 0, 2), (72, 2, 4), frames=8)  # 3, 3, 1, 1 keys, then 4 silent frames
    assert polyphony(roll) == 8 / 4
    assert polyphony_rate(roll) == 2 / 8
    assert empty_frame_rate(roll) == 4 / 8


# ------------------------------------------------------------------ time statistics

def test_held_frames_make_one_note():
    roll = roll_of((60, 0, 4), (60, 6, 7), frames=8)  # frames 0-3 are one note (a repeat would read the same)
    assert mean_note_length(roll, frames_per_unit=2) == (4 + 1) / 2 / 2
    assert onsets_per_unit(roll, frames_per_unit=2) == 2 / (8 / 2)


def test_a_restruck_note_counts_two_onsets_and_halves_the_mean_length():
    held = roll_of((60, 0, 8))                           # one key sounding for 8 frames (2 beats at 4 frames a beat)
    onsets = np.zeros_like(held)
    onsets[[0, 4], 60 - LOW] = True                      # struck again on the second beat
    restruck = Song(held, onsets)
    assert onsets_per_unit(restruck, frames_per_unit=4) == 2 * 4 / 8
    assert onsets_per_unit(held, frames_per_unit=4) == 1 * 4 / 8
    assert mean_note_length(restruck, frames_per_unit=4) == 1.0
    assert mean_note_length(held, frames_per_unit=4) == mean_note_length(Song(held), frames_per_unit=4) == 2.0


def test_a_tremolo_on_two_keys_counts_every_stroke():
    roll = roll_of((60, 0, 8), (67, 0, 8))               # C and G sounding throughout, each struck every frame
    song = Song(roll, roll)
    assert onsets_per_unit(song, frames_per_unit=4) == 16 * 4 / 8
    assert mean_note_length(song, frames_per_unit=4) == 0.25
    assert polyphony(song) == polyphony(roll) == 2.0     # what sounds is the same


def test_restruck_notes_weigh_in_the_pitch_class_histogram():
    roll = roll_of((60, 0, 8), (64, 0, 8))
    onsets = np.zeros_like(roll)
    onsets[4, 60 - LOW] = True                           # C struck twice, E once
    assert pitch_class_entropy(roll, LOW) == 1.0
    assert pitch_class_entropy(Song(roll, onsets), LOW) == pytest.approx(-(2 / 3 * math.log2(2 / 3) + 1 / 3 * math.log2(1 / 3)))


def test_chord_counts_one_onset_per_note():
    assert mean_note_length(C_CHORD, frames_per_unit=4) == 2.0
    assert onsets_per_unit(C_CHORD, frames_per_unit=4) == 3 / 2


def test_groove_consistency_compares_neighbouring_bars():
    # 4-frame bars, the last one padded: onsets at 0, 2 | 4, 6 | 8 → patterns 1010, 1010, 1000
    roll = roll_of((60, 0, 1), (62, 2, 3), (60, 4, 5), (62, 6, 7), (64, 8, 10))
    assert groove_consistency(roll, 4) == 1 - 1 / (4 * 2)


def test_groove_consistency_counts_a_restruck_note_as_an_onset():
    roll = roll_of((60, 0, 8))                           # bars of 4 frames: 1000 then 0000 when held...
    onsets = np.zeros_like(roll)
    onsets[4, 60 - LOW] = True                           # ...1000 then 1000 when struck again
    assert groove_consistency(roll, 4) == 1 - 1 / 4
    assert groove_consistency(Song(roll, onsets), 4) == 1.0


def test_groove_consistency_follows_the_bar_lines_of_a_3_4_meter_with_a_pickup():
    # 4 frames a beat: a one-beat pickup (frames 8-11 of a 12-frame bar), then two bars of 3/4;
    # onsets on the pickup's beat and on beats 1 and 3 of each bar → patterns {8}, {0, 8}, {0, 8}
    roll = roll_of(*[(60 + i, start, start + 2) for i, start in enumerate((0, 4, 12, 16, 24))], frames=28)
    song = Song(roll, meter=meter_of((12, 3, 4), (12, 3, 4), (12, 3, 4), pickup=8))
    assert groove_consistency(song, frames_per_bar=16) == 1 - 1 / 24
    # the same notes without a meter: 4/4 bars from frame 0, {0, 4, 12} then {0, 8}
    assert groove_consistency(roll, frames_per_bar=16) == 1 - 3 / 16


def test_groove_consistency_compares_bars_of_a_meter_change_over_the_longer_bar():
    # a bar of 3/4 (12 frames) with onsets on its three beats, then two bars of 2/4 (8 frames) on theirs
    roll = roll_of(*[(60, start, start + 1) for start in (0, 4, 8, 12, 16, 20, 24)], frames=28)
    song = Song(roll, meter=meter_of((12, 3, 4), (8, 2, 4), (8, 2, 4)))
    assert groove_consistency(song, frames_per_bar=16) == 1 - 1 / (12 + 8)  # {0, 4, 8} vs {0, 4}: one onset in 12


def test_groove_consistency_counts_bars_of_frames_per_bar_where_the_meter_is_unknown():
    # a bar of 3/4 (12 frames), then 8 frames of unknown meter: two bars of 4 frames from where it became unknown
    roll = roll_of(*[(60, start, start + 1) for start in (0, 4, 8, 12, 16)], frames=20)
    unknown = np.tile(np.int16(UNKNOWN_METER), (8, 1))
    song = Song(roll, meter=np.concatenate([meter_of((12, 3, 4)), unknown]))
    assert groove_consistency(song, frames_per_bar=4) == 1 - 2 / (12 + 4)  # {0, 4, 8} vs {0}, then {0} vs {0}


def test_groove_consistency_needs_two_bars_and_whole_frames():
    assert math.isnan(groove_consistency(roll_of((60, 0, 4)), 4))
    with pytest.raises(ValueError, match="frames_per_bar"):
        groove_consistency(C_CHORD, 2.5)


def test_time_statistics_refuse_a_rate_that_is_not_positive():
    with pytest.raises(ValueError, match="frames_per_unit"):
        mean_note_length(C_CHORD, 0)


# ------------------------------------------------------------------ empty rolls

def test_empty_and_silent_rolls_give_nan_where_undefined():
    for roll in (EMPTY, SILENT):
        assert math.isnan(pitch_class_entropy(roll, LOW))
        assert math.isnan(scale_consistency(roll, LOW))
        assert math.isnan(polyphony(roll))
        assert math.isnan(mean_note_length(roll, 4))
        assert pitch_range(roll) == 0.0 and distinct_pitches(roll) == 0.0  # MusPy's 0 for no notes
    assert math.isnan(polyphony_rate(EMPTY)) and polyphony_rate(SILENT) == 0.0
    assert math.isnan(empty_frame_rate(EMPTY)) and empty_frame_rate(SILENT) == 1.0
    assert math.isnan(onsets_per_unit(EMPTY, 4)) and onsets_per_unit(SILENT, 4) == 0.0
    assert math.isnan(groove_consistency(EMPTY, 4)) and groove_consistency(SILENT, 4) == 1.0


# ------------------------------------------------------------------ all statistics at once

COMMON = ["pitch_class_entropy", "scale_consistency", "polyphony", "polyphony_rate", "empty_frame_rate",
          "pitch_range", "distinct_pitches"]


def test_music_statistics_on_the_beat_grid():
    stats = music_statistics(C_CHORD, lowest_note=LOW, time_base="beats", frames_per_unit=2, beats_per_bar=2)
    assert list(stats) == COMMON + ["mean_note_beats", "onsets_per_beat", "groove_consistency"]
    assert stats["mean_note_beats"] == 4.0 and stats["onsets_per_beat"] == 3 / 4
    assert stats["groove_consistency"] == 1 - 1 / 4  # bars of 4 frames: 1000 then 0000
    assert all(isinstance(value, float) for value in stats.values())


def test_music_statistics_on_the_seconds_grid():
    stats = music_statistics(C_CHORD, lowest_note=LOW, time_base="seconds", frames_per_unit=8.0)
    assert list(stats) == COMMON + ["mean_note_seconds", "onsets_per_second"]
    assert stats["mean_note_seconds"] == 1.0 and stats["onsets_per_second"] == 3.0
    assert stats["polyphony"] == 3.0 and stats["pitch_range"] == 7.0


def test_music_statistics_refuses_an_unknown_time_base():
    with pytest.raises(ValueError, match="time_base"):
        music_statistics(C_CHORD, lowest_note=LOW, time_base="bars", frames_per_unit=4)


# ------------------------------------------------------------------ longest_copy

TRIANGULAR = [0, 1, 3, 6, 10, 15, 21, 28, 36, 45]  # steps 1..9, all different: no part repeats another


def test_transposed_quote_is_found():
    training = np.zeros((8, 60), bool)
    training[0:8, 50] = True                             # a held key around and through the quote...
    training[1:7] = melody(10, 12, 14, 15, 17, 19, keys_total=60)
    training[1:7, 50] = False                            # ...that stops for it
    piece = np.zeros((8, 60), bool)
    piece[[0, 7], 30] = piece[[0, 7], 31] = True         # a dyad before and after
    piece[1:7] = melody(15, 17, 19, 20, 22, 24, keys_total=60)  # the quote, 5 keys up
    assert longest_copy(piece, [training]) == 6


def test_copy_split_by_one_changed_frame_counts_the_longer_part():
    training = melody(*TRIANGULAR, keys_total=60)
    piece = melody(*[key + 3 for key in TRIANGULAR], keys_total=60)
    piece[4] = False
    piece[4, [5, 7]] = True  # a dyad: the training song has none
    assert longest_copy(piece, [training]) == 5  # frames 5-9


def test_quote_must_sit_inside_one_training_roll():
    first, second = melody(*TRIANGULAR[:5], keys_total=60), melody(*TRIANGULAR[5:], keys_total=60)
    piece = melody(*TRIANGULAR, keys_total=60)
    assert longest_copy(piece, [first, second]) == 5


def test_silence_alone_is_not_a_copy():
    piece = np.zeros((20, 12), bool)
    assert longest_copy(piece, [np.zeros((30, 12), bool)]) == 0
    piece[19, 4] = True
    chord_after_silence = np.zeros((30, 12), bool)
    chord_after_silence[29, [1, 2]] = True
    assert longest_copy(piece, [chord_after_silence]) == 0  # the silent frames match, the note does not
    note_after_silence = np.zeros((30, 12), bool)
    note_after_silence[29, 9] = True
    assert longest_copy(piece, [note_after_silence]) == 20  # silence counts inside a run with notes


def test_wrapping_keys_around_the_keyboard_is_not_a_transposition():
    training = np.zeros((3, 12), bool)
    training[:, [0, 11]] = True
    wrapped = np.roll(training, 1, axis=1)  # keys 1 and 0: an 11-semitone span became 1
    assert longest_copy(wrapped, [training]) == 0
    assert longest_copy(np.roll(training, -11, axis=0), [training]) == 3  # moving frames changes nothing here


def test_shifts_across_the_64_key_word_boundary_are_found():
    training = np.zeros((4, 128), bool)
    training[[0, 1, 1, 2, 3], [2, 5, 60, 9, 3]] = True
    piece = np.zeros((4, 128), bool)
    piece[[0, 1, 1, 2, 3], [69, 72, 127, 76, 70]] = True  # 67 keys up, up to the top key
    assert longest_copy(piece, [training]) == 4


def test_longest_copy_of_songs_compares_only_the_keys_sounding():
    training = np.repeat(melody(*TRIANGULAR, keys_total=60), 2, axis=0)  # each key held for two frames
    piece = np.roll(training, 3, axis=1)
    restruck = Song(piece, onsets=piece, meter=meter_of(*[(8, 2, 4)] * 3, pickup=4))  # every frame struck, in 2/4
    assert longest_copy(restruck, [Song(training)]) == longest_copy(piece, [training]) == 20


def test_nothing_to_compare_gives_zero():
    assert longest_copy(np.zeros((0, 88), bool), [C_CHORD]) == 0
    assert longest_copy(C_CHORD, []) == 0
    assert longest_copy(C_CHORD, [EMPTY]) == 0


def test_refuses_more_than_128_keys():
    with pytest.raises(ValueError, match="128 keys"):
        longest_copy(np.zeros((4, 130), bool), [C_CHORD])


def brute_force_longest_copy(piece, training_rolls):
    """Longest run of piece frames equal to training frames moved by one key shift, by trying every run and shift."""
    frames, keys = piece.shape
    best = 0
    for roll in training_rolls:
        for s in range(frames):
            for t in range(len(roll)):
                for length in range(1, min(frames - s, len(roll) - t) + 1):
                    window, source = piece[s:s + length], roll[t:t + length]
                    if not window.any():
                        continue  # a silent run is not a copy; a longer one from here may be
                    padded = np.pad(source, ((0, 0), (keys, keys)))  # every shift, off the keyboard too
                    shifted = np.lib.stride_tricks.sliding_window_view(padded, keys, axis=1)  # (length, shifts, keys)
                    same = (shifted == window[:, None, :]).all(axis=(0, 2))
                    kept = shifted.sum(axis=(0, 2)) == source.sum()  # no note pushed off the piece's keyboard
                    matched = bool((same & kept).any())
                    if not matched:
                        break  # every longer run from (s, t) holds this one
                    best = max(best, length)
    return best


def test_longest_copy_agrees_with_brute_force_on_random_rolls():
    rng = np.random.default_rng(7)
    for _ in range(120):
        keys = int(rng.choice([5, 12, 70, 128]))
        density = rng.uniform(0.01, 0.1) if keys > 12 else rng.uniform(0.1, 0.5)
        training = [rng.random((int(rng.integers(1, 16)), keys)) < density for _ in range(int(rng.integers(1, 4)))]
        piece = rng.random((int(rng.integers(1, 12)), keys)) < density
        source = training[int(rng.integers(len(training)))]  # plant a transposed quote of random length
        length = int(rng.integers(1, min(len(source), len(piece)) + 1))
        s, t = int(rng.integers(0, len(piece) - length + 1)), int(rng.integers(0, len(source) - length + 1))
        at_frame, at_key = np.nonzero(source[t:t + length])
        if len(at_key):
            shift = int(rng.integers(-at_key.min(), keys - at_key.max()))
            piece[s:s + length] = False
            piece[s + at_frame, at_key + shift] = True
        assert longest_copy(piece, training) == brute_force_longest_copy(piece, training)


# ------------------------------------------------------------------ comparing samples

def test_identical_samples_overlap_fully():
    assert overlapping_area([1.0, 2.0, 2.5, 4.0], [1.0, 2.0, 2.5, 4.0]) == pytest.approx(1.0, abs=1e-6)


def test_far_apart_samples_do_not_overlap():
    assert overlapping_area([0.0, 1.0, 2.0], [100.0, 101.0, 102.0]) == pytest.approx(0.0, abs=1e-9)


def test_overlap_of_shifted_samples_matches_scipy():
    # scipy.stats.gaussian_kde of each, min of the two integrated by quad over the real line: 0.533964
    assert overlapping_area([0, 1, 2, 3], [2, 3, 4, 5]) == pytest.approx(0.533964, abs=1e-5)
    assert overlapping_area([2, 3, 4, 5], [0, 1, 2, 3]) == pytest.approx(0.533964, abs=1e-5)


def test_samples_without_spread():
    assert overlapping_area([3.0], [3.0, 3.0]) == 1.0
    assert overlapping_area([3.0], [4.0, 4.0]) == 0.0
    inside, beside = overlapping_area([2.5], [1, 2, 3, 4]), overlapping_area([10.0], [1, 2, 3, 4])
    assert 0.5 < inside < 1.0 and beside < 0.01  # the lone value borrows the sample's bandwidth


def test_overlap_drops_nan_and_needs_values():
    assert overlapping_area([1, 2, np.nan], [1, 2]) == pytest.approx(1.0, abs=1e-6)
    assert math.isnan(overlapping_area([], [1, 2]))
    assert math.isnan(overlapping_area([np.nan], [1, 2]))


def test_compare_to_reference_flags_values_outside_the_songs_range():
    reference = [1.0, 2.0, 6.0, 3.0, np.nan]
    assert compare_to_reference(7.0, reference) == {"mean": 3.0, "min": 1.0, "max": 6.0, "outside": True}
    assert compare_to_reference(6.0, reference)["outside"] is False
    assert compare_to_reference([0.5, 2.0, np.nan], reference)["outside"] == [True, False, True]


def test_compare_to_an_empty_reference_flags_nothing():
    result = compare_to_reference([1.0, 2.0], [np.nan])
    assert math.isnan(result["mean"]) and math.isnan(result["min"]) and math.isnan(result["max"])
    assert result["outside"] == [False, False]


# ------------------------------------------------------------------ judging generated pieces against held-out songs

GRID = {"lowest_note": LOW, "time_base": "beats", "steps_per_beat": 2, "steps_per_second": 8.0}


def test_a_bar_is_four_beats_or_two_seconds():
    assert frames_per_bar(GRID) == 8 and frames_per_bar({**GRID, "time_base": "seconds"}) == 16.0
    assert frames_per_unit(GRID) == 2 and frames_per_unit({**GRID, "time_base": "seconds"}) == 8.0


def test_piece_statistics_add_the_longest_copy_in_bars():
    training = melody(*TRIANGULAR, keys_total=88)
    stats = piece_statistics(training[:6], [training], GRID)
    assert stats["longest_copy_bars"] == 6 / 8
    expected = music_statistics(training[:6], lowest_note=LOW, time_base="beats", frames_per_unit=2)
    assert list(stats) == list(expected) + ["longest_copy_bars"]
    assert {name: stats[name] for name in expected} == pytest.approx(expected, nan_ok=True)


def test_judge_flags_figures_outside_the_held_out_range_with_what_they_usually_mean():
    training = np.random.default_rng(0).random((40, 88)) < 0.04
    quiet = np.zeros((10, 88), bool)
    quiet[:2, 30] = True                              # the primer: not judged
    quiet[6:, [39, 43, 46]] = True                    # four silent frames, then a chord
    pieces = [{"name": "copy", "song": Song(training[:20]), "primer_frames": 0},
              {"name": "quiet", "song": Song(quiet), "primer_frames": 2}]
    parts = {"train": [Song(training)], "valid": [Song(roll_of((60, 0, 8), (64, 0, 8), (67, 0, 8)))],
             "test": [Song(roll_of((62, 0, 8), (65, 0, 8), (69, 0, 8)))]}
    table = judge(pieces, parts, {"valid": ["a"], "test": ["b"]}, GRID)
    assert table["statistics"] == list(table["held_out"]["a"]) and table["statistics"][-1] == "longest_copy_bars"
    assert set(table["held_out"]) == {"a", "b"} and set(table["pieces"]) == {"copy", "quiet"}
    assert table["reference"]["empty_frame_rate"] == {"mean": 0.0, "min": 0.0, "max": 0.0}
    assert table["pieces"]["quiet"]["empty_frame_rate"] == 0.5
    assert table["flags"]["quiet"]["empty_frame_rate"] == "above [0, 0]: silence"
    assert table["pieces"]["copy"]["longest_copy_bars"] >= 20 / 8 >= COPY_LIMIT_BARS
    assert table["flags"]["copy"]["longest_copy_bars"] == "above [0, 2]: copying"
    assert table["flags"]["copy"]["distinct_pitches"].endswith("]: unlike the real songs")
    assert "longest_copy_bars" not in table["flags"]["quiet"] and "polyphony" not in table["flags"]["quiet"]


def test_judge_reads_the_onsets_and_bar_lines_of_song_pieces():
    # 2 frames a beat (GRID), 3/4 bars of 6 frames; the held-out song strikes its chord on every beat
    chord = roll_of((60, 0, 18), (64, 0, 18), (67, 0, 18))
    meter = meter_of((6, 3, 4), (6, 3, 4), (6, 3, 4))
    beats = np.zeros_like(chord)
    beats[::2] = chord[::2]
    held_out = Song(chord, beats, meter)
    primer = np.zeros((6, 88), bool)
    primer[:, 30] = True                              # one bar of primer, not judged
    piece = Song(np.concatenate([primer, chord[:12]]), np.concatenate([primer, beats[:12]]),
                 meter_of(*[(6, 3, 4)] * 3))           # the primer, then two bars like the held-out song's
    held = Song(np.concatenate([primer, chord[:12]]), meter=meter_of(*[(6, 3, 4)] * 3))  # the chord held instead
    pieces = [{"name": "struck", "song": piece, "primer_frames": 6}, {"name": "held", "song": held, "primer_frames": 6}]
    parts = {"train": [Song(C_MAJOR_SCALE)], "valid": [held_out], "test": [held_out[:12]]}
    table = judge(pieces, parts, {"valid": ["a"], "test": ["b"]}, GRID)
    assert table["held_out"]["a"]["onsets_per_beat"] == 3.0 and table["held_out"]["a"]["mean_note_beats"] == 1.0
    assert table["held_out"]["a"]["groove_consistency"] == 1.0  # the same pattern in each 3/4 bar
    assert table["pieces"]["struck"]["onsets_per_beat"] == 3.0 and table["pieces"]["struck"]["groove_consistency"] == 1.0
    assert "struck" not in table["flags"]
    assert table["pieces"]["held"]["onsets_per_beat"] == 3 / 6 and table["pieces"]["held"]["mean_note_beats"] == 6.0
    assert table["pieces"]["held"]["groove_consistency"] == 1 - 1 / 6  # 100000 then 000000
    assert table["flags"]["held"]["mean_note_beats"] == "above [1, 1]: a stuck note"
    assert table["flags"]["held"]["onsets_per_beat"] == "below [3, 3]: unlike the real songs"

"""Build data/sample.npz: a small MusicNet-format archive from music21's offline corpus.

    python data/make_sample.py

Each recording is (empty float32 audio, IntervalTree of MusicNet labels) computed from a
public-domain score at a fixed tempo with a slow deterministic drift. music21 is needed
only to rebuild the sample (a dev dependency); see data/README.md.
"""
import math
import os
import random
import sys
from fractions import Fraction

import numpy as np
from intervaltree import Interval, IntervalTree

sample_rate = 44100  # label samples per second, as MusicNet
rubato = 0.05  # tempo drift, +/- fraction of the bpm; 0.0 = metronomic
out_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sample.npz")

QUARTET = (41, 41, 42, 43)  # violin, violin, viola, cello (1-based MIDI programs)
TRIO_SONATA = (41, 41, 43)  # two violins and a cello on the bass line
PIANO = (1, 1)  # right- and left-hand staves

# (music21 corpus path, recording id, quarter notes per minute, one program per part)
CHORALES = [  # J.S. Bach chorales, Riemenschneider 1-24 (id 3000 + number) minus 6, 15 (kern) and 11 (9 parts)
    ("bach/bwv269.mxl", "3001", 72, QUARTET),
    ("bach/bwv347.mxl", "3002", 72, QUARTET),
    ("bach/bwv153.1.mxl", "3003", 72, QUARTET),
    ("bach/bwv86.6.mxl", "3004", 72, QUARTET),
    ("bach/bwv267.mxl", "3005", 72, QUARTET),
    ("bach/bwv17.7.mxl", "3007", 72, QUARTET),
    ("bach/bwv40.8.mxl", "3008", 72, QUARTET),
    ("bach/bwv248.12-2.mxl", "3009", 72, QUARTET),
    ("bach/bwv38.6.mxl", "3010", 72, QUARTET),
    ("bach/bwv65.2.mxl", "3012", 72, QUARTET),
    ("bach/bwv33.6.mxl", "3013", 72, QUARTET),
    ("bach/bwv184.5.mxl", "3014", 72, QUARTET),
    ("bach/bwv311.mxl", "3016", 72, QUARTET),
    ("bach/bwv145.5.mxl", "3017", 72, QUARTET),
    ("bach/bwv318.mxl", "3018", 72, QUARTET),
    ("bach/bwv351.mxl", "3019", 72, QUARTET),
    ("bach/bwv302.mxl", "3020", 72, QUARTET),
    ("bach/bwv153.5.mxl", "3021", 72, QUARTET),
    ("bach/bwv180.7.mxl", "3022", 72, QUARTET),
    ("bach/bwv28.6.mxl", "3023", 72, QUARTET),
    ("bach/bwv415.mxl", "3024", 72, QUARTET),
]
QUARTETS = [  # string-quartet movements; no metronome marks in these scores, bpm from the tempo word
    ("haydn/opus1no1/movement1.mxl", "3101", 156, QUARTET),  # Presto 6/8, dotted quarter 104
    ("haydn/opus1no1/movement2.mxl", "3102", 126, QUARTET),  # Menuetto
    ("haydn/opus1no1/movement3.mxl", "3103", 50, QUARTET),  # Adagio
    ("haydn/opus1no1/movement4.mxl", "3104", 126, QUARTET),  # Menuetto
    ("haydn/opus1no1/movement5.mxl", "3105", 160, QUARTET),  # Presto 2/4
    ("mozart/k155/movement2.mxl", "3106", 80, QUARTET),  # Andante 3/4
    ("mozart/k155/movement3.mxl", "3107", 152, QUARTET),  # Molto allegro 2/4
    ("beethoven/opus18no1/movement3.mxl", "3108", 252, QUARTET),  # Scherzo, Allegro molto, dotted half 84
    ("beethoven/opus59no3/movement3.mxl", "3109", 120, QUARTET),  # Menuetto grazioso
]
OTHERS = [
    ("corelli/opus3no1/1grave.xml", "3201", 54, TRIO_SONATA),  # Grave
    ("cpebach/h186.mxl", "3202", 60, PIANO),  # Poco adagio
    ("mozart/k545/movement1_exposition.mxl", "3203", 132, PIANO),  # Allegro, first 12 bars
    ("schumann_clara/polonaise_op1n1.mxl", "3204", 96, PIANO),
    ("schumann_clara/polonaise_op1n4.mxl", "3205", 92, PIANO),  # score's mark
]
PIECES = CHORALES + QUARTETS + OTHERS

_BASE_VALUES = {Fraction(1, 16): "Sixty Fourth", Fraction(1, 8): "Thirty Second", Fraction(1, 4): "Sixteenth",
                Fraction(1, 2): "Eighth", Fraction(1): "Quarter", Fraction(2): "Half", Fraction(4): "Whole"}
NOTE_VALUES = {**_BASE_VALUES,
               **{ql * Fraction(3, 2): "Dotted " + name for ql, name in _BASE_VALUES.items()},
               **{ql * Fraction(2, 3): "Triplet " + name for ql, name in _BASE_VALUES.items()}}


def note_value_name(quarter_length):
    """Duration in quarter notes → MusicNet note-value name ('Quarter', 'Dotted Half', 'Triplet Eighth', 'Unknown')."""
    return NOTE_VALUES.get(Fraction(quarter_length).limit_denominator(192), "Unknown")


def tempo_curve(bpm, rubato=0.0, seed=0):
    """→ seconds(q): quarter-note offset → seconds, 0 at 0, strictly increasing, local tempo bpm within ±rubato."""
    if not 0.0 <= rubato < 1.0:
        raise ValueError(f"rubato must be in [0, 1), got {rubato}")
    rng = random.Random(seed)
    waves = [(rng.uniform(8.0, 32.0), rng.uniform(0.0, 2 * math.pi)) for _ in range(3)]  # (period in quarters, phase)

    def seconds(q):
        # integral of 1 + rubato * mean(cos(2 pi q / period + phase)): slope stays in [1 - rubato, 1 + rubato]
        drift = sum(p / (2 * math.pi) * (math.sin(2 * math.pi * q / p + ph) - math.sin(ph)) for p, ph in waves)
        return 60.0 / bpm * (q + rubato * drift / len(waves))

    return seconds


def score_to_labels(score, bpm, programs, rubato=0.0, seed=0, sample_rate=44100):
    """music21 Score → IntervalTree of Interval(start, end, (instrument, note, measure, beat, note_value)) in samples."""
    if len(score.parts) != len(programs):
        raise ValueError(f"score has {len(score.parts)} parts but {len(programs)} programs were given")
    seconds = tempo_curve(bpm, rubato, seed)
    tree = IntervalTree()
    for part, program in zip(score.parts, programs):
        tied_measures = part.stripTies().getElementsByClass("Measure")  # same bars, tied notes merged
        for written, measure in zip(part.getElementsByClass("Measure"), tied_measures):
            # bar length in quarters, stretched for overfull bars; measured before merging ties across barlines
            bar = max(written.barDuration.quarterLength, written.paddingLeft + written.highestTime)
            for n in measure.recurse().notes:
                length = n.duration.quarterLength
                if n.duration.isGrace or length == 0:
                    continue
                in_bar = n.getOffsetInHierarchy(measure)
                onset = measure.offset + in_bar
                start = round(seconds(onset) * sample_rate)
                end = max(round(seconds(onset + length) * sample_rate), start + 1)
                beat = float((measure.paddingLeft + in_bar) / bar)
                for pitch in n.pitches:  # one interval per pitch of a chord; unpitched notes have none
                    data = (int(program), int(pitch.midi), int(measure.number), beat, note_value_name(length))
                    tree.add(Interval(int(start), int(end), data))
    return tree


def write_musicnet_archive(path, trees):
    """Write {id: IntervalTree} to path as MusicNet's npz layout (empty float32 audio), via a temp file + rename."""
    members = {}
    for recording_id, tree in trees.items():
        entry = np.empty(2, dtype=object)
        entry[0] = np.zeros(0, np.float32)
        entry[1] = tree
        members[recording_id] = entry
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:  # a file object, so numpy does not append '.npz' to the temp name
        np.savez_compressed(f, **members)
    os.replace(tmp, path)


def main():
    try:
        from music21 import corpus
    except ImportError:
        sys.exit("error: music21 is needed to rebuild the sample — pip install music21")
    trees = {}
    for corpus_path, recording_id, bpm, programs in PIECES:
        try:
            score = corpus.parse(corpus_path)
            trees[recording_id] = score_to_labels(score, bpm, programs, rubato, int(recording_id), sample_rate)
        except Exception as err:  # music21 raises many kinds of errors on files it cannot read
            print(f"skipped {corpus_path}: {err}")
    if not trees:
        sys.exit("error: no piece could be converted — is music21's corpus installed?")
    write_musicnet_archive(out_path, trees)
    notes = sum(len(tree) for tree in trees.values())
    minutes = sum(tree.end() for tree in trees.values()) / sample_rate / 60
    size_mb = os.path.getsize(out_path) / 1e6
    print(f"wrote {out_path}: {len(trees)} pieces, {notes} notes, {minutes:.1f} minutes, {size_mb:.2f} MB")


if __name__ == "__main__":
    main()

"""Preprocessing a big MIDI collection: time per file on one process and on all cores, and the speed-up.

    python benchmarks/midi_collection.py                 # 10,000 files, 3 rounds
    python benchmarks/midi_collection.py --files=2000 --rounds=5

Writes (once) a folder of small MIDI files under benchmarks/data/: pieces of
about 200 notes in three parts, two programs, at several tempi, in nested
folders. Each round then preprocesses the whole folder twice, in fresh
processes, with --workers=1 and with --workers=0 (one process per core),
alternating which goes first, from reading the files to finished beat-grid
rolls (no cache). The table gives each side's median and the ratio.
"""
import os
import statistics
import subprocess
import sys
import time
from multiprocessing import Pool

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
import midi_io  # noqa: E402
from rolls import NOTE_DTYPE, SAMPLE_RATE  # noqa: E402

PREPROCESS = ("import sys, configurator, songs, sources; "
              "settings = configurator.resolve_settings(sys.argv[2:], configurator.default_settings()); "
              "built = songs.preprocess(sources.open_source(sys.argv[1]), settings); "
              "print(len(built['ids']), len(built['skipped']))")


def piece(number):
    """A small three-part piece (~200 notes): a bass line, chords and a melody, at one of five tempi → NOTE_DTYPE notes."""
    rng = np.random.default_rng(number)
    bpm = (60, 80, 100, 120, 150)[number % 5]
    rows = []
    for bar in range(16):
        root = 36 + int(rng.integers(0, 12))
        rows.append((root, bar * 4.0, 4.0, 43))
        rows += [(root + 12 + offset, bar * 4.0 + beat, 1.0, 1) for beat in (0, 2) for offset in (0, 4, 7)]
        rows += [(root + 24 + int(rng.choice([0, 2, 4, 5, 7, 9, 11])), bar * 4.0 + step / 2, 0.5, 1) for step in range(5)]
    notes = np.zeros(len(rows), NOTE_DTYPE)
    samples_per_beat = SAMPLE_RATE * 60 / bpm
    for row, (pitch, start, beats, program) in enumerate(rows):
        notes[row] = (start * samples_per_beat, (start + beats) * samples_per_beat, program, pitch,
                      np.nan, np.nan, beats, start, beats, 0, 0)
    return notes, bpm


def write_piece(args):
    folder, number = args
    path = os.path.join(folder, f"set{number // 1000:02d}", f"piece{number:05d}.mid")
    notes, bpm = piece(number)
    midi_io.notes_to_midi(notes, path, bpm=bpm)


def build(folder, count):
    """Write count MIDI files under folder (skipped if it already holds them)."""
    existing = sum(len(names) for _, _, names in os.walk(folder)) if os.path.isdir(folder) else 0
    if existing == count:
        return
    for number in range(0, count, 1000):
        os.makedirs(os.path.join(folder, f"set{number // 1000:02d}"), exist_ok=True)
    with Pool() as pool:
        pool.map(write_piece, [(folder, number) for number in range(count)], chunksize=100)
    print(f"wrote {count} MIDI files under {folder}", file=sys.stderr)


def timed(folder, workers):
    """Seconds to preprocess the folder in a fresh process with this many workers."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", PREPROCESS, folder, f"--workers={workers}"], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    read, skipped = map(int, result.stdout.split()[-2:])
    assert skipped == 0, result.stderr[-500:]
    return seconds, read


def main(argv):
    options = dict(arg[2:].split("=", 1) for arg in argv)
    count, rounds = int(options.get("files", 10_000)), int(options.get("rounds", 3))
    folder = os.path.join(HERE, "data", f"midi{count}")
    build(folder, count)
    times = {1: [], 0: []}
    for round_number in range(rounds):
        for workers in ((1, 0) if round_number % 2 == 0 else (0, 1)):
            seconds, read = timed(folder, workers)
            assert read == count
            times[workers].append(seconds)
            print(f"round {round_number + 1}, workers={workers}: {seconds:.1f} s", file=sys.stderr, flush=True)
    one, many = statistics.median(times[1]), statistics.median(times[0])
    print(f"\n{count} MIDI files, {os.cpu_count()} cores, median of {rounds} rounds (whole process, start-up included)\n")
    print("| preprocessing | wall time | per file | speed-up |\n|---|---|---|---|")
    print(f"| one process (--workers=1), baseline | {one:.1f} s | {one / count * 1000:.2f} ms | 1.00x |")
    print(f"| one per core (--workers=0) | {many:.1f} s | {many / count * 1000:.2f} ms | {one / many:.2f}x |")


if __name__ == "__main__":
    main(sys.argv[1:])

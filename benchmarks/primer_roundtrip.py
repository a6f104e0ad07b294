"""Primer round trip: does a real MIDI file's opening, written back by the writer, keep every onset the grid resolves?

    python benchmarks/primer_roundtrip.py                                   # quartet openings from music21's corpus
    python benchmarks/primer_roundtrip.py --midi /work/midifolder/*.mid     # any MIDI files
    python benchmarks/primer_roundtrip.py --cli --model_path=models/sample.keras [--name=value ...]

Each file F is read on the beat grid at STEPS_PER_BEAT frames a quarter note
(midi_io.midi_to_notes, rolls.organize_song), its first BEATS beats are
written with midi_io.roll_to_midi, and both F and the written file are counted
by an independent reader: mido's messages, every note_on but drums, its tick
rounded (half up) to the nearest frame of the same grid, in the first BEATS
beats. Per key: "onsets" counts F's note_ons, "resolvable" the distinct frames
they fall in (two strokes of one key in one frame are one), "kept" those the
written file strikes too, at the same frame, "added" frames the written file
strikes that F does not; "time signatures kept": the same ones at the same
frames in both openings (none at frame 0 counting as MIDI's 4/4). The baseline is the
same song written as a bare roll (onsets dropped: a re-struck key reads as
held), measured in the same run. With --cli the writer is the real command
line instead: `classically_deep.py --primer_path=F` with the model given (and
any other --name=value passed on), counting in its generated_1.mid.

The default files are the openings (bars 0-12) of three string quartet
movements in music21's corpus, written once under benchmarks/data/primers/ by
music21: Beethoven Op. 59 No. 1 (repeated eighth chords under the cello's
theme, 4/4), Op. 18 No. 1 (3/4) and Mozart K. 458 (6/8). The compositions are
in the public domain; the encodings carry no licence of their own (see
"Sources and licences of the quartets" in benchmarks/README.md).
"""
import argparse
import math
import os
import subprocess
import sys
import tempfile

import mido

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
import midi_io  # noqa: E402
import rolls  # noqa: E402

STEPS_PER_BEAT = 4  # frames per quarter note: the beat grid the onsets are counted on
BEATS = 8  # the primer: this many quarter notes from the start
LOWEST_NOTE, HIGHEST_NOTE = 21, 108  # the roll's keys (the piano), as the driver's defaults
PRIMERS = os.path.join(HERE, "data", "primers")
OPENINGS = {  # file name: music21 corpus work, first movement
    "beethoven_op59no1.mid": "beethoven/opus59no1/movement1",
    "beethoven_op18no1.mid": "beethoven/opus18no1/movement1",
    "mozart_k458.mid": "mozart/k458/movement1",
}


def build_primers(folder):
    """Write OPENINGS' bars 0-12 as MIDI files with music21 (once) → their paths."""
    paths = [os.path.join(folder, name) for name in OPENINGS]
    missing = [path for path in paths if not os.path.exists(path)]
    if missing:
        from music21 import corpus  # only to build the files once
        os.makedirs(folder, exist_ok=True)
        for path in missing:
            corpus.parse(OPENINGS[os.path.basename(path)]).measures(0, 12).write("midi", fp=path)
    return paths


def opening(path, beats=BEATS, steps_per_beat=STEPS_PER_BEAT):
    """The independent count of a file's first `beats` quarter notes → ({MIDI key: [grid frame of each note_on]},
    [(grid frame, numerator, denominator) of each time signature]): drums and keys off the roll left out, ticks
    rounded half up to the nearest frame."""
    midi, tick, struck, signatures = mido.MidiFile(path), 0, {}, []
    for message in mido.merge_tracks(midi.tracks):
        tick += message.time
        frame = math.floor(tick * steps_per_beat / midi.ticks_per_beat + 0.5)
        if frame >= beats * steps_per_beat:
            break
        if message.type == "note_on" and message.velocity and message.channel != 9 and \
                LOWEST_NOTE <= message.note <= HIGHEST_NOTE:
            struck.setdefault(message.note, []).append(frame)
        elif message.type == "time_signature":
            signatures.append((frame, message.numerator, message.denominator))
    return struck, signatures


def write_opening(path, folder, bare=False):
    """F's first BEATS beats on the beat grid, written by roll_to_midi (as a bare roll with bare) → the written path."""
    song = rolls.organize_song(midi_io.midi_to_notes(path), lowest_note=LOWEST_NOTE, highest_note=HIGHEST_NOTE,
                               time_base="beats", steps_per_beat=STEPS_PER_BEAT)[:BEATS * STEPS_PER_BEAT]
    written = os.path.join(folder, ("bare_" if bare else "song_") + os.path.basename(path))
    midi_io.roll_to_midi(song.roll if bare else song, written, lowest_note=LOWEST_NOTE, frames_per_beat=STEPS_PER_BEAT,
                         bpm=midi_io.first_tempo(path))
    return written


def run_cli(path, folder, model_path, extra):
    """The real command line primed with F → its generated_1.mid."""
    output_dir = os.path.join(folder, "cli_" + os.path.splitext(os.path.basename(path))[0])
    command = [sys.executable, os.path.join(ROOT, "classically_deep.py"), f"--model_path={model_path}",
               f"--primer_path={path}", f"--output_dir={output_dir}", "--num_outputs=1", *extra]
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return os.path.join(output_dir, "generated_1.mid")


def compare(primer, written):
    """Two openings → (onsets in the primer, resolvable at the grid: distinct frames, kept: those the written file
    strikes too, at the same frame, added: frames the written file strikes that the primer does not, whether the
    time signatures are the same)."""
    resolvable = {key: set(frames) for key, frames in primer[0].items()}
    struck = {key: set(frames) for key, frames in written[0].items()}
    kept = sum(len(frames & struck.get(key, set())) for key, frames in resolvable.items())
    added = sum(len(frames - resolvable.get(key, set())) for key, frames in struck.items())
    meter = [signatures if signatures[:1] and signatures[0][0] == 0 else [(0, 4, 4)] + signatures  # MIDI's default
             for signatures in (primer[1], written[1])]
    return sum(map(len, primer[0].values())), sum(map(len, resolvable.values())), kept, added, meter[0] == meter[1]


def table(rows, baseline):
    """Print (file, compare's counts, the baseline's kept) rows and their total as one markdown table."""
    print(f"| file | onsets in primer | resolvable at the grid | kept | added | share | time signatures kept | "
          f"{baseline}: kept | share |")
    print("|---|---:|---:|---:|---:|---:|---|---:|---:|")
    total = [sum(column) for column in zip(*[(*counts, base) for _, counts, base in rows])] if rows else [0] * 6
    total[4] = f"{total[4]} of {len(rows)}"
    for name, (onsets, resolvable, kept, added, meter), base in rows + [("**total**", total[:5], total[5])]:
        share = (lambda count: f"{count / resolvable:.0%}") if resolvable else (lambda count: "-")
        meter = {True: "yes", False: "no"}.get(meter, meter)
        print(f"| {name} | {onsets} | {resolvable} | {kept} | {added} | {share(kept)} | {meter} | {base} | {share(base)} |")


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--midi", nargs="+", help="MIDI files (default: the quartet openings, built once with music21)")
    parser.add_argument("--cli", action="store_true", help="count in the real command line's generated_1.mid")
    parser.add_argument("--model_path", help="the saved model --cli composes with")
    args, extra = parser.parse_known_args(argv)
    if args.cli and not args.model_path:
        parser.error("--cli needs --model_path")
    if extra and not args.cli:
        parser.error(f"unknown arguments {' '.join(extra)} (only --cli passes arguments on)")
    paths = args.midi or build_primers(PRIMERS)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for path in paths:
            primer = opening(path)
            written = run_cli(path, folder, args.model_path, extra) if args.cli else write_opening(path, folder)
            bare = compare(primer, opening(write_opening(path, folder, bare=True)))
            rows.append((os.path.basename(path), compare(primer, opening(written)), bare[2]))
    print(f"Primer round trip: first {BEATS} beats at {STEPS_PER_BEAT} frames a beat, onsets per key counted with mido "
          f"({'the command line' if args.cli else 'midi_io.roll_to_midi'} against a bare roll)")
    table(rows, "bare roll")


if __name__ == "__main__":
    main(sys.argv[1:])

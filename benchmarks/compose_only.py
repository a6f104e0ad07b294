"""Compose-only speed: the command that writes three pieces of 256 frames with audio from a trained model, timed
from the shell (wall clock, imports included), against the 15 s target.

    python benchmarks/compose_only.py                      # first trains a default-size model for one epoch
    python benchmarks/compose_only.py --model=output --runs=5

Each command runs `runs` times, each in a fresh process into a fresh folder,
after one untimed run (which builds the roll cache the held-out row reads);
the table gives min / median / max seconds. Rows: the driver answering
--help (the interpreter and the driver's own imports, no Keras: the
baseline, measured in the same run), composing from a MIDI primer
(`--model_path=... --primer_path=...`, no data read) and composing from the
held-out songs of the embedded sample (judged against them too). The model's
quality does not change the time, so one epoch of training is enough; its
size does: the default settings' model is the one users get. Everything is
written under benchmarks/output/compose_only/.
"""
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
import midi_io  # noqa: E402
from rolls import NOTE_DTYPE  # noqa: E402

OUT = os.path.join(HERE, "output", "compose_only")
DRIVER = [sys.executable, os.path.join(ROOT, "classically_deep.py")]
TARGET_SECONDS = 15.0
OPTIONS = ("model", "runs")


def run(command, quiet=True):
    """Run a command from the repository root → its wall-clock seconds; stop the benchmark if it fails."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL if quiet else None, stderr=subprocess.PIPE,
                          text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-2000:]}")
    return seconds


def trained_model():
    """A model of the default settings trained for one epoch on the embedded sample → its run folder."""
    folder = os.path.join(OUT, "model")
    if not os.path.isfile(os.path.join(folder, "best.keras")):
        print("training a default-size model for one epoch ...", file=sys.stderr, flush=True)
        run([*DRIVER, "--epochs=1", "--num_outputs=0", f"--output_dir={folder}", f"--cache_dir={OUT}/cache"])
    return folder


def primer():
    """A MIDI primer, eight beats of triads at 100 bpm → its path."""
    chords = [(beat, root + step) for beat, root in enumerate((60, 65, 67, 60, 62, 67, 65, 60)) for step in (0, 4, 7)]
    samples = 44100 * 60 / 100  # a beat at 100 bpm
    notes = np.zeros(len(chords), NOTE_DTYPE)
    for row, (beat, pitch) in enumerate(chords):
        notes[row] = (round(beat * samples), round((beat + 1) * samples), 1, pitch, np.nan, np.nan, 1.0, beat, 1.0, 0, 0)
    path = os.path.join(OUT, "primer.mid")
    midi_io.notes_to_midi(notes, path, bpm=100)
    return path


def timed(label, command_for, runs):
    """command_for(folder) run once untimed, then `runs` times → a row: (label, the command, seconds of each run)."""
    run(command_for(os.path.join(OUT, "runs", f"{label}-warm-up")))
    seconds = [run(command_for(os.path.join(OUT, "runs", f"{label}-{number}"))) for number in range(1, runs + 1)]
    shown = " ".join(part.replace(ROOT + os.sep, "") for part in command_for("OUT")[1:])
    print(f"{label}: {', '.join(f'{value:.1f}' for value in seconds)} s", file=sys.stderr, flush=True)
    return label, f"python {shown}", seconds


def main(argv):
    options = dict(arg[2:].split("=", 1) for arg in argv if arg.startswith("--") and "=" in arg
                   and arg[2:].split("=", 1)[0] in OPTIONS)
    runs = int(options.get("runs", 3))
    os.makedirs(os.path.join(OUT, "runs"), exist_ok=True)
    model = options.get("model") or trained_model()
    melody = primer()
    rows = [
        timed("start-up, --help (baseline)", lambda folder: [*DRIVER, "--help"], runs),
        timed("from a MIDI primer", lambda folder: [*DRIVER, f"--model_path={model}", f"--primer_path={melody}",
                                                     f"--output_dir={folder}"], runs),
        timed("from held-out songs", lambda folder: [*DRIVER, f"--model_path={model}", f"--output_dir={folder}",
                                                      f"--cache_dir={OUT}/cache"], runs),
    ]
    baseline = statistics.median(rows[0][2])
    print(f"\ncompose-only: {runs} runs each (after one untimed), 3 pieces of 256 frames with WAV, PNG and report; "
          f"wall clock from the shell, imports included; {os.cpu_count()} CPU cores\n")
    print("| command | min s | median s | max s | median / baseline | median / 15 s target |")
    print("|---|---|---|---|---|---|")
    for label, command, seconds in rows:
        median = statistics.median(seconds)
        print(f"| {label}: `{command}` | {min(seconds):.1f} | {median:.1f} | {max(seconds):.1f} | "
              f"{median / baseline:.1f}x | {median / TARGET_SECONDS:.2f} |")
    path = os.path.join(OUT, "compose_only.json")
    with open(path, "w") as file:
        json.dump({label: {"command": command, "seconds": seconds} for label, command, seconds in rows}, file, indent=1)
    print(f"\nwrote {os.path.relpath(path)}")


if __name__ == "__main__":
    main(sys.argv[1:])

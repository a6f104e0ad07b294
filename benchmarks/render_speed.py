"""Rendering speed: 60 s of dense four-voice music to a WAV, each renderer against real time.

    python benchmarks/render_speed.py                  # 60 s of music, 3 rounds
    python benchmarks/render_speed.py --seconds=300 --rounds=5

Writes four voices (bass, tenor, alto, soprano; random walks of sixteenth,
eighth and quarter notes, one MIDI file per program: piano and violin) with
midi_io.roll_to_midi at 120 bpm, then times listen.render_wav on each with the
built-in renderer and, when the system has it, with FluidSynth (the whole call:
reading the MIDI, rendering, writing the WAV). The baseline is real time, the
length of the audio itself; the factor is how many times faster than that.
"""
import os
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the modules beside benchmarks/
import listen  # noqa: E402
from midi_io import roll_to_midi  # noqa: E402
from soundfont import load_soundfont  # noqa: E402

LOWEST_NOTE, FRAMES_PER_BEAT, BPM = 21, 4, 120
VOICES = [(36, 52), (48, 64), (55, 72), (62, 84)]  # MIDI ranges: bass, tenor, alto, soprano


def four_voices(seconds, seed=0):
    """(frames, 88) bool roll: four voices moving by step in sixteenths, eighths and quarters, never resting."""
    rng = np.random.default_rng(seed)
    frames = int(round(seconds * BPM / 60 * FRAMES_PER_BEAT))
    roll = np.zeros((frames, 88), bool)
    for low, high in VOICES:
        frame, key = 0, int(rng.integers(low, high))
        while frame < frames:
            length = int(rng.choice([1, 2, 2, 4]))
            key = int(np.clip(key + rng.integers(-3, 4), low, high))
            roll[frame:frame + length - 1 if length > 1 else frame + 1, key - LOWEST_NOTE] = True  # a gap re-strikes
            frame += length
    return roll


def timed(midi, wav, renderer, rounds):
    """Median seconds of `rounds` renders, and the last render's result."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        info = listen.render_wav(midi, wav, renderer=renderer)
        times.append(time.perf_counter() - start)
    return statistics.median(times), info


def main(argv):
    """Print the table."""
    options = dict(arg[2:].split("=", 1) for arg in argv if arg.startswith("--") and "=" in arg)
    seconds, rounds = float(options.get("seconds", 60)), int(options.get("rounds", 3))
    renderers = ["builtin"] + (["fluidsynth"] if listen.fluidsynth_path() else [])
    load_soundfont()  # parsed once per process: not part of a render
    rows = []
    with tempfile.TemporaryDirectory(prefix="render-speed-") as folder:
        roll = four_voices(seconds)
        for program, name in ((1, "piano"), (41, "violin")):
            midi = os.path.join(folder, f"{name}.mid")
            notes = roll_to_midi(roll, midi, lowest_note=LOWEST_NOTE, frames_per_beat=FRAMES_PER_BEAT, bpm=BPM,
                                 program=program)
            for renderer in renderers:
                median, info = timed(midi, os.path.join(folder, f"{name}.wav"), renderer, rounds)
                rows.append((name, notes, renderer, info["seconds"], median))
                print(f"{name} {renderer}: {median:.2f} s", file=sys.stderr, flush=True)
    print(f"\n{seconds:g} s of four-voice music at {BPM} bpm, 44.1 kHz stereo, {os.cpu_count()} cores, "
          f"median of {rounds} renders (MIDI read, render, WAV written)"
          f"{'' if 'fluidsynth' in renderers else '; no fluidsynth on PATH'}\n")
    print("| music | renderer | audio | render time | faster than real time |\n|---|---|---|---|---|")
    print(f"| any | real time (the audio's own length), baseline | {seconds:.1f} s | {seconds:.1f} s | 1.0x |")
    for name, notes, renderer, audio, median in rows:
        print(f"| {name}, {notes} notes | {renderer} | {audio:.1f} s | {median:.2f} s | {seconds / median:.0f}x |")


if __name__ == "__main__":
    main(sys.argv[1:])

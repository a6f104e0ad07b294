"""Which head and temperature compose music most like the real thing: statistics' overlap with held-out songs.

    python benchmarks/generation.py                          # both heads, temperatures 0.8 to 1.1, note floors 0 to 0.02
    python benchmarks/generation.py --heads=nade --pieces=24 --temperatures=1.0 --floors=0,0.02
    python benchmarks/generation.py --heads=nade --model=output/best.keras   # a trained model instead of training

Trains each head once through the normal command line (default settings, no
generation), then composes `pieces` pieces per temperature from the openings
of the held-out songs and measures, for every statistic of musicstats, the
overlapping area (Yang & Lerch 2018) between the generated pieces' values and
the held-out songs' values: 1 = the same distribution, 0 = disjoint. The
baseline row, measured in the same run, is the training songs against the
held-out songs: how alike two sets of real music are. `copy` is the longest
stretch of a generated piece found in a training song, in bars (the mean).
`in range`: the pieces whose pitch-class entropy, scale consistency and
polyphony all lie inside the range of every real song of the data (training
and held out), issue 8's test of whether the output resembles the music.
"""
import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import musicstats  # noqa: E402
import sources  # noqa: E402
from compose import generate_song  # noqa: E402
from configurator import default_settings, resolve_settings  # noqa: E402
from songs import load_songs, resolve_data_path  # noqa: E402

SHORT = {"pitch_class_entropy": "pc entropy", "scale_consistency": "scale", "polyphony": "polyphony",
         "polyphony_rate": "poly rate", "distinct_pitches": "pitches", "mean_note_beats": "note len",
         "mean_note_seconds": "note len", "onsets_per_beat": "onsets", "onsets_per_second": "onsets",
         "groove_consistency": "groove"}  # the statistics shown, in this order, where the time base has them
SHOWN = []
JUDGED = ("pitch_class_entropy", "scale_consistency", "polyphony")  # the `in range` column's statistics
OPTIONS = ("heads", "pieces", "temperatures", "floors", "model")


def train(head, extra):
    """Train one head through the command line (no generation) → its output folder."""
    out = os.path.join(HERE, "output", f"generation-{head}")
    command = [sys.executable, os.path.join(ROOT, "classically_deep.py"), f"--head={head}", f"--output_dir={out}",
               "--num_outputs=0", *extra]
    print("$ " + " ".join(command[1:]), file=sys.stderr, flush=True)
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return out


def overlaps(values, reference):
    """{statistic: overlapping area} of two lists of statistics dicts."""
    return {name: musicstats.overlapping_area([v[name] for v in values], [r[name] for r in reference]) for name in SHOWN}


def row(label, areas, copy="", in_range=""):
    cells = " | ".join(f"{areas[name]:.2f}" for name in SHOWN)
    return f"| {label} | {cells} | {np.mean([areas[name] for name in SHOWN]):.2f} | {copy} | {in_range} |"


def count_in_range(stats, real):
    """How many statistics dicts have every JUDGED statistic inside the range of the real ones."""
    bounds = {name: (min(r[name] for r in real), max(r[name] for r in real)) for name in JUDGED}
    return sum(all(bounds[name][0] <= s[name] <= bounds[name][1] for name in JUDGED) for s in stats)


def main(argv):
    options = dict(arg[2:].split("=", 1) for arg in argv if arg.startswith("--") and "=" in arg
                   and arg[2:].split("=", 1)[0] in OPTIONS)
    extra = [arg for arg in argv if arg[2:].split("=", 1)[0] not in OPTIONS]
    heads = options.get("heads", "nade,sigmoid").split(",")
    count = int(options.get("pieces", 12))
    temperatures = [float(t) for t in options.get("temperatures", "0.8,0.9,1.0,1.1").split(",")]
    floors = [float(f) for f in options.get("floors", "0,0.005,0.01,0.02").split(",")]
    import keras
    import model  # noqa: F401  registers the custom layers of best.keras
    settings = resolve_settings(extra, default_settings())
    source = sources.open_source(resolve_data_path(settings["data_path"]))
    parts, split, _ = load_songs(source, settings)
    held_out = [musicstats.piece_statistics(roll, parts["train"], settings) for roll in parts["valid"] + parts["test"]]
    SHOWN[:] = [name for name in SHORT if name in held_out[0]]
    training = [musicstats.piece_statistics(roll, parts["train"][:i] + parts["train"][i + 1:], settings)
                for i, roll in enumerate(parts["train"])]
    openings = [roll[:settings["primer_frames"]] for roll in parts["valid"] + parts["test"]
                if len(roll) >= settings["primer_frames"]]
    primers = np.stack([openings[n % len(openings)] for n in range(count)])
    real = training + held_out
    lines = [row("training songs (real music, the baseline)", overlaps(training, held_out), "",
                 f"{count_in_range(real, real)}/{len(real)}")]
    results = {}
    given = keras.saving.load_model(options["model"]) if options.get("model") else None
    for head in [given.config["head"]] if given else heads:  # a given model: its own head, whatever --heads says
        trained = given or keras.saving.load_model(os.path.join(train(head, extra), "best.keras"))
        for temperature in temperatures:
            for floor in floors:
                pieces = generate_song(trained, primers, settings["generate_frames"], temperature,
                                       settings["seed"], floor)
                stats = [musicstats.piece_statistics(piece, parts["train"], settings) for piece in pieces]
                areas = overlaps(stats, held_out)
                copy = np.mean([s["longest_copy_bars"] for s in stats])
                in_range = count_in_range(stats, real)
                results[f"{head} T={temperature:g} floor={floor:g}"] = {"overlap": areas, "mean_copy_bars": copy,
                                                                       "in_range": in_range}
                lines.append(row(f"head={head}, temperature={temperature:g}, note_floor={floor:g}", areas,
                                 f"{copy:.2f}", f"{in_range}/{count}"))
                print(lines[-1], file=sys.stderr, flush=True)
    print(f"\n{count} pieces of {settings['generate_frames']} frames per row against {len(held_out)} held-out songs; "
          "overlapping area of each statistic's distribution (1 = same as the held-out songs)\n")
    print("| pieces | " + " | ".join(SHORT[name] for name in SHOWN) + " | mean | copy (bars) | in range |")
    print("|---" * (len(SHOWN) + 4) + "|")
    print("\n".join(lines))
    path = os.path.join(HERE, "output", "generation.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as file:
        json.dump(results, file, indent=1)
    print(f"\nwrote {os.path.relpath(path)}")


if __name__ == "__main__":
    main(sys.argv[1:])

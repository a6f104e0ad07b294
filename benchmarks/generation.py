"""Whether composed pieces move like real music: the share inside the real songs' range, beside real excerpts.

    python benchmarks/generation.py --model=output        # the default run's model (a run folder or a .keras file)
    python benchmarks/generation.py                       # trains the default run first (benchmarks/output/generation-model)
    python benchmarks/generation.py --model=output --pieces=24 --temperatures=0.9,1.0 --floors=0,0.01 --excerpts=5
    python benchmarks/generation.py --model=output --data_path=data/other.npz   # driver settings the model does not fix

Loads the model as the driver's model_path does (saved_models: its roll and
model settings replace the defaults) and composes `pieces` pieces (96) for each
temperature and note floor (the driver's temperature and note_floor unless
given), primed as the driver primes them, by the held-out songs' openings in
turn (compose.choose_primers), with its sample_seed. A piece is judged whole,
primer_frames of primer then generate_frames generated, as its MIDI file holds
it. Beside them, real excerpts of the same length, `excerpts` (3) per song at
evenly spaced starts, cut from every song of the data (train, valid, test).

Columns: for onsets per beat, mean note length, groove consistency, pitch-class
entropy, scale consistency and polyphony, the share of pieces whose value lies
inside the range of the held-out songs' values (whole songs, as the report
judges). `in range`: the share whose pitch-class entropy, scale consistency and
polyphony all lie inside the range of every real song (training and held out).
`onset overlap`: overlapping area (Yang & Lerch 2018, musicstats.overlapping_area)
of the onsets per beat over the pieces with those over the held-out songs, 1 =
the same distribution; `mean overlap` the same averaged over every statistic
of SHORT. `copy`: the mean longest stretch of a piece found in a training song,
in bars. Rows: the real excerpts (the shares to reach), the training songs
whole (the overlaps to reach: how alike two sets of real music are), then the
composed pieces. Every figure also goes to benchmarks/output/generation.json.
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
import compose  # noqa: E402
import musicstats  # noqa: E402
import saved_models  # noqa: E402
import sources  # noqa: E402
from configurator import SettingsError, default_settings, resolve_settings  # noqa: E402
from files import DataError, printable  # noqa: E402
from songs import load_songs, resolve_data_path  # noqa: E402

SHORT = {"onsets_per_beat": "onsets", "onsets_per_second": "onsets", "mean_note_beats": "note len",
         "mean_note_seconds": "note len", "groove_consistency": "groove", "pitch_class_entropy": "pc entropy",
         "scale_consistency": "scale", "polyphony": "polyphony", "polyphony_rate": "poly rate",
         "distinct_pitches": "pitches"}  # the statistics whose overlap is averaged, where the time base has them
TARGETED = list(SHORT)[:8]  # the statistics whose share inside the held-out range is a column, in this order
JUDGED = ("pitch_class_entropy", "scale_consistency", "polyphony")  # the `in range` column's statistics
OPTIONS = {"model": "", "pieces": "96", "temperatures": "", "floors": "", "excerpts": "3"}
OUT = os.path.join(HERE, "output")


def options_and_settings(argv):
    """Command-line arguments → (this benchmark's OPTIONS, the driver settings given); --help prints the docstring."""
    if {"-h", "--help"} & set(argv):
        print(__doc__)
        sys.exit(0)
    options, extra = dict(OPTIONS), []
    for arg in argv:
        name, equals, value = arg[2:].partition("=")
        if arg.startswith("--") and equals and name in OPTIONS:
            options[name] = value
        else:
            extra.append(arg)
    return options, extra


def train(extra):
    """Train the default run (with the driver settings given) through the command line, composing nothing → its folder."""
    out = os.path.join(OUT, "generation-model")
    command = [sys.executable, os.path.join(ROOT, "classically_deep.py"), f"--output_dir={out}", "--num_outputs=0", *extra]
    print("$ " + " ".join(command[1:]), file=sys.stderr, flush=True)
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return out


def load(path, extra):
    """A run folder or .keras file and the driver settings given → (the model, the settings with the model's own)."""
    defaults = default_settings()
    given = resolve_settings(extra, defaults)
    saved = saved_models.read_model_file(path, "--model")
    settings = saved_models.restore_settings(saved, given, defaults, "--model")
    print(f"model: {printable(saved['path'])}: {saved_models.describe(saved)}", file=sys.stderr, flush=True)
    return saved_models.load_model(saved), settings


def excerpts(songs, length, per_song):
    """Songs → up to per_song excerpts of length frames from each song that long, at evenly spaced starts (the first
    at frame 0, the last ending with the song) → list of Songs."""
    cut = []
    for song in songs:
        if len(song) >= length:
            starts = np.unique(np.linspace(0, len(song) - length, per_song).round().astype(int))
            cut += [song[start:start + length] for start in starts]
    return cut


def statistics(song, settings):
    """musicstats.music_statistics of a Song on the run's grid."""
    return musicstats.music_statistics(song, lowest_note=settings["lowest_note"], time_base=settings["time_base"],
                                       frames_per_unit=musicstats.frames_per_unit(settings))


def outside(stats, reference, name):
    """(len(stats),) bool: where a statistic lies outside the reference's range (NaN counts as outside)."""
    return np.array(musicstats.compare_to_reference([s[name] for s in stats], [r[name] for r in reference])["outside"],
                    bool)


def measure(stats, held_out, real):
    """Statistics dicts of some pieces → {'shares' inside the held-out range, 'in_range', 'overlap' with the held-out
    songs per statistic, 'count'} (shares 0..1)."""
    names = [name for name in SHORT if name in held_out[0]]
    return {"shares": {name: float(1 - outside(stats, held_out, name).mean()) for name in TARGETED if name in names},
            "in_range": float(1 - np.any([outside(stats, real, name) for name in JUDGED], axis=0).mean()),
            "overlap": {name: musicstats.overlapping_area([s[name] for s in stats], [h[name] for h in held_out])
                        for name in names},
            "count": len(stats)}


def row(label, result):
    """One measure() result → a markdown table row."""
    onsets = next(name for name in result["overlap"] if name.startswith("onsets_per"))
    copy = f"{result['copy_bars']:.2f}" if "copy_bars" in result else ""
    cells = [f"{100 * share:.0f}%" for share in result["shares"].values()]
    cells += [f"{100 * result['in_range']:.0f}%", f"{result['overlap'][onsets]:.2f}",
              f"{np.mean(list(result['overlap'].values())):.2f}", copy]
    return f"| {label} | " + " | ".join(cells) + " |"


def main(argv):
    options, extra = options_and_settings(argv)
    model, settings = load(options["model"] or train(extra), extra)
    count, per_song = int(options["pieces"]), int(options["excerpts"])
    temperatures = [float(t) for t in options["temperatures"].split(",")] if options["temperatures"] else \
        [settings["temperature"]]
    floors = [float(f) for f in options["floors"].split(",")] if options["floors"] else [settings["note_floor"]]
    source = sources.open_source(resolve_data_path(settings["data_path"]))
    parts, _, _ = load_songs(source, settings)
    held_out = [statistics(song, settings) for song in parts["valid"] + parts["test"]]
    training = [statistics(song, settings) for song in parts["train"]]
    real = training + held_out
    length = settings["primer_frames"] + settings["generate_frames"]
    cut = excerpts(parts["train"] + parts["valid"] + parts["test"], length, per_song)
    results = {f"real excerpts ({len(cut)} of {length} frames, every split)": measure(
                   [statistics(song, settings) for song in cut], held_out, real),
               f"training songs ({len(training)}, whole: the baseline)": measure(training, held_out, real)}
    primers = list(compose.choose_primers(parts["test"], {**settings, "num_outputs": count, "primer_path": ""}))
    for temperature in temperatures:
        for floor in floors:
            pieces = compose.generate_song(model, primers, settings["generate_frames"], temperature,
                                           settings["sample_seed"], floor)  # each primer and its continuation
            stats = [musicstats.piece_statistics(piece, parts["train"], settings) for piece in pieces]
            label = f"generated, temperature={temperature:g}, note_floor={floor:g}"
            results[label] = {**measure(stats, held_out, real),
                              "copy_bars": float(np.mean([s["longest_copy_bars"] for s in stats]))}
            print(row(label, results[label]), file=sys.stderr, flush=True)
    shown = list(next(iter(results.values()))["shares"])
    print(f"\n{count} pieces of {length} frames (primer included) per generated row against {len(held_out)} held-out "
          f"songs; shares inside the held-out songs' range, `in range` inside every real song's ({len(real)})\n")
    print("| pieces | " + " | ".join(SHORT[name] for name in shown) + " | in range | onset overlap | mean overlap "
          "| copy (bars) |")
    print("|---" * (len(shown) + 5) + "|")
    print("\n".join(row(label, result) for label, result in results.items()))
    path = os.path.join(OUT, "generation.json")
    os.makedirs(OUT, exist_ok=True)
    with open(path, "w") as file:
        json.dump({"settings": settings, "results": results}, file, indent=1)
    print(f"\nwrote {os.path.relpath(path)}")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (SettingsError, DataError) as err:
        sys.exit(f"error: {err}")

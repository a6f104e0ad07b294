"""Fine-tuning a trained model against training from scratch on a small collection, in the same minutes.

    python benchmarks/fine_tune.py                           # from models/sample.keras, 3 training minutes a side
    python benchmarks/fine_tune.py --init_from=output --max_minutes=5
    python benchmarks/fine_tune.py --seed=7                  # any other --name=value goes to both runs

The collection is ten movements of Mozart string quartets from music21's
offline corpus, none of them in data/sample.npz: K. 80 (all four), K. 155 I,
K. 156 (all four files) and K. 458 II. It is written once (music21 needed,
as for data/make_sample.py) as a folder of MIDI files with midi_io, each at
its score's tempo mark or a usual tempo for its tempo word, with a split file
by piece: every part holds movements of both K. 80 and K. 156. The files are
Finale exports with no rights statement (the music is in the public domain).
Then the driver's command line runs twice on it with the same --max_minutes,
fine-tuned (--init_from=the trained model) and from scratch (the baseline),
each in its own output folder under benchmarks/output/; the trained model as
it is, before fine-tuning, is scored too. One table compares the held-out
frame NLL (metrics.json) and the mean music statistics of the three composed
pieces against the held-out songs' range. Training stops at the time budget,
so a busier machine fits fewer epochs: the table gives the epochs each side
ran and the load average when it started. Writes benchmarks/output/fine_tune.json.
"""
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before training imports TensorFlow, as the driver does
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
import midi_io  # noqa: E402
import saved_models  # noqa: E402
from configurator import default_settings, resolve_settings  # noqa: E402
from corpora import make_sample  # noqa: E402  data/make_sample.py, loaded once by the corpora benchmark
from musicstats import COPY_LIMIT_BARS  # noqa: E402
from songs import load_songs  # noqa: E402
from sources import notes_from_labels, open_source  # noqa: E402
from training import evaluate  # noqa: E402

COLLECTION = os.path.join(HERE, "data", "mozart_quartets")
SPLIT_PATH = os.path.join(HERE, "data", "mozart_quartets_split.json")
OUTPUT = os.path.join(HERE, "output")
# (music21 corpus path, MIDI file stem = recording id, quarter notes per minute: the score's mark, else a usual
# tempo for its tempo word); all are Finale exports without a rights statement, Mozart died in 1791
PIECES = [
    ("mozart/k80/movement1.mxl", "k80_1", 60),     # Adagio 3/4
    ("mozart/k80/movement2.mxl", "k80_2", 132),    # Allegro 4/4
    ("mozart/k80/movement3.mxl", "k80_3", 126),    # Menuetto 3/4
    ("mozart/k80/movement4.mxl", "k80_4", 184),    # Rondeau, Allegro 2/2
    ("mozart/k155/movement1.mxl", "k155_1", 132),  # Allegro (movements 2 and 3 are in the sample)
    ("mozart/k156/movement1.mxl", "k156_1", 144),  # Presto 3/8, the score's mark
    ("mozart/k156/movement2.mxl", "k156_2", 40),   # Adagio, the score's mark
    ("mozart/k156/movement3.mxl", "k156_3", 72),   # Tempo di Menuetto, the score's mark
    ("mozart/k156/movement4.mxl", "k156_4", 40),   # the first version of the Adagio
    ("mozart/k458/movement2.mxl", "k458_2", 126),  # Menuetto, Moderato 3/4
]
SPLIT = {"train": ["k155_1", "k156_2", "k156_4", "k458_2", "k80_1", "k80_4"],  # 59% of the quarter notes
         "valid": ["k156_3", "k80_3"],                                          # 15%
         "test": ["k156_1", "k80_2"]}                                           # 26%
SIDES = ("fine-tuned", "from scratch")
DEFAULTS = {"init_from": os.path.join(ROOT, "models", "sample.keras"), "max_minutes": "3"}


# ------------------------------------------------------------------ the collection

def write_piece(corpus_path, stem, bpm, folder):
    """One corpus score → folder/stem.mid at bpm, as the string quartet of the sample (violins 41, viola 42,
    cello 43) → the number of notes written."""
    from music21 import corpus
    labels = make_sample.score_to_labels(corpus.parse(corpus_path), bpm, make_sample.QUARTET)  # no rubato: on the beat
    return midi_io.notes_to_midi(notes_from_labels(labels), os.path.join(folder, f"{stem}.mid"), bpm=bpm)


def build_collection(folder=COLLECTION, split_path=SPLIT_PATH):
    """Write the MIDI folder and the split file (skipped when both are there) → whether they were built."""
    if os.path.isdir(folder) and os.path.exists(split_path) and \
            sorted(os.listdir(folder)) == sorted(f"{stem}.mid" for _, stem, _ in PIECES):
        print(f"using {os.path.relpath(folder, ROOT)} and {os.path.relpath(split_path, ROOT)}")
        return False
    try:
        import music21  # noqa: F401
    except ImportError:
        sys.exit("error: music21 is needed to build the collection once — pip install -r requirements-dev.txt")
    os.makedirs(folder, exist_ok=True)
    notes = sum(write_piece(path, stem, bpm, folder) for path, stem, bpm in PIECES)
    with open(split_path, "w") as file:
        json.dump(SPLIT, file, indent=1)
    print(f"wrote {len(PIECES)} MIDI files ({notes} notes) under {os.path.relpath(folder, ROOT)} "
          f"and {os.path.relpath(split_path, ROOT)}")
    return True


# ------------------------------------------------------------------ the two runs

def command(side, init_from, extra):
    """The driver's command line for one side, paths relative to the repository (its working folder): the
    collection, its split, an output folder of its own → (arguments, the output folder)."""
    out = os.path.join(OUTPUT, "fine_tune-" + side.replace(" ", "_").replace("-", "_"))
    start = [f"--init_from={os.path.relpath(init_from, ROOT)}"] if side == "fine-tuned" else []
    return [sys.executable, "classically_deep.py", f"--data_path={os.path.relpath(COLLECTION, ROOT)}",
            f"--split_path={os.path.relpath(SPLIT_PATH, ROOT)}", f"--output_dir={os.path.relpath(out, ROOT)}", *start,
            *extra], out


def train(side, init_from, extra):
    """Run one side as a subprocess → what the table needs from its metrics.json, its command and its load."""
    args, out = command(side, init_from, extra)
    load = os.getloadavg()[0]
    print(f"$ python {' '.join(args[1:])}", flush=True)
    started = time.monotonic()
    subprocess.run(args, check=True, cwd=ROOT)
    with open(os.path.join(out, "metrics.json")) as file:
        metrics = json.load(file)
    return {"command": args[1:], "load_average": load, "wall_minutes": (time.monotonic() - started) / 60,
            **{key: metrics[key] for key in ("valid_frame_nll", "test_frame_nll", "valid_frame_nll_baseline",
                                             "test_frame_nll_baseline", "epochs", "train_minutes")},
            "statistics": metrics["statistics"]}


def as_it_is(init_from, extra):
    """The trained model before any fine-tuning: its frame NLL on the collection's held-out songs."""
    settings = resolve_settings([f"--data_path={COLLECTION}", f"--split_path={SPLIT_PATH}",
                                 f"--cache_dir={os.path.join(ROOT, 'data', 'cache')}", *extra], default_settings())
    parts, _, _ = load_songs(open_source(COLLECTION), settings)
    return evaluate(saved_models.load_model(saved_models.read_model_file(init_from, "init_from")), parts)


# ------------------------------------------------------------------ the table

def mean(values):
    return sum(values) / len(values)


def statistic_rows(results):
    """One row per music statistic: each side's mean over its pieces, the trained model's column left empty (it
    composes nothing here), then the held-out songs' mean [min, max]."""
    reference = results[SIDES[1]]["statistics"]["reference"]
    rows = []
    for name, span in reference.items():
        means = [mean([stats[name] for stats in results[side]["statistics"]["pieces"].values()]) for side in SIDES]
        flagged = f" (flagged from {COPY_LIMIT_BARS:g})" if name == "longest_copy_bars" else ""
        rows.append(f"| {name.replace('_', ' ')}, mean of the pieces | " + " | ".join(f"{value:.3g}" for value in means)
                    + f" | | {span['mean']:.3g} [{span['min']:.3g}, {span['max']:.3g}]{flagged} |")
    flags = [sum(map(len, results[side]["statistics"]["flags"].values())) for side in SIDES]
    rows.append("| figures outside the held-out range (flags) | " + " | ".join(map(str, flags)) + " | | 0 |")
    return rows


def table(results, start):
    """{side: train()} and the trained model's as_it_is() → the markdown table: NLL, its ratio to the baseline side,
    epochs, minutes, statistics."""
    fine, scratch = (results[side] for side in SIDES)
    rows = ["| | fine-tuned | from scratch (baseline) | the trained model as it is | held-out songs |",
            "|---|---|---|---|---|",
            f"| test frame NLL (nats) | **{fine['test_frame_nll']:.3f}** | {scratch['test_frame_nll']:.3f} "
            f"| {start['test_frame_nll']:.3f} | independent-Bernoulli baseline {scratch['test_frame_nll_baseline']:.3f} |",
            f"| test NLL vs from scratch | {fine['test_frame_nll'] / scratch['test_frame_nll']:.2f}x | 1.00x "
            f"| {start['test_frame_nll'] / scratch['test_frame_nll']:.2f}x | |",
            f"| valid frame NLL (nats) | {fine['valid_frame_nll']:.3f} | {scratch['valid_frame_nll']:.3f} "
            f"| {start['valid_frame_nll']:.3f} | independent-Bernoulli baseline {scratch['valid_frame_nll_baseline']:.3f} |"]
    rows += [f"| {label} | " + " | ".join(form.format(results[side][key]) for side in SIDES) + f" | {blank} | |"
             for label, key, form, blank in (("epochs run", "epochs", "{}", 0),
                                                 ("training minutes", "train_minutes", "{:.1f}", 0),
                                                 ("load average at the start (2 cores)", "load_average", "{:.1f}", ""),
                                                 ("wall minutes, start-up to report", "wall_minutes", "{:.1f}", ""))]
    return "\n".join(rows + statistic_rows(results))


def main(argv):
    options, extra = dict(DEFAULTS), []
    for arg in argv:
        name, _, value = arg[2:].partition("=")
        if name in options:
            options[name] = value
        else:
            extra.append(arg)
    build_collection()
    extra = [f"--max_minutes={options['max_minutes']}", *extra]
    results = {side: train(side, options["init_from"], extra) for side in SIDES}
    start = as_it_is(options["init_from"], extra)
    counts = {part: len(ids) for part, ids in SPLIT.items()}
    print(f"\n{len(PIECES)} Mozart quartet movements ({counts['train']} train, {counts['valid']} valid, "
          f"{counts['test']} test, split by piece); --max_minutes={options['max_minutes']} a side, fine-tuned from "
          f"{os.path.relpath(options['init_from'], ROOT)}; {os.cpu_count()} cores shared with other work, so the "
          "epochs each side fits vary with the load\n")
    print(table(results, start))
    os.makedirs(OUTPUT, exist_ok=True)
    path = os.path.join(OUTPUT, "fine_tune.json")
    with open(path, "w") as file:
        json.dump({"init_from": options["init_from"], "max_minutes": float(options["max_minutes"]), "split": SPLIT,
                   "cores": os.cpu_count(), "results": results,
                   "as_it_is": start}, file, indent=1)
    print(f"\nwrote {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])

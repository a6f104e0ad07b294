"""Bach-chorale benchmark: test frame NLL of each note head beside the published figures.

    python benchmarks/chorales.py                  # build the data once, train both heads, print the table
    python benchmarks/chorales.py --heads=nade     # one head only; any other --name=value goes to the driver

Builds a JSB-style chorale set from music21's Bach chorales (every four-part
bwv*.mxl, numbered in file-name order): one frame per quarter note, 88 keys, a
fixed 60 / 20 / 20 train / valid / test split by chorale. As in JSB Chorales
(Boulanger-Lewandowski et al. 2012), a frame holds the pitches sounding at
its quarter-note instant: passing notes between beats are dropped when the
archive is built, so the driver's keep-short-notes rule has nothing to add. The chorales are
written as a MusicNet-format archive at 60 quarter notes per minute, so
`--time_base=seconds --steps_per_second=1` gives quarter-note frames, and each
head trains through the normal command line with default settings.
"""
import json
import os
import re
import subprocess
import sys
import time
from multiprocessing import Pool

import numpy as np
from intervaltree import Interval, IntervalTree

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, os.path.join(ROOT, "data")]
from make_sample import QUARTET, score_to_labels, write_musicnet_archive  # noqa: E402
from rolls import SAMPLE_RATE  # noqa: E402

DATA_DIR = os.path.join(HERE, "data")
ARCHIVE = os.path.join(DATA_DIR, "chorales.npz")
SPLIT = os.path.join(DATA_DIR, "chorales_split.json")
BPM = 60  # one quarter note per second: --steps_per_second=1 is one frame per quarter
SPLIT_SEED = 2012
PUBLISHED = [  # JSB Chorales, test frame NLL in nats (their data set, not this one: a guide, not a tie)
    ("GRU (Chung et al. 2014)", 8.54),
    ("TCN (Bai et al. 2018)", 8.10),
    ("RNN-NADE (Boulanger-Lewandowski et al. 2012)", 5.56),
]


def chorale_files():
    """music21's Bach chorale files (bwv*.mxl, alternative versions left out), sorted by name."""
    from music21 import corpus
    return sorted(path.name for path in corpus.getComposer("bach") if re.fullmatch(r"bwv[\d.]+(-\d)?\.mxl", path.name))


def chorale_labels(name):
    """Corpus file name → IntervalTree at BPM, or None if it is not a four-part chorale."""
    from music21 import corpus
    try:
        score = corpus.parse(f"bach/{name}")
    except Exception:  # music21 raises many kinds of errors; such a file is skipped
        return None
    return sample_at_quarters(score_to_labels(score, BPM, QUARTET)) if len(score.parts) == 4 else None


def sample_at_quarters(tree):
    """Keep what sounds at each quarter-note instant, as JSB Chorales does: notes trimmed to whole
    quarters, passing notes that span no quarter instant dropped."""
    quarter = 60 * SAMPLE_RATE // BPM
    kept = IntervalTree()
    for start, end, data in tree:
        first, stop = -(-start // quarter), -(-end // quarter)  # quarters k with k * quarter in [start, end)
        if stop > first:
            kept.add(Interval(first * quarter, stop * quarter, data))
    return kept


def build_chorales():
    """Write the chorale archive and its split file (once); print the counts."""
    os.makedirs(DATA_DIR, exist_ok=True)
    with Pool() as pool:
        found = [tree for tree in pool.map(chorale_labels, chorale_files()) if tree is not None]
    trees = {f"{number:04d}": tree for number, tree in enumerate(found, start=1)}
    write_musicnet_archive(ARCHIVE, trees)
    ids = list(np.random.default_rng(SPLIT_SEED).permutation(sorted(trees)))
    cut1, cut2 = round(0.6 * len(ids)), round(0.8 * len(ids))
    split = {"train": sorted(ids[:cut1]), "valid": sorted(ids[cut1:cut2]), "test": sorted(ids[cut2:])}
    with open(SPLIT, "w") as file:
        json.dump(split, file, indent=1)
    print(f"wrote {ARCHIVE}: {len(trees)} chorales ({len(split['train'])} train, "
          f"{len(split['valid'])} valid, {len(split['test'])} test) and {SPLIT}")


def train_head(head, extra_args):
    """Train one head through the driver's command line → (metrics dict, wall seconds)."""
    output_dir = os.path.join(HERE, "output", f"chorales-{head}")
    command = [sys.executable, os.path.join(ROOT, "classically_deep.py"), f"--data_path={ARCHIVE}",
               f"--split_path={SPLIT}", "--time_base=seconds", "--steps_per_second=1", f"--head={head}",
               f"--output_dir={output_dir}", *extra_args]
    print("$ " + " ".join(command[1:]), flush=True)
    started = time.monotonic()
    subprocess.run(command, check=True, cwd=ROOT)
    with open(os.path.join(output_dir, "metrics.json")) as file:
        return json.load(file), time.monotonic() - started


def main(argv):
    heads = ["sigmoid", "nade"]
    extra = []
    for arg in argv:
        if arg.startswith("--heads="):
            heads = arg.split("=", 1)[1].split(",")
        else:
            extra.append(arg)
    if not (os.path.exists(ARCHIVE) and os.path.exists(SPLIT)):
        build_chorales()
    results = {head: train_head(head, extra) for head in heads}
    baseline = next(iter(results.values()))[0]["test_frame_nll_baseline"]
    rows = [("independent Bernoulli (key frequencies)", baseline, "")]
    rows += [(f"this project, head={head}", metrics["test_frame_nll"],
              f"{seconds / 60:.1f} min, {metrics['epochs']} epochs") for head, (metrics, seconds) in results.items()]
    rows += [(f"published: {name}", figure, "JSB Chorales") for name, figure in PUBLISHED]
    print("\n| model | test frame NLL (nats) | vs baseline | wall time |\n|---|---|---|---|")
    for name, figure, note in rows:
        print(f"| {name} | {figure:.2f} | {figure / baseline:.2f}x | {note} |")


if __name__ == "__main__":
    main(sys.argv[1:])

"""Likelihood benchmarks on two corpora: frame NLL of the default model beside the published JSB Chorales figures.

    python benchmarks/corpora.py                         # build what is missing, train on both corpora, print one table
    python benchmarks/corpora.py --corpus=quartets       # one corpus only
    python benchmarks/corpora.py --max_minutes=30        # any other --name=value goes to the driver

Each corpus is built once from music21's offline corpus as a MusicNet-format
archive with a fixed split file under benchmarks/data/, then trained through
the normal command line with default settings: only the data, split, frame
rate and output folder are given.

chorales: every four-part Bach chorale (bwv*.mxl, numbered in file-name order),
one frame per quarter note as in JSB Chorales (Boulanger-Lewandowski et al.
2012): a frame holds the pitches sounding at its quarter-note instant, passing
notes between beats dropped when the archive is built. Written at 60 quarter
notes per minute, so `--time_base=seconds --steps_per_second=1` gives
quarter-note frames; a fixed 60 / 20 / 20 split by chorale.

quartets: the string quartets of Haydn, Mozart, Beethoven and Robert Schumann,
every note as written, on the driver's beat grid at four frames per quarter
(`--time_base=beats --steps_per_beat=4`, a sixteenth-note grid). Labels carry
each note's onset and length in quarter notes (the CSV release's
start_beat / beats form), so the grid follows the score exactly through
changes of metre and tempo, which the scores' missing metronome marks would
make guesswork on a seconds grid; the sample times are at 60 quarter notes per
minute, so `--time_base=seconds --steps_per_second=4` gives the same frames.
A fixed seeded split by work, about 70 / 15 / 15 of the music's length: all
movements of a quartet land in the same part.
"""
import importlib.util
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
sys.path.insert(0, ROOT)
from rolls import SAMPLE_RATE  # noqa: E402

_SPEC = importlib.util.spec_from_file_location("make_sample", os.path.join(ROOT, "data", "make_sample.py"))
make_sample = sys.modules["make_sample"] = importlib.util.module_from_spec(_SPEC)  # data/make_sample.py: no package
_SPEC.loader.exec_module(make_sample)

DATA_DIR = os.path.join(HERE, "data")
BPM = 60  # one quarter note per second in both archives
CHORALE_SPLIT_SEED = 2012
QUARTET_SPLIT_SEED = 2024
QUARTET_SHARES = (("test", 0.15), ("valid", 0.15))  # shares of the total length, tried in this order; the rest is train
MOVEMENTS = "movement{}.mxl"
QUARTET_WORKS = [  # (work id, music21 corpus files); whole-quartet files hold every movement in one score
    ("haydn_op1no1", [f"haydn/opus1no1/{MOVEMENTS.format(n)}" for n in range(1, 6)]),
    ("haydn_op74no1", [f"haydn/opus74no1/{MOVEMENTS.format(n)}" for n in range(1, 5)]),
    ("mozart_k80", [f"mozart/k80/{MOVEMENTS.format(n)}" for n in range(1, 5)]),
    ("mozart_k155", [f"mozart/k155/{MOVEMENTS.format(n)}" for n in range(1, 4)]),
    ("mozart_k156", [f"mozart/k156/{MOVEMENTS.format(n)}" for n in range(1, 5)]),
    ("mozart_k458", [f"mozart/k458/{MOVEMENTS.format(n)}" for n in range(1, 5)]),
    ("beethoven_op18no1", [f"beethoven/opus18no1/{MOVEMENTS.format(n)}" for n in range(1, 5)]),
    ("beethoven_op18no3", ["beethoven/opus18no3.mxl"]),  # whole quartet
    ("beethoven_op18no4", ["beethoven/opus18no4.mxl"]),  # whole quartet
    ("beethoven_op18no5", ["beethoven/opus18no5.mxl"]),  # whole quartet
    ("beethoven_op59no1", [f"beethoven/opus59no1/{MOVEMENTS.format(n)}" for n in range(1, 5)]),
    ("beethoven_op59no2", [f"beethoven/opus59no2/{MOVEMENTS.format(n)}" for n in range(1, 5)]),
    ("beethoven_op59no3", [f"beethoven/opus59no3/{MOVEMENTS.format(n)}" for n in range(1, 5)]),
    ("beethoven_op74", ["beethoven/opus74.mxl"]),  # whole quartet
    ("beethoven_op132", ["beethoven/opus132.mxl"]),  # whole quartet
    ("beethoven_op133", ["beethoven/opus133.mxl"]),  # Grosse Fuge, one movement
    ("schumann_op41no1", [f"schumann_robert/opus41no1/{MOVEMENTS.format(n)}" for n in range(1, 6)]),
]
PUBLISHED = [  # JSB Chorales, test frame NLL in nats (their data set, not ours: a guide, not a tie)
    ("RNN-NADE, SGD training (Boulanger-Lewandowski et al. 2012)", "5.56", "exact"),
    ("RNN-NADE, Hessian-free training (Boulanger-Lewandowski et al. 2012)", "5.19", "exact"),
    ("DMM-Aug-NADE (Krishnan et al. 2017)", "5.12", "importance-sampled estimate"),
    ("SRNN (Fraccaro et al. 2016)", "≤ 4.74", "variational bound"),
    ("TCN (Bai et al. 2018)", "8.10", "exact, independent keys"),
    ("GRU (Chung et al. 2014)", "8.54", "exact, independent keys"),
]


# ------------------------------------------------------------------ chorales

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
    return sample_at_quarters(make_sample.score_to_labels(score, BPM, make_sample.QUARTET)) if len(score.parts) == 4 else None


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


def build_chorales(archive, split_path):
    """Write the chorale archive and its split file; print the counts."""
    with Pool() as pool:
        found = [tree for tree in pool.map(chorale_labels, chorale_files()) if tree is not None]
    trees = {f"{number:04d}": tree for number, tree in enumerate(found, start=1)}
    make_sample.write_musicnet_archive(archive, trees)
    ids = list(np.random.default_rng(CHORALE_SPLIT_SEED).permutation(sorted(trees)))
    cut1, cut2 = round(0.6 * len(ids)), round(0.8 * len(ids))
    split = {"train": sorted(ids[:cut1]), "valid": sorted(ids[cut1:cut2]), "test": sorted(ids[cut2:])}
    with open(split_path, "w") as file:
        json.dump(split, file, indent=1)
    print(f"wrote {archive}: {len(trees)} chorales ({len(split['train'])} train, "
          f"{len(split['valid'])} valid, {len(split['test'])} test) and {split_path}")


# ------------------------------------------------------------------ string quartets

def score_to_beat_labels(score, programs, bpm=BPM, sample_rate=SAMPLE_RATE):
    """music21 Score → IntervalTree of Interval(start, end, (instrument, note, start_beat, beats, note_value)):
    onsets and lengths in quarter notes from the score's start (ties merged, grace notes left out), sample
    times at a steady bpm."""
    if len(score.parts) != len(programs):
        raise ValueError(f"score has {len(score.parts)} parts but {len(programs)} programs were given")
    samples_per_quarter = 60 * sample_rate / bpm
    tree = IntervalTree()
    for part, program in zip(score.parts, programs):
        for n in part.stripTies().flatten().notes:
            onset, length = float(n.offset), float(n.duration.quarterLength)
            if n.duration.isGrace or length == 0:
                continue
            start = round(onset * samples_per_quarter)
            end = max(round((onset + length) * samples_per_quarter), start + 1)
            for pitch in n.pitches:
                tree.add(Interval(start, end, (int(program), int(pitch.midi), onset, length, make_sample.note_value_name(length))))
    return tree


def quartet_labels(path):
    """Corpus path → (path, IntervalTree in beat form, length in quarter notes), or (path, None, reason)."""
    from music21 import corpus
    try:
        score = corpus.parse(path)
        tree = score_to_beat_labels(score, make_sample.QUARTET)
    except Exception as err:  # music21 raises many kinds of errors on files it cannot read
        return path, None, str(err)
    return path, tree, tree.end() / (60 * SAMPLE_RATE / BPM)


def recording_id(work, path, files):
    """Archive member name: the work, then the movement number for files that hold one movement."""
    match = re.search(r"movement(\d+)\.mxl$", path)
    return f"{work}_{match.group(1)}" if match and len(files) > 1 else work


def split_by_work(lengths, seed=QUARTET_SPLIT_SEED, shares=QUARTET_SHARES):
    """{work: {id: length}} → {"train", "valid", "test": sorted ids}. Works in a seeded order each join the first
    held-out part that they bring nearer its share of the total length (its length so far plus half the work's
    stays within the share), else train: every movement of a work lands in the same part."""
    order = [str(work) for work in np.random.default_rng(seed).permutation(sorted(lengths))]
    total = sum(sum(ids.values()) for ids in lengths.values())
    split, filled = {"train": [], "valid": [], "test": []}, {part: 0.0 for part, _ in shares}
    for work in order:
        length = sum(lengths[work].values())
        part = next((part for part, share in shares if filled[part] + length / 2 <= share * total), "train")
        filled[part] = filled.get(part, 0.0) + length
        split[part] += lengths[work]
    return {name: sorted(ids) for name, ids in split.items()}


def build_quartets(archive, split_path):
    """Write the string-quartet archive and its split file; print the counts."""
    jobs = [(work, path, files) for work, files in QUARTET_WORKS for path in files]
    from music21 import corpus
    size = {path: os.path.getsize(corpus.getWork(path)) for _, path, _ in jobs}
    with Pool() as pool:  # largest files first, so no long parse starts last
        done = {path: (tree, length) for path, tree, length in
                pool.imap_unordered(quartet_labels, sorted(size, key=size.get, reverse=True))}
    trees, lengths = {}, {}
    for work, path, files in jobs:
        tree, length = done[path]
        if tree is None:
            print(f"skipped {path}: {length}")
            continue
        trees[recording_id(work, path, files)] = tree
        lengths.setdefault(work, {})[recording_id(work, path, files)] = length
    make_sample.write_musicnet_archive(archive, trees)
    split = split_by_work(lengths)
    with open(split_path, "w") as file:
        json.dump(split, file, indent=1)
    quarters = {part: sum(length for ids in lengths.values() for i, length in ids.items() if i in split[part])
                for part in split}
    print(f"wrote {archive}: {len(lengths)} works, {len(trees)} scores, "
          f"{sum(len(tree) for tree in trees.values())} notes, {sum(quarters.values()):.0f} quarter notes; "
          + ", ".join(f"{part} {len(split[part])} scores ({quarters[part] / sum(quarters.values()):.0%})"
                      for part in split) + f"; and {split_path}")


# ------------------------------------------------------------------ training and the table

CORPORA = {  # name → (builder, frame-rate flags for the driver)
    "chorales": (build_chorales, ["--time_base=seconds", "--steps_per_second=1"]),
    "quartets": (build_quartets, ["--time_base=beats", "--steps_per_beat=4"]),
}


def data_paths(name):
    """Corpus name → (archive path, split path) under benchmarks/data/."""
    return os.path.join(DATA_DIR, f"{name}.npz"), os.path.join(DATA_DIR, f"{name}_split.json")


def corpus_parts(name, args=()):
    """A built corpus and more driver arguments → its songs by part ({"train", "valid", "test": songs}), on the
    corpus's grid and split, read as the driver reads them (imports the driver's data modules on first use)."""
    import songs
    import sources
    from configurator import default_settings, resolve_settings
    archive, split = data_paths(name)
    settings = resolve_settings([*CORPORA[name][1], f"--split_path={split}", *args], default_settings())
    return songs.load_songs(sources.open_source(archive), settings, save=False)[0]


def train_corpus(name, extra_args, output_dir=None):
    """Train the default model on one corpus through the driver's command line (into output_dir, else an
    --output_dir of extra_args, else benchmarks/output/corpora-NAME) → (metrics dict, wall seconds)."""
    archive, split = data_paths(name)
    given = [arg.partition("=")[2] for arg in extra_args if arg.startswith("--output_dir=")]
    output_dir = output_dir or (given[-1] if given else os.path.join(HERE, "output", f"corpora-{name}"))
    command = [sys.executable, os.path.join(ROOT, "classically_deep.py"), f"--data_path={archive}",
               f"--split_path={split}", *CORPORA[name][1], f"--output_dir={output_dir}", *extra_args]
    print("$ " + " ".join(command[1:]), flush=True)
    started = time.monotonic()
    subprocess.run(command, check=True, cwd=ROOT)
    with open(os.path.join(output_dir, "metrics.json")) as file:
        return json.load(file), time.monotonic() - started


def table(results):
    """{corpus: (metrics, wall seconds)} → the markdown table, one row per model and corpus. The frame NLL is the
    sounding keys' (comparable with the published figures); the onsets' NLL, where the model has onsets, is beside it."""
    lines = ["| corpus | model | kind | valid frame NLL (nats) | test frame NLL (nats) | test vs baseline "
             "| test onset NLL (nats) | epochs | training | wall time |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, (metrics, seconds) in results.items():
        baseline = metrics["test_frame_nll_baseline"]
        onsets = f"{metrics['test_onset_nll']:.3f}" if "test_onset_nll" in metrics else "(no onsets)"
        lines.append(f"| {name} | independent Bernoulli (key frequencies) | exact, independent keys "
                     f"| {metrics['valid_frame_nll_baseline']:.2f} | {baseline:.2f} | 1.00x |  |  |  |  |")
        lines.append(f"| {name} | this project, defaults | exact | {metrics['valid_frame_nll']:.2f} "
                     f"| {metrics['test_frame_nll']:.2f} | {metrics['test_frame_nll'] / baseline:.2f}x | {onsets} "
                     f"| {metrics['epochs']} | {metrics['train_minutes']:.1f} min | {seconds / 60:.1f} min |")
    for model, figure, kind in PUBLISHED:
        lines.append(f"| JSB Chorales (published) | {model} | {kind} |  | {figure} |  |  |  |  |  |")
    return "\n".join(lines)


def main(argv):
    names, extra = list(CORPORA), []
    for arg in argv:
        if arg.startswith("--corpus="):
            names = [name for name in arg.split("=", 1)[1].split(",") if name]
        else:
            extra.append(arg)
    unknown = [name for name in names if name not in CORPORA]
    if unknown or not names:
        sys.exit(f"error: --corpus takes a comma-separated list of {', '.join(CORPORA)}, not {unknown or 'nothing'}")
    for name in names:
        build_corpus(name)
    results = {name: train_corpus(name, extra) for name in names}
    print("\n" + table(results))


def build_corpus(name):
    """Build the corpus archive and split file under benchmarks/data/ unless both are there."""
    os.makedirs(DATA_DIR, exist_ok=True)
    archive, split = data_paths(name)
    if os.path.exists(archive) and os.path.exists(split):
        print(f"using {archive} and {split}")
    else:
        started = time.monotonic()
        CORPORA[name][0](archive, split)
        print(f"built {name} in {(time.monotonic() - started) / 60:.1f} min: wrote {archive} and {split}")


if __name__ == "__main__":
    main(sys.argv[1:])

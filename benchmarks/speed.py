"""Speed at MusicNet scale: preprocessing a full-size archive, training steps per backend, generation.

    python benchmarks/speed.py                                  # everything: one table
    python benchmarks/speed.py --skip_archive                   # only training and generation
    python benchmarks/speed.py --skip_training --backends=      # only preprocessing
    python benchmarks/speed.py --backends=tensorflow,jax --steps=50

Builds (once) a seeded synthetic archive in MusicNet's exact format under
benchmarks/data/: 330 recordings, over a million labels, several ensembles,
tempi and lengths, float32 audio at 44.1 kHz, over 2 GB; each member a pickled
(audio, IntervalTree) object array written by np.savez, as MusicNet's is. Then,
each in its own process: a plain `np.load(allow_pickle=True)` of every member
(the baseline, our own file only), preprocessing through the command line
(`--epochs=0 --save_mode=True`, peak memory from the child's rusage), loading
the finished cache, and the cache-hit command line. Training: a step of
`training.build_model` on realistic batches per installed Keras backend, beside
the model as it was before issue 9 (commit e982137) on TensorFlow; a step of the
driver's own loop (`model.fit` over training.WindowDataset, data feeding
included) per backend, for one network and for a mixture of six (members=6); and
the time to compose 60 s of music at 20 frames per second. Progress on stderr, the table on stdout.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

ARCHIVE = os.path.join(HERE, "data", "musicnet_synthetic.npz")
SEED = 9
SAMPLE_RATE = 44100
RECORDINGS = 330
STANDARD_TEST_IDS = [1759, 1819, 2106, 2191, 2298, 2303, 2382, 2416, 2556, 2628]
AUDIO_BYTES = 2.3e9  # float32 audio over the whole archive, shared out by recording length
# ensembles as MusicNet's (1-based programs): (programs of the voices, lowest and highest note of each)
ENSEMBLES = [((1, 1, 1), ((55, 96), (43, 79), (24, 60))),                       # solo piano: three voices
             ((41, 41, 42, 43), ((55, 100), (55, 88), (48, 81), (36, 72))),       # string quartet
             ((1, 41, 43), ((36, 96), (55, 100), (36, 72))),                      # piano trio
             ((74, 69, 72, 61, 71), ((60, 96), (58, 91), (50, 91), (41, 77), (34, 72))),  # wind quintet
             ((43,), ((36, 76),)),                                                # solo cello
             ((7, 41), ((41, 89), (55, 100)))]                                    # harpsichord and violin
VALUES = [(0.25, "Sixteenth"), (0.5, "Eighth"), (0.75, "Dotted Eighth"), (1.0, "Quarter"),
          (1.5, "Dotted Quarter"), (2.0, "Half"), (3.0, "Dotted Half"), (4.0, "Whole")]
VALUE_ODDS = [0.25, 0.35, 0.05, 0.22, 0.05, 0.06, 0.01, 0.01]


def log(message):
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ the synthetic archive

class _TreePickle:
    """Pickles exactly as intervaltree.IntervalTree(intervals) does — (IntervalTree, (sorted intervals,)) —
    without building the tree, which would take most of the archive's build time."""

    def __init__(self, intervals):
        self.intervals = sorted(intervals)

    def __reduce__(self):
        from intervaltree import IntervalTree
        return IntervalTree, (self.intervals,)


def recording_labels(rng, seconds):
    """One seeded synthetic recording of about `seconds` → list of intervaltree.Interval in MusicNet's form:
    (begin, end, (instrument, note, measure, beat as a fraction of the bar, note value name))."""
    from intervaltree import Interval
    programs, ranges = ENSEMBLES[rng.integers(len(ENSEMBLES))]
    bpm, per_bar = rng.uniform(50, 170), int(rng.choice([2, 3, 4, 4, 6]))
    drift, period, phase = rng.uniform(0, 0.15), rng.uniform(16, 128), rng.uniform(0, 2 * np.pi)

    def samples(beats):  # a smoothly drifting tempo (rubato): always moving forward
        omega = 2 * np.pi / period
        return np.round((beats + drift / omega * (np.cos(phase) - np.cos(omega * beats + phase)))
                        * 60 / bpm * SAMPLE_RATE).astype(np.int64)

    total_beats = seconds * bpm / 60
    labels = []
    for program, (low, high) in zip(programs, ranges):
        count = int(total_beats / 0.8) + 8
        which = rng.choice(len(VALUES), size=count, p=VALUE_ODDS)
        quarters = np.array([VALUES[k][0] for k in which])
        onsets = np.concatenate([[0.0], np.cumsum(quarters)[:-1]])
        keep = onsets < total_beats
        which, quarters, onsets = which[keep], quarters[keep], onsets[keep]
        pitch = np.clip(np.cumsum(rng.integers(-4, 5, len(onsets))) % (high - low) + low, low, high)
        chord = (program in (1, 7)) & (rng.random(len(onsets)) < 0.35)  # keyboards add a third below
        begins, ends = samples(onsets), samples(onsets + quarters * rng.uniform(0.8, 0.98, len(onsets)))
        bars, within = np.divmod(onsets, per_bar)
        for extra in (0, -4):
            rows = np.flatnonzero(chord) if extra else np.arange(len(onsets))
            labels += [Interval(begin, end, (program, note, measure, beat, VALUES[k][1]))
                       for begin, end, note, measure, beat, k in zip(
                           begins[rows].tolist(), ends[rows].tolist(), (pitch[rows] + extra).tolist(),
                           bars[rows].astype(int).tolist(), (within[rows] / per_bar).tolist(), which[rows].tolist())]
    return labels


def build_archive(path):
    """Write the seeded synthetic archive (np.savez of (audio, IntervalTree) object arrays) → (labels, bytes)."""
    rng = np.random.default_rng(SEED)
    ids = set(STANDARD_TEST_IDS)
    while len(ids) < RECORDINGS:
        ids.add(int(rng.integers(1727, 2679)))
    seconds = np.clip(rng.lognormal(np.log(360), 0.55, RECORDINGS), 40, 1500)
    audio_samples = (seconds / seconds.sum() * AUDIO_BYTES / 4).astype(np.int64)
    noise = (rng.standard_normal(int(audio_samples.max()), np.float32) * 0.1)  # one buffer, each audio a view of it
    members, labels = {}, 0
    for number, (song_id, length, samples) in enumerate(zip(sorted(ids), seconds, audio_samples)):
        entry = np.empty(2, dtype=object)
        intervals = recording_labels(rng, length)
        entry[0], entry[1] = noise[:samples], _TreePickle(intervals)
        members[str(song_id)] = entry
        labels += len(intervals)
        if number % 50 == 0:
            log(f"  labels for recording {number + 1}/{RECORDINGS}")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    log(f"  writing {path}")
    with open(tmp, "wb") as file:  # a file object, so numpy does not append '.npz' to the temp name
        np.savez(file, **members)
    os.replace(tmp, path)
    return labels, os.path.getsize(path)


def ensure_archive(path):
    """Build the synthetic archive unless it is already there."""
    if os.path.exists(path):
        return
    log(f"building the synthetic archive (seed {SEED}) ...")
    started = time.perf_counter()
    labels, size = build_archive(path)
    log(f"  {RECORDINGS} recordings, {labels} labels, {size / 1e9:.2f} GB in {time.perf_counter() - started:.0f} s")


# ------------------------------------------------------------------ measuring a process

def _tree_pss_mb(pid):
    """Proportional set size of a process and all its descendants, MB (shared pages split between them)."""
    parents = {}
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as file:
                parents[int(entry)] = int(file.read().rsplit(")", 1)[1].split()[1])
        except (ValueError, OSError, IndexError):
            continue
    tree, total = {pid}, 0.0
    for _ in range(4):  # children, grandchildren, ...
        tree |= {child for child, parent in parents.items() if parent in tree}
    for member in tree:
        try:
            with open(f"/proc/{member}/smaps_rollup") as file:
                total += sum(int(line.split()[1]) for line in file if line.startswith("Pss:")) / 1024
        except (OSError, ValueError):
            continue
    return total


def run_measured(command, env=None):
    """Run a command → (wall seconds, stdout, its largest process's peak RSS in MB (wait4), its whole process
    tree's peak PSS in MB (sampled every 0.1 s), CPU seconds of it and its children); stderr passes through;
    a failure stops the benchmark."""
    import threading
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, cwd=ROOT, env=env, text=True)
    peak, done = [0.0], threading.Event()

    def sample():
        while not done.wait(0.1):
            peak[0] = max(peak[0], _tree_pss_mb(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(command)}")
    return wall, out, usage.ru_maxrss / 1024, peak[0], usage.ru_utime + usage.ru_stime


# ------------------------------------------------------------------ preprocessing

PLAIN_LOAD = ("import sys, numpy as np\n"
              "with np.load(sys.argv[1], allow_pickle=True) as archive:  # our own synthetic file only\n"
              "    print(sum(len(archive[name][1]) for name in archive.files))")


def preprocessing_rows(rounds):
    """Plain np.load against the command line's preprocessing (alternating, median of rounds), the cache → rows."""
    import statistics
    from songs import load_rolls
    ensure_archive(ARCHIVE)
    size = os.path.getsize(ARCHIVE)
    plain, cli = [], []
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "classically_deep.py", f"--data_path={ARCHIVE}", "--epochs=0",
                   f"--output_dir={folder}/out", f"--cache_dir={folder}/cache"]
        for round_number in range(rounds):
            log(f"round {round_number + 1}/{rounds}: plain np.load of every member ...")
            plain.append(run_measured([sys.executable, "-c", PLAIN_LOAD, ARCHIVE]))
            log(f"  {plain[-1][0]:.1f} s; preprocessing through the command line ...")
            cli.append(run_measured(command + ["--save_mode=True"]))
            log(f"  {cli[-1][0]:.1f} s")
        cache = os.path.join(folder, "cache", os.listdir(os.path.join(folder, "cache"))[0])
        loads = []
        for _ in range(5):
            started = time.perf_counter()
            loaded = load_rolls(cache)
            loads.append(time.perf_counter() - started)
        hit = run_measured(command)
    labels = int(plain[0][1].split()[-1])
    frames = sum(len(song) for song in loaded["songs"])
    plain_s, cli_s = statistics.median(run[0] for run in plain), statistics.median(run[0] for run in cli)
    said = next(line for line in cli[0][1].splitlines() if line.startswith("read "))
    return [(f"plain `np.load(allow_pickle=True)` of every member (baseline; {RECORDINGS} recordings, "
             f"{labels:,} labels, {size / 1e9:.2f} GB)", plain_s, 1.0,
             f"peak {max(run[2] for run in plain) / 1e3:.2f} GB; CPU {statistics.median(run[4] for run in plain):.1f} s"),
            ("preprocessing through the command line, `--epochs=0 --save_mode=True`", cli_s, cli_s / plain_s,
             f"peak {max(run[2] for run in cli) / 1e3:.2f} GB in its largest process, "
             f"{max(run[3] for run in cli) / 1e3:.2f} GB over all its processes (PSS); "
             f"CPU {statistics.median(run[4] for run in cli):.1f} s over all its processes; {said.split(';')[0]}"),
            ("loading the finished cache, `songs.load_rolls` (median of 5)", statistics.median(loads), None,
             f"{len(loaded['ids'])} recordings, {frames:,} frames"),
            ("the cache-hit command line, `--epochs=0`", hit[0], None, "")]


# ------------------------------------------------------------------ training and generation, one backend a process

def training_child(old_model):
    """In a child process (KERAS_BACKEND set): time training steps and composing → JSON on stdout."""
    import statistics
    import rolls
    import sources
    from configurator import default_settings
    from songs import SAMPLE_PATH
    settings = default_settings()
    songs = [rolls.organize_song(notes, **settings) for _, notes, _ in sources.read_archive(SAMPLE_PATH)]
    if old_model:
        folder = tempfile.mkdtemp()
        for name in ("model.py", "training.py"):
            with open(os.path.join(folder, name), "w") as file:
                file.write(subprocess.run(["git", "show", f"{BEFORE_ISSUE_9}:{name}"], cwd=ROOT, check=True,
                                          capture_output=True, text=True).stdout)
        sys.modules.pop("training", None)
        sys.path.insert(0, folder)
    import keras
    import model
    import training
    keras.utils.set_random_seed(settings["seed"])
    rng = np.random.default_rng(settings["seed"])
    width, batch = settings["seq_len"] + 1, settings["batch_size"]
    long_songs = [song for song in songs if len(song) >= width]

    def window():
        roll = long_songs[rng.integers(len(long_songs))].roll
        start = rng.integers(len(roll) - width + 1)
        return roll[start:start + width]

    weights = np.ones((batch, width - 1), np.float32)
    num_keys = songs[0].roll.shape[1]
    if old_model:  # it reads bare rolls and predicts their next frames
        windows = [np.stack([window() for _ in range(batch)]).astype(np.float32) for _ in range(8)]
        batches = [(frames, frames[:, 1:], weights) for frames in windows]
        net = training.build_model(settings, num_keys=num_keys)
    else:  # the windows training draws: the keys sounding and struck, the meter, the notes heard before
        dataset = training.WindowDataset(long_songs, settings)
        batches = [dataset[index] for index in range(8)]
        max_notes = rolls.most_keys_on([s.roll for s in songs])
        fit_step = fit_step_seconds(training.build_model(settings, num_keys=num_keys, max_notes=max_notes), dataset)
        mixture = training.build_model({**settings, "members": MIXTURE}, num_keys=num_keys, max_notes=max_notes)
        fit_mixture = fit_step_seconds(mixture, dataset)
        net = training.build_model(settings, num_keys=num_keys, max_notes=max_notes)
    times = []
    for step in range(WARMUP + STEPS):
        inputs, targets, weights = batches[step % len(batches)]
        started = time.perf_counter()
        net.train_on_batch(inputs, targets, sample_weight=weights)
        times.append(time.perf_counter() - started)
    step_s = statistics.median(times[WARMUP:])
    result = {"step": step_s, "frames_per_second": batch * (width - 1) / step_s}
    if not old_model:
        result.update(fit_step=fit_step, fit_frames_per_second=batch * (width - 1) / fit_step, fit_mixture=fit_mixture)
    opening = long_songs[0][:settings["primer_frames"]]
    if old_model:  # its Sampler takes a bare roll
        primer, meter = opening.roll[None].astype(np.float32), ()
    else:
        primer = rolls.model_frames(opening, settings["onsets"], settings["meter"])[None]
        meter = (rolls.meter_features(rolls.continue_meter(opening.meter, COMPOSE_FRAMES))[None],)
    try:
        sampler = model.Sampler(net, 1.0, settings["seed"])
        list(sampler.frames(primer, 8, *meter))  # compiles the steps
        started = time.perf_counter()
        list(sampler.frames(primer, COMPOSE_FRAMES, *meter))
        result["compose"] = time.perf_counter() - started
    except Exception as err:  # a backend the sampler does not run on: the table says so
        result["compose_error"] = f"{type(err).__name__}: {str(err).splitlines()[0][:100]}"
    print(json.dumps(result))


def fit_step_seconds(net, dataset):
    """The median time from one step's end to the next's in `net.fit` over the WindowDataset, the loop the driver
    trains in (its data feeding included), after a first epoch that is not timed (it compiles)."""
    import statistics

    import keras
    ends = []
    timer = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: ends.append(time.perf_counter()))
    net.fit(dataset, epochs=1 + -(-STEPS // len(dataset)), shuffle=False, verbose=0, callbacks=[timer])
    return statistics.median(np.diff(ends[len(dataset):]))


def training_rows(backends):
    """Each backend's step and composing time in its own process, beside the model before issue 9 → rows."""
    runs = [("TensorFlow, model before issue 9 (baseline)", "tensorflow", True)]
    runs += [(BACKEND_NAMES[name], name, False) for name in backends]
    results = {}
    for label, backend, old in runs:
        log(f"training steps: {label} ...")
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        command = [sys.executable, __file__, "--child=" + ("old" if old else "new")]
        results[label] = json.loads(run_measured(command, env)[1].splitlines()[-1])
        log(f"  {results[label]['step'] * 1e3:.0f} ms a step")
    base = results[runs[0][0]]
    tensorflow = results.get(BACKEND_NAMES["tensorflow"])
    rows = []
    for label, result in results.items():
        versus = f"; {tensorflow['step'] / result['step']:.2f}x TensorFlow's speed" if tensorflow and "before" not in label else ""
        rows.append((f"training step, {label}", result["step"], result["step"] / base["step"],
                     f"{result['frames_per_second']:,.0f} frames/s, {base['step'] / result['step']:.2f}x the "
                     f"baseline's speed{versus}"))
    for label, result in results.items():
        if "fit_step" in result:
            versus = f"; {tensorflow['fit_step'] / result['fit_step']:.2f}x TensorFlow's speed" if tensorflow else ""
            rows.append((f"training step in the driver's fit loop, {label}", result["fit_step"], None,
                         f"{result['fit_frames_per_second']:,.0f} frames/s{versus}"))
            rows.append((f"the same, a mixture of {MIXTURE} networks (the chorales' 30-minute default), {label}",
                         result["fit_mixture"], result["fit_mixture"] / result["fit_step"],
                         f"{MIXTURE * result['fit_frames_per_second'] * result['fit_step'] / result['fit_mixture']:,.0f}"
                         " network-frames/s; ratio to one network's step"))
    for label, result in results.items():
        name = f"composing 60 s at 20 frames/s ({COMPOSE_FRAMES} frames), {label}"
        if "compose" in result:
            rows.append((name, result["compose"], result["compose"] / base["compose"], f"{60 / result['compose']:.1f}x real time"))
        else:
            rows.append((name, None, None, f"failed: {result['compose_error']}"))
    return rows


# ------------------------------------------------------------------ main

BEFORE_ISSUE_9 = "e982137"  # the commit whose model.py and training.py are the training baseline
BACKEND_NAMES = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}
WARMUP, STEPS = 5, 40  # training steps not timed, then timed (the median is reported)
MIXTURE = 6  # networks in the mixture timed beside one (members: what 30 minutes buy on the chorales)
COMPOSE_FRAMES = 1200  # 60 s at 20 frames per second


def installed_backends():
    """The Keras backends importable here, TensorFlow first."""
    import importlib.util
    return [name for name in BACKEND_NAMES if importlib.util.find_spec(name) is not None]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip_archive", action="store_true", help="leave out preprocessing")
    parser.add_argument("--skip_training", action="store_true", help="leave out training and composing")
    parser.add_argument("--backends", default=",".join(installed_backends()),
                        help="comma-separated Keras backends (default: every one installed)")
    parser.add_argument("--rounds", type=int, default=1, help="preprocessing rounds (median reported)")
    parser.add_argument("--child", choices=["old", "new"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        training_child(args.child == "old")
        return
    load_before = os.getloadavg()[0]
    rows = [] if args.skip_archive else preprocessing_rows(args.rounds)
    if not args.skip_training:
        rows += training_rows([name for name in args.backends.split(",") if name])
    load = os.getloadavg()[0]
    print(f"\n{os.cpu_count()} CPU cores, load average {load_before:.1f} at the start and {load:.1f} at the end "
          f"(other work on the machine)\n\n| measurement | time | ratio to its baseline | detail |\n|---|---|---|---|")
    for label, seconds, ratio, detail in rows:
        shown = "" if seconds is None else f"{seconds * 1e3:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"
        print(f"| {label} | {shown} | {'' if ratio is None else f'{ratio:.2f}x'} | {detail} |")


if __name__ == "__main__":
    main()

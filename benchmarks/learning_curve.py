"""Held-out NLL against the training budget, from one run of the defaults interrupted at each budget and resumed.

    python benchmarks/learning_curve.py                                  # chorales at 5, 10, 20 and 30 minutes
    python benchmarks/learning_curve.py --corpus=quartets --budgets=5,10,30
    python benchmarks/learning_curve.py --budgets=5,30 -- --pitch_profile=False   # after --: more driver settings

Trains the driver's defaults on a corpus of benchmarks/corpora.py (built there
if missing) with `--max_minutes` set to the last budget, into
benchmarks/output/curve-CORPUS. With the defaults the learning rate halves on
validation plateaus and nothing stops training before the budget, so the
best checkpoint after N minutes is what an N-minute run keeps: the run is
interrupted (SIGINT, as Ctrl-C) once its training clock passes each earlier
budget, best.keras is scored on the test songs, and the run resumes
(`--resume=True`). The recipe before (`--patience=20`: stop after 20 epochs
without a better validation NLL) trains the same epochs until it stops, so
the run is also interrupted at the epoch where that rule would have stopped
it, and that checkpoint is the old recipe's score for every longer budget.
Prints one table and writes benchmarks/output/learning_curve-CORPUS.json.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

from corpora import CORPORA, HERE, ROOT, build_corpus, corpus_parts, data_paths

OLD_PATIENCE = 20  # the recipe before: epochs without a better validation NLL before stopping
EPOCH_LINE = re.compile(r"epoch (\d+): .*val_frame_nll ([-+.\deinfa]+)")


def parse(argv):
    """Command line → (corpus, sorted budgets in minutes, driver arguments)."""
    options = {"corpus": "chorales", "budgets": "5,10,20,30"}
    ours, extra = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    for arg in ours:
        name, _, value = arg.lstrip("-").partition("=")
        if name not in options or not value:
            sys.exit(f"error: unknown argument {arg!r}; use --corpus=, --budgets= and -- driver settings")
        options[name] = value
    if options["corpus"] not in CORPORA:
        sys.exit(f"error: --corpus is one of {', '.join(CORPORA)}, not {options['corpus']!r}")
    try:
        budgets = sorted(float(minutes) for minutes in options["budgets"].split(","))
    except ValueError:
        sys.exit(f"error: --budgets takes minutes separated by commas, not {options['budgets']!r}")
    return options["corpus"], budgets, extra


def old_recipe_stops(val_nlls):
    """Validation NLL per epoch so far → whether `--patience=20` would have stopped after the last one."""
    best = min(range(len(val_nlls)), key=val_nlls.__getitem__)
    return len(val_nlls) - 1 - best >= OLD_PATIENCE


def train_until(command, minutes_before, marks, val_nlls, old_stopped):
    """Run the driver; interrupt it once its training clock passes the first of marks, or where the old recipe would
    stop (unless old_stopped) → (exit code, whether it was interrupted for the old recipe). val_nlls grows."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    started, sent, for_old = None, False, False
    for line in process.stdout:
        print(line, end="", flush=True)
        if started is None and line.startswith("Epoch "):
            started = time.monotonic()
        match = EPOCH_LINE.match(line)
        if match:
            val_nlls.append(float(match.group(2)))
            for_old = not old_stopped and old_recipe_stops(val_nlls)
        passed = started is not None and minutes_before + (time.monotonic() - started) / 60 >= marks[0]
        if not sent and (for_old or passed) and match:
            process.send_signal(signal.SIGINT)
            sent = True
    return process.wait(), for_old


def test_nll(corpus, output_dir, args):
    """The test frame NLL of output_dir/best.keras on the corpus's test songs (imports Keras on first use)."""
    import keras

    import model  # noqa: F401  registers the custom layers
    import training
    parts = corpus_parts(corpus, args)
    return training.evaluate(keras.saving.load_model(os.path.join(output_dir, "best.keras")), parts)["test_frame_nll"]


def resume_progress(output_dir):
    """(epochs done, training minutes) of the interrupted run in output_dir."""
    with open(os.path.join(output_dir, "resume.json")) as file:
        state = json.load(file)
    return state["epoch"], state["minutes"]


def curve(corpus, budgets, extra):
    """Train once, scoring at each budget → ({budget: (test NLL, epochs, minutes)}, the old recipe's (test NLL,
    epochs, minutes))."""
    archive, split = data_paths(corpus)
    output_dir = os.path.join(HERE, "output", f"curve-{corpus}")
    args = [f"--data_path={archive}", f"--split_path={split}", *CORPORA[corpus][1], f"--output_dir={output_dir}",
            f"--max_minutes={budgets[-1]:g}", "--num_outputs=0", *extra]
    command = [sys.executable, os.path.join(ROOT, "classically_deep.py"), *args]
    points, old, val_nlls, minutes, marks = {}, None, [], 0.0, list(budgets[:-1]) or [float("inf")]
    while True:
        code, for_old = train_until(command, minutes, marks, val_nlls, old is not None)
        if code == 0:
            break
        if code != 128 + signal.SIGINT:
            sys.exit(f"error: the driver ended with exit status {code}")
        epochs, minutes = resume_progress(output_dir)
        del val_nlls[epochs:]  # the epoch the signal ended counts once, as resume.json has it
        score = (test_nll(corpus, output_dir, args), epochs, minutes)
        print(f"after {minutes:.1f} training minutes, {epochs} epochs: test frame NLL {score[0]:.3f}", flush=True)
        if for_old:
            old = score
        while marks and minutes >= marks[0]:
            points[marks.pop(0)] = score
        marks = marks or [float("inf")]
        command = [*command[:2], *args, "--resume=True"]
    with open(os.path.join(output_dir, "metrics.json")) as file:
        metrics = json.load(file)
    points[budgets[-1]] = (metrics["test_frame_nll"], metrics["epochs"], metrics["train_minutes"])
    return points, old


def table(corpus, points, old):
    """The markdown table: per budget, the defaults' and the old recipe's test frame NLL (epochs, training minutes)."""
    lines = [f"| {corpus}: budget | defaults (plateau halving, no early stop) | before (`--patience=20`) |",
             "|---|---|---|"]
    for budget, (nll, epochs, minutes) in sorted(points.items()):
        before = (nll, epochs, minutes) if old is None or minutes <= old[2] else old
        lines.append(f"| {budget:g} min | {nll:.3f} ({epochs} epochs, {minutes:.1f} min) "
                     f"| {before[0]:.3f} ({before[1]} epochs, {before[2]:.1f} min) |")
    return "\n".join(lines)


def main(argv):
    corpus, budgets, extra = parse(argv)
    build_corpus(corpus)
    points, old = curve(corpus, budgets, extra)
    print("\n" + table(corpus, points, old))
    with open(os.path.join(HERE, "output", f"learning_curve-{corpus}.json"), "w") as file:
        json.dump({"corpus": corpus, "extra": extra, "old_recipe": old,
                   "points": {f"{budget:g}": point for budget, point in points.items()}}, file, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])

"""Held-out NLL against the training budget: the driver's defaults trained once for each budget.

    python benchmarks/learning_curve.py                                  # chorales at 5, 10, 20 and 30 minutes
    python benchmarks/learning_curve.py --corpus=quartets --budgets=5,10,30
    python benchmarks/learning_curve.py --budgets=5,30 -- --members=1    # after --: more driver settings

The defaults scale with `max_minutes` (dropout 0.5 from 5 minutes; members = 0:
as many networks as the budget trains fully), so an N-minute run is not an
early point of a longer one: each budget is a run of its own, through the
command line as benchmarks/corpora.py trains it, into
benchmarks/output/curve-CORPUS-Nmin, scored on the corpus's test songs. The
runs take the sum of the budgets and a little more (65 minutes for the
default budgets). Prints one table and writes
benchmarks/output/learning_curve-CORPUS.json.
"""
import json
import os
import sys

from corpora import CORPORA, HERE, build_corpus, train_corpus


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


def curve(corpus, budgets, extra):
    """Train the defaults once per budget → {budget: the run's metrics.json}."""
    points = {}
    for budget in budgets:
        output_dir = os.path.join(HERE, "output", f"curve-{corpus}-{budget:g}min")
        points[budget], _ = train_corpus(corpus, [f"--max_minutes={budget:g}", "--num_outputs=0", *extra], output_dir)
        print(f"{budget:g} minutes: test frame NLL {points[budget]['test_frame_nll']:.3f}", flush=True)
    return points


def table(corpus, points):
    """The markdown table: per budget, the run's test and validation frame NLL, networks, epochs and minutes."""
    lines = [f"| {corpus}: budget | test frame NLL | valid frame NLL | test onset NLL | networks | epochs | training |",
             "|---|---|---|---|---|---|---|"]
    for budget, metrics in sorted(points.items()):
        onsets = f"{metrics['test_onset_nll']:.3f}" if "test_onset_nll" in metrics else "(no onsets)"
        lines.append(f"| {budget:g} min | {metrics['test_frame_nll']:.3f} | {metrics['valid_frame_nll']:.3f} "
                     f"| {onsets} | {metrics['members']} | {metrics['epochs']} | {metrics['train_minutes']:.1f} min |")
    return "\n".join(lines)


def main(argv):
    corpus, budgets, extra = parse(argv)
    build_corpus(corpus)
    points = curve(corpus, budgets, extra)
    print("\n" + table(corpus, points))
    keep = ("test_frame_nll", "valid_frame_nll", "test_onset_nll", "members", "epochs", "train_minutes")
    with open(os.path.join(HERE, "output", f"learning_curve-{corpus}.json"), "w") as file:
        json.dump({"corpus": corpus, "extra": extra,
                   "points": {f"{budget:g}": {key: metrics.get(key) for key in keep}
                              for budget, metrics in points.items()}}, file, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])

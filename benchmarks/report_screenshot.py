"""The report page as a person sees it: build report.html, then screenshot it with headless Chromium.

    python benchmarks/report_screenshot.py                          # a small example from data/sample.npz
    python benchmarks/report_screenshot.py --output_dir=output      # the report of a finished run

With no output_dir, builds an example under benchmarks/output/report_example/:
the embedded sample's chorales as piano rolls, the last three held out, and
three pieces that each open with a held-out song (the primer) and continue by
a frame-bigram stand-in for the model (each next frame drawn among the frames
that followed the same frame in the other songs). MIDI, WAV, PNGs and the
statistics are real; the loss curve and the model's NLL are illustrative
(the baseline's is real), as the page says.

With --output_dir=DIR (a finished run of classically_deep.py), renders each
generated_N.mid to WAV, draws its roll and statistics, draws history.json's
losses if the run saved one, and writes DIR/report.html from settings.json and
metrics.json.

Either way the page is then opened in headless Chromium (/usr/bin/chromium;
`apt-get install chromium`) and saved as report.png beside it, 1280 x 2400.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
import listen  # noqa: E402
import musicstats  # noqa: E402
import report  # noqa: E402
from files import DataError, make_dir, read_json  # noqa: E402
from midi_io import midi_to_roll, roll_to_midi  # noqa: E402

EXAMPLE_DIR = os.path.join(HERE, "output", "report_example")
SAMPLE_PATH = os.path.join(ROOT, "data", "sample.npz")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--window-size=1280,2400"]
LOWEST_NOTE, HIGHEST_NOTE, FRAMES_PER_BEAT, BPM, PRIMER, CONTINUATION = 21, 108, 4, 100.0, 32, 96


def statistics_of(roll, frames_per_unit, time_base):
    """musicstats' statistics of a roll → {name: value}."""
    return musicstats.music_statistics(roll, lowest_note=LOWEST_NOTE, time_base=time_base, frames_per_unit=frames_per_unit)


def statistics_table(pieces, reference_rolls, frames_per_unit, time_base):
    """Pieces with statistics and the held-out rolls → a statistics_table as the driver's judge() makes, with flags."""
    table = {**report.table_from_pieces(pieces), "reference": {}}
    reference = [statistics_of(roll, frames_per_unit, time_base) for roll in reference_rolls]
    for stat in table["statistics"]:
        values = np.array([stats[stat] for stats in reference], float)
        values = values[np.isfinite(values)]
        if not len(values):
            continue
        low, high = float(values.min()), float(values.max())
        table["reference"][stat] = {"mean": float(values.mean()), "min": low, "max": high}
        for name, stats in table["pieces"].items():
            value = stats.get(stat, float("nan"))
            if not low <= value <= high:
                reason = ("undefined (no notes)" if not np.isfinite(value) else
                          f"below the held-out range by {low - value:.3g}" if value < low else
                          f"above the held-out range by {value - high:.3g}")
                table["flags"].setdefault(name, {})[stat] = reason
    return table


def piece_files(midi, roll, folder, frames_per_unit, unit, primer_frames):
    """A written MIDI file and its roll → a write_report piece: WAV rendered, roll drawn, statistics after the primer."""
    stem = os.path.splitext(midi)[0]
    piece = {"name": os.path.basename(stem), "midi": midi, "png": stem + ".png", "wav": stem + ".wav",
             "statistics": statistics_of(roll[primer_frames:], frames_per_unit, unit)}
    report.plot_roll(roll, piece["png"], lowest_note=LOWEST_NOTE, frames_per_unit=frames_per_unit, unit=unit,
                     primer_frames=primer_frames)
    try:
        info = listen.render_wav(midi, piece["wav"])
        print(f"rendered {piece['wav']}: {info['seconds']:.1f} s, RMS {info['rms']:.3f}, {info['renderer']}")
    except DataError as err:
        piece["wav"], piece["wav_error"] = None, str(err)
        print(f"warning: no audio for {midi}: {err}")
    return piece


def bigram_continuation(primer, songs, frames, seed=0):
    """Continue a (frames, keys) roll for `frames` frames: each next frame one that followed the same frame in songs."""
    rng = np.random.default_rng(seed)
    following = {}
    for song in songs:
        packed = np.packbits(song, axis=1)
        for here, after in zip(packed[:-1], song[1:]):
            following.setdefault(here.tobytes(), []).append(after)
    every = np.concatenate(songs)
    out, frame = [], primer[-1]
    for _ in range(frames):
        choices = following.get(np.packbits(frame).tobytes())
        frame = choices[rng.integers(len(choices))] if choices else every[rng.integers(len(every))]
        out.append(frame)
    return np.concatenate([primer, np.array(out)])


def build_example(folder):
    """Write the example run's files and report.html under folder → the page's path."""
    import rolls
    from classically_deep import bernoulli_nll
    from sources import read_archive
    make_dir(folder, "output folder")
    songs = [rolls.organize_song(notes, lowest_note=LOWEST_NOTE, highest_note=HIGHEST_NOTE, time_base="beats",
                                 steps_per_beat=FRAMES_PER_BEAT) for _, notes, problem in read_archive(SAMPLE_PATH)
             if problem is None]
    train, held_out = songs[:-3], songs[-3:]
    pieces = []
    for number, song in enumerate(held_out, start=1):
        roll = bigram_continuation(song[:PRIMER], train, CONTINUATION, seed=number)
        midi = os.path.join(folder, f"generated_{number}.mid")
        roll_to_midi(roll, midi, lowest_note=LOWEST_NOTE, frames_per_beat=FRAMES_PER_BEAT, bpm=BPM, program=1,
                     marker_frame=PRIMER)
        pieces.append(piece_files(midi, roll, folder, FRAMES_PER_BEAT, "beats", PRIMER))
    epochs = np.arange(1, 31)
    history = {"loss": list(12 * np.exp(-epochs / 5) + 4 + 0.05 * np.sin(epochs)),
               "val_frame_nll": list(11 * np.exp(-epochs / 6) + 4.6 + 0.002 * (epochs - 18) ** 2)}
    loss_plot = report.plot_losses(history, os.path.join(folder, "losses.png"))
    baseline = bernoulli_nll(train, held_out)
    metrics = {"valid_frame_nll": 4.71, "test_frame_nll": 5.02, "valid_frame_nll_baseline": baseline,
               "test_frame_nll_baseline": baseline, "epochs": 30, "train_minutes": 2.5}
    settings = {"data_path": "data/sample.npz", "time_base": "beats", "steps_per_beat": FRAMES_PER_BEAT, "bpm": BPM,
                "primer_frames": PRIMER, "generate_frames": CONTINUATION, "lowest_note": LOWEST_NOTE,
                "highest_note": HIGHEST_NOTE, "model": "frame-bigram stand-in (example)",
                "note": "<script>alert('settings are escaped')</script>"}
    return report.write_report(folder, settings=settings, metrics=metrics, pieces=pieces,
                               statistics_table=statistics_table(pieces, held_out, FRAMES_PER_BEAT, "beats"),
                               loss_plot=loss_plot,
                               title="Example report: sample chorales, a frame-bigram stand-in, illustrative losses")


def build_from_run(folder):
    """Render, draw and write report.html for a finished run's output folder → the page's path."""
    settings = read_json(os.path.join(folder, "settings.json"), "settings file")
    metrics_path = os.path.join(folder, "metrics.json")
    metrics = read_json(metrics_path, "metrics file") if os.path.isfile(metrics_path) else {}
    if settings.get("time_base") == "beats":
        unit, frames_per_unit = "beats", settings["steps_per_beat"]
        frames_per_second = frames_per_unit * settings["bpm"] / 60.0
    else:
        unit, frames_per_unit = "seconds", settings["steps_per_second"]
        frames_per_second = frames_per_unit
    primer = settings["primer_frames"] if settings.get("include_primer") else 0
    pieces = []
    midis = sorted(glob.glob(os.path.join(folder, "generated_*.mid")),
                   key=lambda path: int(re.sub(r"\D", "", os.path.basename(path)) or 0))
    for midi in midis:
        roll = midi_to_roll(midi, lowest_note=settings["lowest_note"], highest_note=settings["highest_note"],
                            frames_per_second=frames_per_second)
        pieces.append(piece_files(midi, roll, folder, frames_per_unit, unit, primer))
    history_path, loss_plot = os.path.join(folder, "history.json"), None
    if os.path.isfile(history_path):
        loss_plot = report.plot_losses(read_json(history_path, "history file"), os.path.join(folder, "losses.png"))
    table = metrics.get("statistics")  # the driver's judge() table, when the run wrote one
    if table:
        table = {**table, "statistics": list(table.get("reference") or next(iter(table["pieces"].values()), {}))}
    return report.write_report(folder, settings=settings, metrics=metrics, pieces=pieces, statistics_table=table,
                               loss_plot=loss_plot, title=f"classically_deep run: {os.path.basename(os.path.abspath(folder))}")


def chromium():
    """Path of a Chromium or Chrome program, or None."""
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


def screenshot(page, png):
    """Open page (a file path) in headless Chromium and save a 1280 x 2400 screenshot at png → png."""
    program = chromium()
    if not program:
        raise DataError("no Chromium found (looked for " + ", ".join(CHROMIUM_NAMES) + " on PATH); "
                        "apt-get install chromium, then run this again")
    with tempfile.TemporaryDirectory(prefix="report-shot-") as profile:
        command = [program, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={os.path.abspath(png)}",
                   "file://" + os.path.abspath(page)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    if not os.path.isfile(png):
        raise DataError(f"Chromium wrote no screenshot (exit {done.returncode}): {' '.join(done.stderr.split())[-300:]}")
    return png


def main(argv):
    """Build the report, screenshot it, print where both are; exit 2 with one line on a problem."""
    options = dict(arg[2:].split("=", 1) for arg in argv if arg.startswith("--") and "=" in arg)
    try:
        if options.get("output_dir"):
            page = build_from_run(options["output_dir"])
        else:
            page = build_example(EXAMPLE_DIR)
        print(f"report: {page}")
        png = os.path.join(os.path.dirname(page), "report.png")
        if os.path.exists(png):
            os.unlink(png)
        print(f"screenshot: {screenshot(page, png)}")
    except (DataError, subprocess.TimeoutExpired, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

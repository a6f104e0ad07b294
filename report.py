"""Pictures and the report: piano-roll PNGs, the loss plot, the console statistics table, output_dir/report.html.

    from report import plot_losses, plot_piece, plot_roll, print_statistics, report_run, write_report
    plot_roll(song, "output/generated_1.png", lowest_note=21, frames_per_unit=4, unit="beats", primer_frames=32)
    plot_losses(history, "output/losses.png")
    write_report("output", settings=settings, metrics=metrics, pieces=pieces,
                 statistics_table=table, loss_plot="output/losses.png")
    print_statistics(table)                              # the same table on the console
    shown = [plot_piece(piece, table, settings) for piece in pieces]   # a run's piano rolls, each path printed
    report_run(shown, table, metrics, settings)          # then its loss plot and page

Figures are drawn with matplotlib's Agg canvas (no display, no pyplot state) and
written atomically. The page is one self-contained HTML file: inline CSS, no
JavaScript, no external URL; images, audio and MIDI are linked by paths relative
to output_dir, so the folder can be moved or zipped and opened from disk.
"""
import html
import json
import math
import os
import urllib.parse

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from files import atomic_write, printable
from musicstats import COPY_LIMIT_BARS, frames_per_unit
from rolls import as_song

NOTE_NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
ROLL_SIZE = (11.0, 2.8)  # inches: 1100 x 280 pixels at DPI, the width of the page's column
LOSS_SIZE = (5.6, 2.8)  # inches: beside the NLL table on a wide page
DPI = 100
NOTE_COLOUR, HELD_COLOUR, PRIMER_COLOUR = "#1f3b73", "#8fa8d8", "#f2c14e"  # a key struck, a key held on, the primer
BAR_COLOUR = "#9a9a9a"
MAX_BAR_LINES = int(ROLL_SIZE[0] * DPI / 4)  # more bar lines than this, under 4 pixels apart, would grey the roll: none drawn
MARGIN_KEYS = 2  # keys shown above and below the highest and lowest notes played
MIN_KEYS = 25  # a roll plot shows at least two octaves


def note_name(midi_note):
    """MIDI note number → scientific pitch name, e.g. 60 → 'C4'."""
    return f"{NOTE_NAMES[midi_note % 12]}{midi_note // 12 - 1}"


def _save(figure, path):
    """Write a matplotlib Figure as a PNG, atomically."""
    FigureCanvasAgg(figure)
    with atomic_write(path) as file:
        figure.savefig(file, format="png", dpi=DPI)


def _shown_keys(roll):
    """(first, last) key index to draw: the notes played plus a margin, at least MIN_KEYS, inside the roll."""
    num_keys = roll.shape[1]
    played = np.flatnonzero(roll.any(axis=0))
    if len(played) == 0:
        return 0, num_keys - 1
    first, last = max(0, played[0] - MARGIN_KEYS), min(num_keys - 1, played[-1] + MARGIN_KEYS)
    while last - first + 1 < min(MIN_KEYS, num_keys):
        first, last = max(0, first - 1), min(num_keys - 1, last + 1)
    return int(first), int(last)


def _pooled(cells, most=2 * int(ROLL_SIZE[0] * DPI)):
    """(frames, keys) cells of more than `most` frames → groups of frames, each cell the group's largest, so no note
    or onset is lost when drawn small."""
    group = -(-len(cells) // most)
    if group <= 1:
        return cells
    padded = np.pad(cells, ((0, -len(cells) % group), (0, 0)))
    return padded.reshape(-1, group, cells.shape[1]).max(axis=1)


def _cells(song):
    """A Song → (frames, keys) uint8 picture: 0 silent, 1 a key held on, 2 a key struck in that frame."""
    return song.roll.astype(np.uint8) + song.onsets


def _bar_lines(song):
    """A Song → the frames where a bar begins, where its meter is known (no frame where it is not)."""
    return np.flatnonzero((song.meter[:, 0] == 0) & (song.meter[:, 1] > 0))


def plot_roll(song, path, *, lowest_note, frames_per_unit, unit, primer_frames=0, title=""):
    """Draw a Song (or a (frames, keys) bool roll, see rolls.as_song) as a piano-roll PNG at path (atomically) → path.

    Time runs along x in `unit` ("beats" or "seconds"; frames_per_unit frames
    each), pitch up y with the Cs named (C4 = MIDI 60). A key is drawn dark in
    the frame it is struck and light while it is held on, so a re-struck note
    shows a dark frame inside a light run; grey lines mark the bar lines where
    the song's meter is known (none when there would be over MAX_BAR_LINES).
    The first primer_frames frames are shaded and labelled "primer", the rest "model".
    """
    song = as_song(song)
    if song.roll.shape[1] == 0:
        raise ValueError(f"a roll must be a (frames, keys) array with keys, not shape {song.roll.shape}")
    if not (math.isfinite(frames_per_unit) and frames_per_unit > 0):
        raise ValueError(f"frames_per_unit must be a positive number, not {frames_per_unit!r}")
    frames = len(song)
    first, last = _shown_keys(song.roll)
    length = max(frames, 1) / frames_per_unit
    figure = Figure(figsize=ROLL_SIZE, layout="constrained")
    axes = figure.add_subplot()
    low, high = lowest_note + first - 0.5, lowest_note + last + 0.5
    axes.imshow(_pooled(_cells(song)[:, first:last + 1]).T, aspect="auto", origin="lower", interpolation="nearest",
                cmap=ListedColormap(["white", HELD_COLOUR, NOTE_COLOUR]), vmin=0, vmax=2,
                extent=(0, frames / frames_per_unit if frames else length, low, high))
    bar_lines = _bar_lines(song)
    if len(bar_lines) <= MAX_BAR_LINES:
        axes.vlines(bar_lines / frames_per_unit, low, high, colors=BAR_COLOUR, linewidth=0.6, antialiased=False)
    cs = [note for note in range(lowest_note + first, lowest_note + last + 1) if note % 12 == 0]
    axes.set_yticks(cs, [note_name(note) for note in cs])
    for note in cs:
        axes.axhline(note - 0.5, color="#c8c8c8", linewidth=0.6, zorder=0)
    if 0 < primer_frames:
        end = min(primer_frames, frames) / frames_per_unit
        axes.axvspan(0, end, color=PRIMER_COLOUR, alpha=0.35, linewidth=0)
        axes.axvline(end, color="#b07d00", linewidth=1.2)
        for x, text, align in ((end / 2, "primer", "center"), (end + 0.01 * length, "model ▸", "left")):
            if align == "left" and primer_frames >= frames:
                continue
            axes.text(x, 1.01, text, transform=axes.get_xaxis_transform(), ha=align, va="bottom", fontsize=9,
                      color="#7a5600" if text == "primer" else NOTE_COLOUR)
    axes.set_xlim(0, length)
    axes.set_xlabel(f"time ({unit})")
    axes.set_ylabel("pitch")
    if title:
        axes.set_title(title, loc="left", fontsize=11, pad=14 if primer_frames else 6)
    _save(figure, path)
    return path


def plot_losses(history, path):
    """Draw training loss and validation frame NLL per epoch (Keras history: {"loss": [...], "val_frame_nll": [...]}) → path.

    Both in nats per frame; the epoch of the lowest validation NLL (the weights
    kept) is marked. Non-finite values are left out of the lines.
    """
    figure = Figure(figsize=LOSS_SIZE, layout="constrained")
    axes = figure.add_subplot()
    drawn = False
    for key, label, colour in (("loss", "training loss", "#8a8a8a"), ("val_frame_nll", "validation frame NLL", NOTE_COLOUR)):
        values = np.asarray(history.get(key) or [], float)
        if len(values):
            epochs = np.arange(1, len(values) + 1)
            shown = np.where(np.isfinite(values), values, np.nan)
            axes.plot(epochs, shown, label=label, color=colour, marker="." if len(values) < 40 else None)
            drawn = drawn or np.isfinite(values).any()
    values = np.asarray(history.get("val_frame_nll") or [], float)
    if np.isfinite(values).any():
        best = int(np.nanargmin(np.where(np.isfinite(values), values, np.nan)))
        axes.plot(best + 1, values[best], "o", markersize=9, markerfacecolor="none", markeredgecolor="#c0392b",
                  label=f"best: epoch {best + 1}, {values[best]:.3f}")
    if drawn:
        axes.legend(frameon=False)
    else:
        axes.text(0.5, 0.5, "no finite losses recorded", ha="center", va="center", transform=axes.transAxes)
    axes.set_xlabel("epoch")
    axes.set_ylabel("nats per frame")
    axes.grid(alpha=0.3)
    _save(figure, path)
    return path


# ------------------------------------------------------------------ report.html

CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; margin: 0; background: #fafafa; }
main { max-width: 1140px; margin: 0 auto; padding: 20px 24px 40px; }
h1 { font-size: 24px; margin: 4px 0 2px; }
h2 { font-size: 19px; margin: 30px 0 10px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 16px; margin: 0 0 6px; }
.sub { color: #666; margin: 0 0 8px; }
table { border-collapse: collapse; background: #fff; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.settings { table-layout: fixed; width: 100%; }
table.settings td { font-size: 13px; overflow-wrap: anywhere; }
table.settings col.key { width: 12%; }
table.settings td.key { color: #555; background: #f7f7f7; }
table.settings td.value { font-family: ui-monospace, Menlo, Consolas, monospace; }
.piece { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 12px 14px; margin: 0 0 18px; }
.piece img, .figure img { display: block; max-width: 100%; height: auto; }
.piece audio { width: 100%; max-width: 560px; margin-top: 6px; }
.links { font-size: 14px; margin-top: 4px; }
.missing { color: #a94442; }
td.flag { background: #fdecea; }
td.flag .why { display: block; font-size: 12px; color: #a94442; white-space: normal; }
.better { color: #1e7d32; font-weight: 600; }
.worse { color: #a94442; font-weight: 600; }
.note { color: #666; font-size: 13px; }
.results { display: flex; flex-wrap: wrap; gap: 12px 32px; align-items: flex-start; }
.results > div { flex: 0 1 auto; }
"""


def _text(value):
    """Any value → HTML-escaped text; floats to 4 significant digits, NaN/None as an em dash."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, (float, np.floating)):
        return html.escape(f"{float(value):.4g}")
    if isinstance(value, (dict, list, tuple)):
        return html.escape(json.dumps(value, default=str))
    return html.escape(printable(value) if isinstance(value, str) else str(value))


def _link(path, output_dir):
    """A file's path → (URL relative to output_dir, percent-encoded, or None when the file is missing)."""
    if not path or not os.path.isfile(path):
        return None
    relative = os.path.relpath(os.path.abspath(path), os.path.abspath(output_dir))
    return urllib.parse.quote(relative.replace(os.sep, "/"), errors="surrogateescape")


def _settings_table(settings, pairs_per_row=3):
    """{name: value} → a compact HTML table, pairs_per_row name/value pairs to a row, sorted by name."""
    items = sorted(settings.items())
    rows = []
    for at in range(0, len(items), pairs_per_row):
        cells = "".join(f'<td class="key">{_text(name)}</td><td class="value">{_text(value)}</td>'
                        for name, value in items[at:at + pairs_per_row])
        rows.append(f"<tr>{cells}</tr>")
    columns = '<col class="key"><col>' * pairs_per_row
    return (f'<table class="settings"><colgroup>{columns}</colgroup>{"".join(rows)}</table>' if rows else
            '<p class="note">no settings recorded</p>')


def _number(value):
    """A value → float, or None if it is not a finite number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _nll_table(metrics):
    """metrics (valid/test_frame_nll and their _baseline) → HTML table: model, baseline, ratio, per held-out part."""
    rows = []
    for part in ("valid", "test"):
        model, baseline = _number(metrics.get(f"{part}_frame_nll")), _number(metrics.get(f"{part}_frame_nll_baseline"))
        if model is None and baseline is None:
            continue
        if model is not None and baseline:
            ratio = model / baseline
            verdict = f'<span class="{"better" if ratio < 1 else "worse"}">{ratio:.2f}x</span>'
        else:
            verdict = "—"
        rows.append(f'<tr><td>{"validation" if part == "valid" else "test"}</td><td class="num">{_text(model)}</td>'
                    f'<td class="num">{_text(baseline)}</td><td class="num">{verdict}</td></tr>')
    if not rows:
        return '<p class="note">no frame NLL recorded</p>'
    return ("<table><tr><th>held-out songs</th><th>model</th><th>baseline</th>"
            f"<th>model / baseline</th></tr>{''.join(rows)}</table>"
            '<p class="note">Frame NLL in nats per frame, lower is better. The baseline plays each key<br>'
            "independently with its training frequency; under 1.00x beats it.</p>")


def _other_metrics(metrics):
    """The metrics besides the frame NLLs → one line of 'name value' pairs, or ""."""
    skip = {f"{part}_frame_nll{end}" for part in ("valid", "test") for end in ("", "_baseline")}
    items = [(name, value) for name, value in metrics.items()
             if name not in skip and not isinstance(value, (list, tuple, dict))]
    return ('<p class="note">' + "; ".join(f"{_text(name)}: {_text(value)}" for name, value in items) + "</p>"
            if items else "")


def _piece_html(piece, output_dir):
    """One generated piece → an HTML block: its roll image, an audio player (or why there is none), its MIDI link."""
    name = _text(piece.get("name", "piece"))
    parts = [f'<section class="piece"><h3>{name}</h3>']
    image = _link(piece.get("png"), output_dir)
    parts.append(f'<img src="{image}" alt="piano roll of {name}">' if image else
                 '<p class="missing">no piano-roll image</p>')
    audio = _link(piece.get("wav"), output_dir)
    if audio:
        parts.append(f'<audio controls preload="metadata" src="{audio}">your browser cannot play WAV: '
                     f'<a href="{audio}">download it</a></audio>')
    else:
        reason = piece.get("wav_error") or "the audio could not be rendered"
        parts.append(f'<p class="missing">no audio: {_text(reason)}</p>')
    midi = _link(piece.get("midi"), output_dir)
    links = [f'<a href="{midi}" download>MIDI ({_text(os.path.basename(piece["midi"]))})</a>' if midi else
             '<span class="missing">MIDI file missing</span>']
    if audio:
        links.append(f'<a href="{audio}" download>WAV</a>')
    parts.append(f'<div class="links">{" · ".join(links)}</div></section>')
    return "".join(parts)


def table_from_pieces(pieces):
    """Pieces with "statistics" → a statistics_table with no held-out columns (see write_report)."""
    names = []
    for piece in pieces:
        names += [name for name in piece.get("statistics", {}) if name not in names]
    return {"statistics": names, "pieces": {piece["name"]: piece.get("statistics", {}) for piece in pieces},
            "reference": {}, "flags": {}}


def _statistics_html(table):
    """statistics_table → HTML: a row per statistic, a column per piece, then the held-out mean and range; flags marked."""
    pieces, flags, reference = table.get("pieces", {}), table.get("flags", {}), table.get("reference", {})
    names = table.get("statistics") or list(reference) or list(next(iter(pieces.values()), {}))
    if not names:
        return '<p class="note">no statistics</p>'
    head = "".join(f"<th>{_text(piece)}</th>" for piece in pieces)
    rows = []
    for stat in names:
        cells = []
        for piece, values in pieces.items():
            reason = flags.get(piece, {}).get(stat)
            value = _text(values.get(stat))
            if reason:
                cells.append(f'<td class="num flag" title="{_text(reason)}">⚠ {value}'
                             f'<span class="why">{_text(reason)}</span></td>')
            else:
                cells.append(f'<td class="num">{value}</td>')
        if reference:
            summary = reference.get(stat, {})
            span = (f'{_text(summary.get("min"))} – {_text(summary.get("max"))}'
                    if summary.get("min") is not None or summary.get("max") is not None else "—")
            cells.append(f'<td class="num">{_text(summary.get("mean"))}</td><td class="num">{span}</td>')
        rows.append(f"<tr><th>{_text(stat)}</th>{''.join(cells)}</tr>")
    flagged = sum(len(reasons) for reasons in flags.values())
    note = (f'<p class="note">⚠ {flagged} value{"s" if flagged != 1 else ""} outside the held-out songs\' range '
            "(reason under the value).</p>" if flagged else
            '<p class="note">Every value lies inside the held-out songs\' range.</p>' if reference else "")
    head += "<th>held-out mean</th><th>held-out range</th>" if reference else ""
    return (f"<table><tr><th>statistic</th>{head}</tr>"
            f"{''.join(rows)}</table>{note}")


def write_report(output_dir, *, settings, metrics, pieces, statistics_table=None, loss_plot=None, title="classically_deep run"):
    """Write output_dir/report.html (atomically), one self-contained page → its path.

    settings: {name: value} (any values; shown as text).
    metrics: {"valid_frame_nll", "test_frame_nll", "valid_frame_nll_baseline",
      "test_frame_nll_baseline": float, ...}; other scalar entries are listed below. With "model_path" (a run that
      composed with a trained model and trained none) the page names the model and says so.
    pieces: [{"name": str, "midi": path, "wav": path or None, "png": path or None,
      "statistics": {stat: value}, "wav_error": optional str (why wav is None),
      "played": optional str (the instrument, velocity and tempo written: compose.what_is_played)}].
    statistics_table: the driver's judge() table: {"statistics": [stat names, row order],
      "pieces": {piece name: {stat: value}}, "reference": {stat: {"mean", "min", "max"}}
      of the held-out songs, "flags": {piece name: {stat: reason}}}; its other keys
      (such as "held_out", per song) are not shown. None builds a table from the
      pieces' statistics, without held-out columns.
    loss_plot: path of the loss PNG, or None.
    Paths may be absolute or relative to the working directory; the page links
    them relative to output_dir and says so where a file is missing.
    """
    if statistics_table is None and any(piece.get("statistics") for piece in pieces):
        statistics_table = table_from_pieces(pieces)
    loss = _link(loss_plot, output_dir)
    sections = [
        f"<h1>{_text(title)}</h1><p class=\"sub\">{_text(os.path.abspath(output_dir))}</p>",
        f'<p class="sub">composed with the trained model {_text(metrics["model_path"])}; no model was trained in '
        "this run</p>" if metrics.get("model_path") else "",
        "<h2>Frame NLL against the baseline, and training</h2>",
        f'<div class="results"><div>{_nll_table(metrics)}{_other_metrics(metrics)}</div><div class="figure">'
        + (f'<img src="{loss}" alt="training loss and validation frame NLL per epoch">' if loss
           else '<p class="note">no loss plot</p>') + "</div></div>",
        f"<h2>Generated pieces ({len(pieces)})</h2>",
        f'<p class="note">written for {_text(pieces[0]["played"])}</p>' if pieces and pieces[0].get("played") else "",
        "".join(_piece_html(piece, output_dir) for piece in pieces) or '<p class="note">no pieces generated</p>',
        "<h2>Music statistics</h2>",
        _statistics_html(statistics_table) if statistics_table else '<p class="note">no statistics</p>',
        "<h2>Settings</h2>", _settings_table(settings),
    ]
    page = ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_text(title)}</title><style>{CSS}</style></head>\n<body><main>\n"
            + "\n".join(sections) + "\n</main></body></html>\n")
    path = os.path.join(output_dir, "report.html")
    with atomic_write(path) as file:
        file.write(page.encode("utf-8"))
    return path


def print_statistics(table):
    """The statistics table on the console: each generated piece beside the held-out songs' mean and range, flags marked '!'."""
    pieces = list(table["pieces"])
    print(f"\n{'statistic':<22}" + "".join(f"{piece:>14}" for piece in pieces) + "   held-out songs: mean [min, max]")
    for name in table["statistics"]:
        cells = "".join(f"{table['pieces'][piece][name]:>13.3g}{'!' if name in table['flags'].get(piece, {}) else ' '}"
                        for piece in pieces)
        reference = table["reference"][name]
        limit = f"  (flagged at {COPY_LIMIT_BARS:g} bars)" if name == "longest_copy_bars" else ""
        print(f"{name:<22}{cells}   {reference['mean']:.3g} [{reference['min']:.3g}, {reference['max']:.3g}]{limit}")
    for piece, flagged in table["flags"].items():
        for name, reason in flagged.items():
            print(f"warning: {piece}: {name} {table['pieces'][piece][name]:.3g} is {reason}")
    if not table["flags"]:
        print("every generated figure lies inside the held-out songs' range")


def plot_piece(piece, table, settings):
    """A piano-roll PNG beside a piece's MIDI; print its path → the piece as write_report shows it, with its 'png'
    and its 'statistics' from the table, {} without one (piece: {'name', 'midi', 'song' (a rolls.Song),
    'primer_frames', 'wav' [, 'wav_error']})."""
    png = os.path.join(settings["output_dir"], piece["name"] + ".png")
    plot_roll(piece["song"], png, lowest_note=settings["lowest_note"], frames_per_unit=frames_per_unit(settings),
              unit="beats" if settings["time_base"] == "beats" else "seconds", primer_frames=piece["primer_frames"])
    print(f"wrote {printable(png)}")
    return {**piece, "png": png, "statistics": table["pieces"][piece["name"]] if table else {}}


def report_run(pieces, table, metrics, settings):
    """The loss plot and output_dir/report.html of a run whose pieces plot_piece drew; print both paths → the page's path.
    table: musicstats.judge's, or None without held-out songs; metrics: the run's, with its training history if it
    trained (no loss plot otherwise)."""
    out = settings["output_dir"]
    loss_plot = plot_losses(metrics["history"], os.path.join(out, "loss.png")) if metrics.get("history") else None
    if loss_plot:
        print(f"wrote {printable(loss_plot)}")
    page = write_report(out, settings=settings, metrics=metrics, pieces=pieces, statistics_table=table, loss_plot=loss_plot)
    print(f"wrote {printable(page)} — open it in a browser to listen and look")
    return page

"""Piano-roll and loss PNGs, and report.html: real images, relative links to real files, escaped text, flags."""
import itertools
import math
import os
import struct
import urllib.parse
import wave
from html.parser import HTMLParser

import numpy as np
import pytest
from matplotlib.image import imread

import report
from midi_io import roll_to_midi
from rolls import Song

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    """A PNG file → (width, height) from its IHDR chunk; fails the test if it is not a PNG."""
    data = open(path, "rb").read(32)
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def scale_roll():
    """(24, 88) roll: a C major scale in quarter notes (4 frames each) from C4, with a held low C under it."""
    roll = np.zeros((24, 88), bool)
    for step, note in enumerate([60, 62, 64, 65, 67, 69]):
        roll[4 * step:4 * step + 3, note - 21] = True
    roll[:, 48 - 21] = True
    return roll


class Page(HTMLParser):
    """Collects a page's start tags with their attributes, and its text."""

    def __init__(self, text):
        super().__init__()
        self.tags, self.text = [], []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def all(self, tag):
        """Attribute dicts of every `tag` start tag."""
        return [attrs for name, attrs in self.tags if name == tag]


def write_wav(path, seconds=0.5, rate=8000):
    """A short 440 Hz mono 16-bit WAV → path."""
    t = np.arange(int(seconds * rate)) / rate
    with wave.open(os.fspath(path), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(rate)
        file.writeframes((np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes())
    return path


@pytest.fixture
def run_folder(tmp_path):
    """An output folder with two pieces (one without audio, one in a sub-folder with a space in its name) and a loss plot."""
    out = tmp_path / "run"
    (out / "my pieces").mkdir(parents=True)
    pieces = []
    for number, folder in ((1, out), (2, out / "my pieces")):
        midi = folder / f"generated_{number}.mid"
        roll_to_midi(scale_roll(), midi, lowest_note=21, frames_per_beat=4, bpm=100, marker_frame=8)
        png = report.plot_roll(scale_roll(), folder / f"generated_{number}.png", lowest_note=21, frames_per_unit=4,
                               unit="beats", primer_frames=8)
        wav = write_wav(folder / f"generated_{number}.wav") if number == 1 else None
        pieces.append({"name": f"generated_{number}", "midi": str(midi), "png": str(png), "wav": wav and str(wav),
                       "statistics": {"polyphony": 1.5 + number, "distinct_pitches": 6 + number}})
    pieces[1]["wav_error"] = "generated_2.mid renders silent"
    loss = report.plot_losses({"loss": [9.0, 6.0, 5.0], "val_frame_nll": [8.0, 6.5, 6.6]}, out / "losses.png")
    table = {"statistics": ["polyphony", "distinct_pitches"],
             "pieces": {piece["name"]: piece["statistics"] for piece in pieces},
             "reference": {"polyphony": {"mean": 2.6, "min": 2.0, "max": 3.0},
                          "distinct_pitches": {"mean": 7.5, "min": 7, "max": 8}},
             "flags": {"generated_2": {"polyphony": "above the held-out range by 0.5"}}}
    metrics = {"valid_frame_nll": 3.0, "test_frame_nll": 4.5, "valid_frame_nll_baseline": 11.6,
               "test_frame_nll_baseline": 10.6, "epochs": 3, "test_songs": ["a", "b"]}
    settings = {"seed": 1234, "note": "<script>alert('x')</script>", "output_dir": str(out), "temperature": 0.9}
    return out, dict(settings=settings, metrics=metrics, pieces=pieces, statistics_table=table, loss_plot=str(loss))


def test_plot_roll_writes_a_png_of_the_set_size(tmp_path):
    path = report.plot_roll(scale_roll(), tmp_path / "roll.png", lowest_note=21, frames_per_unit=4, unit="beats",
                            primer_frames=8, title="a <scale>")
    assert path == tmp_path / "roll.png"
    assert png_size(path) == (round(report.ROLL_SIZE[0] * report.DPI), round(report.ROLL_SIZE[1] * report.DPI))
    assert os.listdir(tmp_path) == ["roll.png"]  # no temporary left beside it


@pytest.mark.parametrize("roll", [np.zeros((0, 88), bool), np.zeros((16, 88), bool), np.ones((3, 1), bool)],
                         ids=["no frames", "silent", "one key"])
def test_plot_roll_draws_edge_cases(tmp_path, roll):
    report.plot_roll(roll, tmp_path / "roll.png", lowest_note=60, frames_per_unit=8.0, unit="seconds", primer_frames=4)
    assert png_size(tmp_path / "roll.png")[0] > 0


def restruck_in_2_4(meter=True):
    """(24, 88) Song at 4 frames a beat: middle C sounding throughout, struck at frames 0 and 12; three bars of 2/4."""
    roll = np.zeros((24, 88), bool)
    roll[:, 60 - 21] = True
    onsets = np.zeros_like(roll)
    onsets[[0, 12], 60 - 21] = True
    bars = np.array([(since, 8, 2, 4) for _ in range(3) for since in range(8)], np.int16)
    return Song(roll, onsets, bars if meter else None)


def rgb(colour):
    """'#rrggbb' → (r, g, b) ints 0-255."""
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def colours_along_the_note(path):
    """A plot of restruck_in_2_4 → the colours met left to right along a pixel row through the note, each run once,
    named 'struck', 'held' or 'bar' (anything else left out)."""
    pixels = (imread(path)[..., :3] * 255).round().astype(int)
    names = {rgb(report.NOTE_COLOUR): "struck", rgb(report.HELD_COLOUR): "held", rgb(report.BAR_COLOUR): "bar"}
    rows = np.flatnonzero((pixels == rgb(report.NOTE_COLOUR)).all(axis=2).any(axis=1))
    row = pixels[rows[len(rows) // 2]]
    return [name for name, _ in itertools.groupby(names[tuple(pixel)] for pixel in row if tuple(pixel) in names)]


def test_a_restruck_note_is_drawn_dark_where_it_is_struck():
    np.testing.assert_array_equal(report._cells(restruck_in_2_4())[[0, 1, 11, 12, 13, 23], 60 - 21], [2, 1, 1, 2, 1, 1])
    assert report._cells(restruck_in_2_4()).sum() == 24 + 2


def test_bar_lines_are_drawn_where_the_meter_is_known(tmp_path):
    np.testing.assert_array_equal(report._bar_lines(restruck_in_2_4()), [0, 8, 16])
    pickup = Song(np.zeros((10, 88), bool), meter=np.array([(since, 12, 3, 4) for since in range(8, 12)] +
                                                           [(since, 12, 3, 4) for since in range(6)], np.int16))
    np.testing.assert_array_equal(report._bar_lines(pickup), [4])  # a 3/4 bar after a one-beat pickup
    assert len(report._bar_lines(restruck_in_2_4(meter=False))) == 0
    report.plot_roll(restruck_in_2_4(), tmp_path / "bars.png", lowest_note=21, frames_per_unit=4, unit="beats")
    report.plot_roll(restruck_in_2_4(meter=False), tmp_path / "none.png", lowest_note=21, frames_per_unit=4, unit="beats")
    # the line at frame 0 lies on the picture's frame; those at frames 8 and 16 cross the held note
    assert colours_along_the_note(tmp_path / "bars.png") == ["struck", "held", "bar", "held", "struck", "held", "bar", "held"]
    assert colours_along_the_note(tmp_path / "none.png") == ["struck", "held", "struck", "held"]


def test_plot_roll_refuses_what_is_not_a_roll(tmp_path):
    with pytest.raises(ValueError, match="roll must be"):
        report.plot_roll(np.zeros(16, bool), tmp_path / "roll.png", lowest_note=21, frames_per_unit=4, unit="beats")
    assert not (tmp_path / "roll.png").exists()


def test_note_names_are_scientific_pitch():
    assert [report.note_name(note) for note in (21, 60, 61, 108)] == ["A0", "C4", "C#4", "C8"]


@pytest.mark.parametrize("history", [{"loss": [5.0, 4.0, float("nan")], "val_frame_nll": [6.0, float("inf"), 4.5]},
                                     {"loss": [3.0]}, {}], ids=["non-finite", "no validation", "empty"])
def test_plot_losses_writes_a_png(tmp_path, history):
    report.plot_losses(history, tmp_path / "losses.png")
    assert png_size(tmp_path / "losses.png") == (round(report.LOSS_SIZE[0] * report.DPI),
                                                 round(report.LOSS_SIZE[1] * report.DPI))


def test_report_links_only_relative_paths_to_files_that_exist(run_folder):
    out, inputs = run_folder
    path = report.write_report(out, **inputs)
    assert path == os.path.join(out, "report.html")
    page = Page(open(path, encoding="utf-8").read())
    links = [attrs[name] for tag, attrs in page.tags for name in ("src", "href") if name in attrs]
    assert len(links) >= 7  # loss plot; per piece roll and MIDI; piece 1 audio, its fallback link, its WAV link
    for link in links:
        parsed = urllib.parse.urlparse(link)
        assert not parsed.scheme and not parsed.netloc and not link.startswith("/"), link
        assert (out / urllib.parse.unquote(parsed.path)).is_file(), link
    assert "my%20pieces/generated_2.png" in links


def test_report_has_no_script_and_no_external_url(run_folder):
    out, inputs = run_folder
    text = open(report.write_report(out, **inputs), encoding="utf-8").read()
    page = Page(text)
    assert not page.all("script") and not page.all("link")
    assert "http://" not in text and "https://" not in text
    assert len(page.all("style")) == 1


def test_report_escapes_every_string(run_folder):
    out, inputs = run_folder
    inputs["pieces"][0]["name"] = "piece <b>one</b> & \"two\""
    inputs["statistics_table"]["pieces"] = {piece["name"]: piece["statistics"] for piece in inputs["pieces"]}
    text = open(report.write_report(out, **inputs), encoding="utf-8").read()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    assert "<script" not in text and "<b>" not in text
    assert "piece <b>one</b> & \"two\"" in "".join(Page(text).text)


def test_report_shows_nll_against_baseline_and_the_pieces(run_folder):
    out, inputs = run_folder
    page = Page(open(report.write_report(out, **inputs), encoding="utf-8").read())
    text = " ".join(page.text)
    assert "0.26x" in text and "0.42x" in text  # 3.0 / 11.6 and 4.5 / 10.6
    assert [attrs["src"] for attrs in page.all("audio")] == ["generated_1.wav"]
    assert "no audio: generated_2.mid renders silent" in text
    assert {attrs["src"] for attrs in page.all("img")} == {"losses.png", "generated_1.png", "my%20pieces/generated_2.png"}


def test_flagged_statistic_is_marked_with_its_reason(run_folder):
    out, inputs = run_folder
    page = Page(open(report.write_report(out, **inputs), encoding="utf-8").read())
    flagged = [attrs for attrs in page.all("td") if "flag" in attrs.get("class", "").split()]
    assert len(flagged) == 1 and flagged[0]["title"] == "above the held-out range by 0.5"
    assert "above the held-out range by 0.5" in page.text
    assert "2.6" in page.text and "2 – 3" in page.text  # the held-out mean and range


def test_report_takes_the_drivers_table_with_reference_and_per_song_held_out(run_folder):
    out, inputs = run_folder
    table = inputs["statistics_table"]
    table["held_out"] = {"song_7": {"polyphony": 2.2, "distinct_pitches": 7}}  # per song: not shown
    page = Page(open(report.write_report(out, **inputs), encoding="utf-8").read())
    assert "2.6" in page.text and "2 – 3" in page.text and "song_7" not in page.text
    assert len([attrs for attrs in page.all("td") if "flag" in attrs.get("class", "").split()]) == 1


def test_report_builds_a_table_from_the_pieces_without_held_out_columns(run_folder):
    out, inputs = run_folder
    inputs["statistics_table"] = None
    text = open(report.write_report(out, **inputs), encoding="utf-8").read()
    assert "distinct_pitches" in text and "held-out mean" not in text and "held-out range" not in text


def test_report_says_what_is_missing(tmp_path):
    pieces = [{"name": "lost", "midi": str(tmp_path / "gone.mid"), "wav": None, "png": None}]
    metrics = {"test_frame_nll": float("nan"), "test_frame_nll_baseline": 10.0}
    text = open(report.write_report(tmp_path, settings={}, metrics=metrics, pieces=pieces, statistics_table=None,
                                    loss_plot=str(tmp_path / "none.png")), encoding="utf-8").read()
    for words in ("no piano-roll image", "no audio", "MIDI file missing", "no loss plot", "no settings recorded"):
        assert words in text
    assert not Page(text).all("img") and not Page(text).all("a")
    assert sorted(os.listdir(tmp_path)) == ["report.html"]


def test_numbers_are_shown_to_four_figures_and_nan_as_a_dash():
    assert report._text(math.pi) == "3.142" and report._text(float("nan")) == "—" and report._text(None) == "—"
    assert report._text(np.float32(0.5)) == "0.5" and report._text(12) == "12"


def test_long_rolls_keep_every_note_when_drawn_small():
    roll = np.zeros((100_000, 4), bool)
    roll[77_777, 2] = True  # one frame in 100,000
    pooled = report._pooled(roll)
    assert len(pooled) <= 2 * report.ROLL_SIZE[0] * report.DPI and pooled[:, 2].sum() == 1 and pooled.sum() == 1
    cells = np.ones((100_000, 1), np.uint8)
    cells[77_777] = 2  # one onset in a note held throughout
    pooled_cells = report._pooled(cells)
    assert np.count_nonzero(pooled_cells == 2) == 1 and (pooled_cells == 1).sum() == len(pooled_cells) - 1


# ------------------------------------------------------------------ the console table and a run's report

TABLE = {"statistics": ["polyphony", "longest_copy_bars"],
         "pieces": {"generated_1": {"polyphony": 3.0, "longest_copy_bars": 2.5},
                    "generated_2": {"polyphony": 2.25, "longest_copy_bars": 0.125}},
         "reference": {"polyphony": {"mean": 2.0, "min": 1.0, "max": 3.5},
                       "longest_copy_bars": {"mean": 0.5, "min": 0.25, "max": 0.75}},
         "flags": {"generated_1": {"longest_copy_bars": "above [0, 2]: copying"}}}


def test_the_console_table_marks_flags_and_explains_each(capsys):
    report.print_statistics(TABLE)
    assert capsys.readouterr().out.split("\n") == [
        "",
        "statistic                generated_1   generated_2   held-out songs: mean [min, max]",
        "polyphony                         3          2.25    2 [1, 3.5]",
        "longest_copy_bars               2.5!        0.125    0.5 [0.25, 0.75]  (flagged at 2 bars)",
        "warning: generated_1: longest_copy_bars 2.5 is above [0, 2]: copying",
        ""]


def test_the_console_table_says_when_nothing_is_flagged(capsys):
    report.print_statistics({**TABLE, "flags": {}})
    out = capsys.readouterr().out
    assert "!" not in out and "warning" not in out
    assert out.endswith("\nevery generated figure lies inside the held-out songs' range\n")


def test_a_runs_report_draws_each_piece_and_the_losses_and_links_them(tmp_path, capsys):
    settings = {"output_dir": str(tmp_path), "time_base": "beats", "steps_per_beat": 4, "steps_per_second": 8.0,
                "lowest_note": 21, "seed": 1}
    shown = []
    for number in (1, 2):
        midi = tmp_path / f"generated_{number}.mid"
        roll_to_midi(scale_roll(), midi, lowest_note=21, frames_per_beat=4, bpm=100, marker_frame=8)
        wav = str(write_wav(tmp_path / "generated_1.wav")) if number == 1 else None
        piece = {"name": f"generated_{number}", "midi": str(midi), "song": Song(scale_roll()), "primer_frames": 8,
                 "wav": wav, **({} if wav else {"wav_error": "no SoundFont here"})}
        shown.append(report.plot_piece(piece, TABLE, settings))
        assert shown[-1] == {**piece, "png": str(tmp_path / f"generated_{number}.png"),
                             "statistics": TABLE["pieces"][f"generated_{number}"]}
    metrics = {"valid_frame_nll": 3.0, "test_frame_nll": 4.5, "valid_frame_nll_baseline": 11.6,
               "test_frame_nll_baseline": 10.6, "history": {"loss": [9.0, 6.0], "val_frame_nll": [8.0, 6.5]}}
    page = report.report_run(shown, TABLE, metrics, settings)
    assert page == str(tmp_path / "report.html")
    assert capsys.readouterr().out.splitlines() == [
        f"wrote {tmp_path / 'generated_1.png'}", f"wrote {tmp_path / 'generated_2.png'}", f"wrote {tmp_path / 'loss.png'}",
        f"wrote {page} — open it in a browser to listen and look"]
    assert png_size(tmp_path / "generated_1.png") == png_size(tmp_path / "generated_2.png")
    text = open(page, encoding="utf-8").read()
    images = [attrs["src"] for attrs in Page(text).all("img")]
    assert images == ["loss.png", "generated_1.png", "generated_2.png"]
    assert [attrs["src"] for attrs in Page(text).all("audio")] == ["generated_1.wav"]
    assert "no audio: no SoundFont here" in text and "copying" in text


def test_report_says_which_instrument_velocity_and_tempo_were_written(run_folder):
    out, inputs = run_folder
    played = "Violin (General MIDI program 41) at velocity 80, 72 bpm (the primer's tempo)"
    pieces = [{**piece, "played": played} for piece in inputs["pieces"]]
    text = open(report.write_report(out, **{**inputs, "pieces": pieces}), encoding="utf-8").read()
    assert text.count('<p class="note">written for Violin (General MIDI program 41) at velocity 80, 72 bpm '
                      "(the primer&#x27;s tempo)</p>") == 1
    assert "written for" not in open(report.write_report(out, **inputs), encoding="utf-8").read()

"""Settings: read from the driver's source, overridden as --name=value, typed, checked, listed with their comments."""
import pytest

import configurator
from configurator import SettingsError, default_settings, help_text, read_settings_block, resolve_settings


def test_override_is_typed_like_its_default():
    defaults = default_settings()
    settings = resolve_settings(["--epochs=3", "--temperature=0.5", "--output_dir=x", "--save_mode=false"], defaults)
    assert (settings["epochs"], settings["temperature"], settings["output_dir"], settings["save_mode"]) == (3, 0.5, "x", False)
    assert defaults == default_settings()  # defaults untouched


@pytest.mark.parametrize("args, dropout", [([], 0.3), (["--max_minutes=4.9"], 0.3), (["--max_minutes=5"], 0.5),
                                           (["--max_minutes=30"], 0.5), (["--max_minutes=30", "--dropout=0.3"], 0.3),
                                           (["--dropout=0.2", "--max_minutes=30"], 0.2), (["--dropout=0.1"], 0.1)])
def test_a_budget_of_five_minutes_or_more_raises_the_dropout_unless_it_is_given(args, dropout):
    assert resolve_settings(args, default_settings())["dropout"] == dropout


def test_members_zero_trains_as_many_networks_as_the_budget_trains_fully():
    assert resolve_settings([], default_settings())["members"] == 0
    sample, chorales, quartets = 12_279, 11_506, 101_797  # training frames: the embedded sample, the benchmark corpora
    assert configurator.members_for_budget(4, sample) == 1  # the main job: one network
    assert [configurator.members_for_budget(minutes, chorales) for minutes in (5, 10, 20, 30)] == [1, 2, 4, 6]
    assert configurator.members_for_budget(30, quartets) == 1  # a larger corpus needs the budget for one network
    assert configurator.members_for_budget(4, 100) == 1  # below 5 minutes one network, however small the data
    assert configurator.members_for_budget(30, 100) == configurator.MOST_MEMBERS == 8 and configurator.members_for_budget(600, 0) == 8


def test_unknown_setting_is_refused_with_the_valid_names():
    with pytest.raises(SettingsError, match="unknown setting --epoch;.*epochs"):
        resolve_settings(["--epoch=3"], default_settings())


@pytest.mark.parametrize("arg", ["--epochs=three", "--time_base=bars", "--dropout=1.5", "epochs=3", "--learning_rate=-1",
                                 "--note_floor=1", "--note_floor=-0.1", "--members=-1", "--members=65"])
def test_bad_values_are_refused(arg):
    with pytest.raises(SettingsError):
        resolve_settings([arg], default_settings())


def test_the_finest_grid_is_what_a_midi_file_can_hold():
    most = 32767 // configurator.TICKS_PER_FRAME
    assert resolve_settings([f"--steps_per_beat={most}"], default_settings())["steps_per_beat"] == most
    with pytest.raises(SettingsError, match=f"steps_per_beat must be at most {most} "):
        resolve_settings([f"--steps_per_beat={most + 1}"], default_settings())


DRIVER = '''"""A driver.

    python driver.py
"""
import os

os.environ.setdefault("X", "1")  # not a setting

# ---------- settings
# data
data_path = "data/x.npz"  # where the data is; a '#' in a comment stays
tag = "a # b"             # a '#' in a value is no comment
# model
hidden_size = 256         # LSTM units
dropout = 0.3
resume = False            # True: continue

LIMIT = 10                # upper case: a constant, not a setting
_private = 1              # private
names = ["a"]             # not a bool, int, float or str


def main():
    epochs = 5  # inside a function
'''


def test_settings_are_the_top_level_plain_values_with_their_comments_and_headings(tmp_path):
    path = tmp_path / "driver.py"
    path.write_text(DRIVER)
    doc, settings = read_settings_block(str(path))
    assert doc == "A driver.\n\n    python driver.py\n"
    assert settings == [("data_path", "data/x.npz", "where the data is; a '#' in a comment stays", "data"),
                        ("tag", "a # b", "a '#' in a value is no comment", ""),
                        ("hidden_size", 256, "LSTM units", "model"),
                        ("dropout", 0.3, "", ""),
                        ("resume", False, "True: continue", "")]
    assert default_settings(str(path)) == {"data_path": "data/x.npz", "tag": "a # b", "hidden_size": 256,
                                           "dropout": 0.3, "resume": False}


def test_a_setting_written_as_an_expression_is_refused_with_its_line(tmp_path):
    path = tmp_path / "driver.py"
    path.write_text(DRIVER.replace("hidden_size = 256 ", "hidden_size = 2 ** 8"))
    with pytest.raises(SettingsError, match=r"driver.py, line 14: write the setting hidden_size as a plain value "
                                            r"\(a number, True / False or a quoted string\), not 2 \*\* 8$"):
        default_settings(str(path))


def test_help_shows_the_docstring_then_each_setting_with_its_default_and_comment(tmp_path):
    path = tmp_path / "driver.py"
    path.write_text(DRIVER)
    assert help_text(str(path)).splitlines() == [
        "A driver.", "", "    python driver.py", "", "settings (defaults):",
        " data:",
        "  --data_path=data/x.npz  # where the data is; a '#' in a comment stays",
        "  --tag=a # b             # a '#' in a value is no comment",
        " model:",
        "  --hidden_size=256       # LSTM units",
        "  --dropout=0.3",
        "  --resume=False          # True: continue"]


def test_help_gives_every_setting_of_the_driver_its_comment():
    _, settings = read_settings_block()
    assert len(settings) > 40 and all(comment for _, _, comment, _ in settings)
    shown = help_text()
    for name, value, comment, _ in settings:
        assert f"--{name}={value}" in shown and f"# {comment}\n" in shown + "\n"


def test_home_and_environment_variables_are_expanded_in_path_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("MUSIC", str(tmp_path / "music"))
    settings = resolve_settings(["--data_path=~/midi", "--output_dir=$MUSIC/out", "--cache_dir=~/cache",
                                 "--primer_path=${MUSIC}/opening.mid", "--split_path=~/split.json", "--soundfont=~/gm.sf2"],
                                default_settings())
    assert settings["data_path"] == str(tmp_path / "midi") and settings["cache_dir"] == str(tmp_path / "cache")
    assert settings["output_dir"] == str(tmp_path / "music" / "out")
    assert settings["primer_path"] == str(tmp_path / "music" / "opening.mid")
    assert (settings["split_path"], settings["soundfont"]) == (str(tmp_path / "split.json"), str(tmp_path / "gm.sf2"))
    assert resolve_settings(["--epochs=1"], default_settings())["primer_path"] == ""  # empty stays empty


def test_instrument_velocity_and_tempo_defaults_are_piano_80_and_the_primers_tempo():
    defaults = default_settings()
    assert (defaults["instrument"], defaults["velocity"], defaults["bpm"]) == ("piano", 80, 0.0)


@pytest.mark.parametrize("arg", ["--instrument=Violin", "--instrument=41", "--instrument=data", "--instrument=DATA",
                                 "--instrument=string ensemble 1", "--velocity=1", "--velocity=127", "--bpm=4",
                                 "--bpm=1000", "--bpm=0"])
def test_instruments_velocities_and_tempos_that_can_be_written_are_accepted(arg):
    resolve_settings([arg], default_settings())


@pytest.mark.parametrize("arg, message", [
    ("--instrument=kazoo", "instrument must be a General MIDI program name (such as piano, violin, strings or "
                           "'acoustic grand piano'), a program number 1-128 or data, not 'kazoo'"),
    ("--instrument=0", "instrument must be a General MIDI program name"),
    ("--instrument=129", "instrument must be a General MIDI program name"),
    ("--velocity=0", "velocity must be between 1 and 127, not 0"),
    ("--velocity=128", "velocity must be between 1 and 127, not 128"),
    ("--bpm=3", "bpm must be between 4 and 1000 (or 0: the primer's tempo, else 100), not 3.0"),
    ("--bpm=-100", "bpm must be between 4 and 1000"),
])
def test_instruments_velocities_and_tempos_that_cannot_be_written_are_refused_in_one_line(arg, message):
    with pytest.raises(SettingsError) as refusal:
        resolve_settings([arg], default_settings())
    assert str(refusal.value).startswith(message) and "\n" not in str(refusal.value)

"""models/sample.keras, the model that ships: it is what models/README.md says, and it composes from the command line."""
import json
import os

import pytest

import classically_deep as cd
import saved_models
import sources
from configurator import default_settings, members_for_budget
from songs import load_songs
from training import evaluate
from conftest import timed_messages

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = os.path.join(ROOT, "models", "sample.keras")
SAMPLE = os.path.join(ROOT, "data", "sample.npz")
TEST_FRAME_NLL = 4.253  # on the sample's four test songs, as models/README.md says (nats)


def test_the_shipped_model_is_a_few_mb_and_holds_the_default_roll_and_model_settings():
    saved = saved_models.read_model_file(SHIPPED)
    defaults = default_settings(cd.__file__)
    values = saved_models.model_values(saved)
    assert values == {**{name: defaults[name] for name in values}, "members": 1}  # --model_path needs no other setting
    assert defaults["members"] == 0 and members_for_budget(defaults["max_minutes"], 12_279) == 1  # one, as it trains
    assert values["onsets"] is True and values["meter"] is True   # it strikes keys again and knows the bar line
    assert os.path.getsize(SHIPPED) < 8e6


def test_the_shipped_model_scores_the_samples_test_songs_as_its_readme_says(tmp_path):
    settings = {**default_settings(cd.__file__), "data_path": SAMPLE, "cache_dir": str(tmp_path)}
    parts, _, _ = load_songs(sources.open_source(SAMPLE), settings)
    metrics = evaluate(saved_models.load_model(saved_models.read_model_file(SHIPPED)), parts)
    assert metrics["test_frame_nll"] == pytest.approx(TEST_FRAME_NLL, abs=0.005)
    assert metrics["test_frame_nll"] < metrics["test_frame_nll_baseline"] / 2


def test_the_shipped_model_composes_a_piano_piece_through_the_command_line(tmp_path, capsys):
    out = tmp_path / "out"
    assert cd.main([f"--model_path={SHIPPED}", f"--data_path={SAMPLE}", f"--cache_dir={tmp_path / 'cache'}",
                    f"--output_dir={out}", "--num_outputs=1", "--generate_frames=64"]) == 0
    assert f"composing with {SHIPPED}, not trained in this run\n" in capsys.readouterr().out
    assert sorted(os.listdir(out)) == ["generated_1.mid", "generated_1.png", "generated_1.wav", "metrics.json",
                                       "report.html", "settings.json"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model_path"] == SHIPPED and metrics["trained_in_this_run"] is False
    piece = metrics["statistics"]["pieces"]["generated_1"]
    # music in a key, in a few voices (an untrained model: scale 0.6, polyphony 7, every one of the 88 keys)
    assert piece["scale_consistency"] > 0.75 and 1.5 < piece["polyphony"] < 5 and piece["distinct_pitches"] < 50
    messages = [message for message, _ in timed_messages(out / "generated_1.mid")]
    assert [message.program for message in messages if message.type == "program_change"] == [0]  # piano
    assert sum(message.type == "note_on" and message.velocity > 0 for message in messages) > 20

"""The command line end to end: a tiny run through main(), its files and determinism, --help, refusals of bad
input as one line on stderr, and TensorFlow's start-up notices kept out of the log."""
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import wave

import mido
import numpy as np
import pytest
from intervaltree import IntervalTree

import classically_deep as cd
import configurator
import midi_io
import rolls
import saved_models
from conftest import chord_song, musicnet_entry, quick_args, refused, score_notes, timed_messages
from midi_io import midi_to_roll

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_bad_setting_on_the_command_line_is_a_one_line_error(capsys):
    assert cd.main(["--epochs=many"]) == 2
    assert capsys.readouterr().err.strip() == "error: --epochs needs a int value, not 'many'"


def test_missing_explicit_data_path_is_an_error(tmp_path, capsys):
    assert cd.main([f"--data_path={tmp_path / 'nope.npz'}", f"--output_dir={tmp_path}"]) == 2
    assert "nope.npz not found" in capsys.readouterr().err



def run_tiny(tmp_path, name):
    """Run the command line on a tiny archive of chord songs → its output folder."""
    data = tmp_path / "tiny.npz"
    if not data.exists():
        np.savez(data, **{f"{i:04d}": musicnet_entry(chord_song(i, 6)) for i in range(8)},
                 **{"0099": musicnet_entry(IntervalTree())})
    out = tmp_path / name
    code = cd.main([f"--data_path={data}", f"--output_dir={out}", f"--cache_dir={tmp_path / 'cache'}",
                    "--time_base=seconds", "--steps_per_second=4", "--epochs=20", "--hidden_size=16",
                    "--head_size=8", "--seq_len=16", "--batch_size=4", "--primer_frames=8",
                    "--generate_frames=12", "--num_outputs=2", "--ema=0"])  # ~90 steps: too few for an average
    assert code == 0
    return out


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """Two runs with the same settings and seed, under umask 022."""
    tmp_path = tmp_path_factory.mktemp("tiny")
    old_umask = os.umask(0o022)
    try:
        return run_tiny(tmp_path, "first"), run_tiny(tmp_path, "second")
    finally:
        os.umask(old_umask)


def test_tiny_end_to_end_run_writes_midi_metrics_and_settings(tiny_runs):
    out, _ = tiny_runs
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"valid_frame_nll", "test_frame_nll", "test_frame_nll_baseline"} <= set(metrics)
    assert {"valid_onset_nll", "test_onset_nll"} <= set(metrics)  # the onsets' NLL beside the sounding keys'
    assert all(0 < metrics[name] < float("inf") for name in ("valid_onset_nll", "test_onset_nll"))
    assert json.loads((out / "settings.json").read_text())["epochs"] == 20
    assert (out / "best.keras").exists()
    for number in (1, 2):
        path = out / f"generated_{number}.mid"
        roll = midi_to_roll(path, lowest_note=21, highest_note=108, frames_per_second=4).roll
        assert roll.shape == (8 + 12, 88)  # the primer, then the continuation
        markers = [(message.text, tick) for message, tick in timed_messages(path) if message.type == "marker"]
        assert markers == [("model continues", 8 * midi_io.TICKS_PER_FRAME)]
        with wave.open(str(out / f"generated_{number}.wav")) as audio:  # as long as the MIDI, plus its release
            assert 5.0 <= audio.getnframes() / audio.getframerate() <= 6.0
        assert (out / f"generated_{number}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(metrics["statistics"]["pieces"]) == {"generated_1", "generated_2"}
    assert "pitch_class_entropy" in metrics["statistics"]["reference"]
    page = (out / "report.html").read_text()
    assert 'src="generated_1.wav"' in page and 'src="loss.png"' in page


def test_files_a_run_writes_have_ordinary_permissions(tiny_runs):
    out = tiny_runs[0]
    written = [out / "settings.json", out / "metrics.json", out / "best.keras", out / "generated_1.mid",
               *(out.parent / "cache").glob("rolls-*.npz")]
    assert len(written) == 5
    modes = {path.name: oct(stat.S_IMODE(path.stat().st_mode)) for path in written}
    assert modes == {path.name: oct(0o666 & ~0o022) for path in written}
    assert not [path.name for path in out.iterdir() if path.name.startswith(".")]  # no temporary files left


def test_a_finished_run_leaves_no_resume_checkpoint(tiny_runs):
    assert not (tiny_runs[0] / "resume.json").exists() and not (tiny_runs[0] / "resume.keras").exists()


def test_tiny_run_learns_the_chord_pattern_beyond_key_frequencies(tiny_runs):
    metrics = json.loads((tiny_runs[0] / "metrics.json").read_text())
    assert metrics["test_frame_nll"] < metrics["test_frame_nll_baseline"]


def test_same_seed_gives_the_same_run(tiny_runs):
    first, second = (json.loads((out / "metrics.json").read_text()) for out in tiny_runs)
    assert (first["valid_frame_nll"], first["test_frame_nll"]) == (second["valid_frame_nll"], second["test_frame_nll"])
    assert first["test_onset_nll"] == second["test_onset_nll"]
    for number in (1, 2):
        assert (tiny_runs[0] / f"generated_{number}.mid").read_bytes() == (tiny_runs[1] / f"generated_{number}.mid").read_bytes()



def test_help_lists_every_setting(capsys):
    assert cd.main(["--help"]) == 0
    printed = capsys.readouterr().out
    assert all(f"--{name}=" in printed for name in configurator.default_settings(cd.__file__))


def test_the_settings_read_from_the_source_are_the_drivers_globals_in_order():
    written = {name: value for name, value in vars(cd).items()
               if not name.startswith("_") and isinstance(value, (bool, int, float, str))}
    assert list(configurator.default_settings(cd.__file__).items()) == list(written.items())


# ------------------------------------------------------------------ refusals: one line on stderr, exit 2

@pytest.mark.parametrize("arg", ["--max_minutes=nan", "--max_minutes=inf", "--steps_per_second=inf",
                                 "--learning_rate=nan", "--temperature=inf", "--bpm=nan", "--dropout=nan",
                                 "--max_member_mb=inf"])
def test_numbers_that_are_not_finite_are_refused(arg, tmp_path, capsys):
    name = arg[2:].split("=")[0]
    assert f"{name} must be a finite number" in refused(capsys, [arg, f"--output_dir={tmp_path / 'out'}"])
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("arg, message", [
    ("--seed=-1", "seed must be between 0 and 4294967295"),
    (f"--seed={2 ** 32}", "seed must be between 0 and 4294967295"),
    ("--steps_per_second=1000", "steps_per_second must be at most 273"),
    ("--steps_per_beat=500", "steps_per_beat must be at most 273"),
    ("--bpm=100000", "bpm must be between 4 and 1000"),
    ("--max_member_mb=0", "max_member_mb must be positive"),
    ("--max_frames=0", "max_frames must be positive"),
    ("--epochs=-1", "epochs must not be negative"),  # 0 preprocesses only
    ("--hidden_size=10000000", "hidden_size must be at most 4096"),
    ("--output_dir=", "output_dir must not be empty"),
])
def test_numbers_out_of_range_are_refused(arg, message, capsys):
    assert message in refused(capsys, [arg])


def test_output_dir_that_is_a_file_is_refused_before_preprocessing(tiny_archive, tmp_path, capsys):
    (tmp_path / "out").write_text("not a folder")
    err = refused(capsys, quick_args(tiny_archive, tmp_path))
    assert "cannot create output folder" in err and "a file is in the way" in err
    assert not (tmp_path / "cache").exists()


def test_output_dir_under_a_file_is_refused(tiny_archive, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert "cannot create output folder" in refused(capsys, quick_args(tiny_archive, tmp_path,
                                                                       f"--output_dir={tmp_path / 'file' / 'out'}"))


def test_cache_dir_that_cannot_be_created_is_refused(tiny_archive, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    err = refused(capsys, quick_args(tiny_archive, tmp_path, f"--cache_dir={tmp_path / 'file' / 'cache'}"))
    assert "cannot create cache folder" in err


def test_a_fifo_as_data_path_is_refused_without_opening_it(tmp_path, capsys):
    os.mkfifo(tmp_path / "data.npz")  # opening it would block until a writer came
    assert "is not a regular file" in refused(capsys, quick_args(tmp_path / "data.npz", tmp_path))


def test_a_folder_without_midi_files_or_a_csv_release_is_refused(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.txt").write_text("hello")
    assert "holds no .mid or .midi files" in refused(capsys, quick_args(tmp_path / "data", tmp_path))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_data_path_is_refused(tiny_archive, tmp_path, capsys):
    data = tmp_path / "data.npz"
    data.write_bytes(tiny_archive.read_bytes())
    data.chmod(0)
    assert "permission denied" in refused(capsys, quick_args(data, tmp_path))


def test_a_missing_split_file_is_refused(tiny_archive, tmp_path, capsys):
    err = refused(capsys, quick_args(tiny_archive, tmp_path, f"--split_path={tmp_path / 'split.json'}"))
    assert "split.json not found" in err
    assert not (tmp_path / "cache").exists()  # refused before the preprocessing


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_a_split_path_that_is_not_a_file_is_refused(kind, tiny_archive, tmp_path, capsys):
    path = tmp_path / "split.json"
    path.mkdir() if kind == "folder" else os.mkfifo(path)
    assert "split file" in refused(capsys, quick_args(tiny_archive, tmp_path, f"--split_path={path}"))


def test_a_split_with_a_test_recording_also_in_train_is_refused_naming_it(tiny_archive, tmp_path, capsys):
    path = tmp_path / "split.json"
    path.write_text(json.dumps({"train": ["0001", "0002", "0003"], "valid": ["0004"], "test": ["0003", "0005"]}))
    err = refused(capsys, quick_args(tiny_archive, tmp_path, f"--split_path={path}"))
    assert "more than once: 0003 (train and test)" in err


@pytest.mark.parametrize("content", ['["0001"]', '{"train": ["0001"], "valid": ["0002"]}',
                                     '{"train": "0001", "valid": ["0002"], "test": ["0003"]}',
                                     '{"train": [1.5], "valid": ["0002"], "test": ["0003"]}',
                                     '{"train": [true], "valid": ["0002"], "test": ["0003"]}',
                                     '{"train": [["0001"]], "valid": ["0002"], "test": ["0003"]}',
                                     '{"train": ["0001"', "[" * 100_000])
def test_a_malformed_split_file_is_refused(content, tiny_archive, tmp_path, capsys):
    path = tmp_path / "split.json"
    path.write_text(content)
    assert "split file" in refused(capsys, quick_args(tiny_archive, tmp_path, f"--split_path={path}"))



def test_a_folder_where_settings_json_goes_is_a_one_line_error(tiny_archive, tmp_path, capsys):
    (tmp_path / "out" / "settings.json").mkdir(parents=True)
    assert cd.main(quick_args(tiny_archive, tmp_path)) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "settings.json" in err, err



def test_a_training_error_is_a_one_line_error(monkeypatch, tmp_path, capsys):
    import training

    def diverge(settings):
        raise training.TrainingError("no epoch gave a finite validation NLL")

    monkeypatch.setattr(cd, "run", diverge)
    assert cd.main([f"--output_dir={tmp_path}"]) == 2
    assert capsys.readouterr().err == "error: no epoch gave a finite validation NLL\n"


# ------------------------------------------------------------------ TensorFlow's start-up notices

NOTICES = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
           "I0000 00:00:1796084341.403100    2082 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
           "GPU will not be used.\n")
HELD_BACK = f"""
import os, warnings
import classically_deep as cd
with cd.native_notices_held_back():
    {{body}}
    os.write(2, {NOTICES!r}.encode() * 2)
    os.write(2, b"E0000 00:00:1.5 7 kernel.cc:12] a real error\\n")
    warnings.warn("a Python warning")
"""


@pytest.mark.parametrize("body", ["pass", "import keras"], ids=["notices", "importing_keras"])
def test_native_start_up_notices_are_dropped_and_errors_and_python_warnings_kept(body):
    finished = subprocess.run([sys.executable, "-c", HELD_BACK.replace("{body}", body)], cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert "InitializeLog" not in finished.stderr and "cudart_stub" not in finished.stderr, finished.stderr
    assert "E0000 00:00:1.5 7 kernel.cc:12] a real error\n" in finished.stderr
    assert "UserWarning: a Python warning" in finished.stderr


# ------------------------------------------------------------------ one corpus in three formats, primers, epochs=0

TINY = ["--epochs=6", "--hidden_size=16", "--head_size=8", "--seq_len=16", "--batch_size=4", "--primer_frames=8",
        "--generate_frames=8", "--num_outputs=1", "--max_minutes=2", "--steps_per_beat=2"]


def test_one_corpus_in_three_formats_gives_the_same_test_nll(three_ways, tmp_path):
    paths, split = three_ways
    metrics = {}
    for kind, path in paths.items():
        out = tmp_path / kind
        # meter off: the CSV release has no bar lines, while a MIDI file always has a meter (4/4 when it says none)
        assert cd.main([f"--data_path={path}", f"--split_path={split}", f"--output_dir={out}",
                        f"--cache_dir={tmp_path / 'cache'}", *TINY, "--meter=False"]) == 0
        metrics[kind] = json.loads((out / "metrics.json").read_text())
    assert metrics["npz"]["test_frame_nll"] == metrics["csv"]["test_frame_nll"] == metrics["midi"]["test_frame_nll"]
    assert metrics["npz"]["test_onset_nll"] == metrics["csv"]["test_onset_nll"] == metrics["midi"]["test_onset_nll"]
    assert metrics["npz"]["test_songs"] == ["1006", "1007"]


# ------------------------------------------------------------------ primers


def test_a_users_midi_primes_generation_and_opens_the_result(three_ways, tmp_path):
    paths, split = three_ways
    primer = tmp_path / "mine.mid"
    midi_io.notes_to_midi(score_notes((62, 0, 2), (66, 0, 2), (69, 2, 2), (74, 3, 1)), primer)
    out = tmp_path / "out"
    assert cd.main([f"--data_path={paths['npz']}", f"--split_path={split}", f"--output_dir={out}",
                    f"--cache_dir={tmp_path / 'cache'}", f"--primer_path={primer}", *TINY]) == 0
    written = midi_io.midi_to_notes(out / "generated_1.mid")
    settings = configurator.resolve_settings(TINY, configurator.default_settings())
    expected = rolls.organize_song(midi_io.midi_to_notes(primer), **settings)[:8]
    generated = rolls.organize_song(written, **settings)[:8]
    for field in ("roll", "onsets", "meter"):  # the primer's notes, each struck where it was, in its bars
        np.testing.assert_array_equal(getattr(generated, field), getattr(expected, field))
    marker_ticks = [tick for message, tick in timed_messages(out / "generated_1.mid") if message.type == "marker"]
    assert marker_ticks == [8 * midi_io.TICKS_PER_FRAME]


def test_a_primer_without_notes_in_range_is_a_clear_error(three_ways, tmp_path, capsys):
    paths, split = three_ways
    primer = tmp_path / "high.mid"
    midi_io.notes_to_midi(score_notes((120, 0, 4)), primer)
    code = cd.main([f"--data_path={paths['npz']}", f"--split_path={split}", f"--output_dir={tmp_path / 'out'}",
                    f"--primer_path={primer}", *TINY])
    err = capsys.readouterr().err
    assert code == 2 and "has no notes between MIDI 21 and 108" in err and err.count("\n") == 1


def test_epochs_zero_writes_the_cache_and_no_model(tmp_path):
    command = [sys.executable, os.path.join(ROOT, "classically_deep.py"), "--epochs=0",
               f"--output_dir={tmp_path / 'out'}", f"--cache_dir={tmp_path / 'cache'}"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(os.listdir(tmp_path / "cache")) == 1 and os.listdir(tmp_path / "cache")[0].startswith("rolls-")
    assert sorted(os.listdir(tmp_path / "out")) == ["settings.json"]  # no checkpoint, metrics or MIDI
    assert "epochs=0: preprocessing only, nothing trained" in done.stdout
    assert "labels" in done.stdout and "28 train recordings" in done.stdout


@pytest.mark.parametrize("chosen, backend", [(None, "jax"), ("tensorflow", "tensorflow")])
def test_the_command_line_trains_on_jax_unless_keras_backend_says_otherwise(chosen, backend, tiny_archive, tmp_path):
    env = {name: value for name, value in os.environ.items() if name != "KERAS_BACKEND"}
    env.update({"KERAS_BACKEND": chosen} if chosen else {})
    command = [sys.executable, os.path.join(ROOT, "classically_deep.py"), *quick_args(tiny_archive, tmp_path),
               "--epochs=1", "--hidden_size=8", "--head_size=4", "--seq_len=8", "--num_outputs=0"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"Keras backend: {backend}\n" in done.stdout and "test frame NLL" in done.stdout


# ------------------------------------------------------------------ a rerun keeps the earlier run

def test_a_rerun_keeps_the_earlier_runs_model_and_pieces_in_earlier_n(tiny_archive, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    quick = ["--epochs=2", "--hidden_size=8", "--head_size=4", "--seq_len=8", "--batch_size=4", "--primer_frames=4",
             "--generate_frames=4", "--num_outputs=1"]
    models = []
    for seed in (1, 2):
        assert cd.main(quick_args(tiny_archive, tmp_path, *quick, f"--seed={seed}")) == 0
        models.append((out / "best.keras").read_bytes())
    assert f"kept the earlier run in {out / 'earlier' / '1'}\n" in capsys.readouterr().out
    assert (out / "earlier" / "1" / "best.keras").read_bytes() == models[0] != models[1]
    assert (out / "earlier" / "1" / "generated_1.mid").exists() and (out / "generated_1.mid").exists()
    seeds = [json.loads((folder / "settings.json").read_text())["seed"] for folder in (out / "earlier" / "1", out)]
    assert seeds == [1, 2]
    assert cd.main(quick_args(tiny_archive, tmp_path, "--epochs=0")) == 0  # a third run keeps the second
    assert (out / "earlier" / "2" / "best.keras").read_bytes() == models[1]
    assert sorted(os.listdir(out)) == ["earlier", "notes.txt", "settings.json"]
    assert sorted(os.listdir(out / "earlier")) == ["1", "2"]
    assert (out / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("refusal", ["interrupted run", "missing split file"])
def test_a_refused_run_moves_nothing(refusal, tiny_archive, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    interrupted = ["resume.json"] if refusal == "interrupted run" else []
    for name in ("settings.json", "best.keras", "generated_1.mid", *interrupted):
        (out / name).write_text(name)
    refused(capsys, quick_args(tiny_archive, tmp_path, *([f"--split_path={tmp_path / 'split.json'}"]
                                                         if refusal == "missing split file" else [])))
    assert not (out / "earlier").exists() and (out / "best.keras").read_text() == "best.keras"


def test_only_the_writing_process_keeps_the_earlier_run(tiny_archive, tmp_path, monkeypatch):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "best.keras").write_text("earlier")
    monkeypatch.setattr(cd, "start_distribution", lambda settings: 1)  # process 1 of a distributed run
    settings = configurator.resolve_settings(quick_args(tiny_archive, tmp_path),
                                             configurator.default_settings(cd.__file__))
    assert cd.prepare_data(settings)[0] is False
    assert os.listdir(tmp_path / "out") == ["best.keras"]


# ------------------------------------------------------------------ small and sloppy inputs, what is played

@pytest.mark.parametrize("count", [1, 2])
def test_one_or_two_midi_files_under_home_train_and_compose_for_the_instrument_asked(count, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "midi").mkdir()
    for number in range(count):
        notes = score_notes(*((48 + number + step % 12, step / 2, 0.5) for step in range(80)), bpm=72.0)  # 160 frames
        midi_io.notes_to_midi(notes, tmp_path / "midi" / f"piece{number}.mid", bpm=72.0)
    data = "~/midi/piece0.mid" if count == 1 else "$HOME/midi"
    assert cd.main([f"--data_path={data}", "--output_dir=~/out", "--cache_dir=~/cache", "--epochs=2", "--hidden_size=8",
                    "--head_size=4", "--seq_len=8", "--batch_size=4", "--primer_frames=4", "--generate_frames=4",
                    "--num_outputs=1", "--instrument=Cello", "--velocity=90", "--primer_path=~/midi/piece0.mid"]) == 0
    said = capsys.readouterr().out
    assert re.search(r"\ntest frame NLL [\d.]+ nats of the sounding keys \(independent-Bernoulli baseline [\d.]+\); "
                     r"onset NLL [\d.]+ beside it; ", said)
    assert f"note: {count} usable recording(s) are too few to split into train, valid and test recordings" in said
    assert "the pieces are written for Cello (General MIDI program 43) at velocity 90, 72 bpm (the primer's tempo)\n" in said
    messages = [message for message, _ in timed_messages(tmp_path / "out" / "generated_1.mid")]
    assert [message.program for message in messages if message.type == "program_change"] == [42]  # 0-based: cello
    assert {message.velocity for message in messages if message.type == "note_on"} <= {90}
    assert [message.tempo for message in messages if message.type == "set_tempo"] == [mido.bpm2tempo(72.0)]
    assert "written for Cello (General MIDI program 43)" in (tmp_path / "out" / "report.html").read_text()


def test_a_mistyped_midi_folder_is_named_as_a_folder_not_answered_with_musicnet(tmp_path, capsys):
    err = refused(capsys, quick_args(tmp_path / "my midi", tmp_path))
    assert err == f"error: folder {tmp_path / 'my midi'} not found; pass --data_path=... (a MIDI file or folder, " \
                  "a MusicNet npz archive or CSV release folder)\n"


def test_held_out_songs_too_short_to_prime_a_piece_are_refused_before_training(tmp_path, capsys):
    midi_io.notes_to_midi(score_notes(*((60 + step % 5, step / 2, 0.5) for step in range(40))), tmp_path / "short.mid")
    assert cd.main(quick_args(tmp_path / "short.mid", tmp_path, "--time_base=beats", "--primer_frames=32")) == 2
    assert capsys.readouterr().err.endswith("\nerror: no held-out song has primer_frames=32 frames (the longest has 8): "
                                            "pass a smaller --primer_frames or a --primer_path\n")  # after the progress bar
    assert not (tmp_path / "out" / "best.keras").exists()


# ------------------------------------------------------------------ composing with a trained model, training from one

def compose_with(model_run, name, *extra):
    """Compose with a tiny run's model, primed by the held-out songs of its data, into a folder beside it → the folder."""
    out = model_run.parent / name
    assert cd.main([f"--model_path={model_run}", f"--data_path={model_run.parent / 'tiny.npz'}", f"--output_dir={out}",
                    f"--cache_dir={model_run.parent / 'cache'}", "--primer_frames=8", "--generate_frames=12",
                    "--num_outputs=2", *extra]) == 0
    return out


@pytest.fixture(scope="module")
def composed(tiny_runs):
    """Two compose-only runs with the first tiny run's model: the default sample_seed, then sample_seed 7."""
    return compose_with(tiny_runs[0], "again"), compose_with(tiny_runs[0], "other", "--sample_seed=7")


def test_a_saved_model_composes_the_training_runs_pieces_again_for_its_sample_seed_and_others_for_another(
        tiny_runs, composed):
    again, other = composed
    for number in (1, 2):
        assert (again / f"generated_{number}.mid").read_bytes() == (tiny_runs[0] / f"generated_{number}.mid").read_bytes()
    assert any((other / f"generated_{number}.mid").read_bytes() != (again / f"generated_{number}.mid").read_bytes()
               for number in (1, 2))


def test_composing_with_a_saved_model_restores_its_roll_settings_and_says_nothing_was_trained(tiny_runs, composed):
    out = composed[0]
    settings = json.loads((out / "settings.json").read_text())
    assert (settings["time_base"], settings["steps_per_second"], settings["hidden_size"]) == ("seconds", 4.0, 16)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["trained_in_this_run"] is False and set(metrics["statistics"]["pieces"]) == {"generated_1", "generated_2"}
    page = (out / "report.html").read_text()
    assert f"composed with the trained model {tiny_runs[0] / 'best.keras'}; no model was trained in this run" in page
    assert (out / "generated_2.wav").exists() and (out / "generated_2.png").exists()
    assert not (out / "loss.png").exists() and not (out / "best.keras").exists()


def test_a_bare_model_file_composes_from_a_primer_without_any_data(tiny_runs, tmp_path):
    (tmp_path / "shipped.keras").write_bytes((tiny_runs[0] / "best.keras").read_bytes())
    midi_io.notes_to_midi(score_notes((60, 0, 2), (64, 0, 2), (67, 2, 2)), tmp_path / "primer.mid")
    assert cd.main([f"--model_path={tmp_path / 'shipped.keras'}", f"--primer_path={tmp_path / 'primer.mid'}",
                    f"--data_path={tmp_path / 'no data'}", f"--output_dir={tmp_path / 'out'}", "--primer_frames=8",
                    "--generate_frames=12", "--num_outputs=1"]) == 0
    roll = midi_to_roll(tmp_path / "out" / "generated_1.mid", lowest_note=21, highest_note=108, frames_per_second=4).roll
    assert roll.shape == (20, 88) and roll[:4, [60 - 21, 64 - 21]].all()  # the primer's chord, then the model's
    assert "statistics" not in json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert "no statistics" in (tmp_path / "out" / "report.html").read_text()


@pytest.mark.parametrize("arg, message", [("--lowest_note=36", "lowest_note=36 (the model's: 21)"),
                                          ("--steps_per_second=2", "steps_per_second=2.0 (the model's: 4.0)"),
                                          ("--head=sigmoid", "head='sigmoid' (the model's: 'nade')"),
                                          ("--onsets=False", "onsets=False (the model's: True)"),
                                          ("--meter=False", "meter=False (the model's: True)")])
def test_settings_a_saved_model_cannot_compose_with_are_refused_in_one_line(tiny_runs, arg, message, tmp_path, capsys):
    err = refused(capsys, [f"--model_path={tiny_runs[0]}", f"--output_dir={tmp_path / 'out'}", arg])
    assert f"model_path {tiny_runs[0] / 'best.keras'} was trained with other settings than {message}" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, message", [
    (["--resume=True"], "model_path composes with a trained model and trains nothing: leave out --resume"),
    (["--sample_seed=-1"], "sample_seed must be between 0 and 4294967295"),
])
def test_composing_where_it_cannot_be_done_is_refused_in_one_line(tiny_runs, args, message, capsys):
    run = tiny_runs[0]
    assert message in refused(capsys, [f"--model_path={run}", *(arg.format(run=run) for arg in args)])
    assert (run / "best.keras").exists()


def test_composing_from_the_run_in_output_dir_keeps_that_run_and_composes_from_it(tiny_runs, tmp_path, capsys):
    run = tmp_path / "output"
    shutil.copytree(tiny_runs[0], run)
    model = (run / "best.keras").read_bytes()
    assert cd.main([f"--model_path={run}", f"--output_dir={run}", "--num_outputs=1"]) == 0
    assert f"composing with {run / 'earlier' / '1' / 'best.keras'}, not trained in this run" in capsys.readouterr().out
    assert (run / "earlier" / "1" / "best.keras").read_bytes() == model and not (run / "best.keras").exists()
    assert (run / "generated_1.mid").exists() and not (run / "generated_2.mid").exists()


def test_training_from_the_run_in_output_dir_is_refused_in_one_line(tiny_runs, tmp_path, capsys):
    run = tmp_path / "output"
    shutil.copytree(tiny_runs[0], run)
    err = refused(capsys, [f"--init_from={run}", f"--output_dir={run}"])
    assert f"init_from {run / 'best.keras'} lies in output_dir" in err
    assert (run / "best.keras").exists() and not (run / "earlier").exists()


def test_training_from_a_saved_models_weights_on_other_data_starts_where_it_ended(tiny_runs, three_ways, tmp_path,
                                                                                   capsys):
    paths, split = three_ways
    assert cd.main([f"--init_from={tiny_runs[0]}", f"--data_path={paths['midi']}", f"--split_path={split}",
                    f"--output_dir={tmp_path / 'out'}", f"--cache_dir={tmp_path / 'cache'}", "--epochs=1",
                    "--learning_rate=1e-9", "--ema=0", "--seq_len=16", "--batch_size=4", "--num_outputs=0"]) == 0
    assert f"training starts from the weights of {tiny_runs[0] / 'best.keras'}" in capsys.readouterr().out
    settings = json.loads((tmp_path / "out" / "settings.json").read_text())
    assert (settings["time_base"], settings["hidden_size"], settings["head_size"]) == ("seconds", 16, 8)
    start, tuned = (saved_models.load_model(saved_models.read_model_file(str(path))).get_weights()
                    for path in (tiny_runs[0], tmp_path / "out"))
    for before, after in zip(start, tuned):
        np.testing.assert_allclose(after, before, atol=1e-5)  # a step of 1e-9 moves no weight far from the start


def test_training_from_a_model_of_another_size_is_refused_in_one_line(tiny_runs, tmp_path, capsys):
    err = refused(capsys, [f"--init_from={tiny_runs[0]}", "--hidden_size=32", f"--output_dir={tmp_path / 'out'}"])
    assert f"init_from {tiny_runs[0] / 'best.keras'} was trained with other settings than hidden_size=32" in err

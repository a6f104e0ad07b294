"""Training: the fit loop ends on the epoch count, on patience or on the time budget, and the log says which;
the Bernoulli baseline, transposition, training windows, and a loss that stops being finite."""
import re

import keras
import numpy as np
import pytest

import classically_deep as cd
import training
from configurator import default_settings
from conftest import quick_args

SETTINGS = {"hidden_size": 16, "num_layers": 1, "dropout": 0.3, "head": "nade", "head_size": 8, "pitch_profile": True,
            "ema": 0, "learning_rate": 1e-2, "seq_len": 16, "batch_size": 4, "seed": 1234, "transpose_range": 6,
            "epochs": 30, "max_minutes": 60.0, "patience": 1000}


def chord_rolls():
    """Four (40, 88) bool rolls: a three-note chord each, silent every fourth frame."""
    songs = [np.zeros((40, 88), bool) for _ in range(4)]
    for i, roll in enumerate(songs):
        roll[:, [40 + i, 44 + i, 47 + i]] = True
        roll[::4] = False
    return songs


def train_tiny(tmp_path, **changes):
    """training.train on three chord songs (two batches an epoch), validated on the fourth → its history."""
    settings = {**SETTINGS, "output_dir": str(tmp_path), **changes}
    keras.utils.set_random_seed(1)
    model = training.build_model(settings, num_keys=88)
    songs = chord_rolls()
    history, _ = training.train(model, songs[:3], songs[3:], settings)
    return history


def test_training_that_runs_every_epoch_says_the_epoch_count_ended_it(tmp_path, capsys):
    history = train_tiny(tmp_path, epochs=3)
    assert len(history["loss"]) == 3
    assert "training stopped in epoch 3: all 3 epochs (epochs) are done\n" in capsys.readouterr().out


def test_training_whose_validation_stops_improving_says_patience_ended_it(tmp_path, capsys):
    history = train_tiny(tmp_path, learning_rate=0.0, patience=2)  # the weights never change: nor does the NLL
    assert len(history["loss"]) == 3 and len(set(history["val_frame_nll"])) == 1
    assert "training stopped in epoch 3: no better validation NLL in 2 epochs (patience)\n" in capsys.readouterr().out


def test_training_past_its_time_budget_says_the_budget_ended_it(tmp_path, capsys):
    history = train_tiny(tmp_path, max_minutes=0.0)  # spent after the first batch
    assert len(history["loss"]) == 1
    out = capsys.readouterr().out
    assert "training stopped in epoch 1: the time budget of 0 min ran out (max_minutes)\n" in out
    assert out.count("training stopped") == 1


# ------------------------------------------------------------------ the baseline, transposition, windows, a loss that stops being finite

def test_bernoulli_baseline_is_the_key_frequency_nll():
    train = [np.array([[1, 0], [1, 0], [0, 0], [1, 1]], bool)]  # key 0: 3/4 -> (3+1)/(4+2); key 1: 2/6
    test = [np.array([[0, 0], [1, 1]], bool)]                   # only the second frame is predicted
    expected = -(np.log(4 / 6) + np.log(2 / 6))
    assert training.bernoulli_nll(train, test) == pytest.approx(expected)



def test_transposition_keeps_every_note_on_the_keyboard():
    rng = np.random.default_rng(0)
    piece = np.zeros((6, 88), bool)
    piece[0:3, [0, 4, 7]] = True  # a chord at the very bottom: it can only move up
    shifts = {training.transposition(piece, rng, 5) for _ in range(50)}
    assert shifts == set(range(6))
    top = np.roll(piece, 80, axis=1)  # the same chord with its top note on the last key: it can only move down
    assert {training.transposition(top, rng, 5) for _ in range(50)} == set(range(-5, 1))
    assert training.transposition(piece, rng, 0) == 0 and training.transposition(piece[:0], rng, 5) == 0


def test_training_windows_cover_songs_and_mark_padding():
    songs = [np.ones((5, 88), bool), np.ones((40, 88), bool)]
    settings = {**default_settings(), "seq_len": 16, "batch_size": 8, "transpose_range": 0, "pitch_profile": False}
    windows, targets, weights = training.make_window_dataset(songs, settings)[0]
    assert windows.shape == (8, 17, 88) and targets.shape == (8, 16, 88)
    np.testing.assert_array_equal(targets, windows[:, 1:])
    for window, weight in zip(windows, weights):
        real = int(window.any(axis=1).sum())    # the short song gives 5 real frames, the long one 17
        assert real in (5, 17)
        assert weight.sum() == real - 1         # weight 1 exactly on targets inside the song


def test_training_windows_bring_the_pitch_classes_heard_before_them_transposed_with_them():
    song = np.eye(88, dtype=bool)                # frame t sounds key t: a window's first key is its start + shift
    settings = {**default_settings(), "seq_len": 16, "batch_size": 32, "transpose_range": 6, "pitch_profile": True}
    (windows, heard), targets, weights = training.make_window_dataset([song], settings)[0]
    assert heard.shape == (32, 12)

    def heard_before(start):
        return np.bincount(np.arange(start) % 12, minlength=12)

    shifts = set()
    for window, counts in zip(windows, heard):
        first = int(np.argmax(window[0]))
        matches = [shift for shift in range(-6, 7)
                   if 0 <= first - shift and np.array_equal(counts, np.roll(heard_before(first - shift), shift))]
        assert matches, (first, counts)
        shifts.update(matches)
    assert len(shifts) > 1                       # transposed windows were drawn and their counts moved with them



# ------------------------------------------------------------------ a loss that stops being finite

@keras.saving.register_keras_serializable(package="tests")
class BlowUp(keras.optimizers.schedules.LearningRateSchedule):
    """Learning rate 1e-2 for `steps` updates, then infinite: the weights, and the loss, stop being finite."""

    def __init__(self, steps):
        self.steps = steps

    def __call__(self, step):
        return keras.ops.where(step < self.steps, 1e-2, float("inf"))

    def get_config(self):
        return {"steps": self.steps}


def train_until_it_blows_up(tmp_path, steps):
    """training.train on three chord songs (2 batches an epoch) with a BlowUp learning rate → (model, history)."""
    from model import MusicLSTM, frame_nll
    songs = [np.zeros((40, 88), bool) for _ in range(4)]
    for i, roll in enumerate(songs):
        roll[:, [40 + i, 44 + i, 47 + i]] = True
        roll[::4] = False
    settings = {**default_settings(), "hidden_size": 16, "head_size": 8, "seq_len": 16, "batch_size": 4,
                "output_dir": str(tmp_path), "epochs": 30}
    keras.utils.set_random_seed(1)
    model = MusicLSTM(num_keys=88, units=16, layers=1, head="nade", head_units=8)
    model.compile(optimizer=keras.optimizers.Adam(BlowUp(steps), clipnorm=1.0), loss=frame_nll)
    history, _ = training.train(model, songs[:3], songs[3:], settings)
    return model, history


def test_a_loss_that_stops_being_finite_ends_training_with_the_best_weights(tmp_path, capsys):
    model, history = train_until_it_blows_up(tmp_path, steps=12)  # 6 good epochs
    assert len(history["loss"]) == 7 and np.isnan(history["loss"][-1])
    assert "training stopped in epoch 7: the training loss became nan; going on with the best weights (epoch 6" \
        in capsys.readouterr().out
    best = keras.saving.load_model(tmp_path / "best.keras")
    for ours, saved in zip(model.get_weights(), best.get_weights()):
        assert np.isfinite(ours).all()
        np.testing.assert_array_equal(ours, saved)


def test_a_loss_that_is_never_finite_is_a_training_error(tmp_path):
    with pytest.raises(training.TrainingError, match="no epoch gave a finite validation NLL before the training loss "
                                               "became nan in epoch 1.*lower --learning_rate"):
        train_until_it_blows_up(tmp_path, steps=0)
    assert not (tmp_path / "best.keras").exists()


# ------------------------------------------------------------------ the epoch log through the command line

def test_an_epoch_cut_short_by_the_time_budget_reports_the_steps_it_ran(tiny_archive, tmp_path, capsys):
    args = quick_args(tiny_archive, tmp_path, "--max_minutes=1e-9", "--epochs=5", "--hidden_size=16", "--head=sigmoid",
                      "--seq_len=16", "--batch_size=4", "--primer_frames=8", "--generate_frames=4", "--num_outputs=1")
    assert cd.main(args) == 0
    out = capsys.readouterr().out
    assert "Epoch 1/5" in out and "Epoch 2/5" not in out
    ends = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert len(ends) == 1
    steps = re.match(r"epoch 1: 1/(\d+) steps, [\d.]+ s, \d+ ms/step, loss [\d.]+, val_frame_nll [\d.]+", ends[0])
    assert steps and int(steps.group(1)) > 1, ends  # one step run of an epoch of several

"""Training: the fit loop ends on the epoch count, on patience or on the time budget, and the log says which;
the Bernoulli baseline, transposition, training windows (keys sounding, keys struck, meter), the onset NLL beside
the frame NLL, and a loss that stops being finite."""
import re

import keras
import numpy as np
import pytest

import classically_deep as cd
import model
import training
from configurator import default_settings
from conftest import quick_args
from rolls import METER_FEATURES, METER_STEPS, Song, frame_width, meter_features, model_frames

SETTINGS = {"hidden_size": 16, "num_layers": 1, "dropout": 0.3, "head": "nade", "head_size": 8, "pitch_profile": True,
            "ema": 0, "learning_rate": 1e-2, "seq_len": 16, "batch_size": 4, "seed": 1234, "transpose_range": 6,
            "epochs": 30, "max_minutes": 60.0, "plateau": 500, "patience": 1000, "onsets": True, "meter": True}


def chord_songs():
    """Four 40-frame Songs of 88 keys in 4/4 (16 frames a bar): a three-note chord each, silent every fourth frame
    and struck again in the middle of each three frames it sounds."""
    songs = []
    for i in range(4):
        roll = np.zeros((40, 88), bool)
        roll[:, [40 + i, 44 + i, 47 + i]] = True
        roll[::4] = False
        onsets = np.zeros_like(roll)
        onsets[2::4] = roll[2::4]
        frames = np.arange(40)
        songs.append(Song(roll, onsets, np.stack([frames % 16, np.full(40, 16), np.full(40, 4), np.full(40, 4)], 1)))
    return songs


def train_tiny(tmp_path, **changes):
    """training.train on three chord songs (two batches an epoch), validated on the fourth → its history."""
    settings = {**SETTINGS, "output_dir": str(tmp_path), **changes}
    keras.utils.set_random_seed(1)
    net = training.build_model(settings, num_keys=88)
    songs = chord_songs()
    history, _ = training.train(net, songs[:3], songs[3:], settings)
    return history


@pytest.mark.parametrize("onsets, meter", [(True, True), (False, False)], ids=["onsets_and_meter", "rolls_alone"])
def test_training_that_runs_every_epoch_says_the_epoch_count_ended_it(tmp_path, capsys, onsets, meter):
    history = train_tiny(tmp_path, epochs=3, onsets=onsets, meter=meter)
    assert len(history["loss"]) == 3
    assert "training stopped in epoch 3: all 3 epochs (epochs) are done\n" in capsys.readouterr().out


def test_training_whose_validation_stops_improving_says_patience_ended_it(tmp_path, capsys):
    history = train_tiny(tmp_path, learning_rate=0.0, patience=2)  # the weights never change: nor does the NLL
    assert len(history["loss"]) == 3 and len(set(history["val_frame_nll"])) == 1
    assert "training stopped in epoch 3: no better validation NLL in 2 epochs (patience)\n" in capsys.readouterr().out


def test_training_without_patience_runs_every_epoch_halving_the_learning_rate_on_plateaus(tmp_path, capsys):
    history = train_tiny(tmp_path, learning_rate=1e-9, plateau=2, patience=0, epochs=7)  # the NLL barely moves
    assert len(history["loss"]) == 7
    assert "training stopped in epoch 7: all 7 epochs (epochs) are done\n" in capsys.readouterr().out
    rates = history["learning_rate"]
    assert rates[0] == pytest.approx(1e-9) and rates[-1] == pytest.approx(2.5e-10)  # halved twice in 7 epochs
    assert all(later in (pytest.approx(earlier), pytest.approx(earlier / 2)) for earlier, later in zip(rates, rates[1:]))


def test_training_past_its_time_budget_says_the_budget_ended_it(tmp_path, capsys):
    history = train_tiny(tmp_path, max_minutes=0.0)  # spent after the first batch
    assert len(history["loss"]) == 1
    out = capsys.readouterr().out
    assert "training stopped in epoch 1: the time budget of 0 min ran out (max_minutes)\n" in out
    assert out.count("training stopped") == 1


# ------------------------------------------------------------------ the baseline, transposition, windows, a loss that stops being finite

def test_bernoulli_baseline_is_the_key_frequency_nll():
    train = [Song(np.array([[1, 0], [1, 0], [0, 0], [1, 1]], bool))]  # key 0: 3/4 -> (3+1)/(4+2); key 1: 2/6
    test = [Song(np.array([[0, 0], [1, 1]], bool))]                   # only the second frame is predicted
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
    songs = [Song(np.ones((5, 88), bool)), Song(np.ones((40, 88), bool))]
    settings = {**default_settings(), "seq_len": 16, "batch_size": 8, "transpose_range": 0, "pitch_profile": False,
                "onsets": False, "meter": False}
    windows, targets, weights = training.make_window_dataset(songs, settings)[0]
    assert windows.shape == (8, 17, 88) and targets.shape == (8, 16, 88)
    np.testing.assert_array_equal(targets, windows[:, 1:])
    for window, weight in zip(windows, weights):
        real = int(window.any(axis=1).sum())    # the short song gives 5 real frames, the long one 17
        assert real in (5, 17)
        assert weight.sum() == real - 1         # weight 1 exactly on targets inside the song


def test_training_windows_bring_the_pitch_classes_heard_before_them_transposed_with_them():
    song = Song(np.eye(88, dtype=bool))          # frame t sounds key t: a window's first key is its start + shift
    settings = {**default_settings(), "seq_len": 16, "batch_size": 32, "transpose_range": 6, "pitch_profile": True,
                "onsets": True, "meter": True}
    (windows, heard), targets, weights = training.make_window_dataset([song], settings)[0]
    assert heard.shape == (32, 12)

    def heard_before(start):
        return np.bincount(np.arange(start) % 12, minlength=12)

    shifts = set()
    for window, counts in zip(windows, heard):
        first = int(np.argmax(window[0, :88]))   # the keys sounding come first
        matches = [shift for shift in range(-6, 7)
                   if 0 <= first - shift and np.array_equal(counts, np.roll(heard_before(first - shift), shift))]
        assert matches, (first, counts)
        shifts.update(matches)
    assert len(shifts) > 1                       # transposed windows were drawn and their counts moved with them


def struck_again_song():
    """A 48-frame Song, one 12/4 bar (frame t at bar position t): keys 40 and 44 held throughout, 40 struck every
    third frame and 44 every fifth."""
    roll = np.zeros((48, 88), bool)
    roll[:, [40, 44]] = True
    onsets = np.zeros_like(roll)
    onsets[::3, 40] = onsets[::5, 44] = True
    frames = np.arange(48)
    return Song(roll, onsets, np.stack([frames, np.full(48, 48), np.full(48, 12), np.full(48, 4)], axis=1))


def test_training_windows_carry_the_keys_struck_and_the_meter_and_transposition_moves_only_the_keys():
    song = struck_again_song()
    settings = {**default_settings(), "seq_len": 16, "batch_size": 32, "transpose_range": 6, "pitch_profile": False,
                "onsets": True, "meter": True}
    windows, targets, weights = training.make_window_dataset([song], settings)[0]
    assert windows.shape == (32, 17, frame_width(88, True, True)) == (32, 17, 2 * 88 + METER_FEATURES)
    assert targets.shape == (32, 16, 2 * 88) and weights.shape == (32, 16) and weights.all()
    shifts = set()
    for window in windows:
        start = int(np.argmax(window[0, 2 * 88:2 * 88 + METER_STEPS]))  # the bar position of its first frame
        frames = slice(start, start + 17)
        np.testing.assert_array_equal(window[:, 2 * 88:], meter_features(song.meter[frames]))  # never transposed
        shift = int(np.flatnonzero(window[0, :88])[0]) - 40
        np.testing.assert_array_equal(window[:, :88], np.roll(song.roll[frames], shift, axis=1))
        np.testing.assert_array_equal(window[:, 88:2 * 88], np.roll(song.onsets[frames], shift, axis=1))
        shifts.add(shift)
    assert len(shifts) > 1 and shifts <= set(range(-6, 7))


def test_training_targets_are_the_keys_sounding_then_which_held_keys_are_struck_again():
    settings = {**default_settings(), "seq_len": 16, "batch_size": 8, "transpose_range": 6, "pitch_profile": False,
                "onsets": True, "meter": True}
    windows, targets, _ = training.make_window_dataset([struck_again_song()], settings)[0]
    sounding, before, struck = windows[:, 1:, :88] > 0.5, windows[:, :-1, :88] > 0.5, windows[:, 1:, 88:176] > 0.5
    np.testing.assert_array_equal(targets[..., :88], sounding)
    # 1: struck again, 0: held on, -1: nothing to decide (the key starts, or stops, or stays silent)
    np.testing.assert_array_equal(targets[..., 88:], np.where(before & sounding, struck.astype(np.float32), -1.0))
    assert (targets[..., 88:] == 1).any() and (targets[..., 88:] == 0).any()


# ------------------------------------------------------------------ the onset NLL beside the sounding keys' NLL

def test_evaluate_reports_the_onset_nll_beside_the_sounding_keys_nll_of_whole_songs():
    keras.utils.set_random_seed(1)
    net = training.built(training.build_model(SETTINGS, num_keys=88))  # as evaluate gets it: trained, so built
    songs = chord_songs()
    parts = {"train": songs[:2], "valid": songs[2:3], "test": songs[3:]}
    metrics = training.evaluate(net, parts)
    assert set(metrics) == {"valid_frame_nll", "test_frame_nll", "valid_onset_nll", "test_onset_nll",
                            "valid_frame_nll_baseline", "test_frame_nll_baseline"}
    for part in ("valid", "test"):  # the whole song in one call of the model: the same NLLs, each of its own keys
        frames = model_frames(parts[part][0], True, True)[None]
        logits = keras.ops.convert_to_numpy(net(frames))
        targets = model.song_targets(frames, 88, True)
        sounding = keras.ops.convert_to_numpy(model.frame_nll(targets[..., :88], logits[..., :88])).mean()
        again = keras.ops.convert_to_numpy(model.onset_nll(targets[..., 88:], logits[..., 88:])).mean()
        assert metrics[f"{part}_frame_nll"] == pytest.approx(sounding, rel=1e-4)
        assert metrics[f"{part}_onset_nll"] == pytest.approx(again, rel=1e-4) and again > 0
        assert metrics[f"{part}_frame_nll_baseline"] == training.bernoulli_nll(parts["train"], parts[part])


def test_a_model_without_onsets_reports_no_onset_nll():
    net = training.built(training.build_model({**SETTINGS, "onsets": False, "meter": False}, num_keys=88))
    songs = chord_songs()
    metrics = training.evaluate(net, {"train": songs[:2], "valid": songs[2:3], "test": songs[3:]})
    assert set(metrics) == {"valid_frame_nll", "test_frame_nll", "valid_frame_nll_baseline", "test_frame_nll_baseline"}



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
    songs = chord_songs()
    settings = {**default_settings(), "hidden_size": 16, "head_size": 8, "seq_len": 16, "batch_size": 4,
                "output_dir": str(tmp_path), "epochs": 30, "onsets": True, "meter": True}
    keras.utils.set_random_seed(1)
    net = model.MusicLSTM(num_keys=88, units=16, layers=1, head="nade", head_units=8, onsets=True, meter=True)
    net.compile(optimizer=keras.optimizers.Adam(BlowUp(steps), clipnorm=1.0), loss=model.song_nll)
    history, _ = training.train(net, songs[:3], songs[3:], settings)
    return net, history


def test_a_loss_that_stops_being_finite_ends_training_with_the_best_weights(tmp_path, capsys):
    net, history = train_until_it_blows_up(tmp_path, steps=12)  # 6 good epochs
    assert len(history["loss"]) == 7 and np.isnan(history["loss"][-1])
    assert "training stopped in epoch 7: the training loss became nan; going on with the best weights (epoch 6" \
        in capsys.readouterr().out
    best = keras.saving.load_model(tmp_path / "best.keras")
    for ours, saved in zip(net.get_weights(), best.get_weights()):
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

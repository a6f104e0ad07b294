"""Training: random windows of the rolls, the fit loop with whole-song validation and its stopping, and held-out scores.

    history, minutes = train(model, train_songs, valid_songs, settings)   # lists of rolls.Song
    metrics = evaluate(model, parts)

Keeps the best weights in output_dir/best.keras (written atomically, with the
roll settings in the model's config and without the optimizer state); halves the
learning rate after `plateau` epochs without a better validation NLL. Ends at
`epochs`, on `patience` (if set), past `max_minutes`, when the loss stops being
finite, or on Ctrl-C / SIGTERM, which saves resume.keras and resume.json
(resume.py) so that `--resume=True` continues the run; the log says which.
load_resume_model reads resume.keras back, once it holds the model these
settings build. start_from gives a new model the weights of a trained one
(init_from).
"""
import math
import os
import signal
import sys
import time
import warnings
import zipfile

import keras
import numpy as np

import distribute
import saved_models
from files import DataError, atomic_path, printable
from model import MusicLSTM, SongScorer, frame_nll, song_nll, song_targets
from resume import (CALLBACK_STATES, Interrupted, check_resume_model, save_resume_checkpoint, signal_handler,
                    stop_at_once)
from rolls import frame_width, model_frames, pitch_class_fold
from songs import ROLL_SETTINGS

MONITOR = {"monitor": "val_frame_nll", "mode": "min"}  # what the plateau and patience callbacks watch


class TrainingError(Exception):
    """Training gave no usable weights (the loss diverged before any good epoch); the message is for the user."""


# ------------------------------------------------------------------ training windows

class WindowDataset(keras.utils.PyDataset):
    """Random windows of seq_len + 1 frames from the training songs, drawn afresh each epoch.

    Batch `index` of epoch `self.epoch` (set by train() as each epoch
    begins) depends only on (seed, epoch, index), so a resumed run draws
    the windows the uninterrupted run would have drawn.

    Yields (windows, targets, weights): (batch, width, channels) float32
    model frames (rolls.model_frames: the keys sounding, with onsets the
    keys struck, with meter the meter features), (batch, width - 1, keys or
    2 * keys) float32 targets (model.song_targets) and (batch, width - 1)
    float32, where width = seq_len + 1 (less if every song is shorter) and a
    weight of 0 marks padding after a song shorter than a window. With
    pitch_profile the windows come as (windows, heard): heard is (batch, 12)
    float32, the notes per pitch class of the song before each window
    (transposed with it), so a window starts from the profile of everything
    before it, as whole-song scoring and composing do. An epoch holds about
    as many target frames as the training songs. rows: the part of each
    batch of batch_size windows to yield (each of several processes feeds its own).
    """

    def __init__(self, train_songs, settings, rows=slice(None)):
        super().__init__()
        self.songs, self.rows = train_songs, rows
        self.seed, self.batch_size = settings["seed"], settings["batch_size"]
        self.semitones = settings["transpose_range"]
        self.onsets, self.meter = settings["onsets"], settings["meter"]
        self.lengths = np.array([len(song) for song in train_songs])
        self.width = min(settings["seq_len"] + 1, self.lengths.max())  # one shape: traced once
        spans = np.minimum(self.lengths, self.width) - 1               # targets per window of each song
        self.odds = (self.lengths - 1) / spans                         # every frame equally likely to be seen
        self.odds /= self.odds.sum()
        targets_per_batch = self.batch_size * (self.odds * spans).sum()
        self.batches = max(1, round((self.lengths - 1).sum() / targets_per_batch))
        self.epoch = 0
        self.heard_before = heard_before_each_frame(train_songs) if settings["pitch_profile"] else None

    def __len__(self):
        return self.batches

    def __getitem__(self, index):
        rng = np.random.default_rng([self.seed, self.epoch, index])
        keys, rows = self.songs[0].roll.shape[1], self.rows
        windows = np.zeros((self.batch_size, self.width, frame_width(keys, self.onsets, self.meter)), np.float32)
        weights = np.zeros((self.batch_size, self.width - 1), np.float32)
        heard = np.zeros((self.batch_size, 12), np.float32)
        for row, song in enumerate(rng.choice(len(self.songs), self.batch_size, p=self.odds)):
            start = rng.integers(0, self.lengths[song] - min(self.lengths[song], self.width) + 1)
            frames = slice(start, start + self.width)
            piece = model_frames(self.songs[song], self.onsets, self.meter, frames)
            shift = transposition(self.songs[song].roll[frames], rng, self.semitones)
            windows[row, :len(piece)] = transposed(piece, shift, keys, self.onsets)
            weights[row, :len(piece) - 1] = 1.0
            if self.heard_before is not None:
                heard[row] = np.roll(self.heard_before[song][start], shift)
        inputs = (windows[rows], heard[rows]) if self.heard_before is not None else windows[rows]
        return inputs, song_targets(windows[rows], keys, self.onsets), weights[rows]


def make_window_dataset(train_songs, settings):
    """The WindowDataset of the rows of each batch that this process feeds (every row when it is the only process)."""
    return WindowDataset(train_songs, settings, distribute.local_rows(settings["batch_size"]))


def heard_before_each_frame(songs):
    """Songs → per song a (frames + 1, 12) float32 array: row t, the notes per pitch class before frame t."""
    fold = pitch_class_fold(songs[0].roll.shape[1])
    return [np.cumsum(np.concatenate([np.zeros((1, 12), np.float32), song.roll @ fold]), axis=0) for song in songs]


def transposed(piece, shift, keys, onsets):
    """(frames, channels) model frames moved shift keys up (down if negative): the keys sounding and the keys struck."""
    moved = piece.copy()
    for first in range(0, keys * (2 if onsets else 1), keys):
        moved[:, first:first + keys] = np.roll(piece[:, first:first + keys], shift, axis=1)
    return moved


def transposition(piece, rng, semitones):
    """A random shift of at most ±semitones that keeps every note of a (frames, keys) roll on the keyboard."""
    active = np.nonzero(piece.any(axis=0))[0]
    if semitones == 0 or len(active) == 0:
        return 0
    return int(rng.integers(max(-semitones, -active[0]), min(semitones, piece.shape[1] - 1 - active[-1]) + 1))


# ------------------------------------------------------------------ the model and its scores

def build_model(settings, num_keys, max_notes=None):
    """The MusicLSTM these settings describe, compiled with Adam and the frame NLL loss.

    max_notes: the most keys on in any frame the model will score (None: any number), which the NADE head's
    training step costs in proportion to."""
    model = MusicLSTM(**model_config(settings, num_keys, max_notes))
    model.compile(optimizer=make_optimizer(settings), loss=training_loss(settings))
    return model


def training_loss(settings):
    """The loss a model of these settings trains on: model.song_nll with onsets (the keys sounding and struck), else
    model.frame_nll."""
    return song_nll if settings["onsets"] else frame_nll


def model_config(settings, num_keys, max_notes):
    """The MusicLSTM arguments these settings describe (the architecture its get_config reports)."""
    return {"num_keys": num_keys, "units": settings["hidden_size"], "layers": settings["num_layers"],
            "dropout": settings["dropout"], "head": settings["head"], "head_units": settings["head_size"],
            "max_notes": max_notes, "pitch_profile": settings["pitch_profile"], "onsets": settings["onsets"],
            "meter": settings["meter"], "members": settings.get("members") or 1}  # 0 (the driver resolves it): one


def built(model):
    """The model, its weights made by calling it on two silent frames (and no notes heard before them) → model."""
    frames = np.zeros((1, 2, model.width), np.float32)
    model((frames, np.zeros((1, 12), np.float32)) if model.config["pitch_profile"] else frames)
    return model


def start_from(model, saved):
    """Give a model build_model made the weights of a trained one, saved: a model file saved_models.read_model_file
    checked, of the architecture the settings restored from it build; print that training starts from it."""
    weights = saved_models.load_model(saved).get_weights()
    try:
        built(model).set_weights(weights)
    except ValueError as err:  # a file whose weights match its config but not the model: refuse it in one line
        raise DataError(f"init_from {printable(saved['path'])} does not fit the model these settings build "
                        f"({' '.join(str(err).split())[:160]})") from None
    print(f"training starts from the weights of {printable(saved['path'])}")


def make_optimizer(settings, **options):
    """Adam at the settings' learning rate, gradients clipped to norm 1, with the EMA of the weights if ema > 0;
    options: more of Adam's arguments."""
    ema = {"use_ema": True, "ema_momentum": settings["ema"]} if settings.get("ema") else {}
    return keras.optimizers.Adam(settings["learning_rate"], clipnorm=1.0, **ema, **options)


def song_nlls(scorer, songs):
    """NLL per predicted frame in nats of whole songs, each from its start with full context, by a model.SongScorer
    → (the sounding keys', the onsets' (0 for a model without onsets))."""
    config = scorer.model.config
    sounding, struck, frames = scorer.total_nll([model_frames(song, config["onsets"], config["meter"]) for song in songs])
    return sounding / max(frames, 1), struck / max(frames, 1)


def bernoulli_nll(train_songs, songs):
    """Independent-Bernoulli baseline (each key's training frequency) → mean NLL of the sounding keys per predicted
    frame, nats."""
    frames = np.concatenate([song.roll for song in train_songs])
    p = (frames.sum(axis=0) + 1.0) / (len(frames) + 2.0)
    targets = np.concatenate([song.roll[1:] for song in songs])
    return float(-(targets * np.log(p) + (~targets) * np.log1p(-p)).sum() / len(targets))


def evaluate(model, parts):
    """NLL of the model (the sounding keys' frame NLL, and with onsets the onsets' NLL beside it) and of the
    independent-Bernoulli baseline on the held-out songs → dict."""
    scorer, metrics = SongScorer(model), {}
    for part in ("valid", "test"):
        metrics[f"{part}_frame_nll"], onsets = song_nlls(scorer, parts[part])
        if model.config["onsets"]:
            metrics[f"{part}_onset_nll"] = onsets
    for part in ("valid", "test"):
        metrics[f"{part}_frame_nll_baseline"] = bernoulli_nll(parts["train"], parts[part])
    return metrics


# ------------------------------------------------------------------ callbacks of the fit loop

class SignalCatcher:
    """Signal handler that notes the first SIGINT or SIGTERM (`signum`) for Stop; a second one stops at once,
    unless the resume checkpoint is being written (`saving`)."""

    def __init__(self):
        self.signum, self.saving = None, False

    def __call__(self, signum, frame):
        if self.signum is None:
            self.signum = signum
        elif not self.saving:
            stop_at_once(signum, frame)


class Clock:
    """Minutes trained over all sessions: those of earlier sessions plus this one's so far."""

    def __init__(self, minutes_before):
        self.before, self.started = minutes_before, time.monotonic()

    def __call__(self):
        return self.before + (time.monotonic() - self.started) / 60


class Progress(keras.callbacks.Callback):
    """Prints 'Epoch N/epochs' as each epoch begins and, as it ends, the steps actually run (fewer than the epoch
    holds when training stops inside it), their time and the logs; live: a running count on one line."""

    def __init__(self, epochs, live):
        super().__init__()
        self.epochs, self.live = epochs, live

    def on_epoch_begin(self, epoch, logs=None):
        print(f"Epoch {epoch + 1}/{self.epochs}", flush=True)
        self.steps, self.started = 0, time.monotonic()
        self.stepped = self.shown = self.started

    def on_train_batch_end(self, batch, logs=None):
        self.steps, self.stepped = batch + 1, time.monotonic()
        if self.live and self.stepped - self.shown > 0.25:
            print(f"\r{self.steps}/{self.params['steps']} steps, loss {float(logs['loss']):.4f}", end="", flush=True)
            self.shown = self.stepped

    def on_epoch_end(self, epoch, logs=None):
        seconds = self.stepped - self.started
        figures = ", ".join(f"{name} {float(value):.4g}" for name, value in logs.items())
        print(f"{chr(13) if self.live else ''}epoch {epoch + 1}: {self.steps}/{self.params['steps']} steps, "
              f"{seconds:.1f} s, {1000 * seconds / max(self.steps, 1):.0f} ms/step, {figures}; "
              f"validation {time.monotonic() - self.stepped:.1f} s", flush=True)


class ValidationNLL(keras.callbacks.Callback):
    """Adds val_frame_nll (whole held-out songs, scored on process 0) to each epoch's logs."""

    def __init__(self, valid_songs):
        super().__init__()
        self.valid_songs = valid_songs

    def on_train_begin(self, logs=None):
        self.scorer = SongScorer(self.model)  # compiled once, reused every epoch

    def on_epoch_end(self, epoch, logs=None):
        logs["val_frame_nll"] = distribute.from_process_0(lambda: song_nlls(self.scorer, self.valid_songs)[0])


class Stop(keras.callbacks.Callback):
    """Ends training after a batch that brought a signal (caught: a SignalCatcher), a non-finite loss or the end of
    the time budget (minutes: a Clock past max_minutes); reason: None, "time", "loss" or "signal"."""

    def __init__(self, caught, minutes, max_minutes):
        super().__init__()
        self.caught, self.minutes, self.max_minutes = caught, minutes, max_minutes

    def on_train_begin(self, logs=None):
        self.reason, self.loss = None, None

    def on_train_batch_end(self, batch, logs=None):
        loss = float(logs["loss"])
        if self.reason is None:
            self.reason = distribute.agree("signal" if self.caught.signum else "loss" if not math.isfinite(loss)
                                           else "time" if self.minutes() > self.max_minutes else None,
                                           (None, "time", "loss", "signal"))  # every process stops together
            self.loss = loss
            if self.reason == "signal" and not self.caught.signum:  # another process was signalled
                self.caught.signum = signal.SIGTERM
        if self.reason is not None:
            self.model.stop_training = True

    on_epoch_end = on_train_batch_end  # a signal during validation stops before the next epoch


class Resumable:
    """Mixin: a callback whose STATE attributes are saved at an interruption and set again on resuming.
    saved_states: the callbacks' states in resume.json, by class name ({} for a fresh run)."""
    STATE = ()

    def __init__(self, saved_states, **kwargs):
        super().__init__(**kwargs)
        self.saved_state = saved_states.get(type(self).__name__, {})

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)  # the callback's own reset, then the saved state over it
        for name in self.STATE:
            if name in self.saved_state:
                setattr(self, name, self.saved_state[name])

    def state(self):
        values = {name: getattr(self, name) for name in self.STATE}
        return {name: value if value is None or isinstance(value, int) else float(value)
                for name, value in values.items()}


class Plateau(Resumable, keras.callbacks.ReduceLROnPlateau):
    """Halves the learning rate when val_frame_nll stops improving."""
    STATE = CALLBACK_STATES["Plateau"]


class Patience(Resumable, keras.callbacks.EarlyStopping):
    """Ends training after `patience` epochs without a better val_frame_nll (stopped_epoch > 0 once it has);
    patience 0: never (its state stays as it was, or as resumed)."""
    STATE = CALLBACK_STATES["Patience"]

    def on_epoch_end(self, epoch, logs=None):
        if self.patience:
            super().on_epoch_end(epoch, logs)


class BestCheckpoint(Resumable, keras.callbacks.Callback):
    """Saves the model to path (atomically, when writes) at each new finite low of val_frame_nll: its weights, with
    the roll settings it is trained on in its config, and not the optimizer state (resume.keras keeps that), which
    would make the file four times as large. roll_settings: {setting: value} for ROLL_SETTINGS, or None (settings
    without them, as a test of training alone passes, save a model that does not say what its rolls were)."""
    STATE = CALLBACK_STATES["BestCheckpoint"]

    def __init__(self, saved_states, path, writes, roll_settings):
        super().__init__(saved_states)
        self.path, self.writes, self.roll_settings, self.kept = path, writes, roll_settings, None

    def on_train_begin(self, logs=None):
        self.best, self.best_epoch = None, None
        super().on_train_begin(logs)

    def on_epoch_end(self, epoch, logs=None):
        value = logs["val_frame_nll"]
        if math.isfinite(value) and (self.best is None or value < self.best):
            self.best, self.best_epoch = value, epoch
            if self.writes:
                with atomic_path(self.path) as temp, distribute.alone():
                    if self.kept is None:  # the model saved: uncompiled, the roll settings in its config
                        config = {**self.model.get_config(), "roll_settings": self.roll_settings}
                        self.kept = built(MusicLSTM.from_config(config))
                    self.kept.set_weights(self.model.get_weights())
                    self.kept.save(temp)


# ------------------------------------------------------------------ the fit loop

def train(model, train_songs, valid_songs, settings, resumed=None):
    """Fit the model on random windows; validate on whole songs each epoch; keep the best weights.

    Saves the best model to output_dir/best.keras and ends with its weights;
    returns (history dict over all sessions, minutes trained over all sessions).
    Training ends at `epochs`, after `patience` epochs without improvement,
    past `max_minutes` (earlier sessions count), or after the batch in which
    - the loss stopped being finite: says so and goes on with the best weights;
      TrainingError (the run cannot go on) if no epoch gave a finite validation NLL yet;
    - SIGINT or SIGTERM arrived: the epoch ends there (validated and counted),
      resume.keras and resume.json are saved in output_dir and Interrupted is
      raised; a second signal before the saving stops at once, without a checkpoint.
    Prints one line saying why training stopped. resumed: the progress saved in resume.json, to continue from there.
    """
    resumed = resumed or {"epoch": 0, "minutes": 0.0, "history": {}, "callbacks": {}}
    checkpoint = os.path.join(settings["output_dir"], "best.keras")
    windows = make_window_dataset(train_songs, settings)
    writes = distribute.process_count_and_index()[1] == 0  # process 0 validates and writes; the others follow it
    caught, minutes = SignalCatcher(), Clock(resumed["minutes"])
    stop = Stop(caught, minutes, settings["max_minutes"])
    rolls = {name: settings[name] for name in ROLL_SETTINGS} if set(ROLL_SETTINGS) <= set(settings) else None
    best = BestCheckpoint(resumed["callbacks"], checkpoint, writes, rolls)
    patience = Patience(resumed["callbacks"], patience=settings["patience"], **MONITOR)
    plateau = Plateau(resumed["callbacks"], factor=0.5, patience=settings["plateau"], **MONITOR)
    resumables = [plateau, patience, best]
    # with ema, the averaged weights are swapped in at each epoch's end, so validation and best.keras use them
    averaged = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if model.optimizer.use_ema else []
    callbacks = [keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: setattr(windows, "epoch", epoch)),
                 *averaged, ValidationNLL(valid_songs), stop, *resumables]
    with signal_handler(caught):
        fitted = model.fit(windows, epochs=settings["epochs"], initial_epoch=resumed["epoch"], shuffle=False,
                           callbacks=callbacks + [Progress(settings["epochs"], sys.stdout.isatty())],
                           verbose=0).history
        history = {key: resumed["history"].get(key, []) + [float(value) for value in fitted.get(key, [])]
                   for key in {**resumed["history"], **fitted}}
        epoch = len(history.get("loss", []))
        if stop.reason == "signal":
            caught.saving = True
            progress = interrupted_progress(model, averaged, resumables, history, minutes())
            if writes:
                save_resume_checkpoint(model, progress, settings["output_dir"])
    if stop.reason == "signal":
        saved = f"({os.path.join(settings['output_dir'], 'resume.keras')} and resume.json)" if writes else "by process 0"
        raise Interrupted(f"{signal.Signals(caught.signum).name}: training stopped in epoch {epoch}; "
                          f"the resume checkpoint is saved {saved}", caught.signum)
    if best.best_epoch is None:
        diverged = f" before the training loss became {stop.loss} in epoch {epoch}" if stop.reason == "loss" else ""
        raise TrainingError(f"no epoch gave a finite validation NLL{diverged}, so no weights are worth keeping; "
                            "try a lower --learning_rate")
    with warnings.catch_warnings():  # best.keras holds no optimizer state, which Keras notes as it loads the weights
        warnings.filterwarnings("ignore", "Skipping variable loading for optimizer")
        distribute.load_weights(model, checkpoint)
    print(why_training_stopped(stop, patience, best, epoch, settings))
    if caught.signum:  # it came after training had ended for another reason: stop like Ctrl-C elsewhere
        stop_at_once(caught.signum, None)
    if writes:
        print(f"best model: {printable(checkpoint)} (epoch {best.best_epoch + 1})")
    return history, minutes()


def interrupted_progress(model, averaged, resumables, history, minutes):
    """After a signal: the training weights back in the model (and the EMA average in the optimizer, for averaged:
    the SwapEMAWeights callbacks) → the progress resume.json keeps, with the resumable callbacks' states."""
    epoch = len(history.get("loss", []))
    for swap in averaged:
        swap.on_epoch_begin(epoch)
    learning_rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    return {"epoch": epoch, "minutes": minutes, "learning_rate": learning_rate, "history": history,
            "callbacks": {type(callback).__name__: callback.state() for callback in resumables}}


def why_training_stopped(stop, patience, best, epoch, settings):
    """The one line saying why training ended (not by a signal): a non-finite loss, the time budget, patience or
    the epoch count; epoch: the epochs done over all sessions."""
    if stop.reason == "loss":
        return (f"training stopped in epoch {epoch}: the training loss became {stop.loss}; going on with the best "
                f"weights (epoch {best.best_epoch + 1}, validation NLL {best.best:.3f})")
    if stop.reason == "time":
        return (f"training stopped in epoch {epoch}: the time budget of {settings['max_minutes']:g} min ran out "
                "(max_minutes)")
    if patience.stopped_epoch > 0:
        return (f"training stopped in epoch {epoch}: no better validation NLL in {settings['patience']} epochs "
                "(patience)")
    return f"training stopped in epoch {epoch}: all {settings['epochs']} epochs (epochs) are done"


# ------------------------------------------------------------------ the resume checkpoint's model

def load_resume_model(settings, state, num_keys, max_notes):
    """output_dir/resume.keras → the compiled model with its optimizer state, at the learning rate of state.

    Refuses (DataError, one line) a file that holds another model than
    build_model(settings, num_keys, max_notes) trains, checked in its
    config.json before Keras builds anything (resume.check_resume_model);
    Keras then refuses weights of other shapes than that architecture's.
    """
    path = os.path.join(settings["output_dir"], "resume.keras")
    check_resume_model(path, saved_form(settings, num_keys, max_notes), settings)
    try:
        loaded = keras.saving.load_model(path)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError, RuntimeError,
            zipfile.BadZipFile) as err:
        message = printable(" ".join(str(err).split())[:120])  # Keras' messages run over several lines
        raise DataError(f"cannot resume: {printable(path)} cannot be loaded ({type(err).__name__}: {message})") \
            from None
    loaded.optimizer.learning_rate = state["learning_rate"]
    return loaded


def saved_form(settings, num_keys, max_notes):
    """What a .keras file of build_model(settings, num_keys, max_notes) records in its config.json (the model's
    class, config and compile_config), but for what training sets (input shape, learning rate, jit_compile) and
    the optimizer's name."""
    ours = make_optimizer(settings, name="ours")  # named: one of Keras' default name would rename later ones
    return {"module": MusicLSTM.__module__, "class_name": MusicLSTM.__name__,
            "registered_name": keras.saving.get_registered_name(MusicLSTM),
            "config": {"trainable": True, "dtype": keras.saving.serialize_keras_object(keras.config.dtype_policy()),
                       **model_config(settings, num_keys, max_notes)},
            "compile_config": {"optimizer": keras.saving.serialize_keras_object(ours),
                               "loss": keras.saving.serialize_keras_object(training_loss(settings)), "loss_weights": None,
                               "metrics": None, "weighted_metrics": None, "run_eagerly": False,
                               "steps_per_execution": 1}}

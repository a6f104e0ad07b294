"""Training: random windows of the rolls, the fit loop with whole-song validation, and stopping and resuming.

    history, minutes = train(model, train_rolls, valid_rolls, settings)

Keeps the best weights in output_dir/best.keras (written atomically). Ends at
`epochs`, on `patience`, past `max_minutes`, when the loss stops being
finite, or on Ctrl-C / SIGTERM, which saves resume.keras and resume.json
so that `--resume=True` continues the run. Keras (and so TensorFlow) is
imported inside the functions that need it: importing this module is cheap.
"""
import contextlib
import hashlib
import math
import os
import signal
import sys
import threading
import time
import zipfile

import numpy as np

import distribute
from rolls import pitch_class_fold
from files import DataError, atomic_path, check_readable_file, read_json, write_json


def make_window_dataset(train_rolls, settings, rows=slice(None)):
    """A Keras PyDataset of random training windows; built here so keras loads only when training.
    rows: the part of each batch of batch_size windows to yield (each of several processes feeds its own)."""
    import keras

    class WindowDataset(keras.utils.PyDataset):
        """Random windows of seq_len + 1 frames from the training rolls, drawn afresh each epoch.

        Batch `index` of epoch `self.epoch` (set by train() as each epoch
        begins) depends only on (seed, epoch, index), so a resumed run draws
        the windows the uninterrupted run would have drawn.

        Yields (windows, targets, weights): (batch, width, keys) float32,
        (batch, width - 1, keys) float32 and (batch, width - 1) float32, where
        width = seq_len + 1 (less if every song is shorter) and a weight of 0
        marks padding after a song shorter than a window. With pitch_profile
        the windows come as (windows, heard): heard is (batch, 12) float32, the
        notes per pitch class of the song before each window (transposed with
        it), so a window starts from the profile of everything before it, as
        whole-song scoring and composing do. An epoch holds about as many
        target frames as the training rolls.
        """

        def __init__(self):
            super().__init__()
            self.rolls = train_rolls
            self.lengths = np.array([len(roll) for roll in train_rolls])
            self.width = min(settings["seq_len"] + 1, self.lengths.max())  # one shape: traced once
            spans = np.minimum(self.lengths, self.width) - 1               # targets per window of each song
            self.odds = (self.lengths - 1) / spans                         # every frame equally likely to be seen
            self.odds /= self.odds.sum()
            targets_per_batch = settings["batch_size"] * (self.odds * spans).sum()
            self.batches = max(1, round((self.lengths - 1).sum() / targets_per_batch))
            self.epoch = 0
            self.heard_before = heard_before_each_frame(train_rolls) if settings["pitch_profile"] else None

        def __len__(self):
            return self.batches

        def __getitem__(self, index):
            rng = np.random.default_rng([settings["seed"], self.epoch, index])
            keys = self.rolls[0].shape[1]
            windows = np.zeros((settings["batch_size"], self.width, keys), np.float32)
            weights = np.zeros((settings["batch_size"], self.width - 1), np.float32)
            heard = np.zeros((settings["batch_size"], 12), np.float32)
            for row, song in enumerate(rng.choice(len(self.rolls), settings["batch_size"], p=self.odds)):
                start = rng.integers(0, self.lengths[song] - min(self.lengths[song], self.width) + 1)
                piece = self.rolls[song][start:start + self.width]
                shift = transposition(piece, rng, settings["transpose_range"])
                windows[row, :len(piece)] = np.roll(piece, shift, axis=1)
                weights[row, :len(piece) - 1] = 1.0
                if self.heard_before is not None:
                    heard[row] = np.roll(self.heard_before[song][start], shift)
            inputs = (windows[rows], heard[rows]) if self.heard_before is not None else windows[rows]
            return inputs, windows[rows, 1:], weights[rows]

    return WindowDataset()


def heard_before_each_frame(songs):
    """(frames, keys) rolls → per song a (frames + 1, 12) float32 array: row t, the notes per pitch class before frame t."""
    fold = pitch_class_fold(songs[0].shape[1])
    return [np.cumsum(np.concatenate([np.zeros((1, 12), np.float32), roll @ fold]), axis=0) for roll in songs]


def transposition(piece, rng, semitones):
    """A random shift of at most ±semitones that keeps every note of a (frames, keys) roll on the keyboard."""
    active = np.nonzero(piece.any(axis=0))[0]
    if semitones == 0 or len(active) == 0:
        return 0
    return int(rng.integers(max(-semitones, -active[0]), min(semitones, piece.shape[1] - 1 - active[-1]) + 1))


def build_model(settings, num_keys, max_notes=None):
    """The MusicLSTM these settings describe, compiled with Adam and the frame NLL loss.

    max_notes: the most keys on in any frame the model will score (None: any number), which the NADE head's
    training step costs in proportion to."""
    import keras
    from model import MusicLSTM, frame_nll
    model = MusicLSTM(num_keys=num_keys, units=settings["hidden_size"], layers=settings["num_layers"],
                      dropout=settings["dropout"], head=settings["head"], head_units=settings["head_size"],
                      max_notes=max_notes, pitch_profile=settings["pitch_profile"])
    ema = {"use_ema": True, "ema_momentum": settings["ema"]} if settings.get("ema") else {}
    model.compile(optimizer=keras.optimizers.Adam(settings["learning_rate"], clipnorm=1.0, **ema), loss=frame_nll)
    return model


def mean_frame_nll(scorer, song_rolls):
    """Frame NLL (nats per predicted frame) of whole songs, each from its start with full context, by a model.SongScorer."""
    nats, frames = scorer.total_nll(song_rolls)
    return nats / max(frames, 1)


class TrainingError(Exception):
    """Training gave no usable weights (the loss diverged before any good epoch); the message is for the user."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt so that the same clean-up runs."""


class Interrupted(Exception):
    """Training stopped by a signal after saving the resume checkpoint; exit_code is 130 (SIGINT) or 143 (SIGTERM)."""

    def __init__(self, message, signum):
        super().__init__(message)
        self.exit_code = 128 + signum


def stop_at_once(signum, frame):
    """Signal handler: SIGINT → KeyboardInterrupt, SIGTERM → Terminated."""
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


@contextlib.contextmanager
def signal_handler(handler):
    """While active, SIGINT and SIGTERM call handler(signum, frame); only the main thread can set handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, handler) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, signal.SIG_DFL if old is None else old)


def file_sha256(path):
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_resume_checkpoint(model, progress, output_dir):
    """Write output_dir/resume.keras (weights and optimizer state), then resume.json (progress and the .keras hash)."""
    path = os.path.join(output_dir, "resume.keras")
    with atomic_path(path) as temp, distribute.alone():
        model.save(temp)
    write_json(os.path.join(output_dir, "resume.json"), {**progress, "checkpoint_sha256": file_sha256(path)})


def remove_resume_checkpoint(output_dir):
    """Delete resume.json, then resume.keras, if present (json first: without it the .keras is never used)."""
    for name in ("resume.json", "resume.keras"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(output_dir, name))


def progress_logger(epochs, live):
    """A Keras callback that prints 'Epoch N/epochs' as each epoch begins and, as it ends, the steps actually run
    (fewer than the epoch holds when training stops inside it), their time and the logs; live: a running count."""
    import keras

    class Progress(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            print(f"Epoch {epoch + 1}/{epochs}", flush=True)
            self.steps, self.started = 0, time.monotonic()
            self.stepped = self.shown = self.started

        def on_train_batch_end(self, batch, logs=None):
            self.steps, self.stepped = batch + 1, time.monotonic()
            if live and self.stepped - self.shown > 0.25:
                print(f"\r{self.steps}/{self.params['steps']} steps, loss {float(logs['loss']):.4f}", end="", flush=True)
                self.shown = self.stepped

        def on_epoch_end(self, epoch, logs=None):
            seconds = self.stepped - self.started
            figures = ", ".join(f"{name} {float(value):.4g}" for name, value in logs.items())
            print(f"{chr(13) if live else ''}epoch {epoch + 1}: {self.steps}/{self.params['steps']} steps, "
                  f"{seconds:.1f} s, {1000 * seconds / max(self.steps, 1):.0f} ms/step, {figures}; "
                  f"validation {time.monotonic() - self.stepped:.1f} s", flush=True)

    return Progress()


def train(model, train_rolls, valid_rolls, settings, resumed=None):
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
    resumed: the progress saved in resume.json, to continue from there.
    """
    import keras
    resumed = resumed or {"epoch": 0, "minutes": 0.0, "history": {}, "callbacks": {}}
    checkpoint = os.path.join(settings["output_dir"], "best.keras")
    windows = make_window_dataset(train_rolls, settings, distribute.local_rows(settings["batch_size"]))
    writes = distribute.process_count_and_index()[1] == 0  # process 0 validates and writes; the others follow it
    caught = {"signal": None, "saving": False}
    started = time.monotonic()

    def note_signal(signum, frame):
        if caught["signal"] is None:
            caught["signal"] = signum
        elif not caught["saving"]:  # a second signal stops at once, unless the checkpoint is being written
            stop_at_once(signum, frame)

    def minutes():
        return resumed["minutes"] + (time.monotonic() - started) / 60

    class ValidationNLL(keras.callbacks.Callback):
        """Adds val_frame_nll (whole held-out songs) to each epoch's logs."""

        def on_train_begin(self, logs=None):
            from model import SongScorer
            self.scorer = SongScorer(self.model)  # compiled once, reused every epoch

        def on_epoch_end(self, epoch, logs=None):
            logs["val_frame_nll"] = distribute.from_process_0(lambda: mean_frame_nll(self.scorer, valid_rolls))

    class Stop(keras.callbacks.Callback):
        """Ends training after a batch that brought a signal, a non-finite loss or the end of the time budget."""

        def on_train_begin(self, logs=None):
            self.reason, self.loss = None, None

        def on_train_batch_end(self, batch, logs=None):
            loss = float(logs["loss"])
            if self.reason is None:
                self.reason = distribute.agree("signal" if caught["signal"] else "loss" if not math.isfinite(loss)
                                               else "time" if minutes() > settings["max_minutes"] else None,
                                               (None, "time", "loss", "signal"))  # every process stops together
                self.loss = loss
                if self.reason == "signal" and not caught["signal"]:  # another process was signalled
                    caught["signal"] = signal.SIGTERM
            if self.reason is not None:
                self.model.stop_training = True

        on_epoch_end = on_train_batch_end  # a signal during validation stops before the next epoch

    class Resumable:
        """Mixin: a callback whose STATE attributes are saved at an interruption and set again on resuming."""
        STATE = ()

        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)  # the callback's own reset, then the saved state over it
            saved = resumed["callbacks"].get(type(self).__name__, {})
            for name in self.STATE:
                if name in saved:
                    setattr(self, name, saved[name])

        def state(self):
            values = {name: getattr(self, name) for name in self.STATE}
            return {name: value if value is None or isinstance(value, int) else float(value)
                    for name, value in values.items()}

    class Plateau(Resumable, keras.callbacks.ReduceLROnPlateau):
        STATE = ("best", "wait", "cooldown_counter")

    class Patience(Resumable, keras.callbacks.EarlyStopping):
        STATE = ("best", "wait", "best_epoch")

    class BestCheckpoint(Resumable, keras.callbacks.Callback):
        """Saves the model to best.keras (atomically) at each new finite low of val_frame_nll."""
        STATE = ("best", "best_epoch")

        def on_train_begin(self, logs=None):
            self.best, self.best_epoch = None, None
            super().on_train_begin(logs)

        def on_epoch_end(self, epoch, logs=None):
            value = logs["val_frame_nll"]
            if math.isfinite(value) and (self.best is None or value < self.best):
                self.best, self.best_epoch = value, epoch
                if writes:
                    with atomic_path(checkpoint) as temp, distribute.alone():
                        self.model.save(temp)

    monitor = {"monitor": "val_frame_nll", "mode": "min"}
    stop, best = Stop(), BestCheckpoint()
    resumables = [Plateau(factor=0.5, patience=max(1, settings["patience"] // 2), **monitor),
                  Patience(patience=settings["patience"], **monitor), best]
    # with ema, the averaged weights are swapped in at each epoch's end, so validation and best.keras use them
    averaged = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if model.optimizer.use_ema else []
    callbacks = [keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: setattr(windows, "epoch", epoch)),
                 *averaged, ValidationNLL(), stop, *resumables]
    with signal_handler(note_signal):
        fitted = model.fit(windows, epochs=settings["epochs"], initial_epoch=resumed["epoch"], shuffle=False,
                           callbacks=callbacks + [progress_logger(settings["epochs"], sys.stdout.isatty())],
                           verbose=0).history
        history = {key: resumed["history"].get(key, []) + [float(value) for value in fitted.get(key, [])]
                   for key in {**resumed["history"], **fitted}}
        epoch = len(history.get("loss", []))
        if stop.reason == "signal":
            caught["saving"] = True
            for swap in averaged:
                swap.on_epoch_begin(epoch)  # the training weights back in the model, the average in the optimizer
            learning_rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
            progress = {"epoch": epoch, "minutes": minutes(), "learning_rate": learning_rate, "history": history,
                        "callbacks": {type(cb).__name__: cb.state() for cb in resumables}}
            if writes:
                save_resume_checkpoint(model, progress, settings["output_dir"])
    if stop.reason == "signal":
        name = signal.Signals(caught["signal"]).name
        saved = f"({os.path.join(settings['output_dir'], 'resume.keras')} and resume.json)" if writes else "by process 0"
        raise Interrupted(f"{name}: training stopped in epoch {epoch}; the resume checkpoint is saved {saved}",
                          caught["signal"])
    if best.best_epoch is None:
        diverged = f" before the training loss became {stop.loss} in epoch {epoch}" if stop.reason == "loss" else ""
        raise TrainingError(f"no epoch gave a finite validation NLL{diverged}, so no weights are worth keeping; "
                            "try a lower --learning_rate")
    distribute.load_weights(model, checkpoint)
    if stop.reason == "loss":
        print(f"training stopped in epoch {epoch}: the training loss became {stop.loss}; going on with the best "
              f"weights (epoch {best.best_epoch + 1}, validation NLL {best.best:.3f})")
    if caught["signal"]:  # it came after training had ended for another reason: stop like Ctrl-C elsewhere
        stop_at_once(caught["signal"], None)
    if writes:
        print(f"best model: {checkpoint} (epoch {best.best_epoch + 1})")
    return history, minutes()


# settings that --resume=True may change; any other must be as the interrupted run had it
RESUMABLE_CHANGES = ("output_dir", "cache_dir", "save_mode", "max_member_mb", "workers", "resume", "epochs",
                     "distribute", "coordinator_address", "num_processes", "process_id",
                     "max_minutes", "patience", "primer_frames", "primer_path", "include_primer", "generate_frames",
                     "temperature", "note_floor", "num_outputs", "bpm", "soundfont")
RESUME_FIELDS = {"epoch": int, "minutes": (int, float), "learning_rate": (int, float), "history": dict,
                 "callbacks": dict, "checkpoint_sha256": str}


def resume_state(settings, data_fingerprint):
    """With --resume=True: the progress in output_dir/resume.json, once these settings may continue it; else None.

    Refuses (DataError): resuming where there is no interrupted run, or with
    settings or data that shape the model differently; and a fresh run over
    an interrupted one, which would throw its checkpoint away.
    """
    out = settings["output_dir"]
    marker, checkpoint = os.path.join(out, "resume.json"), os.path.join(out, "resume.keras")
    if not settings["resume"]:
        if os.path.lexists(marker):
            raise DataError(f"{out} holds an interrupted run: continue it with --resume=True, or delete {marker} "
                            "(or pick another --output_dir) to start afresh")
        return None
    if not os.path.lexists(marker):
        raise DataError(f"--resume=True but {out} holds no interrupted run to continue ({marker} not found)")
    saved, state = read_json(os.path.join(out, "settings.json"), "settings file"), read_json(marker, "resume file")
    if not isinstance(saved, dict) or not isinstance(state, dict) or not all(
            isinstance(state.get(key), kind) for key, kind in RESUME_FIELDS.items()):
        raise DataError(f"cannot resume: {marker} or the settings.json beside it is damaged")
    changed = [f"{name} (was {saved.get(name, 'unset')!r}, now {value!r})" for name, value in settings.items()
               if name not in RESUMABLE_CHANGES and saved.get(name) != value]
    if changed:
        raise DataError("cannot resume: settings that shape the data or the model differ from the interrupted "
                        "run's: " + ", ".join(changed))
    if saved.get("data_fingerprint") != data_fingerprint:
        raise DataError(f"cannot resume: the data file {settings['data_path']} changed since the interrupted run")
    check_readable_file(checkpoint, "resume checkpoint")
    if file_sha256(checkpoint) != state["checkpoint_sha256"]:
        raise DataError(f"cannot resume: {checkpoint} is not the checkpoint {marker} describes (damaged or replaced)")
    if state["callbacks"].get("BestCheckpoint", {}).get("best_epoch") is not None:
        check_readable_file(os.path.join(out, "best.keras"), "best checkpoint")
    return state


def load_resume_model(output_dir, state):
    """output_dir/resume.keras → the compiled model with its optimizer state and learning rate."""
    import keras
    import model  # noqa: F401  registers the custom layers the file names
    path = os.path.join(output_dir, "resume.keras")
    try:
        loaded = keras.saving.load_model(path)
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as err:
        raise DataError(f"cannot resume: {path} cannot be loaded ({type(err).__name__}: {str(err)[:120]})") from None
    loaded.optimizer.learning_rate = state["learning_rate"]
    return loaded

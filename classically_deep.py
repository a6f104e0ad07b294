"""classically_deep: learn classical music from MusicNet's note labels and compose new pieces.

    python classically_deep.py                       # train on data/musicnet.npz (or the embedded sample)
    python classically_deep.py --epochs=5 --temperature=0.9 --output_dir=output/try2

Every setting below can be overridden as --name=value (--help lists them).
The pipeline, top to bottom: read the archive → piano rolls (cached) → split →
train an LSTM with a NADE note head → frame NLL on held-out songs → generate →
MIDI files in output_dir. TensorFlow is imported only where training starts,
so a bad setting or a preprocessing run answers at once.
"""
import json
import os
import sys
import time

import numpy as np

import rolls
import sources
from files import DataError, atomic_write, make_dir
from midi_io import roll_to_midi
from rolls import BadRecording

# ------------------------------------------------------------------ settings
# data
data_path = "data/musicnet.npz"  # MusicNet archive; if this default is absent the embedded sample is used
split_path = ""                  # optional JSON {"train": [ids], "valid": [ids], "test": [ids]}; "" = standard split
cache_dir = "data/cache"         # where preprocessed piano rolls are cached (named by a settings hash)
save_mode = "auto"               # True: preprocess and save the cache; False: load the cache only; "auto": either
output_dir = "output"            # checkpoint, metrics.json, settings.json and MIDI files land here
max_member_mb = 1000.0           # largest archive member read, MB uncompressed (30 min of MusicNet audio is ~640)
# piano roll
lowest_note = 21                 # MIDI note of the roll's first key (21 = A0)
highest_note = 108               # MIDI note of the roll's last key (108 = C8)
time_base = "beats"              # "beats": frames on the score's beat grid; "seconds": frames in audio time
steps_per_beat = 4               # frames per quarter note when time_base = "beats"
steps_per_second = 8.0           # frames per second of audio time when time_base = "seconds"
# model
head = "nade"                    # "nade": keys of a frame drawn in turn; "sigmoid": independent keys
hidden_size = 128                # LSTM units per layer
num_layers = 1                   # stacked LSTM layers
head_size = 64                   # NADE hidden units (head = "nade")
dropout = 0.0                    # dropout on LSTM outputs during training, 0 to <1
# training
seq_len = 64                     # frames per training window
batch_size = 16                  # windows per batch (small batches: more updates per CPU minute)
epochs = 500                     # most passes over the training frames (max_minutes usually stops first)
max_minutes = 4.0                # wall-clock training budget, minutes
learning_rate = 1e-2             # Adam step size at the start, halved on validation plateaus
patience = 6                     # epochs without validation improvement before stopping
transpose_range = 2              # random transposition of training windows, ± semitones (0 = off)
seed = 1234                      # same seed, same run (within the time budget)
# generation
primer_frames = 32               # frames of a held-out song's opening that prime the model
generate_frames = 256            # frames to compose after the primer
temperature = 1.0                # sampling temperature: < 1 safer, > 1 wilder
num_outputs = 3                  # MIDI files to write
bpm = 100.0                      # tempo of generated MIDI when time_base = "beats", quarter notes per minute

SETTING_NAMES = [name for name, value in globals().items()
                 if not name.startswith("_") and isinstance(value, (bool, int, float, str))]
CHOICES = {"save_mode": ("auto", True, False), "time_base": ("beats", "seconds"), "head": ("nade", "sigmoid")}
PROJECT_DIR = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA_PATH = "data/musicnet.npz"
SAMPLE_PATH = os.path.join(PROJECT_DIR, "data", "sample.npz")
STANDARD_TEST_IDS = ["1759", "1819", "2106", "2191", "2298", "2303", "2382", "2416", "2556", "2628"]
VALID_FRACTION = 0.1             # share of non-test songs held out for validation
SPLIT_SEED = 20170101            # fixed, so the split does not move with `seed`


class SettingsError(Exception):
    """A command-line setting that cannot be used; the message is for the user."""


def default_settings():
    """The settings as written at the top of this file → dict."""
    return {name: globals()[name] for name in SETTING_NAMES}


def parse_value(name, text, default):
    """'--name=text' → a value typed like the setting's default (or one of its CHOICES)."""
    if name in CHOICES:
        for choice in CHOICES[name]:
            if str(choice).lower() == text.lower():
                return choice
        raise SettingsError(f"--{name} must be one of {', '.join(map(str, CHOICES[name]))}, not {text!r}")
    try:
        if isinstance(default, bool):
            return {"true": True, "false": False}[text.lower()]
        return type(default)(text)
    except (KeyError, ValueError):
        raise SettingsError(f"--{name} needs a {type(default).__name__} value, not {text!r}") from None


def resolve_settings(argv, defaults):
    """Command-line arguments ['--name=value', ...] applied to the defaults → settings dict."""
    settings = dict(defaults)
    for arg in argv:
        name, equals, text = arg[2:].partition("=")
        if not arg.startswith("--") or not equals:
            raise SettingsError(f"arguments look like --name=value, not {arg!r}")
        if name not in defaults:
            raise SettingsError(f"unknown setting --{name}; valid settings: {', '.join(defaults)}")
        settings[name] = parse_value(name, text, defaults[name])
    check_settings(settings)
    return settings


def check_settings(settings):
    """Refuse settings that cannot work, with a sentence saying why."""
    if not 0 <= settings["lowest_note"] < settings["highest_note"] <= 127:
        raise SettingsError("need 0 <= lowest_note < highest_note <= 127")
    if not 0 <= settings["dropout"] < 1:
        raise SettingsError("dropout must be in [0, 1)")
    for name in ("steps_per_beat", "steps_per_second", "hidden_size", "num_layers", "head_size", "seq_len",
                 "batch_size", "epochs", "max_minutes", "learning_rate", "temperature", "bpm", "primer_frames"):
        if settings[name] <= 0:
            raise SettingsError(f"{name} must be positive, not {settings[name]}")
    for name in ("transpose_range", "generate_frames", "num_outputs", "patience"):
        if settings[name] < 0:
            raise SettingsError(f"{name} must not be negative, not {settings[name]}")


def write_json(path, data):
    """Write data as indented JSON, atomically."""
    with atomic_write(path, "w") as file:
        json.dump(data, file, indent=2)
        file.write("\n")


def organize_song(labels, **settings):
    """One recording's labels (MusicNet intervals, or a NOTE_DTYPE array) → (frames, keys) bool piano roll."""
    notes = labels if isinstance(labels, np.ndarray) and labels.dtype == rolls.NOTE_DTYPE else sources.notes_from_labels(labels)
    return rolls.organize_song(notes, **settings)


# ------------------------------------------------------------------ data

def resolve_data_path(path):
    """The archive to read: the given path, or the embedded sample when the default is absent."""
    if os.path.exists(path):
        return path
    if path == DEFAULT_DATA_PATH:
        print(f"{DEFAULT_DATA_PATH} not found: using the embedded sample {os.path.relpath(SAMPLE_PATH)} "
              "(see data/README.md to get the real MusicNet)")
        return SAMPLE_PATH
    raise DataError(f"{path} not found — download MusicNet (see data/README.md) or pass --data_path=...")


def split_ids(ids, split_path=""):
    """Recording ids → {'train', 'valid', 'test'} id lists (split file, else the standard split)."""
    if split_path:
        try:
            with open(split_path) as file:
                parts = json.load(file)
            split = {part: [str(song_id) for song_id in parts[part]] for part in ("train", "valid", "test")}
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise DataError(f"{split_path} is not a split file {{\"train\": [...], \"valid\": [...], \"test\": [...]}} ({err})") from None
        missing = sorted(set(sum(split.values(), [])) - set(ids))
        if missing:
            raise DataError(f"{split_path} names recordings the archive lacks: {', '.join(missing[:10])}")
        return split
    rng = np.random.default_rng(SPLIT_SEED)
    test = [song_id for song_id in ids if song_id in STANDARD_TEST_IDS]
    rest = [song_id for song_id in ids if song_id not in test]
    if not test:  # not MusicNet: hold out a deterministic share as test
        shuffled = list(rng.permutation(rest))
        count = max(1, round(VALID_FRACTION * len(rest))) if len(rest) > 2 else 0
        test, rest = sorted(shuffled[:count]), sorted(shuffled[count:])
    shuffled = list(rng.permutation(rest))
    count = max(1, round(VALID_FRACTION * len(rest))) if len(rest) > 1 else 0
    return {"train": sorted(shuffled[count:]), "valid": sorted(shuffled[:count]), "test": sorted(test)}


def frames_per_beat_and_bpm(settings):
    """(frames per MIDI beat, MIDI tempo in bpm) for writing rolls of these settings."""
    if settings["time_base"] == "beats":
        return settings["steps_per_beat"], settings["bpm"]
    return settings["steps_per_second"], 60.0  # one MIDI beat = one second: frame times stay exact


def bernoulli_nll(train_rolls, rolls):
    """Independent-Bernoulli baseline (each key's training frequency) → mean NLL per predicted frame, nats."""
    frames = np.concatenate(train_rolls)
    p = (frames.sum(axis=0) + 1.0) / (len(frames) + 2.0)
    targets = np.concatenate([roll[1:] for roll in rolls])
    return float(-(targets * np.log(p) + (~targets) * np.log1p(-p)).sum() / len(targets))


def most_played_program(programs, lengths):
    """1-based MIDI program that covers the most frames, given each song's program and length."""
    frames = {}
    for program, length in zip(programs, lengths):
        frames[program] = frames.get(program, 0) + length
    return max(frames, key=frames.get)


# ------------------------------------------------------------------ training

def make_window_dataset(train_rolls, settings):
    """A Keras PyDataset of random training windows; built here so keras loads only when training."""
    import keras

    class WindowDataset(keras.utils.PyDataset):
        """Random windows of seq_len + 1 frames from the training rolls, drawn afresh each epoch.

        Yields (windows, targets, weights): (batch, width, keys) float32,
        (batch, width - 1, keys) float32 and (batch, width - 1) float32, where
        width = seq_len + 1 (less if every song is shorter) and a weight of 0
        marks padding after a song shorter than a window. An epoch holds about
        as many target frames as the training rolls.
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

        def __len__(self):
            return self.batches

        def __getitem__(self, index):
            rng = np.random.default_rng([settings["seed"], self.epoch, index])
            keys = self.rolls[0].shape[1]
            windows = np.zeros((settings["batch_size"], self.width, keys), np.float32)
            weights = np.zeros((settings["batch_size"], self.width - 1), np.float32)
            for row, song in enumerate(rng.choice(len(self.rolls), settings["batch_size"], p=self.odds)):
                start = rng.integers(0, self.lengths[song] - min(self.lengths[song], self.width) + 1)
                piece = self.rolls[song][start:start + self.width]
                windows[row, :len(piece)] = transpose(piece, rng, settings["transpose_range"])
                weights[row, :len(piece) - 1] = 1.0
            return windows, windows[:, 1:], weights

        def on_epoch_end(self):
            self.epoch += 1

    return WindowDataset()


def transpose(piece, rng, semitones):
    """Shift a (frames, keys) roll by a random ±semitones that keeps every note on the keyboard."""
    active = np.nonzero(piece.any(axis=0))[0]
    if semitones == 0 or len(active) == 0:
        return piece
    shift = rng.integers(max(-semitones, -active[0]), min(semitones, piece.shape[1] - 1 - active[-1]) + 1)
    return np.roll(piece, shift, axis=1)


def build_model(settings, num_keys):
    """The MusicLSTM these settings describe, compiled with Adam and the frame NLL loss."""
    import keras
    from model import MusicLSTM, frame_nll
    model = MusicLSTM(num_keys=num_keys, units=settings["hidden_size"], layers=settings["num_layers"],
                      dropout=settings["dropout"], head=settings["head"], head_units=settings["head_size"])
    model.compile(optimizer=keras.optimizers.Adam(settings["learning_rate"], clipnorm=1.0), loss=frame_nll)
    return model


def mean_frame_nll(scorer, song_rolls):
    """Frame NLL (nats per predicted frame) of whole songs, each from its start with full context, by a model.SongScorer."""
    nats, frames = scorer.total_nll(song_rolls)
    return nats / max(frames, 1)


def train(model, train_rolls, valid_rolls, settings):
    """Fit the model on random windows; validate on whole songs each epoch; keep the best weights.

    Saves the best model to output_dir/best.keras and returns the Keras history dict.
    """
    import keras

    class ValidationNLL(keras.callbacks.Callback):
        """Adds val_frame_nll (whole held-out songs) to each epoch's logs."""

        def on_train_begin(self, logs=None):
            from model import SongScorer
            self.scorer = SongScorer(self.model)  # compiled once, reused every epoch

        def on_epoch_end(self, epoch, logs=None):
            logs["val_frame_nll"] = mean_frame_nll(self.scorer, valid_rolls)

    class TimeBudget(keras.callbacks.Callback):
        """Stops training at the first batch past max_minutes."""

        def on_train_begin(self, logs=None):
            self.deadline = time.monotonic() + 60 * settings["max_minutes"]

        def on_train_batch_end(self, batch, logs=None):
            if time.monotonic() > self.deadline:
                self.model.stop_training = True

    checkpoint = os.path.join(settings["output_dir"], "best.keras")
    monitor = {"monitor": "val_frame_nll", "mode": "min"}
    callbacks = [ValidationNLL(), TimeBudget(),
                 keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=max(1, settings["patience"] // 2), **monitor),
                 keras.callbacks.EarlyStopping(patience=settings["patience"], restore_best_weights=True, **monitor),
                 keras.callbacks.ModelCheckpoint(checkpoint, save_best_only=True, **monitor)]
    history = model.fit(make_window_dataset(train_rolls, settings), epochs=settings["epochs"],
                        callbacks=callbacks, verbose=1 if sys.stdout.isatty() else 2)
    print(f"best model: {checkpoint}")
    return history.history


# ------------------------------------------------------------------ generation and MIDI

def generate_song(model, primers, num_frames, temperature=1.0, seed=0):
    """Prime with (songs, frames, keys) bool rolls, then sample num_frames more → (songs, num_frames, keys) bool."""
    from tqdm import tqdm
    from model import Sampler
    frames = Sampler(model, temperature, seed).frames(primers, num_frames)
    return np.stack(list(tqdm(frames, total=num_frames, desc="composing", unit="frame")), axis=1)


def generate_MIDI(songs, settings, program):
    """Write each generated roll to output_dir/generated_N.mid; print path, seconds, notes → paths."""
    frames_per_beat, tempo = frames_per_beat_and_bpm(settings)
    paths = []
    for number, roll in enumerate(songs, start=1):
        path = os.path.join(settings["output_dir"], f"generated_{number}.mid")
        notes = roll_to_midi(roll, path, lowest_note=settings["lowest_note"], frames_per_beat=frames_per_beat,
                             bpm=tempo, program=program)
        seconds = len(roll) / frames_per_beat * 60.0 / tempo
        print(f"wrote {path}: {seconds:.1f} s, {notes} notes")
        if notes == 0:
            print(f"warning: {path} is silent — the model drew no notes (try more training or a higher temperature)")
        paths.append(path)
    return paths


# ------------------------------------------------------------------ main

def preprocess(data, settings):
    """Read and organize every recording → {'ids', 'rolls', 'programs', 'skipped': [(id, reason)]}; bad recordings are skipped."""
    from tqdm import tqdm
    ids = sources.archive_ids(data)
    songs = {"ids": [], "rolls": [], "programs": [], "skipped": []}
    recordings = sources.read_archive(data, ids, settings["max_member_mb"])
    for song_id, notes, problem in tqdm(recordings, total=len(ids), desc="preprocessing", unit="song"):
        try:
            roll = rolls.organize_song(notes, **settings) if problem is None else None
        except BadRecording as err:
            problem = str(err)
        if problem is not None:
            tqdm.write(f"warning: skipped recording '{song_id}': {problem}")
            songs["skipped"].append((song_id, problem))
            continue
        songs["ids"].append(song_id)
        songs["rolls"].append(roll)
        songs["programs"].append(rolls.main_program(notes))
    return songs


def load_or_preprocess(data, settings):
    """Rolls for a data file: 'auto' uses a matching cache or builds one; True rebuilds; False only loads."""
    path = rolls.cache_path(sources.fingerprint(data), settings["cache_dir"], settings)
    if settings["save_mode"] is False or (settings["save_mode"] == "auto" and os.path.exists(path)):
        if not os.path.exists(path):
            raise DataError(f"no roll cache matches these settings ({path}); run with --save_mode=True or auto")
        print(f"using roll cache {path}")
        return rolls.load_rolls(path)
    songs = preprocess(data, settings)
    make_dir(settings["cache_dir"], "cache folder")
    rolls.save_rolls(path, songs)
    print(f"built roll cache {path}")
    return songs


def load_songs(data, settings):
    """Data file → ({'train', 'valid', 'test'}: lists of rolls of two frames or more, split ids, training program)."""
    songs = load_or_preprocess(data, settings)
    if songs["skipped"]:
        print(f"skipped {len(songs['skipped'])} of {len(songs['ids']) + len(songs['skipped'])} recordings "
              "whose labels cannot be used: " + ", ".join(song_id for song_id, _ in songs["skipped"][:10]))
    usable = [i for i, roll in enumerate(songs["rolls"]) if roll.any(axis=1).sum() > 1]  # not empty, not one note
    ids = [songs["ids"][i] for i in usable]
    by_id = {songs["ids"][i]: songs["rolls"][i] for i in usable}
    split = split_ids(ids, settings["split_path"])
    parts = {part: [by_id[i] for i in split_part] for part, split_part in split.items()}
    if not all(parts.values()):
        raise DataError("need at least one usable song in each of train, valid and test (have "
                        + ", ".join(f"{len(parts[part])} {part}" for part in ("train", "valid", "test"))
                        + f" of {len(ids)} usable recordings)")
    print(f"songs: {len(parts['train'])} train, {len(parts['valid'])} valid, {len(parts['test'])} test; "
          f"{sum(map(len, parts['train']))} training frames")
    programs = dict(zip(songs["ids"], songs["programs"]))
    program = most_played_program([programs[i] for i in split["train"]], [len(by_id[i]) for i in split["train"]])
    return parts, split, program


def evaluate(model, parts):
    """Frame NLL of the model and of the independent-Bernoulli baseline on the held-out songs → dict."""
    from model import SongScorer
    scorer = SongScorer(model)
    return {"valid_frame_nll": mean_frame_nll(scorer, parts["valid"]),
            "test_frame_nll": mean_frame_nll(scorer, parts["test"]),
            "valid_frame_nll_baseline": bernoulli_nll(parts["train"], parts["valid"]),
            "test_frame_nll_baseline": bernoulli_nll(parts["train"], parts["test"])}


def compose(model, test_rolls, program, settings):
    """Prime with the openings of test songs, generate num_outputs pieces and write them as MIDI → paths."""
    if settings["num_outputs"] == 0 or settings["generate_frames"] == 0:
        print("generation skipped: num_outputs or generate_frames is 0")
        return []
    primers = [roll[:settings["primer_frames"]] for roll in test_rolls if len(roll) >= settings["primer_frames"]]
    if not primers:
        raise DataError(f"no held-out song has primer_frames={settings['primer_frames']} frames")
    primers = np.stack([primers[n % len(primers)] for n in range(settings["num_outputs"])])
    generated = generate_song(model, primers, settings["generate_frames"], settings["temperature"], settings["seed"])
    return generate_MIDI(generated, settings, program)


def run(settings):
    """The whole pipeline for resolved settings → metrics dict."""
    data = resolve_data_path(settings["data_path"])
    os.makedirs(settings["output_dir"], exist_ok=True)
    settings_path = os.path.join(settings["output_dir"], "settings.json")
    write_json(settings_path, {**settings, "resolved_data_path": os.path.abspath(data)})
    print(f"settings saved: {settings_path}")
    parts, split, program = load_songs(data, settings)

    import keras
    keras.utils.set_random_seed(settings["seed"])
    model = build_model(settings, num_keys=parts["train"][0].shape[1])
    started = time.monotonic()
    history = train(model, parts["train"], parts["valid"], settings)
    metrics = {**evaluate(model, parts), "epochs": len(history["loss"]),
               "train_minutes": (time.monotonic() - started) / 60, "test_songs": split["test"]}
    metrics_path = os.path.join(settings["output_dir"], "metrics.json")
    write_json(metrics_path, metrics)
    print(f"test frame NLL {metrics['test_frame_nll']:.3f} nats "
          f"(independent-Bernoulli baseline {metrics['test_frame_nll_baseline']:.3f}); {metrics_path}")
    compose(model, parts["test"], program, settings)
    return metrics


def main(argv=None):
    """Command-line entry point: resolve settings, run, turn user errors into one-line messages."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's start-up chatter out of the log
    argv = sys.argv[1:] if argv is None else argv
    if {"-h", "--help"} & set(argv):
        print(__doc__ + "\nsettings (defaults):\n" + "\n".join(f"  --{k}={v}" for k, v in default_settings().items()))
        return 0
    try:
        settings = resolve_settings(argv, default_settings())
        print("settings: " + ", ".join(f"{name}={value!r}" for name, value in settings.items()))
        run(settings)
    except (SettingsError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

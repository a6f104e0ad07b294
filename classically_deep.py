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
import math
import os
import shlex
import sys

import numpy as np

import midi_io
import musicstats
import rolls
import sources
from training import (Interrupted, Terminated, TrainingError, build_model, load_resume_model, mean_frame_nll,
                      remove_resume_checkpoint, resume_state, signal_handler, stop_at_once, train)
from distribute import describe_weights, start_distribution, wait_for_all
from files import DataError, check_readable_file, make_dir, write_json
from midi_io import roll_to_midi
from rolls import BadRecording

# ------------------------------------------------------------------ settings
# data
data_path = "data/musicnet.npz"  # MusicNet npz, CSV release folder, MIDI file or folder; absent default: the sample
split_path = ""                  # optional JSON {"train": [ids], "valid": [ids], "test": [ids]}; "" = standard split
cache_dir = "data/cache"         # where preprocessed piano rolls are cached (named by a settings hash)
save_mode = "auto"               # True: preprocess and save the cache; False: load the cache only; "auto": either
output_dir = "output"            # checkpoint, metrics.json, settings.json and MIDI files land here
max_member_mb = 1000.0           # largest archive member read, MB uncompressed (30 min of MusicNet audio is ~640)
max_frames = 1_000_000           # longest piano roll, frames; longer recordings are skipped
workers = 0                      # processes that read a CSV release or MIDI folder; 0 = one per core
composers = ""                   # only these composers, comma-separated (MusicNet metadata), e.g. "Bach,Mozart"; "" = all
ensembles = ""                   # only these ensembles, comma-separated (MusicNet metadata), e.g. "Solo Piano"; "" = all
programs = ""                    # only notes of these 1-based MIDI programs, comma-separated, e.g. "1" (piano); "" = all
# piano roll
lowest_note = 21                 # MIDI note of the roll's first key (21 = A0)
highest_note = 108               # MIDI note of the roll's last key (108 = C8)
time_base = "beats"              # "beats": frames on the score's beat grid; "seconds": frames in audio time
steps_per_beat = 4               # frames per quarter note when time_base = "beats"
steps_per_second = 8.0           # frames per second of audio time when time_base = "seconds"
# model
head = "nade"                    # "nade": keys of a frame drawn in turn; "sigmoid": independent keys
hidden_size = 256                # LSTM units per layer
num_layers = 1                   # stacked LSTM layers
head_size = 128                  # NADE hidden units (head = "nade")
dropout = 0.3                    # dropout on LSTM outputs during training, 0 to <1
pitch_profile = True             # the LSTM and the head also see each pitch class's share of the notes so far (holds the key)
# training
seq_len = 64                     # frames per training window
batch_size = 16                  # windows per batch (small batches: more updates per CPU minute)
epochs = 500                     # most passes over the training frames (max_minutes usually stops first); 0 = preprocess only
max_minutes = 4.0                # wall-clock training budget, minutes
learning_rate = 1e-2             # Adam step size at the start, halved on validation plateaus
patience = 20                    # epochs without validation improvement before stopping (the learning rate halves after half as many)
ema = 0.99                       # average of the weights validated and kept (Adam's EMA momentum; pays off after some hundred steps); 0 = off
transpose_range = 6              # random transposition of training windows, ± semitones (0 = off)
seed = 1234                      # same seed, same run (within the time budget); 0 to 2**32 - 1
resume = False                   # True: continue the interrupted run in output_dir from its last checkpoint
# several devices and hosts (JAX backend: KERAS_BACKEND=jax)
distribute = "none"              # "none": one device; "data_parallel": each batch split over every device of every process
coordinator_address = ""         # several processes: host:port of process 0, the same on every host; "" = from the environment or one process
num_processes = 0                # processes in the run, one per host; 0 = from the environment (or a SLURM / MPI cluster), else 1
process_id = -1                  # this process's index, 0 to num_processes - 1 (0 validates and writes the files); -1 = from the environment
# generation
primer_frames = 32               # frames of a held-out song's opening (or of primer_path) that prime the model
primer_path = ""                 # a MIDI file whose opening primes generation instead of held-out songs; "" = none
include_primer = True            # True: generated MIDI holds the primer, a marker, then the continuation
generate_frames = 256            # frames to compose after the primer
temperature = 1.0                # sampling temperature: < 1 safer (and sparser), > 1 wilder
note_floor = 0.005               # keys less likely than this (given the frame so far) are never drawn: no stray notes
num_outputs = 3                  # MIDI files to write
bpm = 100.0                      # tempo of generated MIDI when time_base = "beats", quarter notes per minute
soundfont = ""                   # General MIDI .sf2 for the WAVs; "" = TimGM6mb.sf2, installed with pretty_midi

SETTING_NAMES = [name for name, value in globals().items()
                 if not name.startswith("_") and isinstance(value, (bool, int, float, str))]
CHOICES = {"save_mode": ("auto", True, False), "time_base": ("beats", "seconds"), "head": ("nade", "sigmoid"),
           "distribute": ("none", "data_parallel")}
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


MAX_FRAMES_PER_BEAT = 32767 // midi_io.TICKS_PER_FRAME  # a MIDI file holds at most 32767 ticks per quarter note
MAX_SIZES = {"hidden_size": 4096, "head_size": 4096, "num_layers": 16, "batch_size": 4096, "seq_len": 100_000}


def check_settings(settings):
    """Refuse settings that cannot work, with a sentence saying why."""
    for name, value in settings.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise SettingsError(f"{name} must be a finite number, not {value}")
    for name in ("data_path", "output_dir", "cache_dir"):
        if not settings[name]:
            raise SettingsError(f"{name} must not be empty")
    if not 0 <= settings["lowest_note"] < settings["highest_note"] <= 127:
        raise SettingsError("need 0 <= lowest_note < highest_note <= 127")
    for name in ("dropout", "ema", "note_floor"):
        if not 0 <= settings[name] < 1:
            raise SettingsError(f"{name} must be in [0, 1)")
    for name in ("steps_per_beat", "steps_per_second", "hidden_size", "num_layers", "head_size", "seq_len",
                 "batch_size", "max_minutes", "learning_rate", "temperature", "primer_frames",
                 "max_member_mb", "max_frames"):
        if settings[name] <= 0:
            raise SettingsError(f"{name} must be positive, not {settings[name]}")
    for name in ("epochs", "transpose_range", "generate_frames", "num_outputs", "patience", "workers"):
        if settings[name] < 0:
            raise SettingsError(f"{name} must not be negative, not {settings[name]}")
    for name, most in MAX_SIZES.items():
        if settings[name] > most:
            raise SettingsError(f"{name} must be at most {most}, not {settings[name]}")
    for name in ("steps_per_beat", "steps_per_second"):
        if settings[name] > MAX_FRAMES_PER_BEAT:
            raise SettingsError(f"{name} must be at most {MAX_FRAMES_PER_BEAT} (the finest grid a MIDI file "
                                f"can hold), not {settings[name]}")
    if not 4 <= settings["bpm"] <= 1000:
        raise SettingsError(f"bpm must be between 4 and 1000, not {settings['bpm']}")
    if not 0 <= settings["seed"] < 2 ** 32:
        raise SettingsError(f"seed must be between 0 and {2 ** 32 - 1}, not {settings['seed']}")


def organize_song(labels, **settings):
    """One recording's labels (MusicNet intervals, or a NOTE_DTYPE array) → (frames, keys) bool piano roll."""
    notes = labels if isinstance(labels, np.ndarray) and labels.dtype == rolls.NOTE_DTYPE else sources.notes_from_labels(labels)
    return rolls.organize_song(notes, **settings)


# ------------------------------------------------------------------ data

def resolve_data_path(path):
    """The data to read: the given path, or the embedded sample when the default is absent; a file must be readable."""
    if not os.path.lexists(path):
        if path != DEFAULT_DATA_PATH:
            raise DataError(f"{path} not found — download MusicNet (see data/README.md) or pass --data_path=...")
        print(f"{DEFAULT_DATA_PATH} not found: using the embedded sample {os.path.relpath(SAMPLE_PATH)} "
              "(see data/README.md to get the real MusicNet)")
        path = SAMPLE_PATH
    if not os.path.isdir(path):  # what a folder holds is the reader's to judge
        check_readable_file(path, "data file")  # a FIFO or device is refused before anything opens it
    return path


MAX_SPLIT_MB = 10  # a split file lists ids: MusicNet's is a few kB


def read_split(split_path):
    """Split file → {'train', 'valid', 'test'}: lists of str ids, checked: three lists of ids, no id twice."""
    info = check_readable_file(split_path, "split file")
    if info.st_size > MAX_SPLIT_MB * 1e6:
        raise DataError(f"split file {split_path} is {info.st_size / 1e6:.0f} MB; a split file lists ids "
                        f"(at most {MAX_SPLIT_MB} MB)")
    shape = '{"train": [ids], "valid": [ids], "test": [ids]}'
    try:
        with open(split_path, encoding="utf-8") as file:
            parts = json.load(file)
    except (OSError, ValueError, RecursionError) as err:
        raise DataError(f"split file {split_path} is not JSON like {shape} ({str(err)[:120]})") from None
    if not isinstance(parts, dict) or not all(isinstance(parts.get(part), list) for part in ("train", "valid", "test")):
        raise DataError(f"split file {split_path} is not {shape}")
    split = {}
    for part in ("train", "valid", "test"):
        bad = [song_id for song_id in parts[part] if type(song_id) not in (str, int)]
        if bad:
            raise DataError(f"split file {split_path}: {part} holds {str(bad[0])[:40]!r}, not a recording id")
        split[part] = [str(song_id) for song_id in parts[part]]
    seen = {}
    for part, part_ids in split.items():
        for song_id in part_ids:
            seen.setdefault(song_id, []).append(part)
    repeated = {song_id: places for song_id, places in seen.items() if len(places) > 1}
    if repeated:
        listed = ", ".join(f"{song_id} ({' and '.join(places)})" for song_id, places in list(repeated.items())[:10])
        raise DataError(f"split file {split_path} names {len(repeated)} recording(s) more than once: {listed}")
    return split


def split_ids(ids, split_path="", unusable=(), test_ids=None, aliases=None):
    """Recording ids → {'train', 'valid', 'test'} id lists: a split file; else the source's own test set
    (test_ids: a CSV release's test_labels/) or MusicNet's standard one, and a fixed 10% of the rest
    for validation; else a deterministic 10% / 10% split.

    Ids of a split file that are in `unusable` (recordings skipped as unusable)
    are dropped with a note; ids the data lacks altogether are an error.
    aliases: other names the split file may use for an id (a MIDI file's relative path).
    """
    if split_path:
        split = read_split(split_path)
        split = {part: [(aliases or {}).get(song_id, song_id) for song_id in part_ids] for part, part_ids in split.items()}
        named, unusable = sum(split.values(), []), set(unusable)
        known = set(ids) | unusable
        missing = [song_id for song_id in named if song_id not in known]
        if missing:
            raise DataError(f"{split_path} names recordings the archive lacks: {', '.join(missing[:10])}")
        dropped = [song_id for song_id in named if song_id in unusable]
        if dropped:
            print(f"note: {split_path} names {len(dropped)} recording(s) skipped as unusable; left out of the "
                  f"split: {', '.join(dropped[:10])}")
        return {part: [song_id for song_id in part_ids if song_id not in unusable]
                for part, part_ids in split.items()}
    rng = np.random.default_rng(SPLIT_SEED)
    held_out = set(STANDARD_TEST_IDS if test_ids is None else test_ids)
    test = [song_id for song_id in ids if song_id in held_out]
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


# ------------------------------------------------------------------ reading, organizing and caching

def note_filters(source, settings):
    """The recordings to read (composers / ensembles from the metadata) and the programs to keep → (ids, programs or None)."""
    ids = sorted(source.recordings)
    for name, column in (("composers", "composer"), ("ensembles", "ensemble")):
        wanted = {value.strip().lower() for value in settings[name].split(",") if value.strip()}
        if not wanted:
            continue
        if not source.metadata:
            raise DataError(f"--{name} needs MusicNet's metadata ({sources.METADATA_FILE}), and "
                            f"{source.path} has none beside it")
        known = sorted({row.get(column, "") for row in source.metadata.values()})
        unknown = sorted(wanted - {value.lower() for value in known})
        if unknown:
            raise DataError(f"--{name}: no recording has {column} {', '.join(map(repr, unknown))}; "
                            f"known: {', '.join(known[:30])}")
        ids = [song_id for song_id in ids if source.metadata.get(song_id, {}).get(column, "").lower() in wanted]
    programs = None
    if settings["programs"].strip():
        try:
            programs = sorted({int(value) for value in settings["programs"].split(",") if value.strip()})
        except ValueError:
            raise DataError(f"--programs must list MIDI program numbers 1-128, like \"1,41\", not {settings['programs']!r}") from None
        if not all(1 <= program <= 128 for program in programs):
            raise DataError(f"--programs must list MIDI program numbers 1-128, not {settings['programs']!r}")
    return ids, programs


def organize_recording(song_id, notes, problem, programs, settings):
    """One recording's notes (or the reason it has none) → (id, roll or None, 1-based program, label form, problem,
    labels read)."""
    if problem is not None:
        return song_id, None, 1, None, problem, 0
    form, count = sources.label_form(notes), len(notes)
    if programs is not None:
        notes = notes[np.isin(notes["instrument"], programs)]
    try:
        return song_id, rolls.organize_song(notes, **settings), rolls.main_program(notes), form, None, count
    except BadRecording as err:
        return song_id, None, 1, form, str(err), count


_WORK = {}  # what each reader process needs: the source, programs and settings, set once by its initializer


def _start_reader(source, programs, settings):
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle; it ends the pool
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the pool ends its readers with SIGTERM: no traceback
    _WORK.update(source=source, programs=programs, settings=settings)


def _read_and_organize(song_id):
    """In a reader process: one recording → organize_recording's tuple, the roll packed 8 keys a byte
    (an eighth of the bytes to send back)."""
    notes, problem = sources.read_song(_WORK["source"], song_id, _WORK["settings"]["max_member_mb"])
    song_id, roll, *rest = organize_recording(song_id, notes, problem, _WORK["programs"], _WORK["settings"])
    return song_id, None if roll is None else (np.packbits(roll, axis=1), roll.shape), *rest


def _unpacked(result):
    """_read_and_organize's tuple with its roll as (frames, keys) bool again."""
    song_id, packed, *rest = result
    roll = None if packed is None else np.unpackbits(packed[0], axis=1, count=packed[1][1]).astype(bool).reshape(packed[1])
    return song_id, roll, *rest


def organized_recordings(source, ids, programs, settings):
    """Yield organize_recording's tuple for each id, in order, read on `workers` processes (each process reads
    one npz member at a time, its audio passed over unread)."""
    count = min(settings["workers"] or os.cpu_count() or 1, max(1, len(ids) // 8))
    if count <= 1:
        yield from (organize_recording(song_id, *sources.read_song(source, song_id, settings["max_member_mb"]), programs,
                                       settings) for song_id in ids)
        return
    import multiprocessing
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    with context.Pool(count, initializer=_start_reader, initargs=(source, programs, settings)) as pool:
        chunk = 1 if source.kind == "npz" else max(1, min(64, len(ids) // (count * 16)))  # members are big: one at a time
        results = pool.imap(_read_and_organize, ids, chunksize=chunk)
        yield from map(_unpacked, results)


def preprocess(source, settings):
    """Read and organize the chosen recordings → {'ids', 'rolls', 'programs', 'skipped': [(id, reason)]}; bad recordings are skipped."""
    from tqdm import tqdm
    ids, programs = note_filters(source, settings)
    songs = {"ids": [], "rolls": [], "programs": [], "skipped": []}
    forms, labels = {}, 0
    results = organized_recordings(source, ids, programs, settings)
    for song_id, roll, program, form, problem, count in tqdm(results, total=len(ids), desc="preprocessing", unit="song"):
        forms[form] = forms.get(form, 0) + 1
        labels += count
        if problem is not None:
            tqdm.write(f"warning: skipped recording '{song_id}': {problem}")
            songs["skipped"].append((song_id, problem))
            continue
        songs["ids"].append(song_id)
        songs["rolls"].append(roll)
        songs["programs"].append(program)
    forms.pop(None, None)
    print(f"read {labels} labels; label timing: "
          + ", ".join(f"{count} recordings with {form}" for form, count in sorted(forms.items())))
    return songs


def cache_key(source, settings):
    """What the roll cache depends on besides the roll settings: the source's files and the filters."""
    return {**sources.source_fingerprint(source), **{name: settings[name] for name in ("composers", "ensembles", "programs")}}


def load_or_preprocess(source, settings, save=True):
    """Rolls for a source: 'auto' uses a matching cache or builds one; True rebuilds; False only loads.
    save=False: a cache built is kept in memory only (processes other than 0 write no files)."""
    path = rolls.cache_path(cache_key(source, settings), settings["cache_dir"], settings)
    if settings["save_mode"] is False or (settings["save_mode"] == "auto" and os.path.exists(path)):
        if not os.path.exists(path):
            raise DataError(f"no roll cache matches these settings ({path}); run with --save_mode=True or auto")
        print(f"using roll cache {path}")
        return rolls.load_rolls(path, num_keys=settings["highest_note"] - settings["lowest_note"] + 1)
    if save:
        make_dir(settings["cache_dir"], "cache folder")  # before the work, not after it
    songs = preprocess(source, settings)
    if save:
        rolls.save_rolls(path, songs)
        print(f"built roll cache {path}")
    return songs


def load_songs(source, settings, save=True):
    """Source → ({'train', 'valid', 'test'}: lists of rolls with two sounding frames or more, split ids, training program);
    save: whether a roll cache built may be written."""
    songs = load_or_preprocess(source, settings, save)
    total = len(songs["ids"]) + len(songs["skipped"])
    if songs["skipped"]:
        print(f"skipped {len(songs['skipped'])} of {total} recordings that cannot be used (see the warnings): "
              + ", ".join(song_id for song_id, _ in songs["skipped"][:10]))
    usable = [i for i, roll in enumerate(songs["rolls"]) if roll.any(axis=1).sum() > 1]  # something to predict
    short = [songs["ids"][i] for i in sorted(set(range(len(songs["ids"]))) - set(usable))]
    if short:
        print(f"skipped {len(short)} of {total} recordings with fewer than two frames that sound (empty, or "
              "too short to learn from): " + ", ".join(short[:10]))
    ids = [songs["ids"][i] for i in usable]
    by_id = {songs["ids"][i]: songs["rolls"][i] for i in usable}
    split = split_ids(ids, settings["split_path"], unusable=short + [song_id for song_id, _ in songs["skipped"]],
                      test_ids=source.test_ids or None, aliases=source.aliases)
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


# ------------------------------------------------------------------ generation and MIDI

def generate_song(model, primers, num_frames, temperature=1.0, seed=0, floor=0.0):
    """Prime with (songs, frames, keys) bool rolls, then sample num_frames more → (songs, num_frames, keys) bool."""
    from tqdm import tqdm
    from model import Sampler
    frames = Sampler(model, temperature, seed, floor).frames(primers, num_frames)
    return np.stack(list(tqdm(frames, total=num_frames, desc="composing", unit="frame")), axis=1)


def generate_MIDI(songs, settings, program, primer_frames=None):
    """Write each generated roll to output_dir/generated_N.mid (a marker at primer_frames, where the model
    takes over, when the roll starts with its primer); print path, seconds, notes → paths."""
    frames_per_beat, tempo = frames_per_beat_and_bpm(settings)
    paths = []
    for number, roll in enumerate(songs, start=1):
        path = os.path.join(settings["output_dir"], f"generated_{number}.mid")
        notes = roll_to_midi(roll, path, lowest_note=settings["lowest_note"], frames_per_beat=frames_per_beat,
                             bpm=tempo, program=program, marker_frame=primer_frames)
        seconds = len(roll) / frames_per_beat * 60.0 / tempo
        print(f"wrote {path}: {seconds:.1f} s, {notes} notes")
        if notes == 0:
            print(f"warning: {path} is silent — the model drew no notes (try more training or a higher temperature)")
        paths.append(path)
    return paths


def read_primer(settings):
    """primer_path's opening primer_frames frames on the run's own grid → (frames, keys) bool roll; DataError if silent."""
    path = settings["primer_path"]
    roll = rolls.organize_song(midi_io.midi_to_notes(path), **settings)[:settings["primer_frames"]]
    if not roll.any():
        raise DataError(f"primer {path} has no notes between MIDI {settings['lowest_note']} and "
                        f"{settings['highest_note']} in its first {settings['primer_frames']} frames")
    if len(roll) < settings["primer_frames"]:
        print(f"note: primer {path} is {len(roll)} frames long, shorter than primer_frames={settings['primer_frames']}")
    return roll


def compose(model, test_rolls, program, settings):
    """Prime with primer_path or the openings of test songs, generate num_outputs pieces, write them as MIDI
    → [{'name', 'midi', 'roll' (primer included when include_primer), 'primer_frames' (0 if not)}]."""
    if settings["num_outputs"] == 0 or settings["generate_frames"] == 0:
        print("generation skipped: num_outputs or generate_frames is 0")
        return []
    if settings["primer_path"]:
        primers = [read_primer(settings)]
    else:
        primers = [roll[:settings["primer_frames"]] for roll in test_rolls if len(roll) >= settings["primer_frames"]]
    if not primers:
        raise DataError(f"no held-out song has primer_frames={settings['primer_frames']} frames")
    primers = np.stack([primers[n % len(primers)] for n in range(settings["num_outputs"])])
    generated = generate_song(model, primers, settings["generate_frames"], settings["temperature"], settings["seed"],
                              settings["note_floor"])
    primer_frames = primers.shape[1] if settings["include_primer"] else 0
    songs = np.concatenate([primers, generated], axis=1) if primer_frames else generated
    paths = generate_MIDI(songs, settings, program, primer_frames=primer_frames or None)
    return [{"name": os.path.splitext(os.path.basename(path))[0], "midi": path, "roll": roll, "primer_frames": primer_frames}
            for path, roll in zip(paths, songs)]


# ------------------------------------------------------------------ judging, listening and looking

# (statistic, side of the real songs' range) → what a figure there usually means
FLAG_REASONS = {("empty_frame_rate", "above"): "silence", ("polyphony", "below"): "no harmony",
                ("polyphony_rate", "below"): "no harmony", ("pitch_class_entropy", "above"): "chromatic noise",
                ("scale_consistency", "below"): "chromatic noise", ("distinct_pitches", "below"): "a stuck note",
                ("mean_note_beats", "above"): "a stuck note", ("mean_note_seconds", "above"): "a stuck note",
                ("longest_copy_bars", "above"): "copying"}
COPY_LIMIT_BARS = 2.0  # a generated stretch found in a training song for this long or longer is flagged as copying


def frames_per_bar(settings):
    """Frames in a 4/4 bar: 4 quarter notes on the beat grid, 2 seconds (4 beats at 120 bpm) on the seconds grid."""
    return 4 * (settings["steps_per_beat"] if settings["time_base"] == "beats" else settings["steps_per_second"] / 2)


def piece_statistics(roll, training_rolls, settings):
    """musicstats.music_statistics of a roll on the run's grid, plus longest_copy_bars: its longest stretch found in a training roll."""
    unit = settings["steps_per_beat"] if settings["time_base"] == "beats" else settings["steps_per_second"]
    stats = musicstats.music_statistics(roll, lowest_note=settings["lowest_note"], time_base=settings["time_base"],
                                        frames_per_unit=unit)
    return {**stats, "longest_copy_bars": musicstats.longest_copy(roll, training_rolls) / frames_per_bar(settings)}


def judge(pieces, parts, split, settings):
    """Music statistics of each generated piece (after its primer) beside every held-out song's, with flags on
    figures outside the held-out songs' range → {'statistics', 'pieces', 'held_out', 'reference', 'flags'}."""
    def statistics(roll):
        return piece_statistics(roll, parts["train"], settings)

    held_out = {song_id: statistics(roll) for song_id, roll in zip(split["valid"] + split["test"], parts["valid"] + parts["test"])}
    names = list(next(iter(held_out.values())))
    reference = {name: musicstats.compare_to_reference([], [stats[name] for stats in held_out.values()]) for name in names}
    generated = {piece["name"]: statistics(piece["roll"][piece["primer_frames"]:]) for piece in pieces}
    flags = {}
    for piece, stats in generated.items():
        for name, value in stats.items():
            low, high = reference[name]["min"], reference[name]["max"]
            side = "above" if value > high else "below" if value < low else "inside" if value == value else "undefined"
            if name == "longest_copy_bars":
                side = "above" if value >= COPY_LIMIT_BARS else "inside"
                low, high = 0.0, COPY_LIMIT_BARS
            if side != "inside":
                reason = FLAG_REASONS.get((name, side), "unlike the real songs")
                flags.setdefault(piece, {})[name] = f"{side} [{low:.3g}, {high:.3g}]: {reason}"
    return {"statistics": names, "pieces": generated, "held_out": held_out,
            "reference": {name: {key: reference[name][key] for key in ("mean", "min", "max")} for name in names},
            "flags": flags}


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


def listen_and_look(pieces, table, metrics, settings):
    """A WAV and a piano-roll PNG beside each piece's MIDI, the loss plot and output_dir/report.html → the report's path."""
    import listen
    import report
    out = settings["output_dir"]
    frames_per_unit, _ = frames_per_beat_and_bpm(settings)
    unit = "beats" if settings["time_base"] == "beats" else "seconds"
    shown = []
    for piece in pieces:
        wav, png = os.path.join(out, piece["name"] + ".wav"), os.path.join(out, piece["name"] + ".png")
        entry = {"name": piece["name"], "midi": piece["midi"], "wav": None, "png": png,
                 "statistics": table["pieces"][piece["name"]]}
        try:
            audio = listen.render_wav(piece["midi"], wav, soundfont=settings["soundfont"])
            entry["wav"] = wav
            print(f"wrote {wav}: {audio['seconds']:.1f} s ({audio['renderer']})")
        except DataError as err:
            entry["wav_error"] = str(err)
            print(f"warning: no audio for {piece['name']}: {err}")
        report.plot_roll(piece["roll"], png, lowest_note=settings["lowest_note"], frames_per_unit=frames_per_unit,
                         unit=unit, primer_frames=piece["primer_frames"])
        print(f"wrote {png}")
        shown.append(entry)
    loss_plot = report.plot_losses(metrics["history"], os.path.join(out, "loss.png"))
    print(f"wrote {loss_plot}")
    page = report.write_report(out, settings=settings, metrics=metrics, pieces=shown, statistics_table=table,
                               loss_plot=loss_plot)
    print(f"wrote {page} — open it in a browser to listen and look")
    return page


# ------------------------------------------------------------------ main

def run(settings):
    """The whole pipeline for resolved settings → metrics dict."""
    data = resolve_data_path(settings["data_path"])
    if settings["split_path"]:
        read_split(settings["split_path"])  # a bad split file is refused before the preprocessing
    if settings["primer_path"]:
        read_primer(settings)  # and a bad primer before the training
    writes = start_distribution(settings) == 0  # process 0 (or the only one) validates, evaluates, generates, writes
    out = settings["output_dir"]
    if writes:
        make_dir(out, "output folder")
    source = sources.open_source(data)
    print(f"data: {sources.describe(source)}")
    fingerprint = cache_key(source, settings)
    resumed = resume_state(settings, fingerprint)
    settings_path = os.path.join(out, "settings.json")
    if writes:
        write_json(settings_path, {**settings, "resolved_data_path": os.path.abspath(data), "data_fingerprint": fingerprint})
        print(f"settings saved: {settings_path}")
    parts, split, program = load_songs(source, settings, save=writes)
    if settings["epochs"] == 0:
        print(f"epochs=0: preprocessing only, nothing trained. Rolls of {parts['train'][0].shape[1]} keys: "
              + ", ".join(f"{len(parts[part])} {part} recordings ({sum(map(len, parts[part]))} frames)" for part in parts))
        return {}

    import keras
    keras.utils.set_random_seed(settings["seed"])
    if resumed:
        model = load_resume_model(out, resumed)
        print(f"resuming the interrupted run at epoch {resumed['epoch'] + 1} "
              f"({resumed['minutes']:.1f} of {settings['max_minutes']:g} minutes used)")
    else:
        songs = [roll for part in parts.values() for roll in part]
        model = build_model(settings, num_keys=songs[0].shape[1], max_notes=max(rolls.most_keys_on(songs), 1))
    history, minutes = train(model, parts["train"], parts["valid"], settings, resumed)
    if settings["distribute"] != "none":
        print(describe_weights(model))
    if not writes:
        print("training done; waiting while process 0 evaluates, generates and writes the files")
        wait_for_all()
        return {"epochs": len(history["loss"]), "train_minutes": minutes, "history": history}
    remove_resume_checkpoint(out)  # training is over: best.keras holds what is worth keeping
    metrics = {**evaluate(model, parts), "epochs": len(history["loss"]), "train_minutes": minutes,
               "test_songs": split["test"], "history": history}
    metrics_path = os.path.join(out, "metrics.json")
    write_json(metrics_path, metrics)
    print(f"test frame NLL {metrics['test_frame_nll']:.3f} nats "
          f"(independent-Bernoulli baseline {metrics['test_frame_nll_baseline']:.3f}); {metrics_path}")
    pieces = compose(model, parts["test"], program, settings)
    if pieces:
        table = judge(pieces, parts, split, settings)
        print_statistics(table)
        metrics["statistics"] = {key: table[key] for key in ("pieces", "held_out", "reference", "flags")}
        write_json(metrics_path, metrics)
        listen_and_look(pieces, table, metrics, settings)
    wait_for_all()  # the other processes of a distributed run end with this one
    return metrics


def resume_command(argv):
    """The shell command that continues this run: same folder, interpreter, script and settings, plus --resume=True."""
    script = min(os.path.abspath(__file__), os.path.relpath(os.path.abspath(__file__)), key=len)
    args = [arg for arg in argv if not arg.startswith("--resume=")] + ["--resume=True"]
    return f"cd {shlex.quote(os.getcwd())} && {shlex.join([sys.executable, script, *args])}"


def main(argv=None):
    """Command-line entry point: resolve settings, run, turn every failure into a one-line message.

    Exit status: 0 done; 2 a setting, path or file that cannot be used, or
    training that diverged before any usable epoch; 1 the system failed (out
    of memory, disk full...); 130 / 143 stopped by SIGINT / SIGTERM. Stopped
    in training, the run first saves a checkpoint and prints the command that
    continues it (the same arguments plus --resume=True).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's start-up chatter out of the log
    argv = sys.argv[1:] if argv is None else argv
    if {"-h", "--help"} & set(argv):
        print(__doc__ + "\nsettings (defaults):\n" + "\n".join(f"  --{k}={v}" for k, v in default_settings().items()))
        return 0
    try:
        with signal_handler(stop_at_once):  # SIGTERM too unwinds through the clean-up, like Ctrl-C
            settings = resolve_settings(argv, default_settings())
            print("settings: " + ", ".join(f"{name}={value!r}" for name, value in settings.items()))
            run(settings)
    except (SettingsError, DataError, TrainingError) as err:
        return fail(f"error: {err}", 2)
    except Interrupted as err:
        print(err, file=sys.stderr)
        return fail(f"to continue: {resume_command(argv)}", err.exit_code)
    except KeyboardInterrupt as err:
        if isinstance(err, Terminated):
            return fail("terminated (SIGTERM): stopped; files already written are complete", 143)
        return fail("interrupted (SIGINT): stopped; files already written are complete", 130)
    except MemoryError:
        return fail("error: out of memory; try a smaller batch_size, seq_len, hidden_size or max_frames", 1)
    except OSError as err:
        where = f": {err.filename}" if err.filename else ""
        return fail(f"error: {err.strerror or err}{where}", 1)
    except Exception as err:
        # out of memory on a device: TensorFlow's, PyTorch's, or JAX's RESOURCE_EXHAUSTED runtime error
        if type(err).__name__ not in ("ResourceExhaustedError", "OutOfMemoryError") and "RESOURCE_EXHAUSTED" not in str(err):
            raise
        return fail("error: out of memory; try a smaller batch_size, seq_len, hidden_size or head_size", 1)
    return 0


def fail(message, code):
    """Print a one-line message on stderr → the exit status."""
    print(message, file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())

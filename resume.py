"""Signals, resume checkpoints and earlier runs: Ctrl-C / SIGTERM as exceptions; resume.keras + resume.json, written
and checked; a finished run's files moved to output_dir/earlier/N before a fresh run writes its own.

    state = resume_state(settings, data_fingerprint)  # None for a fresh run; refuses what cannot continue
    keep_earlier_run(output_dir)                      # a fresh run: the earlier run's files → output_dir/earlier/N

Imports no Keras (the driver imports this module before Keras loads); the
model is saved through the object it is given, and loaded by training.py.
"""
import contextlib
import hashlib
import json
import math
import os
import re
import signal
import sys
import threading
import zipfile

import distribute
from files import DataError, atomic_path, check_readable_file, make_dir, printable, read_json, write_json
from rolls import frame_width

# settings that --resume=True may change; any other must be as the interrupted run had it
RESUMABLE_CHANGES = ("output_dir", "cache_dir", "save_mode", "max_member_mb", "workers", "resume", "epochs", "sample_seed",
                     "distribute", "coordinator_address", "num_processes", "process_id",
                     "max_minutes", "plateau", "patience", "primer_frames", "primer_path", "include_primer", "generate_frames",
                     "temperature", "note_floor", "num_outputs", "bpm", "soundfont", "instrument", "velocity")
RESUME_FIELDS = {"epoch": int, "minutes": (int, float), "learning_rate": (int, float), "history": dict,
                 "callbacks": dict, "checkpoint_sha256": str}
HISTORY_KEYS = ("loss", "val_frame_nll")  # in every history, one value per epoch (beside Keras' learning_rate)
# the attributes each resumable callback of training.py saves: its class name → their names
CALLBACK_STATES = {"Plateau": ("best", "wait", "cooldown_counter"), "Patience": ("best", "wait", "best_epoch"),
                   "BestCheckpoint": ("best", "best_epoch")}
# each saved callback attribute → (what it must be, whether a value is that, given the epochs done)
STATE_VALUES = {
    "best": ("null or a number", lambda value, epoch: value is None or _number(value) and not math.isnan(value)),
    "wait": ("a count of epochs up to epoch", lambda value, epoch: _is(value, int) and 0 <= value <= epoch),
    "cooldown_counter": ("a count of epochs up to epoch", lambda value, epoch: _is(value, int) and 0 <= value <= epoch),
    "best_epoch": ("null or the index of an epoch done", lambda value, epoch: value is None
                   or _is(value, int) and 0 <= value < max(epoch, 1)),
}
KIND_NAMES = {dict: "an object", list: "a list", str: "a string", bool: "true or false", int: "an integer",
              float: "a number", type(None): "null"}  # what json.load gives, in words
MAX_RESUME_BYTES = 16 * 2 ** 20   # resume.json: room for the history of 200,000 epochs; a larger one is refused unread
MAX_SETTINGS_BYTES = 2 ** 20      # the settings.json beside it
MAX_CONFIG_BYTES = 2 ** 20        # the config.json inside resume.keras (ours: about 1 KB)
# the files a run writes in output_dir (resume.* aside: a fresh run over those is refused); any other file stays
RUN_FILES = re.compile(r"settings\.json|metrics\.json|best\.keras|loss\.png|report\.html"
                       r"|generated_[0-9]+\.(mid|wav|png)")


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


def keep_earlier_run(output_dir):
    """Move output_dir's RUN_FILES (not folders) into a new earlier/N, N above the highest; say so → it or None."""
    names = sorted(entry.name for entry in os.scandir(output_dir)
                   if RUN_FILES.fullmatch(entry.name) and not entry.is_dir(follow_symlinks=False))
    if not names:
        return None
    earlier = os.path.join(output_dir, "earlier")
    make_dir(earlier, "folder for earlier runs")
    numbers = [int(name) for name in os.listdir(earlier) if re.fullmatch("[0-9]+", name)]
    kept = os.path.join(earlier, str(max(numbers, default=0) + 1))
    os.mkdir(kept)  # new and empty: no file in it is ever replaced
    for name in names:
        os.replace(os.path.join(output_dir, name), os.path.join(kept, name))
    print(f"kept the earlier run in {printable(kept)}")
    return kept


def resume_state(settings, data_fingerprint):
    """With --resume=True: the progress in output_dir/resume.json, once these settings may continue it; else None.

    Refuses (DataError, one line naming the file and the fault): resuming
    where there is no interrupted run; a resume.json or settings.json that
    is too large, not JSON, or holds progress this program never writes
    (wrong types, out of range, history lengths that disagree with the
    epoch); settings or data that shape the model differently; a
    resume.keras that is not the one resume.json describes; and a fresh run
    over an interrupted one, which would throw its checkpoint away.
    """
    out = settings["output_dir"]
    marker, checkpoint = os.path.join(out, "resume.json"), os.path.join(out, "resume.keras")
    if not settings["resume"]:
        if os.path.lexists(marker):
            raise DataError(f"{printable(out)} holds an interrupted run: continue it with --resume=True, or delete "
                            f"{printable(marker)} (or pick another --output_dir) to start afresh")
        return None
    if not os.path.lexists(marker):
        raise DataError(f"--resume=True but {printable(out)} holds no interrupted run to continue "
                        f"({printable(marker)} not found)")
    saved = read_small_json(os.path.join(out, "settings.json"), "settings file", MAX_SETTINGS_BYTES)
    state = read_small_json(marker, "resume file", MAX_RESUME_BYTES)
    if not isinstance(saved, dict):
        raise DataError(f"cannot resume: the settings file beside {printable(marker)} is damaged: it holds "
                        f"{_kind(saved)}, not an object")
    fault = progress_fault(state, settings["learning_rate"])
    if fault:
        raise DataError(f"cannot resume: {printable(marker)} is damaged: {fault}")
    missing = [name for name in settings if name not in RESUMABLE_CHANGES and name not in saved]
    if missing:
        raise DataError(f"cannot resume: the interrupted run in {printable(out)} was saved by an earlier version, "
                        f"without the settings {', '.join(missing)}, and cannot go on: delete {printable(marker)} "
                        "(or pick another --output_dir) to train afresh")
    changed = [f"{name} (was {brief(saved.get(name))}, now {brief(value)})"
               for name, value in settings.items() if name not in RESUMABLE_CHANGES and saved.get(name) != value]
    if changed:
        raise DataError("cannot resume: settings that shape the data or the model differ from the interrupted "
                        "run's: " + ", ".join(changed))
    if saved.get("data_fingerprint") != data_fingerprint:
        raise DataError(f"cannot resume: the data file {printable(settings['data_path'])} changed since the "
                        "interrupted run")
    check_readable_file(checkpoint, "resume checkpoint")
    if file_sha256(checkpoint) != state["checkpoint_sha256"]:
        raise DataError(f"cannot resume: {printable(checkpoint)} is not the checkpoint {printable(marker)} describes "
                        "(damaged or replaced)")
    if state["callbacks"]["BestCheckpoint"]["best_epoch"] is not None:
        check_readable_file(os.path.join(out, "best.keras"), "best checkpoint")
    return state


def read_small_json(path, what, most_bytes):
    """A JSON file of at most most_bytes → its value; a larger one is refused before it is read (DataError)."""
    size = check_readable_file(path, what).st_size
    if size > most_bytes:
        raise DataError(f"cannot resume: {what} {printable(path)} holds {size} bytes, more than it ever needs "
                        f"({most_bytes})")
    return read_json(path, what)


def progress_fault(state, learning_rate):
    """What is wrong with the progress read from resume.json → a phrase, or None when it is as train() writes it.
    learning_rate: the run's starting one, which the saved one can only be at most (the plateau halves it)."""
    if not isinstance(state, dict):
        return f"it holds {_kind(state)}, not an object"
    if set(state) != set(RESUME_FIELDS):
        return f"its fields are {brief(sorted(state))}, not {', '.join(RESUME_FIELDS)}"
    for key, kinds in RESUME_FIELDS.items():
        if not _is(state[key], kinds):
            named = " or ".join(KIND_NAMES[kind] for kind in (kinds if isinstance(kinds, tuple) else (kinds,)))
            return f"{key} is {brief(state[key])}, not {named}"
    if state["epoch"] < 0:
        return f"epoch is {brief(state['epoch'])}, not a count of epochs"
    if not (_number(state["minutes"]) and 0 <= state["minutes"] < math.inf):
        return f"minutes is {brief(state['minutes'])}, not a time trained"
    if not 0 <= state["learning_rate"] <= learning_rate * (1 + 1e-6):  # float32 rounding may raise it a little
        return (f"learning_rate is {brief(state['learning_rate'])}, not between 0 and the --learning_rate "
                f"{learning_rate:g}")
    if not re.fullmatch("[0-9a-f]{64}", state["checkpoint_sha256"]):
        return "checkpoint_sha256 is not a SHA-256 in hex"
    return history_fault(state["history"], state["epoch"]) or callbacks_fault(state["callbacks"], state["epoch"])


def history_fault(history, epoch):
    """What is wrong with the saved history (lists of numbers, one per epoch done) → a phrase, or None."""
    missing = [key for key in HISTORY_KEYS if key not in history]
    if missing:
        return f"history lacks {', '.join(missing)}"
    for key, values in history.items():
        if not isinstance(values, list):
            return f"history[{brief(key)}] is {_kind(values)}, not a list"
        if len(values) != epoch:
            return f"history[{brief(key)}] holds {len(values)} values for {brief(epoch)} epochs"
        if not all(map(_number, values)):  # NaN and infinities included: an epoch that diverged records them
            return f"history[{brief(key)}] holds something other than numbers"
    return None


def callbacks_fault(callbacks, epoch):
    """What is wrong with the saved callback states (as CALLBACK_STATES and STATE_VALUES say) → a phrase, or None."""
    if set(callbacks) != set(CALLBACK_STATES):
        return f"callbacks are {brief(sorted(callbacks))}, not {', '.join(CALLBACK_STATES)}"
    for name, fields in CALLBACK_STATES.items():
        state = callbacks[name]
        if not isinstance(state, dict) or set(state) != set(fields):
            return f"callbacks[{name!r}] is {brief(state)}, not an object of {', '.join(fields)}"
        for field in fields:
            meaning, valid = STATE_VALUES[field]
            if not valid(state[field], epoch):
                return f"callbacks[{name!r}][{field!r}] is {brief(state[field])}, not {meaning}"
    return None


def check_resume_model(path, expected, settings):
    """Refuse (DataError, one line) a resume.keras whose config.json describes another model than `expected`, before
    Keras builds anything from it (a config may ask for any size). expected: what training.saved_form gives; the
    input shape recorded must be one training on these settings gives."""
    fault = model_fault(checkpoint_config(path), expected, settings)
    if fault:
        raise DataError(f"cannot resume: {printable(path)} holds another model than these settings build: {fault}")


def resumed_members(output_dir):
    """The networks in output_dir's resume.keras: members = 0 resolved as the interrupted run resolved it, whatever
    max_minutes the resumed run is given (1 where its config does not say; the model check refuses a bad one)."""
    saved = checkpoint_config(os.path.join(output_dir, "resume.keras"))
    config = saved.get("config") if isinstance(saved, dict) else None
    members = config.get("members", 1) if isinstance(config, dict) else 1
    return members if _is(members, int) and members >= 1 else 1


def checkpoint_config(path):
    """The config.json inside a .keras archive, read within MAX_CONFIG_BYTES → its value; else DataError."""
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("config.json")
            if info.file_size > MAX_CONFIG_BYTES:
                raise ValueError(f"config.json holds {info.file_size} bytes, more than {MAX_CONFIG_BYTES}")
            return json.loads(archive.read(info))
    except (OSError, ValueError, KeyError, EOFError, RecursionError, RuntimeError, NotImplementedError,
            zipfile.BadZipFile) as err:
        message = printable(" ".join(str(err).split())[:120])
        raise DataError(f"cannot resume: {printable(path)} is no Keras model file ({type(err).__name__}: {message})") \
            from None


def model_fault(saved, expected, settings):
    """What differs between a .keras file's config.json (saved) and the model expected → a phrase, or None."""
    if not isinstance(saved, dict):
        return f"its config.json holds {_kind(saved)}"
    naming = ("module", "class_name", "registered_name")
    if [saved.get(key) for key in naming] != [expected[key] for key in naming]:
        name = saved.get("registered_name") or saved.get("class_name")
        return f"a {brief(name)}, not a {expected['registered_name']}"
    config, wanted = saved.get("config"), expected["config"]
    if isinstance(config, dict) and "members" not in config:  # saved before models held members: one network
        config = {**config, "members": 1}
    if not isinstance(config, dict) or set(config) != {"name", *wanted} or not isinstance(config["name"], str):
        return f"its config holds {brief(sorted(config) if isinstance(config, dict) else config)}"
    differ = [f"{key} {brief(config[key])}, not {brief(value)}" for key, value in wanted.items()
              if type(config[key]) is not type(value) or config[key] != value]
    if differ:
        return ", ".join(differ)
    if not input_shape_fits(saved.get("build_config"), settings,
                            frame_width(wanted["num_keys"], wanted["onsets"], wanted["meter"])):
        return f"it was built for inputs {brief(saved.get('build_config'))}"
    return compile_fault(saved.get("compile_config"), expected["compile_config"])


def input_shape_fits(build_config, settings, channels):
    """Whether a build_config records inputs that training on these settings gives: windows of (batch_size or fewer
    or None, 1 to seq_len + 1 frames, channels per frame: rolls.frame_width), with pitch_profile beside (the same
    batch, 12) counts."""
    shape = build_config.get("input_shape") if isinstance(build_config, dict) and len(build_config) == 1 else None
    pair = settings["pitch_profile"] and isinstance(shape, list) and len(shape) == 2
    windows, heard = shape if pair else (shape, None)
    if not (isinstance(windows, list) and len(windows) == 3):
        return False
    batch, width, given = windows
    return ((batch is None or _is(batch, int) and 1 <= batch <= settings["batch_size"])
            and _is(width, int) and 1 <= width <= settings["seq_len"] + 1 and _is(given, int) and given == channels
            and (not settings["pitch_profile"] or heard == [batch, 12]))


def compile_fault(compiled, expected):
    """What differs between a saved compile_config and the expected one (the optimizer's name and learning rate
    aside: resume.json's is the one used; jit_compile as the backend chose) → a phrase, or None."""
    if compiled in (None, {}):
        return "it was saved without its optimizer (an uncompiled model)"
    if not isinstance(compiled, dict) or set(compiled) != {*expected, "jit_compile"}:
        return f"its compile_config holds {brief(sorted(compiled) if isinstance(compiled, dict) else compiled)}"
    differ = [key for key, value in expected.items()
              if _as_compared(compiled[key]) != _as_compared(value)]
    if compiled["jit_compile"] not in (True, False, "auto"):
        differ.append("jit_compile")
    return f"it was compiled otherwise ({', '.join(differ)})" if differ else None


def _as_compared(value):
    """A serialized optimizer less the name and learning rate in its config; any other value as it is."""
    if isinstance(value, dict) and isinstance(value.get("config"), dict):
        return {**value, "config": {key: item for key, item in value["config"].items()
                                    if key not in ("name", "learning_rate")}}
    return value


def _is(value, kinds):
    """isinstance(value, kinds), except that a JSON true or false is no number."""
    return isinstance(value, kinds) and not isinstance(value, bool)


def _number(value):
    """Whether a parsed JSON value is a number that a float holds (NaN and the infinities too; true and false not)."""
    return isinstance(value, float) or _is(value, int) and abs(value) <= sys.float_info.max


def _kind(value):
    """The JSON kind of a parsed value, for a message: 'a list', 'a string', 'null'..."""
    return KIND_NAMES[type(value)]


def brief(value, most=60):
    """repr(value), cut to most characters: one short line whatever a file holds (repr escapes control characters)."""
    text = repr(value)
    return text if len(text) <= most else text[:most - 3] + "..."

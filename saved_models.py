"""Trained-model files, which are untrusted input: a .keras file or a run's folder → a checked config → the model.

    saved = read_model_file("output/best.keras", "model_path")   # checked; Keras not loaded yet
    settings = restore_settings(saved, settings, defaults)        # the model's roll and model settings
    model = load_model(saved)                                     # Keras, safe mode, without the optimizer

Anyone may hand over a model file, so read_model_file refuses (DataError,
one line naming the file) anything this program does not write before
Keras builds anything from it: a zip holding other members than
config.json, metadata.json and model.weights.h5; a config.json over 1 MB;
any class but model.MusicLSTM (Lambda layers, other layers, callables);
a config field it never writes, or a size past the settings' limits; and
weights that cannot hold the parameters the config declares, or that
expand far beyond their bytes on disk (a zip bomb). Keras then loads it
with safe_mode=True and refuses weights of other shapes. The roll settings
the model was trained on come from its config (training stores them there)
or, for a model saved before it did, from the settings.json of its run
beside it. Keras is imported only in load_model: the driver checks a model
file before Keras loads, so a bad one answers at once.
"""
import json
import os
import warnings
import zipfile

from configurator import CHOICES, MAX_FRAMES_PER_BEAT, MAX_SIZES
from files import DataError, check_readable_file, printable, read_json
from resume import MAX_CONFIG_BYTES, MAX_SETTINGS_BYTES, brief, input_shape_fits
from rolls import frame_width
from songs import ROLL_SETTINGS

RUN_MODEL = "best.keras"  # the model file in a run's output folder
MEMBERS = ("config.json", "metadata.json", "model.weights.h5")  # what model.save writes into a .keras zip
NAMING = {"module": "model", "class_name": "MusicLSTM", "registered_name": "classically_deep>MusicLSTM"}
DTYPE = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None}
MAX_MODEL_BYTES = 2 ** 31      # a .keras file; ours: 2 MB
MAX_METADATA_BYTES = 2 ** 16   # its metadata.json (ours: 64 bytes)
MAX_EXPANSION = 10             # a member may expand to this many times its stored bytes (Keras stores them as they are)
MAX_WEIGHT_COPIES = 5          # model.weights.h5: the weights, and with an optimizer Adam's moments and the average
# the model settings a MusicLSTM's config records: setting → config field
MODEL_SETTINGS = {"hidden_size": "units", "num_layers": "layers", "head": "head", "head_size": "head_units",
                  "pitch_profile": "pitch_profile", "onsets": "onsets", "meter": "meter", "members": "members"}
OPTIONAL_FIELDS = {"roll_settings": None, "onsets": False, "meter": False, "members": 1}  # absent from older models'
# configs: what that means
# each config field → (what it must be, whether a value is that, given the config)
FIELDS = {
    "name": ("a short name", lambda value, config: isinstance(value, str) and len(value) <= 200),
    "trainable": ("true or false", lambda value, config: isinstance(value, bool)),
    "dtype": ("float32", lambda value, config: value == DTYPE),
    "num_keys": ("1 to 128", lambda value, config: _count(value, 128)),
    "units": (f"1 to {MAX_SIZES['hidden_size']}", lambda value, config: _count(value, MAX_SIZES["hidden_size"])),
    "layers": (f"1 to {MAX_SIZES['num_layers']}", lambda value, config: _count(value, MAX_SIZES["num_layers"])),
    "dropout": ("a number in [0, 1)", lambda value, config: _number(value) and 0 <= value < 1),
    "head": ("nade or sigmoid", lambda value, config: value in CHOICES["head"]),
    "head_units": (f"1 to {MAX_SIZES['head_size']}", lambda value, config: _count(value, MAX_SIZES["head_size"])),
    "max_notes": ("null or 1 to num_keys", lambda value, config: value is None or _count(value, config["num_keys"])),
    "pitch_profile": ("true or false", lambda value, config: isinstance(value, bool)),
    "onsets": ("true or false", lambda value, config: isinstance(value, bool)),
    "meter": ("true or false", lambda value, config: isinstance(value, bool)),
    "members": (f"1 to {MAX_SIZES['members']}", lambda value, config: _count(value, MAX_SIZES["members"])),
    "roll_settings": ("the roll settings", lambda value, config: roll_fault(value, config["num_keys"]) is None),
}
LARGEST_INPUTS = {"batch_size": MAX_SIZES["batch_size"], "seq_len": MAX_SIZES["seq_len"]}


def model_file(path):
    """A .keras file, or a run's output folder holding best.keras → the .keras file's path."""
    return os.path.join(path, RUN_MODEL) if os.path.isdir(path) else path


def read_model_file(path, what="model_path"):
    """A .keras file or run folder → {'path', 'config' (MusicLSTM's), 'roll' (its roll settings), 'parameters',
    'setting' (what)}, every part checked before Keras builds anything; else DataError, one line naming the file.
    what: the setting that names it, for the messages."""
    path = model_file(path)
    size = check_readable_file(path, f"{what} model").st_size
    if size > MAX_MODEL_BYTES:
        raise DataError(f"{what} {printable(path)} holds {size} bytes, more than a model of this program "
                        f"({MAX_MODEL_BYTES})")
    try:
        with zipfile.ZipFile(path) as archive:
            saved, fault = _checked(archive)
    except (OSError, ValueError, KeyError, EOFError, RecursionError, RuntimeError, NotImplementedError,
            zipfile.BadZipFile) as err:
        message = printable(" ".join(str(err).split())[:120])
        raise DataError(f"{what} {printable(path)} is no Keras model file ({type(err).__name__}: {message})") \
            from None
    if fault:
        raise DataError(f"{what} {printable(path)} is no model of this program: {fault}")
    roll = saved["config"].get("roll_settings") or settings_beside(path, saved["config"]["num_keys"], what)
    roll = {**roll, "steps_per_second": float(roll["steps_per_second"])}  # JSON may write 8.0 as 8
    return {"path": path, "config": saved["config"], "roll": roll, "parameters": saved["parameters"], "setting": what}


def _checked(archive):
    """An open .keras zip → (its config.json's value and parameter count, None) or (None, what is wrong)."""
    infos = archive.infolist()
    names = [info.filename for info in infos]
    unknown = [name for name in names if name not in MEMBERS]
    if unknown or len(set(names)) < len(names) or not {"config.json", "model.weights.h5"} <= set(names):
        return None, f"it holds {brief(unknown or names)}, where a model holds {', '.join(MEMBERS)}"
    sizes = {info.filename: info for info in infos}
    for info in infos:
        if info.file_size > MAX_EXPANSION * info.compress_size + 2 ** 20:
            return None, f"{info.filename} would expand to {info.file_size} bytes from {info.compress_size}"
    most = {"config.json": MAX_CONFIG_BYTES, "metadata.json": MAX_METADATA_BYTES}
    for name, limit in most.items():
        if name in sizes and sizes[name].file_size > limit:
            return None, f"its {name} holds {sizes[name].file_size} bytes, more than {limit}"
    saved = json.loads(archive.read("config.json"))
    fault = config_fault(saved)
    if fault:
        return None, fault
    parameters = parameter_count(saved["config"])
    weights = sizes["model.weights.h5"].file_size
    if not 4 * parameters <= weights <= MAX_WEIGHT_COPIES * 4 * parameters + 2 ** 20:
        return None, (f"its model.weights.h5 holds {weights} bytes, which do not fit the {parameters:,} weights its "
                      "config declares")
    return {"config": saved["config"], "parameters": parameters}, None


def config_fault(saved):
    """What makes a .keras file's parsed config.json other than a MusicLSTM this program saves → a phrase, or None."""
    if not isinstance(saved, dict):
        return f"its config.json holds {brief(saved)}"
    if [saved.get(key) for key in NAMING] != list(NAMING.values()):
        name = saved.get("registered_name") or saved.get("class_name")
        return f"it holds a {brief(name)}, not a {NAMING['registered_name']}"
    if not set(saved) <= {*NAMING, "config", "build_config", "compile_config"}:
        return f"its config.json holds {brief(sorted(saved))}"
    config = saved.get("config")
    if not isinstance(config, dict) or not set(FIELDS) - set(OPTIONAL_FIELDS) <= set(config) <= set(FIELDS):
        return f"its config holds {brief(sorted(config) if isinstance(config, dict) else config)}"
    for field, (meaning, valid) in FIELDS.items():
        if field in config and not valid(config[field], config):
            return f"its {field} is {brief(config[field])}, not {meaning}"
    if not input_shape_fits(saved.get("build_config"), {**LARGEST_INPUTS, "pitch_profile": config["pitch_profile"]},
                            frame_width(config["num_keys"], *(config_field(config, name) for name in ("onsets", "meter")))):
        return f"it was built for inputs {brief(saved.get('build_config'))}"
    return None


def roll_fault(roll, num_keys):
    """What makes a dict of roll settings other than those of a roll of num_keys keys → a phrase, or None."""
    if not isinstance(roll, dict) or set(roll) != set(ROLL_SETTINGS):
        return f"roll settings {brief(roll)}, not {', '.join(ROLL_SETTINGS)}"
    low, high, steps = roll["lowest_note"], roll["highest_note"], roll["steps_per_second"]
    if not (_whole(low) and _whole(high) and 0 <= low < high <= 127 and high - low + 1 == num_keys):
        return f"keys MIDI {brief(low)} to {brief(high)} for a model of {num_keys} keys"
    if roll["time_base"] not in CHOICES["time_base"]:
        return f"time_base {brief(roll['time_base'])}"
    if not (_count(roll["steps_per_beat"], MAX_FRAMES_PER_BEAT) and _number(steps)
            and 0 < steps <= MAX_FRAMES_PER_BEAT):
        return f"frames per beat {brief(roll['steps_per_beat'])} and per second {brief(steps)}"
    return None


def settings_beside(path, num_keys, what):
    """The roll settings in the settings.json beside a model saved before models stored them; else DataError saying
    how to rebuild the model."""
    beside = os.path.join(os.path.dirname(path), "settings.json")
    if not os.path.isfile(beside):
        raise DataError(f"{what} {printable(path)} does not say which piano rolls it was trained on (saved before "
                        "models stored their roll settings): put the settings.json of its run beside it, or rebuild "
                        "it by running that training command again")
    size = check_readable_file(beside, "settings file").st_size
    saved = read_json(beside, "settings file") if size <= MAX_SETTINGS_BYTES else None
    roll = {name: saved.get(name) for name in ROLL_SETTINGS} if isinstance(saved, dict) else saved
    fault = roll_fault(roll, num_keys) if isinstance(saved, dict) else "not a settings file of this program"
    if fault:
        raise DataError(f"{what} {printable(path)}: the settings.json beside it does not describe its rolls ({fault})")
    return roll


def config_field(config, field):
    """A checked model config's field; one a model saved before it existed lacks reads as OPTIONAL_FIELDS says (onsets
    and meter False: it reads rolls alone)."""
    return config.get(field, OPTIONAL_FIELDS.get(field))


def model_values(saved):
    """The settings a saved model fixes → {setting: the model's value}: its roll settings and its architecture."""
    config = saved["config"]
    return {**saved["roll"], **{name: config_field(config, field) for name, field in MODEL_SETTINGS.items()}}


def restore_settings(saved, settings, defaults, what="model_path"):
    """Settings with the model's roll and architecture settings in place of the defaults → a new dict; DataError
    (one line) where a setting was given another value than the model's and it applies (the frames per beat only
    on the beat grid, head_size only for the NADE head)."""
    values = model_values(saved)
    ignored = {"steps_per_second" if values["time_base"] == "beats" else "steps_per_beat"}
    ignored |= {"head_size"} if values["head"] == "sigmoid" else set()
    clashes = [f"{name}={brief(settings[name])} (the model's: {brief(value)})" for name, value in values.items()
               if name not in ignored and settings[name] != defaults[name] and settings[name] != value]
    if clashes:
        raise DataError(f"{what} {printable(saved['path'])} was trained with other settings than "
                        f"{', '.join(clashes)}: leave them out to use the model's, or use another model")
    return {**settings, **values}


def describe(saved):
    """A saved model in words: its members, keys, grid, head, LSTM and size."""
    roll, config = saved["roll"], saved["config"]
    grid = (f"{roll['steps_per_beat']} frames per beat" if roll["time_base"] == "beats"
            else f"{roll['steps_per_second']:g} frames per second")
    head = f"NADE head of {config['head_units']}" if config["head"] == "nade" else "sigmoid head"
    members = config_field(config, "members")
    return (f"{f'a mixture of {members} networks, each ' if members > 1 else ''}{config['num_keys']} keys (MIDI {roll['lowest_note']} to {roll['highest_note']}), {grid}, "
            f"{config['layers']} x {config['units']} LSTM, {head}"
            f"{', pitch-class profile' if config['pitch_profile'] else ''}"
            f"{', onsets' if config_field(config, 'onsets') else ''}{', meter' if config_field(config, 'meter') else ''}; "
            f"{saved['parameters']:,} weights")


def parameter_count(config):
    """The number of weights a MusicLSTM of this (checked) config holds, from its sizes alone (all its members')."""
    keys, units, heard = config["num_keys"], config["units"], 12 if config["pitch_profile"] else 0
    channels = frame_width(keys, config_field(config, "onsets"), config_field(config, "meter"))
    count, width = 0, channels + heard
    for _ in range(config["layers"]):
        count += 4 * units * (width + units + 1)  # an LSTM layer: four gates over its input and its own output
        width = units
    context = units + channels + heard            # the head sees the top LSTM output beside the frame
    count += context * keys + keys                # the key logits
    if config["head"] == "nade":
        hidden = config["head_units"]
        count += context * hidden + hidden + 2 * keys * hidden
    if config_field(config, "onsets"):
        count += context * keys + keys + keys * keys  # the onset logits: from the context and the keys sounding
    return count * config_field(config, "members")


def load_model(saved):
    """A model file read_model_file checked → its MusicLSTM, built by Keras in safe mode, without its optimizer;
    DataError (one line naming the file) when Keras refuses it (weights of other shapes, a damaged archive)."""
    import keras  # here, not at the top: model files are checked before Keras loads (see the module docstring)
    import model  # noqa: F401  registers MusicLSTM and its heads, the only classes config_fault lets through
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Keras notes that the optimizer state a file may hold is not loaded
            return keras.saving.load_model(saved["path"], compile=False, safe_mode=True)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError, RuntimeError, EOFError,
            zipfile.BadZipFile) as err:
        message = printable(" ".join(str(err).split())[:160])  # Keras' messages run over several lines
        raise DataError(f"{saved['setting']} {printable(saved['path'])} cannot be loaded ({type(err).__name__}: "
                        f"{message})") \
            from None


def _whole(value):
    """Whether a parsed JSON value is a whole number (true and false are not)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _count(value, most):
    """Whether a parsed JSON value is a whole number from 1 to most."""
    return _whole(value) and 1 <= value <= most


def _number(value):
    """Whether a parsed JSON value is a finite int or float (true and false are not)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < float("inf")


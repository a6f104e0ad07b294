"""Settings: the driver's editable globals, --name=value overrides typed and checked, and --help with each setting's comment.

    defaults = default_settings()              # read from classically_deep.py's settings block
    settings = resolve_settings(["--epochs=5"], defaults)

The settings are the driver's lowercase globals assigned a plain value (bool,
int, float or str) at the top level, in the order written; their comments are
the trailing comments on those lines. Both are read from the driver's source,
so --help says what the file says and nothing has to be written twice.
Besides the standard library it needs two things from midi_io: TICKS_PER_FRAME,
which bounds the finest grid a MIDI file can hold, and program_number, which
knows the General MIDI instrument names. `~` and environment variables in the
path settings are expanded.
"""
import ast
import io
import math
import os
import tokenize

from midi_io import TICKS_PER_FRAME, program_number

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "classically_deep.py")
CHOICES = {"save_mode": ("auto", True, False), "time_base": ("beats", "seconds"), "head": ("nade", "sigmoid"),
           "distribute": ("none", "data_parallel")}
LONG_RUN = (5.0, {"dropout": 0.5})  # (max_minutes, defaults): from this budget on, these defaults replace the driver's
# members = 0: as many networks as max_minutes trains for MEMBER_EPOCHS passes over the training frames each, at
# MEMBER_FRAMES_PER_MINUTE (one network of the default size among several, 2 CPU cores, JAX; a faster machine trains
# fewer than it could, which is safe)
MEMBER_EPOCHS, MEMBER_FRAMES_PER_MINUTE = 350, 750_000
MOST_MEMBERS = 8  # members = 0 never chooses more (tiny data would ask for dozens of networks, files and draws)
MAX_SIZES = {"hidden_size": 4096, "head_size": 4096, "num_layers": 16, "members": 64, "batch_size": 4096,
             "seq_len": 100_000}
MAX_FRAMES_PER_BEAT = 32767 // TICKS_PER_FRAME  # a MIDI file holds at most 32767 ticks per quarter note
PATH_SETTINGS = ("data_path", "split_path", "cache_dir", "output_dir", "primer_path", "soundfont", "model_path",
                 "init_from")  # `~` and $VARIABLES expanded in those the driver has


class SettingsError(Exception):
    """A command-line setting that cannot be used; the message is for the user."""


def _comments(source):
    """Python source → {line number: comment text without '#'}, and the numbers of lines that hold only a comment."""
    comments, code_lines = {}, set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string[1:].strip()
        elif token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER):
            code_lines.update(range(token.start[0], token.end[0] + 1))
    alone = {line for line in comments if line not in code_lines}
    return comments, alone


def _setting(node, path):
    """A top-level statement → (name, value) when it sets a lowercase name to a bool, int, float or str, else None;
    SettingsError when such a name is set to an expression rather than written out."""
    if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
        return None
    name = node.targets[0].id
    if name.startswith("_") or name != name.lower():
        return None
    try:
        value = ast.literal_eval(node.value)
    except (ValueError, TypeError):
        raise SettingsError(f"{path}, line {node.lineno}: write the setting {name} as a plain value (a number, "
                            f"True / False or a quoted string), not {ast.unparse(node.value)[:60]}") from None
    return (name, value) if isinstance(value, (bool, int, float, str)) else None


def read_settings_block(path=DRIVER):
    """The driver's source → (its docstring, [(name, default, trailing comment, heading comment above or "")])."""
    with open(path, encoding="utf-8") as file:
        source = file.read()
    tree = ast.parse(source, path)
    comments, alone = _comments(source)
    settings = []
    for node in tree.body:
        found = _setting(node, path)
        if found:
            heading = comments.get(node.lineno - 1, "") if node.lineno - 1 in alone else ""
            settings.append((*found, comments.get(node.end_lineno, ""), heading))
    return ast.get_docstring(tree, clean=False) or "", settings


def default_settings(path=DRIVER):
    """The settings as written at the top of the driver → {name: default}, in the order written."""
    return {name: value for name, value, _, _ in read_settings_block(path)[1]}


def help_text(path=DRIVER):
    """--help: the driver's docstring, then every setting with its default and its comment, under the file's headings."""
    doc, settings = read_settings_block(path)
    shown = [f"  --{name}={value}" for name, value, _, _ in settings]
    width = max(map(len, shown), default=0)
    lines = []
    for text, (_, _, comment, heading) in zip(shown, settings):
        if heading:
            lines.append(f" {heading}:")
        lines.append(f"{text:<{width}}  # {comment}" if comment else text)
    return doc + "\nsettings (defaults):\n" + "\n".join(lines)


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
    """Command-line arguments ['--name=value', ...] applied to the defaults for their budget (budget_defaults)
    → settings dict."""
    given = {}
    for arg in argv:
        name, equals, text = arg[2:].partition("=")
        if not arg.startswith("--") or not equals:
            raise SettingsError(f"arguments look like --name=value, not {arg!r}")
        if name not in defaults:
            raise SettingsError(f"unknown setting --{name}; valid settings: {', '.join(defaults)}")
        given[name] = parse_value(name, text, defaults[name])
    settings = {**budget_defaults(defaults, given.get("max_minutes", defaults["max_minutes"])), **given}
    settings.update({name: os.path.expandvars(os.path.expanduser(settings[name]))
                     for name in PATH_SETTINGS if name in settings})
    if settings["instrument"].strip().lower() == "data":  # written once as the code compares it: "data"
        settings["instrument"] = "data"
    check_settings(settings)
    return settings


def budget_defaults(defaults, max_minutes):
    """The driver's defaults → those of a run of max_minutes: from LONG_RUN's budget on, LONG_RUN's values.

    A longer run overfits later, so it pays for more dropout: on the chorale
    benchmark, on JAX, 0.5 scores 4.67 after 5 minutes against 0.3's 4.74 (on
    TensorFlow, whose 5 minutes were 64 epochs against 346, 0.5 paid from 10
    minutes on). The main job's 4 minutes keep 0.3."""
    return {**defaults, **LONG_RUN[1]} if max_minutes >= LONG_RUN[0] else dict(defaults)


def members_for_budget(max_minutes, train_frames):
    """members = 0 → the networks a budget of max_minutes trains on train_frames training frames: one below
    LONG_RUN's budget (the main job), else as many as the budget trains for MEMBER_EPOCHS each, 1 to MOST_MEMBERS.

    One network of the default size learns what it can from the chorales
    (11,500 training frames) in about 350 epochs, 5 minutes on 2 cores with
    JAX; a longer budget buys more networks, whose exact mixture scores lower
    than any of them alone. Larger data need the budget for one network."""
    if max_minutes < LONG_RUN[0]:
        return 1
    networks = round(max_minutes * MEMBER_FRAMES_PER_MINUTE / (MEMBER_EPOCHS * max(train_frames, 1)))
    return min(max(networks, 1), MOST_MEMBERS)


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
                 "batch_size", "max_minutes", "learning_rate", "plateau", "temperature", "primer_frames",
                 "max_member_mb", "max_frames"):
        if settings[name] <= 0:
            raise SettingsError(f"{name} must be positive, not {settings[name]}")
    for name in ("epochs", "transpose_range", "generate_frames", "num_outputs", "patience", "workers", "members"):
        if settings[name] < 0:
            raise SettingsError(f"{name} must not be negative, not {settings[name]}")
    for name, most in MAX_SIZES.items():
        if settings[name] > most:
            raise SettingsError(f"{name} must be at most {most}, not {settings[name]}")
    for name in ("steps_per_beat", "steps_per_second"):
        if settings[name] > MAX_FRAMES_PER_BEAT:
            raise SettingsError(f"{name} must be at most {MAX_FRAMES_PER_BEAT} (the finest grid a MIDI file "
                                f"can hold), not {settings[name]}")
    if not (4 <= settings["bpm"] <= 1000 or settings["bpm"] == 0):
        raise SettingsError(f"bpm must be between 4 and 1000 (or 0: the primer's tempo, else 100), not {settings['bpm']}")
    if not 1 <= settings["velocity"] <= 127:
        raise SettingsError(f"velocity must be between 1 and 127, not {settings['velocity']}")
    if settings["instrument"] != "data" and program_number(settings["instrument"]) is None:
        raise SettingsError(f"instrument must be a General MIDI program name (such as piano, violin, strings or "
                            f"'acoustic grand piano'), a program number 1-128 or data, not {settings['instrument']!r}")
    for name in ("seed", "sample_seed"):
        if not 0 <= settings[name] < 2 ** 32:
            raise SettingsError(f"{name} must be between 0 and {2 ** 32 - 1}, not {settings[name]}")
    check_model_settings(settings)


def check_model_settings(settings):
    """Refuse model_path (compose only) beside settings that train: init_from, resume, several devices."""
    if not settings["model_path"]:
        return
    for name, value in (("init_from", ""), ("resume", False), ("distribute", "none")):
        if settings[name] != value:
            raise SettingsError(f"model_path composes with a trained model and trains nothing: leave out --{name} "
                                f"(to train from a model's weights, use --init_from instead of --model_path)")

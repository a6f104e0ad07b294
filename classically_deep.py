"""classically_deep: learn classical music from MusicNet's note labels and compose new pieces.

    python classically_deep.py                       # train on data/musicnet.npz (or the embedded sample)
    python classically_deep.py --epochs=5 --temperature=0.9 --output_dir=output/try2
    python classically_deep.py --model_path=output --output_dir=output/more --sample_seed=7   # compose only

Every setting below can be overridden as --name=value (--help lists them).
The pipeline, top to bottom: read the archive → piano rolls (cached) → split →
train an LSTM with a NADE note head → frame NLL on held-out songs → generate →
MIDI files in output_dir. TensorFlow is imported only where training starts,
so a bad setting or a preprocessing run answers at once.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before anything loads TensorFlow: its C++ notices stay out of the log

import importlib.util
import shlex
import sys

import compose
import musicstats
import report
import saved_models
import sources
from configurator import (SettingsError, budget_defaults, default_settings, help_text, members_for_budget,
                          resolve_settings)
from distribute import describe_weights, start_distribution, wait_for_all
from files import DataError, make_dir, printable, write_json
from notices import native_notices_held_back
from resume import (Interrupted, Terminated, keep_earlier_run, remove_resume_checkpoint, resume_state, resumed_members,
                    signal_handler, stop_at_once)
from rolls import most_keys_on
from songs import cache_key, load_songs, read_split, resolve_data_path

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
dropout = 0.3                    # dropout on LSTM outputs during training, 0 to <1; unless given, 0.5 when max_minutes >= 5 (longer runs overfit later)
pitch_profile = True             # the LSTM and the head also see each pitch class's share of the notes so far (holds the key)
onsets = True                    # the model reads and writes which keys are struck, so a note can be repeated, not only held
meter = True                     # the model reads where each frame lies in its bar (beat grid, where the data give bar lines)
members = 0                      # networks trained side by side, mixed exactly; 0 = 1 below 5 min, else as many as max_minutes trains fully (at most 8)
# training
seq_len = 64                     # frames per training window
batch_size = 16                  # windows per batch (small batches: more updates per CPU minute)
epochs = 10_000                  # most passes over the training frames (max_minutes usually stops first); 0 = preprocess only
max_minutes = 4.0                # wall-clock training budget, minutes
learning_rate = 1e-2             # Adam step size at the start, halved on validation plateaus
plateau = 10                     # epochs without validation improvement before the learning rate halves
patience = 0                     # epochs without validation improvement before stopping; 0 = never: train to max_minutes (or epochs)
ema = 0.99                       # average of the weights validated and kept (Adam's EMA momentum; pays off after some hundred steps); 0 = off
transpose_range = 6              # random transposition of training windows, ± semitones (0 = off)
seed = 1234                      # same seed, same run (within the time budget); 0 to 2**32 - 1
resume = False                   # True: continue the interrupted run in output_dir from its last checkpoint
init_from = ""                   # a trained model (.keras file or run folder) to start training from, on any data; "" = fresh weights
# several devices and hosts (JAX backend: KERAS_BACKEND=jax)
distribute = "none"              # "none": one device; "data_parallel": each batch split over every device of every process
coordinator_address = ""         # several processes: host:port of process 0, the same on every host; "" = from the environment or one process
num_processes = 0                # processes in the run, one per host; 0 = from the environment (or a SLURM / MPI cluster), else 1
process_id = -1                  # this process's index, 0 to num_processes - 1 (0 validates and writes the files); -1 = from the environment
# generation
model_path = ""                  # a trained model (.keras file or run folder) to compose with, training nothing; "" = train
primer_frames = 32               # frames of a held-out song's opening (or of primer_path) that prime the model
primer_path = ""                 # a MIDI file whose opening primes generation instead of held-out songs; "" = none
include_primer = True            # True: generated MIDI holds the primer, a marker, then the continuation
generate_frames = 256            # frames to compose after the primer
temperature = 1.0                # sampling temperature: < 1 safer (and sparser), > 1 wilder
sample_seed = 1234               # seed of the sampling: same model, primer and sample_seed, same pieces; 0 to 2**32 - 1
note_floor = 0.005               # keys less likely than this (given the frame so far) are never drawn: no stray notes
num_outputs = 3                  # MIDI files to write
bpm = 0.0                        # tempo of generated MIDI when time_base = "beats", quarter notes per minute; 0 = primer_path's tempo, else 100
instrument = "piano"             # General MIDI program: a name ("violin", "strings"...), 1-128, or "data" (the data's most-played); piano: rolls are keyboard music
velocity = 80                    # MIDI velocity (loudness) of every written note, 1-127
soundfont = ""                   # General MIDI .sf2 for the WAVs; "" = TimGM6mb.sf2, installed with pretty_midi


# ------------------------------------------------------------------ the pipeline

def prepare_data(settings):
    """Check the inputs, make output_dir (a fresh run first moves an earlier run's files into earlier/N), save
    settings.json, then read (or load the cached) rolls and split them
    → (whether this process writes files, the interrupted run's progress or None, parts, split, program)."""
    data = resolve_data_path(settings["data_path"])
    if settings["split_path"]:
        read_split(settings["split_path"])  # a bad split file is refused before the preprocessing
    if settings["primer_path"]:
        compose.read_primer(settings)  # and a bad primer before the training
    writes = start_distribution(settings) == 0  # process 0 (or the only one) validates, evaluates, generates, writes
    out = settings["output_dir"]
    if writes:
        make_dir(out, "output folder")
    source = sources.open_source(data)
    print(f"data: {sources.describe(source)}")
    fingerprint = cache_key(source, settings)
    resumed = resume_state(settings, fingerprint)
    if writes:
        if not settings["resume"]:
            keep_earlier_run(out)  # a fresh run: an earlier run's files move to out/earlier/N before any is replaced
        settings_path = os.path.join(out, "settings.json")
        write_json(settings_path, {**settings, "resolved_data_path": os.path.abspath(data), "data_fingerprint": fingerprint})
        print(f"settings saved: {printable(settings_path)}")
    return (writes, resumed, *load_songs(source, settings, save=writes))


def from_saved_model(settings, name):
    """Read and check the model file the setting `name` (model_path or init_from) names; print what it holds
    → (the settings with its roll and model settings in place of the defaults, the checked file)."""
    saved = saved_models.read_model_file(settings[name], name)
    defaults = budget_defaults(default_settings(__file__), settings["max_minutes"])
    restored = saved_models.restore_settings(saved, settings, defaults, name)
    taken = [f"{key}={value!r}" for key, value in restored.items() if settings[key] != value]
    print(f"{name}: {printable(saved['path'])}: {saved_models.describe(saved)}"
          + (f"; from the model: {', '.join(taken)}" if taken else ""))
    return restored, saved


def where_it_was_kept(saved, kept):
    """A checked model file that keep_earlier_run moved into kept (its folder, or None) → the file at its new place."""
    moved = os.path.join(kept, os.path.basename(saved["path"])) if kept else ""
    return {**saved, "path": moved} if moved and not os.path.exists(saved["path"]) and os.path.exists(moved) else saved


def compose_only(settings):
    """model_path: compose with a trained model, train nothing. Its roll settings restored; primed by primer_path, or
    by the held-out songs of data_path, which the pieces are then judged against → metrics dict."""
    settings, saved = from_saved_model(settings, "model_path")
    out = settings["output_dir"]
    if settings["primer_path"]:
        compose.read_primer(settings)
        if settings["instrument"] == "data":
            raise DataError("instrument=data is the training data's instrument, and with model_path and primer_path "
                            "no data is read: name an instrument (piano, violin, 41...)")
    make_dir(out, "output folder")
    saved = where_it_was_kept(saved, keep_earlier_run(out))  # --model_path=output composes from the run kept
    settings_path = os.path.join(out, "settings.json")
    write_json(settings_path, {**settings, "resolved_model_path": os.path.abspath(saved["path"])})
    print(f"settings saved: {printable(settings_path)}")
    parts = split = program = None
    if not settings["primer_path"]:  # the held-out songs prime the model, on the model's grid
        source = sources.open_source(resolve_data_path(settings["data_path"]))
        print(f"data: {sources.describe(source)}")
        parts, split, program = load_songs(source, settings)
    with native_notices_held_back():
        model = saved_models.load_model(saved)
    print(f"composing with {printable(saved['path'])}, not trained in this run")
    metrics = {"model_path": os.path.abspath(saved["path"]), "trained_in_this_run": False}
    return compose_and_report(model, parts, split, program, metrics, settings)


def compose_and_report(model, parts, split, program, metrics, settings):
    """Compose; judge the pieces against the held-out songs (parts: None where there are none); write metrics.json,
    each piece's audio and picture and report.html → the metrics, with the statistics."""
    pieces = compose.compose(model, parts["test"] if parts else [], program, settings)
    table = musicstats.judge(pieces, parts, split, settings) if pieces and parts else None
    if table:
        report.print_statistics(table)
        metrics["statistics"] = {key: table[key] for key in ("pieces", "held_out", "reference", "flags")}
    write_json(os.path.join(settings["output_dir"], "metrics.json"), metrics)
    if pieces:
        shown = [report.plot_piece(compose.render_audio(piece, settings), table, settings) for piece in pieces]
        report.report_run(shown, table, metrics, settings)
    return metrics


def run(settings):
    """The whole pipeline for resolved settings: data → train → evaluate → compose → judge → report → metrics dict."""
    if settings["model_path"]:
        return compose_only(settings)
    settings, start = from_saved_model(settings, "init_from") if settings["init_from"] else (settings, None)
    if start and os.path.dirname(os.path.realpath(start["path"])) == os.path.realpath(settings["output_dir"]):
        raise DataError(f"init_from {printable(start['path'])} lies in output_dir, whose run moves to earlier/ as "
                        "this one starts: pass another --output_dir")
    writes, resumed, parts, split, program = prepare_data(settings)
    if settings["epochs"] == 0:
        print(f"epochs=0: preprocessing only, nothing trained. Rolls of {parts['train'][0].roll.shape[1]} keys: "
              + ", ".join(f"{len(parts[part])} {part} recordings ({sum(map(len, parts[part]))} frames)" for part in parts))
        return {}
    if settings["num_outputs"] and settings["generate_frames"]:
        compose.choose_primers(parts["test"], settings)  # pieces that could not be primed are refused before training
    if not settings["members"]:  # a resumed run keeps the networks it has, whatever max_minutes it is given now
        frames = sum(map(len, parts["train"]))
        members = resumed_members(settings["output_dir"]) if resumed else members_for_budget(settings["max_minutes"], frames)
        settings = {**settings, "members": members}
        print(f"members=0: {members} network{'s' if members > 1 else ''} " + ("as the interrupted run has" if resumed
              else f"for {settings['max_minutes']:g} minutes on {frames} training frames"))

    # Keras, and with it TensorFlow, is imported here where training starts rather than at the top: the
    # preprocessing's reader processes fork before TensorFlow starts its threads, and a bad setting answers at once.
    # On JAX, seeding is what loads TensorFlow (Keras seeds it too where it is installed).
    with native_notices_held_back():
        import keras
        from training import build_model, evaluate, load_resume_model, start_from, train
        keras.utils.set_random_seed(settings["seed"])
    print(f"Keras backend: {keras.backend.backend()}")
    rolls = [song.roll for part in parts.values() for song in part]
    num_keys, max_notes = rolls[0].shape[1], max(most_keys_on(rolls), 1)
    if resumed:
        model = load_resume_model(settings, resumed, num_keys, max_notes)
        print(f"resuming the interrupted run at epoch {resumed['epoch'] + 1} "
              f"({resumed['minutes']:.1f} of {settings['max_minutes']:g} minutes used)")
    else:
        model = build_model(settings, num_keys=num_keys, max_notes=max_notes)
        if start:
            start_from(model, start)
    history, minutes = train(model, parts["train"], parts["valid"], settings, resumed)
    if settings["distribute"] != "none":
        print(describe_weights(model))
    if not writes:
        print("training done; waiting while process 0 evaluates, generates and writes the files")
        wait_for_all()
        return {"epochs": len(history["loss"]), "train_minutes": minutes, "history": history}
    out = settings["output_dir"]
    remove_resume_checkpoint(out)  # training is over: best.keras holds what is worth keeping

    metrics = {**evaluate(model, parts), "members": model.config["members"], "epochs": len(history["loss"]),
               "train_minutes": minutes, "test_songs": split["test"], "history": history}
    metrics_path = os.path.join(out, "metrics.json")
    write_json(metrics_path, metrics)
    onsets = f"; onset NLL {metrics['test_onset_nll']:.3f} beside it" if "test_onset_nll" in metrics else ""
    print(f"test frame NLL {metrics['test_frame_nll']:.3f} nats of the sounding keys "
          f"(independent-Bernoulli baseline {metrics['test_frame_nll_baseline']:.3f}){onsets}; {printable(metrics_path)}")
    compose_and_report(model, parts, split, program, metrics, settings)
    wait_for_all()  # the other processes of a distributed run end with this one
    return metrics


# ------------------------------------------------------------------ the command line

def resume_command(argv):
    """The shell command that continues this run: same folder, interpreter, script and settings, plus --resume=True."""
    script = min(os.path.abspath(__file__), os.path.relpath(os.path.abspath(__file__)), key=len)
    args = [arg for arg in argv if not arg.startswith("--resume=")] + ["--resume=True"]
    return f"cd {shlex.quote(os.getcwd())} && {shlex.join([sys.executable, script, *args])}"


def training_error(err):
    """Whether err is training.TrainingError (training, and so Keras, is imported only once run() gets to training)."""
    training = sys.modules.get("training")
    return training is not None and isinstance(err, training.TrainingError)


def main(argv=None):
    """Command-line entry point: resolve settings, run, turn every failure into a one-line message.

    Exit status: 0 done; 2 a setting, path or file that cannot be used, or
    training that diverged before any usable epoch; 1 the system failed (out
    of memory, disk full...); 130 / 143 stopped by SIGINT / SIGTERM. Stopped
    in training, the run first saves a checkpoint and prints the command that
    continues it (the same arguments plus --resume=True).
    """
    argv = sys.argv[1:] if argv is None else argv
    try:
        if {"-h", "--help"} & set(argv):
            print(help_text(__file__))
            return 0
        with signal_handler(stop_at_once):  # SIGTERM too unwinds through the clean-up, like Ctrl-C
            settings = resolve_settings(argv, default_settings(__file__))
            print("settings: " + ", ".join(f"{name}={value!r}" for name, value in settings.items()))
            run(settings)
    except (SettingsError, DataError) as err:
        return fail(f"error: {err}", 2)
    except Interrupted as err:
        print(err, file=sys.stderr)
        return fail(f"to continue: {printable(resume_command(argv))}", err.exit_code)
    except KeyboardInterrupt as err:
        if isinstance(err, Terminated):
            return fail("terminated (SIGTERM): stopped; files already written are complete", 143)
        return fail("interrupted (SIGINT): stopped; files already written are complete", 130)
    except MemoryError:
        return fail("error: out of memory; try a smaller batch_size, seq_len, hidden_size or max_frames", 1)
    except OSError as err:
        where = f": {printable(err.filename)}" if err.filename else ""
        return fail(f"error: {err.strerror or err}{where}", 1)
    except Exception as err:
        if training_error(err):
            return fail(f"error: {err}", 2)
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
    if importlib.util.find_spec("jax"):  # on CPU JAX trains this model ~2.5x faster than TensorFlow; KERAS_BACKEND wins
        os.environ.setdefault("KERAS_BACKEND", "jax")
    for stream in (sys.stdout, sys.stderr):  # the last guard: a name that is not text never crashes the console
        stream.reconfigure(errors="backslashreplace")
    sys.exit(main())

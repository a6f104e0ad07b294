"""Hostile and broken inputs, built in code: the attacks a downloaded archive, CSV release or folder can carry.

Each archive case is a function of a marker path (a file an attack would
create if its code ran) returning the raw pickle of one archive member;
`write_archive` wraps members the way MusicNet's archive is written (.npy
object header + pickle, in a zip). `label_csv` and `nested_folders` build
oversized label files and folders nested past any recursion limit. Used by
tests/test_hostile.py and benchmarks/hostile_inputs.py.
"""
import io
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
import zipfile

import numpy as np

# ------------------------------------------------------------------ a tiny pickle assembler (protocol 2 opcodes)


def glob(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def text(value):
    data = value.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def raw(value):
    return b"B" + struct.pack("<I", len(value)) + value


def integer(value):
    if -2 ** 31 <= value < 2 ** 31:
        return b"J" + struct.pack("<i", value)
    data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data  # LONG1


def tup(*items):
    return b"(" + b"".join(items) + b"t"


def call(func, *args):
    return func + tup(*args) + b"R"


def lst(*items):
    return b"]" + (b"(" + b"".join(items) + b"e" if items else b"")


def build(obj, state):
    return obj + state + b"b"


def pickled(body):
    return b"\x80\x02" + body + b"."


NONE, TRUE, FALSE = b"N", b"\x88", b"\x89"
ARRAY = glob("numpy", "ndarray")
RECONSTRUCT = glob("numpy.core.multiarray", "_reconstruct")
DTYPE = glob("numpy", "dtype")
TREE = glob("intervaltree.intervaltree", "IntervalTree")
INTERVAL = glob("intervaltree.interval", "Interval")


def dtype(spec, state=None):
    """numpy.dtype(spec, False, True) with its BUILD state (numpy's own state for spec when None)."""
    made = call(DTYPE, text(spec), FALSE, TRUE)
    if state is None:
        order = "|" if spec in ("O8", "b1", "i1", "u1") else "<"
        state = tup(integer(3), text(order), NONE, NONE, NONE, integer(-1), integer(-1), integer(63 if spec == "O8" else 0))
    return build(made, state)


def array(dtype_pickle, shape, data):
    """_reconstruct(ndarray, (0,), b'b') with BUILD (1, shape, dtype, False, data)."""
    empty = call(RECONSTRUCT, ARRAY, tup(integer(0)), raw(b"b"))
    return build(empty, tup(integer(1), tup(*(integer(n) for n in shape)), dtype_pickle, FALSE, data))


def interval(begin=0, end=44100, note=60, beat=0.0):
    fields = tup(integer(1), integer(note), integer(0), b"G" + struct.pack(">d", beat), text("Quarter"))
    return call(INTERVAL, integer(begin), integer(end), fields)


def entry(labels_pickle, audio_pickle=None):
    """An (audio, labels) object pair, as every MusicNet member is."""
    audio = audio_pickle if audio_pickle is not None else array(dtype("f4"), (2,), raw(b"\0" * 8))
    return array(dtype("O8"), (2,), lst(audio, labels_pickle))


def honest():
    return pickled(entry(call(TREE, lst(interval(0, 44100, 60), interval(22050, 88200, 64, beat=0.25)))))


# ------------------------------------------------------------------ the attacks

def run_command(marker):
    return pickled(call(glob("os", "system"), text(f"touch {marker}")))


def run_eval(marker):
    return pickled(call(glob("builtins", "eval"), text(f"open({str(marker)!r}, 'w')")))


def run_subprocess(marker):
    return pickled(call(glob("subprocess", "check_call"), lst(text("touch"), text(str(marker)))))


def forged_object_fields(marker):
    """A dtype claiming plain bytes but holding object fields: numpy would read 24 forged pointers."""
    fake = dtype("V24", tup(integer(3), text("|"), NONE, tup(text("a"), text("b"), text("c")),
                            b"}" + b"(" + b"".join(text(k) + tup(dtype("O8"), integer(off)) for k, off in (("a", 0), ("b", 8), ("c", 16))) + b"u",
                            integer(24), integer(1), integer(0)))
    return pickled(entry(call(TREE, lst(interval())), array(fake, (1,), raw(b"A" * 24))))


def forged_field_offset(marker):
    """A numeric field placed beyond the item's end: an out-of-bounds read."""
    fake = dtype("f8", tup(integer(3), text("<"), NONE, tup(text("x"),),
                           b"}" + text("x") + tup(dtype("f8"), integer(4096)) + b"s", integer(8), integer(1), integer(0)))
    return pickled(entry(call(TREE, lst(interval())), array(fake, (1,), raw(b"\0" * 8))))


def object_dtype_with_numeric_flags(marker):
    """An object dtype whose state claims it holds no objects."""
    fake = dtype("O8", tup(integer(3), text("|"), NONE, NONE, NONE, integer(-1), integer(-1), integer(0)))
    return pickled(entry(call(TREE, lst(interval())), array(fake, (1,), lst(NONE))))


def patch_tree_class(marker):
    """BUILD on the IntervalTree class itself: sets IntervalTree.__iter__ for the rest of the run."""
    return pickled(build(TREE, tup(NONE, b"}" + text("__iter__") + glob("_codecs", "encode") + b"s")))


def reconstructor_tree(marker):
    return pickled(entry(call(glob("copy_reg", "_reconstructor"), TREE, glob("__builtin__", "object"), NONE)))


def reconstructor_empty_interval(marker):
    return pickled(entry(lst(call(glob("copy_reg", "_reconstructor"), INTERVAL, glob("__builtin__", "tuple"), tup()))))


def huge_memo_index(marker):
    """LONG_BINPUT 2**30: the C unpickler would allocate and zero 16 GB for its memo."""
    return pickled(NONE + b"r" + struct.pack("<I", 2 ** 30))


def huge_bytearray_call(marker):
    return pickled(entry(call(glob("builtins", "bytearray"), integer(2_000_000_000))))


def huge_bytes_call(marker):
    return pickled(entry(call(glob("__builtin__", "bytes"), integer(2_000_000_000))))


def huge_bytearray_opcode(marker):
    """Protocol 5's BYTEARRAY8 claiming 2 GB in a member of a few bytes."""
    return b"\x80\x05" + b"\x96" + struct.pack("<Q", 2_000_000_000) + b"\0" * 16 + b"."


def huge_frame(marker):
    return b"\x80\x04" + b"\x95" + struct.pack("<Q", 2 ** 40) + b"N."


def array_bigger_than_its_data(marker):
    return pickled(entry(call(TREE, lst()), array(dtype("f8"), (10 ** 12,), raw(b"\0" * 8))))


def deep_nesting(marker):
    """Labels nested a million lists deep."""
    return pickled(entry(b"]" * 1_000_000 + b"a" * 999_999))


def shared_nesting(marker):
    """A 1 KB pickle whose repr() would take 2**100 steps: each list holds the previous one twice, 100 deep."""
    chain = b"]q\x000" + b"(h\x00h\x00lq\x000" * 100 + b"h\x00"
    return pickled(entry(chain))


def many_small_objects(marker):
    """A 30 MB member (30 KB deflated) of empty lists: 30 million objects, about 2 GB if all were built."""
    return pickled(entry(b"](" + b"]" * 30_000_000 + b"e"))


def labels_none(marker):
    return pickled(entry(NONE))


def labels_dict(marker):
    return pickled(entry(lst(b"}")))


def out_of_band_buffer(marker):
    return b"\x80\x05\x97."


def numpy_not_object_member(marker):
    """Not a pickle at all: a numeric .npy member where an (audio, labels) pair belongs."""
    return None


ATTACKS = [run_command, run_eval, run_subprocess, forged_object_fields, forged_field_offset,
           object_dtype_with_numeric_flags, patch_tree_class, reconstructor_tree, reconstructor_empty_interval,
           huge_memo_index, huge_bytearray_call, huge_bytes_call, huge_bytearray_opcode, huge_frame,
           array_bigger_than_its_data, deep_nesting, shared_nesting, many_small_objects, labels_none, labels_dict, out_of_band_buffer]


def npy_member(pickle_bytes):
    """An .npy object-array member: the header MusicNet's members have, then the pickle."""
    stream = io.BytesIO()
    np.lib.format.write_array_header_1_0(stream, {"descr": "|O", "fortran_order": False, "shape": (2,)})
    return stream.getvalue() + pickle_bytes


def write_archive(path, members):
    """{id: pickle bytes} → a MusicNet-layout npz (deflated, as np.savez_compressed writes)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for song_id, pickle_bytes in members.items():
            archive.writestr(song_id + ".npy", npy_member(pickle_bytes))


def honest_pickle(protocol):
    """A genuine member pickled by Python with this protocol (numpy's own reduce, intervaltree's own classes)."""
    from intervaltree import Interval, IntervalTree
    tree = IntervalTree([Interval(0, 44100, (1, 60, 0, 0.0, "Quarter")), Interval(22050, 88200, (41, 64, 0, 0.5, b"Half"))])
    pair = np.empty(2, dtype=object)
    pair[0], pair[1] = np.linspace(-1, 1, 64), tree
    return pickle.dumps(pair, protocol=protocol)


LABEL_ROW = b"0,44100,1,60,0,1,Quarter\n"  # one note of a label CSV; b"0,1,1,60,0,1,\n" packs 14 M rows into 196 MB


def label_csv(path, rows, row=LABEL_ROW):
    """A MusicNet label CSV: the header, then `rows` copies of one row, written a million rows at a time."""
    with open(path, "wb") as file:
        file.write(b"start_time,end_time,instrument,note,start_beat,end_beat,note_value\n")
        for start in range(0, rows, 1 << 20):
            file.write(row * min(1 << 20, rows - start))


def nested_folders(top, depth):
    """top/d/d/.../d, depth folders deep, made one at a time (os.makedirs recurses) → the deepest folder."""
    path = os.fspath(top)
    for _ in range(depth):
        path = os.path.join(path, "d")
        os.mkdir(path)
    return path


def remove_nested(top, depth):
    """Remove what nested_folders made and the files in it, deepest first (shutil.rmtree recurses)."""
    for level in range(depth, 0, -1):
        path = os.path.join(os.fspath(top), *["d"] * level)
        for entry in os.scandir(path):
            if not entry.is_dir(follow_symlinks=False):
                os.unlink(entry.path)
        os.rmdir(path)


# Linux folds the high-water mark of the memory a process had before exec into its peak: a child started from
# pytest (vfork, sharing pytest's memory) would report pytest's size. A small launcher forks a copy of itself
# and execs the command there, so the figure is the command's own; it writes the peak (kB) to its argv[1].
LAUNCHER = ("import os, sys\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    os.execvp(sys.argv[2], sys.argv[2:])\n"
            "_, status, usage = os.wait4(pid, 0)\n"
            "open(sys.argv[1], 'w').write(str(usage.ru_maxrss))\n"
            "sys.exit(os.waitstatus_to_exitcode(status) & 0xFF)\n")


def run_measured(command, cwd, timeout=120, env=None):
    """Run a command (in env, or this process's environment) → (exit code, stdout, stderr, its own peak resident
    memory in MB); killed after timeout seconds. Bytes that are not UTF-8 come back as surrogate escapes."""
    out_path, err_path = os.path.join(cwd, "stdout.txt"), os.path.join(cwd, "stderr.txt")
    peak_path = os.path.join(cwd, "peak.txt")
    with open(out_path, "w") as out, open(err_path, "w") as err:
        process = subprocess.Popen([sys.executable, "-c", LAUNCHER, peak_path, *command], stdout=out, stderr=err,
                                   cwd=cwd, env=env, start_new_session=True)
        watchdog = threading.Timer(timeout, os.killpg, (process.pid, signal.SIGKILL))  # a hang ends as a kill
        watchdog.start()
        code = process.wait()
        watchdog.cancel()
    with open(out_path, errors="surrogateescape") as out, open(err_path, errors="surrogateescape") as err:
        peak_kb = int(open(peak_path).read()) if os.path.exists(peak_path) else 0
        return -signal.SIGKILL if code == -signal.SIGKILL else _signed(code), out.read(), err.read(), peak_kb / 1024


def _signed(code):
    """The launcher's exit status for a command killed by signal N is (-N) & 0xFF: → -N, as Popen reports it."""
    return code - 256 if code > 128 else code

"""Shared fixture builders: MusicNet-style labels and archives made from readable tuples."""
import io
import pickle
import zipfile

import numpy as np
from intervaltree import Interval, IntervalTree

SR = 44100  # MusicNet's sample rate


def labels(*notes, instrument=1):
    """(pitch, start_seconds, end_seconds[, note_value]) tuples → IntervalTree in MusicNet's label form."""
    tree = IntervalTree()
    for pitch, start, end, *value in notes:
        tree.add(Interval(round(start * SR), round(end * SR),
                          (instrument, pitch, int(start), start % 1.0, value[0] if value else "Quarter")))
    return tree


def musicnet_entry(tree, audio=None):
    """(audio, labels) object pair, the shape of one MusicNet archive member."""
    entry = np.empty(2, dtype=object)
    entry[0] = np.zeros(0, np.float32) if audio is None else audio
    entry[1] = tree
    return entry


def write_py2_style_archive(path, members):
    """Write {id: object} as an npz whose members are pickled with protocol 2 and Python 2 module names.

    This is how MusicNet's archive was written: an .npy header for an object array
    followed by a protocol-2 pickle (copy_reg / __builtin__ names).
    """
    with zipfile.ZipFile(path, "w") as archive:
        for song_id, obj in members.items():
            stream = io.BytesIO()
            np.lib.format.write_array_header_1_0(stream, {"descr": "|O", "fortran_order": False, "shape": (2,)})
            pickle.dump(obj, stream, protocol=2, fix_imports=True)
            archive.writestr(song_id + ".npy", stream.getvalue())

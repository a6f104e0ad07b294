"""Music in → notes out: reads MusicNet npz archives into the one note form, one recording at a time.

    from sources import archive_ids, read_archive
    for song_id, notes in read_archive("data/sample.npz"):   # notes: rolls.NOTE_DTYPE array
        ...

Nothing in an archive runs: members are unpickled by `safe_pickle` into
plain data. A member that is hostile or not an (audio, labels) pair, or a
damaged zip, raises DataError naming the file and member; a recording whose
labels hold unusable values raises BadRecording, which the caller skips.
"""
import io
import os
import zipfile

import numpy as np

from files import DataError, check_readable_file
from rolls import NOTE_DTYPE, BadRecording, check_notes
from safe_pickle import UnsafePickle, load_entry

MAX_MEMBER_MB = 1000.0  # default cap on one member's uncompressed size: 30 min of float64 audio is ~640 MB
LABEL_HEADROOM_MB = 300.0  # memory a member's unpickled labels may take beyond the member's own size

_BASE_VALUES = {"Sixty Fourth": 1 / 16, "Thirty Second": 1 / 8, "Sixteenth": 1 / 4,
                "Eighth": 1 / 2, "Quarter": 1.0, "Half": 2.0, "Whole": 4.0}


# ---------------------------------------------------------------- MusicNet npz archives

def _resident_mb():
    """This process's resident memory in MB (Linux /proc), or None where it cannot be read."""
    try:
        with open("/proc/self/statm", "rb") as file:
            return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        return None


class _MemberStream(io.RawIOBase):
    """A zip member as a raw stream: readinto fills the caller's buffer in chunks (no whole-member copies)
    and stops the load once the process has grown by more than budget_mb since the member was opened,
    so a small pickle that builds millions of objects cannot exhaust memory."""

    CHUNK = 1 << 20

    def __init__(self, member, budget_mb):
        self.member, self.budget_mb = member, budget_mb
        start = _resident_mb()
        self.ceiling = None if start is None else start + budget_mb

    def readable(self):
        return True

    def readinto(self, buffer):
        view = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(view):
            if self.ceiling is not None and _resident_mb() > self.ceiling:
                raise UnsafePickle(f"unpacking it took more than {self.budget_mb:.0f} MB of memory")
            data = self.member.read(min(self.CHUNK, len(view) - filled))
            if not data:
                break
            view[filled:filled + len(data)] = data
            filled += len(data)
        return filled


def _open_zip(path):
    """A zipfile.ZipFile on a checked regular file, or DataError."""
    check_readable_file(path, "archive")
    try:
        return zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile, ValueError, EOFError) as err:
        raise DataError(f"{path} is not a readable MusicNet npz archive ({type(err).__name__}: {str(err)[:120]})") from None


def fingerprint(path):
    """What identifies a data file's contents for the roll cache: absolute path, size, modification time."""
    info = check_readable_file(path, "data file")
    return {"path": os.path.abspath(path), "size": info.st_size, "mtime_ns": info.st_mtime_ns}


def archive_ids(path):
    """Recording ids in a MusicNet-format npz archive (members '<id>.npy'), sorted."""
    with _open_zip(path) as archive:
        names = archive.namelist()
    ids = sorted({name[:-4] for name in names if name.endswith(".npy")})
    odd = [song_id for song_id in ids if not song_id.isprintable() or len(song_id) > 200]
    if odd:
        raise DataError(f"{path} has a member whose name is not a plain recording id: {ascii(odd[0])[:80]}")
    return ids


def _member_info(archive, path, song_id, max_member_mb):
    """The zip directory entry of a recording's member, checked before anything is read."""
    name = song_id
    try:
        info = archive.getinfo(song_id + ".npy")
    except KeyError:
        raise DataError(f"{path}: member '{name}' is not in the archive") from None
    if info.flag_bits & 0x1:
        raise DataError(f"{path}: member '{name}' is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
        raise DataError(f"{path}: member '{name}' uses an unsupported compression method ({info.compress_type})")
    if info.file_size > max_member_mb * 1e6:
        raise DataError(f"{path}: member '{name}' is {info.file_size / 1e6:.0f} MB uncompressed, over the "
                        f"{max_member_mb:g} MB limit (raise --max_member_mb if the file is genuine)")
    return info


def load_member(archive, path, song_id, max_member_mb=MAX_MEMBER_MB):
    """One '<id>.npy' member → (audio array, list of safe_pickle.Interval), never running code from it."""
    name = song_id
    info = _member_info(archive, path, song_id, max_member_mb)
    try:
        with archive.open(info) as member:
            budget_mb = info.file_size / 1e6 + LABEL_HEADROOM_MB
            stream = io.BufferedReader(_MemberStream(member, budget_mb), buffer_size=1 << 16)
            version = np.lib.format.read_magic(stream)
            if version not in ((1, 0), (2, 0)):
                raise UnsafePickle(f"unsupported .npy format version {version}")
            read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            shape, _, dtype = read_header[version](stream, max_header_size=10000)
            if not (dtype.hasobject and dtype.names is None and shape == (2,)):
                raise UnsafePickle("the member is not an (audio, labels) pair")
            audio, labels = load_entry(stream, info.file_size)
            while stream.read(1 << 20):  # to the end: zipfile checks the CRC only there
                pass
    except UnsafePickle as err:
        raise DataError(f"{path}: member '{name}' cannot be read safely: {err}") from None
    except (OSError, ValueError, EOFError, RuntimeError, NotImplementedError, zipfile.BadZipFile, MemoryError) as err:
        raise DataError(f"{path}: member '{name}' is damaged ({type(err).__name__}: {str(err)[:120]})") from None
    return audio, labels


def read_archive(path, ids=None, max_member_mb=MAX_MEMBER_MB):
    """Yield (id, notes, problem) for each recording of a MusicNet npz, one at a time.

    notes is a checked NOTE_DTYPE array, or None with problem saying why the
    recording's labels cannot be used (the caller skips it). A damaged or
    hostile member raises DataError: the archive cannot be trusted.
    """
    with _open_zip(path) as archive:
        for song_id in ids if ids is not None else archive_ids(path):
            notes, problem = _checked_notes(load_member(archive, path, song_id, max_member_mb)[1])
            yield song_id, notes, problem  # the member's audio and label objects are already freed


def _checked_notes(labels):
    """Labels → (notes, None), or (None, reason) when they cannot be used."""
    try:
        return notes_from_labels(labels), None
    except BadRecording as problem:
        return None, str(problem)


# ------------------------------------------------------------------ labels → notes

def quarters_from_name(note_value):
    """MusicNet note-value name ('Dotted Quarter', b'Eighth') → quarter notes; NaN if unknown."""
    if isinstance(note_value, bytes):
        note_value = note_value.decode("latin1")
    name, scale = str(note_value).strip(), 1.0
    for prefix, factor in (("Dotted ", 1.5), ("Triplet ", 2 / 3)):
        if name.startswith(prefix):
            name, scale = name[len(prefix):], factor
    return _BASE_VALUES.get(name, np.nan) * scale


def _number(value, what, integer=False):
    """A label field → float, or BadRecording naming the field (bools, text and fractional integers refused)."""
    if type(value) not in (int, float) and not isinstance(value, (np.integer, np.floating)):
        raise BadRecording(f"{what} is {type(value).__name__}, not a number")
    try:
        value = float(value)
    except OverflowError:
        raise BadRecording(f"{what} is too large to be a time or a number") from None
    if integer and np.isfinite(value) and value != round(value):
        raise BadRecording(f"{what} {value:g} is not a whole number")
    return value


# (field, where it is in a label (begin, end, (instrument, note, measure, beat, note_value)), its name, integer?)
_LABEL_FIELDS = [("start", lambda label: label[0], "a start time", False),
                 ("end", lambda label: label[1], "an end time", False),
                 ("instrument", lambda label: label[2][0], "an instrument", True),
                 ("note", lambda label: label[2][1], "a note", True),
                 ("measure", lambda label: label[2][2], "a measure", False),
                 ("beat", lambda label: label[2][3], "a beat", False)]


def notes_from_labels(labels):
    """Iterable of (begin, end, (instrument, note, measure, beat, note_value)) → checked NOTE_DTYPE array sorted by start.

    Filled column by column, so memory stays near the array's own size.
    Raises BadRecording (with the reason) when a label's values cannot be used.
    """
    labels = labels if isinstance(labels, list) else list(labels)
    for number, label in enumerate(labels):
        if not (isinstance(label, tuple) and len(label) == 3 and isinstance(label[2], (tuple, list)) and len(label[2]) == 5):
            raise BadRecording(f"label {number} is not (start, end, (instrument, note, measure, beat, note_value))")
    notes = np.zeros(len(labels), dtype=NOTE_DTYPE)
    for field, pick, what, integer in _LABEL_FIELDS:
        values = np.fromiter((_number(pick(label), what, integer) for label in labels), float, count=len(labels))
        if NOTE_DTYPE[field].kind == "i":
            values = np.where(np.abs(values) < 2 ** 15, values, -1)  # out of range: check_notes says so
        notes[field] = values
    notes["quarters"] = np.fromiter((quarters_from_name(label[2][4]) for label in labels), float, count=len(labels))
    notes["start_beat"] = notes["beats"] = np.nan
    check_notes(notes)
    return notes[np.lexsort((notes["note"], notes["start"]))]

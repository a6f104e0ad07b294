"""Music in → notes out: reads MusicNet npz archives into the one note form, one recording at a time.

    from sources import archive_ids, read_archive
    for song_id, notes in read_archive("data/sample.npz"):   # notes: rolls.NOTE_DTYPE array
        ...

Nothing in an archive runs: members are unpickled by `safe_pickle` into
plain data. A member that is hostile or not an (audio, labels) pair, or a
damaged zip, raises DataError naming the file and member; a recording whose
labels hold unusable values raises BadRecording, which the caller skips.
A CSV release's label files are read in chunks under row and line limits,
its metadata only when a filter asks (read_metadata); folders are walked
without recursion to MAX_FOLDER_DEPTH, and links leading outside the data
folder are skipped with a warning. Paths in messages go through
files.printable.
"""
import csv
import itertools
import os
import zipfile
from collections import Counter
from typing import NamedTuple

import numpy as np

from files import DataError, check_readable_file, printable
from midi_io import midi_to_notes
from rolls import NOTE_DTYPE, BadRecording, check_notes
from safe_pickle import UnsafePickle, load_entry

MAX_MEMBER_MB = 1000.0  # default cap on one member's uncompressed size: 30 min of float64 audio is ~640 MB
LABEL_HEADROOM_MB = 300.0  # memory a member's unpickled labels may take beyond the member's own size

_BASE_VALUES = {"Sixty Fourth": 1 / 16, "Thirty Second": 1 / 8, "Sixteenth": 1 / 4,
                "Eighth": 1 / 2, "Quarter": 1.0, "Half": 2.0, "Whole": 4.0}


# ---------------------------------------------------------------- what data_path names

MIDI_SUFFIXES = (".mid", ".midi")
METADATA_FILE = "musicnet_metadata.csv"
KIND_NAMES = {"npz": "MusicNet npz archive", "csv": "MusicNet CSV release", "midi": "MIDI files"}


class Source(NamedTuple):
    """What data_path names, once looked at: kind ('npz', 'csv' or 'midi'), root path, recordings
    {id: member id, label CSV or MIDI file}, the ids the source itself holds out for testing (a CSV
    release's test_labels/), the metadata file beside it (None if none; read_metadata reads it), other
    names split files may use for an id {alias: id}, and files [[path, size, mtime_ns]] for the cache key."""
    kind: str
    path: str
    recordings: dict
    test_ids: tuple
    metadata_path: str | None
    aliases: dict
    files: list


def open_source(path):
    """data_path → Source, detected from what it names; DataError for anything else. Files skipped in a
    folder (links leading outside it, folders nested too deep) are counted in one warning line each."""
    if os.path.isdir(path):
        root = _csv_release_root(path)
        return _open_csv_release(root) if root else _open_midi_folder(path)
    check_readable_file(path, "data file")
    with open(path, "rb") as file:
        magic = file.read(4)
    if magic in (b"PK\x03\x04", b"PK\x05\x06"):
        metadata_path = os.path.join(os.path.dirname(os.path.abspath(path)), METADATA_FILE)
        metadata_path = metadata_path if os.path.isfile(metadata_path) else None
        ids = archive_ids(path)
        return Source("npz", path, {song_id: song_id for song_id in ids}, (), metadata_path, {}, _stat_files([path]))
    if magic == b"MThd" or path.lower().endswith(MIDI_SUFFIXES):
        song_id = os.path.splitext(os.path.basename(path))[0]
        return Source("midi", path, {song_id: path}, (), None, {}, _stat_files([path]))
    raise DataError(f"{printable(path)} is neither a MusicNet npz archive, a MIDI file, a MIDI folder nor a MusicNet CSV release")


def describe(source):
    """One line saying what was found, e.g. '330 recordings in MusicNet CSV release data (10 in test_labels/);
    with musicnet_metadata.csv'."""
    extra = f" ({len(source.test_ids)} in test_labels/)" if source.test_ids else ""
    extra += f"; with {METADATA_FILE}" if source.metadata_path else ""
    return f"{len(source.recordings)} recordings in {KIND_NAMES[source.kind]} {printable(source.path)}{extra}"


def source_fingerprint(source):
    """What identifies a source's contents for the roll cache: every file's path, size and modification time."""
    return {"kind": source.kind, "root": os.path.abspath(source.path), "files": source.files}


def _stat_files(paths):
    """[[absolute path, size, mtime_ns]] of files, sorted: changes when any is added, removed or rewritten."""
    listing = []
    for path in sorted(paths):
        info = os.stat(path)
        listing.append([os.path.abspath(path), info.st_size, info.st_mtime_ns])  # lists: equal after a JSON round trip
    return listing


MAX_FOLDER_DEPTH = 32  # folders deeper than this under a data folder are skipped: MusicNet's MIDI files are 1 deep


def _inside(path, folder):
    """Whether path, its links resolved, lies in the (resolved) folder."""
    real = os.path.realpath(path)
    return os.path.commonpath([real, folder]) == folder


def _walk_files(top, suffixes, folder, skipped):
    """Regular files under top whose names end in suffixes, in os.walk's order (sorted, each folder's files before
    its subfolders), without recursion. Skipped and counted in skipped {reason: [count, first path]}: links
    leading outside the resolved folder, links to folders (not followed, as os.walk does), folders deeper than
    MAX_FOLDER_DEPTH and folders that cannot be listed."""
    if not _inside(top, folder):
        _skip(skipped, "symbolic links leading outside it", top)
        return []
    found, pending = [], [(top, 0)]
    while pending:
        directory, depth = pending.pop()
        try:
            with os.scandir(directory) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError:
            _skip(skipped, "folders that cannot be listed", directory)
            continue
        subfolders = []
        for entry in entries:
            if entry.is_symlink() and not _inside(entry.path, folder):
                _skip(skipped, "symbolic links leading outside it", entry.path)
            elif entry.is_dir(follow_symlinks=False):
                subfolders.append(entry.path)
            elif entry.is_dir():
                _skip(skipped, "symbolic links to folders, not followed", entry.path)
            elif entry.name.lower().endswith(suffixes) and entry.is_file():
                found.append(entry.path)
        if subfolders and depth >= MAX_FOLDER_DEPTH:
            _skip(skipped, f"folders more than {MAX_FOLDER_DEPTH} levels deep", subfolders[0], len(subfolders))
            continue
        pending += [(subfolder, depth + 1) for subfolder in reversed(subfolders)]
    return found


def _skip(skipped, reason, path, count=1):
    """Count one more skipped path (or count of them) under reason, keeping the first."""
    skipped.setdefault(reason, [0, path])[0] += count


def _warn_skipped(skipped, folder):
    """One warning line for each reason entries of folder were skipped: how many, and the first."""
    for reason, (count, first) in skipped.items():
        print(f"warning: skipped {count} of the entries in {printable(folder)}: {reason} "
              f"(the first: {printable(os.path.relpath(first, folder))})")


def _csv_release_root(path):
    """The folder holding train_labels/ or test_labels/: path itself, path/musicnet or path/musicnet/musicnet; else None."""
    for candidate in (path, os.path.join(path, "musicnet"), os.path.join(path, "musicnet", "musicnet")):
        if any(os.path.isdir(os.path.join(candidate, part)) for part in ("train_labels", "test_labels")):
            return candidate
    return None


def _open_csv_release(root):
    """A CSV release folder → Source: <id>.csv under train_labels/ and test_labels/, metadata beside or above."""
    recordings, test_ids, skipped, inside = {}, [], {}, os.path.realpath(root)
    for part in ("train_labels", "test_labels"):
        top = os.path.join(root, part)
        for path in _walk_files(top, (".csv",), inside, skipped) if os.path.isdir(top) else ():
            song_id = os.path.splitext(os.path.basename(path))[0]
            if song_id in recordings:
                raise DataError(f"{printable(root)}: recording {printable(song_id)} has two label files: "
                                f"{printable(os.path.relpath(recordings[song_id], root))} and "
                                f"{printable(os.path.relpath(path, root))}")
            recordings[song_id] = path
            if part == "test_labels":
                test_ids.append(song_id)
    _warn_skipped(skipped, root)
    metadata_paths = [os.path.join(folder, METADATA_FILE) for folder in (root, os.path.dirname(root), os.path.dirname(os.path.dirname(root)))]
    metadata_path = next((path for path in metadata_paths if os.path.isfile(path)), None)
    files = _stat_files(list(recordings.values()) + ([metadata_path] if metadata_path else []))
    return Source("csv", root, recordings, tuple(sorted(test_ids)), metadata_path, {}, files)


def _open_midi_folder(folder):
    """A folder searched for .mid/.midi files → Source; ids are stems, or relative paths where stems repeat."""
    skipped = {}
    paths = _walk_files(folder, MIDI_SUFFIXES, os.path.realpath(folder), skipped)
    _warn_skipped(skipped, folder)
    if not paths:
        raise DataError(f"{printable(folder)} holds no .mid or .midi files and is not a MusicNet CSV release (train_labels/, test_labels/)")
    relative = [os.path.splitext(os.path.relpath(path, folder))[0].replace(os.sep, "/") for path in paths]
    stems = [name.rsplit("/", 1)[-1] for name in relative]
    counts = Counter(stems)
    ids = [stem if counts[stem] == 1 else name for stem, name in zip(stems, relative)]
    aliases = {name: song_id for name, song_id in zip(relative, ids) if name != song_id}
    return Source("midi", folder, dict(zip(ids, paths)), (), None, aliases, _stat_files(paths))


MAX_METADATA_MB = 2.0  # largest metadata CSV read: MusicNet's is about 0.05 MB
METADATA_COLUMNS = ("id", "composer", "ensemble")


def read_metadata(source):
    """A source's metadata CSV → {id: {column: text}} (composer, ensemble, composition, ...); {} if it has none.
    Read only when asked (a filter needs it); DataError naming the file, line and problem if it cannot be used."""
    path = source.metadata_path
    if path is None:
        return {}
    info = check_readable_file(path, "metadata file")
    if info.st_size > MAX_METADATA_MB * 1e6:
        raise DataError(f"metadata file {printable(path)} is {info.st_size / 1e6:.1f} MB, over the "
                        f"{MAX_METADATA_MB:g} MB limit (MusicNet's is about 0.05 MB)")
    try:
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as file:
            reader = csv.reader(file)
            return _metadata_rows(reader, path)
    except csv.Error as err:
        raise DataError(f"metadata file {printable(path)} line {reader.line_num}: {err}") from None
    except OSError as err:
        raise DataError(f"cannot read metadata file {printable(path)}: {err.strerror or err}") from None


def _metadata_rows(reader, path):
    """A csv.reader over a metadata file → {id: {column: text}}; DataError if its header lacks a needed column."""
    header = next(reader, [])
    missing = [column for column in METADATA_COLUMNS if column not in header]
    if missing:
        raise DataError(f"metadata file {printable(path)} line 1: the header has no column {', '.join(missing)}")
    metadata = {}
    for row in reader:
        record = {key: row[number].strip() if number < len(row) else "" for number, key in enumerate(header) if key}
        if record["id"]:
            metadata[record["id"]] = record
    return metadata


def read_song(source, song_id, max_member_mb=MAX_MEMBER_MB):
    """One recording of any source → (notes, None), or (None, reason) when it cannot be used: a broken CSV or
    MIDI file is a reason, a hostile or damaged npz member raises DataError (the archive cannot be trusted)."""
    if source.kind == "npz":
        return read_member(source.path, song_id, max_member_mb)
    try:
        if source.kind == "csv":
            return read_csv_labels(source.recordings[song_id]), None
        return midi_to_notes(source.recordings[song_id]), None
    except DataError as problem:  # BadRecording included: a broken file in a collection is skipped
        return None, str(problem)


# ---------------------------------------------------------------- MusicNet npz archives

def _resident_mb():
    """This process's resident memory in MB (Linux /proc), or None where it cannot be read."""
    try:
        with open("/proc/self/statm", "rb") as file:
            return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        return None


class _MemberStream:
    """A zip member read in pieces (the unpickler keeps its own window over them) that stops the load once the
    process has grown by more than budget_mb since the member was opened, so a small pickle that builds
    millions of objects cannot exhaust memory."""

    def __init__(self, member, budget_mb):
        self.member, self.budget_mb, self.failure = member, budget_mb, None
        start = _resident_mb()
        self.ceiling = None if start is None else start + budget_mb

    def read(self, size):
        if self.ceiling is not None and _resident_mb() > self.ceiling:
            raise UnsafePickle(f"unpacking it took more than {self.budget_mb:.0f} MB of memory")
        try:
            return self.member.read(size)
        except Exception as err:  # kept, so that a damaged zip is reported as such, not as a bad pickle
            self.failure = err
            raise


def _open_zip(path):
    """A zipfile.ZipFile on a checked regular file, or DataError."""
    check_readable_file(path, "archive")
    try:
        return zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile, ValueError, EOFError) as err:
        raise DataError(f"{printable(path)} is not a readable MusicNet npz archive ({type(err).__name__}: {printable(str(err)[:120])})") from None


def archive_ids(path):
    """Recording ids in a MusicNet-format npz archive (members '<id>.npy'), sorted."""
    with _open_zip(path) as archive:
        names = archive.namelist()
    ids = sorted({name[:-4] for name in names if name.endswith(".npy")})
    odd = [song_id for song_id in ids if not song_id.isprintable() or len(song_id) > 200]
    if odd:
        raise DataError(f"{printable(path)} has a member whose name is not a plain recording id: '{printable(odd[0][:80])}'")
    return ids


def _member_info(archive, path, song_id, max_member_mb):
    """The zip directory entry of a recording's member, checked before anything is read."""
    try:
        info = archive.getinfo(song_id + ".npy")
    except KeyError:
        raise DataError(f"{printable(path)}: member '{printable(song_id)}' is not in the archive") from None
    if info.flag_bits & 0x1:
        raise DataError(f"{printable(path)}: member '{printable(song_id)}' is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
        raise DataError(f"{printable(path)}: member '{printable(song_id)}' uses an unsupported compression method ({info.compress_type})")
    if info.file_size > max_member_mb * 1e6:
        raise DataError(f"{printable(path)}: member '{printable(song_id)}' is {info.file_size / 1e6:.0f} MB uncompressed, over the "
                        f"{max_member_mb:g} MB limit (raise --max_member_mb if the file is genuine)")
    return info


SKIP_FROM = 1 << 16  # byte strings this long or longer (audio) are passed over unread when the audio is not kept


def load_member(archive, path, song_id, max_member_mb=MAX_MEMBER_MB, keep_audio=True):
    """One '<id>.npy' member → (audio array, list of safe_pickle.Interval), never running code from it.
    keep_audio=False passes the audio's bytes over unread (still checked against the zip's CRC): the audio
    is then a safe_pickle.SkippedArray, its shape and dtype."""
    info = _member_info(archive, path, song_id, max_member_mb)
    try:
        with archive.open(info) as member:
            stream = _MemberStream(member, info.file_size / 1e6 + LABEL_HEADROOM_MB)
            version = np.lib.format.read_magic(stream)
            if version not in ((1, 0), (2, 0)):
                raise UnsafePickle(f"unsupported .npy format version {version}")
            read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            shape, _, dtype = read_header[version](stream, max_header_size=10000)
            if not (dtype.hasobject and dtype.names is None and shape == (2,)):
                raise UnsafePickle("the member is not an (audio, labels) pair")
            try:
                audio, labels = load_entry(stream, info.file_size, None if keep_audio else SKIP_FROM)
            except UnsafePickle:
                if stream.failure is not None:  # the zip failed under the unpickler (a bad CRC, say)
                    raise _damaged(path, song_id, stream.failure) from None
                raise
            while member.read(1 << 20):  # to the end: zipfile checks the CRC only there
                pass
    except UnsafePickle as err:
        raise DataError(f"{printable(path)}: member '{printable(song_id)}' cannot be read safely: {printable(str(err))}") from None
    except (OSError, ValueError, EOFError, RuntimeError, NotImplementedError, zipfile.BadZipFile, MemoryError) as err:
        raise _damaged(path, song_id, err) from None
    return audio, labels


def _damaged(path, song_id, err):
    """The DataError for a member whose zip data cannot be read."""
    return DataError(f"{printable(path)}: member '{printable(song_id)}' is damaged ({type(err).__name__}: {printable(str(err)[:120])})")


def read_member(path, song_id, max_member_mb=MAX_MEMBER_MB):
    """One recording of a MusicNet npz → (notes, None), or (None, reason) when its labels cannot be used; the
    archive opened for it alone (so each reader process has its own). A hostile or damaged member raises DataError."""
    with _open_zip(path) as archive:
        return _member_notes(archive, path, song_id, max_member_mb)


def _member_notes(archive, path, song_id, max_member_mb):
    """One member of an open archive → _checked_notes of its labels, the audio passed over unread."""
    return _checked_notes(load_member(archive, path, song_id, max_member_mb, keep_audio=False)[1])


def read_archive(path, ids=None, max_member_mb=MAX_MEMBER_MB):
    """Yield (id, notes, problem) for each recording of a MusicNet npz, one at a time.

    notes is a checked NOTE_DTYPE array, or None with problem saying why the
    recording's labels cannot be used (the caller skips it). A damaged or
    hostile member raises DataError: the archive cannot be trusted. The
    audio is passed over unread.
    """
    with _open_zip(path) as archive:
        for song_id in ids if ids is not None else archive_ids(path):
            yield song_id, *_member_notes(archive, path, song_id, max_member_mb)  # its label objects already freed


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


# the numeric label fields in order: (field, its name, integer?)
_LABEL_FIELDS = [("start", "a start time", False), ("end", "an end time", False), ("instrument", "an instrument", True),
                 ("note", "a note", True), ("measure", "a measure", False), ("beat", "a beat", False)]


def _label_columns(labels):
    """Labels → their seven columns (begin, end, instrument, note, measure, beat, note_value) as tuples;
    BadRecording naming the first label that is not (start, end, (five fields))."""
    if all(map(isinstance, labels, itertools.repeat(tuple))) and set(map(len, labels)) <= {3}:
        begins, ends, data = zip(*labels) if labels else ((), (), ())
        if all(map(isinstance, data, itertools.repeat((tuple, list)))) and set(map(len, data)) <= {5}:
            return (begins, ends, *zip(*data)) if labels else ((),) * 7
    for number, label in enumerate(labels):
        if not (isinstance(label, tuple) and len(label) == 3 and isinstance(label[2], (tuple, list)) and len(label[2]) == 5):
            raise BadRecording(f"label {number} is not (start, end, (instrument, note, measure, beat, note_value))")


def _numbers(values, what, integer):
    """A column of label fields → float array; BadRecording naming the first that _number refuses."""
    if not set(map(type, values)) - {int, float}:  # plain numbers, the usual case: numpy converts them at once
        try:
            array = np.array(values, dtype=float)
        except OverflowError:  # an int too large for a float: _number below says so
            array = None
        if array is not None and not (integer and np.any(np.isfinite(array) & (array != np.round(array)))):
            return array
    return np.fromiter((_number(value, what, integer) for value in values), float, count=len(values))


def _quarters(names):
    """A column of note-value names → quarter notes each (NaN if unknown), each distinct name looked up once."""
    try:
        lookup = {name: quarters_from_name(name) for name in set(names)}
    except TypeError:  # an unhashable field
        return np.fromiter(map(quarters_from_name, names), float, count=len(names))
    return np.fromiter(map(lookup.__getitem__, names), float, count=len(names))


def labels_hold_start_beats(third, fourth):
    """True when label fields 3 and 4 are (start_beat, duration in beats), as in npz files built from the CSV
    release; False for MusicNet's original (measure, fraction of the bar): a bar fraction is below 1 and a
    bar number is whole, while durations of a beat or more, and fractional onsets, fill any real piece."""
    finite = np.isfinite(third) & np.isfinite(fourth)
    return bool(np.any(fourth[finite] >= 1) or np.any(third[finite] != np.round(third[finite])))


def label_form(notes):
    """Which timing fields a NOTE_DTYPE array carries: 'measure/beat', 'start_beat/end_beat' or 'seconds only'."""
    if len(notes) and not np.isnan(notes["start_beat"]).any():
        return "start_beat/end_beat"
    return "measure/beat" if len(notes) and not np.isnan(notes["measure"]).any() else "seconds only"


def notes_from_labels(labels):
    """Iterable of (begin, end, (instrument, note, measure, beat, note_value)) → checked NOTE_DTYPE array sorted by start.

    Labels built from the CSV release, (instrument, note, start_beat, end_beat,
    note_value), are recognised (labels_hold_start_beats) and read as such.
    Read column by column, each converted by numpy in one go.
    Raises BadRecording (with the reason) when a label's values cannot be used.
    """
    labels = labels if isinstance(labels, list) else list(labels)
    columns = _label_columns(labels)
    notes = np.zeros(len(labels), dtype=NOTE_DTYPE)
    for (field, what, integer), column in zip(_LABEL_FIELDS, columns):
        values = _numbers(column, what, integer)
        if NOTE_DTYPE[field].kind == "i":
            values = np.where(np.abs(values) < 2 ** 15, values, -1)  # out of range: check_notes says so
        notes[field] = values
    notes["quarters"] = _quarters(columns[6])
    notes["start_beat"] = notes["beats"] = np.nan
    if labels_hold_start_beats(notes["measure"], notes["beat"]):
        notes["start_beat"], notes["beats"] = notes["measure"], notes["beat"]
        notes["measure"] = notes["beat"] = np.nan
    check_notes(notes)
    return notes[np.lexsort((notes["note"], notes["start"]))]


# ------------------------------------------------------------------ the CSV release

CSV_COLUMNS = ("start_time", "end_time", "instrument", "note", "start_beat", "end_beat", "note_value")
MAX_CSV_MB = 200.0  # largest label CSV read: MusicNet's biggest is about 3 MB
MAX_CSV_ROWS = 1_000_000  # most notes in one label CSV: MusicNet's biggest has under 100,000
MAX_CSV_LINE = 1000  # longest line of a label CSV, in characters: MusicNet's are under 60
CSV_CHUNK_ROWS = 1 << 16  # rows parsed into number columns at a time: memory stays a few tens of MB


def _csv_numbers(texts, column, first_line):
    """Column of CSV texts → float array, or BadRecording naming the first line that is not a number."""
    try:
        return np.array(texts, dtype=float)
    except ValueError:
        for number, text in enumerate(texts, start=first_line):
            try:
                float(text)
            except ValueError:
                raise BadRecording(f"line {number}: {column} {text[:20]!r} is not a number") from None
        raise


def _csv_lines(file):
    """A label CSV's lines, each checked to hold one whole row: at most MAX_CSV_LINE characters, no line break
    inside quotes, and no more than MAX_CSV_ROWS rows after the header; BadRecording naming the line if not."""
    for number, line in enumerate(iter(lambda: file.readline(MAX_CSV_LINE + 1), ""), start=1):
        if len(line) > MAX_CSV_LINE:
            raise BadRecording(f"line {number} is longer than {MAX_CSV_LINE} characters")
        if line.count('"') % 2:
            raise BadRecording(f"line {number}: a quoted field runs past the end of the line")
        if number > MAX_CSV_ROWS + 1:
            raise BadRecording(f"more than {MAX_CSV_ROWS} rows, over the limit for a label file")
        yield line


def _csv_chunks(rows):
    """csv rows after the header → lists of at most CSV_CHUNK_ROWS rows, each checked to have the seven fields."""
    chunk = []
    for number, row in enumerate(rows, start=2):
        if len(row) != len(CSV_COLUMNS):
            raise BadRecording(f"line {number} does not have the {len(CSV_COLUMNS)} fields " + ",".join(CSV_COLUMNS))
        chunk.append(row)
        if len(chunk) == CSV_CHUNK_ROWS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _csv_notes(rows, first_line):
    """Rows of a label CSV (first_line: the first one's line number) → NOTE_DTYPE notes, unchecked."""
    columns = list(zip(*rows))
    notes = np.zeros(len(rows), dtype=NOTE_DTYPE)
    notes["measure"] = notes["beat"] = np.nan
    for field, column in (("start", 0), ("end", 1), ("instrument", 2), ("note", 3), ("start_beat", 4), ("beats", 5)):
        values = _csv_numbers(columns[column], CSV_COLUMNS[column], first_line)
        if NOTE_DTYPE[field].kind == "i":
            fractional = np.isfinite(values) & (values != np.round(values))
            if fractional.any():
                raise BadRecording(f"line {int(np.argmax(fractional)) + first_line}: {CSV_COLUMNS[column]} is not a whole number")
            values = np.where(np.abs(values) < 2 ** 15, values, -1)  # out of range: check_notes says so
        notes[field] = values
    notes["quarters"] = _quarters(columns[6])
    return notes


def _read_csv_rows(file):
    """An open label CSV → NOTE_DTYPE notes, read CSV_CHUNK_ROWS rows at a time; BadRecording naming the line."""
    reader = csv.reader(_csv_lines(file))
    try:
        header = next(reader, None)
        if header is None or [name.strip() for name in header] != list(CSV_COLUMNS):
            raise BadRecording("does not start with the header " + ",".join(CSV_COLUMNS))
        parts, line = [], 2
        for rows in _csv_chunks(reader):
            parts.append(_csv_notes(rows, line))
            line += len(rows)
    except csv.Error as err:
        raise BadRecording(f"line {reader.line_num}: {err}") from None
    return np.concatenate(parts) if parts else np.zeros(0, dtype=NOTE_DTYPE)


def read_csv_labels(path, max_mb=MAX_CSV_MB):
    """One MusicNet CSV label file → checked NOTE_DTYPE array (end_beat is a duration); BadRecording if unusable.
    A byte-order mark, CRLF line ends and quoted fields are read as spreadsheet programs write them."""
    try:
        info = check_readable_file(path, "label file")
        if info.st_size > max_mb * 1e6:
            raise BadRecording(f"{info.st_size / 1e6:.0f} MB, over the {max_mb:g} MB limit for a label file")
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as file:
            notes = _read_csv_rows(file)
    except DataError as err:
        raise BadRecording(str(err)) from None
    except OSError as err:
        raise BadRecording(f"cannot be read ({type(err).__name__}: {str(err)[:80]})") from None
    check_notes(notes)
    return notes[np.lexsort((notes["note"], notes["start"]))]

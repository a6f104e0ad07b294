"""Files the pipeline writes and reads: atomic writes with ordinary permissions, checked input paths, JSON, paths shown safely.

    from files import atomic_write
    with atomic_write("output/metrics.json", "w") as file:
        json.dump(metrics, file)        # the old file stays whole until the new one is complete

Every file the project writes goes through `atomic_write`: it is written to a
temporary name beside the target, flushed to disk, given the permissions a
plain `open()` would give (0666 less the umask) and renamed into place, so
an interruption never leaves a half-written file where a good one was.
"""
import contextlib
import json
import os
import stat
import tempfile


class DataError(Exception):
    """A data file, path or label set that cannot be used; the message is for the user."""


_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(name):
    r"""A path or name (str, bytes or os.PathLike) → text safe to print or write anywhere, losing nothing.

    Printable characters (non-ASCII letters included) stay as they are; a
    backslash becomes \\; newline, return and tab become \n, \r and \t; a
    byte that was not UTF-8 (the surrogate escape os.fsdecode gives it) and
    any other ASCII control character (ESC) become \xNN; other unprintable
    characters \uNNNN or \UNNNNNNNN. Plain names come back unchanged.
    """
    text = os.fsdecode(name)
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(_escaped(char) for char in text)


def _escaped(char):
    """One character as printable() shows it."""
    code = ord(char)
    if char in _ESCAPES:
        return _ESCAPES[char]
    if char.isprintable():
        return char
    if code < 0x80 or 0xDC80 <= code <= 0xDCFF:  # an ASCII control, or the byte a surrogate escape stands for
        return f"\\x{code & 0xFF:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _umask():
    """The process umask (read without changing it for longer than a moment)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Open a temporary file beside `path` for writing; on success it replaces `path`, on error it is removed."""
    with atomic_path(path) as temp, open(temp, mode) as file:
        yield file


def make_dir(path, what="folder"):
    """Create a folder (and its parents) or raise DataError saying why it cannot be."""
    try:
        os.makedirs(path, exist_ok=True)
    except (OSError, ValueError) as err:
        reason = "a file is in the way" if isinstance(err, FileExistsError) else getattr(err, "strerror", None) or err
        raise DataError(f"cannot create {what} {printable(path)}: {reason}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise DataError(f"cannot write to {what} {printable(path)}: permission denied")


def check_readable_file(path, what="data file"):
    """Raise DataError unless `path` is a regular file this process can read (no FIFOs, devices or folders)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise DataError(f"{what} {printable(path)} not found") from None
    except (OSError, ValueError) as err:
        raise DataError(f"cannot read {what} {printable(path)}: {getattr(err, 'strerror', None) or err}") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise DataError(f"{what} {printable(path)} is {kind}")
    if not os.access(path, os.R_OK):
        raise DataError(f"cannot read {what} {printable(path)}: permission denied")
    return info


@contextlib.contextmanager
def atomic_path(path):
    """A temporary path beside `path`, same suffix, for a library that writes by file name (Keras's model.save).

    On success the file is flushed to disk, given the permissions a plain
    `open()` would give (0666 less the umask) and renamed onto `path`; on
    error it is removed and `path` is left as it was.
    """
    directory = os.path.dirname(os.fspath(path)) or "."
    name = os.path.basename(path)
    try:
        handle, temp = tempfile.mkstemp(dir=directory, prefix="." + name + ".", suffix=".tmp" + os.path.splitext(name)[1])
        os.close(handle)
    except OSError as err:
        raise DataError(f"cannot write {printable(path)}: {err.strerror or err}") from None
    try:
        yield temp
        handle = os.open(temp, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)
        os.chmod(temp, 0o666 & ~_umask())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def write_json(path, data):
    """Write data as indented JSON, atomically."""
    with atomic_write(path, "w") as file:
        json.dump(data, file, indent=2)
        file.write("\n")


def read_json(path, what):
    """A JSON file this project wrote → its value, or DataError naming the file."""
    check_readable_file(path, what)
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except (OSError, ValueError, RecursionError) as err:
        raise DataError(f"{what} {printable(path)} is damaged ({str(err)[:120]})") from None

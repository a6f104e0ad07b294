"""Files the pipeline writes and reads: atomic writes with ordinary permissions, checked input paths, JSON.

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
        raise DataError(f"cannot create {what} {path}: {reason}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise DataError(f"cannot write to {what} {path}: permission denied")


def check_readable_file(path, what="data file"):
    """Raise DataError unless `path` is a regular file this process can read (no FIFOs, devices or folders)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise DataError(f"{path} not found") from None
    except (OSError, ValueError) as err:
        raise DataError(f"cannot read {what} {path}: {getattr(err, 'strerror', None) or err}") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise DataError(f"{what} {path} is {kind}")
    if not os.access(path, os.R_OK):
        raise DataError(f"cannot read {what} {path}: permission denied")
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
        raise DataError(f"cannot write {path}: {err.strerror or err}") from None
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
        raise DataError(f"{what} {path} is damaged ({str(err)[:120]})") from None

"""TensorFlow's C++ start-up notices kept out of stderr: what file descriptor 2 receives is held back, then written
out less those lines.

    with native_notices_held_back():
        import keras          # TensorFlow loads: its "Could not find cuda drivers" lines are dropped

Python's warnings and any real error written meanwhile still show, after the block.
"""
import contextlib
import os
import re
import sys
import tempfile

# the lines TensorFlow's C++ libraries write as they load (see native_notices_held_back)
NATIVE_NOTICES = re.compile(rb"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
                            rb"|[IW]\d{4} \d\d:\d\d:[\d.]+ +\d+ [\w.]+:\d+\] ")


@contextlib.contextmanager
def native_notices_held_back(notices=NATIVE_NOTICES):
    """While active, what is written to file descriptor 2 is held back; then it is written out less the lines
    `notices` matches, so Python's warnings and any error still show.

    TensorFlow's libtensorflow_framework.so.2 and its profiler plugin each carry their own copy of absl and of
    the CUDA stub; each logs "Could not find cuda drivers" (after absl's "before InitializeLog" preamble) while
    it loads, before TF_CPP_MIN_LOG_LEVEL is applied and with no environment variable that stops it."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to keep clean
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = b"".join(line for line in held if not notices.match(line))
            with open(2, "wb", closefd=False) as stderr:
                stderr.write(kept)

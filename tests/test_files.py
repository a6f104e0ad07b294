"""files.py: paths shown without losing or passing on what they hold."""
import os
import re

import pytest

from files import DataError, check_readable_file, printable


@pytest.mark.parametrize("name, shown", [
    ("data/musicnet.npz", "data/musicnet.npz"),
    ("Dvořák/Quartet 12.mid", "Dvořák/Quartet 12.mid"),
    (b"bad\xff.mid", "bad\\xff.mid"),
    (os.fsdecode(b"bad\xff.mid"), "bad\\xff.mid"),
    ("esc\x1b[31mred.mid", "esc\\x1b[31mred.mid"),
    ("back\\slash", "back\\\\slash"),
    ("two\nlines\tand\ra return", "two\\nlines\\tand\\ra return"),
    ("del\x7f next-line\x85 separator\u2028 tag\U000e0001", "del\\x7f next-line\\u0085 separator\\u2028 tag\\U000e0001"),
], ids=["plain", "non-ascii", "bytes", "surrogate", "esc", "backslash", "whitespace", "unprintable"])
def test_printable_escapes_bytes_and_control_characters(name, shown):
    assert printable(name) == shown
    assert shown.isprintable()


def unescaped(shown):
    """printable's output → the file name's bytes again."""
    def one(escape):
        if escape == "\\\\" or escape[1] in "nrt":
            return {"\\": b"\\", "n": b"\n", "r": b"\r", "t": b"\t"}[escape[1]]
        if escape[1] == "x":
            return bytes([int(escape[2:], 16)])
        return chr(int(escape[2:], 16)).encode("utf-8")
    pieces = re.split(r"(\\\\|\\[nrt]|\\x[0-9a-f]{2}|\\u[0-9a-f]{4}|\\U[0-9a-f]{8})", shown)
    return b"".join(one(piece) if index % 2 else piece.encode("utf-8") for index, piece in enumerate(pieces))


@pytest.mark.parametrize("raw", [b"plain", b"a\\x1b", b"\x1b", b"a\xffb\xc3", b"\\\\x85\xc2\x85", b"tab\there"])
def test_printable_loses_nothing(raw):
    assert unescaped(printable(raw)) == raw


def test_missing_file_is_named_escaped(tmp_path):
    with pytest.raises(DataError, match=r"nothing\\x1b\[2J\\xff\.npz not found$"):
        check_readable_file(os.path.join(os.fsdecode(tmp_path), os.fsdecode(b"nothing\x1b[2J\xff.npz")))

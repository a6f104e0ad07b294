"""Loads one pickled MusicNet archive member as plain data, building nothing a MusicNet archive does not need.

    audio, labels = load_entry(stream, max_bytes)   # labels: list of Interval(begin, end, data) tuples
    _, labels = load_entry(stream, max_bytes, skip_from=1 << 16)   # the audio's bytes passed over unread

Security-critical and meant to be read in one sitting. The rules:
- Python's pure unpickler runs it, with the opcodes that build objects from
  classes (INST, OBJ, NEWOBJ), persistent ids and extension codes removed.
  For speed its loop runs the dozen opcodes labels are made of inline, each
  as Python's handler does, over a window of bytes read from the stream.
- Byte strings of `skip_from` bytes or more (the audio) may be passed over
  unread: they become `SkippedBytes`, which only array data accepts, and the
  array a `SkippedArray` (shape and dtype). Every size is checked first.
- `find_class` never hands out a real class or function. Every global a
  MusicNet pickle may name (numpy's array and dtype reconstruction, numpy
  scalars, intervaltree's `IntervalTree` and `Interval`, `set`, `bytes`,
  `_codecs.encode`) maps to a stand-in below that checks its arguments and
  builds only numbers, strings, bytes, lists, tuples and our own inert
  `PendingArray` / `PendingDtype` records. Anything else is refused.
- BUILD (`__setstate__`) reaches only those records, and they accept only
  the exact states numpy writes for a plain numeric or object dtype (no
  fields, no sub-arrays, no forged flags) and for an array whose data is
  exactly as long as its shape says. Numeric data is viewed, not copied,
  so an array is never larger than the bytes it came from.
- Object arrays are 1-D lists; intervaltree objects become plain tuples.
- `check_entry` then walks the result against the one shape a member may
  have, an (audio, labels) pair, to a fixed depth, and turns every record
  into a real numpy array. Error messages name types, never repr() data.
"""
import io
import itertools
import math
import pickle
import struct
from typing import Any, NamedTuple

import numpy as np

# dtype strings a MusicNet member may use, as numpy pickles them ('O8' is the object dtype)
_NUMERIC_DTYPES = {f"{kind}{size}" for kind, sizes in (("b", "1"), ("i", "1248"), ("u", "1248"), ("f", "248"))
                   for size in sizes} | {"c8", "c16"}
_OBJECT_DTYPES = {"O8", "O4", "O"}
_BYTE_ORDERS = {"<", ">", "|", "="}
_NUMPY_FLAGS = {"numeric": {0}, "object": {63}}  # the flags numpy writes for these dtypes, nothing else
_MAX_NDIM = 8


class UnsafePickle(pickle.UnpicklingError):
    """The member names or builds something a MusicNet archive never holds."""


class Interval(NamedTuple):
    """One label as plain data: begin and end in samples, data the label's field tuple. The stand-in for
    intervaltree's Interval: a tuple class that holds what it is given and nothing else."""
    begin: Any
    end: Any
    data: Any = None


def _text(value, what):
    """A str, or bytes decoded as latin-1 (Python 2 pickles loaded with encoding='bytes')."""
    if isinstance(value, bytes):
        return value.decode("latin1")
    if isinstance(value, str):
        return value
    raise UnsafePickle(f"{what} must be text, not {type(value).__name__}")


class PendingDtype:
    """Stand-in for numpy.dtype(spec, align, copy) and its BUILD; `.dtype` is the real, checked dtype."""

    def __init__(self, spec, align=False, copy=True):
        spec = _text(spec, "dtype")
        flags_ok = type(align) in (bool, int) and not align and type(copy) in (bool, int) and copy
        if spec not in _NUMERIC_DTYPES | _OBJECT_DTYPES or not flags_ok:
            raise UnsafePickle(f"dtype {spec[:20]!r} is not a plain numeric or object dtype")
        self.kind = "object" if spec in _OBJECT_DTYPES else "numeric"
        self.dtype = np.dtype("O" if self.kind == "object" else spec)
        self.built = False

    def __setstate__(self, state):
        if self.built or not isinstance(state, tuple) or len(state) != 8:
            raise UnsafePickle("dtype state is not the one numpy writes")
        version, order, subarray, names, fields, elsize, alignment, flags = state
        order = _text(order, "byte order")
        if (version != 3 or order not in _BYTE_ORDERS or subarray is not None or names is not None
                or fields is not None or elsize != -1 or alignment != -1
                or type(flags) is not int or flags not in _NUMPY_FLAGS[self.kind]):
            raise UnsafePickle("dtype state has fields, sub-arrays or flags a plain dtype never has")
        if self.kind == "numeric" and order in "<>":
            self.dtype = self.dtype.newbyteorder(order)
        self.built = True


def _checked_shape(shape):
    """A tuple of non-negative ints → (shape, number of elements)."""
    if not isinstance(shape, tuple) or len(shape) > _MAX_NDIM or not all(type(n) is int and n >= 0 for n in shape):
        raise UnsafePickle("array shape is not a short tuple of non-negative ints")
    return shape, math.prod(shape)


class SkippedBytes:
    """Stand-in for a byte string the unpickler skipped unread (audio): only its length, usable only as array data."""

    def __init__(self, size):
        self.size = size


class SkippedArray(NamedTuple):
    """A numeric array whose data the unpickler skipped unread (audio): its shape and dtype only."""
    shape: tuple
    dtype: np.dtype


def _numeric_array(data, dtype, shape, order):
    """Bytes of exactly prod(shape) elements → a read-only array viewing them (never larger than the data);
    SkippedBytes of that length → SkippedArray."""
    shape, count = _checked_shape(shape)
    if not isinstance(dtype, PendingDtype) or dtype.kind != "numeric":
        raise UnsafePickle("numeric array data needs a numeric dtype")
    size = data.size if type(data) is SkippedBytes else len(data) if isinstance(data, (bytes, bytearray)) else None
    if size != count * dtype.dtype.itemsize:
        raise UnsafePickle("array data is not exactly as long as its shape and dtype say")
    if type(data) is SkippedBytes:
        return SkippedArray(shape, dtype.dtype)
    return np.frombuffer(data, dtype.dtype).reshape(shape, order=order)


class PendingArray:
    """Stand-in for numpy's _reconstruct(ndarray, (0,), b'b') and the BUILD that fills it; `.array` once built."""

    def __init__(self):
        self.array = None

    def __setstate__(self, state):
        if self.array is not None or not isinstance(state, tuple) or len(state) not in (4, 5):
            raise UnsafePickle("array state is not the one numpy writes")
        if len(state) == 5:
            if state[0] != 1:
                raise UnsafePickle("array state has an unknown version")
            state = state[1:]
        shape, dtype, fortran, data = state
        if type(fortran) is not bool or not isinstance(dtype, PendingDtype):
            raise UnsafePickle("array state has no plain dtype")
        if dtype.kind == "numeric":
            self.array = _numeric_array(data, dtype, shape, "F" if fortran else "C")
            return
        shape, count = _checked_shape(shape)
        if len(shape) != 1 or type(data) is not list or len(data) != count:
            raise UnsafePickle("object arrays must be 1-D lists of their items")
        self.array = np.empty(count, dtype=object)
        for index, item in enumerate(data):  # one by one: numpy must not look inside the items
            self.array[index] = item


class _ArrayClass:
    """Marker handed out for numpy.ndarray: usable only as _reconstruct's first argument."""


def _reconstruct(cls, shape, typecode):
    if cls is not _ArrayClass or shape != (0,) or typecode not in (b"b", "b"):
        raise UnsafePickle("_reconstruct called with arguments numpy never writes")
    return PendingArray()


def _frombuffer(data, dtype, shape, order):
    """Protocol 5's array form: numpy._core.numeric._frombuffer(buffer, dtype, shape, order)."""
    if order not in ("C", "F"):
        raise UnsafePickle("array order must be 'C' or 'F'")
    record = PendingArray()
    record.array = _numeric_array(data, dtype, shape, order)
    return record


def _scalar(dtype, data=None):
    """numpy scalar from its dtype and raw bytes → a Python number."""
    if not isinstance(dtype, PendingDtype) or dtype.kind != "numeric":
        raise UnsafePickle("numpy scalars must have a numeric dtype")
    data = data.encode("latin1") if isinstance(data, str) else data
    if not isinstance(data, (bytes, bytearray)):
        raise UnsafePickle("numpy scalars must be built from bytes")
    return _numeric_array(data, dtype, (), "C").item()


def _encode(text, encoding="utf-8"):
    """_codecs.encode(text, 'latin1'): how protocols 0-2 spell bytes."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickle("_codecs.encode is allowed only to turn text into latin-1 bytes")
    return text.encode("latin1")


def _bytes(value=b""):
    """builtins.bytes(), bytes(b'...') only: never bytes(n), which would allocate n bytes."""
    if not isinstance(value, (bytes, bytearray)):
        raise UnsafePickle("bytes() may only copy bytes")
    return bytes(value)


def _set(items=()):
    """builtins.set / frozenset of a pickled list → a list."""
    if type(items) not in (list, tuple):
        raise UnsafePickle("set() may only be built from a list")
    return list(items)


def _interval_tree(intervals=()):
    """intervaltree.IntervalTree(list of intervals) → list of Interval."""
    if type(intervals) not in (list, tuple) or not all(type(item) is Interval for item in intervals):
        raise UnsafePickle("IntervalTree must be built from a list of Interval")
    return list(intervals)


def _reconstructor(cls, base, state):
    """copyreg._reconstructor: only Interval from a full (begin, end, data) tuple."""
    if cls is not Interval or base is not tuple or type(state) is not tuple or len(state) != 3:
        raise UnsafePickle("copyreg._reconstructor may only rebuild an Interval from (begin, end, data)")
    return Interval(*state)


_STAND_INS = {
    ("numpy", "ndarray"): _ArrayClass,
    ("numpy", "dtype"): PendingDtype,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("intervaltree.intervaltree", "IntervalTree"): _interval_tree,
    ("intervaltree.interval", "Interval"): Interval,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("_codecs", "encode"): _encode,
    ("builtins", "bytes"): _bytes,
    ("builtins", "set"): _set,
    ("builtins", "frozenset"): _set,
    ("builtins", "tuple"): tuple,  # tuple() of a pickled list: no way to grow beyond it
}
_RENAMED_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg", "numpy.core.multiarray": "numpy._core.multiarray",
                    "numpy.core.numeric": "numpy._core.numeric", "intervaltree": "intervaltree.intervaltree"}
_TOP_LEVEL_NAMES = {("intervaltree.intervaltree", "Interval"): ("intervaltree.interval", "Interval")}


_REFUSED_OPCODES = {pickle.INST, pickle.OBJ, pickle.NEWOBJ, pickle.NEWOBJ_EX, pickle.PERSID, pickle.BINPERSID,
                    pickle.EXT1, pickle.EXT2, pickle.EXT4, pickle.NEXT_BUFFER, pickle.READONLY_BUFFER}
_WINDOW = 1 << 16  # bytes read from the file at a time
_INLINE_BYTES = 9  # the most bytes an opcode run inline in SafeUnpickler.load takes (BINFLOAT)
_TUPLE_NEW = tuple.__new__
_INT32, _UINT32, _FLOAT64 = (struct.Struct(fmt).unpack_from for fmt in ("<i", "<I", ">d"))
(_MEMOIZE, _BINPUT, _LONG_BINPUT, _BINGET, _LONG_BINGET, _MARK, _TUPLE, _TUPLE3, _REDUCE, _BININT1, _BININT2, _BININT,
 _BINFLOAT) = (code[0] for code in (pickle.MEMOIZE, pickle.BINPUT, pickle.LONG_BINPUT, pickle.BINGET, pickle.LONG_BINGET,
                                    pickle.MARK, pickle.TUPLE, pickle.TUPLE3, pickle.REDUCE, pickle.BININT1,
                                    pickle.BININT2, pickle.BININT, pickle.BINFLOAT))


class SafeUnpickler(pickle._Unpickler):
    """Python's own unpickler (its memo is a dict: a forged memo index cannot allocate gigabytes, as it can
    in the C one) with only the opcodes plain data needs, BUILD limited to our records, and the stand-ins
    above as its only globals. `max_bytes`: no single object may claim more bytes than this.
    `skip_from`: byte strings this long or longer are skipped unread and become SkippedBytes (None: read all).

    It reads the file through a window of bytes of its own; `load` runs the dozen opcodes labels are made
    of inline, exactly as Python's handlers do, and hands every other opcode to Python's handler."""

    dispatch = {key: load for key, load in pickle._Unpickler.dispatch.items() if bytes([key]) not in _REFUSED_OPCODES}

    def __init__(self, file, max_bytes, skip_from=None):
        super().__init__(io.BytesIO(), encoding="bytes")  # Python's own file hooks stay unused: the window replaces them
        self.max_bytes, self.skip_from = max_bytes, skip_from
        self.file_read, self.window, self.pos = file.read, b"", 0

    # ---- reading: the window over the file, and skipping

    def _fill(self, size):
        """Make the window hold `size` bytes from pos on, or all that is left of the file."""
        if len(self.window) - self.pos >= size:
            return
        parts, have = [self.window[self.pos:]], len(self.window) - self.pos
        while have < size:
            part = self.file_read(max(_WINDOW, size - have))
            if not part:
                break
            parts.append(part)
            have += len(part)
        self.window, self.pos = b"".join(parts), 0

    def read(self, size):
        self._fill(size)
        data = self.window[self.pos:self.pos + size]
        self.pos += len(data)
        return data

    def readline(self):
        wanted = _WINDOW
        while (end := self.window.find(b"\n", self.pos)) < 0:
            have = len(self.window) - self.pos
            self._fill(have + wanted)
            wanted *= 2  # a long line costs linear time, not quadratic
            if len(self.window) - self.pos == have:  # the file ends without a newline
                end = len(self.window) - 1
                break
        line = self.window[self.pos:end + 1]
        self.pos = end + 1
        return line

    def _checked_size(self, size):
        if size > self.max_bytes:
            raise UnsafePickle(f"an object claims {size} bytes, more than the member holds")
        return size

    def _payload(self, size):
        """The next `size` bytes of a byte string: read, or passed over unread (SkippedBytes) from skip_from up."""
        self._checked_size(size)
        if self.skip_from is None or size < self.skip_from:
            data = self.read(size)
            if len(data) != size:
                raise UnsafePickle("a byte string is cut short")
            return data
        left = size - (len(self.window) - self.pos)
        self.pos = min(self.pos + size, len(self.window))
        while left > 0:  # the rest from the file, in pieces, none kept
            part = len(self.file_read(min(left, 1 << 20)))
            if not part:
                raise UnsafePickle("a byte string is cut short")
            left -= part
        return SkippedBytes(size)

    # ---- the opcodes that differ from Python's

    def load_binbytes(self):
        self.append(self._payload(_UINT32(self.read(4))[0]))
    dispatch[pickle.BINBYTES[0]] = load_binbytes

    def load_binbytes8(self):
        self.append(self._payload(struct.unpack("<Q", self.read(8))[0]))
    dispatch[pickle.BINBYTES8[0]] = load_binbytes8

    def load_binstring(self):  # Python 2's str: bytes, under encoding='bytes'
        size = _INT32(self.read(4))[0]
        if size < 0:
            raise UnsafePickle("a byte string has a negative length")
        self.append(self._payload(size))
    dispatch[pickle.BINSTRING[0]] = load_binstring

    def load_bytearray8(self):  # Python's version zero-fills the claimed size before reading: check it first
        data = self._payload(struct.unpack("<Q", self.read(8))[0])
        self.append(data if type(data) is SkippedBytes else bytearray(data))
    dispatch[pickle.BYTEARRAY8[0]] = load_bytearray8

    def load_frame(self):  # a frame is only a hint for buffering: its bytes are read as they come
        self._checked_size(struct.unpack("<Q", self.read(8))[0])
    dispatch[pickle.FRAME[0]] = load_frame

    def find_class(self, module, name):
        module = _RENAMED_MODULES.get(module, module)
        key = _TOP_LEVEL_NAMES.get((module, name), (module, name))
        if key not in _STAND_INS:
            raise UnsafePickle(f"refused to load {module[:60]}.{name[:60]}")
        return _STAND_INS[key]

    def load_build(self):
        state = self.stack.pop()
        if type(self.stack[-1]) not in (PendingArray, PendingDtype):
            raise UnsafePickle(f"refused to set the state of {type(self.stack[-1]).__name__}")
        self.stack[-1].__setstate__(state)
    dispatch[pickle.BUILD[0]] = load_build

    def load(self):
        """The unpickled object. Python's own loop, with the opcodes labels are made of run inline over the window
        (each line does what Python's handler for it does); any other opcode goes to its handler in `dispatch`."""
        self.stack, self.metastack, self.proto = [], [], 0
        memo, metastack, dispatch = self.memo, self.metastack, self.dispatch
        try:
            while True:
                window, pos, stack = self.window, self.pos, self.stack
                last = len(window) - _INLINE_BYTES  # inline opcodes never read past the window
                while pos <= last:
                    op = window[pos]
                    if op == _MEMOIZE:
                        memo[len(memo)] = stack[-1]
                        pos += 1
                    elif op == _BININT1:
                        stack.append(window[pos + 1])
                        pos += 2
                    elif op == _BINGET:
                        stack.append(memo[window[pos + 1]])
                        pos += 2
                    elif op == _BININT:
                        stack.append(_INT32(window, pos + 1)[0])
                        pos += 5
                    elif op == _MARK:
                        metastack.append(stack)
                        stack = []
                        pos += 1
                    elif op == _TUPLE:
                        items, stack = stack, metastack.pop()
                        stack.append(tuple(items))
                        pos += 1
                    elif op == _TUPLE3:
                        third, second = stack.pop(), stack.pop()
                        stack[-1] = (stack[-1], second, third)
                        pos += 1
                    elif op == _REDUCE:
                        args = stack.pop()
                        if stack[-1] is Interval and type(args) is tuple and len(args) == 3:
                            stack[-1] = _TUPLE_NEW(Interval, args)  # what Interval(*args) does, without Python frames
                        else:
                            stack[-1] = stack[-1](*args)
                        pos += 1
                    elif op == _BINFLOAT:
                        stack.append(_FLOAT64(window, pos + 1)[0])
                        pos += 9
                    elif op == _BINPUT:
                        memo[window[pos + 1]] = stack[-1]
                        pos += 2
                    elif op == _LONG_BINPUT:
                        memo[_UINT32(window, pos + 1)[0]] = stack[-1]
                        pos += 5
                    elif op == _LONG_BINGET:
                        stack.append(memo[_UINT32(window, pos + 1)[0]])
                        pos += 5
                    elif op == _BININT2:
                        stack.append(window[pos + 1] | window[pos + 2] << 8)
                        pos += 3
                    else:
                        break
                self.pos, self.stack, self.append = pos, stack, stack.append
                key = self.read(1)
                if not key:
                    raise EOFError
                if key[0] not in dispatch:
                    raise UnsafePickle(f"uses pickle opcode {key!r} that plain data never needs")
                dispatch[key[0]](self)
        except pickle._Stop as stop:
            return stop.value


def _array(record, what):
    """A PendingArray that BUILD completed → its numpy array."""
    if type(record) is not PendingArray or record.array is None:
        raise UnsafePickle(f"{what} is {type(record).__name__}, not a numpy array")
    return record.array


_FIELD_TYPES = (int, float, str, bytes, type(None))  # what a label field may be; its value is checked by the reader


def _first_bad_label(labels):
    """Raise UnsafePickle naming the first label that is not an Interval of plain numbers and names."""
    for number, interval in enumerate(labels):
        if type(interval) is not Interval:
            raise UnsafePickle(f"label {number} is {type(interval).__name__}, not an Interval")
        if type(interval.begin) not in (int, float) or type(interval.end) not in (int, float):
            raise UnsafePickle(f"label {number} has a begin or end that is not a number")
        if type(interval.data) not in (tuple, list) or not all(type(field) in _FIELD_TYPES for field in interval.data):
            raise UnsafePickle(f"label {number} data is not a tuple of numbers and names")


def check_entry(entry):
    """The unpickled member → (audio array or SkippedArray, list of Interval whose fields are plain scalars);
    else UnsafePickle."""
    pair = _array(entry, "the member")
    if type(pair) is not np.ndarray or pair.dtype != object or pair.shape != (2,):
        raise UnsafePickle("the member is not an (audio, labels) pair")
    audio, labels = _array(pair[0], "audio"), pair[1]
    if type(labels) is not list:
        raise UnsafePickle(f"labels are {type(labels).__name__}, not an IntervalTree")
    if set(map(type, labels)) - {Interval}:  # the checks of _first_bad_label, a column at a time
        _first_bad_label(labels)
    begins, ends, data = zip(*labels) if labels else ((), (), ())
    if (set(map(type, begins)) | set(map(type, ends))) - {int, float} or set(map(type, data)) - {tuple, list} \
            or set(map(type, itertools.chain.from_iterable(data))) - set(_FIELD_TYPES):
        _first_bad_label(labels)
    return audio, labels


def load_entry(stream, max_bytes, skip_from=None):
    """A binary stream positioned at a pickle of at most max_bytes → (audio array, list of Interval); else UnsafePickle.
    Byte strings of skip_from bytes or more (the audio) are skipped unread: the audio is then a SkippedArray."""
    try:
        entry = SafeUnpickler(stream, max_bytes, skip_from).load()
    except UnsafePickle:
        raise
    except RecursionError:
        raise UnsafePickle("the pickle nests too deeply") from None
    except Exception as err:  # truncated data, bad opcodes, wrong argument counts to a stand-in
        raise UnsafePickle(f"not a readable pickle ({type(err).__name__}: {str(err)[:120]})") from None
    return check_entry(entry)

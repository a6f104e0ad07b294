"""data_path → cached songs (rolls.Song: roll, onsets, meter) → train / valid / test split: filters, the reader
process pool, the roll cache file.

    source = sources.open_source(resolve_data_path(settings["data_path"]))
    parts, split, program = load_songs(source, settings)   # parts: {'train', 'valid', 'test'}: lists of rolls.Song

The cache is a plain (pickle-free) npz named by a hash of the source's files
and the settings that made its songs; every array is checked before it is used.
"""
import hashlib
import json
import multiprocessing
import os
import signal
import zipfile

import numpy as np
from tqdm import tqdm

import rolls
import sources
from files import DataError, atomic_write, check_readable_file, make_dir, printable
from rolls import BadRecording

DEFAULT_DATA_PATH = "data/musicnet.npz"
SAMPLE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "sample.npz")
STANDARD_TEST_IDS = ["1759", "1819", "2106", "2191", "2298", "2303", "2382", "2416", "2556", "2628"]
VALID_FRACTION = 0.1             # share of non-test songs held out for validation
HELD_OUT_STRETCH = 0.1           # too few songs to split: share of each song's frames held out for test, as much for validation
SPLIT_SEED = 20170101            # fixed, so the split does not move with `seed`


# ------------------------------------------------------------------ data path and split

def expected_source(path):
    """What a data_path that is not there was taken for, from its name → e.g. 'MIDI file', 'folder'."""
    if path.lower().endswith(sources.MIDI_SUFFIXES):
        return "MIDI file"
    if path.lower().endswith(".npz"):
        return "MusicNet npz archive"
    return "data file" if os.path.splitext(path.rstrip(os.sep))[1] else "folder"


def resolve_data_path(path):
    """The data to read: the given path, or the embedded sample when the default is absent; a file must be readable."""
    if not os.path.lexists(path):
        if path != DEFAULT_DATA_PATH:
            raise DataError(f"{expected_source(path)} {printable(path)} not found; pass --data_path=... (a MIDI file "
                            "or folder, a MusicNet npz archive or CSV release folder)")
        if not os.path.exists(SAMPLE_PATH):
            raise DataError(f"{DEFAULT_DATA_PATH} not found, nor the embedded sample {printable(os.path.relpath(SAMPLE_PATH))} "
                            "— download MusicNet (see data/README.md) or pass --data_path=...")
        print(f"{DEFAULT_DATA_PATH} not found: using the embedded sample {printable(os.path.relpath(SAMPLE_PATH))} "
              "(see data/README.md to get the real MusicNet)")
        path = SAMPLE_PATH
    if not os.path.isdir(path):  # what a folder holds is the reader's to judge
        check_readable_file(path, "data file")  # a FIFO or device is refused before anything opens it
    return path


MAX_SPLIT_MB = 10  # a split file lists ids: MusicNet's is a few kB


def read_split(split_path):
    """Split file → {'train', 'valid', 'test'}: lists of str ids, checked: three lists of ids, no id twice."""
    info = check_readable_file(split_path, "split file")
    if info.st_size > MAX_SPLIT_MB * 1e6:
        raise DataError(f"split file {printable(split_path)} is {info.st_size / 1e6:.0f} MB; a split file lists ids "
                        f"(at most {MAX_SPLIT_MB} MB)")
    shape = '{"train": [ids], "valid": [ids], "test": [ids]}'
    try:
        with open(split_path, encoding="utf-8") as file:
            parts = json.load(file)
    except (OSError, ValueError, RecursionError) as err:
        raise DataError(f"split file {printable(split_path)} is not JSON like {shape} ({str(err)[:120]})") from None
    if not isinstance(parts, dict) or not all(isinstance(parts.get(part), list) for part in ("train", "valid", "test")):
        raise DataError(f"split file {printable(split_path)} is not {shape}")
    split = {}
    for part in ("train", "valid", "test"):
        bad = [song_id for song_id in parts[part] if type(song_id) not in (str, int)]
        if bad:
            raise DataError(f"split file {printable(split_path)}: {part} holds {str(bad[0])[:40]!r}, not a recording id")
        split[part] = [str(song_id) for song_id in parts[part]]
    seen = {}
    for part, part_ids in split.items():
        for song_id in part_ids:
            seen.setdefault(song_id, []).append(part)
    repeated = {song_id: places for song_id, places in seen.items() if len(places) > 1}
    if repeated:
        listed = ", ".join(f"{song_id} ({' and '.join(places)})" for song_id, places in list(repeated.items())[:10])
        raise DataError(f"split file {printable(split_path)} names {len(repeated)} recording(s) more than once: {listed}")
    return split


def split_ids(ids, split_path="", unusable=(), test_ids=None, aliases=None):
    """Recording ids → {'train', 'valid', 'test'} id lists: a split file; else the source's own test set
    (test_ids: a CSV release's test_labels/) or MusicNet's standard one, and a fixed 10% of the rest
    for validation; else a deterministic 10% / 10% split.

    Ids of a split file that are in `unusable` (recordings skipped as unusable)
    are dropped with a note; ids the data lacks altogether are an error.
    aliases: other names the split file may use for an id (a MIDI file's relative path).
    """
    if split_path:
        split = read_split(split_path)
        split = {part: [(aliases or {}).get(song_id, song_id) for song_id in part_ids] for part, part_ids in split.items()}
        named, unusable = sum(split.values(), []), set(unusable)
        known = set(ids) | unusable
        missing = [song_id for song_id in named if song_id not in known]
        if missing:
            raise DataError(f"{printable(split_path)} names recordings the archive lacks: {', '.join(map(printable, missing[:10]))}")
        dropped = [song_id for song_id in named if song_id in unusable]
        if dropped:
            print(f"note: {printable(split_path)} names {len(dropped)} recording(s) skipped as unusable; left out of the "
                  f"split: {', '.join(map(printable, dropped[:10]))}")
        return {part: [song_id for song_id in part_ids if song_id not in unusable]
                for part, part_ids in split.items()}
    rng = np.random.default_rng(SPLIT_SEED)
    held_out = set(STANDARD_TEST_IDS if test_ids is None else test_ids)
    test = [song_id for song_id in ids if song_id in held_out]
    rest = [song_id for song_id in ids if song_id not in test]
    if not test:  # not MusicNet: hold out a deterministic share as test
        shuffled = list(rng.permutation(rest))
        count = max(1, round(VALID_FRACTION * len(rest))) if len(rest) > 2 else 0
        test, rest = sorted(shuffled[:count]), sorted(shuffled[count:])
    shuffled = list(rng.permutation(rest))
    count = max(1, round(VALID_FRACTION * len(rest))) if len(rest) > 1 else 0
    return {"train": sorted(shuffled[count:]), "valid": sorted(shuffled[:count]), "test": sorted(test)}


def held_out_stretches(ids, by_id):
    """Too few songs to split: each song's (by_id: {id: Song}) last HELD_OUT_STRETCH of frames for test, as much
    before them for validation, the rest for training; a song is left out unless two frames of each stretch sound
    → ({'train', 'valid', 'test'}: lists of Songs, split: train ids, valid / test stretches as 'id (frames a-b)')."""
    parts = {part: [] for part in ("train", "valid", "test")}
    split = {part: [] for part in parts}
    for song_id in ids:
        song = by_id[song_id]
        held = max(2, round(HELD_OUT_STRETCH * len(song)))
        edges = (0, max(0, len(song) - 2 * held), max(0, len(song) - held), len(song))
        stretches = dict(zip(parts, zip(edges, edges[1:])))
        if all(song.roll[start:end].any(axis=1).sum() > 1 for start, end in stretches.values()):
            for part, (start, end) in stretches.items():
                parts[part].append(song[start:end])
                split[part].append(song_id if part == "train" else f"{song_id} (frames {start}-{end})")
    return parts, split


def most_played_program(programs, lengths):
    """1-based MIDI program that covers the most frames, given each song's program and length."""
    frames = {}
    for program, length in zip(programs, lengths):
        frames[program] = frames.get(program, 0) + length
    return max(frames, key=frames.get)


# ------------------------------------------------------------------ reading and organizing

def note_filters(source, settings):
    """The recordings to read (composers / ensembles from the metadata) and the programs to keep → (ids, programs or None)."""
    ids = sorted(source.recordings)
    for name, column in (("composers", "composer"), ("ensembles", "ensemble")):
        wanted = {value.strip().lower() for value in settings[name].split(",") if value.strip()}
        if not wanted:
            continue
        if source.metadata_path is None:
            raise DataError(f"--{name} needs MusicNet's metadata ({sources.METADATA_FILE}), and "
                            f"{printable(source.path)} has none beside it")
        metadata = sources.read_metadata(source)  # read only when a filter needs it
        known = sorted({row.get(column, "") for row in metadata.values()})
        unknown = sorted(wanted - {value.lower() for value in known})
        if unknown:
            raise DataError(f"--{name}: no recording has {column} {', '.join(map(repr, unknown))}; "
                            f"known: {', '.join(map(printable, known[:30]))}")
        ids = [song_id for song_id in ids if metadata.get(song_id, {}).get(column, "").lower() in wanted]
    programs = None
    if settings["programs"].strip():
        try:
            programs = sorted({int(value) for value in settings["programs"].split(",") if value.strip()})
        except ValueError:
            raise DataError(f"--programs must list MIDI program numbers 1-128, like \"1,41\", not {settings['programs']!r}") from None
        if not all(1 <= program <= 128 for program in programs):
            raise DataError(f"--programs must list MIDI program numbers 1-128, not {settings['programs']!r}")
    return ids, programs


def organize_recording(song_id, notes, problem, programs, settings):
    """One recording's notes (or the reason it has none) → (id, rolls.Song or None, 1-based program, label form,
    problem, labels read)."""
    if problem is not None:
        return song_id, None, 1, None, problem, 0
    form, count = sources.label_form(notes), len(notes)
    if programs is not None:
        notes = notes[np.isin(notes["instrument"], programs)]
    try:
        return song_id, rolls.organize_song(notes, **settings), rolls.main_program(notes), form, None, count
    except BadRecording as err:
        return song_id, None, 1, form, str(err), count


_WORK = {}  # what each reader process needs: the source, programs and settings, set once by its initializer


def _start_reader(source, programs, settings):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle; it ends the pool
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the pool ends its readers with SIGTERM: no traceback
    _WORK.update(source=source, programs=programs, settings=settings)


def _read_and_organize(song_id):
    """In a reader process: one recording → organize_recording's tuple, its Song sent as (roll and onsets packed
    8 keys a byte, an eighth of their bytes; keys; meter)."""
    notes, problem = sources.read_song(_WORK["source"], song_id, _WORK["settings"]["max_member_mb"])
    song_id, song, *rest = organize_recording(song_id, notes, problem, _WORK["programs"], _WORK["settings"])
    if song is None:
        return song_id, None, *rest
    return song_id, (np.packbits(np.stack([song.roll, song.onsets]), axis=2), song.roll.shape[1], song.meter), *rest


def _unpacked(result):
    """_read_and_organize's tuple with its Song whole again."""
    song_id, packed, *rest = result
    if packed is None:
        return song_id, None, *rest
    bits, keys, meter = packed
    roll, onsets = np.unpackbits(bits, axis=2, count=keys).view(bool)
    return song_id, rolls.Song(roll, onsets, meter), *rest


def organized_recordings(source, ids, programs, settings):
    """Yield organize_recording's tuple for each id, in order, read on `workers` processes (each process reads
    one npz member at a time, its audio passed over unread)."""
    count = min(settings["workers"] or os.cpu_count() or 1, max(1, len(ids) // 8))
    if count <= 1:
        yield from (organize_recording(song_id, *sources.read_song(source, song_id, settings["max_member_mb"]), programs,
                                       settings) for song_id in ids)
        return
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    with context.Pool(count, initializer=_start_reader, initargs=(source, programs, settings)) as pool:
        chunk = 1 if source.kind == "npz" else max(1, min(64, len(ids) // (count * 16)))  # members are big: one at a time
        results = pool.imap(_read_and_organize, ids, chunksize=chunk)
        yield from map(_unpacked, results)


def preprocess(source, settings):
    """Read and organize the chosen recordings → {'ids', 'songs' (rolls.Song each), 'programs', 'skipped': [(id, reason)]};
    bad recordings are skipped."""
    ids, programs = note_filters(source, settings)
    songs = {"ids": [], "songs": [], "programs": [], "skipped": []}
    forms, labels = {}, 0
    results = organized_recordings(source, ids, programs, settings)
    for song_id, song, program, form, problem, count in tqdm(results, total=len(ids), desc="preprocessing", unit="song"):
        forms[form] = forms.get(form, 0) + 1
        labels += count
        if problem is not None:
            tqdm.write(f"warning: skipped recording '{printable(song_id)}': {problem}")
            songs["skipped"].append((song_id, problem))
            continue
        songs["ids"].append(song_id)
        songs["songs"].append(song)
        songs["programs"].append(program)
    forms.pop(None, None)
    print(f"read {labels} labels; label timing: "
          + ", ".join(f"{count} recordings with {form}" for form, count in sorted(forms.items())))
    return songs


# ------------------------------------------------------------------ the roll cache file

ROLL_FORMAT = 6  # bump whenever organize_song changes what it makes, so old caches are not reused
ROLL_SETTINGS = ("lowest_note", "highest_note", "time_base", "steps_per_second", "steps_per_beat")
# What each cache array must be: (dtype kinds, dimensions, exact dtype or None). Checked from the .npy header before
# it is read. packed / onsets: every song's roll / onsets, frames one after another, 8 keys a byte; meter: their meter.
CACHE_ARRAYS = {"ids": ("U", 1, None), "lengths": ("iu", 1, None), "num_keys": ("iu", 0, None),
                "packed": ("u", 2, np.uint8), "onsets": ("u", 2, np.uint8), "meter": ("i", 2, np.int16),
                "programs": ("iu", 1, None), "skipped": ("U", 2, None)}


def cache_path(fingerprint, cache_dir, settings):
    """Path of the roll cache for a data source (its fingerprint: files, sizes, mtimes) and these settings."""
    used = {name: settings[name] for name in ROLL_SETTINGS}
    used.pop("steps_per_beat" if settings["time_base"] == "seconds" else "steps_per_second")
    used["max_frames"] = settings.get("max_frames", rolls.MAX_FRAMES)  # it decides which recordings are skipped
    key = json.dumps({"data": fingerprint, "format": ROLL_FORMAT, **used}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return os.path.join(cache_dir, f"rolls-{digest}.npz")


def save_rolls(path, songs):
    """Write preprocess's songs to a pickle-free npz (atomic): rolls and onsets as packed bits, meter, frame counts,
    ids, programs, skipped ids and reasons."""
    lengths = np.array([len(song) for song in songs["songs"]], np.int64)
    joined = {name: np.concatenate([getattr(song, name) for song in songs["songs"]]) if songs["songs"] else empty
              for name, empty in (("roll", np.zeros((0, 0), bool)), ("onsets", np.zeros((0, 0), bool)),
                                  ("meter", np.zeros((0, 4), np.int16)))}
    with atomic_write(path) as file:
        np.savez(file, ids=np.array(songs["ids"], dtype=str), lengths=lengths,
                 num_keys=np.int64(joined["roll"].shape[1]), packed=np.packbits(joined["roll"], axis=1),
                 onsets=np.packbits(joined["onsets"], axis=1), meter=joined["meter"],
                 programs=np.array(songs["programs"], np.int16),
                 skipped=np.array(songs["skipped"], dtype=str).reshape(-1, 2))


class _Damaged(Exception):
    """What is wrong with a roll cache; load_rolls turns it into a DataError naming the file."""


def _read_array(archive, name, file_size):
    """One array of the cache's zip, its member and .npy header checked before the data is read."""
    kinds, ndim, exact = CACHE_ARRAYS[name]
    try:
        info = archive.getinfo(name + ".npy")
    except KeyError:
        raise _Damaged(f"no '{name}' array") from None
    if info.compress_type != zipfile.ZIP_STORED or not info.file_size == info.compress_size <= file_size:
        raise _Damaged(f"'{name}' is not stored the way save_rolls stores it")
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version not in ((1, 0), (2, 0)):
            raise _Damaged(f"'{name}' has .npy format version {version}")
        read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        shape, _, dtype = read_header[version](member)
    if dtype.kind not in kinds or dtype.names is not None or len(shape) != ndim:
        raise _Damaged(f"'{name}' is a {len(shape)}-d {dtype} array")
    if np.prod(shape, dtype=object) * dtype.itemsize > info.file_size:
        raise _Damaged(f"'{name}' claims shape {shape}, more than its {info.file_size} bytes hold")
    if exact is not None and dtype != exact:
        raise _Damaged(f"'{name}' is {dtype}, not {np.dtype(exact)}")
    with archive.open(info) as member:
        return np.lib.format.read_array(member, allow_pickle=False)


def _check_cache(arrays, num_keys):
    """Raise _Damaged unless the cache arrays fit together (and hold rolls of num_keys keys, if given)."""
    ids, lengths, packed, programs = arrays["ids"], arrays["lengths"], arrays["packed"], arrays["programs"]
    keys = int(arrays["num_keys"])
    if len(set(ids.tolist())) != len(ids):
        raise _Damaged("an id appears twice")
    if len(lengths) != len(ids) or len(programs) != len(ids):
        raise _Damaged(f"{len(ids)} ids but {len(lengths)} lengths and {len(programs)} programs")
    if not 0 <= keys <= 128 or (len(ids) and keys == 0):
        raise _Damaged(f"num_keys is {keys}, not 1-128")
    if len(lengths) and (lengths.min() < 0 or lengths.max() > len(packed)):
        raise _Damaged("a roll length that is negative or beyond the stored frames")
    expected = (sum(lengths.tolist()), -(-keys // 8))
    if packed.shape != expected:
        raise _Damaged(f"packed frames have shape {packed.shape}, not {expected}")
    if arrays["onsets"].shape != expected:
        raise _Damaged(f"onsets have shape {arrays['onsets'].shape}, not {expected}")
    _check_meter(arrays["meter"], expected[0])
    if len(programs) and (programs.min() < 1 or programs.max() > 128):
        raise _Damaged("a program outside MIDI programs 1-128")
    if arrays["skipped"].shape[1] != 2:
        raise _Damaged("skipped is not (id, reason) pairs")
    if num_keys is not None and len(ids) and keys != num_keys:
        raise _Damaged(f"rolls of {keys} keys where the settings make {num_keys}")


def _check_meter(meter, frames):
    """Raise _Damaged unless meter is (frames, 4), each row UNKNOWN_METER or a place in a bar: 0 <= frames since the
    bar line < frames in the bar, and a time signature of positive numbers."""
    if meter.shape != (frames, 4):
        raise _Damaged(f"meter has shape {meter.shape}, not {(frames, 4)}")
    since, size, numerator, denominator = meter.T
    placed = (since >= 0) & (since < size) & (numerator > 0) & (denominator > 0)
    good = placed | (meter == rolls.UNKNOWN_METER).all(axis=1)
    if not good.all():
        first = int(np.argmin(good))
        raise _Damaged(f"meter of frame {first} is {meter[first].tolist()}, not a place in a bar nor unknown")


def _read_cache(path, num_keys):
    """The songs dict from a roll cache, every array checked before it is used; _Damaged (or a read error) if not."""
    file_size = check_readable_file(path, "roll cache").st_size
    with zipfile.ZipFile(path) as archive:
        arrays = {name: _read_array(archive, name, file_size) for name in CACHE_ARRAYS}
    _check_cache(arrays, num_keys)
    keys, bounds = int(arrays["num_keys"]), np.cumsum(arrays["lengths"])[:-1]
    roll, onsets = (np.unpackbits(arrays[name], axis=1, count=keys).view(bool) for name in ("packed", "onsets"))
    parts = zip(*(np.split(frames, bounds) for frames in (roll, onsets, arrays["meter"])))
    return {"ids": [str(song_id) for song_id in arrays["ids"]],
            "songs": [rolls.Song(*part) for part in parts] if len(arrays["lengths"]) else [],
            "programs": [int(program) for program in arrays["programs"]],
            "skipped": [(str(song_id), str(why)) for song_id, why in arrays["skipped"]]}


def load_rolls(path, num_keys=None):
    """Read a cache written by save_rolls → the same dict of ids, songs (rolls.Song each), programs, skipped.

    Every array is checked (present, dtype, shape, size against the file's,
    agreement with the others, num_keys if given) before it is used; any
    problem raises DataError.
    """
    try:
        return _read_cache(path, num_keys)
    except _Damaged as err:
        reason = str(err)
    except (OSError, EOFError, ValueError, KeyError, RuntimeError, NotImplementedError, MemoryError,
            zipfile.BadZipFile) as err:
        reason = f"{type(err).__name__}: {str(err)[:120]}"
    raise DataError(f"roll cache {printable(path)} is damaged ({reason}); delete it or run with --save_mode=True")


# ------------------------------------------------------------------ cache policy and the split

def cache_key(source, settings):
    """What the roll cache depends on besides the roll settings: the source's files and the filters."""
    return {**sources.source_fingerprint(source), **{name: settings[name] for name in ("composers", "ensembles", "programs")}}


def load_or_preprocess(source, settings, save=True):
    """Songs for a source (preprocess's dict): 'auto' uses a matching cache or builds one; True rebuilds; False only loads.
    save=False: a cache built is kept in memory only (processes other than 0 write no files)."""
    path = cache_path(cache_key(source, settings), settings["cache_dir"], settings)
    if settings["save_mode"] is False or (settings["save_mode"] == "auto" and os.path.exists(path)):
        if not os.path.exists(path):
            raise DataError(f"no roll cache matches these settings ({printable(path)}); run with --save_mode=True or auto")
        print(f"using roll cache {printable(path)}")
        return load_rolls(path, num_keys=settings["highest_note"] - settings["lowest_note"] + 1)
    if save:
        make_dir(settings["cache_dir"], "cache folder")  # before the work, not after it
    songs = preprocess(source, settings)
    if save:
        save_rolls(path, songs)
        print(f"built roll cache {printable(path)}")
    return songs


def load_songs(source, settings, save=True):
    """Source → ({'train', 'valid', 'test'}: lists of rolls.Song with two sounding frames or more, split ids, training
    program); save: whether a roll cache built may be written."""
    songs = load_or_preprocess(source, settings, save)
    total = len(songs["ids"]) + len(songs["skipped"])
    if songs["skipped"]:
        print(f"skipped {len(songs['skipped'])} of {total} recordings that cannot be used (see the warnings): "
              + ", ".join(printable(song_id) for song_id, _ in songs["skipped"][:10]))
    usable = [i for i, song in enumerate(songs["songs"]) if song.roll.any(axis=1).sum() > 1]  # something to predict
    short = [songs["ids"][i] for i in sorted(set(range(len(songs["ids"]))) - set(usable))]
    if short:
        print(f"skipped {len(short)} of {total} recordings with fewer than two frames that sound (empty, or "
              "too short to learn from): " + ", ".join(map(printable, short[:10])))
    ids = [songs["ids"][i] for i in usable]
    by_id = {songs["ids"][i]: songs["songs"][i] for i in usable}
    split = split_ids(ids, settings["split_path"], unusable=short + [song_id for song_id, _ in songs["skipped"]],
                      test_ids=source.test_ids or None, aliases=source.aliases)
    parts = {part: [by_id[i] for i in split_part] for part, split_part in split.items()}
    if not all(parts.values()) and not settings["split_path"]:
        parts, split = held_out_stretches(ids, by_id)
        percent = round(100 * HELD_OUT_STRETCH)
        print(f"note: {len(ids)} usable recording(s) are too few to split into train, valid and test recordings: "
              f"each is validated on its {percent}% of frames before the last {percent}% and tested on those last ones"
              + (f" ({len(ids) - len(split['train'])} too short for that left out)" if len(split["train"]) < len(ids) else ""))
    if not all(parts.values()):
        raise DataError("need at least one usable song in each of train, valid and test (have "
                        + ", ".join(f"{len(parts[part])} {part}" for part in ("train", "valid", "test"))
                        + f" of {len(ids)} usable recordings)")
    print(f"songs: {len(parts['train'])} train, {len(parts['valid'])} valid, {len(parts['test'])} test; "
          f"{sum(map(len, parts['train']))} training frames")
    programs = dict(zip(songs["ids"], songs["programs"]))
    program = most_played_program([programs[i] for i in split["train"]], [len(by_id[i]) for i in split["train"]])
    return parts, split, program


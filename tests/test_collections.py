"""Bring your own music: one corpus as an npz archive, a CSV release and a MIDI folder; messy collections; primers."""
import json
import os

import numpy as np
import pytest

import classically_deep as cd
import midi_io
import sources
from conftest import musicnet_entry, score_notes, start_beat_tree, timed_messages, write_csv_release

TINY = ["--epochs=6", "--hidden_size=16", "--head_size=8", "--seq_len=16", "--batch_size=4", "--primer_frames=8",
        "--generate_frames=8", "--num_outputs=1", "--max_minutes=2", "--steps_per_beat=2"]


def corpus():
    """Eight little pieces: chords rising by fifths with a moving top voice, two programs, at two tempi."""
    songs = {}
    for number in range(8):
        notes = []
        for step in range(12):
            root = 48 + (number + 7 * step) % 12
            notes += [(root, step, 1.0), (root + 4, step, 1.0), (root + 7, step, 0.5, 41), (root + 12, step + 0.5, 0.5, 41)]
        songs[f"{1000 + number}"] = score_notes(*notes, bpm=120.0 if number % 2 else 100.0)
    return songs


def bpm_of(notes):
    """The steady tempo score_notes wrote these notes at."""
    return round(44100 * 60 / (notes["end"][0] - notes["start"][0]) * notes["beats"][0])


def write_three_ways(folder, songs, test_ids):
    """The same notes as a CSV-built npz, a CSV release and a MIDI folder, plus one split file → paths."""
    np.savez(folder / "corpus.npz", **{song_id: musicnet_entry(start_beat_tree(notes)) for song_id, notes in songs.items()})
    write_csv_release(folder / "release", songs, test_ids=test_ids)
    (folder / "midi" / "pieces").mkdir(parents=True)
    for song_id, notes in songs.items():
        midi_io.notes_to_midi(notes, folder / "midi" / "pieces" / f"{song_id}.mid", bpm=bpm_of(notes))
    ids = sorted(songs)
    split = {"train": [i for i in ids if i not in test_ids][:-1], "valid": [i for i in ids if i not in test_ids][-1:],
             "test": list(test_ids)}
    (folder / "split.json").write_text(json.dumps(split))
    return {"npz": folder / "corpus.npz", "csv": folder / "release", "midi": folder / "midi"}, folder / "split.json"


@pytest.fixture(scope="module")
def three_ways(tmp_path_factory):
    folder = tmp_path_factory.mktemp("three")
    return write_three_ways(folder, corpus(), test_ids=["1006", "1007"])


@pytest.mark.parametrize("grid", [["--time_base=beats", "--steps_per_beat=4"], ["--time_base=seconds", "--steps_per_second=10"]],
                         ids=["beats", "seconds"])
def test_one_corpus_in_three_formats_gives_byte_identical_rolls(three_ways, tmp_path, grid):
    paths, _ = three_ways
    settings = cd.resolve_settings([f"--cache_dir={tmp_path}", *grid], cd.default_settings())
    built = {kind: cd.preprocess(sources.open_source(str(path)), settings) for kind, path in paths.items()}
    assert built["npz"]["ids"] == built["csv"]["ids"] == built["midi"]["ids"] == sorted(corpus())
    for kind in ("csv", "midi"):
        assert built[kind]["programs"] == built["npz"]["programs"]
        for ours, theirs in zip(built[kind]["rolls"], built["npz"]["rolls"]):
            assert ours.tobytes() == theirs.tobytes() and ours.shape == theirs.shape


def test_one_corpus_in_three_formats_gives_the_same_test_nll(three_ways, tmp_path):
    paths, split = three_ways
    metrics = {}
    for kind, path in paths.items():
        out = tmp_path / kind
        assert cd.main([f"--data_path={path}", f"--split_path={split}", f"--output_dir={out}",
                        f"--cache_dir={tmp_path / 'cache'}", *TINY]) == 0
        metrics[kind] = json.loads((out / "metrics.json").read_text())
    assert metrics["npz"]["test_frame_nll"] == metrics["csv"]["test_frame_nll"] == metrics["midi"]["test_frame_nll"]
    assert metrics["npz"]["test_songs"] == ["1006", "1007"]


def test_a_csv_release_holds_out_its_test_folder(three_ways):
    paths, _ = three_ways
    source = sources.open_source(str(paths["csv"]))
    split = cd.split_ids(sorted(source.recordings), test_ids=source.test_ids)
    assert split["test"] == ["1006", "1007"] and len(split["valid"]) == 1 and len(split["train"]) == 5


def test_npz_labels_built_from_the_csv_release_are_reported(three_ways, tmp_path, capsys):
    paths, _ = three_ways
    settings = cd.resolve_settings([f"--cache_dir={tmp_path}"], cd.default_settings())
    cd.preprocess(sources.open_source(str(paths["npz"])), settings)
    assert "label timing: 8 recordings with start_beat/end_beat" in capsys.readouterr().out


# ------------------------------------------------------------------ messy MIDI collections


def write_midi_folder(folder, count, broken=()):
    """count small MIDI files under folder/a and folder/b (some stems repeated) plus the broken files given."""
    songs = corpus()
    for number in range(count):
        notes = list(songs.values())[number % len(songs)]
        sub = folder / ("a" if number % 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        midi_io.notes_to_midi(notes, sub / f"piece{number}.mid", bpm=bpm_of(notes))
    for name, content in broken:
        (folder / name).write_bytes(content)


def test_broken_midi_files_are_skipped_one_line_each_and_counted(tmp_path, capsys):
    write_midi_folder(tmp_path / "music", 20, broken=[("empty.mid", b""), ("text.mid", b"hello"),
                                                     ("cut.midi", b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\x01\x00")])
    settings = cd.resolve_settings([f"--cache_dir={tmp_path / 'cache'}", "--workers=2"], cd.default_settings())
    songs = cd.load_or_preprocess(sources.open_source(str(tmp_path / "music")), settings)
    out = capsys.readouterr()
    assert len(songs["ids"]) == 20 and sorted(song_id for song_id, _ in songs["skipped"]) == ["cut", "empty", "text"]
    warnings = [line for line in (out.out + out.err).splitlines() if line.startswith("warning: skipped recording")]
    assert len(warnings) == 3 and all("mid" in line for line in warnings)


def test_midi_ids_are_stems_or_relative_paths_where_stems_repeat(tmp_path):
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        midi_io.notes_to_midi(corpus()["1000"], tmp_path / folder / "same.mid", bpm=100)
    midi_io.notes_to_midi(corpus()["1001"], tmp_path / "x" / "unique.MIDI")
    source = sources.open_source(str(tmp_path))
    assert sorted(source.recordings) == ["unique", "x/same", "y/same"]
    assert source.aliases == {"x/unique": "unique"}  # a split file may name it either way
    (tmp_path / "split.json").write_text(json.dumps({"train": ["x/same"], "valid": ["y/same"], "test": ["x/unique"]}))
    split = cd.split_ids(sorted(source.recordings), str(tmp_path / "split.json"), aliases=source.aliases)
    assert split == {"train": ["x/same"], "valid": ["y/same"], "test": ["unique"]}
    single = sources.open_source(str(tmp_path / "x" / "unique.MIDI"))
    assert single.kind == "midi" and list(single.recordings) == ["unique"]


def test_pool_and_single_process_give_the_same_rolls(tmp_path):
    write_midi_folder(tmp_path / "music", 24)
    source = sources.open_source(str(tmp_path / "music"))
    one, two = (cd.preprocess(source, cd.resolve_settings([f"--workers={n}"], cd.default_settings())) for n in (1, 2))
    assert one["ids"] == two["ids"] and len(one["ids"]) == 24
    assert all(a.tobytes() == b.tobytes() for a, b in zip(one["rolls"], two["rolls"]))


def test_adding_or_changing_a_file_changes_the_cache_key(tmp_path):
    write_midi_folder(tmp_path / "music", 3)
    settings = cd.default_settings()
    key = lambda: rolls_cache_name(sources.open_source(str(tmp_path / "music")), settings)  # noqa: E731
    before = key()
    midi_io.notes_to_midi(corpus()["1002"], tmp_path / "music" / "new.mid", bpm=100)
    added = key()
    path = tmp_path / "music" / "a" / "piece1.mid"
    os.utime(path, ns=(0, os.stat(path).st_mtime_ns + 10 ** 9))
    assert len({before, added, key()}) == 3


def rolls_cache_name(source, settings):
    return cd.rolls.cache_path(cd.cache_key(source, settings), "cache", settings)


# ------------------------------------------------------------------ filters


def test_ensemble_and_composer_filters_choose_recordings_from_the_metadata(tmp_path):
    songs = corpus()
    metadata = {song_id: (("Bach", "Solo Piano") if int(song_id) % 2 else ("Mozart", "String Quartet")) for song_id in songs}
    write_csv_release(tmp_path, songs, metadata=metadata)
    source = sources.open_source(str(tmp_path))
    solo = cd.note_filters(source, {**cd.default_settings(), "ensembles": "solo piano"})[0]
    assert solo == ["1001", "1003", "1005", "1007"]
    assert cd.note_filters(source, {**cd.default_settings(), "composers": "Mozart"})[0] == ["1000", "1002", "1004", "1006"]
    with pytest.raises(cd.DataError, match="no recording has ensemble 'brass band'; known: Solo Piano, String Quartet"):
        cd.note_filters(source, {**cd.default_settings(), "ensembles": "Brass Band"})


def test_filters_needing_metadata_are_refused_without_it(three_ways):
    paths, _ = three_ways
    with pytest.raises(cd.DataError, match="needs MusicNet's metadata"):
        cd.note_filters(sources.open_source(str(paths["midi"])), {**cd.default_settings(), "composers": "Bach"})


def test_program_filter_keeps_only_those_notes(three_ways, tmp_path):
    paths, _ = three_ways
    settings = cd.resolve_settings(["--programs=41", "--steps_per_beat=2"], cd.default_settings())
    songs = cd.preprocess(sources.open_source(str(paths["csv"])), settings)
    assert set(songs["programs"]) == {41}
    everything = cd.preprocess(sources.open_source(str(paths["csv"])), cd.resolve_settings(["--steps_per_beat=2"], cd.default_settings()))
    assert all(only.sum() < full.sum() and not (only & ~full).any() for only, full in zip(songs["rolls"], everything["rolls"]))


@pytest.mark.parametrize("value", ["piano", "0", "129"])
def test_a_bad_program_list_is_refused(three_ways, value):
    paths, _ = three_ways
    with pytest.raises(cd.DataError, match="--programs"):
        cd.note_filters(sources.open_source(str(paths["csv"])), {**cd.default_settings(), "programs": value})


# ------------------------------------------------------------------ primers


def test_a_users_midi_primes_generation_and_opens_the_result(three_ways, tmp_path):
    paths, split = three_ways
    primer = tmp_path / "mine.mid"
    midi_io.notes_to_midi(score_notes((62, 0, 2), (66, 0, 2), (69, 2, 2), (74, 3, 1)), primer)
    out = tmp_path / "out"
    assert cd.main([f"--data_path={paths['npz']}", f"--split_path={split}", f"--output_dir={out}",
                    f"--cache_dir={tmp_path / 'cache'}", f"--primer_path={primer}", *TINY]) == 0
    written = midi_io.midi_to_notes(out / "generated_1.mid")
    settings = cd.resolve_settings(TINY, cd.default_settings())
    expected = cd.rolls.organize_song(midi_io.midi_to_notes(primer), **settings)[:8]
    generated = cd.rolls.organize_song(written, **settings)
    np.testing.assert_array_equal(generated[:8], expected)
    marker_ticks = [tick for message, tick in timed_messages(out / "generated_1.mid") if message.type == "marker"]
    assert marker_ticks == [8 * midi_io.TICKS_PER_FRAME]


def test_a_primer_without_notes_in_range_is_a_clear_error(three_ways, tmp_path, capsys):
    paths, split = three_ways
    primer = tmp_path / "high.mid"
    midi_io.notes_to_midi(score_notes((120, 0, 4)), primer)
    code = cd.main([f"--data_path={paths['npz']}", f"--split_path={split}", f"--output_dir={tmp_path / 'out'}",
                    f"--primer_path={primer}", *TINY])
    err = capsys.readouterr().err
    assert code == 2 and "has no notes between MIDI 21 and 108" in err and err.count("\n") == 1

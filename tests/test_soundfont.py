"""soundfont: SoundFont 2 files → presets and samples, and the sample player, on the General MIDI soundfont and on
soundfonts built here byte by byte, hostile ones too."""
import os
import struct
import sys
import tracemalloc

import numpy as np
import pytest

import hostile
import soundfont
from files import DataError
from midi_io import DRUM_CHANNEL, PERFORMANCE_DTYPE, roll_to_midi
from soundfont import default_soundfont, load_soundfont, render_builtin

RATE = 22050  # Hz: half CD rate keeps the tests quick
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def played(*notes, **fields):
    """(key, start, end) tuples in seconds → PERFORMANCE_DTYPE notes at velocity 100 and the MIDI defaults, fields overridden."""
    performance = np.zeros(len(notes), PERFORMANCE_DTYPE)
    performance["key"], performance["start"], performance["end"] = zip(*notes)
    for field, value in {"velocity": 100, "volume": 100, "expression": 127, "pan": 64, **fields}.items():
        performance[field] = value
    return performance


def rms(audio):
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))


def test_default_soundfont_is_the_general_midi_one_from_pretty_midi():
    path = default_soundfont()
    assert os.path.basename(path) == "TimGM6mb.sf2"
    soundfont = load_soundfont(path)
    assert {(0, program) for program in range(128)} <= set(soundfont.presets)  # every General MIDI program


def test_a_soundfont_is_parsed_once_per_file():
    assert load_soundfont() is load_soundfont(default_soundfont())


def test_the_player_renders_stereo_float32_for_the_seconds_asked():
    audio = render_builtin(played((60, 0.0, 0.5)), 1.5, load_soundfont(), RATE)
    assert audio.shape == (int(np.ceil(1.5 * RATE)), 2) and audio.dtype == np.float32
    assert rms(audio[:RATE // 2]) > 0.01


def test_velocity_volume_and_expression_make_a_note_louder_or_softer():
    bank = load_soundfont()
    loud = rms(render_builtin(played((60, 0.0, 0.5)), 1.0, bank, RATE))
    assert rms(render_builtin(played((60, 0.0, 0.5), velocity=40), 1.0, bank, RATE)) < 0.5 * loud
    assert rms(render_builtin(played((60, 0.0, 0.5), volume=50), 1.0, bank, RATE)) < 0.5 * loud
    assert rms(render_builtin(played((60, 0.0, 0.5), expression=60), 1.0, bank, RATE)) < 0.5 * loud


@pytest.mark.parametrize("pan, louder", [(0, 0), (127, 1)])
def test_pan_moves_a_note_to_one_side(pan, louder):
    audio = render_builtin(played((60, 0.0, 0.5), pan=pan), 1.0, load_soundfont(), RATE)
    assert rms(audio[:, louder]) > 10 * rms(audio[:, 1 - louder])


def test_channel_10_plays_the_drum_kit_not_the_melodic_program():
    bank = load_soundfont()
    piano = render_builtin(played((38, 0.0, 0.5)), 1.0, bank, RATE)
    snare = render_builtin(played((38, 0.0, 0.5), channel=DRUM_CHANNEL), 1.0, bank, RATE)
    assert rms(snare) > 0.01 and not np.allclose(piano, snare, atol=1e-3)
    assert snare.tobytes() == render_builtin(played((38, 0.0, 0.5), channel=DRUM_CHANNEL, program=3), 1.0, bank,
                                             RATE).tobytes()  # kit 3 is not in the soundfont: the standard kit plays


# ------------------------------------------------------------------ soundfonts built byte by byte

def chunk(name, body):
    """One RIFF chunk: id, little-endian size, body, a pad byte to an even length."""
    return name + struct.pack("<I", len(body)) + body + b"\0" * (len(body) % 2)


def riff_list(kind, *chunks):
    return chunk(b"LIST", kind + b"".join(chunks))


SINE = np.round(16000 * np.sin(np.arange(1000) * 2 * np.pi / 50))  # 441 Hz at 22050 Hz: a period of 50 samples
SHDR = [(b"sine", 0, 1000, 100, 900, 22050, 69, 0, 0, 1), (b"EOS", 0, 0, 0, 0, 0, 0, 0, 0, 0)]  # looped 100-900


def sf2_file(path, phdr, pbag, pgen, inst, ibag, igen, shdr=SHDR, samples=SINE):
    """Write a .sf2 file from its records (lists of tuples, terminal records included) and samples → path."""
    pdta = [chunk(name, b"".join(struct.pack(fmt, *record) for record in records)) for name, fmt, records in (
        (b"phdr", "<20sHHHIII", phdr), (b"pbag", "<HH", pbag), (b"pmod", "<HHhHH", [(0, 0, 0, 0, 0)]),
        (b"pgen", "<HH", pgen), (b"inst", "<20sH", inst), (b"ibag", "<HH", ibag), (b"imod", "<HHhHH", [(0, 0, 0, 0, 0)]),
        (b"igen", "<HH", igen), (b"shdr", "<20sIIIIIBbHH", shdr))]
    smpl = np.concatenate([samples, np.zeros(46)]).astype("<i2").tobytes()  # 46 zeros after a sample, as SF2 asks
    path.write_bytes(chunk(b"RIFF", b"sfbk" + riff_list(b"INFO", chunk(b"ifil", struct.pack("<HH", 2, 1)))
                           + riff_list(b"sdta", chunk(b"smpl", smpl)) + riff_list(b"pdta", *pdta)))
    return path


def zone_records(zones):
    """Zones (lists of (generator, amount) pairs) → (bag records, generator records), terminal records added."""
    bags, gens = [], []
    for zone in zones:
        bags.append((len(gens), 0))
        gens += [(oper, amount & 0xFFFF) for oper, amount in zone]
    return bags + [(len(gens), 0)], gens + [(0, 0)]


def built_soundfont(path, preset_zones=(((41, 0),),), instrument_zones=((),)):
    """One preset (bank 0, program 0) → instrument 0 → the looped sine, root key 69 → path.

    preset_zones: generator lists, one a zone ((41, 0): play instrument 0). instrument_zones: generator lists
    to which sampleModes 1 (loop) and sampleID 0 are added.
    """
    pbag, pgen = zone_records(preset_zones)
    ibag, igen = zone_records([((54, 1), *zone, (53, 0)) for zone in instrument_zones])
    return sf2_file(path, [(b"lead", 0, 0, 0, 0, 0, 0), (b"EOP", 0, 0, len(pbag) - 1, 0, 0, 0)], pbag, pgen,
                    [(b"sine", 0), (b"EOI", len(ibag) - 1)], ibag, igen)


def play(path, key=69, seconds=1.0):
    """Render one held note (0.5 s) through a soundfont file → (samples, 2) float32 audio."""
    return render_builtin(played((key, 0.0, 0.5)), seconds, load_soundfont(path), RATE)


def refusal(path):
    """What load_soundfont says of a file it refuses, asserting one line that names the file."""
    with pytest.raises(DataError) as caught:
        load_soundfont(path)
    message = str(caught.value)
    assert message.startswith(f"soundfont {path} cannot be loaded: ") and "\n" not in message and "<memory" not in message
    return message


def test_a_built_soundfont_plays_its_looped_sample_at_its_root_key(tmp_path):
    audio = play(built_soundfont(tmp_path / "sine.sf2"))
    assert rms(audio[:RATE // 2]) > 0.05
    spectrum = np.abs(np.fft.rfft(audio[:RATE // 2, 0]))
    assert abs(np.argmax(spectrum) * 2 - 441) <= 2  # 2 Hz bins: the sample's own pitch at its root key


@pytest.mark.parametrize("extreme, limit", [
    ([(51, 32767)], [(51, 120)]),  # coarse tune, semitones: SF2 allows ±120
    ([(51, -32768)], [(51, -120)]),
    ([(46, 32767)], [(46, 127)]),  # key number override
    ([(56, 32767), (51, 120)], [(56, 1200), (51, 120)]),  # scale tuning, cents a key
    ([(58, 32767)], [(58, 127)]),  # root key override
    ([(52, 32767), (48, -32768)], [(52, 99), (48, 0)]),  # fine tune, attenuation
])
def test_an_extreme_tuning_of_a_looped_sample_plays_as_the_sf2_limit_does(tmp_path, extreme, limit):
    heard = play(built_soundfont(tmp_path / "extreme.sf2", instrument_zones=[extreme]), key=0)
    assert np.isfinite(heard).all()
    assert heard.tobytes() == play(built_soundfont(tmp_path / "limit.sf2", instrument_zones=[limit]), key=0).tobytes()


def test_preset_and_instrument_tunings_are_summed_then_limited(tmp_path):
    both = built_soundfont(tmp_path / "both.sf2", preset_zones=[((51, 32767), (41, 0))], instrument_zones=[[(51, 32767)]])
    limit = built_soundfont(tmp_path / "limit.sf2", instrument_zones=[[(51, 120)]])
    assert play(both, key=127).tobytes() == play(limit, key=127).tobytes()


def test_a_long_release_is_computed_only_as_far_as_the_render_reaches(tmp_path):
    path = built_soundfont(tmp_path / "long.sf2", instrument_zones=[[(38, 8000)]])  # a 101 s release
    bank = load_soundfont(path)
    tracemalloc.start()
    try:
        audio = render_builtin(played((69, 0.0, 0.5), (72, 0.5, 1.0)), 1.5, bank, RATE)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000  # 101 s of float64 envelope would be 18 MB
    assert rms(audio[-RATE // 10:]) > 0.01  # still ringing where the render ends
    assert audio[:RATE].tobytes() == render_builtin(played((69, 0.0, 0.5), (72, 0.5, 1.0)), 1.0, bank, RATE).tobytes()


def test_a_note_sounding_over_max_voices_samples_is_refused_naming_the_soundfont(tmp_path):
    path = built_soundfont(tmp_path / "layers.sf2", instrument_zones=[()] * (soundfont.MAX_VOICES + 1))
    assert rms(play(built_soundfont(tmp_path / "fine.sf2", instrument_zones=[()] * soundfont.MAX_VOICES))) > 0.05
    with pytest.raises(DataError, match=rf"^soundfont {path} cannot be played: preset 'lead' \(bank 0, program 0\) "
                                        rf"sounds over {soundfont.MAX_VOICES} samples at once for key 69, velocity 100$"):
        play(path)


def test_zones_fanning_out_past_max_zone_pairs_are_refused(tmp_path):
    fan = int(np.sqrt(soundfont.MAX_ZONE_PAIRS)) + 1  # that many preset zones, each on that many instrument zones
    path = built_soundfont(tmp_path / "fan.sf2", preset_zones=[[(41, 0)]] * fan, instrument_zones=[[(43, 0)]] * fan)
    assert refusal(path).endswith(f"preset 'lead' (bank 0, program 0) layers {fan * fan} instrument zones, "
                                  f"over the {soundfont.MAX_ZONE_PAIRS} a note may search")


BACKWARDS = {  # name: (phdr bags, pbag generator indices, inst bags, ibag generator indices, what is wrong)
    "phdr": ([0, 2, 0, 2, 0, 2], [0, 1, 2], [0, 1], [0, 3], "phdr chunk's indices go backwards at its record 3"),
    "pbag": ([0, 3], [0, 1, 0, 1], [0, 1], [0, 3], "pbag chunk's indices go backwards at its record 3"),
    "inst": ([0, 1], [0, 1], [0, 1, 0, 1], [0, 3], "inst chunk's indices go backwards at its record 3"),
    "ibag": ([0, 1], [0, 1], [0, 2], [0, 3, 0], "ibag chunk's indices go backwards at its record 3"),
    "past_the_end": ([0, 9], [0, 1], [0, 1], [0, 3], "a zone points past the end of its generator list (phdr index 9"),
}


def backwards_soundfont(folder, name):
    """The BACKWARDS case `name` as folder/name.sf2: presets playing instrument 0, instruments the looped sine → path."""
    phdr_bags, pbag_gens, inst_bags, ibag_gens, _ = BACKWARDS[name]
    return sf2_file(folder / f"{name}.sf2", [(b"p", 0, i, bag, 0, 0, 0) for i, bag in enumerate(phdr_bags)],
                    [(gen, 0) for gen in pbag_gens], [(41, 0), (0, 0)], [(b"i", bag) for bag in inst_bags],
                    [(gen, 0) for gen in ibag_gens], [(54, 1), (53, 0), (0, 0)])


@pytest.mark.parametrize("name", sorted(BACKWARDS))
def test_zone_indices_out_of_order_or_past_the_end_are_refused(tmp_path, name):
    """Small files whose bag and generator ranges overlap would walk the same zones again and again."""
    assert BACKWARDS[name][-1] in refusal(backwards_soundfont(tmp_path, name))


def test_a_chunk_past_the_end_is_named_by_its_id(tmp_path):
    path = tmp_path / "bad.sf2"
    path.write_bytes(chunk(b"RIFF", b"sfbk" + b"\x00\xffab" + struct.pack("<I", 1000) + b"data"))
    assert refusal(path).endswith(r"chunk '\x00\xffab' runs past the end of the file (truncated?)")


def test_a_list_of_too_many_chunks_is_refused(tmp_path):
    path = tmp_path / "many.sf2"
    path.write_bytes(chunk(b"RIFF", b"sfbk" + chunk(b"junk", b"") * (soundfont.MAX_CHUNKS + 1)))
    assert refusal(path).endswith(f"over {soundfont.MAX_CHUNKS} chunks in one list (an SF2 file has about 10)")


def sparse_file(path, head, size):
    """A file of `size` bytes that holds only `head` (the rest a hole: no disk, no reading) → path."""
    with open(path, "wb") as file:
        file.write(head)
        file.truncate(size)
    return path


def test_preset_data_over_max_preset_bytes_is_refused_before_it_is_read(tmp_path):
    size = soundfont.MAX_PRESET_BYTES + 2
    body = b"sfbk" + riff_list(b"sdta", chunk(b"smpl", b"\0\0")) + b"LIST" + struct.pack("<I", size + 4) + b"pdta"
    head = b"RIFF" + struct.pack("<I", len(body) + size) + body
    path = sparse_file(tmp_path / "presets.sf2", head, len(head) + size)
    assert refusal(path).endswith(f"its preset data (pdta chunk) is {size / 1e6:.1f} MB, over the "
                                  f"{soundfont.MAX_PRESET_BYTES / 1e6:g} MB limit (real ones are well under 1 MB)")


HUGE = {  # name: (the file's first bytes, its size, what is wrong)
    "not_riff": (b"this is no soundfont", 2_500_000_000, "not a SoundFont 2 file (no RIFF sfbk header)"),
    "over_the_cap": (b"RIFF" + struct.pack("<I", 1_200_000_000 - 8) + b"sfbk" + b"LIST" + struct.pack("<I", 1_200_000_000 - 20)
                     + b"sdta", 1_200_000_000, "it is 1200 MB, over the 500 MB limit (General MIDI soundfonts are 6-400 MB)"),
}


@pytest.mark.parametrize("name", sorted(HUGE))
def test_a_huge_file_is_refused_without_being_read(tmp_path, name):
    head, size, reason = HUGE[name]
    path = sparse_file(tmp_path / f"{name}.sf2", head, size)
    script = ("import sys; from files import DataError; import soundfont\n"
              "try:\n    soundfont.load_soundfont(sys.argv[1])\nexcept DataError as err:\n    print(err)")
    code, out, err, peak_mb = hostile.run_measured([sys.executable, "-c", script, str(path)], tmp_path, 120,
                                                   dict(os.environ, PYTHONPATH=ROOT))
    assert (code, err) == (0, "")
    assert out == f"soundfont {path} cannot be loaded: {reason}\n"
    assert peak_mb < 200  # python and numpy: nothing like the file's size


def test_fanned_out_soundfonts_end_in_one_line_each_through_render_wav_under_a_watchdog(tmp_path):
    """The hostile files whose zones fan out once hung the renderer for minutes: here each must end, refused, at once."""
    fan = int(np.sqrt(soundfont.MAX_ZONE_PAIRS)) + 1
    paths = [built_soundfont(tmp_path / "pairs.sf2", preset_zones=[[(41, 0)]] * fan, instrument_zones=[()] * fan),
             built_soundfont(tmp_path / "voices.sf2", instrument_zones=[()] * 100)]
    paths += [backwards_soundfont(tmp_path, name) for name in BACKWARDS]
    roll = np.zeros((64, 88), bool)
    roll[:, [60 - 21, 64 - 21, 67 - 21, 69 - 21]] = True
    roll_to_midi(roll, tmp_path / "chords.mid", lowest_note=21, frames_per_beat=4, bpm=120)
    script = ("import sys, listen; from files import DataError\n"
              "for path in sys.argv[2:]:\n    try:\n        listen.render_wav(sys.argv[1], path + '.wav', soundfont=path)\n"
              "    except DataError as err:\n        print(err)")
    command = [sys.executable, "-c", script, str(tmp_path / "chords.mid"), *map(str, paths)]
    code, out, err, _ = hostile.run_measured(command, tmp_path, 120, dict(os.environ, PYTHONPATH=ROOT))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert [line.split(" cannot be ")[0] for line in lines] == [f"soundfont {path}" for path in paths]
    assert "layers" in lines[0] and "sounds over" in lines[1] and not list(tmp_path.glob("*.wav"))

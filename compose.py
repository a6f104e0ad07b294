"""Composing: prime a trained model, sample new pieces, write each as MIDI and as WAV in output_dir.

    pieces = compose(model, test_songs, program, settings)   # output_dir/generated_N.mid (test_songs: rolls.Song)
    pieces = [render_audio(piece, settings) for piece in pieces]   # output_dir/generated_N.wav beside each

A primer is the opening of a held-out song, or of the MIDI file primer_path
(read_primer reads it on the run's own grid; the driver calls it before any
training, so a bad primer is refused at once). The pieces go on in the
primer's meter, and a model with onsets strikes keys again as it composes. The model module, and with it
Keras, is imported only where sampling starts, for the same reason.
The pieces are written for the General MIDI program `instrument` at `velocity`
and `bpm` (0: primer_path's first tempo, else DEFAULT_BPM); the console and
each piece (for report.html) say which.
"""
import os

import numpy as np
from tqdm import tqdm

import listen
from files import DataError, printable
from midi_io import GM_PROGRAMS, first_tempo, midi_to_notes, program_number, roll_to_midi
from musicstats import frames_per_unit
from rolls import BadRecording, Song, continue_meter, meter_features, model_frames, organize_song


DEFAULT_BPM = 100.0  # the tempo written on the beat grid when bpm = 0 and there is no primer_path


def written_tempo(settings):
    """Tempo of the written MIDI in quarter notes per minute → (bpm, where it comes from): bpm when set, else
    primer_path's first tempo, else DEFAULT_BPM; on the seconds grid 60, one MIDI beat a second, so frame times stay exact."""
    if settings["time_base"] == "seconds":
        return 60.0, "one beat a second: the seconds grid"
    if settings["bpm"]:
        return settings["bpm"], "the bpm setting"
    if settings["primer_path"]:
        return first_tempo(settings["primer_path"]), "the primer's tempo"
    return DEFAULT_BPM, "the default"


def frames_per_beat_and_bpm(settings):
    """(frames per MIDI beat, MIDI tempo in bpm) for writing rolls of these settings (see written_tempo)."""
    return frames_per_unit(settings), written_tempo(settings)[0]


def what_is_played(settings, data_program):
    """The 1-based General MIDI program the pieces are written for (data_program, the training data's most-played,
    when instrument = "data"), and one line naming it with the velocity and tempo → (program, line)."""
    data = settings["instrument"] == "data"
    program = data_program if data else program_number(settings["instrument"])
    bpm, source = written_tempo(settings)
    whose = ", the training data's most played" if data else ""
    return program, (f"{GM_PROGRAMS[program - 1]} (General MIDI program {program}{whose}) at velocity "
                     f"{settings['velocity']}, {bpm:g} bpm ({source})")


def read_primer(settings):
    """primer_path's opening primer_frames frames on the run's own grid → rolls.Song; DataError if silent."""
    path = settings["primer_path"]
    try:
        song = organize_song(midi_to_notes(path), **settings)[:settings["primer_frames"]]
    except BadRecording as err:  # times or pitches a roll cannot hold: name the primer, not just the notes
        raise DataError(f"primer {printable(path)} cannot be used: {err}") from None
    if not song.roll.any():
        raise DataError(f"primer {printable(path)} has no notes between MIDI {settings['lowest_note']} and "
                        f"{settings['highest_note']} in its first {settings['primer_frames']} frames")
    if len(song) < settings["primer_frames"]:
        print(f"note: primer {printable(path)} is {len(song)} frames long, shorter than primer_frames={settings['primer_frames']}")
    return song


def generate_song(model, primers, num_frames, temperature=1.0, seed=0, floor=0.0):
    """Prime with a list of Songs of one length, then sample num_frames more of each → list of Songs: each primer
    and its continuation, in the primer's meter going on (with onsets the keys the model struck, else each run of
    frames one note)."""
    from model import Sampler  # Keras loads here, where sampling starts (see the module docstring)
    config = model.config
    inputs = np.stack([model_frames(primer, config["onsets"], config["meter"]) for primer in primers])
    meters = [continue_meter(primer.meter, num_frames) for primer in primers]
    frames = Sampler(model, temperature, seed, floor).frames(inputs, num_frames,
                                                             np.stack([meter_features(meter) for meter in meters]))
    drawn = np.stack(list(tqdm(frames, total=num_frames, desc="composing", unit="frame")), axis=1)
    keys = config["num_keys"]
    return [Song(np.concatenate([primer.roll, piece[:, :keys]]),
                 np.concatenate([primer.onsets, piece[:, keys:]]) if config["onsets"] else None,
                 np.concatenate([primer.meter, meter])) for primer, piece, meter in zip(primers, drawn, meters)]


def generate_MIDI(songs, settings, program, primer_frames=None):
    """Write each generated Song to output_dir/generated_N.mid for the 1-based General MIDI program at velocity, in
    its time signature (a marker at primer_frames, where the model takes over, when the song starts with its
    primer); print path, seconds, notes → paths."""
    frames_per_beat, tempo = frames_per_beat_and_bpm(settings)
    paths = []
    for number, song in enumerate(songs, start=1):
        path = os.path.join(settings["output_dir"], f"generated_{number}.mid")
        notes = roll_to_midi(song, path, lowest_note=settings["lowest_note"], frames_per_beat=frames_per_beat,
                             bpm=tempo, program=program, velocity=settings["velocity"], marker_frame=primer_frames)
        seconds = len(song) / frames_per_beat * 60.0 / tempo
        print(f"wrote {printable(path)}: {seconds:.1f} s, {notes} notes")
        if notes == 0:
            print(f"warning: {printable(path)} is silent — the model drew no notes (try more training or a higher temperature)")
        paths.append(path)
    return paths


def choose_primers(test_songs, settings):
    """primer_path's opening, or the openings of the held-out songs long enough in turn → num_outputs Songs of one
    length; DataError when no held-out song is primer_frames long."""
    if settings["primer_path"]:
        primers = [read_primer(settings)]
    else:
        primers = [song[:settings["primer_frames"]] for song in test_songs if len(song) >= settings["primer_frames"]]
    if not primers:
        longest = max(map(len, test_songs), default=0)
        raise DataError(f"no held-out song has primer_frames={settings['primer_frames']} frames (the longest has "
                        f"{longest}): pass a smaller --primer_frames or a --primer_path")
    return [primers[n % len(primers)] for n in range(settings["num_outputs"])]


def compose(model, test_songs, program, settings):
    """Prime with primer_path or the openings of test songs, generate num_outputs pieces, write them as MIDI
    (program: the training data's most-played, for instrument = "data") → [{'name', 'midi', 'song' (a Song, primer
    included when include_primer), 'primer_frames' (0 if not), 'played' (what_is_played's line)}]."""
    if settings["num_outputs"] == 0 or settings["generate_frames"] == 0:
        print("generation skipped: num_outputs or generate_frames is 0")
        return []
    primers = choose_primers(test_songs, settings)
    generated = generate_song(model, primers, settings["generate_frames"], settings["temperature"], settings["sample_seed"],
                              settings["note_floor"])
    primer_frames = len(primers[0]) if settings["include_primer"] else 0
    songs = generated if primer_frames else [song[len(primers[0]):] for song in generated]
    program, played = what_is_played(settings, program)
    print(f"the pieces are written for {played}")
    paths = generate_MIDI(songs, settings, program, primer_frames=primer_frames or None)
    return [{"name": os.path.splitext(os.path.basename(path))[0], "midi": path, "song": song, "primer_frames": primer_frames,
             "played": played} for path, song in zip(paths, songs)]


def render_audio(piece, settings):
    """A WAV beside a piece's MIDI (listen.render_wav); print its path or why there is none
    → the piece with 'wav' (its path, or None) and, where there is no audio, 'wav_error'."""
    wav = os.path.join(settings["output_dir"], piece["name"] + ".wav")
    try:
        audio = listen.render_wav(piece["midi"], wav, soundfont=settings["soundfont"])
    except DataError as err:
        print(f"warning: no audio for {piece['name']}: {err}")
        return {**piece, "wav": None, "wav_error": str(err)}
    print(f"wrote {printable(wav)}: {audio['seconds']:.1f} s ({audio['renderer']})")
    return {**piece, "wav": wav}

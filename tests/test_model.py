"""The Keras model: its heads are proper distributions, sampling agrees with scoring, state is carried, meter read ahead."""
import itertools

import keras
import numpy as np
import pytest

import rolls
from model import MusicLSTM, Sampler, SongScorer, frame_nll, onset_nll, per_member, song_nll, song_targets

KEYS = 4
WIDE = rolls.frame_width(KEYS, True, True)  # frames of a model with onsets and meter


def small_model(head, pitch_profile=False):
    keras.utils.set_random_seed(0)
    model = MusicLSTM(num_keys=KEYS, units=8, layers=2, head=head, head_units=6, pitch_profile=pitch_profile)
    model(np.zeros((1, 3, KEYS), np.float32))  # build
    return model


def random_roll(frames, seed=0):
    return np.random.default_rng(seed).random((frames, KEYS)) < 0.4


def full_model(head="nade", pitch_profile=True):
    """A model with onsets and meter, built."""
    keras.utils.set_random_seed(0)
    model = MusicLSTM(num_keys=KEYS, units=8, layers=1, head=head, head_units=6, pitch_profile=pitch_profile,
                      onsets=True, meter=True)
    model(np.zeros((1, 3, WIDE), np.float32))
    return model


def mixture(members=3, wide=True, biases=(2.0, -2.0, 0.0)):
    """A built model of several networks (with onsets and meter where wide), its members' key biases set apart by
    biases so that their distributions differ."""
    keras.utils.set_random_seed(0)
    model = MusicLSTM(num_keys=KEYS, units=8, layers=1, head="nade", head_units=6, pitch_profile=wide, onsets=wide,
                      meter=wide, members=members)
    model(np.zeros((1, 3, model.width), np.float32))
    for network, bias in zip(model.networks(), biases):
        network.head.key_bias.bias.assign(np.full(KEYS, bias, np.float32))
    return model


def random_song(frames, seed=0, bar=3):
    """A Song of random held and re-struck keys, in bars of `bar` frames (3/8 at 2 frames a quarter... any bar)."""
    rng = np.random.default_rng(seed)
    roll = rng.random((frames, KEYS)) < 0.5
    meter = np.array([(t % bar, bar, 3, 8) for t in range(frames)], np.int16)
    return rolls.Song(roll, rng.random((frames, KEYS)) < 0.5, meter)


@pytest.mark.parametrize("pitch_profile", [False, True])
@pytest.mark.parametrize("head", ["sigmoid", "nade"])
def test_head_probabilities_of_all_frames_sum_to_one(head, pitch_profile):
    model = small_model(head, pitch_profile)
    history = random_roll(5)[None].astype(np.float32)
    every_frame = np.array(list(itertools.product([0, 1], repeat=KEYS)), np.float32)  # (16, KEYS)
    rolls = np.concatenate([np.repeat(history, len(every_frame), axis=0), every_frame[:, None]], axis=1)
    nll = frame_nll(rolls[:, 1:], model(rolls))[:, -1]
    assert np.exp(-keras.ops.convert_to_numpy(nll)).sum() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("head", ["sigmoid", "nade"])
def test_sampled_keys_follow_the_scored_conditionals(head):
    """Key i is drawn when its uniform draw is below p(key i | earlier keys) that the model scores."""
    model = small_model(head)
    context, _ = model.encode(random_roll(6)[None], model.zero_states(1))
    context = context[:, -1]
    rng = np.random.default_rng(1)
    for _ in range(5):
        uniform = rng.random((1, KEYS)).astype(np.float32)
        frame = keras.ops.convert_to_numpy(model.head.sample(context, uniform, 1.0))
        logits = keras.ops.convert_to_numpy(model.head(context[:, None], frame[:, None]))[:, 0]
        np.testing.assert_array_equal(frame > 0.5, uniform < 1 / (1 + np.exp(-logits)))


@pytest.mark.parametrize("pitch_profile", [False, True])
def test_stepping_one_frame_at_a_time_matches_running_the_whole_sequence(pitch_profile):
    model = small_model("nade", pitch_profile)
    frames = random_roll(7)[None].astype(np.float32)
    whole, _ = model.encode(frames, model.zero_states(1))
    states = model.zero_states(1)
    for t in range(frames.shape[1]):
        context, states = model.step(frames[:, t], states)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(context), keras.ops.convert_to_numpy(whole[:, -1]), atol=1e-5)


@pytest.mark.parametrize("pitch_profile", [False, True])
def test_batched_chunked_song_scoring_equals_scoring_each_song_whole(pitch_profile):
    model = small_model("nade", pitch_profile)
    songs = [random_roll(23, seed=1), random_roll(9, seed=2), random_roll(1, seed=3), random_roll(17, seed=4)]
    total, onsets, count = SongScorer(model, songs_per_batch=3, chunk_frames=5).total_nll(songs)
    expected = sum(float(keras.ops.sum(frame_nll(roll[None, 1:].astype(np.float32), model(roll[None].astype(np.float32)))))
                   for roll in songs if len(roll) > 1)
    assert count == 22 + 8 + 0 + 16
    assert total == pytest.approx(expected, rel=1e-5) and onsets == 0.0


def test_batched_chunked_scoring_with_onsets_and_meter_equals_the_model_on_each_whole_song():
    model = full_model()
    songs = [rolls.model_frames(random_song(frames, seed), True, True) for seed, frames in enumerate((23, 9, 1, 17))]
    sounding, struck, count = SongScorer(model, songs_per_batch=3, chunk_frames=5).total_nll(songs)
    whole = [(song[None], song_targets(song[None], KEYS, True)) for song in songs if len(song) > 1]
    logits = [keras.ops.convert_to_numpy(model(frames)) for frames, _ in whole]
    assert count == 22 + 8 + 0 + 16
    assert sounding == pytest.approx(sum(float(np.sum(frame_nll(targets[..., :KEYS], out[..., :KEYS])))
                                         for (_, targets), out in zip(whole, logits)), rel=1e-5)
    assert struck == pytest.approx(sum(float(np.sum(onset_nll(targets[..., KEYS:], out[..., KEYS:])))
                                       for (_, targets), out in zip(whole, logits)), rel=1e-5)
    assert struck > 0


def test_onset_targets_mark_held_over_keys_struck_or_held_and_leave_the_rest_to_the_sounding_keys():
    roll = np.array([[1, 1, 0, 0], [1, 1, 1, 0], [1, 0, 1, 0]], bool)
    onsets = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]], bool)
    frames = rolls.model_frames(rolls.Song(roll, onsets), True, False)
    targets = song_targets(frames, KEYS, True)
    np.testing.assert_array_equal(targets[:, :KEYS], roll[1:])
    np.testing.assert_array_equal(targets[:, KEYS:], [[1, 0, -1, -1],     # key 0 struck again, key 1 held on
                                                      [0, -1, 0, -1]])    # key 2, struck in frame 1, held on
    np.testing.assert_array_equal(song_targets(frames, KEYS, False), roll[1:])


def every_next_frame(history):
    """(frames, channels) model frames with onsets and meter → each song of them and one more frame: every set of
    keys sounding, with every choice of striking again those held over (the meter kept)."""
    for sounding in itertools.product([0, 1], repeat=KEYS):
        held_over = np.array(sounding, bool) & (history[-1, :KEYS] > 0.5)
        for again in itertools.product([0, 1], repeat=int(held_over.sum())):
            onsets = np.array(sounding, bool) & ~held_over
            onsets[np.flatnonzero(held_over)] = np.array(again, bool)
            frame = np.concatenate([sounding, onsets, history[-1, 2 * KEYS:]]).astype(np.float32)
            yield np.concatenate([history, frame[None]])


def test_joint_probabilities_of_every_frame_and_its_onsets_sum_to_one():
    model = full_model()
    total = 0.0
    for song in every_next_frame(rolls.model_frames(random_song(5, seed=3), True, True)):
        logits, targets = model(song[None]), song_targets(song[None], KEYS, True)
        nll = frame_nll(targets[..., :KEYS], logits[..., :KEYS]) + onset_nll(targets[..., KEYS:], logits[..., KEYS:])
        total += float(np.exp(-keras.ops.convert_to_numpy(nll)[0, -1]))
    assert total == pytest.approx(1.0, abs=1e-5)


def test_each_frame_is_predicted_with_the_meter_of_the_frame_it_predicts_and_no_later_one():
    model = full_model()
    frames = rolls.model_frames(random_song(6, seed=5), True, True)[None]
    before = keras.ops.convert_to_numpy(model(frames))
    later = frames.copy()
    later[0, 5, 2 * KEYS:] = 0.0          # the last frame's meter: read only when predicting the last frame
    changed = np.abs(keras.ops.convert_to_numpy(model(later)) - before).max(axis=-1)[0]
    assert changed[:4].max() == 0 and changed[4] > 0


def test_sampled_onsets_strike_new_keys_never_silent_ones_and_follow_the_scored_chance_for_held_ones():
    model = full_model()
    context, _ = model.encode(rolls.model_frames(random_song(6), True, True)[None], model.zero_states(1))
    context = context[:, -1]
    sounding = np.array([[1, 1, 0, 1]], np.float32)
    previous = np.array([[1, 0, 0, 1]], np.float32)
    rng = np.random.default_rng(2)
    chance = 1 / (1 + np.exp(-keras.ops.convert_to_numpy(model.onset_head(context[:, None], sounding[:, None]))[:, 0]))
    for _ in range(5):
        uniform = rng.random((1, KEYS)).astype(np.float32)
        struck = keras.ops.convert_to_numpy(model.onset_head.sample(context, sounding, previous, uniform, 1.0))
        np.testing.assert_array_equal(struck[0, [1, 2]], [1, 0])   # key 1 starts to sound; key 2 is silent
        np.testing.assert_array_equal(struck[0, [0, 3]] > 0.5, (uniform < chance)[0, [0, 3]])


def test_sampler_with_onsets_and_meter_is_reproducible_and_draws_onsets_only_where_keys_sound():
    model = full_model()
    primer = rolls.model_frames(random_song(4), True, True)[None]
    meter = rolls.meter_features(rolls.continue_meter(random_song(4).meter, 30))[None]
    first = np.stack(list(Sampler(model, seed=3).frames(primer, 30, meter)))
    again = np.stack(list(Sampler(model, seed=3).frames(primer, 30, meter)))
    assert first.shape == (30, 1, 2 * KEYS) and first.dtype == bool
    np.testing.assert_array_equal(first, again)
    assert not (first[..., KEYS:] & ~first[..., :KEYS]).any()


def test_sampler_is_reproducible_for_a_seed_and_differs_across_seeds():
    model = small_model("nade")
    primer = random_roll(4)[None].astype(np.float32)
    first = np.stack(list(Sampler(model, seed=3).frames(primer, 30)))
    again = np.stack(list(Sampler(model, seed=3).frames(primer, 30)))
    other = np.stack(list(Sampler(model, seed=4).frames(primer, 30)))
    assert first.shape == (30, 1, KEYS) and first.dtype == bool
    np.testing.assert_array_equal(first, again)
    assert (first != other).any()


@pytest.mark.parametrize("wide", [False, True])
@pytest.mark.parametrize("pitch_profile", [False, True])
def test_model_survives_a_save_and_load(tmp_path, pitch_profile, wide):
    model = full_model("nade", pitch_profile) if wide else small_model("nade", pitch_profile)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    frames = rolls.model_frames(random_song(9), True, True)[None] if wide else random_roll(9)[None].astype(np.float32)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(frames)), keras.ops.convert_to_numpy(model(frames)),
                               atol=1e-6)


def test_pitch_profile_is_each_pitch_class_share_of_the_notes_heard_so_far():
    model = MusicLSTM(num_keys=26, units=4, layers=1, head="sigmoid", pitch_profile=True)
    roll = np.zeros((1, 3, 26), np.float32)
    roll[0, 0, [0, 12]] = 1     # two keys an octave apart: one pitch class, twice
    roll[0, 2, [1, 25]] = 1     # keys 1 and 25 fold onto pitch class 1 as well
    context, states = model.encode(roll, model.zero_states(1))
    shares = keras.ops.convert_to_numpy(context)[0, :, -12:]
    expected = np.zeros((3, 12))
    expected[0:2, 0] = 1.0                    # after frames 0 and 1 (silent): all of it pitch class 0
    expected[2, [0, 1]] = 0.5                 # after frame 2: two notes of each
    np.testing.assert_allclose(shares, expected)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(states[-1]), [[2, 2] + [0] * 10])
    silent, _ = model.encode(np.zeros((1, 2, 26), np.float32), model.zero_states(1))
    assert not keras.ops.convert_to_numpy(silent)[..., -12:].any()  # nothing heard: no share, no division by zero


def test_nade_scoring_per_segment_equals_scoring_every_key_when_frames_hold_at_most_max_notes():
    everything = small_model("nade")
    few = MusicLSTM(num_keys=KEYS, units=8, layers=2, head="nade", head_units=6, max_notes=2)
    few(np.zeros((1, 3, KEYS), np.float32))
    few.set_weights(everything.get_weights())
    rolls = np.array(list(itertools.product([0, 1], repeat=KEYS)), np.float32)  # every frame of 4 keys
    rolls = rolls[rolls.sum(axis=1) <= 2]
    windows = np.stack([np.roll(rolls, shift, axis=0)[:6] for shift in range(len(rolls))])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(few(windows)),
                               keras.ops.convert_to_numpy(everything(windows)), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="more than the 2 keys"):
        SongScorer(few).total_nll([np.ones((4, KEYS), bool)])


def test_note_floor_never_draws_keys_under_it_and_zero_floor_is_plain_bernoulli():
    from model import draw_keys
    logits = np.log(np.array([[0.01, 0.04, 0.2, 0.9]], np.float32) / (1 - np.array([[0.01, 0.04, 0.2, 0.9]], np.float32)))
    always = np.zeros((1, KEYS), np.float32)  # a draw of 0 turns on every key with any chance at all
    assert keras.ops.convert_to_numpy(draw_keys(logits, always, 1.0, 0.05)).tolist() == [[0, 0, 1, 1]]
    assert keras.ops.convert_to_numpy(draw_keys(logits, always, 1.0, 0.0)).tolist() == [[1, 1, 1, 1]]
    halfway = np.full((1, KEYS), 0.5, np.float32)
    assert keras.ops.convert_to_numpy(draw_keys(logits, halfway, 1.0, 0.0)).tolist() == [[0, 0, 0, 1]]


def test_roll_settings_are_kept_in_the_config_through_a_save_and_load_and_left_out_when_not_given(tmp_path):
    roll = {"lowest_note": 60, "highest_note": 63, "time_base": "beats", "steps_per_second": 8.0, "steps_per_beat": 4}
    model = MusicLSTM(num_keys=KEYS, units=8, layers=1, head="nade", head_units=6, roll_settings=roll)
    model(np.zeros((1, 3, KEYS), np.float32))
    model.save(tmp_path / "m.keras")
    assert keras.models.load_model(tmp_path / "m.keras").get_config()["roll_settings"] == roll
    assert "roll_settings" not in small_model("nade").get_config()


def members_nlls(model, frames):
    """Each member's NLL of every frame after the first, from the model's own logits (the members' side by side)
    → ((members, batch, frames - 1) of the sounding keys, the same of the onsets)."""
    targets = song_targets(frames, KEYS, model.config["onsets"])
    parts = per_member(targets, model(frames))
    sounding = [keras.ops.convert_to_numpy(frame_nll(targets[..., :KEYS], part[..., :KEYS])) for part in parts]
    struck = [keras.ops.convert_to_numpy(onset_nll(targets[..., KEYS:], part[..., KEYS:])) for part in parts]
    return np.stack(sounding), np.stack(struck)


def test_a_mixture_holds_its_members_side_by_side_and_trains_each_on_its_own_loss():
    model = mixture()
    frames = rolls.model_frames(random_song(7), True, True)[None]
    logits = keras.ops.convert_to_numpy(model(frames))
    assert logits.shape == (1, 6, 3 * 2 * KEYS) and len(model.networks()) == 3
    assert model.count_params() == 3 * full_model().count_params()
    sounding, struck = members_nlls(model, frames)
    assert len({round(float(nll.sum()), 3) for nll in sounding}) == 3  # three different networks
    loss = keras.ops.convert_to_numpy(song_nll(song_targets(frames, KEYS, True), model(frames)))
    np.testing.assert_allclose(loss, (sounding + struck).sum(axis=0), rtol=1e-5)


def test_a_mixture_scores_each_frame_by_the_mean_of_its_members_probabilities():
    """SongScorer, batched and chunked, gives each frame -log of the members' mean probability: of the sounding keys,
    and of the onsets given them (of the whole frame, less the sounding keys')."""
    model = mixture()
    songs = [rolls.model_frames(random_song(frames, seed), True, True) for seed, frames in enumerate((23, 9, 1, 17))]
    sounding, struck, count = SongScorer(model, songs_per_batch=3, chunk_frames=5).total_nll(songs)
    expected_sounding = expected_struck = 0.0
    for song in songs[:2] + songs[3:]:
        member_sounding, member_struck = members_nlls(model, song[None])
        mixed = -np.log(np.exp(-member_sounding).mean(axis=0))
        whole = -np.log(np.exp(-(member_sounding + member_struck)).mean(axis=0))
        expected_sounding += mixed.sum()
        expected_struck += (whole - mixed).sum()
        assert (mixed < member_sounding.max(axis=0)).all() and (mixed > member_sounding.min(axis=0)).all()
    assert count == 22 + 8 + 0 + 16
    assert sounding == pytest.approx(expected_sounding, rel=1e-5) and struck == pytest.approx(expected_struck, rel=1e-5)


def test_a_mixtures_probabilities_of_every_frame_and_its_onsets_sum_to_one():
    model, history = mixture(), rolls.model_frames(random_song(5, seed=3), True, True)
    scorer = SongScorer(model)
    before = sum(scorer.total_nll([history])[:2])
    total = sum(np.exp(-(sum(scorer.total_nll([song])[:2]) - before)) for song in every_next_frame(history))
    assert total == pytest.approx(1.0, abs=1e-4)


def test_a_mixture_draws_each_frame_from_the_mean_of_its_members_probabilities():
    """Many rows primed alike: how often each frame is drawn matches the mixture's probability of it, which is far
    from any one member's."""
    model, rows = mixture(wide=False, biases=(2.5, -2.5, 0.0)), 4000
    primer = random_roll(5)[None].astype(np.float32)
    drawn = next(iter(Sampler(model, seed=1).frames(np.repeat(primer, rows, axis=0), 1)))
    every = np.array(list(itertools.product([0, 1], repeat=KEYS)), np.float32)
    songs = np.concatenate([np.repeat(primer, len(every), axis=0), every[:, None]], axis=1)
    members = np.exp(-members_nlls(model, songs)[0][:, :, -1])  # (members, frames): each member's probability
    expected = members.mean(axis=0)
    seen = np.array([(drawn == frame.astype(bool)).all(axis=1).mean() for frame in every])
    assert members.sum(axis=1) == pytest.approx(np.ones(3), abs=1e-5)
    assert np.abs(seen - expected).max() < 0.03
    assert min(np.abs(member - expected).max() for member in members) > 0.15


def test_a_mixture_survives_a_save_and_load_and_samples_alike(tmp_path):
    model = mixture(members=2)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert len(loaded.networks()) == 2 and loaded.config["members"] == 2
    song = rolls.model_frames(random_song(9), True, True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(song[None])),
                               keras.ops.convert_to_numpy(model(song[None])), atol=1e-6)
    meter = rolls.meter_features(rolls.continue_meter(random_song(4).meter, 20))[None]
    first, again = (np.stack(list(Sampler(net, seed=3).frames(song[None, :4], 20, meter))) for net in (model, loaded))
    np.testing.assert_array_equal(first, again)

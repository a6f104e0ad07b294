"""The Keras model: a stacked LSTM over piano-roll frames with a note head, its loss, and sampling.

Pure: builds layers, computes losses and samples. Reads no files, prints
nothing, knows no globals. The model reads frames as `rolls.model_frames`
makes them: `(batch, frames, channels)` float, per frame the keys sounding,
then (onsets) the keys struck, then (meter) where the frame lies in its bar.

    model = MusicLSTM(num_keys=88, units=128, layers=1, head="nade", head_units=64, onsets=True, meter=True)
    logits = model(frames)     # (batch, frames - 1, 2 * keys): frame t+1 given frames ..t (and t+1's meter)
    nats = frame_nll(frames[:, 1:, :88], logits[..., :88])   # (batch, frames - 1): the sounding keys' NLL

The head sees a context: the top LSTM output beside the current frame (and,
with pitch_profile, each pitch class's share of the notes heard so far).
- "sigmoid": every key of the next frame an independent Bernoulli given the context.
- "nade": RNN-NADE (Boulanger-Lewandowski et al. 2012): keys drawn lowest first,
  each conditioned on the context and on the keys already drawn in its frame.

With members > 1 the model holds that many such networks, trained side by side
on the sum of their losses, and is their equal-weight mixture per frame:
p(frame | past) = the mean of the members' p(frame | past), an exact
likelihood (no averaged logits); sampling draws each frame from one member
chosen at random, and every member reads the frame drawn.
"""
import math

import keras
import numpy as np
from keras import ops

from rolls import METER_FEATURES, frame_width, most_keys_on, pitch_class_fold

serializable = keras.saving.register_keras_serializable(package="classically_deep")


def per_member(targets, logits):
    """(..., channels) targets and (..., members * channels) logits, the members' side by side → each member's
    (..., channels) logits."""
    width = targets.shape[-1]
    return [logits[..., start:start + width] for start in range(0, logits.shape[-1], width)]


@serializable
def frame_nll(targets, logits):
    """(batch, frames, keys) 0/1 targets and logits (of each member: see per_member) → (batch, frames) NLL in nats,
    summed over keys (and members: each member's own loss, so that each trains as it would alone)."""
    targets = ops.cast(targets, logits.dtype)
    return sum(ops.sum(ops.binary_crossentropy(targets, part, from_logits=True), axis=-1)
               for part in per_member(targets, logits))


@serializable
def onset_nll(targets, logits):
    """(batch, frames, keys) onset targets (1 struck again, 0 held on, -1 decided by the sounding keys) and logits
    → (batch, frames) NLL in nats of the keys held over from the frame before, summed over keys."""
    targets = ops.cast(targets, logits.dtype)
    decided = ops.cast(ops.greater_equal(targets, 0.0), logits.dtype)
    return ops.sum(ops.binary_crossentropy(ops.maximum(targets, 0.0), logits, from_logits=True) * decided, axis=-1)


@serializable
def song_nll(targets, logits):
    """(batch, frames, 2 * keys) targets and logits (of each member), the sounding keys then the onsets (see
    song_targets) → (batch, frames) NLL in nats: frame_nll of the sounding keys plus onset_nll of the keys held
    over, summed over members."""
    keys = targets.shape[-1] // 2
    return sum(frame_nll(targets[..., :keys], part[..., :keys]) + onset_nll(targets[..., keys:], part[..., keys:])
               for part in per_member(targets, logits))


def mixed_nll(nlls):
    """The members' NLLs of the same frames (a list of equal-shaped tensors) → the NLL of their equal-weight mixture:
    -log(mean over members of exp(-NLL))."""
    if len(nlls) == 1:
        return nlls[0]
    return math.log(len(nlls)) - ops.logsumexp(-ops.stack(nlls), axis=0)


def song_targets(frames, num_keys, onsets):
    """(..., frames, channels) model frames (numpy) → (..., frames - 1, keys, or 2 * keys with onsets) float32 targets:
    the keys sounding in each next frame, then 1 where a key sounding in the frame before is struck again, 0 where it
    is held on, -1 where the sounding keys decide (a key that starts to sound is struck, a silent one is not)."""
    sounding = frames[..., 1:, :num_keys]
    if not onsets:
        return sounding.astype(np.float32)
    held_over = (frames[..., :-1, :num_keys] > 0.5) & (sounding > 0.5)
    again = np.where(held_over, frames[..., 1:, num_keys:2 * num_keys], -1.0)
    return np.concatenate([sounding, again], axis=-1).astype(np.float32)


def draw_keys(logits, uniform, temperature, floor):
    """Draw keys on with probability sigmoid(logits / temperature), except those under floor, never drawn → float 0/1.

    The floor cuts the long tail of unlikely keys (with 88 keys a frame, the
    rare stray note adds up to chromatic noise) without thinning the likely
    ones, as a temperature below 1 does.
    """
    chance = ops.sigmoid(logits / temperature)
    return ops.cast(ops.logical_and(ops.less(uniform, chance), ops.greater_equal(chance, floor)), logits.dtype)


@serializable
class SigmoidHead(keras.layers.Layer):
    """Independent Bernoulli per key: logits = Dense(context)."""

    def __init__(self, num_keys, **kwargs):
        super().__init__(**kwargs)
        self.num_keys = num_keys
        self.logits = keras.layers.Dense(num_keys)

    def call(self, context, targets):
        """(batch, frames, width) context, (batch, frames, keys) targets → (batch, frames, keys) logits."""
        return self.logits(context)

    def sample(self, context, uniform, temperature, floor=0.0):
        """(batch, width) context, (batch, keys) uniform draws → (batch, keys) float 0/1 frame (see draw_keys)."""
        return draw_keys(self.logits(context), uniform, temperature, floor)

    def get_config(self):
        return {**super().get_config(), "num_keys": self.num_keys}


@serializable
class NadeHead(keras.layers.Layer):
    """NADE over the keys of one frame, its biases set by the LSTM context.

    p(key i | keys < i) = sigmoid(b_i + V_i · sigmoid(c + Σ_{j<i} W_j x_j)),
    with b = Dense(context), c = Dense(context).

    Scoring uses that the hidden layer only changes at a sounding key: for a
    frame with n keys on there are n + 1 distinct hidden vectors, one per
    "segment" (the keys with s keys on below them). call() computes one per
    segment, max_notes + 1 of them, instead of one per key: exact for frames
    with at most max_notes keys on (more is an error caught by the callers
    that know the data), and about keys / (max_notes + 1) times less work.
    """

    def __init__(self, num_keys, units=128, max_notes=None, **kwargs):
        super().__init__(**kwargs)
        self.num_keys, self.units = num_keys, units
        self.max_notes = num_keys if max_notes is None else min(max_notes, num_keys)
        self.key_bias = keras.layers.Dense(num_keys)
        self.hidden_bias = keras.layers.Dense(units)

    def build(self, context_shape, targets_shape=None):
        self.key_bias.build(context_shape)
        self.hidden_bias.build(context_shape)
        self.w_in = self.add_weight(shape=(self.num_keys, self.units), initializer="glorot_uniform", name="w_in")
        self.w_out = self.add_weight(shape=(self.num_keys, self.units), initializer="glorot_uniform", name="w_out")

    def call(self, context, targets):
        """(batch, frames, width) context, (batch, frames, keys) targets → (batch, frames, keys) logits."""
        keys_on = ops.cast(targets, context.dtype)
        below = ops.cumsum(keys_on, axis=-1) - keys_on           # (batch, frames, keys): keys on below key i
        segments = ops.cast(ops.arange(self.max_notes + 1), context.dtype)[:, None]  # (segments, 1)
        taken = keys_on[..., None, :] * ops.cast(below[..., None, :] < segments, context.dtype)
        hidden = ops.sigmoid(self.hidden_bias(context)[..., None, :] + ops.matmul(taken, self.w_in))
        per_segment = ops.matmul(hidden, ops.transpose(self.w_out))  # (batch, frames, segments, keys)
        in_segment = ops.cast(below[..., None, :] == segments, context.dtype)
        return self.key_bias(context) + ops.sum(per_segment * in_segment, axis=-2)

    def sample(self, context, uniform, temperature, floor=0.0):
        """(batch, width) context, (batch, keys) uniform draws → (batch, keys) float 0/1 frame, lowest key first."""
        key_bias, activation = self.key_bias(context), self.hidden_bias(context)
        keys = []
        for key in range(self.num_keys):
            logit = key_bias[:, key] + ops.sum(ops.sigmoid(activation) * self.w_out[key], axis=-1)
            drawn = draw_keys(logit, uniform[:, key], temperature, floor)
            activation = activation + drawn[:, None] * self.w_in[key]
            keys.append(drawn)
        return ops.stack(keys, axis=-1)

    def get_config(self):
        return {**super().get_config(), "num_keys": self.num_keys, "units": self.units, "max_notes": self.max_notes}


HEADS = {"sigmoid": SigmoidHead, "nade": NadeHead}


@serializable
class OnsetHead(keras.layers.Layer):
    """Whether a key sounding in the frame before and again now is struck again: a Bernoulli per key given the
    context and the keys sounding now (a key that starts to sound is always struck, a silent one never)."""

    def __init__(self, num_keys, **kwargs):
        super().__init__(**kwargs)
        self.num_keys = num_keys
        self.logits = keras.layers.Dense(num_keys)
        self.sounding = keras.layers.Dense(num_keys, use_bias=False)

    def call(self, context, sounding):
        """(batch, frames, width) context, (batch, frames, keys) keys sounding → (batch, frames, keys) onset logits."""
        return self.logits(context) + self.sounding(ops.cast(sounding, context.dtype))

    def sample(self, context, sounding, previous, uniform, temperature):
        """(batch, width) context, (batch, keys) keys sounding now and in the frame before, uniform draws → (batch,
        keys) float 0/1 keys struck."""
        again = draw_keys(self.call(context, sounding), uniform, temperature, 0.0)
        return sounding * (1.0 - previous) + sounding * previous * again

    def get_config(self):
        return {**super().get_config(), "num_keys": self.num_keys}


@serializable
class MusicLSTM(keras.Model):
    """Stacked LSTM over frames + note heads: (batch, frames, channels) model frames → (batch, frames - 1, keys)
    logits of the keys sounding, then with onsets as many logits of the keys struck again.

    onsets: the frames carry the keys struck and an OnsetHead predicts them; meter: the frames carry their meter
    features, and the model reads each frame with the meter of the frame it predicts (the meter is given, not drawn).
    members: networks of this architecture in the model (see the module docstring); the model itself is the first,
    and holds the others (`networks()` lists all). Their logits lie side by side, each network's in turn.
    roll_settings: the piano-roll settings the model was trained on (a dict of plain values), stored in its
    config and nothing else, so that a saved model describes the rolls it reads and writes."""

    def __init__(self, num_keys=88, units=256, layers=2, dropout=0.0, head="nade", head_units=128, max_notes=None,
                 pitch_profile=False, onsets=False, meter=False, members=1, roll_settings=None, **kwargs):
        super().__init__(**kwargs)
        self.config = {"num_keys": num_keys, "units": units, "layers": layers, "dropout": dropout,
                       "head": head, "head_units": head_units, "max_notes": max_notes, "pitch_profile": pitch_profile,
                       "onsets": onsets, "meter": meter, "members": members}
        if roll_settings is not None:  # kept, unused here, so that a saved model says what its rolls were
            self.config["roll_settings"] = roll_settings
        self.width = frame_width(num_keys, onsets, meter)
        self.fold = pitch_class_fold(num_keys) if pitch_profile else None
        self.lstms = [keras.layers.LSTM(units, return_sequences=True, return_state=True) for _ in range(layers)]
        self.dropout = keras.layers.Dropout(dropout)
        head_options = {"units": head_units, "max_notes": max_notes} if head == "nade" else {}
        self.head = HEADS[head](num_keys, **head_options)
        self.onset_head = OnsetHead(num_keys) if onsets else None
        one = {key: value for key, value in self.config.items() if key not in ("members", "roll_settings")}
        self.others = [MusicLSTM(**one) for _ in range(members - 1)]
        for other in self.others:  # never called itself: its layers are built as this model's call uses them
            other.built = True

    def networks(self):
        """The member networks: this model, then the others it holds (a method: Keras' saving walks properties)."""
        return [self, *self.others]

    def zero_states(self, batch):
        """Initial recurrent state: [[h, c] per layer], each (batch, units) zeros, then with pitch_profile
        a (batch, 12) zero count of the notes heard so far per pitch class."""
        units = self.config["units"]
        states = [[ops.zeros((batch, units)), ops.zeros((batch, units))] for _ in self.lstms]
        return states + [ops.zeros((batch, 12))] if self.fold is not None else states

    def with_profile(self, frames, states):
        """(batch, frames, keys) frames and the states → (the frames, [the count state after them]).

        With pitch_profile each frame gets 12 more columns: every pitch class's
        share of the notes heard up to and including it. Without: unchanged, []."""
        if self.fold is None:
            return frames, []
        sounding = frames[..., :self.config["num_keys"]]
        heard = states[-1][:, None, :] + ops.cumsum(ops.matmul(sounding, self.fold), axis=1)
        share = heard / ops.maximum(ops.sum(heard, axis=-1, keepdims=True), 1.0)
        return ops.concatenate([frames, share], axis=-1), [heard[:, -1]]

    def encode(self, frames, states, training=False):
        """(batch, frames, channels) input frames → ((batch, frames, units + channels [+ 12]) context after each frame,
        new states).

        The context is the top LSTM output beside the frame itself, so the
        head sees directly which keys are sounding now (held notes are most
        of music) and the LSTM is free to model everything else. With
        pitch_profile the LSTM and the head also see the pitch classes of
        everything heard so far, a memory of the key that does not fade over
        a piece longer than the training windows.
        """
        inputs, profile_state = self.with_profile(ops.cast(frames, "float32"), states)
        outputs, new_states = inputs, []
        for lstm, state in zip(self.lstms, states):
            outputs, h, c = lstm(outputs, initial_state=state, training=training)
            outputs = self.dropout(outputs, training=training)
            new_states.append([h, c])
        return ops.concatenate([outputs, inputs], axis=-1), new_states + profile_state

    def read_ahead(self, frames):
        """(batch, frames, channels) model frames → (batch, frames - 1, channels): each frame but the last, with meter
        carrying the meter features of the frame after it (the frame it predicts)."""
        if not self.config["meter"]:
            return frames[:, :-1]
        cut = self.width - METER_FEATURES
        return ops.concatenate([frames[:, :-1, :cut], frames[:, 1:, cut:]], axis=-1)

    def predict_frames(self, context, frames):
        """(batch, frames - 1, width) contexts and the (batch, frames, channels) frames they came from → logits of the
        keys sounding in each next frame (and of the keys struck again, with onsets)."""
        sounding = frames[:, 1:, :self.config["num_keys"]]
        logits = self.head(context, sounding)
        if self.onset_head is None:
            return logits
        return ops.concatenate([logits, self.onset_head(context, sounding)], axis=-1)

    def call(self, inputs, training=False):
        """(batch, frames, channels) model frames, or (frames, (batch, 12) notes per pitch class heard before them: a
        window's past, for pitch_profile) → (batch, frames - 1, keys or 2 * keys) logits (see predict_frames), each
        member's in turn."""
        frames, heard = inputs if isinstance(inputs, (tuple, list)) else (inputs, None)
        frames = ops.cast(frames, "float32")
        ahead, logits = self.read_ahead(frames), []
        for network in self.networks():
            states = network.zero_states(ops.shape(frames)[0])
            if heard is not None and self.fold is not None:
                states[-1] = ops.cast(heard, "float32")
            context, _ = network.encode(ahead, states, training)
            logits.append(network.predict_frames(context, frames))
        return ops.concatenate(logits, axis=-1) if self.others else logits[0]

    def step(self, frame, states):
        """One (batch, channels) frame → ((batch, units + channels [+ 12]) context after it, new states); inference only."""
        inputs, profile_state = self.with_profile(frame[:, None, :], states)
        outputs, new_states = inputs[:, 0], []
        for lstm, state in zip(self.lstms, states):
            outputs, state = lstm.cell(outputs, state)
            new_states.append(state)
        return ops.concatenate([outputs, inputs[:, 0]], axis=-1), new_states + profile_state

    def get_config(self):
        return {**super().get_config(), **self.config}


def compile_for_backend(model, function):
    """function(*arrays), which calls the model's layers, → the same compiled for the Keras backend, inference only.

    The compiled function reads the model's weights as they are at each call.
    TensorFlow: tf.function. JAX: jax.jit with the weights passed in through
    a StatelessScope. PyTorch: eager under torch.no_grad().
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf
        return tf.function(function, reduce_retracing=True, autograph=False)
    if backend == "jax":
        import jax

        def pure(weights, *arrays):
            with keras.StatelessScope(state_mapping=list(zip(model.variables, weights))):
                return function(*arrays)

        def own(value):  # a weight replicated over devices or hosts (keras.distribution): this process's copy
            return value.addressable_data(0) if len(value.sharding.device_set) > 1 else value
        jitted = jax.jit(pure)
        return lambda *arrays: jitted([own(variable.value) for variable in model.variables], *arrays)
    if backend == "torch":
        import torch

        def without_gradients(*arrays):
            with torch.no_grad():
                return function(*keras.tree.map_structure(ops.convert_to_tensor, arrays))
        return without_gradients
    raise ValueError(f"unsupported Keras backend {backend!r}: use tensorflow, jax or torch")


def round_up(count, step):
    """count rounded up to a multiple of step (at least step)."""
    return max(step, -(-count // step) * step)


class SongScorer:
    """NLL of whole songs, each run from its start with full context: the sounding keys', and the onsets' (of a model
    of several members, their mixture's).

    Songs of similar length are scored together, in chunks of frames that
    carry the LSTM state, so memory stays bounded however long a song is.
    Groups are padded to songs_per_batch rows and chunks to a multiple of
    pad_frames, so a compiling backend sees only a few shapes.
    """

    def __init__(self, model, songs_per_batch=8, chunk_frames=512, pad_frames=64):
        """model: a built MusicLSTM (called once, trained or loaded: JAX compiles with its weights as they are)."""
        self.model, self.songs_per_batch = model, songs_per_batch
        self.chunk_frames, self.pad_frames = round_up(chunk_frames, pad_frames), pad_frames
        self.score_chunk = compile_for_backend(model, self._score_chunk)

    def _score_chunk(self, frames, targets, mask, states):
        """With several members, the mixture's NLL per frame: of the sounding keys, and of the onsets given them
        (the NLL of the whole frame, sounding keys and onsets, less that of the sounding keys)."""
        keys, ahead = self.model.config["num_keys"], self.model.read_ahead(frames)
        sounding, whole, new_states = [], [], []
        for network, state in zip(self.model.networks(), states):
            context, state = network.encode(ahead, state)
            logits = network.predict_frames(context, frames)
            sounding.append(frame_nll(targets[..., :keys], logits[..., :keys]))
            if self.model.onset_head is not None:
                whole.append(sounding[-1] + onset_nll(targets[..., keys:], logits[..., keys:]))
            new_states.append(state)
        nats = mixed_nll(sounding)
        onset_nats = ops.sum((mixed_nll(whole) - nats) * mask) if whole else ops.zeros(())
        return ops.sum(nats * mask), onset_nats, new_states

    def total_nll(self, songs):
        """List of (frames, channels) model frames (rolls.model_frames) → (total NLL in nats of the sounding keys
        over frames 1.. of each, total NLL of the onsets (0 without onsets), number of those frames)."""
        keys = self.model.config["num_keys"]
        limit = getattr(self.model.head, "max_notes", None)
        if limit is not None and most_keys_on([song[:, :keys] > 0.5 for song in songs]) > limit:
            raise ValueError(f"a song has a frame with more than the {limit} keys on that this model scores")
        order = sorted(range(len(songs)), key=lambda i: len(songs[i]))
        sounding = struck = 0.0
        for first in range(0, len(order), self.songs_per_batch):
            group = [songs[i] for i in order[first:first + self.songs_per_batch]]
            steps = max(len(song) for song in group) - 1  # predicted frames of the longest song
            if steps < 1:
                continue
            width = round_up(steps, self.pad_frames) if steps < self.chunk_frames else round_up(steps, self.chunk_frames)
            frames = np.zeros((self.songs_per_batch, width + 1, group[0].shape[1]), np.float32)
            mask = np.zeros((self.songs_per_batch, width), np.float32)
            for row, song in enumerate(group):
                frames[row, :len(song)] = song
                mask[row, :len(song) - 1] = 1.0
            targets = song_targets(frames, keys, self.model.onset_head is not None)
            states = [network.zero_states(self.songs_per_batch) for network in self.model.networks()]
            for start in range(0, width, self.chunk_frames):
                stop = min(start + self.chunk_frames, width)
                nats, onset_nats, states = self.score_chunk(frames[:, start:stop + 1], targets[:, start:stop],
                                                            mask[:, start:stop], states)
                sounding += float(ops.convert_to_numpy(nats))
                struck += float(ops.convert_to_numpy(onset_nats))
        return sounding, struck, sum(max(len(song) - 1, 0) for song in songs)


class Sampler:
    """Draws frames one at a time with a compiled step, carrying the recurrent state forward.

    The uniform draws (and with several members, which member draws each
    row's frame) come from numpy, seeded by (seed, frame index), so the same
    seed gives the same music on any backend up to float rounding.
    """

    def __init__(self, model, temperature=1.0, seed=0, floor=0.0):
        self.model, self.temperature, self.seed, self.floor = model, temperature, seed, floor
        self.prime_step = compile_for_backend(model, self._prime)
        self.draw_step = compile_for_backend(model, self._draw)

    def _prime(self, primer):
        contexts, states = [], []
        for network in self.model.networks():
            context, state = network.encode(primer, network.zero_states(ops.shape(primer)[0]))
            contexts.append(context[:, -1])
            states.append(state)
        return contexts, states

    def _draw(self, contexts, states, previous, uniform, meter, chosen):
        """chosen: (batch, members) one-hot, the member each row's frame is drawn from (every member draws one)."""
        frames = []
        for network, context in zip(self.model.networks(), contexts):
            sounding = network.head.sample(context, uniform[0], self.temperature, self.floor)
            parts = [sounding]
            if network.onset_head is not None:
                parts.append(network.onset_head.sample(context, sounding, previous, uniform[1], self.temperature))
            if network.config["meter"]:
                parts.append(meter)
            frames.append(ops.concatenate(parts, axis=-1))
        frame = ops.sum(ops.stack(frames, axis=1) * chosen[..., None], axis=1) if len(frames) > 1 else frames[0]
        stepped = [network.step(frame, state) for network, state in zip(self.model.networks(), states)]
        return frame, [context for context, _ in stepped], [state for _, state in stepped]

    def frames(self, primer, num_frames, meter=None):
        """Yield num_frames sampled (batch, keys or 2 * keys) bool frames (the keys sounding, then with onsets the
        keys struck) continuing (batch, frames, channels) primer model frames; meter: with a meter model, the
        (batch, num_frames, METER_FEATURES) meter features of the frames to draw."""
        primer = np.asarray(primer, np.float32)
        keys = self.model.config["num_keys"]
        batch, drawn = len(primer), keys * (2 if self.model.onset_head is not None else 1)
        if self.model.config["meter"]:
            meter = np.concatenate([np.asarray(meter, np.float32), np.zeros((batch, 1, METER_FEATURES), np.float32)], 1)
            primer = np.concatenate([primer, np.concatenate([primer[:, -1:, :drawn], meter[:, :1]], -1)], axis=1)
            primer = ops.convert_to_numpy(self.model.read_ahead(primer))
        else:
            meter = np.zeros((batch, num_frames + 1, 0), np.float32)
        contexts, states = self.prime_step(primer)
        previous, members = primer[:, -1, :keys], len(self.model.networks())
        for index in range(num_frames):
            generator = np.random.default_rng([self.seed, index])
            uniform = np.stack([generator.random((batch, keys), np.float32) for _ in range(drawn // keys)])
            chosen = np.eye(members, dtype=np.float32)[generator.integers(members, size=batch)]  # after the uniforms
            frame, contexts, states = self.draw_step(contexts, states, previous, uniform, meter[:, index + 1], chosen)
            frame = ops.convert_to_numpy(frame)
            previous = frame[:, :keys]
            yield frame[:, :drawn] > 0.5

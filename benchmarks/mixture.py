"""What exact mixtures of trained networks score: held-out frame NLL of each network and of two mixtures.

    python benchmarks/mixture.py A/best.keras B/best.keras                    # chorale models, valid and test
    python benchmarks/mixture.py --corpus=quartets A/best.keras B/best.keras
    python benchmarks/mixture.py benchmarks/output/corpora-chorales/best.keras   # a model of several members

Every network of the model files (trained on a corpus of benchmarks/corpora.py,
on its grid; a model trained with members > 1 holds several, each scored
alone) is run over every held-out song from its first frame, as
training.evaluate does, keeping the NLL of the sounding keys frame by frame.
Two exact likelihoods of K networks with equal weights, both normalised
distributions over songs:
- the sequence mixture, p(song) = mean over networks of p_k(song);
- the frame mixture, p(frame t | frames before) = mean over networks of p_k(frame t | frames before),
  each network reading the true song so far (a mixture at every frame, then the chain rule: what the
  driver's members train and score).
Neither averages logits. Prints one table: NLL per predicted frame, nats.
"""
import os
import sys

import numpy as np

from corpora import CORPORA, corpus_parts  # puts the project's root on sys.path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before Keras loads TensorFlow, as the driver does


def parse(argv):
    """Command line → (corpus, model paths)."""
    corpus, paths = "chorales", []
    for arg in argv:
        if arg.startswith("--corpus="):
            corpus = arg.partition("=")[2]
        elif arg.startswith("-"):
            sys.exit(f"error: unknown argument {arg!r}; use --corpus= and model files")
        else:
            paths.append(arg)
    if corpus not in CORPORA or not paths:
        sys.exit(f"error: give one or more model files and --corpus= one of {', '.join(CORPORA)}")
    missing = [path for path in paths if not os.path.isfile(path)]
    if missing:
        sys.exit(f"error: no model file {missing[0]!r}")
    return corpus, paths


def frame_nlls(net, songs):
    """One network of a loaded MusicLSTM and songs → one array per song: the NLL in nats of the keys sounding in
    each frame 1..."""
    from keras import ops

    from model import frame_nll, song_targets
    from rolls import model_frames
    config, keys, out = net.config, net.config["num_keys"], []
    for song in songs:
        frames = model_frames(song, config["onsets"], config["meter"])[None].astype(np.float32)
        context, _ = net.encode(net.read_ahead(frames), net.zero_states(1))
        logits = net.predict_frames(context, frames)
        nats = frame_nll(song_targets(frames, keys, config["onsets"])[..., :keys], logits[..., :keys])
        out.append(ops.convert_to_numpy(nats)[0])
    return out


def mixtures(per_model):
    """[network][song] arrays of frame NLLs → (frame mixture, sequence mixture), each NLL per predicted frame."""
    count, frames = len(per_model), sum(len(song) for song in per_model[0])
    stacked = np.stack([np.concatenate(songs) for songs in per_model])
    frame_mix = -(np.logaddexp.reduce(-stacked, axis=0) - np.log(count)).sum()
    totals = np.array([[song.sum() for song in songs] for songs in per_model])
    sequence_mix = -(np.logaddexp.reduce(-totals, axis=0) - np.log(count)).sum()
    return frame_mix / frames, sequence_mix / frames


def main(argv):
    corpus, paths = parse(argv)
    import keras

    import model  # noqa: F401  registers the custom layers
    parts = corpus_parts(corpus)
    networks = {}
    for path in paths:
        found = keras.saving.load_model(path).networks()
        networks.update({path + (f" network {index + 1}" if len(found) > 1 else ""): network
                         for index, network in enumerate(found)})
    scores = {part: [frame_nlls(network, parts[part]) for network in networks.values()] for part in ("valid", "test")}
    print(f"\n{len(networks)} networks on the {corpus}' held-out songs: frame NLL of the sounding keys, nats\n")
    print("| network | valid | test |\n|---|---|---|")
    for index, name in enumerate(networks):
        means = [np.concatenate(scores[part][index]).mean() for part in ("valid", "test")]
        print(f"| {name} | {means[0]:.4f} | {means[1]:.4f} |")
    if len(networks) > 1:
        mixed = {part: mixtures(scores[part]) for part in ("valid", "test")}
        print(f"| sequence mixture | {mixed['valid'][1]:.4f} | {mixed['test'][1]:.4f} |")
        print(f"| frame mixture | {mixed['valid'][0]:.4f} | {mixed['test'][0]:.4f} |")


if __name__ == "__main__":
    main(sys.argv[1:])

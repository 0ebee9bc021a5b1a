"""Ship a trained checkpoint: write the safetensors weights (int8 matrices, see Codec.save) and fit the entropy models beside them.

    python scripts/export.py runs/main/best.pt                      # -> audiocodec/weights/default.*
    python scripts/export.py runs/main/ckpt.pt --minutes 30 --out audiocodec/weights/default
    python scripts/export.py runs/hv2/ckpt.pt --pitch runs/pitch/ckpt.pt   # with the sender's pitch tracker

Two entropy models are fitted on the training split: the per-stage tables (how often each code of each
codebook is chosen in ``--minutes`` of it; what files of format version 3 and before were coded with) and
the context model that codes new files and packets (``scripts/fit_context.py``: trained for
``--context-minutes``, shipped only if it round-trips). New weights that make exactly the codes of
``--codes-from`` (the shipped model by default: the same encoder, codebooks and pitch tracker, as a
``train.py --freeze-codes`` fine-tune of the decoder leaves them) take its entropy models over instead,
under the new model id, once the context model has round-tripped 20 train clips' codes (seconds, not an hour),
and the weights name the earlier models whose codes they make (``same_codes_as``), so that the files those made
still decode; ``--refit`` fits them afresh all the same.

    python scripts/export.py runs/adv/ckpt.pt --pitch audiocodec/weights/default.safetensors --out runs/adv/codec

``--weights-only`` writes the weights alone, a candidate for ``scripts/benchmark.py --model``: its quality is
measured as shipped, its kbps are the nominal ones.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch
from tqdm import tqdm

from fit_context import ship_context

from audiocodec.bitstream.context import ContextModel
from audiocodec.bitstream.entropy import EntropyModel
from audiocodec.model import Codec, default_weights_path
from audiocodec.model.codec import SAME_CODES
from audiocodec.stream.engine import Engine, load_engine, save_searched
from audiocodec.train.context import round_trip, split_codes
from audiocodec.train.dataset import DEFAULT_ROOT, load_split
from audiocodec.train.state import load_checkpoint


def count_codes(codec: Codec, audio: np.ndarray, minutes: float, seconds_per_piece: float = 10.0) -> np.ndarray:
    n = int(minutes * 60 / seconds_per_piece)
    length = int(seconds_per_piece * 16000)
    starts = np.linspace(0, len(audio) - length, n).astype(int)
    counts = np.zeros((codec.max_rows, codec.cfg.codebook_size), dtype=np.int64)  # one table per stage (+ pitch)
    for s in tqdm(starts, desc="counting codes"):
        x = torch.from_numpy(audio[s:s + length].astype(np.float32) / 32768.0)
        codes = codec.encode(x, codec.max_rows)[0].numpy()
        for t, row in zip(codec.row_tables(codec.max_rows), codes):
            counts[t] += np.bincount(row, minlength=codec.cfg.codebook_size)
    return counts


def fitted(path: str) -> Engine | None:
    """The weights at ``path`` with both entropy models fitted for them (``load_engine``), or None."""
    if not os.path.isfile(path):
        return None
    engine = load_engine(path)
    return engine if engine.entropy is not None and engine.context is not None else None


def carry_over(codec: Codec, old: Engine, out: str, data: str) -> None:
    """Ship ``old``'s entropy models for ``codec``, which makes the same codes, under its model id."""
    EntropyModel.save(out + ".entropy.npz", old.entropy.counts, codec.model_id)
    ctx = ContextModel(old.context.w, codec.model_id, old.context.pitch_from)
    codes, offsets = split_codes(codec, data, "train", limit=20)
    round_trip(ctx, codec, codes, offsets, range(len(offsets) - 1))
    ctx.save(out + ".context.npz")
    if old.searched is not None:  # (fitted on the earlier decoder's searched codes; fit_context.py --searched refits)
        save_searched(old.searched, ctx, out + ".searched.npz")
    print(f"the codes are {old.codec.model_id}'s: its entropy models carried over (context model {ctx.id.hex()})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="a train.py checkpoint (.pt), or the state folder a GPU run returned")
    p.add_argument("--out", default="audiocodec/weights/default", help="path prefix for .safetensors and .entropy.npz")
    p.add_argument("--minutes", type=float, default=20.0, help="audio counted for the per-stage tables")
    p.add_argument("--context-minutes", type=float, default=50.0, help="training time of the context model")
    p.add_argument("--data", default=DEFAULT_ROOT)
    p.add_argument("--pitch", default=None, metavar="CKPT",
                   help="a pitch tracker from scripts/train_pitch.py, or a codec's .safetensors to take its tracker from "
                        "(the shipped one's, say): the codec sends its pitch (audiocodec/model/pitch.py)")
    p.add_argument("--live", action="store_true",
                   help="ship the live weights of a run trained with --weight-ema rather than their moving average")
    p.add_argument("--codes-from", default=default_weights_path(), metavar="WEIGHTS",
                   help="weights whose entropy models are carried over if the new weights make exactly their codes "
                        "(default: the shipped model)")
    p.add_argument("--refit", action="store_true", help="fit the entropy models afresh even then")
    p.add_argument("--weights-only", action="store_true",
                   help="write the weights alone, no entropy models: a candidate to benchmark (its files and packets "
                        "are then coded at the fixed rate, so its kbps are the nominal ones)")
    a = p.parse_args()
    if a.weights_only and os.path.abspath(a.out) == os.path.abspath(default_weights_path()[:-len(".safetensors")]):
        sys.exit("error: --weights-only would leave the shipped weights without their entropy models: give --out")
    old = None if a.refit or a.weights_only else fitted(a.codes_from)  # read before --out may overwrite it
    torch.set_num_threads(max(1, torch.get_num_threads()))
    ck = load_checkpoint(a.checkpoint)
    model = Codec.from_checkpoint(ck, live=a.live)
    if a.pitch:
        tracker = (Codec.load(a.pitch).pitch.state_dict() if a.pitch.endswith(".safetensors")
                   else torch.load(a.pitch, map_location="cpu", weights_only=True)["tracker"])
        model = model.with_pitch_tracker(tracker)
    averaged = "averaged" in ck and not a.live
    weights = a.out + ".safetensors"
    meta = {"steps": ck["step"], "trained_on": "shared/data/speech train split",
            "weights": "average of checkpoints" if "mixed_from" in ck else "moving average" if averaged else "live"}
    model.save(weights, meta)
    codec = Codec.load(weights)  # reload: the float16 weights are what users run
    same = old is not None and codec.codes_like(old.codec)
    if same:  # the earlier model's files decode with these weights too (stream/engine.py, Engine.reads)
        model.save(weights, {**meta, SAME_CODES: ",".join((old.codec.model_id, *old.codec.same_codes_as))})
        codec = Codec.load(weights)
    kind = "averaged" if averaged else "live"
    print(f"wrote {weights} ({os.path.getsize(weights) / 1e6:.2f} MB, step {ck['step']}, {kind} weights, id {codec.model_id})")
    if a.weights_only:
        return
    if same:
        carry_over(codec, old, a.out, a.data)
        return
    audio, _ = load_split(a.data, "train")
    counts = count_codes(codec, audio, a.minutes)
    EntropyModel.save(a.out + ".entropy.npz", counts, codec.model_id)
    bits = EntropyModel(counts, codec.model_id).bits_per_code()
    print("entropy bits per code by stage:", " ".join(f"{b:.2f}" for b in bits[:codec.cfg.n_codebooks]))
    if codec.pitch is not None:
        print(f"entropy bits per pitch symbol: {bits[-1]:.2f}")
    torch.set_num_threads(1)
    ship_context(codec, weights, a.data, a.context_minutes)
    print(f"next, the searched codes' context model (about an hour): python scripts/fit_context.py --weights {weights} "
          "--searched 160")


if __name__ == "__main__":
    main()

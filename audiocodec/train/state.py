"""A training run's state: the weight average, where a run starts from (a checkpoint, or other weights), and the
checkpoint itself, as one ``ckpt.pt`` or as a folder of small safetensors shards (what a lent GPU machine can
return: at most 8 files of 16 MiB).

    python -m audiocodec.train.state runs/x/ckpt.pt OUT/state    # a checkpoint -> shards (train.py --resume reads either)
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os

import torch
from safetensors.torch import load_file, save_file

from ..model import Codec, CodecConfig

SHARD_BYTES = 15 * 2 ** 20
# shard precision: the live weights and the small parts stay float32; the weight average is stored in float16 and
# the generator's Adam moments in bfloat16 (a one-off rounding far below the int8 of shipped weights)
REDUCED = {"averaged": torch.float16, "opt_g": torch.bfloat16}


class WeightAverage:
    """An exponential moving average of a model's parameters (Polyak averaging): the average of the last
    ~1 / (1 - decay) steps' weights, which smooths out the noise of the last updates. Buffers (the RVQ's
    EMA codebooks) are the live model's own."""

    def __init__(self, model: torch.nn.Module, decay: float, state: dict | None = None):
        self.model, self.decay = model, decay
        self.avg = {k: p.detach().clone() for k, p in model.named_parameters()}
        for k, v in (state or {}).items():
            if k in self.avg:
                self.avg[k].copy_(v)

    @torch.no_grad()
    def update(self) -> None:
        names = [k for k, p in self.model.named_parameters() if p.requires_grad]
        live = dict(self.model.named_parameters())
        torch._foreach_lerp_([self.avg[k] for k in names], [live[k].detach() for k in names], 1.0 - self.decay)

    @torch.no_grad()
    def restart(self, prefix: str) -> None:
        """Forget the average of the parameters under ``prefix`` (after they were refitted)."""
        for k, p in self.model.named_parameters():
            if k.startswith(prefix):
                self.avg[k].copy_(p)

    def state_dict(self) -> dict:
        """The model's state dict with the averaged parameters in place of the live ones."""
        return {**self.model.state_dict(), **{k: v.clone() for k, v in self.avg.items()}}


@torch.no_grad()
def averaged_copy(model: Codec, average: WeightAverage) -> Codec:
    """A copy of the model holding the averaged weights (for validation)."""
    copy = Codec(model.cfg).to(next(model.parameters()).device)
    copy.load_state_dict(average.state_dict())
    return copy


def initial_weights(path: str, device: str = "cpu") -> tuple[CodecConfig, dict, int]:
    """``--init``: (architecture, weights, step) from a run's checkpoint or a shipped .safetensors. A run that
    kept a weight average continues from the average (what it validated and exported); a shipped codec leaves
    its sender's pitch tracker behind (``train_pitch.py --init`` trains that, and ``export.py --pitch`` adds it)."""
    if not path.endswith(".safetensors"):
        init = load_checkpoint(path, device)
        return CodecConfig.from_dict(init["config"]), init.get("averaged", init["model"]), init["step"]
    init = Codec.load(path)
    state = {k: v for k, v in init.state_dict().items() if not k.startswith("pitch.")}
    return dataclasses.replace(init.cfg, pitch_coded=False), state, int(Codec.metadata(path).get("steps", 0))


def with_head_window(cfg: CodecConfig, state: dict, window: int) -> tuple[CodecConfig, dict]:
    """``--head-fft``: weights whose decoder head (``ISTFTHead``, and the harmonic source framed like it) has another
    iSTFT window, so another latency (the window less the hop). The head's read-out rows (log-magnitude, phase
    advance, phase offset, one per bin) are carried over by frequency, linearly between the old bins, and the
    log-magnitudes shifted by log(new / old window), a steady tone's level in the new frame; the rest is unchanged,
    the codes too. The window must keep Hann x Hann summing to a constant: three or more windows over each sample."""
    old = cfg.head_window
    if window == old:
        return cfg, state
    if window % cfg.hop or window < 3 * cfg.hop:
        raise ValueError(f"a head window of {window} samples: it must be a multiple of the hop ({cfg.hop}) and cover "
                         f"at least three hops")
    ob, nb = old // 2 + 1, window // 2 + 1
    pos = torch.arange(nb, dtype=torch.float64) * (ob - 1) / (nb - 1)
    lo = pos.floor().long().clamp(max=ob - 2)
    state = dict(state)
    for name in ("head.out.weight", "head.out.bias"):
        rows = state[name].float().view(3, ob, *state[name].shape[1:])
        w = (pos - lo).float().view(1, -1, *[1] * (rows.dim() - 2))
        rows = rows[:, lo] * (1 - w) + rows[:, lo + 1] * w
        if name.endswith("bias"):
            rows[0] += math.log(window / old)
        state[name] = rows.reshape(3 * nb, *rows.shape[2:])
    return dataclasses.replace(cfg, head_fft=window), state


def save_checkpoint(state: dict, path: str) -> None:
    """torch.save, atomically (a run's process may die at any moment)."""
    torch.save(state, path + ".tmp")
    os.replace(path + ".tmp", path)


def load_checkpoint(path: str, device: str = "cpu") -> dict:
    """A checkpoint from a ``ckpt.pt`` (or any run's .pt) or from a folder of ``save_shards``."""
    if os.path.isdir(path):
        return load_shards(path, device)
    return torch.load(path, map_location=device, weights_only=False)


def _flatten(ck: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """A checkpoint -> (tensors by flat name, everything else as JSON-able metadata)."""
    tensors, meta = {}, {k: v for k, v in ck.items() if not isinstance(v, (dict, list))}
    meta.update(config=ck.get("config", {}), settings=ck.get("settings", {}))
    if "balancer" in ck:  # the loss balancer's running averages (floats)
        meta["balancer"] = ck["balancer"]
    for part in ("model", "averaged", "disc"):
        for k, v in ck.get(part, {}).items():
            tensors[f"{part}/{k}"] = v
    for i, st in enumerate(ck.get("ema", [])):
        tensors[f"ema/{i}/sum"], tensors[f"ema/{i}/count"] = st["sum"], st["count"]
    for part in ("opt_g", "opt_d"):
        if part in ck:
            meta[part] = ck[part]["param_groups"]
            for idx, slots in ck[part]["state"].items():
                for name, v in slots.items():
                    tensors[f"{part}/{idx}/{name}"] = v
    return tensors, meta


def save_shards(ck: dict, folder: str, shard_bytes: int = SHARD_BYTES) -> list[str]:
    """Write a checkpoint as ``state-NN.safetensors`` files of at most ``shard_bytes`` each (see REDUCED)."""
    tensors, meta = _flatten(ck)
    meta["dtypes"] = {k: str(v.dtype).removeprefix("torch.") for k, v in tensors.items()}
    shards, size = [{}], 0
    for k, v in tensors.items():
        v = v.detach().to("cpu", REDUCED.get(k.split("/")[0], v.dtype) if v.is_floating_point() else v.dtype).contiguous().clone()
        if size + v.nbytes > shard_bytes and shards[-1]:
            shards.append({})
            size = 0
        shards[-1][k], size = v, size + v.nbytes
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i, shard in enumerate(shards):
        paths.append(os.path.join(folder, f"state-{i:02d}.safetensors"))
        save_file(shard, paths[-1] + ".tmp", metadata={"meta": json.dumps(meta)} if i == 0 else None)
        os.replace(paths[-1] + ".tmp", paths[-1])
    return paths


def load_shards(folder: str, device: str = "cpu") -> dict:
    """``save_shards``' folder -> the checkpoint (tensors back in their saved dtypes)."""
    from safetensors import safe_open

    paths = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.startswith("state-") and f.endswith(".safetensors"))
    if not paths:
        raise FileNotFoundError(f"{folder}: no state-NN.safetensors")
    with safe_open(paths[0], framework="pt") as f:
        meta = json.loads(f.metadata()["meta"])
    dtypes = meta.pop("dtypes")
    ck = {k: v for k, v in meta.items() if k not in ("opt_g", "opt_d")}
    for path in paths:
        for k, v in load_file(path, device=device).items():
            part, *rest = k.split("/")
            v = v.to(getattr(torch, dtypes[k]))
            if part in ("model", "averaged", "disc"):
                ck.setdefault(part, {})[rest[0]] = v
            elif part == "ema":
                ema = ck.setdefault("ema", [])
                ema.extend({} for _ in range(int(rest[0]) + 1 - len(ema)))
                ema[int(rest[0])][rest[1]] = v
            else:
                ck.setdefault(part, {"state": {}, "param_groups": meta[part]})["state"].setdefault(int(rest[0]), {})[rest[1]] = v
    for part in ("opt_g", "opt_d"):
        if part in meta:
            ck.setdefault(part, {"state": {}, "param_groups": meta[part]})
    return ck


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="a train.py checkpoint (.pt)")
    p.add_argument("folder", help="where to write state-NN.safetensors")
    a = p.parse_args()
    for path in save_shards(load_checkpoint(a.checkpoint), a.folder):
        print("wrote", path, os.path.getsize(path))


if __name__ == "__main__":
    main()

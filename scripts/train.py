"""Train the audiocodec model. Reads top to bottom: settings, data, model, loop.

    python scripts/train.py --out runs/main                # CPU, resumes from runs/main/ckpt.pt if present
    python scripts/train.py --out runs/main --device cuda  # same on a GPU
    python scripts/export.py runs/main/best.pt             # ship weights + entropy model

Each step draws random 1 s crops of the train split, keeps 3/6/12/24 codebooks per clip (quantizer
dropout), and minimises a multi-scale log-mel loss + L1 of loudness-compressed STFT magnitudes
(``--cmag-weight``) + RVQ commitment + the harmonic head's pitch error against a pitch tracker (WORLD
Harvest, cached once: ``pip install -e '.[train]'``). Every ``--eval-every`` steps it measures PESQ-WB, STOI
and the level of the first 50 ms (a burst there once gamed PESQ) at 1.5, 6 and 12 kbps on fixed test clips;
it writes a resumable checkpoint then and every ``--save-every`` steps. A resumed run keeps the settings it
was started with (its learning-rate schedule above all) unless given again.

The shipped model's exact command is in the README's model card. Most options below are experiments that
did not earn their place and stay off by default; each says what it did here, and docs/training-log.md has
the measurements, session by session.
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import math
import os
import sys
import time
import tokenize
from dataclasses import dataclass

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from audiocodec.dataset import DEFAULT_ROOT, F0_HOP, clip_sources, excerpts, load_f0, load_split, pitch_targets  # noqa: E402
from audiocodec.discriminators import MultiResolutionDiscriminator, discriminator_loss, generator_losses  # noqa: E402
from audiocodec.losses import ComplexSTFTLoss, CompressedMagnitudeLoss, MultiScaleMelLoss, PeriodicityLoss, QuietMelLoss  # noqa: E402
from audiocodec.model import BITRATES, Codec, CodecConfig  # noqa: E402
from audiocodec.model.pitch import dequantize, frame_symbols  # noqa: E402
from audiocodec.perceptual_losses import PesqLoss, StoiLoss  # noqa: E402


@dataclass
class Settings:
    out: str = "runs/main"      # run folder: ckpt.pt (resumable), best.pt, log.jsonl
    data: str = DEFAULT_ROOT     # the speech corpus: trains on its train split, validates on test ($AUDIOCODEC_DATA)
    device: str = "cuda" if torch.cuda.is_available() else "cpu"  # cuda when present
    threads: int = 2             # torch CPU threads
    batch: int = 16              # crops per step
    seconds: float = 1.0         # length of each crop
    source_weights: str = ""     # e.g. speech_commands=3: crops drawn from that corpus's clips 3x as often per second of audio (3x for 2,000 steps: no gain; off)
    steps: int = 60000           # total steps of the schedule (resume continues towards it)
    lr: float = 7e-4             # peak AdamW learning rate
    warmup: int = 500            # linear warm-up steps, then cosine decay over the rest of --steps
    min_lr_frac: float = 0.05    # ... down to this fraction of --lr
    commit_weight: float = 0.25  # RVQ commitment loss (the encoder stays near its codes)
    adv_start: int = 1_000_000   # step at which the discriminators join; off by default: on 2 CPU cores they lowered PESQ
    adv_weight: float = 1.0      # ... their hinge loss
    fm_weight: float = 2.0       # ... their feature-matching loss
    mel_weight: float = 30.0     # multi-scale log-mel L1 (losses.MultiScaleMelLoss)
    cmag_weight: float = 150.0   # L1 of STFT magnitudes ** 0.3 (losses.CompressedMagnitudeLoss): lifted PESQ by ~0.07
    cmag_excess: float = 1.0     # ... in which magnitude the output adds weighs this many times what it lacks, as in PESQ's asymmetric term (2: lower PESQ; off)
    phase_weight: float = 0.0    # complex-STFT loss (tried for 500 steps: no gain; off)
    quiet_weight: float = 0.0    # extra log-mel L1 on the input's quiet frames (losses.QuietMelLoss; 30: the loss barely fell, no gain; off)
    pesq_weight: float = 0.0     # differentiable PESQ-WB approximation (perceptual_losses.PesqLoss); off: it lowered real PESQ
    stoi_weight: float = 0.0     # 1 - a differentiable STOI (perceptual_losses.StoiLoss); off: no gain in STOI seen
    periodicity_weight: float = 0.0  # losses.PeriodicityLoss: as periodic below 1 kHz as the input on voiced frames (10: no PESQ gain; off)
    freeze_encoder: bool = False  # train only the quantizer and decoder side and the encoder's spectral branch (SEANet's backward is skipped)
    latent_cache: bool = False   # ... and read its latents from one pass over the split (a further 30 % faster)
    dec_blocks: int = 12         # at least this many decoder blocks; those the --init weights lack are appended near-identity
    voicing_bands: int = 16      # at least this many voicing bands (> 1: voicing per mel band; offsets start at zero)
    vq_gain: bool = True         # RVQ codes keep their length (quantizer.py); from unit-code --init weights the codebooks are seeded afresh
    spectral: bool = False       # the encoder's spectral branch (encoder.SpectralBranch); added at zero to --init weights without it
    spectral_join: int = 0       # ... joining the RVQ residual before this stage (3: the 1.5 kbps stages never see it); weights with a branch keep theirs
    pitch_input: bool = False    # the decoder backbone also hears the sent pitch (decoder.PitchInput; needs --sent-pitch; added at zero to --init weights without it)
    pitch_source: bool = True    # harmonic excitation at a predicted pitch (the shipped model up to step 12,250 had none)
    f0_weight: float = 50.0      # L1 of the predicted pitch in octaves, on voiced frames
    voicing_weight: float = 5.0  # binary cross-entropy of the predicted voicing
    teacher_until: int = 2000    # before this step the excitation follows the tracker's pitch, not the predicted one
    sent_pitch: str = ""         # a pitch track of the train split (train_pitch.py's train-f0.npy, or "harvest"): clips of at
                                 # least pitch_from rows are decoded as a pitch-coded stream, one stage fewer, the
                                 # excitation at that pitch as the stream sends it (model/pitch.py's 8-bit code);
                                 # validation sends the pitch of the tracker saved beside the track, if one is
    nq_weights: str = "1,1,1,1"  # quantizer dropout: relative odds of keeping 3, 6, 12, 24 stages (1.5, 3, 6, 12 kbps)
    reseed_every: int = 0        # every this many steps, seed the RVQ stages afresh on 256 new crops (0: never)
    reseed_from: int = 3         # ... from this stage on (0-based): the first three (1.5 kbps) keep what they learned
    eval_every: int = 500        # validate (PESQ-WB, STOI at 1.5/6/12 kbps) and checkpoint this often; best.pt keeps the best at 6 kbps
                                 # (0: never, e.g. where pesq is not installed)
    keep_every: int = 0          # also keep a copy of the checkpoint every this many steps (stepN.pt; 0: none)
    save_every: int = 250        # write ckpt.pt this often too (a run's process may die at any moment)
    eval_clips: int = 12         # fixed test clips for that validation
    log_every: int = 50          # a line of losses in log.jsonl this often
    seed: int = 0                # random seed (crops, dropout)
    init: str = ""               # with no checkpoint yet: start from these weights (shipped .safetensors or a run's .pt)
    init_step: int = 0           # ... and continue the schedule from this step (default: the step stored in the file),
                                 # the learning rate ramping up over --warmup steps from there (Adam starts afresh)
    freeze_codes: bool = False   # train the decoder side only: encoder (spectral branch too) and quantizer frozen, so every
                                 # stream keeps the codes of the --init weights (and their entropy model)
    pack: str = ""               # read the train split, pitch tracks and validation clips from this file (scripts/pack_data.py)
                                 # instead of --data: for a machine without the corpus (a lent GPU; --sent-pitch pack)
    weight_ema: float = 0.0      # also keep an exponential moving average of the weights with this decay (0.999:
                                 # over about 1,000 steps); validated, saved and exported in place of the live weights,
                                 # and --init from a run's .pt starts from its average if it kept one


def as_sent(n_q: torch.Tensor, f0: torch.Tensor, pitch_from: int, teacher: torch.Tensor | None = None):
    """``--sent-pitch``: rows per clip (B,) and the tracker's pitch (B, J) -> (RVQ stages per clip, the pitch
    that drives the excitation (B, J), 0 = the predicted one, the pitch sent (B, J), zeros for the clips
    that send none, and which clips send it (B,) bool). Clips of at least ``pitch_from`` rows give a row to
    the pitch, which arrives through the 8-bit code, one value per 20 ms (model/pitch.py)."""
    sent = n_q >= pitch_from
    coded = torch.where(sent[:, None], dequantize(frame_symbols(f0)), torch.zeros_like(f0))
    drive = coded if teacher is None else torch.where(coded > 0, coded, teacher)
    return n_q - sent.long(), drive, coded, sent


def initial_weights(path: str, device: str = "cpu") -> tuple[CodecConfig, dict, int]:
    """``--init``: (architecture, weights, step) from a run's .pt or a shipped .safetensors. A run that kept a
    weight average continues from the average (what it validated and exported); a shipped codec leaves its
    sender's pitch tracker behind (``train_pitch.py --init`` trains that, and ``export.py --pitch`` adds it)."""
    if path.endswith(".pt"):
        init = torch.load(path, map_location=device, weights_only=False)
        return CodecConfig.from_dict(init["config"]), init.get("averaged", init["model"]), init["step"]
    init = Codec.load(path)
    state = {k: v for k, v in init.state_dict().items() if not k.startswith("pitch.")}
    return dataclasses.replace(init.cfg, pitch_coded=False), state, int(Codec.metadata(path).get("steps", 0))


MACHINE = ("device", "threads")  # settings of the machine, not of the run: a resumed run does not inherit them


def option_help() -> dict[str, str]:
    """Each setting's comment in the class above (a comment-only line goes on with the setting above it)."""
    helps, name, last = {}, None, None
    for tok in tokenize.generate_tokens(iter(inspect.getsourcelines(Settings)[0]).__next__):
        if tok.type == tokenize.NAME and tok.start[1] == 4 and name is None:
            name = last = tok.string
        elif tok.type == tokenize.COMMENT and last:
            helps[last] = (helps.get(last, "") + " " + tok.string.lstrip("# ").replace("%", "%%")).strip()
        elif tok.type == tokenize.NEWLINE:
            name = None
    return helps


def parse() -> tuple[Settings, dict | None]:
    """Settings and the run's checkpoint, if any. A resumed run keeps the settings it was started with
    (its learning-rate schedule above all), except those given on this command line and MACHINE's."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    helps = option_help()
    for f in dataclasses.fields(Settings):
        kind = (lambda v: v.lower() in ("1", "true", "yes")) if isinstance(f.default, bool) else type(f.default)
        p.add_argument("--" + f.name.replace("_", "-"), type=kind, default=argparse.SUPPRESS,
                       help=f"{helps.get(f.name, '')} (default: {f.default})".lstrip())
    given = vars(p.parse_args())
    path = os.path.join(given.get("out", Settings.out), "ckpt.pt")
    ck = torch.load(path, map_location="cpu", weights_only=False) if os.path.exists(path) else None
    known = {f.name for f in dataclasses.fields(Settings)} - set(MACHINE)
    saved = {k: v for k, v in (ck or {}).get("settings", {}).items() if k in known}
    return Settings(**{**saved, **given}), ck


def lr_at(step: int, s: Settings, ramp_from: int = 0) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_frac``; a run started from other weights at a later step
    (``ramp_from``) ramps up to the schedule's rate over ``warmup`` steps, as its optimizer starts afresh."""
    if step < s.warmup:
        return s.lr * (step + 1) / s.warmup
    t = min(1.0, (step - s.warmup) / max(1, s.steps - s.warmup))
    ramp = min(1.0, (step - ramp_from + 1) / s.warmup) if ramp_from else 1.0
    return ramp * s.lr * (s.min_lr_frac + (1 - s.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * t)))


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


def clip_odds(weights: str, sources: list[str], offsets: np.ndarray, total: int) -> tuple[np.ndarray, ...] | None:
    """``--source-weights`` ("speech_commands=3,ljspeech=0.5"; others 1) -> (clip offsets, clip lengths, each
    clip's odds of holding a crop's start: its length times its source's weight), or None for "" (uniform)."""
    if not weights:
        return None
    factor = {}
    for item in weights.split(","):
        name, _, value = item.partition("=")
        name = name.strip()
        try:
            factor[name] = float(value)
        except ValueError:
            sys.exit(f"--source-weights: {item!r} is not SOURCE=WEIGHT")
        if name not in sources or not 0 <= factor[name] < 1e6:
            sys.exit(f"--source-weights: {item!r} needs one of {sorted(set(sources))} and a weight >= 0")
    lengths = np.diff(np.append(offsets, total))
    odds = lengths * np.array([factor.get(src, 1.0) for src in sources])
    if odds.sum() <= 0:
        sys.exit("--source-weights: every clip has weight 0")
    return offsets, lengths, odds / odds.sum()


def crop_starts(n: int, length: int, total: int, rng: np.random.Generator, mix: tuple | None = None) -> np.ndarray:
    """n crop starts on the pitch track's grid (F0_HOP samples): uniform over the split, or, given ``clip_odds``,
    first a clip by its odds, then a start inside it (the crop may run on into the next clips, as uniform ones do)."""
    last = (total - length) // F0_HOP - 1
    if mix is None:
        return rng.integers(0, last + 1, n) * F0_HOP
    offsets, lengths, odds = mix
    pick = rng.choice(len(odds), n, p=odds)
    starts = offsets[pick] + (rng.random(n) * lengths[pick]).astype(np.int64)
    return np.minimum(starts // F0_HOP, last) * F0_HOP


def batch_of_crops(audio: np.ndarray, n: int, length: int, rng: np.random.Generator,
                   f0: np.ndarray | None = None, mix: tuple | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """n random crops (n, 1, length) and, given the split's pitch track, their ``pitch_targets``; ``mix``
    (``clip_odds``) weighs the corpora."""
    starts = crop_starts(n, length, len(audio), rng, mix)
    x = np.stack([audio[s:s + length] for s in starts]).astype(np.float32) / 32768.0
    gain = 10 ** (rng.uniform(-12, 4, (n, 1)) / 20)        # level augmentation
    wav = torch.from_numpy(np.clip(x * gain, -1, 1).astype(np.float32))[:, None]
    return wav, None if f0 is None else torch.from_numpy(pitch_targets(f0, starts, length))


GAINS_DB = (-12.0, -4.0, 4.0)  # levels of the frozen encoder's precomputed latents (--latent-cache)


@torch.no_grad()
def encode_split(model: Codec, audio: np.ndarray, out: str, device: str, chunk: int = 160000) -> torch.Tensor:
    """--latent-cache: the frozen encoder's latents of the whole split at each of GAINS_DB, computed once
    (10 s chunks, cached in ``out`` under a hash of the encoder) -> (gains, latent_dim, frames) float16."""
    import hashlib

    from tqdm import tqdm

    seanet = [p for n, p in model.encoder.named_parameters() if not n.startswith("spectral.")]
    key = hashlib.sha256(b"".join(p.detach().cpu().numpy().tobytes() for p in seanet)).hexdigest()[:16]
    cache = os.path.join(out, f"latents-{key}.pt")
    if os.path.exists(cache):
        return torch.load(cache)
    n, was_training = len(audio) // chunk * chunk, model.training
    model.eval()
    z = []
    for gain in GAINS_DB:
        parts = []
        for s in tqdm(range(0, n, 8 * chunk), desc=f"latents at {gain:+g} dB"):
            x = np.clip(audio[s:min(n, s + 8 * chunk)].reshape(-1, 1, chunk) / 32768.0 * 10 ** (gain / 20), -1, 1)
            y = model.encoder.waveform(torch.from_numpy(x.astype(np.float32)).to(device))  # (8, latent, frames)
            parts.append(y.transpose(0, 1).reshape(y.shape[1], -1).half().cpu())
        z.append(torch.cat(parts, 1))
    model.train(was_training)
    z = torch.stack(z)
    torch.save(z, cache + ".tmp")
    os.replace(cache + ".tmp", cache)
    return z


def batch_of_latents(audio: np.ndarray, z: torch.Tensor, n: int, length: int, rng: np.random.Generator,
                     f0: np.ndarray | None, frame: int = 320):
    """Like batch_of_crops, from precomputed latents: (wav (n, 1, length), pitch targets or None, latents)."""
    frames = length // frame
    starts = rng.integers(0, z.shape[-1] - frames, n)
    gains = rng.integers(0, len(GAINS_DB), n)
    x = np.stack([audio[s * frame:s * frame + length] for s in starts]).astype(np.float32) / 32768.0
    x = np.clip(x * 10 ** (np.array(GAINS_DB)[gains, None] / 20), -1, 1).astype(np.float32)
    lat = torch.stack([z[g, :, s:s + frames] for g, s in zip(gains, starts)]).float()
    targets = None if f0 is None else torch.from_numpy(pitch_targets(f0, starts * frame, length))
    return torch.from_numpy(x)[:, None], targets, lat


@torch.no_grad()
def averaged_copy(model: Codec, average: WeightAverage) -> Codec:
    """A copy of the model holding the averaged weights (for validation)."""
    copy = Codec(model.cfg).to(next(model.parameters()).device)
    copy.load_state_dict(average.state_dict())
    return copy


def tracker_beside(sent_pitch: str) -> dict | None:
    """``--sent-pitch runs/X/train-f0.npy`` -> the weights of the tracker that wrote it (``runs/X/ckpt.pt``
    of ``scripts/train_pitch.py``), or None (``harvest``, or no checkpoint there)."""
    path = os.path.join(os.path.dirname(sent_pitch), "ckpt.pt")
    if not sent_pitch or sent_pitch == "harvest" or not os.path.isfile(path):
        return None
    return torch.load(path, map_location="cpu", weights_only=True)["tracker"]


@torch.no_grad()
def evaluate(model: Codec, clips: list[np.ndarray], tracker: dict | None = None) -> dict:
    """Validation: code usage, and PESQ-WB / STOI at 1.5, 6 and 12 kbps on ``clips``. With ``tracker``
    (``tracker_beside``) the streams from ``pitch_from`` rows up send its pitch, as the exported codec's do."""
    from pesq import pesq
    from pystoi import stoi

    model.eval()
    coder = model if tracker is None else model.with_pitch_tracker(tracker).to(model.device)
    out = {}
    codes = model.encode(torch.from_numpy(np.concatenate(clips)), model.cfg.n_codebooks)[0]
    for i in (0, 11, 23):  # code usage: perplexity of stages 1, 12, 24 (1024 = all codes used evenly)
        p = torch.bincount(codes[i], minlength=model.cfg.codebook_size).float()
        p = p[p > 0] / p.sum()
        out[f"ppl{i + 1}"] = round(float(torch.exp(-(p * p.log()).sum())), 1)
    power_db = lambda v: 10 * np.log10(np.mean(np.square(v[:800])) + 1e-10)
    for kbps in (1.5, 6.0, 12.0):
        scores, intelligibility, start = [], [], []
        for x in clips:
            y = coder.decode(coder.encode(torch.from_numpy(x), BITRATES[kbps]))[0, 0, : len(x)].cpu().numpy()
            start.append(power_db(y) - power_db(x))  # a burst at the start once gamed PESQ: watch for it
            try:
                scores.append(pesq(16000, x, y, "wb"))
            except Exception:
                pass
            intelligibility.append(stoi(x, y, 16000))
        out[f"pesq@{kbps:g}"] = float(np.mean(scores)) if scores else float("nan")
        out[f"stoi@{kbps:g}"] = round(float(np.mean(intelligibility)), 4)
        out[f"start_db@{kbps:g}"] = round(float(np.median(start)), 1)
    model.train()
    return out


def main() -> None:
    s, ck = parse()
    if s.pitch_input and not s.sent_pitch:
        sys.exit("error: --pitch-input true needs --sent-pitch (the decoder can only hear a pitch that is sent)")
    if s.source_weights and s.freeze_encoder and s.latent_cache:
        sys.exit("error: --source-weights draws waveform crops; the latent cache (--latent-cache) draws its own")
    torch.manual_seed(s.seed)
    torch.set_num_threads(s.threads)
    if s.device.startswith("cuda"):  # TF32 matrix products, and the fastest convolution algorithms for these fixed shapes
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = torch.backends.cudnn.benchmark = True
    os.makedirs(s.out, exist_ok=True)
    ckpt_path = os.path.join(s.out, "ckpt.pt")

    # the architecture: a resumed checkpoint's own; else the --init weights', grown to at least --dec-blocks
    # and --voicing-bands (the new parts start near identity); else the defaults
    cfg, init_state, init_step = CodecConfig(pitch_source=s.pitch_source, vq_gain=s.vq_gain, enc_spectral=s.spectral), None, 0
    if ck is not None:
        cfg = CodecConfig.from_dict(ck["config"]) if "config" in ck else cfg
    elif s.init:
        cfg, init_state, init_step = initial_weights(s.init, s.device)
    init_cfg_gain = cfg.vq_gain
    if ck is None:
        cfg = dataclasses.replace(cfg, dec_blocks=max(cfg.dec_blocks, s.dec_blocks),
                                  voicing_bands=max(cfg.voicing_bands, s.voicing_bands), vq_gain=cfg.vq_gain or s.vq_gain,
                                  pitch_input=cfg.pitch_input or s.pitch_input,
                                  enc_spectral=cfg.enc_spectral or s.spectral,
                                  spectral_join=cfg.spectral_join if cfg.enc_spectral else s.spectral_join)  # a trained branch keeps its place

    model = Codec(cfg).to(s.device)
    disc = MultiResolutionDiscriminator().to(s.device)
    mel_loss = MultiScaleMelLoss().to(s.device)
    # optional reconstruction terms, built only when switched on: log name -> (weight, loss)
    extra = {name: (weight, make().to(s.device)) for name, weight, make in (
        ("cmag", s.cmag_weight, lambda: CompressedMagnitudeLoss(excess=s.cmag_excess)), ("cplx", s.phase_weight, ComplexSTFTLoss),
        ("quiet", s.quiet_weight, QuietMelLoss), ("pesq_loss", s.pesq_weight, PesqLoss), ("stoi_loss", s.stoi_weight, StoiLoss)) if weight}
    rho_loss = PeriodicityLoss().to(s.device) if s.periodicity_weight and s.pitch_source else None
    opt_g = torch.optim.AdamW(model.parameters(), lr=s.lr, betas=(0.8, 0.99), weight_decay=1e-4)
    opt_d = torch.optim.AdamW(disc.parameters(), lr=s.lr, betas=(0.8, 0.99), weight_decay=1e-4)
    step, best, ramp_from = 0, -1.0, 0
    if ck is not None:
        model.load_state_dict(ck["model"]), opt_g.load_state_dict(ck["opt_g"])
        try:
            disc.load_state_dict(ck["disc"]), opt_d.load_state_dict(ck["opt_d"])
        except (RuntimeError, ValueError, KeyError):
            print("discriminator in the checkpoint has another shape: starting it afresh")
        for stage, st in zip(model.quantizer.stages, ck["ema"]):
            stage.ema_sum.copy_(st["sum"]), stage.ema_count.copy_(st["count"]), stage.initialized.fill_(True)
        step, best, ramp_from = ck["step"], ck.get("best", -1.0), ck.get("ramp_from", 0)
        print(f"resumed from {ckpt_path} at step {step}")
    elif init_state is not None:  # carry training over from other weights
        missing, _ = model.load_state_dict(init_state, strict=False)
        if missing:
            print("not in the init weights, starting afresh:", ", ".join(sorted({'.'.join(k.split('.')[:3]) for k in missing})))
        reseed = model.cfg.vq_gain and not init_cfg_gain  # unit codes mean nothing to a gain quantizer
        for stage in model.quantizer.stages:
            stage.ema_sum.copy_(stage.codebook), stage.initialized.fill_(not reseed)
        step = ramp_from = s.init_step or init_step
        print(f"initialised from {s.init}, schedule continues at step {step}")

    if s.freeze_codes:  # nothing before the quantized latent learns, nor do the codebooks (held in eval mode below)
        model.encoder.requires_grad_(False), model.quantizer.requires_grad_(False)
    elif s.freeze_encoder:  # no gradient reaches the SEANet convolutions, so autograd skips their (costly, 16 kHz) backward
        model.encoder.requires_grad_(False)
        if model.encoder.spectral is not None:
            model.encoder.spectral.requires_grad_(True)
    average = WeightAverage(model, s.weight_ema, (ck or {}).get("averaged")) if s.weight_ema else None
    print(f"model: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M params; settings: {json.dumps(dataclasses.asdict(s))}")
    if s.pack:  # everything below from one file (scripts/pack_data.py)
        pack = np.load(s.pack)
        if s.sent_pitch and "sent_f0" not in pack.files:
            sys.exit(f"error: {s.pack} holds no sent pitch track (pack_data.py --sent-pitch): drop --sent-pitch")
        audio, offsets = pack["audio"], pack["offsets"]
        f0 = pack["f0"] if s.pitch_source else None
        if s.sent_pitch:  # any value: the pack's
            f0 = np.stack([f0, pack["sent_f0"]], -1)
        tracker = {k[len("tracker."):]: torch.from_numpy(pack[k]) for k in pack.files if k.startswith("tracker.")} or None
        bounds = np.append(pack["val_offsets"], len(pack["val"]))
        clips = [pack["val"][a:b].astype(np.float32) / 32768.0 for a, b in zip(bounds[:-1], bounds[1:])][:s.eval_clips]
    else:
        audio, offsets = load_split(s.data, "train")
        f0 = load_f0(s.data, "train") if s.pitch_source else None
        if s.sent_pitch:  # row 0: the decoder's pitch targets; row 1: the pitch a pitch-coded stream would send
            f0 = np.stack([f0, f0 if s.sent_pitch == "harvest" else np.load(s.sent_pitch)[:len(f0)]], -1)
        tracker = tracker_beside(s.sent_pitch)  # validate pitch streams as they will be sent; None: no pitch row
        clips = excerpts(s.data, "test", s.eval_clips)  # fixed validation material: the first 4 s of each
    mix = clip_odds(s.source_weights, clip_sources(s.data, "train") if s.source_weights else [], offsets, len(audio))
    if tracker is not None:
        print(f"validation: streams of {model.cfg.pitch_from} rows or more send the pitch of the tracker beside {s.sent_pitch}")
    rng = np.random.default_rng(s.seed + step)
    length = int(s.seconds * 16000) // model.cfg.frame_size * model.cfg.frame_size
    choices = torch.tensor(sorted(BITRATES.values()))
    try:
        odds = torch.tensor([float(w) for w in s.nq_weights.split(",")])
    except ValueError:
        odds = torch.tensor([])
    if len(odds) != len(choices) or (odds < 0).any() or odds.sum() <= 0:
        sys.exit(f"--nq-weights needs {len(choices)} non-negative numbers separated by commas, one per bitrate")
    latents = encode_split(model, audio, s.out, s.device) if s.freeze_encoder and s.latent_cache else None

    def save(tag: str = "ckpt.pt") -> None:
        ema = [{"sum": st.ema_sum, "count": st.ema_count} for st in model.quantizer.stages]
        state = {"model": model.state_dict(), "config": dataclasses.asdict(model.cfg), "disc": disc.state_dict(), "opt_g": opt_g.state_dict(),
                 "opt_d": opt_d.state_dict(), "ema": ema, "step": step, "best": best, "ramp_from": ramp_from,
                 "settings": dataclasses.asdict(s)}
        if average is not None:  # what export.py ships by default
            state["averaged"] = average.state_dict()
        torch.save(state, os.path.join(s.out, tag + ".tmp"))
        os.replace(os.path.join(s.out, tag + ".tmp"), os.path.join(s.out, tag))

    if not all(bool(st.initialized) for st in model.quantizer.stages):  # seed the codebooks by k-means on a large batch
        with torch.no_grad():
            model.train()
            model(batch_of_crops(audio, 128, length, rng)[0].to(s.device), torch.full((128,), model.cfg.n_codebooks))

    def to_train() -> None:
        model.train()
        if s.freeze_codes:  # the quantizer's EMA codebooks and dead-code restarts only run in train mode
            model.encoder.eval(), model.quantizer.eval()

    log = open(os.path.join(s.out, "log.jsonl"), "a")
    t0, acc = time.time(), {}
    to_train()
    while step < s.steps:
        if s.reseed_every and step % s.reseed_every == 0:  # the stages back onto the moving latent's axes
            with torch.no_grad():
                crops = batch_of_crops(audio, 256, length, rng)[0].to(s.device)
                z, late = zip(*(model.encoder.parts(c) for c in crops.split(64)))
                model.quantizer.reseed(torch.cat(z), s.reseed_from, None if late[0] is None else torch.cat(late))
            for i, stage in enumerate(model.quantizer.stages[s.reseed_from:], s.reseed_from):
                for p in stage.parameters():  # Adam's moments, and the average, belong to the old projections
                    opt_g.state.pop(p, None)
                if average is not None:
                    average.restart(f"quantizer.stages.{i}.")
            print(f"step {step}: quantizer reseeded", flush=True)
        lr = lr_at(step, s, ramp_from)
        for g in opt_g.param_groups + opt_d.param_groups:
            g["lr"] = lr
        if latents is None:
            x, f0_target = batch_of_crops(audio, s.batch, length, rng, f0, mix)
        else:
            x, f0_target, z = batch_of_latents(audio, latents, s.batch, length, rng, f0)
        x, f0_target = x.to(s.device), f0_target.to(s.device) if f0_target is not None else None
        n_q = choices[torch.multinomial(odds, s.batch, replacement=True)].to(s.device)
        teacher = f0_target if step < s.teacher_until else None
        sent_f0 = sent = None
        if s.sent_pitch:
            f0_target, track = f0_target[..., 0], f0_target[..., 1]
            teacher = teacher if teacher is None else teacher[..., 0]
            n_q, teacher, sent_f0, sent = as_sent(n_q, track, model.cfg.pitch_from, teacher)
        if latents is None:
            x_hat, q, f0_hat = model(x, n_q, teacher, sent_f0, sent)
        else:  # the frozen encoder's latents were computed once, at the start
            z = z.to(s.device)
            q = model.quantizer(z, n_q, None if model.encoder.spectral is None else model.encoder.spectral(x))
            x_hat, f0_hat = model.synthesize(model.features(q.z_q, sent_f0, sent), teacher)
        adv_on = step >= s.adv_start

        if adv_on:  # discriminator step
            d_loss = discriminator_loss(disc(x), disc(x_hat.detach()))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            acc["d"] = acc.get("d", 0.0) + d_loss.item()

        mel = mel_loss(x_hat, x)
        loss = s.mel_weight * mel + s.commit_weight * q.commit_loss
        for name, (weight, term) in extra.items():
            value = term(x_hat, x)
            loss = loss + weight * value
            acc[name] = acc.get(name, 0.0) + value.item()
        if rho_loss is not None:
            rho = rho_loss(x_hat, x, f0_target)
            loss = loss + s.periodicity_weight * rho
            acc["rho"] = acc.get("rho", 0.0) + rho.item()
        if adv_on:
            adv, fm = generator_losses(disc(x), disc(x_hat))
            loss = loss + s.adv_weight * adv + s.fm_weight * fm
            acc["adv"], acc["fm"] = acc.get("adv", 0.0) + adv.item(), acc.get("fm", 0.0) + fm.item()
        if f0_hat is not None:
            f0_hat, voicing = f0_hat
            voiced = f0_target > 0
            pitch = (torch.log2(f0_hat) - torch.log2(f0_target.clamp(min=1.0))).abs()[voiced].mean() if voiced.any() else f0_hat.sum() * 0
            bce = torch.nn.functional.binary_cross_entropy_with_logits(voicing, voiced.float())
            loss = loss + s.f0_weight * pitch + s.voicing_weight * bce
            acc["f0_oct"], acc["voicing"] = acc.get("f0_oct", 0.0) + pitch.item(), acc.get("voicing", 0.0) + bce.item()
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt_g.step()
        if average is not None:
            average.update()
        step += 1
        acc["mel"] = acc.get("mel", 0.0) + mel.item()
        acc["commit"] = acc.get("commit", 0.0) + q.commit_loss.item()

        if step % s.log_every == 0:
            rec = {k: round(v / s.log_every, 4) for k, v in acc.items()}
            rec.update(step=step, lr=round(lr, 7), sec_per_step=round((time.time() - t0) / s.log_every, 3))
            print(json.dumps(rec), flush=True)
            log.write(json.dumps(rec) + "\n"), log.flush()
            t0, acc = time.time(), {}
        if s.keep_every and step % s.keep_every == 0:
            save(f"step{step}.pt")
        if s.eval_every and (step % s.eval_every == 0 or step == s.steps):
            res = evaluate(model if average is None else averaged_copy(model, average), clips, tracker)
            to_train()
            res["step"] = step
            print("eval", json.dumps(res), flush=True)
            log.write(json.dumps({"eval": res}) + "\n"), log.flush()
            save()
            if res["pesq@6"] > best:
                best = res["pesq@6"]
                save("best.pt")
            t0 = time.time()
        elif step % s.save_every == 0 or step == s.steps:
            save()


if __name__ == "__main__":
    main()

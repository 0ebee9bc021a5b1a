"""Train the audiocodec model. Reads top to bottom: settings, machine, model, data, step, loop.

    python scripts/train.py --out runs/main                # CPU, resumes from runs/main/ckpt.pt if present
    python scripts/train.py --out runs/main --device cuda  # same on a GPU (bf16 autocast)
    torchrun --nproc-per-node 8 scripts/train.py ...       # several GPUs (DistributedDataParallel)
    python scripts/export.py runs/main/best.pt             # ship weights + entropy model

Each step draws random 1 s crops of the train split, keeps 3/6/12/24 codebooks per clip (quantizer
dropout), and minimises a multi-scale log-mel loss + L1 of loudness-compressed STFT magnitudes
(``--cmag-weight``) + RVQ commitment + the harmonic head's pitch error against a pitch tracker (WORLD
Harvest, cached once: ``pip install -e '.[train]'``), and, from ``--adv-start``, the hinge and
feature-matching losses of the multi-period and multi-scale STFT discriminators, scaled by a loss balancer.
Every ``--eval-every`` steps it measures PESQ-WB, STOI and the level of the first 50 ms at 1.5, 6 and 12
kbps on fixed test clips (audiocodec/train/validate.py); it writes a resumable checkpoint then and every ``--save-every`` steps. A resumed run keeps the settings it was started with (its
learning-rate schedule above all) unless given again.

The shipped model's exact command is in the README's model card; docs/training-log.md has the measurements
behind each option and the experiments that did not earn one.
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
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from audiocodec.model import Codec, CodecConfig
from audiocodec.stream.modes import modes
from audiocodec.model.pitch import dequantize, frame_symbols
from audiocodec.train.crops import batch_of_crops, batch_of_latents, encode_split
from audiocodec.train.dataset import DEFAULT_ROOT, excerpts, load_f0, load_split
from audiocodec.train.balancer import Balancer
from audiocodec.train.discriminators import Discriminators, discriminator_loss, generator_losses
from audiocodec.train.losses import CompressedMagnitudeLoss, MultiScaleMelLoss
from audiocodec.train.pack import read_pack
from audiocodec.train.state import (WeightAverage, averaged_copy, initial_weights, load_checkpoint,
                                    save_checkpoint, with_head_window)
from audiocodec.train.validate import evaluate, tracker_beside


@dataclass
class Settings:
    out: str = "runs/main"      # run folder: ckpt.pt (resumable), best.pt, log.jsonl
    data: str = DEFAULT_ROOT     # the speech corpus: trains on its train split, validates on test ($AUDIOCODEC_DATA)
    device: str = "cuda" if torch.cuda.is_available() else "cpu"  # cuda when present
    threads: int = 2             # torch CPU threads
    bf16: bool = True            # on CUDA: bfloat16 autocast of the networks (losses in float32)
    batch: int = 16              # crops per step (per process under torchrun)
    seconds: float = 1.0         # length of each crop
    steps: int = 60000           # total steps of the schedule (resume continues towards it)
    time_budget: float = 0.0     # seconds this process may run (0: no limit): after timing 20 steps, --steps
                                 # becomes as many as fit, and the cosine schedule ends there
    lr: float = 7e-4             # peak AdamW learning rate
    warmup: int = 500            # linear warm-up steps, then cosine decay over the rest of --steps
    min_lr_frac: float = 0.05    # ... down to this fraction of --lr
    commit_weight: float = 0.25  # RVQ commitment loss (the encoder stays near its codes)
    adv_start: int = 1_000_000   # step at which the discriminators (multi-period and multi-scale STFT) join; off by default
    adv_ramp: int = 500          # ... the discriminators alone learn for this many steps, then the generator's adversarial
                                 # losses ramp up linearly over as many again
    disc_lr: float = 3e-4        # ... their peak AdamW learning rate (on the generator's schedule)
    adv_weight: float = 0.03     # ... their hinge loss, as a ratio of gradient norms at the output to the reconstruction
                                 # losses' (train/balancer.py, after EnCodec's balancer); on CPU every share tried lowered STOI within 2,000 steps, 0.03 least
    fm_weight: float = 0.0       # ... their feature-matching loss, likewise; 0.3 and 1 raised the log-mel loss by a third
                                 # (it asks a decoder that draws its own phase for the original waveform's features)
    disc_width: int = 16         # ... their channels (train/discriminators.py): 16 on a GPU, 8 on CPU
    mel_weight: float = 30.0     # multi-scale log-mel L1 (train/losses.py MultiScaleMelLoss)
    cmag_weight: float = 150.0   # L1 of STFT magnitudes ** 0.3 (train/losses.py CompressedMagnitudeLoss): lifted PESQ by ~0.07
    freeze_encoder: bool = False  # train only the quantizer and decoder side and the encoder's spectral branch (SEANet's backward is skipped)
    freeze_decoder: bool = False  # train only the encoder (spectral branch too): the decoder and the codebooks it reads stay,
                                  # and the encoder learns to give the latents it renders best (compress --search finds such
                                  # latents per file by gradient descent: docs/training-log.md, analysis by synthesis)
    latent_cache: bool = False   # ... and read its latents from one pass over the split (a further 30 % faster)
    dec_blocks: int = 12         # at least this many decoder blocks; those the --init weights lack are appended near-identity
    head_fft: int = 0            # the decoder head's iSTFT window in samples (0: the --init weights' own; a shorter window is
                                 # less latency, 480: 40 ms instead of 50); its read-out is carried over by frequency and
                                 # the codes stay (train/state.py with_head_window): use with --freeze-codes
    voicing_bands: int = 16      # at least this many voicing bands (> 1: voicing per mel band; offsets start at zero)
    vq_gain: bool = True         # RVQ codes keep their length (quantizer.py); from unit-code --init weights the codebooks are seeded afresh
    spectral: bool = False       # the encoder's spectral branch (encoder.SpectralBranch); added at zero to --init weights without it
    spectral_join: int = 0       # ... joining the RVQ residual before this stage (3: the 1.5 kbps stages never see it); weights with a branch keep theirs
    pitch_input: bool = False    # the decoder backbone also hears the sent pitch (decoder.PitchInput; needs --sent-pitch; added at zero to --init weights without it)
    pitch_source: bool = True    # harmonic excitation at a predicted pitch
    f0_weight: float = 50.0      # L1 of the predicted pitch in octaves, on voiced frames
    voicing_weight: float = 5.0  # binary cross-entropy of the predicted voicing
    teacher_until: int = 2000    # before this step the excitation follows the tracker's pitch, not the predicted one
    sent_pitch: str = ""         # a pitch track of the train split (train_pitch.py's train-f0.npy, or "harvest"; any value
                                 # with --pack: the pack's): clips of at least pitch_from rows are decoded as a pitch-coded
                                 # stream, one stage fewer, the excitation at that pitch as the stream sends it (model/pitch.py's
                                 # 8-bit code); validation sends the pitch of the tracker saved beside the track, if one is
    nq_weights: str = ",".join("1" for _ in modes())  # quantizer dropout: relative odds of keeping each neural mode's rows (1.5, 3, 6, 12 kbps: 4 and fixed-rate 3, 6, 12, 24; the lineage up to 1b53dc931200f56b trained 3 alone for 1.5 kbps)
    reseed_every: int = 0        # every this many steps, seed the RVQ stages afresh on 256 new crops (0: never)
    reseed_from: int = 3         # ... from this stage on (0-based): the first three (before the spectral branch joins) keep what they learned
    eval_every: int = 500        # validate (PESQ-WB, STOI at 1.5/6/12 kbps) and checkpoint this often; best.pt keeps the best at 6 kbps
                                 # (0: never, e.g. where pesq is not installed)
    keep_every: int = 0          # also keep a copy of the checkpoint every this many steps (stepN.pt; 0: none)
    save_every: int = 250        # write ckpt.pt this often too (a run's process may die at any moment)
    eval_clips: int = 12         # fixed test clips for that validation
    log_every: int = 50          # a line of losses in log.jsonl this often
    seed: int = 0                # random seed (crops, dropout)
    resume: str = ""             # with no checkpoint in --out yet: continue this run (a ckpt.pt, or the state folder a
                                 # GPU run returned, audiocodec/train/state.py): weights, optimizers, step and settings
    init: str = ""               # with no checkpoint yet: start from these weights (shipped .safetensors or a run's .pt)
    init_step: int = 0           # ... and continue the schedule from this step (default: the step stored in the file),
                                 # the learning rate ramping up over --warmup steps from there (Adam starts afresh)
    freeze_codes: bool = False   # train the decoder side only: encoder (spectral branch too) and quantizer frozen, so every
                                 # stream keeps the codes of the --init weights (and their entropy model)
    pack: str = ""               # read the train split, pitch tracks and validation clips from this file (scripts/pack_data.py)
                                 # instead of --data: for a machine without the corpus (a lent GPU)
    weight_ema: float = 0.0      # also keep an exponential moving average of the weights with this decay (0.999:
                                 # over about 1,000 steps); validated, saved and exported in place of the live weights,
                                 # and --init from a run's .pt starts from its average if it kept one


MACHINE = ("device", "threads", "resume", "time_budget")  # not the run's: a resumed run does not inherit them


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
    """Settings and the run's checkpoint (--out's, else --resume's), if any. A resumed run keeps the settings
    it was started with, except those given on this command line and MACHINE's."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    helps = option_help()
    for f in dataclasses.fields(Settings):
        kind = (lambda v: v.lower() in ("1", "true", "yes")) if isinstance(f.default, bool) else type(f.default)
        p.add_argument("--" + f.name.replace("_", "-"), type=kind, default=argparse.SUPPRESS,
                       help=f"{helps.get(f.name, '')} (default: {f.default})".lstrip())
    given = vars(p.parse_args())
    path = os.path.join(given.get("out", Settings.out), "ckpt.pt")
    path = path if os.path.exists(path) else given.get("resume", "")
    ck = load_checkpoint(path) if path else None
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


def as_sent(n_q: torch.Tensor, f0: torch.Tensor, pitch_from: int, teacher: torch.Tensor | None = None):
    """``--sent-pitch``: rows per clip (B,) and the tracker's pitch (B, J) -> (RVQ stages per clip, the pitch
    that drives the excitation (B, J), 0 = the predicted one, the pitch sent (B, J), zeros for the clips
    that send none, and which clips send it (B,) bool). Clips of at least ``pitch_from`` rows give a row to
    the pitch, which arrives through the 8-bit code, one value per 20 ms (model/pitch.py)."""
    sent = n_q >= pitch_from
    coded = torch.where(sent[:, None], dequantize(frame_symbols(f0)), torch.zeros_like(f0))
    drive = coded if teacher is None else torch.where(coded > 0, coded, teacher)
    return n_q - sent.long(), drive, coded, sent


# ---- machine: one process, or one of torchrun's -------------------------------------------------------------

@dataclass
class Machine:
    device: str
    rank: int = 0
    world: int = 1

    @property
    def lead(self) -> bool:
        """The process that validates, saves and logs."""
        return self.rank == 0

    def autocast(self, s: Settings):
        return torch.autocast("cuda", torch.bfloat16) if s.bf16 and self.device.startswith("cuda") else nullcontext()


def start_machine(s: Settings) -> Machine:
    """The device of this process: under torchrun (WORLD_SIZE > 1) one GPU per process (gloo on CPU)."""
    torch.set_num_threads(s.threads)
    if s.device.startswith("cuda"):  # TF32 matrix products, and the fastest convolution algorithms for these fixed shapes
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = torch.backends.cudnn.benchmark = True
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return Machine(s.device)
    dist.init_process_group("nccl" if s.device.startswith("cuda") else "gloo")
    device = s.device
    if device.startswith("cuda"):
        device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
        torch.cuda.set_device(device)
    return Machine(device, dist.get_rank(), dist.get_world_size())


# ---- model ---------------------------------------------------------------------------------------------------

@dataclass
class Run:
    """What a step changes, and what a checkpoint holds."""
    model: Codec
    disc: Discriminators
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    average: WeightAverage | None = None
    step: int = 0
    best: float = -1.0
    ramp_from: int = 0
    balancer: Balancer | None = None  # the adversarial losses' gradient scales (their running averages are checkpointed)

    def checkpoint(self, s: Settings) -> dict:
        state = {"model": self.model.state_dict(), "config": dataclasses.asdict(self.model.cfg), "disc": self.disc.state_dict(),
                 "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(), "ema": self.model.quantizer.ema_state(),
                 "step": self.step, "best": self.best, "ramp_from": self.ramp_from, "settings": dataclasses.asdict(s)}
        if self.balancer is not None:
            state["balancer"] = self.balancer.state_dict()
        if self.average is not None:  # what export.py ships by default
            state["averaged"] = self.average.state_dict()
        return state


def architecture(s: Settings, ck: dict | None) -> tuple[CodecConfig, dict | None, int, bool]:
    """(config, --init weights or None, their step, whether their codebooks must be seeded afresh): a resumed
    checkpoint's own; else the --init weights', grown to at least --dec-blocks and --voicing-bands (the new
    parts start near identity); else the defaults."""
    cfg = CodecConfig(pitch_source=s.pitch_source, vq_gain=s.vq_gain, enc_spectral=s.spectral)
    if ck is not None:
        return CodecConfig.from_dict(ck["config"]) if "config" in ck else cfg, None, 0, False
    state, step = None, 0
    if s.init:
        cfg, state, step = initial_weights(s.init)
        if s.head_fft:
            cfg, state = with_head_window(cfg, state, s.head_fft)
    elif s.head_fft:
        cfg = dataclasses.replace(cfg, head_fft=s.head_fft)
    reseed = s.vq_gain and not cfg.vq_gain  # unit codes mean nothing to a gain quantizer
    cfg = dataclasses.replace(cfg, dec_blocks=max(cfg.dec_blocks, s.dec_blocks),
                              voicing_bands=max(cfg.voicing_bands, s.voicing_bands), vq_gain=cfg.vq_gain or s.vq_gain,
                              pitch_input=cfg.pitch_input or s.pitch_input, enc_spectral=cfg.enc_spectral or s.spectral,
                              spectral_join=cfg.spectral_join if cfg.enc_spectral else s.spectral_join)  # a trained branch keeps its place
    return cfg, state, step, reseed


def build(s: Settings, ck: dict | None, device: str) -> Run:
    """The model, discriminators and optimizers, from the checkpoint, the --init weights or afresh."""
    cfg, init_state, init_step, reseed = architecture(s, ck)
    model, disc = Codec(cfg).to(device), Discriminators(s.disc_width).to(device)
    opt_g = torch.optim.AdamW(model.parameters(), lr=s.lr, betas=(0.8, 0.99), weight_decay=1e-4)
    opt_d = torch.optim.AdamW(disc.parameters(), lr=s.disc_lr, betas=(0.8, 0.99), weight_decay=1e-4)
    run = Run(model, disc, opt_g, opt_d, balancer=Balancer({"adv": s.adv_weight, "fm": s.fm_weight}))
    if ck is not None:
        model.load_state_dict(ck["model"]), opt_g.load_state_dict(ck["opt_g"])
        try:
            disc.load_state_dict(ck["disc"]), opt_d.load_state_dict(ck["opt_d"])
        except (RuntimeError, ValueError, KeyError):
            print("discriminator in the checkpoint has another shape: starting it afresh")
        model.quantizer.load_ema_state([{k: v.to(device) for k, v in st.items()} for st in ck["ema"]])
        run.step, run.best, run.ramp_from = ck["step"], ck.get("best", -1.0), ck.get("ramp_from", 0)
        run.balancer.load_state_dict(ck.get("balancer", {}))
        print(f"resumed at step {run.step}")
    elif init_state is not None:  # carry training over from other weights
        missing, _ = model.load_state_dict(init_state, strict=False)
        if missing:
            print("not in the init weights, starting afresh:", ", ".join(sorted({'.'.join(k.split('.')[:3]) for k in missing})))
        model.quantizer.restart_ema(seeded=not reseed)
        run.step = run.ramp_from = s.init_step or init_step
        print(f"initialised from {s.init}, schedule continues at step {run.step}")
    if s.freeze_codes:  # nothing before the quantized latent learns, nor do the codebooks (held in eval mode: to_train)
        model.encoder.requires_grad_(False), model.quantizer.requires_grad_(False)
    elif s.freeze_encoder:  # no gradient reaches the SEANet convolutions, so autograd skips their (costly, 16 kHz) backward
        model.encoder.requires_grad_(False)
        if model.encoder.spectral is not None:
            model.encoder.spectral.requires_grad_(True)
    if s.freeze_decoder:  # the codebooks too: the decoder only knows the vectors it was trained on
        for part in (model.quantizer, model.pitch_input, model.decoder, model.head, model.source):
            if part is not None:
                part.requires_grad_(False)
    if s.weight_ema:
        run.average = WeightAverage(model, s.weight_ema, {k: v.to(device) for k, v in (ck or {}).get("averaged", {}).items()})
    return run


def to_train(run: Run, s: Settings) -> None:
    run.model.train()
    if s.freeze_codes:  # the quantizer's EMA codebooks and dead-code restarts only run in train mode
        run.model.encoder.eval(), run.model.quantizer.eval()
    elif s.freeze_decoder:
        run.model.quantizer.eval()


def share_from_lead(module: torch.nn.Module, machine: Machine) -> None:
    """Every process takes the lead's parameters and buffers of ``module`` (after a change made on each alone)."""
    if machine.world > 1:
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, 0)


# ---- data ----------------------------------------------------------------------------------------------------

@dataclass
class Data:
    audio: np.ndarray                 # the train split, int16
    f0: np.ndarray | None             # its pitch track (J,), or (J, 2) with the sent pitch beside it
    clips: list[np.ndarray]           # validation clips
    tracker: dict | None              # the sender's pitch tracker, for validation
    latents: torch.Tensor | None = None  # --latent-cache


def load_data(s: Settings) -> Data:
    """The train split and its pitch tracks, from --pack or --data."""
    if s.pack:
        pack = read_pack(s.pack)
        if (s.sent_pitch and pack.sent_f0 is None) or (s.pitch_source and pack.f0 is None):
            sys.exit(f"error: {s.pack} lacks its pitch tracks: add them with `python -m audiocodec.train.pitch_tracks "
                     f"{s.pack}` (gpu_run.sh does), or `--load` a run's returned tracks.npz")
        f0 = pack.f0 if s.pitch_source else None
        if s.sent_pitch:
            f0 = np.stack([f0, pack.sent_f0], -1)
        return Data(pack.audio, f0, pack.clips[:s.eval_clips], pack.tracker)
    audio, _ = load_split(s.data, "train")
    f0 = load_f0(s.data, "train") if s.pitch_source else None
    if s.sent_pitch:  # row 0: the decoder's pitch targets; row 1: the pitch a pitch-coded stream would send
        f0 = np.stack([f0, f0 if s.sent_pitch == "harvest" else np.load(s.sent_pitch)[:len(f0)]], -1)
    return Data(audio, f0, excerpts(s.data, "test", s.eval_clips), tracker_beside(s.sent_pitch))


def dropout_odds(nq_weights: str) -> tuple[torch.Tensor, torch.Tensor]:
    """--nq-weights -> (the stage counts the streams send, their odds). A bitrate that sends fewer rows fixed-rate
    (and in packets) than context-coded shares its odds evenly between the two forms."""
    ms = sorted(modes(), key=lambda m: m.rows)
    try:
        odds = [float(w) for w in nq_weights.split(",")]
    except ValueError:
        odds = []
    if len(odds) != len(ms) or min(odds) < 0 or sum(odds) <= 0:
        sys.exit(f"--nq-weights needs {len(ms)} non-negative numbers separated by commas, one per bitrate")
    share: dict[int, float] = {}
    for m, w in zip(ms, odds):
        forms = {m.rows, m.coded(context=False).rows}
        for rows in forms:
            share[rows] = share.get(rows, 0.0) + w / len(forms)
    rows = sorted(share)
    return torch.tensor(rows), torch.tensor([share[r] for r in rows])


# ---- one step ------------------------------------------------------------------------------------------------

def reseed_quantizer(run: Run, s: Settings, data: Data, length: int, rng: np.random.Generator, machine: Machine) -> None:
    """Seed the RVQ stages from --reseed-from on afresh, back onto the moving latent's axes."""
    model = run.model
    with torch.no_grad():
        crops = batch_of_crops(data.audio, 256, length, rng)[0].to(machine.device)
        z, late = zip(*(model.encoder.parts(c) for c in crops.split(64)))
        model.quantizer.reseed(torch.cat(z), s.reseed_from, None if late[0] is None else torch.cat(late))
    share_from_lead(model.quantizer, machine)
    for i, stage in enumerate(model.quantizer.stages[s.reseed_from:], s.reseed_from):
        for p in stage.parameters():  # Adam's moments, and the average, belong to the old projections
            run.opt_g.state.pop(p, None)
        if run.average is not None:
            run.average.restart(f"quantizer.stages.{i}.")


def pitch_losses(f0_hat: tuple, f0_target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(L1 of the predicted pitch in octaves on voiced frames, BCE of the predicted voicing)."""
    f0_hat, voicing = f0_hat
    voiced = f0_target > 0
    pitch = (torch.log2(f0_hat) - torch.log2(f0_target.clamp(min=1.0))).abs()[voiced].mean() if voiced.any() else f0_hat.sum() * 0
    return pitch, torch.nn.functional.binary_cross_entropy_with_logits(voicing, voiced.float())


def discriminator_step(run: Run, disc: torch.nn.Module, x: torch.Tensor, x_hat: torch.Tensor, machine: Machine,
                       s: Settings) -> torch.Tensor:
    """One optimizer step of the discriminators on real x and decoded x_hat (B, 1, T), in one forward pass."""
    with machine.autocast(s):
        out = disc(torch.cat([x, x_hat]))
    b = x.shape[0]
    loss = discriminator_loss([(logits[:b].float(),) for logits, _ in out], [(logits[b:].float(),) for logits, _ in out])
    run.opt_d.zero_grad(set_to_none=True)
    loss.backward()
    run.opt_d.step()
    return loss.detach()


def train_step(run: Run, nets: tuple, losses: tuple, s: Settings, batch: tuple, machine: Machine) -> dict[str, torch.Tensor]:
    """One optimizer step of the discriminators (from --adv-start) and the generator -> the losses (on the
    device: read at log time, so that a step does not wait for the GPU to catch up)."""
    gen, disc = nets                    # the model and discriminators, DistributedDataParallel-wrapped under torchrun
    mel_loss, cmag_loss = losses
    x, f0_target, n_q, z = batch
    model, acc = run.model, {}
    teacher = f0_target if run.step < s.teacher_until else None
    sent_f0 = sent = None
    if s.sent_pitch:
        f0_target, track = f0_target[..., 0], f0_target[..., 1]
        teacher = teacher if teacher is None else teacher[..., 0]
        n_q, teacher, sent_f0, sent = as_sent(n_q, track, model.cfg.pitch_from, teacher)
    with machine.autocast(s):
        if z is None:
            x_hat, q, f0_hat = gen(x, n_q, teacher, sent_f0, sent)
        else:  # the frozen encoder's latents were computed once, at the start
            q = model.quantizer(z, n_q, None if model.encoder.spectral is None else model.encoder.spectral(x))
            x_hat, f0_hat = model.synthesize(model.features(q.z_q, sent_f0, sent), teacher)
    x_hat = x_hat.float()
    adv_on = run.step >= s.adv_start
    if adv_on:
        acc["d"] = discriminator_step(run, disc, x, x_hat.detach(), machine, s)
    mel = mel_loss(x_hat, x)
    rec = s.mel_weight * mel               # the losses on the output, x_hat
    acc.update(mel=mel, commit=q.commit_loss)
    if s.cmag_weight:
        cmag = cmag_loss(x_hat, x)
        rec = rec + s.cmag_weight * cmag
        acc["cmag"] = cmag
    rest = s.commit_weight * q.commit_loss.float()  # the losses that do not pass through it
    if f0_hat is not None:
        pitch, bce = pitch_losses(tuple(v.float() for v in f0_hat), f0_target)
        rest = rest + s.f0_weight * pitch + s.voicing_weight * bce
        acc.update(f0_oct=pitch, voicing=bce)
    run.opt_g.zero_grad(set_to_none=True)
    ramp = min(1.0, max(0.0, (run.step - s.adv_start + 1) / max(1, s.adv_ramp) - 1)) if adv_on else 0.0
    if ramp > 0:  # the adversarial gradients at the output, scaled against the reconstruction's by the balancer
        with machine.autocast(s):
            adv, fm = generator_losses(run.disc(x), run.disc(x_hat))  # the bare discriminators: their gradient is not used
        shares = {k: v.float() for k, v in (("adv", adv), ("fm", fm)) if run.balancer.ratios[k]}
        grad, norms = run.balancer.gradient(rec, shares, x_hat, ramp)
        acc.update(adv=adv, fm=fm, **{f"g_{'rec' if k == 'base' else k}": torch.tensor(v) for k, v in norms.items()})
        tensors, grads = [x_hat], [grad]
        if rest.requires_grad:  # (not when the codes and the pitch head are frozen)
            tensors, grads = tensors + [rest], grads + [None]
        torch.autograd.backward(tensors, grads)
    else:
        (rec + rest).backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    run.opt_g.step()
    if run.average is not None:
        run.average.update()
    run.step += 1
    return {k: v.detach().float() for k, v in acc.items()}


# ---- the loop ------------------------------------------------------------------------------------------------

def check(s: Settings, machine: Machine) -> None:
    if s.pitch_input and not s.sent_pitch:
        sys.exit("error: --pitch-input true needs --sent-pitch (the decoder can only hear a pitch that is sent)")
    if s.freeze_decoder and (s.freeze_codes or s.freeze_encoder):
        sys.exit("error: --freeze-decoder trains the encoder: not with --freeze-codes or --freeze-encoder")
    if s.latent_cache and machine.world > 1:
        sys.exit("error: --latent-cache trains one process only (its steps bypass DistributedDataParallel)")


def draw(s: Settings, data: Data, length: int, rng: np.random.Generator, odds: tuple, device: str) -> tuple:
    """A batch: (crops (B, 1, T), pitch targets or None, stages kept per clip (B,), latents or None)."""
    if data.latents is None:
        (x, f0), z = batch_of_crops(data.audio, s.batch, length, rng, data.f0), None
    else:
        x, f0, z = batch_of_latents(data.audio, data.latents, s.batch, length, rng, data.f0)
        z = z.to(device)
    choices, weights = odds
    n_q = choices[torch.multinomial(weights, s.batch, replacement=True)]
    return x.to(device), None if f0 is None else f0.to(device), n_q.to(device), z


def fit_to_budget(s: Settings, run: Run, started: float, timed: tuple[int, float], machine: Machine) -> None:
    """--time-budget: --steps becomes as many as fit in what is left, at the pace of the steps since ``timed``
    (step, time); 5 % and 20 s are kept for the last save (and validation)."""
    step0, t0 = timed
    pace = torch.tensor((time.time() - t0) / (run.step - step0))
    if machine.world > 1:
        dist.all_reduce(pace, dist.ReduceOp.MAX)
    left = 0.95 * (s.time_budget - (time.time() - started)) - 20
    s.steps = run.step + max(1, int(left / float(pace)))
    print(f"step {run.step}: {float(pace):.3f} s/step, the schedule ends at step {s.steps}", flush=True)


def main() -> None:
    started = time.time()
    s, ck = parse()
    machine = start_machine(s)
    check(s, machine)
    torch.manual_seed(s.seed)
    os.makedirs(s.out, exist_ok=True)
    run = build(s, ck, machine.device)
    if s.time_budget:  # until fit_to_budget knows the pace (a resumed run may have reached its old --steps)
        s.steps = max(s.steps, run.step + 100)
    data = load_data(s)
    if machine.lead:
        print(f"model: {sum(p.numel() for p in run.model.parameters()) / 1e6:.2f} M params; settings: {json.dumps(dataclasses.asdict(s))}")
        if data.tracker is not None:
            print(f"validation: streams of {run.model.cfg.pitch_from} rows or more send the pitch of the packed or saved tracker")
    rng = np.random.default_rng(s.seed + run.step + 1_000_003 * machine.rank)
    length = int(s.seconds * 16000) // run.model.cfg.frame_size * run.model.cfg.frame_size
    odds = dropout_odds(s.nq_weights)
    if s.freeze_encoder and s.latent_cache:
        data.latents = encode_split(run.model, data.audio, s.out, machine.device)
    if not run.model.quantizer.seeded:  # seed the codebooks by k-means on a large batch
        with torch.no_grad():
            run.model.train()
            run.model(batch_of_crops(data.audio, 128, length, rng)[0].to(machine.device), torch.full((128,), run.model.cfg.n_codebooks))
    share_from_lead(run.model, machine)
    nets = (run.model, run.disc)
    if machine.world > 1:  # each process its own crops, gradients averaged; stages a batch leaves out get none
        nets = (DistributedDataParallel(run.model, find_unused_parameters=True), DistributedDataParallel(run.disc))
    losses = (MultiScaleMelLoss().to(machine.device), CompressedMagnitudeLoss().to(machine.device))
    loop(s, run, nets, losses, data, length, rng, odds, machine, started)
    if machine.world > 1:
        dist.destroy_process_group()


def loop(s: Settings, run: Run, nets: tuple, losses: tuple, data: Data, length: int, rng: np.random.Generator,
         odds: tuple, machine: Machine, started: float) -> None:
    """Train to --steps: log, validate and save on the way (the lead process)."""
    def save(tag: str = "ckpt.pt") -> None:
        if machine.lead:
            save_checkpoint(run.checkpoint(s), os.path.join(s.out, tag))

    log = open(os.path.join(s.out, "log.jsonl"), "a") if machine.lead else None
    t0, acc, first, timed = time.time(), {}, run.step, None
    to_train(run, s)
    while run.step < s.steps:
        if s.reseed_every and run.step % s.reseed_every == 0:
            reseed_quantizer(run, s, data, length, rng, machine)
            if machine.lead:
                print(f"step {run.step}: quantizer reseeded", flush=True)
        lr = lr_at(run.step, s, run.ramp_from)
        for g in run.opt_g.param_groups:
            g["lr"] = lr
        for g in run.opt_d.param_groups:
            g["lr"] = lr * s.disc_lr / s.lr
        for k, v in train_step(run, nets, losses, s, draw(s, data, length, rng, odds, machine.device), machine).items():
            acc[k] = acc.get(k, 0.0) + v
        if s.time_budget and run.step == first + 5:  # the first steps pay for warming up (cudnn's search)
            timed = (run.step, time.time())
        elif s.time_budget and timed and run.step == timed[0] + 20:
            fit_to_budget(s, run, started, timed, machine)
        if run.step % s.log_every == 0 and machine.lead:
            rec = {k: round(float(v) / s.log_every, 4) for k, v in acc.items()}
            rec.update(step=run.step, lr=round(lr, 7), sec_per_step=round((time.time() - t0) / s.log_every, 3))
            print(json.dumps(rec), flush=True)
            log.write(json.dumps(rec) + "\n"), log.flush()
        if run.step % s.log_every == 0:
            t0, acc = time.time(), {}
        if s.keep_every and run.step % s.keep_every == 0:
            save(f"step{run.step}.pt")
        if s.eval_every and (run.step % s.eval_every == 0 or run.step == s.steps) and machine.lead:
            res = evaluate(run.model if run.average is None else averaged_copy(run.model, run.average), data.clips, data.tracker)
            to_train(run, s)
            res["step"] = run.step
            print("eval", json.dumps(res), flush=True)
            log.write(json.dumps({"eval": res}) + "\n"), log.flush()
            if res["pesq@6"] > run.best:
                run.best = res["pesq@6"]
                save("best.pt")
            save()
            t0 = time.time()
        elif run.step % s.save_every == 0 or run.step == s.steps:
            save()


if __name__ == "__main__":
    main()

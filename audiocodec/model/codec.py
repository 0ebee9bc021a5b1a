"""The codec: Encoder -> ResidualVQ -> Decoder -> ISTFTHead, plus loading and saving its weights.

Public API (no files, no bytes):
    codes = codec.encode(wav, n_q)    # wav (T,) or (B, 1, T) float at 16 kHz -> codes (B, n_q, frames)
    wav   = codec.decode(codes)       # codes -> wav (B, 1, frames * 320)

Each of the ``n_q`` rows of codes is 10 bits per 20 ms frame. In a model with a pitch tracker
(``pitch_coded``), from ``pitch_from`` rows up the first row carries the sender's pitch (``pitch.py``, 8 of
its 10 bits) and the other ``n_q - 1`` the RVQ stages; below that, and in other models, all rows are stages.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, replace

import torch

from .decoder import Decoder, PitchInput
from .encoder import Encoder
from .heads import HarmonicSource, ISTFTHead
from .layers import StreamingModule
from .pitch import CODE_BITS, PitchTracker, dequantize, frame_symbols
from .quantizer import ResidualVQ

BACKENDS = ("torch", "onnx")          # what runs the decoder backbone (Codec.use_backend)
BACKEND_VARIABLE = "AUDIOCODEC_BACKEND"  # the environment variable that names the backend of loaded models
INT8_SCALE = ".int8_scale"  # suffix of the per-channel scales of weights stored as int8 (Codec.save)
SAME_CODES = "same_codes_as"  # metadata: ids of earlier models whose codes these weights make exactly (their files decode)


def _per_channel(scale: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """One scale per output channel (dim 0), shaped to broadcast over ``weight``."""
    return scale.view(-1, *[1] * (weight.dim() - 1))


SENDER_FIELDS = ("sample_rate", "enc_channels", "enc_strides", "enc_blocks", "enc_hidden", "latent_dim", "n_codebooks",
                 "codebook_size", "codebook_dim", "vq_gain", "enc_spectral", "spectral_join", "pitch_coded", "pitch_from")


@dataclass
class CodecConfig:
    sample_rate: int = 16000
    enc_channels: tuple = (16, 32, 64, 128, 256)
    enc_strides: tuple = (2, 4, 5, 8)
    enc_blocks: int = 2
    enc_hidden: int = 512
    latent_dim: int = 128
    n_codebooks: int = 24
    codebook_size: int = 1024
    codebook_dim: int = 8
    dec_dim: int = 256
    dec_hidden: int = 768
    dec_blocks: int = 6
    n_fft: int = 640            # the encoder's spectral branch reads windows of this length every ``hop``
    hop: int = 160
    head_fft: int = 0           # the decoder's iSTFT window (0: ``n_fft``); its overlap tail, head_fft - hop, sets the latency
    pitch_source: bool = False  # harmonic excitation at a predicted pitch for the iSTFT head (HarmonicSource)
    voicing_bands: int = 1      # > 1: the source's voicing varies over this many mel-spaced bands
    vq_gain: bool = True        # codes keep their length, so each RVQ stage refines the last (False: unit codes, as in weights saved without this field)
    enc_spectral: bool = False  # the encoder also reads log-magnitude spectra (SpectralBranch; model 1b53dc931200f56b does)
    spectral_join: int = 0      # ... and its output joins the RVQ residual before this stage (ResidualVQ's ``late``)
    pitch_coded: bool = False   # the sender tracks the pitch and sends it as the first row of codes (pitch.py)
    pitch_from: int = 6         # ... in streams of at least this many rows (at 1.5 kbps a stage is worth more)
    pitch_input: bool = False   # the decoder backbone also hears the sent pitch (decoder.PitchInput)
    postfilter: float = 1.0     # decoding only: each STFT frame's magnitudes to this power, at the frame's energy (heads.sharpen;
                                # 1 = off; a decode call may give its own). Off since 2026-12-04: 1.1 raised PESQ-WB by
                                # 0.05-0.07 but lowered ViSQOL by 0.12-0.16 and STOI on held-out clips (training log)

    @property
    def head_window(self) -> int:
        """The decoder head's iSTFT window in samples (``head_fft``, or ``n_fft`` where that is 0)."""
        return self.head_fft or self.n_fft

    @property
    def frame_size(self) -> int:
        return math.prod(self.enc_strides)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.frame_size

    @property
    def bits_per_code(self) -> int:
        return int(math.log2(self.codebook_size))

    def kbps(self, n_q: int) -> float:
        return n_q * self.bits_per_code * self.frame_rate / 1000

    @staticmethod
    def from_json(text: str) -> "CodecConfig":
        return CodecConfig.from_dict(json.loads(text))

    @staticmethod
    def from_dict(d: dict) -> "CodecConfig":
        """The config of ``asdict(cfg)`` (lists back to tuples; unknown keys ignored, missing ones default,
        except ``vq_gain``: files without it were saved by the unit-code quantizer)."""
        known = CodecConfig.__dataclass_fields__
        d = {"vq_gain": False, **d}
        return CodecConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in known})


class Codec(StreamingModule):
    """The whole model. ``encode`` and ``decode`` run whole signals; ``streaming.py`` runs it frame by frame on
    copies of it (``layers.stream_copy``), so the model itself never holds a stream's state."""

    def __init__(self, cfg: CodecConfig = CodecConfig()):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg.enc_channels, cfg.enc_strides, cfg.enc_blocks, cfg.enc_hidden, cfg.latent_dim,
                               cfg.enc_spectral, cfg.n_fft, cfg.hop)
        self.quantizer = ResidualVQ(cfg.latent_dim, cfg.n_codebooks, cfg.codebook_size, cfg.codebook_dim, cfg.vq_gain,
                                    cfg.spectral_join)
        self.pitch_input = PitchInput(cfg.latent_dim) if cfg.pitch_input else None
        self.decoder = Decoder(cfg.latent_dim, cfg.dec_dim, cfg.dec_hidden, cfg.dec_blocks)
        self.head = ISTFTHead(cfg.dec_dim, cfg.head_window, cfg.hop, cfg.frame_size // cfg.hop, postfilter=cfg.postfilter)
        self.source = HarmonicSource(cfg.dec_dim, cfg.head_window, cfg.hop, cfg.frame_size // cfg.hop,
                                     bands=cfg.voicing_bands) if cfg.pitch_source else None
        if cfg.pitch_coded and (not cfg.pitch_source or cfg.bits_per_code < CODE_BITS):
            raise ValueError(f"a pitch-coded model needs the pitch source and codes of at least {CODE_BITS} bits")
        self.pitch = PitchTracker() if cfg.pitch_coded else None
        self.model_id = "untrained"
        self.same_codes_as: tuple[str, ...] = ()  # earlier models that make exactly these codes (load; export.py)

    # ---- training path -------------------------------------------------------------------------
    def forward(self, wav: torch.Tensor, n_q: torch.Tensor, f0: torch.Tensor | None = None,
                sent_f0: torch.Tensor | None = None, sent: torch.Tensor | None = None):
        """wav (B, 1, T) with T a multiple of 320; n_q (B,) stages per clip; f0 (B, T / 160) optional pitch
        for the excitation (0: the predicted one); ``sent_f0`` (B, T / 160) and ``sent`` (B,) bool: the
        pitch each clip's stream sends, and which clips send one (``decoder_input``) -> (wav_hat (B, 1, T),
        quantizer output, None or the pitch source's predicted (pitch, voicing logit), each (B, T / 160))."""
        z, late = self.encoder.parts(wav)
        q = self.quantizer(z, n_q, late)
        wav_hat, pitch = self.synthesize(self.features(q.z_q, sent_f0, sent), f0)
        return wav_hat, q, pitch

    def features(self, z_q: torch.Tensor, f0: torch.Tensor | None = None, sent: torch.Tensor | bool = True) -> torch.Tensor:
        """Quantized latents (B, latent_dim, T) and the sent pitch (``decoder_input``) -> decoder features
        (B, T, dim), what ``synthesize`` turns into a waveform."""
        return self.decoder(self.decoder_input(z_q, f0, sent))

    def decoder_input(self, z_q: torch.Tensor, f0: torch.Tensor | None, sent: torch.Tensor | bool = True) -> torch.Tensor:
        """Quantized latents (B, latent_dim, T) -> the decoder's input: with a ``PitchInput``, the sent pitch
        ``f0`` (B, 2T) Hz added in for the clips that send it (``sent``, (B,) bool or one bool for all)."""
        if self.pitch_input is None or f0 is None:
            return z_q
        sent = torch.as_tensor(sent, device=z_q.device).expand(z_q.shape[0])
        return self.pitch_input(z_q, f0, sent)

    def synthesize(self, feats: torch.Tensor, f0: torch.Tensor | None = None, postfilter: float | None = None):
        """decoder features (B, T, dim) -> (wav (B, 1, T * 320), the source's (pitch, voicing logit) or None).
        ``postfilter``: None = the configured one, 1 = off. Streaming, the wav is the samples that became
        final (``ISTFTHead.overlap_add``)."""
        source = voicing = pitch = None
        if self.source is not None:
            source, voicing, pitch = self.source(feats, f0)
        frames = self.head.frames(feats, source, voicing, postfilter)
        return self.head.overlap_add(frames).unsqueeze(1), pitch

    def as_batch(self, wav: torch.Tensor) -> torch.Tensor:
        """wav (T,) / (B, T) / (B, 1, T) -> float32 (B, 1, T') zero-padded to whole 20 ms frames, as
        ``encode`` sees it."""
        wav = torch.as_tensor(wav, dtype=torch.float32)
        if wav.dim() == 1:
            wav = wav[None, None]
        elif wav.dim() == 2:
            wav = wav[:, None]
        pad = (-wav.shape[-1]) % self.cfg.frame_size
        return torch.nn.functional.pad(wav, (0, pad))

    @torch.no_grad()
    def encode_latents(self, wav: torch.Tensor) -> torch.Tensor:
        """wav -> continuous latents (B, latent_dim, frames), before quantization."""
        return self.encoder(self.as_batch(wav).to(self.device))

    # ---- rows of codes: RVQ stages and the pitch ---------------------------------------------------
    @property
    def max_rows(self) -> int:
        return self.cfg.n_codebooks + (self.pitch is not None)

    def sends_pitch(self, n_q: int) -> bool:
        """Whether a stream of ``n_q`` rows carries the pitch in its first row."""
        return self.pitch is not None and n_q >= self.cfg.pitch_from

    def codes_like(self, other: "Codec") -> bool:
        """Whether ``other`` makes exactly this model's codes from any audio: the same sender settings and the
        same encoder, codebooks and pitch tracker (a decoder-only fine-tune keeps them), so that the entropy
        models fitted to one hold for the other."""
        if any(getattr(self.cfg, f) != getattr(other.cfg, f) for f in SENDER_FIELDS):
            return False
        mine, theirs = ({k: v for k, v in m.state_dict().items() if k.startswith(("encoder.", "quantizer.", "pitch."))}
                        for m in (self, other))
        return mine.keys() == theirs.keys() and all(torch.equal(v, theirs[k]) for k, v in mine.items())

    def row_tables(self, n_q: int) -> list[int]:
        """The entropy table of each row of an ``n_q``-row stream: stage ``i`` uses table ``i``, the pitch
        row table ``n_codebooks`` (``bitstream/entropy.py``)."""
        if self.sends_pitch(n_q):
            return [self.cfg.n_codebooks] + list(range(n_q - 1))
        return list(range(n_q))

    def split(self, codes: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """codes (B, n_q, frames) -> (pitch symbols (B, frames) or None, RVQ codes (B, stages, frames))."""
        if self.sends_pitch(codes.shape[1]):
            return codes[:, 0], codes[:, 1:]
        return None, codes

    def pitch_symbols(self, x: torch.Tensor) -> torch.Tensor:
        """wav (B, 1, frames * 320) -> the pitch symbols sent (B, frames). The tracker hears 20 ms past each
        frame (``PitchTracker.LOOKAHEAD``), zeros after the end."""
        look = self.pitch.LOOKAHEAD
        hz = self.pitch.to_hz(self.pitch(torch.nn.functional.pad(x, (0, self.cfg.frame_size))))
        return frame_symbols(hz[:, look:look + 2 * x.shape[-1] // self.cfg.frame_size])

    # ---- public API ----------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, wav: torch.Tensor, n_q: int) -> torch.Tensor:
        """wav (T,) / (B, T) / (B, 1, T) at 16 kHz -> codes (B, n_q, ceil(T / 320)) int64 in [0, 1024)."""
        if not 1 <= n_q <= self.max_rows:
            raise ValueError(f"n_q must be in 1..{self.max_rows}")
        x = self.as_batch(wav).to(self.device)
        z, late = self.encoder.parts(x)
        if not self.sends_pitch(n_q):
            return self.quantizer.encode(z, n_q, late)
        stages = self.quantizer.encode(z, n_q - 1, late)
        return torch.cat([self.pitch_symbols(x)[:, None], stages], 1)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor, postfilter: float | None = None) -> torch.Tensor:
        """codes (B, n_q, frames) -> wav (B, 1, frames * 320). ``postfilter``: None = the model's configured
        one (``CodecConfig.postfilter``), 1.0 = off."""
        codes = torch.as_tensor(codes, dtype=torch.long, device=self.device)
        symbols, stages = self.split(codes)
        f0 = None if symbols is None else dequantize(symbols)
        return self.synthesize(self.features(self.quantizer.decode(stages), f0), f0, postfilter)[0]

    def use_backend(self, name: str) -> "Codec":
        """Run the decoder backbone on ``name`` (``BACKENDS``): "torch", the default, or "onnx", ONNX Runtime
        (``onnx_backend``: faster on one thread, the same codes, decoded audio equal up to float rounding;
        ImportError without onnxruntime). Returns self."""
        if name not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {name!r}")
        if name == "onnx":
            from .onnx_backend import OnnxDecoder

            self.decoder.runner = OnnxDecoder(self.decoder)
        else:
            self.decoder.runner = None
        return self

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # ---- weights -------------------------------------------------------------------------------
    def save(self, path: str, meta: dict | None = None, int8: bool = True) -> None:
        """Save inference weights as safetensors with the config in the metadata: float16, and with ``int8``
        the matrices of the linear and convolution layers as int8 with one float32 scale per output channel
        (``<name>.int8_scale``), which halves the file (about 0.4 % rounding per weight)."""
        from safetensors.torch import save_file

        tensors = {}
        for k, v in self.state_dict().items():
            v = v.detach().to("cpu", torch.float32)
            if int8 and k.endswith(".weight") and v.dim() >= 2 and v.numel() >= 1024:
                scale = v.abs().flatten(1).amax(1).clamp(min=1e-12) / 127.0
                tensors[k] = torch.round(v / _per_channel(scale, v)).to(torch.int8).contiguous()
                tensors[k + INT8_SCALE] = scale.contiguous()
            else:
                tensors[k] = v.to(torch.float16).contiguous()
        metadata = {"config": json.dumps(asdict(self.cfg))}
        metadata.update({k: str(v) for k, v in (meta or {}).items()})
        tmp = path + ".part"
        save_file(tensors, tmp, metadata=metadata)
        os.replace(tmp, path)

    @staticmethod
    def load(path: str) -> "Codec":
        """Load weights saved by ``save`` (safetensors: no pickle). Sets ``model_id`` to a hash of the file, and
        the backend to the one ``AUDIOCODEC_BACKEND`` names (default "torch", ``use_backend``)."""
        from safetensors import safe_open

        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        with safe_open(path, framework="pt") as f:
            cfg = CodecConfig.from_json(f.metadata()["config"])
            keys = set(f.keys())
            state = {k: f.get_tensor(k).float() for k in keys if not k.endswith(INT8_SCALE)}
            for k in state:  # int8 matrices carry a scale per output channel
                if k + INT8_SCALE in keys:
                    scale = f.get_tensor(k + INT8_SCALE).float()
                    if scale.numel() != state[k].shape[0]:
                        raise ValueError(f"{path}: {k} has {scale.numel()} scales for {state[k].shape[0]} channels")
                    state[k] = state[k] * _per_channel(scale, state[k])
            same = f.metadata().get(SAME_CODES, "")
        codec = Codec(cfg)._trained(state)
        codec.model_id = digest[:16]
        codec.same_codes_as = tuple(i for i in same.split(",") if i)
        return codec.use_backend(os.environ.get(BACKEND_VARIABLE, "torch"))

    @staticmethod
    def from_checkpoint(ck: dict, live: bool = False) -> "Codec":
        """A training checkpoint (the dict ``scripts/train.py`` saves) -> its model: the moving average of the
        weights when the run kept one (``--weight-ema``), unless ``live``."""
        codec = Codec(CodecConfig.from_dict(ck.get("config", {})))  # checkpoints before the pitch source have none
        return codec._trained(ck["averaged"] if "averaged" in ck and not live else ck["model"])

    def with_pitch_tracker(self, tracker_state: dict) -> "Codec":
        """A copy of this model that tracks and sends the pitch, with a trained ``PitchTracker``'s weights
        (``scripts/train_pitch.py``)."""
        state = {**self.state_dict(), **{f"pitch.{k}": v for k, v in tracker_state.items()}}
        return Codec(replace(self.cfg, pitch_coded=True))._trained(state)

    def _trained(self, state: dict) -> "Codec":
        """Load trained weights (every key, strictly), mark the codebooks as fitted, switch to eval mode."""
        self.load_state_dict(state, strict=True)
        self.quantizer.mark_trained()
        return self.eval()

    @staticmethod
    def metadata(path: str) -> dict:
        from safetensors import safe_open

        with safe_open(path, framework="pt") as f:
            return dict(f.metadata())


def default_weights_path() -> str:
    return os.path.join(os.path.dirname(os.path.dirname(__file__)), "weights", "default.safetensors")


def load_default() -> Codec:
    return Codec.load(default_weights_path())

"""Where the codec loses PESQ: magnitude or phase? Oracle resyntheses of test clips, scored by PESQ-WB.

    python research/oracles.py [--clips 8] [--kbps 6] [--model W] [--out reports/oracles.md]

Each row rebuilds the first 4 s of each clip from an STFT (640-sample window, 160 hop: the decoder head's
own resolution) whose magnitude and phase come from different places:

- the codec's output as it is, and decoded with a pitch tracker's pitch (WORLD Harvest, as in training) in
  place of the pitch the decoder predicts from the codes: what sending the pitch exactly would buy
  (needs the ``[train]`` extra; the row is left out without it), and a second table of how far the
  decoder's own pitch is from the tracker's, by pitch range, with its voicing below 1 kHz;
- the codec's output magnitude with Griffin-Lim phase (50 iterations from random phases): a better phase
  for the magnitude the decoder already makes;
- the *true* magnitude with random phase, and with Griffin-Lim phase (10 and 100 iterations): how far an
  exact magnitude goes once the phase is merely consistent (not the original waveform's);
- *where* the codec's magnitude loses: the codec's output magnitude with the true one pasted into one
  frequency band (below 1 kHz, 1-4 kHz, above 4 kHz), and split into a spectral *envelope* (the first 30
  cepstral coefficients of the log-magnitude) and the *fine structure* around it (the rest: the pitch
  harmonics), each taken from the truth in turn; all with Griffin-Lim phase (50);
- *when* the codec's output loses: the true STFT pasted into the quiet frames (more than 35 dB below the
  clip's loudest frame: pauses and background), or into the others (the speech), the codec's kept elsewhere;
- what the latent knows: the true log-magnitude squeezed through a PCA of 32 or 128 numbers per 20 ms (a
  linear autoencoder of the spectrum, unquantized), and the log-magnitude *predicted* by a ridge regression
  from the codec's own unquantized latent (128 numbers per 20 ms; this frame's and the next one's), each
  with Griffin-Lim phase (50). Both are fitted on random 4 s crops of the train split (``--fit-crops``).
"""
from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from tqdm import tqdm

from audiocodec.stream.engine import load_engine
from audiocodec.stream.modes import mode
from audiocodec.evaluation.metrics import pesq_wb
from audiocodec.model.pitch import dequantize
from audiocodec.train.dataset import DEFAULT_ROOT, excerpts, load_split, pitch_targets, track_f0

N_FFT, HOP = 640, 160
BIN_HZ = torch.arange(N_FFT // 2 + 1) * 16000 / N_FFT  # centre frequency of each STFT bin


def stft(x: torch.Tensor) -> torch.Tensor:
    return torch.stft(x, N_FFT, HOP, window=torch.hann_window(N_FFT), return_complex=True)


def istft(spec: torch.Tensor, length: int) -> torch.Tensor:
    return torch.istft(spec, N_FFT, HOP, window=torch.hann_window(N_FFT), length=length)


def griffin_lim(mag: torch.Tensor, length: int, iters: int, seed: int = 0) -> torch.Tensor:
    """A signal whose STFT magnitude is close to ``mag``, from random phases refined ``iters`` times."""
    g = torch.Generator().manual_seed(seed)
    phase = torch.exp(2j * np.pi * torch.rand(mag.shape, generator=g))
    for _ in range(iters):
        phase = torch.exp(1j * torch.angle(stft(istft(mag * phase, length))))
    return istft(mag * phase, length)


def envelope(logmag: torch.Tensor, lifter: int = 30) -> torch.Tensor:
    """The smooth spectral envelope of log-magnitudes (bins, frames): their first ``lifter`` cepstral coefficients."""
    cep = torch.fft.irfft(logmag, dim=0)
    keep = torch.zeros(cep.shape[0], 1)
    keep[:lifter], keep[cep.shape[0] - lifter + 1:] = 1, 1
    return torch.fft.rfft(cep * keep, dim=0).real


def mixtures(true_mag: torch.Tensor, out_mag: torch.Tensor) -> dict[str, torch.Tensor]:
    """The codec's output magnitude with one part taken from the truth: a frequency band, the envelope or the
    fine structure (``envelope``)."""
    hz = BIN_HZ[:, None]
    rows = {f"codec magnitude, true {name} + Griffin-Lim (50)": torch.where(band, true_mag, out_mag)
            for name, band in (("below 1 kHz", hz < 1000), ("1-4 kHz", (hz >= 1000) & (hz < 4000)), ("above 4 kHz", hz >= 4000))}
    lt, lo = torch.log(true_mag + 1e-5), torch.log(out_mag + 1e-5)
    et, eo = envelope(lt), envelope(lo)
    rows["codec fine structure on the true envelope + Griffin-Lim (50)"] = torch.exp(et + lo - eo)
    rows["true fine structure on the codec's envelope + Griffin-Lim (50)"] = torch.exp(eo + lt - et)
    return rows


def quiet_frames(spec: torch.Tensor, below_db: float = 35.0, ease: bool = True) -> torch.Tensor:
    """STFT (bins, frames) -> weight per frame (frames,), 1 where the frame is more than ``below_db`` under
    the loudest one, 0 elsewhere; ``ease``d over 5 frames (50 ms) so that a pasted part does not click."""
    energy = spec.abs().pow(2).sum(0)
    quiet = (energy < energy.max() * 10 ** (-below_db / 10)).float()
    if not ease:
        return quiet
    return torch.nn.functional.avg_pool1d(quiet[None, None], 5, 1, 2, count_include_pad=False)[0, 0]


def paste(true: torch.Tensor, out: torch.Tensor, weight: torch.Tensor, length: int) -> torch.Tensor:
    """A signal from two STFTs (bins, frames): the true one where the per-frame ``weight`` is 1, the codec's
    output's where it is 0."""
    return istft(true * weight + out * (1 - weight), length)


def pasted_in_time(x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """The codec's output with the true STFT pasted into its quiet frames, or into the others."""
    true, out = stft(x), stft(y)
    q = quiet_frames(true)
    return {"codec output, the true signal in the quiet frames (> 35 dB under the peak)": paste(true, out, q, len(x)),
            "codec output, the true signal in the other frames (the speech)": paste(true, out, 1 - q, len(x))}


def log_pairs(x: torch.Tensor) -> torch.Tensor:
    """(T,) -> log-magnitudes of the STFT frames, two per 20 ms: (T // 320, 2 * bins) float64."""
    mag = stft(x).abs().T[: len(x) // 320 * 2]
    return torch.log(mag + 1e-4).reshape(len(x) // 320, -1).double()


def from_pairs(pairs: torch.Tensor, length: int) -> torch.Tensor:
    """Inverse of log_pairs' layout -> magnitude (bins, T // 160 + 1), the last frame repeated to fill."""
    mag = torch.exp(pairs.reshape(-1, N_FFT // 2 + 1)).T.float()
    return torch.cat([mag, mag[:, -1:].expand(-1, length // HOP + 1 - mag.shape[1])], 1)


def latent_pairs(codec, x: torch.Tensor) -> torch.Tensor:
    """The codec's unquantized latent of each 20 ms frame and of the next, plus a constant: (T // 320, 2 * dim + 1)."""
    with torch.no_grad():
        z = codec.encode_latents(x)[0].T.double()[: len(x) // 320]
    return torch.cat([z, torch.cat([z[1:], z[-1:]]), torch.ones(len(z), 1, dtype=torch.float64)], 1)


def fit_probes(codec, data: str, crops: int, seed: int = 0) -> dict:
    """On random 4 s crops of the train split: the mean and principal axes of the log-magnitude pairs, and
    the ridge regression from ``latent_pairs`` to them."""
    audio, _ = load_split(data, "train", progress=False)
    rng = np.random.default_rng(seed)
    xs = [torch.from_numpy(audio[s:s + 64000].astype(np.float32) / 32768.0)
          for s in rng.integers(0, len(audio) - 64000, crops)]
    y = torch.cat([log_pairs(x) for x in xs])
    f = torch.cat([latent_pairs(codec, x) for x in xs])
    mean = y.mean(0)
    axes = torch.linalg.svd(y - mean, full_matrices=False)[2]
    ridge = torch.linalg.solve(f.T @ f + 0.01 * len(f) * torch.eye(f.shape[1], dtype=torch.float64), f.T @ y)
    return {"mean": mean, "axes": axes, "ridge": ridge}


def tracked_pitch(codec, codes: torch.Tensor, x: torch.Tensor) -> np.ndarray | None:
    """The pitch tracker's pitch of ``x`` on the decoder's 10 ms grid (1, frames), Hz, 0 = unvoiced (None
    without pyworld or a pitch source)."""
    if codec.source is None:
        return None
    try:
        f0 = track_f0(x.numpy()).astype(np.float32)
    except ImportError:
        return None
    return pitch_targets(f0, np.zeros(1, dtype=np.int64), codes.shape[-1] * codec.cfg.frame_size)


def with_tracked_pitch(codec, z_q: torch.Tensor, sent: bool, x: torch.Tensor, target: np.ndarray | None) -> torch.Tensor | None:
    """Decode the quantized latents ``z_q`` with the tracker's pitch (``tracked_pitch``) driving the excitation
    where it finds voicing, and, if the stream ``sent`` a pitch, heard by the decoder in its place."""
    if target is None:
        return None
    f0 = torch.from_numpy(target)
    with torch.no_grad():
        return codec.synthesize(codec.features(z_q, f0, sent), f0)[0][0, 0, :len(x)]


def pitch_errors(codec, feats: torch.Tensor, target: np.ndarray | None) -> np.ndarray | None:
    """On the frames the tracker calls voiced: (tracked pitch in Hz, |log2(decoder's pitch / tracked)|, the
    decoder's mean voicing below 1 kHz), shape (3, frames), from the decoder features ``feats``; None without
    a tracked pitch."""
    if target is None:
        return None
    with torch.no_grad():
        pitch, logit, per_bin = codec.source.controls(feats)
    low = torch.sigmoid(logit) if per_bin is None else torch.sigmoid(per_bin[..., :N_FFT * 1000 // 16000]).mean(-1)
    voicing, target = low[0].numpy(), target[0]
    v = target > 0
    return np.stack([target[v], np.abs(np.log2(pitch[0].numpy()[v] / target[v])), voicing[v]])


def pitch_table(parts: list[np.ndarray]) -> list[str]:
    """Markdown rows of the decoder's pitch error and voicing, by the tracker's pitch range."""
    f0, err, voicing = np.concatenate(parts, 1)
    lines = ["", "Pitch the decoder predicts, against the tracker's (frames the tracker calls voiced):", "",
             "| tracker's pitch | frames | median error | error > 5 % of an octave | octave errors (> 0.5) | voicing below 1 kHz |",
             "|---|---:|---:|---:|---:|---:|"]
    for lo, hi in ((60, 140), (140, 220), (220, 500), (60, 500)):
        m = (f0 >= lo) & (f0 < hi)
        if m.any():
            lines.append(f"| {lo}-{hi} Hz | {m.sum()} | {100 * np.median(err[m]):.1f} % oct | {100 * np.mean(err[m] > 0.05):.0f} % "
                         f"| {100 * np.mean(err[m] > 0.5):.1f} % | {voicing[m].mean():.2f} |")
    return lines


def write_report(path: str, lines: list[str]) -> None:
    """Print the markdown lines and write them to ``path``."""
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=8)
    p.add_argument("--kbps", type=float, default=6.0)
    p.add_argument("--model", default=None, help="weights (default: the shipped model)")
    p.add_argument("--data", default=DEFAULT_ROOT)
    p.add_argument("--fit-crops", type=int, default=100, help="4 s train crops to fit the PCA and the latent probe on")
    p.add_argument("--out", default="reports/oracles.md")
    a = p.parse_args()
    torch.set_num_threads(1)
    engine = load_engine(a.model)
    n_q = mode(a.kbps).rows
    probes = fit_probes(engine.codec, a.data, a.fit_crops)
    rows: dict[str, list[float]] = {}
    pitch: list[np.ndarray] = []
    for clip in tqdm(excerpts(a.data, "test", a.clips), desc="clips"):
        x = torch.from_numpy(clip)
        with torch.no_grad():  # decode(codes), with the decoder features kept for the pitch rows
            codes = engine.codec.encode(x, n_q)
            symbols, stages = engine.codec.split(codes)  # a stream of n_q rows may send the pitch in one
            z_q, sent = engine.codec.quantizer.decode(stages), None if symbols is None else dequantize(symbols)
            feats = engine.codec.features(z_q, sent)
            y = engine.codec.synthesize(feats, sent)[0][0, 0, :len(x)]
        true_mag, out_mag = stft(x).abs(), stft(y).abs()
        target = tracked_pitch(engine.codec, codes, x)
        errors = pitch_errors(engine.codec, feats, target)
        if errors is not None:
            pitch.append(errors)
        variants = {
            f"codec output ({a.kbps:g} kbps)": y,
            "codec output with the pitch tracker's pitch": with_tracked_pitch(engine.codec, z_q, symbols is not None, x, target),
            "codec magnitude + Griffin-Lim phase (50)": griffin_lim(out_mag, len(x), 50),
            "true magnitude + random phase": griffin_lim(true_mag, len(x), 0),
            "true magnitude + Griffin-Lim phase (10)": griffin_lim(true_mag, len(x), 10),
            "true magnitude + Griffin-Lim phase (100)": griffin_lim(true_mag, len(x), 100),
        }
        variants.update(pasted_in_time(x, y))
        variants.update({k: griffin_lim(m, len(x), 50) for k, m in mixtures(true_mag, out_mag).items()})
        pairs, mean = log_pairs(x), probes["mean"]
        for k in (32, 128):
            axes = probes["axes"][:k].T
            rebuilt = (pairs - mean) @ axes @ axes.T + mean
            variants[f"true magnitude through a {k}-number PCA + Griffin-Lim (50)"] = griffin_lim(from_pairs(rebuilt, len(x)), len(x), 50)
        guess = latent_pairs(engine.codec, x) @ probes["ridge"]
        variants["magnitude predicted linearly from the codec's latent + Griffin-Lim (50)"] = griffin_lim(from_pairs(guess, len(x)), len(x), 50)
        for name, z in variants.items():
            if z is None:
                continue
            rows.setdefault(name, []).append(pesq_wb(x.numpy(), z.numpy()))
    lines = [f"# Oracles: magnitude or phase? ({a.clips} test clips, first 4 s, model `{engine.codec.model_id}`)", "",
             "| resynthesis (STFT 640/160) | PESQ-WB |", "|---|---:|"]
    lines += [f"| {name} | {np.nanmean(v):.2f} |" for name, v in rows.items()]
    if pitch:
        lines += pitch_table(pitch)
    write_report(a.out, lines)


if __name__ == "__main__":
    main()

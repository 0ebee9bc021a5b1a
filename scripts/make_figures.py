"""Regenerate every figure of docs/autoencoders.md from the shipped model: one command.

    python scripts/make_figures.py                       # docs/figures/*.png (about 2 minutes on 1 thread)
    python scripts/make_figures.py --results reports/benchmark/results.json   # reuse a benchmark for the R-D plot
    python scripts/make_figures.py --clips 8 --out /tmp/figs                  # quicker, elsewhere

Figures (all measured with audiocodec/weights/default.safetensors and audiocodec/weights/pca.npz):
  before_after.png      waveform and spectrogram of a sample, original vs decoded at 1.5 and 6 kbps
  latents.png           the 128-d latents of an utterance over time, and their trajectory on 2 principal axes
  pca_basis.png         what the linear autoencoder learned: principal components of 20 ms frames
  codebooks.png         code usage per RVQ stage (sorted histogram) and the entropy of each stage in bits
  rvq_stages.png        latent error and audio distortion vs number of codebooks (each stage adds 0.5 kbps)
  rate_distortion.png   PESQ-WB and STOI vs actual kbps: neural, PCA, Opus, Codec2
and figures.json with the numbers quoted in the text (the model's metadata, entropies, ...)."""
from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np
import torch

from audiocodec import audio
from audiocodec.compress import compress, decompress
from audiocodec.stream.engine import load_engine
from audiocodec.stream.modes import bitrates
from audiocodec.evaluation import metrics as M
from audiocodec.evaluation.codecs import make_codecs
from audiocodec.evaluation.pca import load_pca
from audiocodec.evaluation.plots import _plt, rd_plot
from audiocodec.evaluation.product import model_info
from audiocodec.evaluation.runner import evaluate, fixed_test_clips
from audiocodec.errors import CodecError

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SAMPLE = os.path.join(ROOT, "samples", "speech_female.wav")
DPI = 80


def save(fig, out, name, plt):
    """PNG with a 256-colour palette (Pillow): docs figures stay around 100 KB."""
    from PIL import Image

    path = os.path.join(out, name)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    Image.open(path).convert("RGB").quantize(256, dither=Image.Dither.NONE).save(path, optimize=True)


def _spec_db(x, n_fft=512, hop=128):
    x = np.pad(np.asarray(x, np.float64), (0, max(0, n_fft - len(x))))
    idx = np.arange(n_fft)[None] + hop * np.arange(1 + (len(x) - n_fft) // hop)[:, None]
    return 20 * np.log10(np.abs(np.fft.rfft(x[idx] * np.hanning(n_fft), axis=1)).T + 1e-6)


def before_after(plt, wav, engine, out, info):
    versions = [("original", wav)]
    for kbps in (1.5, 6.0):
        data = compress(wav, kbps, engine)
        y = decompress(data, engine)
        versions.append((f"decoded, {kbps:g} kbps ({8 * len(data) / (len(wav) / 16000) / 1000:.2f} kbps file), "
                         f"PESQ-WB {M.pesq_wb(wav, y):.2f}", y))
        info[f"sample_pesq_{kbps:g}"] = M.pesq_wb(wav, y)
    t = np.arange(len(wav)) / 16000
    fig, axes = plt.subplots(2, 3, figsize=(11, 4.2), gridspec_kw={"height_ratios": [1, 2]})
    for j, (title, y) in enumerate(versions):
        axes[0, j].plot(t, y, lw=0.3, color="k")
        axes[0, j].set_ylim(-1.1 * np.abs(wav).max(), 1.1 * np.abs(wav).max())
        axes[0, j].set_title(title, fontsize=8)
        axes[0, j].set_xticks([])
        axes[1, j].imshow(_spec_db(y), origin="lower", aspect="auto", cmap="magma", vmin=-60, vmax=30,
                          extent=(0, len(y) / 16000, 0, 8))
        axes[1, j].set_xlabel("time (s)", fontsize=8)
    axes[1, 0].set_ylabel("kHz")
    for ax in axes.ravel():
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    save(fig, out, "before_after.png", plt)


def latents_figure(plt, wav, codec, out, info):
    z = codec.encode_latents(torch.from_numpy(wav))[0].numpy()  # (128, frames)
    zc = z - z.mean(1, keepdims=True)
    u, s, _ = np.linalg.svd(zc, full_matrices=False)
    proj = u[:, :2].T @ zc  # (2, frames)
    info["latent_frames"] = int(z.shape[1])
    info["latent_var_top2"] = float((s[:2] ** 2).sum() / (s ** 2).sum())
    energy = 10 * np.log10(np.maximum(np.array([np.mean(wav[i * 320:(i + 1) * 320] ** 2) for i in range(z.shape[1])]), 1e-10))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1.6, 1]})
    lim = np.percentile(np.abs(z), 99)
    im = axes[0].imshow(z, origin="lower", aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim,
                        extent=(0, z.shape[1] / 50, 0, z.shape[0]))
    axes[0].set_xlabel("time (s) — one column per 20 ms frame")
    axes[0].set_ylabel("latent dimension (128)")
    axes[0].set_title("encoder output before quantization", fontsize=9)
    fig.colorbar(im, ax=axes[0], fraction=0.03)
    sc = axes[1].scatter(proj[0], proj[1], c=np.arange(z.shape[1]) / 50, cmap="viridis", s=10 + 0.5 * (energy - energy.min()))
    axes[1].plot(proj[0], proj[1], lw=0.4, color="gray", alpha=0.6)
    axes[1].set_xlabel("principal axis 1")
    axes[1].set_ylabel("principal axis 2")
    axes[1].set_title(f"trajectory (2 axes = {100 * info['latent_var_top2']:.0f} % of variance); dot size = loudness", fontsize=9)
    fig.colorbar(sc, ax=axes[1], fraction=0.05, label="time (s)")
    fig.tight_layout()
    save(fig, out, "latents.png", plt)


def pca_basis_figure(plt, out, info):
    model = load_pca()
    var = model.variance / model.variance.sum()
    info["pca_var_top"] = {k: float(var[:k].sum()) for k in (4, 8, 16, 32, 64)}
    info["pca_bits"] = {f"{k:g}": [int(b) for b in model.allocate(model.bits_per_hop(k))[:24]] for k in bitrates()}
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.3), gridspec_kw={"width_ratios": [1.6, 1]})
    t = np.arange(model.frame) / 16
    for i in range(6):
        axes[0].plot(t, model.basis[i] - 0.25 * i, lw=0.9, label=f"#{i + 1}: {100 * var[i]:.1f} %")
    axes[0].set_yticks([])
    axes[0].set_xlabel("ms within the 20 ms frame")
    axes[0].set_title("first principal components (the linear autoencoder's decoder rows)", fontsize=9)
    axes[0].legend(fontsize=7, loc="upper right", ncol=2)
    axes[1].plot(np.arange(1, len(model.variance) + 1), np.cumsum(var), color="k")
    axes[1].set_xscale("log")
    axes[1].set_xlabel("components kept")
    axes[1].set_ylabel("fraction of variance")
    axes[1].grid(alpha=0.3)
    axes[1].set_title("variance captured by the top-k components", fontsize=9)
    fig.tight_layout()
    save(fig, out, "pca_basis.png", plt)


def codebook_figures(plt, wavs, codec, out, info):
    n_stages, size = codec.cfg.n_codebooks, codec.cfg.codebook_size
    counts = np.zeros((n_stages, size))
    for w in wavs:
        with torch.no_grad():  # the RVQ stages alone (a stream that sends the pitch spends a row on it)
            z, late = codec.encoder.parts(codec.as_batch(torch.from_numpy(w)))
            codes = codec.quantizer.encode(z, n_stages, late)[0].numpy()
        for k in range(n_stages):
            counts[k] += np.bincount(codes[k], minlength=size)
    p = counts / counts.sum(1, keepdims=True)
    ent = -np.sum(np.where(p > 0, p * np.log2(np.where(p > 0, p, 1)), 0), axis=1)
    info["stage_entropy_bits"] = [float(e) for e in ent]
    info["codebook_frames"] = int(counts[0].sum())
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    for k in (0, 1, 5, 11, 23):
        axes[0].plot(np.arange(1, size + 1), np.sort(p[k])[::-1], lw=1, label=f"stage {k + 1}: H = {ent[k]:.2f} bits")
    axes[0].axhline(1 / size, color="k", ls=":", lw=0.8)
    axes[0].text(2, 1.15 / size, "uniform (10 bits)", fontsize=7)
    axes[0].set_xscale("log")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("codes, most used first")
    axes[0].set_ylabel("share of frames")
    axes[0].legend(fontsize=7)
    axes[0].set_title(f"code usage on {int(counts[0].sum())} frames", fontsize=9)
    axes[1].bar(np.arange(1, n_stages + 1), ent, color="tab:red")
    axes[1].axhline(np.log2(size), color="k", ls=":", lw=0.8)
    axes[1].set_ylim(0, np.log2(size) + 0.5)
    axes[1].set_xlabel("RVQ stage")
    axes[1].set_ylabel("entropy (bits per code)")
    axes[1].set_title("10 bits are spent per code; the entropy is what a perfect entropy coder needs", fontsize=9)
    fig.tight_layout()
    save(fig, out, "codebooks.png", plt)


def rvq_stages_figure(plt, wavs, codec, out, info):
    ks = [1, 2, 3, 4, 6, 8, 12, 16, 20, 24]
    mel, left = np.zeros(len(ks)), np.zeros(len(ks))
    with torch.no_grad():
        for w in wavs:
            z = codec.encode_latents(torch.from_numpy(w))
            codes = codec.quantizer.encode(z, max(ks))
            energy = (z - z.mean(-1, keepdim=True)).pow(2).sum()
            for j, k in enumerate(ks):
                y = codec.synthesize(codec.decoder(codec.quantizer.decode(codes[:, :k])))[0][0, 0, :len(w)].numpy()
                mel[j] += M.mel_distance(w, y) / len(wavs)
                left[j] += float((z - codec.quantizer.decode(codes[:, :k])).pow(2).sum() / energy) / len(wavs)
    info["rvq_mel_distance"] = {str(k): float(m) for k, m in zip(ks, mel)}
    info["rvq_latent_error"] = {str(k): float(v) for k, v in zip(ks, left)}
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, y, label in ((axes[0], left, "latent error |z - z_hat|^2 / var(z)"), (axes[1], mel, "log-mel distance of the audio")):
        ax.plot(ks, y, marker="o", color="tab:red")
        ax.set_xlabel("codebooks used (n_q)")
        ax.set_ylabel(label + "\n(lower is better)")
        top = ax.secondary_xaxis("top", functions=(lambda k: k * 0.5, lambda r: r / 0.5))
        top.set_xlabel("fixed bitrate (kbps)")
        ax.grid(alpha=0.3)
    axes[0].set_ylim(bottom=0)
    fig.tight_layout()
    save(fig, out, "rvq_stages.png", plt)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "figures"))
    ap.add_argument("--clips", type=int, default=20, help="fixed test-split clips for code usage and R-D (default 20)")
    ap.add_argument("--results", help="results.json of scripts/benchmark.py or `audiocodec evaluate` for the R-D plot")
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    plt = _plt()
    engine = load_engine()
    codec = engine.codec
    info = {"model": model_info()}
    wav = audio.load(SAMPLE)
    try:
        paths = fixed_test_clips(args.clips)
    except CodecError:
        paths = sorted(os.path.join(ROOT, "samples", f) for f in os.listdir(os.path.join(ROOT, "samples")) if f.endswith(".wav"))
    wavs = [audio.load(p) for p in paths]

    steps = [("before_after", lambda: before_after(plt, wav, engine, args.out, info)),
             ("latents", lambda: latents_figure(plt, wav, codec, args.out, info)),
             ("pca_basis", lambda: pca_basis_figure(plt, args.out, info)),
             ("codebooks", lambda: codebook_figures(plt, wavs, codec, args.out, info)),
             ("rvq_stages", lambda: rvq_stages_figure(plt, wavs[:8], codec, args.out, info))]
    for name, fn in steps:
        print(f"{name}.png", file=sys.stderr)
        fn()

    print("rate_distortion.png", file=sys.stderr)
    if args.results:
        with open(args.results) as f:
            results = json.load(f)
    else:
        results = evaluate(paths, make_codecs(warn=lambda m: print(m, file=sys.stderr)), which=("pesq_wb", "stoi"))
    rd_plot(results["summary"], os.path.join(args.out, "rate_distortion.png"), metrics=("pesq_wb", "stoi"),
            title=f"{len(results['clips'])} test clips; model {info['model']['model_id']}", dpi=DPI)
    info["rd_summary"] = [{k: s[k] for k in ("codec", "nominal_kbps", "kbps", "pesq_wb", "stoi", "rtf")} for s in results["summary"]]
    info["rd_clips"] = len(results["clips"])
    with open(os.path.join(args.out, "figures.json"), "w") as f:
        json.dump(info, f, indent=1)
    for fn in sorted(os.listdir(args.out)):
        print(f"  {fn:22s} {os.path.getsize(os.path.join(args.out, fn)) // 1024:4d} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

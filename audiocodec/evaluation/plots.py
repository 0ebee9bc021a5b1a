"""Figures for reports: the rate-distortion plot and small spectrogram images (matplotlib, Agg backend)."""
from __future__ import annotations

import math

import numpy as np

from . import metrics as M

STYLE = {"neural": ("tab:red", "o", "neural (this codec)"),
         "hybrid": ("tab:purple", "P", "hybrid (neural 3 kbps + low-band waveform)"), "opus": ("tab:blue", "s", "Opus"),
         "codec2": ("tab:green", "^", "Codec2"), "pca": ("tab:gray", "D", "PCA (linear)")}


def rd_panels(measured) -> list[str]:
    """The R-D plot's panels among the metrics measured: PESQ-WB, ViSQOL and STOI (else the first measured)."""
    return [m for m in ("pesq_wb", "visqol", "stoi") if m in measured] or list(measured)[:1]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


OWN = ("neural", "hybrid")  # this codec's families: an earlier run's are drawn beside them (``rd_plot``'s ``before``)


def _points(summary: list[dict], family: str, metric: str) -> list[tuple[float, float]]:
    return sorted((s["kbps"], s[metric]) for s in summary
                  if s["family"] == family and s.get(metric) is not None and math.isfinite(s[metric]))


def rd_plot(summary: list[dict], path: str, metrics=("pesq_wb", "stoi"), title: str | None = None, dpi: int = 90,
            before: list[dict] | None = None, labels: tuple[str, str] = ("this run", "earlier run")) -> None:
    """One panel per metric: metric vs actual kbps (payload), one line per codec family; with ``before`` (an
    earlier run's summary, e.g. ``benchmark.py --compare``'s) this codec's lines of that run too, dashed, and
    ``labels`` telling the two runs apart in the legend."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 3.6), squeeze=False)
    families = [f for f in STYLE if any(s["family"] == f for s in summary)]
    for ax, m in zip(axes[0], metrics):
        for fam in [f for f in OWN if f in families] if before else []:
            if pts := _points(before, fam, m):
                color, marker, label = STYLE[fam]
                ax.plot(*zip(*pts), marker=marker, color=color, label=f"{label}, {labels[1]}", lw=1.2, ms=4,
                        ls="--", alpha=0.5, mfc="none")
        for fam in families:
            pts = _points(summary, fam, m)
            if not pts:
                continue
            color, marker, label = STYLE[fam]
            label = f"{label}, {labels[0]}" if before and fam in OWN else label
            ax.plot(*zip(*pts), marker=marker, color=color, label=label, lw=1.5, ms=5)
        ax.set_xscale("log")
        ticks = [1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24]
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{t:g}" for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("actual bitrate (kbps, payload)")
        ax.set_ylabel(M.LABELS[m] + ("" if M.HIGHER_IS_BETTER[m] else " (lower is better)"))
        ax.grid(alpha=0.3)
    handles, names = axes[0][0].get_legend_handles_labels()
    below = 0.0
    if len(names) > 4:  # too many to sit inside a panel: one legend under them all
        rows = math.ceil(len(names) / 2)
        fig.set_figheight(fig.get_figheight() + 0.22 * rows)
        below = 0.22 * rows / fig.get_figheight()
        fig.legend(handles, names, loc="lower center", ncol=2, fontsize=8, frameon=False)
    elif names:
        axes[0][0].legend(fontsize=8, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, below, 1, 1))
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


DB_RANGE = (-60.0, 30.0)  # one fixed colour scale for every spectrogram, so images compare directly


def spectrogram_png(wav: np.ndarray, path: str, title: str = "", sr: int = 16000, dpi: int = 72,
                    size=(4.8, 1.9)) -> None:
    """A small log-magnitude spectrogram (dB re. 1, fixed scale ``DB_RANGE``, 0..8 kHz) as a PNG."""
    plt = _plt()
    wav = np.asarray(wav, dtype=np.float64).ravel()
    n_fft, hop = 512, 128
    x = np.pad(wav, (0, max(0, n_fft - len(wav))))
    n = 1 + (len(x) - n_fft) // hop
    idx = np.arange(n_fft)[None] + hop * np.arange(n)[:, None]
    spec = 20 * np.log10(np.abs(np.fft.rfft(x[idx] * np.hanning(n_fft), axis=1)).T + 1e-6)
    fig, ax = plt.subplots(figsize=size)
    ax.imshow(spec, origin="lower", aspect="auto", cmap="magma", vmin=DB_RANGE[0], vmax=DB_RANGE[1],
              extent=(0, len(wav) / sr, 0, sr / 2000))
    ax.set_ylabel("kHz", fontsize=7)
    ax.tick_params(labelsize=7)
    if title:
        ax.set_title(title, fontsize=8)
    fig.tight_layout(pad=0.3)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)

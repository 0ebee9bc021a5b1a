"""The linear baseline: PCA of 20 ms frames (a linear autoencoder) with scalar quantizers at a bit budget.

Analysis: 320-sample frames every 160 samples (50 % overlap, 100 frames/s), each multiplied by a periodic
sqrt-Hann window. Encoder = projection on the top principal components (fitted on the training split by
``scripts/fit_pca.py``); decoder = the transposed projection, the same window again, and overlap-add
(sqrt-Hann squared sums to one at 50 % overlap, so without quantization the round trip is exact).

Bits: a budget of ``kbps * 1000 / 100`` bits per hop is shared among components by greedy reverse
water-filling: each next bit goes to the component whose measured distortion drops most. Component ``i``
with ``b`` bits uses a uniform ``2**b``-level quantizer on [-c, c], c = loading[i, b] * std_i, the loading
chosen on training data to minimise the squared error. The bitstream is a 10-byte header plus the indices
packed back to back, so the bitrate is counted from real bytes like every other codec here.
"""
from __future__ import annotations

import os
import struct
import time
from dataclasses import dataclass

import numpy as np

from ..constants import FRAME, SAMPLE_RATE
from ..errors import CodecError
from .base import CodecUnderTest, Coded

WEIGHTS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "weights", "pca.npz")
HOP, MAX_BITS = FRAME // 2, 12
HEADER = struct.Struct("<4sIH")  # magic, sample count, bits per hop
MAGIC = b"PCA1"


def window(n: int = FRAME) -> np.ndarray:
    """Periodic sqrt-Hann: its square overlap-adds to exactly 1 at hop n/2."""
    return np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n))


def analyze_frames(wav: np.ndarray, frame: int = FRAME, hop: int = HOP) -> np.ndarray:
    """wav (T,) -> windowed frames (n, frame), padded so every sample is covered by frame/hop frames."""
    wav = np.asarray(wav, dtype=np.float64).ravel()
    lead = frame - hop
    n = -(-(len(wav) + lead) // hop)
    padded = np.zeros((n - 1) * hop + frame)
    padded[lead:lead + len(wav)] = wav
    idx = np.arange(frame)[None, :] + hop * np.arange(n)[:, None]
    return padded[idx] * window(frame)


def overlap_add(frames: np.ndarray, length: int, hop: int = HOP) -> np.ndarray:
    """Inverse of ``analyze_frames``: window again, overlap-add, drop the padding -> (length,) float32."""
    n, frame = frames.shape
    out = np.zeros((n - 1) * hop + frame)
    for k, fr in enumerate(frames * window(frame)):
        out[k * hop:k * hop + frame] += fr
    return out[frame - hop:frame - hop + length].astype(np.float32)


def _quantize(y: np.ndarray, c, bits: int) -> np.ndarray:
    step = 2.0 * c / (1 << bits)
    return np.clip(np.floor((y + c) / step), 0, (1 << bits) - 1).astype(np.int64)


def _dequantize(idx: np.ndarray, c, bits: int) -> np.ndarray:
    step = 2.0 * c / (1 << bits)
    return -c + (idx + 0.5) * step


@dataclass
class PcaModel:
    mean: np.ndarray      # (frame,)
    basis: np.ndarray     # (K, frame) orthonormal rows, by decreasing variance
    variance: np.ndarray  # (frame,) eigenvalues, decreasing
    loading: np.ndarray   # (K, MAX_BITS): clip range / std for 1..MAX_BITS bits
    mse: np.ndarray       # (K, MAX_BITS + 1): measured squared error per coefficient with 0..MAX_BITS bits
    hop: int = HOP

    @property
    def frame(self) -> int:
        return self.basis.shape[1]

    @property
    def frames_per_second(self) -> float:
        return SAMPLE_RATE / self.hop

    def bits_per_hop(self, kbps: float) -> int:
        return int(round(kbps * 1000 / self.frames_per_second))

    def allocate(self, total_bits: int) -> np.ndarray:
        """Bits per component (K,) summing to ``total_bits``: greedy reverse water-filling on ``mse``."""
        k = len(self.basis)
        if not 0 <= total_bits <= k * MAX_BITS:
            raise CodecError(f"PCA codec: {total_bits} bits per frame is outside 0..{k * MAX_BITS}")
        bits = np.zeros(k, dtype=np.int64)
        rows = np.arange(k)
        for _ in range(total_bits):
            nxt = np.minimum(bits + 1, MAX_BITS)
            gain = np.where(bits < MAX_BITS, self.mse[rows, bits] - self.mse[rows, nxt], -np.inf)
            bits[int(np.argmax(gain))] += 1
        return bits

    def _clip(self, i: int, b: int) -> float:
        return float(self.loading[i, b - 1] * np.sqrt(self.variance[i]))

    # ---- the codec ------------------------------------------------------------------------------------
    def encode(self, wav: np.ndarray, kbps: float) -> bytes:
        total = self.bits_per_hop(kbps)
        bits = self.allocate(total)
        coeffs = (analyze_frames(wav, self.frame, self.hop) - self.mean) @ self.basis.T  # (n, K)
        columns = []
        for i in np.flatnonzero(bits):
            idx = _quantize(coeffs[:, i], self._clip(i, bits[i]), int(bits[i]))
            shifts = np.arange(bits[i] - 1, -1, -1)
            columns.append((idx[:, None] >> shifts) & 1)
        payload = np.packbits(np.hstack(columns).astype(np.uint8).ravel()).tobytes() if columns else b""
        return HEADER.pack(MAGIC, len(wav), total) + payload

    def decode(self, data: bytes) -> np.ndarray:
        if len(data) < HEADER.size:
            raise CodecError("PCA stream: truncated header")
        magic, length, total = HEADER.unpack_from(data)
        if magic != MAGIC:
            raise CodecError("PCA stream: bad magic")
        bits = self.allocate(total)
        n = -(-(length + self.frame - self.hop) // self.hop)
        need = -(-n * total // 8)
        raw = np.frombuffer(data, dtype=np.uint8, offset=HEADER.size)
        if len(raw) != need:
            raise CodecError(f"PCA stream: expected {need} payload bytes, got {len(raw)}")
        flat = np.unpackbits(raw)[:n * total].reshape(n, total).astype(np.int64)
        coeffs = np.zeros((n, len(self.basis)))
        col = 0
        for i in np.flatnonzero(bits):
            b = int(bits[i])
            idx = flat[:, col:col + b] @ (1 << np.arange(b - 1, -1, -1))
            coeffs[:, i] = _dequantize(idx, self._clip(i, b), b)
            col += b
        return overlap_add(coeffs @ self.basis + self.mean, length, self.hop)

    # ---- storage --------------------------------------------------------------------------------------
    def save(self, path: str) -> None:
        tmp = path + ".part.npz"
        np.savez(tmp, mean=self.mean.astype(np.float32), basis=self.basis.astype(np.float32),
                 variance=self.variance.astype(np.float32), loading=self.loading.astype(np.float32),
                 mse=self.mse.astype(np.float32), hop=np.int64(self.hop))
        os.replace(tmp, path)

    @staticmethod
    def load(path: str = WEIGHTS) -> "PcaModel":
        if not os.path.isfile(path):
            raise CodecError(f"{path}: PCA baseline not found (run scripts/fit_pca.py)")
        d = np.load(path)
        return PcaModel(d["mean"].astype(np.float64), d["basis"].astype(np.float64), d["variance"].astype(np.float64),
                        d["loading"].astype(np.float64), d["mse"].astype(np.float64), int(d["hop"]))


def fit(frames: np.ndarray, n_components: int = 160, n_quant: int = 20000, seed: int = 0,
        grid: np.ndarray = np.geomspace(0.3, 16.0, 40)) -> PcaModel:
    """Fit on windowed frames (N, frame): eigenvectors of the covariance, then each kept component's
    best clip range and distortion for 1..MAX_BITS bits, measured on ``n_quant`` of the frames."""
    x = np.asarray(frames, dtype=np.float64)
    mean = x.mean(0)
    cov = np.zeros((x.shape[1], x.shape[1]))
    for s in range(0, len(x), 20000):
        xc = x[s:s + 20000] - mean
        cov += xc.T @ xc
    cov /= len(x)
    var, vecs = np.linalg.eigh(cov)
    order = np.argsort(var)[::-1]
    var, basis = np.maximum(var[order], 0.0), vecs[:, order].T[:n_components]
    sub = np.random.default_rng(seed).choice(len(x), size=min(n_quant, len(x)), replace=False)
    y = (x[np.sort(sub)] - mean) @ basis.T  # (n_quant, K)
    loading = np.zeros((n_components, MAX_BITS))
    mse = np.zeros((n_components, MAX_BITS + 1))
    for i in range(n_components):
        yi = y[:, i:i + 1]
        mse[i, 0] = float(np.mean(yi ** 2))
        std = np.sqrt(max(var[i], 1e-20))
        for b in range(1, MAX_BITS + 1):
            c = grid[None, :] * std
            err = np.mean((_dequantize(_quantize(yi, c, b), c, b) - yi) ** 2, axis=0)
            j = int(np.argmin(err))
            loading[i, b - 1], mse[i, b] = grid[j], min(err[j], mse[i, b - 1])
    return PcaModel(mean, basis, var, loading, mse, HOP)


_CACHE: dict[str, PcaModel] = {}


def load_pca(path: str = WEIGHTS) -> PcaModel:
    if path not in _CACHE:
        _CACHE[path] = PcaModel.load(path)
    return _CACHE[path]


class PcaCodec(CodecUnderTest):
    """The PCA baseline at a nominal bitrate (fixed rate: the same number of bits every 10 ms)."""
    family = "pca"

    def __init__(self, kbps: float, model: PcaModel | None = None):
        super().__init__(kbps)
        self.model = model or load_pca()

    def run(self, wav: np.ndarray) -> Coded:
        t0 = time.perf_counter()
        data = self.model.encode(wav, self.nominal_kbps)
        t1 = time.perf_counter()
        decoded = self.model.decode(data)
        t2 = time.perf_counter()
        return Coded(decoded, len(data) - HEADER.size, len(data), t1 - t0, t2 - t1)

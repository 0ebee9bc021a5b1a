"""Metrics, Ogg packet counting, the reference codecs' bit counts and the PCA baseline's arithmetic."""
import math
import struct
import subprocess

import numpy as np
import pytest

from audiocodec.evaluation import metrics as M
from audiocodec.evaluation.ogg import opus_payload_bytes, packet_sizes


def _noisy(x, snr_db, rng):
    noise = rng.standard_normal(len(x))
    noise *= np.sqrt(np.mean(x ** 2) / np.mean(noise ** 2) / 10 ** (snr_db / 10))
    return (x + noise).astype(np.float32)


FAST = tuple(m for m in M.METRICS if m != "visqol")  # ViSQOL has its own test, on a short clip


def test_identical_signals_score_perfectly(speech):
    m = M.all_metrics(speech, speech, which=FAST)
    assert m["si_sdr"] == 100.0
    assert m["pesq_wb"] > 4.4
    assert m["stoi"] > 0.99 and m["estoi"] > 0.99
    assert m["mel_distance"] == 0.0


def test_noise_lowers_every_metric(speech, rng):
    clean = M.all_metrics(speech, speech, which=FAST)
    mild = M.all_metrics(speech, _noisy(speech, 20, rng), which=FAST)
    strong = M.all_metrics(speech, _noisy(speech, 0, rng), which=FAST)
    assert abs(mild["si_sdr"] - 20) < 0.5 and abs(strong["si_sdr"]) < 0.5  # SI-SDR of additive white noise = SNR
    for m in ("pesq_wb", "stoi", "estoi", "si_sdr"):
        assert clean[m] > mild[m] > strong[m], m
    assert clean["mel_distance"] < mild["mel_distance"] < strong["mel_distance"]


def test_visqol_scores_the_same_clip_high_and_noise_lower(speech, rng):
    clip = speech[:32000]  # 2 s: ViSQOL takes about 0.3 s per second of audio
    same, faint, loud = M.visqol(clip, clip), M.visqol(clip, _noisy(clip, 40, rng)), M.visqol(clip, _noisy(clip, 20, rng))
    assert 3.5 < same <= 5.0  # the lattice mapper scores clean speech against itself about 4, not 5
    assert same > faint > loud >= 1.0
    assert M.visqol(clip, 0.5 * clip) == pytest.approx(same, abs=0.05)  # it normalises the level
    assert math.isnan(M.visqol(np.zeros(16000, np.float32), np.zeros(16000, np.float32)))  # no speech: skipped
    assert M.LABELS["visqol"] == "ViSQOL" and M.HIGHER_IS_BETTER["visqol"]


def test_si_sdr_ignores_scale_and_lengths_are_trimmed(speech):
    assert M.si_sdr(speech, 0.3 * speech) == 100.0
    assert M.mel_distance(speech, np.concatenate([speech, np.zeros(500, np.float32)])) == 0.0


def test_delay_is_found_and_removed(speech, rng):
    for delay in (0, 1, 320, 1234):
        late = np.concatenate([np.zeros(delay, np.float32), speech])[:len(speech)]
        late = late + 0.003 * rng.standard_normal(len(late)).astype(np.float32)
        assert M.estimate_delay(speech, late) == delay
        ref, deg = M.align(speech, late, delay)
        assert len(ref) == len(deg) == len(speech) - delay and M.si_sdr(ref, deg) > 20
    assert M.estimate_delay(speech[:30], speech[:30]) == 0
    half = len(speech) // 2
    pairs = [(x, np.concatenate([np.zeros(160, np.float32), x])[:len(x)]) for x in (speech[:half], speech[half:])]
    assert M.common_delay(pairs) == 160


def test_pesq_without_speech_is_nan_and_skipped():
    silence = np.zeros(16000, dtype=np.float32)
    assert math.isnan(M.pesq_wb(silence, silence))
    assert M.mean_ignoring_nan([1.0, math.nan, 3.0, None]) == 2.0
    assert math.isnan(M.mean_ignoring_nan([math.nan]))


def _ogg_page(segments: bytes, body: bytes, seq: int, flags: int = 0) -> bytes:
    head = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, 0, 1, seq, 0, len(segments)) + segments
    return head + body  # the parser does not verify CRCs; real files are checked below


def test_ogg_packets_across_pages():
    # packet A: 300 bytes (lacing 255, 45), packet B: 255 bytes, split across two pages (255 | 0)
    p1 = _ogg_page(bytes([255, 45, 255]), b"a" * 300 + b"b" * 255, 0)
    p2 = _ogg_page(bytes([0, 10]), b"c" * 10, 1, flags=1)
    assert packet_sizes(p1 + p2) == [300, 255, 10]
    assert opus_payload_bytes(p1 + p2) == 10
    with pytest.raises(ValueError):
        packet_sizes(p1[:-5])
    with pytest.raises(ValueError):
        packet_sizes(b"RIFF" + p1)


@pytest.mark.skipif(not __import__("shutil").which("opusenc"), reason="opus-tools not installed")
def test_opus_payload_of_a_real_file(tmp_path, speech):
    from audiocodec.output import save

    save(str(tmp_path / "in.wav"), speech)
    subprocess.run(["opusenc", "--quiet", "--bitrate", "12", str(tmp_path / "in.wav"), str(tmp_path / "o.opus")], check=True)
    data = (tmp_path / "o.opus").read_bytes()
    sizes = packet_sizes(data)
    assert data[28:36] == b"OpusHead" and sizes[0] == 19  # first packet of the first page: the ID header
    n_pages = data.count(b"OggS")
    overhead = len(data) - sum(sizes)
    assert overhead >= 27 * n_pages  # every page costs a 27-byte header plus its lacing table
    frames = -(-len(speech) // 320)
    assert frames <= len(sizes) - 2 <= frames + 3  # one packet per 20 ms
    kbps = 8 * opus_payload_bytes(data) / (len(speech) / 16000) / 1000
    assert 6 < kbps < 14


@pytest.mark.skipif(not __import__("shutil").which("c2enc"), reason="codec2 not installed")
def test_codec2_bits_equal_the_mode(speech):
    from audiocodec.evaluation.baselines import Codec2Codec

    out = Codec2Codec(3200).run(speech)
    assert 10 < 1000 * M.estimate_delay(speech, out.decoded) / 16000 < 40  # Codec2 lags by about 20 ms
    assert out.decoded.shape == speech.shape
    frames = -(-len(speech) // 320)
    assert 8 * frames <= out.payload_bytes <= 8 * (frames + 1)  # 64 bits per 20 ms frame, the last one padded
    assert abs(8 * out.payload_bytes / (len(speech) / 16000) - 3200) < 40


# ---- PCA baseline ---------------------------------------------------------------------------------------

def test_pca_framing_is_perfect_reconstruction(rng):
    from audiocodec.evaluation.pca import analyze_frames, overlap_add

    for n in (1, 159, 160, 1000, 16001):
        x = rng.standard_normal(n).astype(np.float32)
        frames = analyze_frames(x)
        assert frames.shape == (-(-(n + 160) // 160), 320)
        np.testing.assert_allclose(overlap_add(frames, n), x, atol=1e-5)


def test_pca_codec_round_trip_and_bitrate(speech):
    from audiocodec.evaluation.pca import HEADER, PcaCodec, load_pca

    model = load_pca()
    assert model.frames_per_second == 100
    assert np.allclose(model.basis @ model.basis.T, np.eye(len(model.basis)), atol=1e-4)
    frames = -(-(len(speech) + 160) // 160)
    snrs = []
    for kbps in (1.5, 3.0, 6.0, 12.0):
        per_hop = model.bits_per_hop(kbps)
        assert per_hop == kbps * 10  # kbps * 1000 bits/s / 100 hops/s
        bits = model.allocate(per_hop)
        assert bits.sum() == per_hop and bits.min() >= 0
        assert bits[0] == bits.max() and bits[-1] == 0  # the loudest component gets the most bits
        out = PcaCodec(kbps, model).run(speech)
        assert out.decoded.shape == speech.shape and out.decoded.dtype == np.float32
        assert out.payload_bytes == -(-frames * per_hop // 8)
        assert out.file_bytes == out.payload_bytes + HEADER.size
        actual = 8 * out.payload_bytes / (len(speech) / 16000) / 1000
        assert abs(actual - kbps) / kbps < 0.02
        snrs.append(M.si_sdr(speech, out.decoded))
    assert snrs == sorted(snrs)  # more bits, less error


def test_pca_decoder_rejects_bad_streams(speech):
    from audiocodec.errors import CodecError
    from audiocodec.evaluation.pca import load_pca

    model = load_pca()
    data = model.encode(speech[:3200], 6.0)
    np.testing.assert_array_equal(model.decode(data), model.decode(bytes(data)))
    for bad in (data[:5], b"XXXX" + data[4:], data[:-1], data + b"\0"):
        with pytest.raises(CodecError):
            model.decode(bad)

"""Context-coded packets (AUDIO_CTX, AUDIO_LOW_CTX): round trips plain and sealed, the sender's per-packet
choice, packets that decode alone, refusal by a receiver with another context model or none, hostile bytes,
and a loopback stream that plays exactly what the fixed-rate one plays. Tiny random context models
(``context_fixture.py``): any model round-trips."""
import os
import struct

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from audiocodec.audio import load
from audiocodec.bitstream.context import SIZE
from audiocodec.stream.frames import codes_of, frames_of, low_of
from audiocodec.stream.lowband import layer as low_band_layer
from audiocodec.transport import packets
from audiocodec.transport.crypto import Opener, Sealer
from audiocodec.transport.packets import (AUDIO, AUDIO_CTX, AUDIO_LOW, AUDIO_LOW_CTX, HEADER, HEADER_SIZE,
                                          PacketError, build_audio, build_end, parse)
from audiocodec.transport.receiver import Receiver
from audiocodec.transport.sinks import ArraySink

from .conftest import SAMPLES
from .context_fixture import histogram_bias, small_codes, tiny_context

TAG, KEY, SESSION = 0x1B53DC93, bytes(range(32)), 0x5EC0


@pytest.fixture(scope="module")
def ctx():
    return tiny_context(0)


@pytest.fixture(scope="module")
def other():
    return tiny_context(1)


def _low(rng, frames):
    lb = low_band_layer(600, 12.0)
    return lb, rng.standard_normal((frames, lb.coefs)) * 0.01


@pytest.mark.parametrize("sealed", [False, True])
@pytest.mark.parametrize("hybrid", [False, True])
@pytest.mark.parametrize("n_q, frames", [(12, 1), (6, 3), (24, 10), (3, 5)])
def test_context_packets_round_trip(ctx, rng, sealed, hybrid, n_q, frames):
    codes = small_codes(rng, n_q, frames)
    lb, low = _low(rng, frames) if hybrid else (None, None)
    sealer = Sealer(KEY, SESSION) if sealed else None
    data = build_audio(7, 320 * 70, SESSION, frames_of(codes, low), 99, TAG, lb, sealer, 7, context=ctx)
    fixed = build_audio(7, 320 * 70, SESSION, frames_of(codes, low), 99, TAG, lb, sealer, 7)
    assert len(data) < len(fixed)
    p = parse(data, TAG, Opener(KEY) if sealed else None, context=ctx)
    assert p.kind == (AUDIO_LOW_CTX if hybrid else AUDIO_CTX) and (p.seq, p.timestamp, p.send_ms) == (7, 22400, 99)
    assert np.array_equal(codes_of(p.frames), codes) and p.size == len(data)
    assert p.payload == len(data) - (packets.SEALED_OVERHEAD if sealed else HEADER_SIZE)
    if hybrid:
        assert p.layer is lb and np.allclose(low_of(p.frames), lb.dequantize(*lb.quantize(low)))
        q = parse(fixed, TAG, Opener(KEY) if sealed else None, context=ctx)
        assert np.array_equal(low_of(p.frames), low_of(q.frames))  # the same low band, whatever the codes


def test_the_sender_picks_the_smaller_coding_per_packet(ctx, rng):
    """Context-coded only where that is smaller: never for codes the model finds unlikely, nor for streams
    it does not code (one row); and the header layout stays the same."""
    cases = [(small_codes(rng, 12, 3), AUDIO_CTX), (rng.integers(512, 1024, (12, 3)), AUDIO),
             (small_codes(rng, 1, 10), AUDIO), (small_codes(rng, 12, 1), AUDIO_CTX)]
    for codes, kind in cases:
        data = build_audio(1, 320, 3, frames_of(codes), 0, TAG, context=ctx)
        p = parse(data, TAG, context=ctx)
        assert p.kind == kind and np.array_equal(codes_of(p.frames), codes)
        assert HEADER.unpack_from(data)[1] == kind and len(data) <= HEADER_SIZE + (codes.size * 10 + 7) // 8
        if kind == AUDIO:
            assert data == build_audio(1, 320, 3, frames_of(codes), 0, TAG)  # the fixed-rate bytes, unchanged


def test_each_packet_decodes_alone(ctx, rng):
    """The context restarts at every packet's first frame: packet k + 1 alone decodes as it does in sequence,
    and a receiver that lost packet k plays every other frame as sent."""
    codes = small_codes(rng, 12, 20)
    datagrams = [build_audio(k, 4 * k * 320, SESSION, frames_of(codes[:, 4 * k:4 * k + 4]), 0, TAG, context=ctx)
                 for k in range(5)]
    assert all(d[1] == AUDIO_CTX for d in datagrams)
    in_sequence = [parse(d, TAG, context=ctx) for d in datagrams]
    assert np.array_equal(np.concatenate([codes_of(p.frames) for p in in_sequence], 1), codes)
    alone = parse(datagrams[3], TAG, context=ctx)
    assert np.array_equal(codes_of(alone.frames), codes_of(in_sequence[3].frames))

    class Recording:
        max_rows, tag = 25, TAG

        def __init__(self):
            self.played = []

        def decode(self, frames):
            self.played += [f.codes for f in frames]
            return np.zeros(320, np.float32)

        def conceal(self):
            self.played.append(None)
            return np.zeros(320, np.float32)

        def flush(self):
            return np.zeros(0, np.float32)

    dec = Recording()
    rx = Receiver(None, dec, ArraySink(), buffer_ms=20, paced=False, context=ctx)
    for k in (0, 1, 3, 4):  # packet 2 lost
        rx._handle(datagrams[k], None, 0.0, 0.0)
        rx._play_due()
    rx._handle(build_end(5, 20 * 320, SESSION, 20 * 320, 0, TAG), None, 0.0, 0.0)
    rx._play_due()
    rx._finish()
    assert [i for i, c in enumerate(dec.played) if c is None] == [8, 9, 10, 11]
    assert all(np.array_equal(c, codes[:, i]) for i, c in enumerate(dec.played) if c is not None)
    st_ = rx.stats
    assert st_.context_packets == 4 and st_.frames_received == 16
    assert st_.payload_bits_per_frame == 8 * sum(len(datagrams[k]) - HEADER_SIZE for k in (0, 1, 3, 4)) / 16
    assert any("context-coded" in line for line in st_.lines())


@pytest.mark.parametrize("sealed", [False, True])
def test_another_context_model_or_none_is_a_counted_refusal(ctx, other, rng, sealed):
    codes = small_codes(rng, 12, 2)
    sealer = Sealer(KEY, SESSION) if sealed else None
    data = build_audio(0, 0, SESSION, frames_of(codes), 0, TAG, sealer=sealer, index=0, context=ctx)
    assert data[1] == AUDIO_CTX
    opener = (lambda: Opener(KEY)) if sealed else (lambda: None)
    for model, reason in ((other, "forged" if sealed else "corrupt"), (None, "context")):
        with pytest.raises(PacketError) as e:
            parse(data, TAG, opener(), context=model)
        assert e.value.reason == reason
    with pytest.raises(PacketError):  # the model tag still counts too
        parse(data, TAG + 1, opener(), context=ctx)
    rx = Receiver(None, type("D", (), {"max_rows": 25, "tag": TAG})(), ArraySink(), paced=False,
                  key=KEY if sealed else None, context=other)
    rx._handle(data, None, 0.0, 0.0)
    assert rx.stats.dropped["forged" if sealed else "corrupt"] == 1 and rx.stats.packets_received == 0
    assert parse(data, TAG, opener(), context=ctx).kind == AUDIO_CTX


def test_the_relay_peeks_context_packets_without_decoding(ctx, rng):
    data = build_audio(2, 640, 1, frames_of(small_codes(rng, 12, 2)), 0, TAG, context=ctx)
    assert packets.peek(data, TAG, ctx) == (AUDIO_CTX, 640, 2)
    with pytest.raises(PacketError):
        packets.peek(data, TAG)


def _reseal(header: bytes, payload: bytes, context_id: bytes) -> bytes:
    """A datagram with a valid CRC around arbitrary bytes (what a hostile sender with the model could send)."""
    return header + struct.pack(">I", packets._crc(header, payload, TAG, context_id)) + payload


def test_truncated_and_flipped_context_packets_only_raise_packet_errors(ctx, rng):
    lb, low = _low(rng, 3)
    for layer, lows in ((None, None), (lb, low)):
        data = build_audio(0, 0, 1, frames_of(small_codes(rng, 12, 3), lows), 0, TAG, layer, context=ctx)
        assert data[1] in packets.CONTEXT_KINDS
        for n in range(len(data)):
            with pytest.raises(PacketError):
                parse(data[:n], TAG, context=ctx)
        header = bytearray(data[:HEADER.size])
        for i in range(HEADER_SIZE, len(data)):
            for bit in range(8):
                bad = bytearray(data)
                bad[i] ^= 1 << bit
                with pytest.raises(PacketError) as e:
                    parse(bytes(bad), TAG, context=ctx)
                assert e.value.reason == "corrupt"
                payload = bytes(bad[HEADER_SIZE:])  # the same flip, the CRC made valid again
                try:
                    p = parse(_reseal(bytes(header), payload, ctx.id), TAG, context=ctx)
                except PacketError as exc:
                    assert exc.reason == "malformed"
                    continue
                c = codes_of(p.frames)
                assert c.shape == (12, 3) and c.min() >= 0 and c.max() < SIZE


@pytest.mark.parametrize("kind, n_q, frames, length, count", [
    (AUDIO_CTX, 12, 1, 0, 0),        # no codes at all
    (AUDIO_CTX, 12, 1, 15, 0),       # as long as fixed-rate (15 bytes): the sender would have sent that
    (AUDIO_CTX, 1, 10, 8, 0),        # one row: not context-coded
    (AUDIO_CTX, 30, 2, 40, 0),       # more rows than the model has
    (AUDIO_LOW_CTX, 6, 3, 4 + 8, 0),        # a low band with no coded bytes named
    (AUDIO_LOW_CTX, 6, 3, 4 + 8, 12),       # names more than there is
    (AUDIO_LOW_CTX, 6, 3, 4 + 8 + 2, 8),    # a low band of 2 bytes
    (AUDIO_LOW_CTX, 6, 3, 4 + 23 + 4, 23),  # 23 bytes: as many as fixed-rate needs
    (AUDIO_LOW, 6, 3, 4 + 23 + 4, 8),       # fixed-rate codes with coded bytes named
    (AUDIO_LOW_CTX, 6, 3, 2, 0),            # no room for the low band's head
])
def test_context_payload_sizes_are_checked_before_decoding(ctx, kind, n_q, frames, length, count):
    header = HEADER.pack(2, kind, 0, 0, 1, n_q, frames, length, 0)
    payload = (packets.LOW_HEAD.pack(3, 12, count) if kind in packets.LOW_KINDS and length >= 4 else b"")
    payload += bytes(length - len(payload))
    with pytest.raises(PacketError) as e:
        parse(_reseal(header, payload, ctx.id if kind in packets.CONTEXT_KINDS else b""), TAG, context=ctx)
    assert e.value.reason == "malformed"


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from([AUDIO_CTX, AUDIO_LOW_CTX]), n_q=st.integers(0, 40), frames=st.integers(0, 12),
       payload=st.binary(max_size=600))
def test_random_context_payloads_with_valid_crcs_never_crash(kind, n_q, frames, payload):
    ctx = tiny_context(0)
    data = _reseal(HEADER.pack(2, kind, 0, 0, 1, n_q, frames, len(payload), 0), payload, ctx.id)
    try:
        p = parse(data, TAG, context=ctx)
    except PacketError:
        return
    assert codes_of(p.frames).shape == (n_q, frames) and 1 <= p.payload < 2 + n_q * frames * 10 // 8 + 1200


@pytest.mark.parametrize("hybrid, frames_per_packet", [(False, 3), (True, 2)])
def test_loopback_stream_plays_what_the_fixed_rate_stream_plays(hybrid, frames_per_packet):
    """Same codes, same audio: under 10% loss the context-coded stream's output equals the fixed-rate one's
    sample for sample (the same packets are lost), in fewer bytes."""
    from audiocodec.model import load_default
    from audiocodec.stream.decoder import FrameDecoder
    from audiocodec.stream.encoder import FrameEncoder
    from audiocodec.stream.modes import mode
    from audiocodec.transport.link import NetworkModel
    from audiocodec.transport.simulate import run_simulation

    codec = load_default()
    clip = load(os.path.join(SAMPLES, "speech_female.wav"))[:24000]
    m = mode(6.0, hybrid)
    with torch.no_grad():
        codes = codec.encode(torch.from_numpy(clip), m.rows)[0].numpy()  # (rows, frames), a stand-in for training
    rows = list(range(m.rows)) if m.sends_pitch(codec) else list(range(1, m.rows + 1))
    ctx = tiny_context(2, histogram_bias(codes, rows), codec.model_id, codec.cfg.pitch_from)
    out = {}
    for name, context in (("fixed", None), ("context", ctx)):
        out[name] = run_simulation(clip, FrameEncoder(codec, m), FrameDecoder(codec), NetworkModel(loss=0.1, seed=4),
                                   frames_per_packet, context=context)
    (fixed, rf), (coded, rc) = out["fixed"], out["context"]
    assert rc.stats.lost == rf.stats.lost > 0 and len(coded) == len(fixed) == len(clip)
    assert np.array_equal(coded, fixed)
    assert rf.stats.context_packets == 0 and rc.stats.context_packets > rc.stats.packets_received // 2
    assert rc.sender.context_packets >= rc.stats.context_packets and rc.sender.bytes < rf.sender.bytes
    assert rc.stats.payload_bits_per_frame < rf.stats.payload_bits_per_frame


def test_context_coded_bytes_are_cut_below_whole_words(ctx, rng):
    """The range coder's words, cut to the fewest bytes that decode the same: never longer, shorter on average."""
    from audiocodec.transport import coded

    words, cut = [], []
    for _ in range(40):
        codes = small_codes(rng, 12, int(rng.integers(1, 11)))
        data = coded.encode(ctx, codes)
        assert np.array_equal(coded.decode(ctx, data, *codes.shape), codes)
        words.append(len(ctx.encode(codes)))
        cut.append(len(data))
    assert all(c <= w for c, w in zip(cut, words)) and np.mean(words) - np.mean(cut) > 1


def test_cli_uses_the_installed_context_model_unless_fixed_rate(tmp_path, capsys):
    """With a context model beside the weights, simulate sends context-coded packets (--fixed-rate: none) and
    plays the same audio; the statistics show what a frame cost."""
    import json
    import shutil

    import soundfile as sf

    from audiocodec.cli import main
    from audiocodec.model import Codec, default_weights_path

    weights = str(tmp_path / "m.safetensors")
    shutil.copy(default_weights_path(), weights)
    codec = Codec.load(weights)
    clip = os.path.join(SAMPLES, "speech_female.wav")
    with torch.no_grad():
        codes = codec.encode(torch.from_numpy(load(clip)), 12)[0].numpy()
    tiny_context(3, histogram_bias(codes, list(range(12))), codec.model_id, codec.cfg.pitch_from).save(
        str(tmp_path / "m.context.npz"))
    runs = {}
    for flag in ([], ["--fixed-rate"]):
        out = tmp_path / f"out{len(flag)}.wav"
        assert main(["simulate", clip, str(out), "--model", weights, "--loss", "0.1", "-F", "3", "--json", "-q",
                     *flag]) == 0
        runs[bool(flag)] = json.loads(capsys.readouterr().out), sf.read(str(out))[0]
    (coded, y), (fixed, y_fixed) = runs[False], runs[True]
    assert np.array_equal(y, y_fixed)
    assert coded["stats"]["context_packets"] > 0 and fixed["stats"]["context_packets"] == 0
    assert coded["sender"]["context_packets"] > 0 and coded["sender"]["bytes"] < fixed["sender"]["bytes"]
    assert coded["stats"]["payload_bits_per_frame"] < fixed["stats"]["payload_bits_per_frame"] == 120


def test_receive_explains_context_refusals():
    from audiocodec.errors import CodecError
    from audiocodec.transport.commands import _explain_nothing
    from audiocodec.transport.jitter import Stats

    st_ = Stats()
    st_.dropped["context"] = 7
    args = type("A", (), {"key": None, "source": None, "timeout": 1.0})()
    with pytest.raises(CodecError, match="7 context-coded packets .* no context model .*--fixed-rate"):
        _explain_nothing(st_, "0.0.0.0:5004", "1b53dc931200f56b", args)

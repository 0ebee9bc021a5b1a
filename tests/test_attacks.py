"""The attacks of "hold under attack", end to end: a real sender's datagrams, a real receiver on a loopback
socket, and an attacker's datagrams among them. With a key every forgery is refused and the output is the
clean stream's, sample for sample; without one, --from and the bounded window hold as far as they can, and
a crafted low band never turns into noise beyond full scale."""
import os
import struct
import threading
import time
import zlib

import numpy as np
import pytest
import soundfile as sf

from audiocodec.audio import load
from audiocodec.cli import main
from audiocodec.model import load_default
from audiocodec.stream.decoder import FrameDecoder
from audiocodec.stream.encoder import FrameEncoder
from audiocodec.stream.engine import model_tag
from audiocodec.stream.frames import frames_of
from audiocodec.stream.lowband import LowBandDecoder, layer as low_band_layer
from audiocodec.stream.modes import mode
from audiocodec.transport import packets
from audiocodec.transport.crypto import Opener, Sealer
from audiocodec.transport.receiver import Receiver
from audiocodec.transport.sender import END_COPIES, send_stream
from audiocodec.transport.simulate import udp_socket
from audiocodec.transport.commands import parse_source
from audiocodec.transport.sinks import ArraySink

from .conftest import SAMPLES

KEY, OTHER_KEY = bytes(range(32)), bytes(range(1, 33))
CLIP_SAMPLES = 16000 * 6 // 10 + 123  # 0.6 s and a part frame: the exact duration must survive


@pytest.fixture(scope="module")
def codec():
    return load_default()


@pytest.fixture(scope="module")
def clip():
    return load(os.path.join(SAMPLES, "speech_female.wav"))[:CLIP_SAMPLES]


class Capture:
    """A socket stand-in: keeps what a sender sends (the attacker on the path sees the same)."""

    def __init__(self):
        self.sent = []

    def sendto(self, data, dest):
        self.sent.append(bytes(data))


def _datagrams(codec, clip, key=None, hybrid=False, session=None):
    cap = Capture()
    st = send_stream(cap, ("127.0.0.1", 9), [clip], FrameEncoder(codec, mode(6.0, hybrid)), paced=False, key=key,
                     session=session)
    return cap.sent, st.session


def _receive(codec, schedule, key=None, only_sender=False, paced=False, timeout=0.5):
    """Deliver ``schedule`` [(socket name, datagram, pause s)] to a real Receiver (``only_sender``: with
    --from the sender's address); -> (audio, stats)."""
    rx_sock, sink = udp_socket(), ArraySink()
    senders = {name: udp_socket() for name in ("sender", "attacker")}
    rx = Receiver(rx_sock, FrameDecoder(codec), sink, paced=paced, key=key, timeout=timeout,
                  from_addr=senders["sender"].getsockname() if only_sender else None)
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("stats", rx.run()), daemon=True)
    t.start()
    try:
        for name, data, pause in schedule:
            senders[name].sendto(data, rx_sock.getsockname())
            if pause:
                time.sleep(pause)
        t.join(20)
    finally:
        for s in (rx_sock, *senders.values()):
            s.close()
    return sink.audio, out["stats"]


def _honest(datagrams, pause=0.0):
    return [("sender", d, pause) for d in datagrams]


def _recrc(header: bytes, payload: bytes, tag: int) -> bytes:
    """What anyone can do without a key: any header and payload, with a valid CRC."""
    return header + struct.pack(">I", zlib.crc32(payload, zlib.crc32(header, tag)) & 0xFFFFFFFF) + payload


def _forge_sealed(seq, ts, session, kind=packets.AUDIO, frames=1, payload=None):
    """A sealed-looking datagram without the key (its tag cannot be right)."""
    payload = payload if payload is not None else os.urandom(16 if kind == packets.AUDIO else 8)
    header = packets.HEADER.pack(packets.VERSION_SEALED, kind, seq & 0xFFFF, ts, session, 12 if frames else 0, frames,
                                 len(payload), 0)
    return header + os.urandom(len(payload) + 16)


@pytest.fixture(scope="module")
def sealed(codec, clip):
    """The sealed stream's datagrams and the clean output they give."""
    datagrams, session = _datagrams(codec, clip, key=KEY)
    audio, st = _receive(codec, _honest(datagrams), key=KEY)
    assert len(audio) == len(clip) and st.frames_concealed == 0 and st.ended_by == "end-of-stream"
    return datagrams, session, audio


def test_sealed_stream_opens_and_refuses_the_other_key_and_plain_packets(codec, clip, sealed):
    datagrams, _, _ = sealed
    assert all(d[0] == packets.VERSION_SEALED for d in datagrams)
    audio, st = _receive(codec, _honest(datagrams), key=OTHER_KEY, timeout=0.3)
    assert len(audio) == 0 and st.dropped["forged"] == len(datagrams)
    plain, _ = _datagrams(codec, clip)
    audio, st = _receive(codec, _honest(plain), key=KEY, timeout=0.3)
    assert len(audio) == 0 and st.dropped["version"] + st.dropped["short"] == len(plain)  # (a plain END is short)


def test_with_a_key_every_forgery_is_refused(codec, sealed):
    """First-packet capture, a forged end, a sequence walk, crafted low bands and replays, all at once: the
    output is the clean stream's, sample for sample, with its exact duration."""
    datagrams, session, clean = sealed
    n = len(datagrams) - END_COPIES
    attack = [_forge_sealed(0, 0, 0xBAD, frames=1)]                                   # capture: first, own session
    attack += [_forge_sealed(k, k * 320, session) for k in range(3)]                   # the real session's numbers
    attack += [_forge_sealed(n // 2, (n // 2) * 320, session, packets.END, 0, struct.pack(">Q", 320))]  # forged END
    attack += [_forge_sealed(2990 * j, 2990 * j * 320, session) for j in range(1, 6)]  # walk the window
    low = packets.LOW_HEAD.pack(3, 12, 0) + bytes(15) + struct.pack("<4I", *([0xFFFFFFFF] * 4))
    attack += [_forge_sealed(5, 5 * 320, session, packets.AUDIO_LOW, 1, low)]          # crafted low band
    schedule = [("attacker", attack[0], 0)]
    for k, d in enumerate(datagrams):
        schedule.append(("sender", d, 0))
        if k + 1 < len(attack):
            schedule.append(("attacker", attack[k + 1], 0))
        if 5 <= k < 15:
            schedule.append(("attacker", datagrams[k - 5], 0))                         # replay, in the stream
    schedule += [("attacker", d, 0) for d in datagrams[:20]]                            # replay, after the end
    audio, st = _receive(codec, schedule, key=KEY)
    assert np.array_equal(audio, clean)
    assert st.dropped["forged"] >= 7 and st.dropped["replayed"] >= 10   # (a forgery behind the highest: 'replayed')
    assert st.frames_concealed == 0 and st.packets_received == n


def test_without_a_key_from_defeats_first_packet_capture(codec, clip):
    datagrams, session = _datagrams(codec, clip, session=0x5EC)
    clean, _ = _receive(codec, _honest(datagrams))
    tag = model_tag(codec.model_id)
    capture = [packets.build_audio(k, k * 320, 0xBAD, frames_of(np.zeros((12, 1), int)), tag=tag) for k in range(5)]
    schedule = [("attacker", d, 0) for d in capture] + _honest(datagrams)
    audio, st = _receive(codec, schedule, timeout=0.3)
    assert not np.array_equal(audio, clean)        # without --from the stranger who sends first is heard ...
    audio, st = _receive(codec, schedule, only_sender=True)
    assert np.array_equal(audio, clean) and st.dropped["foreign"] == len(capture)   # ... with it, not


def test_without_a_key_the_window_cannot_be_walked_nor_the_timeout_stretched(codec, clip):
    """A forger who knows the session (it is in clear) sends packets thousands of frames ahead, a real CRC
    on each: the frontier moves with the clock, so the walk stops at once; and when the stream then stops
    without its end, the output ends at the last frame that came on time, not at the forged one."""
    datagrams, session = _datagrams(codec, clip, session=0x5EC)
    tag = model_tag(codec.model_id)
    audio_packets = [d for d in datagrams if d[1] != packets.END]
    walk = [packets.build_audio(2990 * j, 2990 * j * 320, session, frames_of(np.zeros((12, 1), int)), tag=tag)
            for j in range(1, 6)]
    schedule = _honest(audio_packets[:3], 0.02) + [("attacker", d, 0) for d in walk] + _honest(audio_packets[3:], 0.02)
    audio, st = _receive(codec, schedule, paced=True, timeout=0.4)   # no end-of-stream packet comes
    assert st.ended_by == "timeout" and st.dropped["implausible"] >= 4
    assert len(audio) == len(audio_packets) * 320                     # not 2990 frames of concealment


def test_crafted_low_band_never_gives_full_scale_noise(codec, clip):
    """Without a key anyone can send a hybrid packet with a valid CRC and the loudest low band the format
    can hold; what is played stays within full scale."""
    layer = low_band_layer(1000, 12.0)
    loud = layer.encode_frames(np.full((1, layer.coefs), 1e6))  # the largest scales and coefficients
    assert np.abs(layer.decode_frames(loud, 1)).max() <= 2 * np.sqrt(320)
    rng = np.random.default_rng(0)
    dec = LowBandDecoder(layer)
    for _ in range(20):
        rows = np.concatenate([layer.decode_frames(loud, 1), np.clip(rng.normal(0, 1e3, (1, layer.coefs)), -36, 36)])
        assert np.abs(dec.push(rng.uniform(-0.3, 0.3, 640), rows)).max() <= 1.0

    datagrams, session = _datagrams(codec, clip, hybrid=True, session=0x5EC)
    tag, crafted = model_tag(codec.model_id), []
    for d in datagrams:
        if d[1] == packets.AUDIO_LOW:
            p = packets.parse(d, tag)
            head = packets.LOW_HEAD.pack(p.layer.cutoff_hz // 200, int(p.layer.snr_db), 0)
            start = packets.HEADER_SIZE + packets.LOW_HEAD.size
            codes = d[start:start + (p.n_q * len(p.frames) * 10 + 7) // 8]
            big = p.layer.encode_frames(np.full((1, p.layer.coefs), 1e6))
            header = bytearray(d[:packets.HEADER.size])
            header[14:16] = struct.pack(">H", len(head) + len(codes) + len(big))
            d = _recrc(bytes(header), head + codes + big, tag)
        crafted.append(d)
    audio, st = _receive(codec, _honest(crafted))
    assert len(audio) == len(clip) and st.packets_received > 0 and np.abs(audio).max() <= 1.0


def test_foreign_packets_are_refused_before_their_low_band_is_read(codec, clip, monkeypatch):
    datagrams, session = _datagrams(codec, clip, hybrid=True, session=0x5EC)
    hybrid = datagrams[3]
    tag = model_tag(codec.model_id)

    def boom(*a, **kw):
        raise AssertionError("the low band of a foreign packet was decoded")
    lb = packets.parse(hybrid, tag).layer
    monkeypatch.setattr(type(lb), "decode_frames", boom)
    with pytest.raises(packets.PacketError) as e:
        packets.parse(hybrid, tag, session=0xF00)
    assert e.value.reason == "foreign"
    sealed, _ = _datagrams(codec, clip[:3200], key=KEY, hybrid=True)
    with pytest.raises(packets.PacketError) as e:
        packets.parse(sealed[1], tag, Opener(KEY), session=0xF00)
    assert e.value.reason == "foreign"


def test_sealed_packet_layout_and_index():
    sealer = Sealer(KEY, 7)
    frames = frames_of(np.arange(24).reshape(12, 2) % 1024)
    plain = packets.build_audio(70000, 70000 * 640, 7, frames)   # past a wrap of the 16-bit counter
    sealed = packets.build_audio(70000, 70000 * 640, 7, frames, sealer=sealer, index=70000)
    assert len(sealed) == len(plain) + 12 and sealed[0] == 3 and sealed[1:20] == plain[1:20]
    with pytest.raises(ValueError):
        packets.build_audio(5, 0, 7, frames, sealer=sealer, index=6)   # the index must end in the sequence number
    p = packets.parse(sealed, 0, Opener(KEY))
    assert p.seq == 70000 & 0xFFFF and np.array_equal([f.codes for f in p.frames], [f.codes for f in frames])


def test_cli_keygen_key_session_and_from(tmp_path, capsys):
    key = str(tmp_path / "call.key")
    assert main(["keygen", key]) == 0
    assert os.stat(key).st_mode & 0o777 == 0o600 and "--key" in capsys.readouterr().err
    assert main(["keygen", key]) == 1 and "never overwritten" in capsys.readouterr().err
    wav = os.path.join(SAMPLES, "command_bed.wav")
    assert main(["send", wav, "--to", "127.0.0.1:9", "--key", key, "--session", "ab"]) == 1
    assert "--session" in capsys.readouterr().err
    assert main(["receive", "--listen", "127.0.0.1:0", str(tmp_path / "o.wav"), "--from", "no such host!",
                 "-q"]) == 1
    assert parse_source("127.0.0.1") == ("127.0.0.1", None) and parse_source("127.0.0.1:4000") == ("127.0.0.1", 4000)
    assert parse_source("[::1]:4000") == ("::1", 4000) and parse_source("::1") == ("::1", None)


def test_cli_sealed_send_and_receive(tmp_path):
    """The commands end to end, as two processes would run them (here two threads of one)."""
    key, out = str(tmp_path / "k"), tmp_path / "got.wav"
    assert main(["keygen", key, "-q"]) == 0
    probe = udp_socket()
    port = probe.getsockname()[1]
    probe.close()
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("rc", main(
        ["receive", "--listen", f"127.0.0.1:{port}", str(out), "--key", key, "--fast", "--timeout", "5", "-q"])))
    t.start()
    time.sleep(1.0)
    wav = os.path.join(SAMPLES, "command_bed.wav")
    assert main(["send", wav, "--to", f"127.0.0.1:{port}", "--key", key, "--fast", "-q"]) == 0
    t.join(20)
    assert result["rc"] == 0 and len(sf.read(str(out))[0]) == len(sf.read(wav)[0])

"""Bit packing, range coding and the .acdc container, including thousands of corrupted files."""
import io
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audiocodec.bitstream import container
from audiocodec.bitstream.container import FormatError, Header, encode_chunk, encode_header, read_chunks, read_header
from audiocodec.bitstream.entropy import EntropyModel, decode_fixed, encode_fixed
from audiocodec.bitstream.packing import pack_codes, packed_size, unpack_codes


@given(st.lists(st.integers(0, 1023), max_size=300), st.integers(10, 10))
def test_pack_round_trip(codes, bits):
    data = pack_codes(np.array(codes, dtype=np.int64), bits)
    assert len(data) == packed_size(len(codes), bits)
    assert unpack_codes(data, len(codes), bits).tolist() == codes


def test_pack_rejects_out_of_range():
    with pytest.raises(ValueError):
        pack_codes(np.array([1024]), 10)
    with pytest.raises(ValueError):
        unpack_codes(b"\x00", 2, 10)


def test_entropy_round_trip_and_saving(rng):
    probs = rng.dirichlet(np.full(1024, 0.05), size=4)          # skewed, like real code usage
    counts = (probs * 1e6).astype(np.int64)
    model = EntropyModel(counts, "test")
    codes = np.stack([rng.choice(1024, 500, p=p / p.sum()) for p in model.probs])
    data = model.encode(codes, [0, 1, 2, 3])
    assert np.array_equal(model.decode(data, [0, 1, 2, 3], 500), codes)
    swapped = model.encode(codes[::-1], [3, 2, 1, 0])  # rows may use any table (a pitch row uses its own)
    assert np.array_equal(model.decode(swapped, [3, 2, 1, 0], 500), codes[::-1])
    assert len(data) < 0.9 * len(encode_fixed(codes, 10))
    assert np.array_equal(decode_fixed(encode_fixed(codes, 10), 4, 500, 10), codes)


def test_entropy_coder_handles_unseen_codes():
    counts = np.zeros((1, 1024), dtype=np.int64)
    counts[0, 0] = 10 ** 6
    model = EntropyModel(counts, "test")
    codes = np.array([[0, 1023, 5, 0]])
    assert np.array_equal(model.decode(model.encode(codes, [0]), [0], 4), codes)


def _header(**kw):
    base = dict(sample_rate=16000, channels=1, n_q=3, bits=10, frame_size=320, num_samples=3200,
                model_id=b"\x01" * 8, frames_per_chunk=4, flags=0)
    base.update(kw)
    return Header(**base)


def _fixed_file(h: Header, rng) -> bytes:
    out, left = [encode_header(h)], h.num_frames
    while left:
        n = min(left, h.frames_per_chunk)
        out.append(encode_chunk(n, encode_fixed(rng.integers(0, 1024, (h.n_q, n)), 10)))
        left -= n
    return b"".join(out)


def test_container_round_trip(rng):
    h = _header()
    data = _fixed_file(h, rng)
    f = io.BytesIO(data)
    assert read_header(f) == h
    chunks = list(read_chunks(f, h))
    assert [n for n, _, _, _ in chunks] == [4, 4, 2] and container.HEADER_SIZE == 40
    assert not any(r for _, _, r, _ in chunks) and all(low is None for *_, low in chunks)
    assert data[4] == 1  # a file without the low band stays version 1


def _hybrid_file(h: Header, rng, low_frames=None) -> bytes:
    """Codes chunks each followed by a low-band chunk (one frame more in the last), random payloads."""
    out, left = [encode_header(h)], h.num_frames
    while left:
        n = min(left, h.frames_per_chunk)
        out.append(encode_chunk(n, encode_fixed(rng.integers(0, 1024, (h.n_q, n)), 10)))
        frames = n + (n == left) if low_frames is None else low_frames
        out.append(encode_chunk(frames, rng.bytes(8 * frames), marker=container.CHUNK_LOW))
        left -= n
    return b"".join(out)


def test_low_band_container_round_trip(rng):
    h = _header(low_band_hz=600, low_band_snr=12)
    data = _hybrid_file(h, rng)
    assert data[4] == 2 and h.version == 2
    f = io.BytesIO(data)
    assert read_header(f) == h
    chunks = list(read_chunks(f, h))
    assert [(n, low[0], len(low[1])) for n, _, _, low in chunks] == [(4, 4, 32), (4, 4, 32), (2, 3, 24)]


@pytest.mark.parametrize("damage, message", [
    (lambda d: d[:-40], "truncated"),
    (lambda d: d[:44 + 27], "low band of chunk 0 missing"),
    (lambda d: d[:44 + 27] + b"XX" + d[44 + 27 + 2:], "bad low-band chunk marker"),
])
def test_low_band_chunks_are_checked(rng, damage, message):
    h = _header(low_band_hz=600, low_band_snr=12)
    with pytest.raises(FormatError, match=message):
        f = io.BytesIO(damage(_hybrid_file(h, rng)))
        list(read_chunks(f, read_header(f)))
    with pytest.raises(FormatError, match="low band has 5 frames, expected 4"):
        f = io.BytesIO(_hybrid_file(h, rng, low_frames=5))
        list(read_chunks(f, read_header(f)))
    huge = encode_header(h) + encode_chunk(4, encode_fixed(rng.integers(0, 1024, (3, 4)), 10)) \
        + struct.pack("<2sHI", b"LB", 4, 2 ** 31) + b"\0" * 4
    with pytest.raises(FormatError, match="bad low-band payload length"):
        f = io.BytesIO(huge)
        list(read_chunks(f, read_header(f)))


@pytest.mark.parametrize("mutate, message", [
    (lambda d: b"", "empty file"),
    (lambda d: b"RIFF" + d[4:], "bad magic"),
    (lambda d: d[:20], "header cut short"),
    (lambda d: d[:4] + bytes([9]) + d[5:], "newer than this audiocodec reads"),
    (lambda d: d[:10] ^ 0 if False else d[:12] + bytes([d[12] ^ 0xFF]) + d[13:], "header checksum"),
    (lambda d: d[:-5], "truncated"),
    (lambda d: d[:-1] + bytes([d[-1] ^ 1]), "checksum mismatch"),
    (lambda d: d + b"\x00", "unexpected bytes"),
    (lambda d: d[:40], "chunk 0 missing"),
])
def test_container_rejects_damage(rng, mutate, message):
    data = mutate(_fixed_file(_header(), rng))
    with pytest.raises(FormatError) as e:
        f = io.BytesIO(data)
        h = read_header(f)
        list(read_chunks(f, h))
    assert message in str(e.value)


def _forge(**kw) -> bytes:
    """A header with a valid checksum but hostile values."""
    return encode_header(_header(**kw))  # the writer does not check; the reader must


@pytest.mark.parametrize("kw, message", [
    (dict(num_samples=2 ** 40), "absurd length"),
    (dict(num_samples=0), "absurd length"),
    (dict(frames_per_chunk=60000), "absurd chunk size"),
    (dict(sample_rate=44100), "unsupported layout"),
    (dict(flags=0x80), "unknown flags"),
    (dict(n_q=200), "out of range"),
    (dict(low_band_hz=600, low_band_snr=99), "low band out of range"),
])
def test_absurd_header_values(kw, message):
    with pytest.raises(FormatError) as e:
        read_header(io.BytesIO(_forge(**kw)))
    assert message in str(e.value)


def test_range_chunk_needs_the_flag(rng):
    h = _header()
    data = encode_header(h) + encode_chunk(4, b"\0" * 8, range_coded=True)
    f = io.BytesIO(data)
    with pytest.raises(FormatError, match="bad chunk marker"):
        list(read_chunks(f, read_header(f)))


def test_absurd_chunk_length_is_not_allocated():
    h = _header(flags=1)
    data = encode_header(h) + struct.pack("<2sHI", b"CR", 4, 2 ** 31) + b"\0" * 4
    f = io.BytesIO(data)
    with pytest.raises(FormatError, match="bad payload length"):
        list(read_chunks(f, read_header(f)))


def test_mutation_fuzz_never_crashes(engine, speech):
    """Thousands of corrupted real files: every one is either decoded or rejected with FormatError."""
    from audiocodec.compress import compress, read_info

    good = compress(speech[:16000], 3.0, engine)
    r = np.random.default_rng(7)
    outcomes = {"ok": 0, "rejected": 0}
    for i in range(3000):
        d = bytearray(good)
        kind = i % 4
        if kind == 0:                                 # flip random bits
            for _ in range(r.integers(1, 4)):
                d[r.integers(len(d))] ^= 1 << r.integers(8)
        elif kind == 1:                               # truncate
            d = d[: r.integers(len(d))]
        elif kind == 2:                               # overwrite a run with random bytes
            s = r.integers(len(d))
            d[s:s + 8] = r.integers(0, 256, 8, dtype=np.uint8).tobytes()
        else:                                         # insert garbage
            s = r.integers(len(d))
            d[s:s] = r.integers(0, 256, r.integers(1, 20), dtype=np.uint8).tobytes()
        try:
            read_info(io.BytesIO(bytes(d)))
            outcomes["ok"] += 1
        except FormatError:
            outcomes["rejected"] += 1
    assert outcomes["rejected"] > 2900  # CRCs catch (almost) everything


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_crash(data):
    try:
        f = io.BytesIO(data)
        list(read_chunks(f, read_header(f)))
    except FormatError:
        pass


def test_bitstream_and_transport_import_without_torch():
    code = ("import sys\nclass Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'torch' or name.startswith('torch.'): raise ImportError('torch blocked')\n"
            "sys.meta_path.insert(0, Block())\n"
            "import audiocodec.bitstream.container, audiocodec.bitstream.entropy, audiocodec.bitstream.packing\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr

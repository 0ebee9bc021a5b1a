"""Sealed packets: key files, ChaCha20-Poly1305 sealing bound to header, session and index, replay window."""
import os
import stat
import struct

import pytest

from audiocodec.errors import CodecError
from audiocodec.transport.crypto import (KEY_SIZE, TAG_SIZE, Opener, ReplayWindow, Sealer, SealError, extend,
                                         read_key, write_key)

KEY = bytes(range(32))
SESSION = 0x1234ABCD
HEAD = struct.Struct(">BBHIIBBHI")  # the packet header without its CRC (20 bytes), as packets.py packs it


def _header(seq, session=SESSION, ts=0):
    return HEAD.pack(3, 0, seq & 0xFFFF, ts, session, 3, 1, 4, 0)


def _sealed(seq, payload=b"\x01\x02\x03\x04", session=SESSION, key=KEY, index=None):
    header = _header(seq, session)
    return header, Sealer(key, session).seal(header, payload, seq if index is None else index)


def _open(opener, header, sealed, hint=None):
    _, _, seq, _, session, *_ = HEAD.unpack(header)
    return opener.open(header, sealed, session, seq, hint)


def test_key_file_round_trip_mode_and_no_overwrite(tmp_path):
    path = str(tmp_path / "k.key")
    write_key(path)
    assert len(read_key(path)) == KEY_SIZE and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    before = open(path, "rb").read()
    with pytest.raises(CodecError, match="already exists"):
        write_key(path)
    assert open(path, "rb").read() == before and os.listdir(tmp_path) == ["k.key"]
    other = str(tmp_path / "k2.key")
    write_key(other)
    assert read_key(other) != before


@pytest.mark.parametrize("content, message", [(None, "no such key file"), (b"short", "5 bytes"),
                                              (b"x" * 33, "longer"), (b"", "0 bytes")])
def test_bad_key_files_give_one_line(tmp_path, content, message):
    path = tmp_path / "k.key"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CodecError, match=message) as e:
        read_key(str(path))
    assert "\n" not in str(e.value)


def test_round_trip_and_overhead():
    header, sealed = _sealed(7, b"hello codes")
    assert len(sealed) == len(b"hello codes") + TAG_SIZE and b"hello" not in sealed
    assert _open(Opener(KEY), header, sealed) == (b"hello codes", 7)


def test_any_bit_flip_is_refused():
    header, sealed = _sealed(7)
    wire = header + sealed
    for bit in range(len(wire) * 8):
        d = bytearray(wire)
        d[bit // 8] ^= 1 << (bit % 8)
        h, s = bytes(d[:20]), bytes(d[20:])
        with pytest.raises(SealError) as e:
            _open(Opener(KEY), h, s)
        assert e.value.reason == "forged"


def test_wrong_key_refused():
    header, sealed = _sealed(7, key=bytes(32))
    with pytest.raises(SealError, match="forged"):
        _open(Opener(KEY), header, sealed)


def test_session_and_sequence_are_bound():
    header, sealed = _sealed(7)
    with pytest.raises(SealError, match="forged"):  # the same sealed payload under another sequence number
        _open(Opener(KEY), _header(8), sealed)
    with pytest.raises(SealError, match="forged"):  # ... or another session's header
        _open(Opener(KEY), _header(7, session=SESSION + 1), sealed)
    with pytest.raises(SealError, match="forged"):  # ... or the same 16 bits, another rollover (index)
        _open(Opener(KEY), header, sealed, hint=7 + 65536)


def test_replay_window():
    opener = Opener(KEY)
    packets = {i: _sealed(i) for i in (0, 1, 2, 5, 1500, 1501)}
    for i in (0, 5, 2):
        assert _open(opener, *packets[i])[1] == i
    with pytest.raises(SealError, match="replayed"):
        _open(opener, *packets[5])
    assert _open(opener, *packets[1])[1] == 1  # old but in the window: accepted once
    with pytest.raises(SealError, match="replayed"):
        _open(opener, *packets[1])
    _open(opener, *packets[1500])
    with pytest.raises(SealError, match="replayed"):  # 1500 behind the top: older than the window
        _open(opener, *_sealed(476))
    assert _open(opener, *packets[1501])[1] == 1501


def test_adopts_first_authentic_session_and_refuses_others_cheaply():
    opener = Opener(KEY)
    with pytest.raises(SealError, match="forged"):  # a forgery does not lock the receiver
        _open(opener, _header(0, session=99), b"\0" * 20)
    _open(opener, *_sealed(0))
    with pytest.raises(SealError, match="foreign"):
        _open(opener, *_sealed(1, session=SESSION + 1))


def test_wraps_and_late_join():
    opener = Opener(KEY)
    for index in (65534, 65535, 65536, 65537):  # sequence numbers 65534, 65535, 0, 1
        assert _open(opener, *_sealed(index & 0xFFFF, index=index), hint=65530)[1] == index
    late = Opener(KEY)  # joins after the wrap: the hint (e.g. timestamp / samples per packet) finds it
    assert _open(late, *_sealed(5, index=3 * 65536 + 5), hint=3 * 65536 + 100)[1] == 3 * 65536 + 5


def test_window_and_extend_units():
    w = ReplayWindow(8)
    assert w.check(3)
    w.accept(3)
    assert not w.check(3) and w.check(2) and w.check(100)
    w.accept(100)
    assert not w.check(92) and w.check(93) and not w.check(100)
    assert extend(2, 65535) == 65538 and extend(65535, 2) == 65535 and extend(5, None) == 5

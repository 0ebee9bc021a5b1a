"""Sealed packets: key files, authenticated encryption and a replay window (no torch, no sockets).

A stream sent with ``--key FILE`` has every datagram sealed with ChaCha20-Poly1305 (RFC 8439, from the
``cryptography`` package), as SRTP seals RTP packets: the packet header travels in clear and is the
associated data, the payload is encrypted, and a 16-byte tag takes the place of the CRC (docs/packets.md).

``write_key`` / ``read_key``  the 32-byte key file (``audiocodec keygen``).
``Sealer``                     the sender's side: one per session; ``seal(header, payload, index)``.
``Opener``                     the receiver's side: ``open(header, sealed, session, seq, hint)`` returns the
                               payload and its extended index, or raises SealError (the receiver counts it).
``ReplayWindow``               which extended sequence numbers were accepted (RFC 4303 section 3.4.3).

Nonces never repeat under one key and session: each session has its own key, derived from the key file's
key and the 32-bit session id (HKDF-SHA256), and the nonce is the packet's extended 64-bit index (rollover
count << 16 | 16-bit sequence number), which a sender never reuses within a session.
"""
from __future__ import annotations

import os
import struct
import tempfile

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import CodecError

KEY_SIZE = 32
TAG_SIZE = 16                      # the Poly1305 tag appended to the ciphertext
REPLAY_WIDTH = 1024                # extended sequence numbers remembered behind the highest one
_INFO = b"audiocodec sealed packets v1"
_NONCE = struct.Struct(">4xQ")     # 12 bytes: zero, then the 64-bit extended index


class SealError(ValueError):
    """Why a sealed datagram was refused: ``reason`` is 'forged' (tag mismatch: damaged, forged or another
    key), 'replayed' (seen before, or older than the window) or 'foreign' (another session)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


REASONS = ("forged", "replayed", "foreign")


def write_key(path: str) -> None:
    """Write 32 random bytes to a new file ``path`` (mode 0600). Refuses to overwrite; a reader never sees
    a half-written key (it is written aside, then linked into place)."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.lexists(path):
        raise CodecError(f"{path}: already exists; a key file is never overwritten")
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".audiocodec-", suffix=".part")  # mode 0600
    except OSError as exc:
        raise CodecError(f"{path}: cannot write the key ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(KEY_SIZE))
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)  # fails if ``path`` appeared meanwhile
    except FileExistsError:
        raise CodecError(f"{path}: already exists; a key file is never overwritten") from None
    except OSError as exc:
        raise CodecError(f"{path}: cannot write the key ({exc.strerror})") from None
    finally:
        os.unlink(tmp)


def read_key(path: str) -> bytes:
    """The 32-byte key in ``path``, or a one-line CodecError."""
    try:
        with open(path, "rb") as f:
            key = f.read(KEY_SIZE + 1)
    except FileNotFoundError:
        raise CodecError(f"{path}: no such key file (make one with: audiocodec keygen {path})") from None
    except IsADirectoryError:
        raise CodecError(f"{path}: is a directory, expected a key file") from None
    except OSError as exc:
        raise CodecError(f"{path}: cannot read the key file ({exc.strerror})") from None
    if len(key) != KEY_SIZE:
        size = f"{len(key)} bytes" if len(key) <= KEY_SIZE else "longer"
        raise CodecError(f"{path}: not a key file ({size}; a key is {KEY_SIZE} bytes, made by audiocodec keygen)")
    return key


def session_cipher(key: bytes, session: int) -> ChaCha20Poly1305:
    """The AEAD of one session: its key is HKDF-SHA256(key file's key, info = label + session id)."""
    if len(key) != KEY_SIZE:
        raise ValueError(f"a key is {KEY_SIZE} bytes")
    info = _INFO + struct.pack(">I", session & 0xFFFFFFFF)
    return ChaCha20Poly1305(HKDF(hashes.SHA256(), KEY_SIZE, salt=None, info=info).derive(key))


def extend(seq: int, reference: int | None) -> int:
    """A 16-bit sequence number -> the extended index closest to ``reference`` (RFC 3711 section 3.3.1);
    never negative."""
    if reference is None:
        return seq
    index = reference + ((seq - reference + 0x8000) & 0xFFFF) - 0x8000
    return index if index >= 0 else index + 0x10000


class Sealer:
    """Seals one session's datagrams."""

    def __init__(self, key: bytes, session: int):
        self.cipher = session_cipher(key, session)

    def seal(self, header: bytes, payload: bytes, index: int) -> bytes:
        """payload -> ciphertext + 16-byte tag, authenticating ``header`` (sent in clear) and the extended
        ``index`` (the nonce; its low 16 bits are the header's sequence number)."""
        return self.cipher.encrypt(_NONCE.pack(index), payload, header)


class ReplayWindow:
    """Extended sequence numbers already accepted: the highest, and a bitmap of the ``width`` below it."""

    def __init__(self, width: int = REPLAY_WIDTH):
        self.width, self.top, self.bits = width, None, 0  # bit i: index top - i was accepted

    def check(self, index: int) -> bool:
        """True if ``index`` is new: above the highest, or within the window and not yet accepted."""
        if self.top is None or index > self.top:
            return True
        behind = self.top - index
        return behind < self.width and not (self.bits >> behind) & 1

    def accept(self, index: int) -> None:
        """Record ``index`` (call only after it passed ``check`` and authentication)."""
        if self.top is None or index > self.top:
            shift = index - (self.top if self.top is not None else index)
            self.bits = 1 if shift >= self.width else ((self.bits << shift) | 1) & ((1 << self.width) - 1)
            self.top = index
        else:
            self.bits |= 1 << (self.top - index)


class Opener:
    """Opens one session's sealed datagrams; adopts the session of the first datagram that authenticates
    unless ``session`` is given. Cheap refusals (another session, a replay) come before any cryptography."""

    def __init__(self, key: bytes, session: int | None = None, width: int = REPLAY_WIDTH):
        self.key, self.session = key, session
        self.cipher = None if session is None else session_cipher(key, session)
        self.window = ReplayWindow(width)

    def open(self, header: bytes, sealed: bytes, session: int, seq: int, hint: int | None = None) -> tuple[bytes, int]:
        """-> (payload, extended index), or SealError. ``seq``/``session``: the header's fields; ``hint``:
        an estimate of the extended index used before any packet was accepted (e.g. timestamp / samples
        per packet), so a receiver that joins after the 16-bit counter wrapped still finds it."""
        if self.session is not None and session != self.session:
            raise SealError("foreign", f"session {session:08x}, not {self.session:08x}")
        if len(sealed) < TAG_SIZE:
            raise SealError("forged", "shorter than the tag")
        index = extend(seq, self.window.top if self.window.top is not None else hint)
        if not self.window.check(index):
            raise SealError("replayed", f"packet {index} was seen before or is too old")
        cipher = self.cipher or session_cipher(self.key, session)
        try:
            payload = cipher.decrypt(_NONCE.pack(index), sealed, header)
        except InvalidTag:
            raise SealError("forged", "authentication tag mismatch (damaged, forged or another key)") from None
        if self.session is None:
            self.session, self.cipher = session, cipher
        self.window.accept(index)
        return payload, index

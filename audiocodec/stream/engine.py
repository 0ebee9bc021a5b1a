"""The loaded model: the codec and the entropy model fitted for it, and what identifies them in bytes."""
from __future__ import annotations

import functools
import os
import zlib
from dataclasses import dataclass

import numpy as np

from ..bitstream.container import FormatError, Header
from ..bitstream.context import ContextModel
from ..bitstream.entropy import EntropyModel
from ..errors import CodecError
from ..model import Codec, default_weights_path


def model_tag(model_id: str) -> int:
    """The 32-bit tag of a model (its ``Codec.model_id``, a hash of the weights file) that seeds each packet's
    CRC, so receivers with other weights refuse the packets."""
    return zlib.crc32(model_id.encode())


@dataclass
class Engine:
    """A codec and the entropy models fitted for it: the context model (``bitstream/context.py``, what new
    files and packets are coded with), its tempered twin for the codes ``compress --search`` sends
    (``searched``: flatter frequencies, fitted on searched codes; ``scripts/fit_context.py --searched``) and
    the per-stage tables (``bitstream/entropy.py``, for files of format version 3 and before). None: not
    installed."""
    codec: Codec
    entropy: EntropyModel | None
    context: ContextModel | None = None
    searched: ContextModel | None = None

    def context_for(self, context_id: bytes) -> ContextModel | None:
        """The installed context model a file names by ``context_id``, or None."""
        return next((c for c in (self.context, self.searched) if c is not None and c.id == context_id), None)

    @property
    def model_id(self) -> bytes:
        """The 8 bytes a .acdc header names the model by."""
        return bytes.fromhex(self.codec.model_id)[:8] if self.codec.model_id != "untrained" else b"\0" * 8

    def reads(self, model_id: bytes) -> bool:
        """Whether files that name ``model_id`` decode here: this model's, or an earlier one's that made the same
        codes (a decoder-only update, ``Codec.same_codes_as``), whose files the newer decoder renders."""
        return model_id == self.model_id or model_id.hex() in self.codec.same_codes_as


@functools.lru_cache(maxsize=4)
def load_engine(weights: str | None = None) -> Engine:
    """Load weights (default: the shipped model) and the entropy model beside them, if it matches."""
    path = weights or default_weights_path()
    if not os.path.isfile(path):
        raise CodecError(f"{path}: model weights not found")
    try:
        codec = Codec.load(path)
    except Exception as exc:
        raise CodecError(f"{path}: cannot load model weights ({exc})") from None
    ent_path = path.replace(".safetensors", ".entropy.npz")
    entropy = EntropyModel.load(ent_path) if os.path.isfile(ent_path) else None
    if entropy is not None and (entropy.model_id != codec.model_id or len(entropy.probs) < codec.max_rows):
        entropy = None
    ctx_path = path.replace(".safetensors", ".context.npz")
    context = ContextModel.load(ctx_path) if os.path.isfile(ctx_path) else None
    if context is not None and (context.model_id != codec.model_id or context.w.rows < codec.max_rows):
        context = None
    searched = searched_model(context, path.replace(".safetensors", ".searched.npz")) if context else None
    return Engine(codec, entropy, context, searched)


def searched_model(context: ContextModel, path: str) -> ContextModel | None:
    """The tempered context model for searched codes (``ContextModel.tempered``) whose row multipliers the .npz
    at ``path`` holds, if it is there and was fitted for ``context``."""
    if not os.path.isfile(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as d:
            base, out_mul = bytes.fromhex(str(d["context_id"])), np.asarray(d["out_mul"])
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise CodecError(f"{path}: cannot read the searched codes' context model ({exc})") from None
    return context.tempered(out_mul) if base == context.id else None


def save_searched(searched: ContextModel, base: ContextModel, path: str) -> None:
    """Write what ``searched_model`` reads: the base model's id and the tempered model's row multipliers."""
    np.savez(path, context_id=np.array(base.id.hex()), out_mul=searched.w.out_mul)


def check_model(header: Header, engine: Engine) -> None:
    """FormatError unless ``engine`` can decode the .acdc stream of ``header``."""
    cfg = engine.codec.cfg
    if not engine.reads(header.model_id):
        raise FormatError(f"file was made with model {header.model_id.hex()}, this is model {engine.model_id.hex()}")
    if header.n_q > engine.codec.max_rows or header.bits != cfg.bits_per_code or header.frame_size != cfg.frame_size:
        raise FormatError("file's codebook layout does not match the model")
    if header.entropy_coded and engine.entropy is None:
        raise FormatError("file is entropy-coded but no entropy model is installed for this model")
    if header.context_coded and engine.context_for(header.context_id) is None:
        have = (f"this install has {engine.context.id.hex()}" + (f" and {engine.searched.id.hex()} (searched codes)"
                if engine.searched else "")) if engine.context else "none is installed"
        raise FormatError(f"file was coded with context model {header.context_id.hex()}, {have}")

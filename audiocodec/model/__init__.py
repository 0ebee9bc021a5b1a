"""The neural codec: encoder -> residual vector quantizer -> decoder (+ iSTFT head).

The model holds no bytes and touches no files except its own weights (``codec.py``)."""
from .codec import Codec, CodecConfig, default_weights_path, load_default

__all__ = ["Codec", "CodecConfig", "default_weights_path", "load_default"]

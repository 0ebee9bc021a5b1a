"""audiocodec: a small neural speech codec.

wav -> audio.py -> model/encoder.py -> model/quantizer.py -> bitstream/ (entropy, container) -> transport/
(packets) -> model/decoder.py + model/heads.py -> wav.  ``compress.py`` is the one bridge from model to bytes.
"""
__version__ = "0.1.0"

"""audiocodec: a small neural speech codec.

wav -> audio.py -> stream/encoder.py (model/encoder.py -> model/quantizer.py; the low band) -> Frames ->
compress.py (.acdc chunks, bitstream/) or transport/packets.py (UDP datagrams) -> stream/decoder.py
(model/decoder.py + model/heads.py; concealment, the low band) -> wav. ``stream/modes.py`` names the bitrates.
"""
__version__ = "0.1.0"

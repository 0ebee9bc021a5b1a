"""The frame stream: audio <-> ``Frame``s, the unit that both the .acdc file (``compress.py``) and the UDP
packets (``transport/packets.py``) serialise. Importing this package loads nothing heavy (no torch).

    modes.py     the bitrate modes: rows of codes per frame and, for a hybrid mode, its low band
    engine.py    the loaded model: ``Engine`` (codec + entropy model), ``load_engine``, ``check_model``, ``model_tag``
    frames.py    ``Frame``: one 20 ms frame's codes and, in a hybrid stream, its low band (no torch)
    encoder.py   ``FrameEncoder``: audio -> Frames (the streaming encoder, plus the low band)
    decoder.py   ``FrameDecoder``: Frames (or a lost frame) -> audio, with latent-domain concealment
    lowband.py   the low band's waveform layer (MDCT, quantization, range coding, streaming replacement)
    quality.py   PESQ-WB and STOI of a decoded stream against its input (network runs and benchmarks)
"""

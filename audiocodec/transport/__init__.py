"""Real-time transport: frames in UDP packets, a jitter buffer with loss concealment, a lossy relay.

Bytes and sockets only: nothing in this package imports torch or ``audiocodec.model`` except ``commands.py``
(the CLI), which makes the frame encoder and decoder (``audiocodec.stream``) and hands them to the socket
loops.

    packets.py   the datagram format (docs/packets.md): frames <-> datagrams, plain or sealed, hostile bytes welcome
    coded.py     context-coded codes (``bitstream/context.py``) as the fewest bytes that decode to them
    crypto.py    key files, authenticated encryption of packets (ChaCha20-Poly1305) and the replay window
    jitter.py    jitter buffer (reorder, late, duplicate), loss and RFC 3550 jitter statistics
    link.py      network model (random / Gilbert-Elliott loss, jitter, reordering) and a UDP relay
    sender.py    audio -> frames -> encoder -> packets -> socket, paced in real time (or as fast as possible)
    receiver.py  socket -> jitter buffer -> decoder (or concealment) -> audio sink, statistics
    sinks.py     where received audio goes: wav file, raw PCM stream, memory
    simulate.py  sender, relay and receiver on 127.0.0.1 in one call
    commands.py  the ``send``, ``receive``, ``simulate`` and ``keygen`` subcommands (help.py: their examples)
"""

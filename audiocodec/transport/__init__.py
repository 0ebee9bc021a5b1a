"""Real-time transport: codes in UDP packets, a jitter buffer with loss concealment, a lossy relay.

Bytes and sockets only: nothing in this package imports torch or ``audiocodec.model``, except
``bridge.py`` (and ``commands.py``, which uses it), the one place where the streaming codec is joined to
the transport. The socket loops take encoder/decoder objects as arguments.

    packets.py   the datagram format (docs/packets.md): build and parse, hostile bytes welcome
    jitter.py    jitter buffer (reorder, late, duplicate), loss and RFC 3550 jitter statistics
    link.py      network model (random / Gilbert-Elliott loss, jitter, reordering) and a UDP relay
    sender.py    frames -> encoder -> packets -> socket, paced in real time (or as fast as possible)
    receiver.py  socket -> jitter buffer -> decoder (or concealment) -> audio sink, statistics
    sinks.py     where received audio goes: wav file, raw PCM stream, memory
    simulate.py  sender, relay and receiver on 127.0.0.1 in one call
    bridge.py    the streaming codec behind the interfaces above (imports torch)
    commands.py  the ``send``, ``receive`` and ``simulate`` subcommands
"""

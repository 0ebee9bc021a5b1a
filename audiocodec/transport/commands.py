"""CLI subcommands for the network: send, receive, simulate. Loads the model, makes the frame encoder and
decoder (``stream/``) and hands them to the socket loops; prints statistics. The only module of transport/
that touches the model."""
from __future__ import annotations

import argparse
import json
import os
import socket
import sys

from .. import audio
from ..options import add_output_options
from ..errors import CodecError
from ..stream import modes
from ..stream.quality import quality
from .packets import MAX_FRAMES
from .simulate import run_simulation

FMT = argparse.RawDescriptionHelpFormatter


# ---- shared helpers ---------------------------------------------------------------------------------
def parse_address(text: str, listen: bool = False) -> tuple[int, tuple]:
    """'HOST:PORT', '[v6]:PORT' or ':PORT' (listen on all interfaces) -> (address family, sockaddr)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise CodecError(f"{text}: expected HOST:PORT, e.g. 127.0.0.1:5004")
    host = host.strip("[]") or ("0.0.0.0" if listen else "")
    if not host:
        raise CodecError(f"{text}: missing host (e.g. 127.0.0.1:{port})")
    try:
        family, _, _, _, addr = socket.getaddrinfo(host, int(port), type=socket.SOCK_DGRAM)[0]
    except socket.gaierror as exc:
        raise CodecError(f"{text}: cannot resolve host ({exc.strerror})") from None
    return family, addr


def _session(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        value = int(text, 16)
    except ValueError:
        value = -1
    if not 0 <= value < 1 << 32:
        raise CodecError(f"--session {text}: expected up to 8 hex digits")
    return value


def _engine(args):
    from ..stream.engine import load_engine

    return load_engine(args.model)


def _encoder(args):
    """The sender's frame encoder for the options' model and mode."""
    from ..stream.encoder import FrameEncoder

    mode = modes.mode(args.bitrate, args.hybrid)
    return FrameEncoder(_engine(args).codec, mode)


MAX_STDIN = 256 << 20  # an audio *file* on stdin is read whole; --raw streams instead


def _blocks(path: str, raw: bool):
    """Audio blocks of the input: a file (streamed), a file on stdin, or raw PCM streamed as it comes."""
    from .sender import read_raw

    if raw:
        if path == "-":
            return read_raw(sys.stdin.buffer)
        if not os.path.isfile(path):
            raise CodecError(f"{path}: no such file")
        return read_raw(open(path, "rb"))
    if path == "-":
        data = sys.stdin.buffer.read(MAX_STDIN + 1)
        if len(data) > MAX_STDIN:
            raise CodecError(f"stdin: more than {MAX_STDIN >> 20} MB; pass a file path, or raw PCM with --raw")
        return [audio.load_bytes(data)]
    return audio.iter_blocks(path)


def _check_frames(n: int) -> None:
    if not 1 <= n <= MAX_FRAMES:
        raise CodecError(f"--frames-per-packet must be 1..{MAX_FRAMES}, not {n}")


def _sink(path: str, force: bool):
    from .sinks import RawSink, WavSink

    if path == "-":
        return RawSink(sys.stdout.buffer)
    if os.path.isdir(path):
        raise CodecError(f"{path}: is a directory")
    if os.path.exists(path) and not force:
        raise CodecError(f"{path}: already exists (use -f to overwrite)")
    return WavSink(path)


def _fmt(q: dict) -> str:
    p = "  n/a" if q["pesq_wb"] is None else f"{q['pesq_wb']:5.2f}"
    return f"PESQ-WB {p}   STOI {q['stoi']:.3f}"


# ---- send -------------------------------------------------------------------------------------------
def cmd_send(args) -> int:
    from .sender import SenderStats, send_stream

    _check_frames(args.frames_per_packet)
    family, dest = parse_address(args.to)
    encoder = _encoder(args)
    blocks = _blocks(args.input, args.raw)
    st = SenderStats()
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            send_stream(sock, dest, blocks, encoder, args.frames_per_packet,
                        session=_session(args.session), paced=not args.fast, stats=st)
        except OSError as exc:
            raise CodecError(f"send to {args.to}: {exc.strerror or exc}") from None
    if not args.quiet:
        print(st.line(), file=sys.stderr)
    return 0


# ---- receive ----------------------------------------------------------------------------------------
def cmd_receive(args) -> int:
    from ..stream.decoder import FrameDecoder
    from .receiver import Receiver

    family, addr = parse_address(args.listen, listen=True)
    if args.json and args.output == "-":
        raise CodecError("--json and audio on stdout (-) would mix; write the audio to a file")
    if not 0 < args.buffer_ms <= 5000 or args.timeout <= 0:
        raise CodecError("--buffer-ms must be in (0, 5000] and --timeout > 0")
    sink = _sink(args.output, args.force)
    try:
        codec = _engine(args).codec
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            sock.bind(addr)
        except OSError as exc:
            sock.close()
            raise CodecError(f"listen on {args.listen}: {exc.strerror or exc}") from None
        host, port = sock.getsockname()[:2]
        if not args.quiet:
            print(f"listening on {host}:{port}", file=sys.stderr, flush=True)
        with sock:
            rx = Receiver(sock, FrameDecoder(codec), sink, buffer_ms=args.buffer_ms, timeout=args.timeout,
                          paced=not args.fast, session=_session(args.session), adaptive=args.adaptive)
            st = rx.run()
        if st.packets_received == 0 and st.dropped["corrupt"]:
            raise CodecError(f"{st.dropped['corrupt']} packets arrived on {host}:{port} but none passed the CRC "
                             f"check: a damaged link, or a sender using other weights (this receiver runs model "
                             f"{codec.model_id})")
        if st.packets_received == 0:
            raise CodecError(f"no packets received on {host}:{port} within {args.timeout:g} s")
    except BaseException:
        sink.abort()
        raise
    sink.close()
    if args.json:
        print(json.dumps(st.as_dict(), indent=2))
    if not args.quiet:
        print("\n".join(st.lines()), file=sys.stderr)
    return 0


# ---- simulate ---------------------------------------------------------------------------------------
def network_model(args):
    from .link import NetworkModel

    try:
        return NetworkModel(loss=args.loss, burst=args.burst, burst_len=args.burst_len, delay_ms=args.delay_ms,
                            jitter_ms=args.jitter_ms, reorder=args.reorder, duplicate=args.duplicate,
                            corrupt=args.corrupt, seed=args.seed)
    except ValueError as exc:
        raise CodecError(str(exc)) from None


def cmd_simulate(args) -> int:
    from ..compress import compress, decompress
    from ..stream.decoder import FrameDecoder

    _check_frames(args.frames_per_packet)
    if not 0 < args.buffer_ms <= 5000:
        raise CodecError("--buffer-ms must be in (0, 5000]")
    model = network_model(args)
    encoder, engine = _encoder(args), _engine(args)
    wav = audio.load(args.input)
    sink = _sink(args.output, args.force)
    try:
        decoded, result = run_simulation(wav, encoder, FrameDecoder(engine.codec), model, args.frames_per_packet,
                                         args.buffer_ms, paced=args.realtime, sink=sink, adaptive=args.adaptive)
    except BaseException:
        sink.abort()
        raise
    sink.close()
    clean = decompress(compress(wav, args.bitrate, engine, hybrid=args.hybrid), engine)  # the loss-free file path
    q_clean, q_net = quality(wav, clean), quality(wav, decoded)
    st = result.stats
    if args.json:
        print(json.dumps({"stats": st.as_dict(), "link": result.link.__dict__, "network": _describe(model),
                          "quality_loss_free": q_clean, "quality": q_net}, indent=2))
    if not args.quiet:
        lines = [f"network     {_describe(model)}", result.sender.line(), result.link.line(), *st.lines(),
                 f"quality     loss-free: {_fmt(q_clean)}",
                 f"            this run:  {_fmt(q_net)}   (against {args.input}"
                 + ("; the buffer's stretches cut out and its skips filled with silence first)" if args.adaptive else ")")]
        print("\n".join(lines), file=sys.stderr)
    return 0


def _describe(m) -> str:
    loss = f"{100 * m.loss:g}% {'bursty (Gilbert-Elliott, mean burst ' + format(m.burst_len, 'g') + ')' if m.burst else 'random'} loss"
    return (f"{loss}, delay {m.delay_ms:g} +- {m.jitter_ms:g} ms, reorder {100 * m.reorder:g}%, "
            f"duplicate {100 * m.duplicate:g}%, corrupt {100 * m.corrupt:g}%, seed {m.seed}")


# ---- argparse ---------------------------------------------------------------------------------------
SEND_EPILOG = """examples:
  audiocodec receive --listen :5004 call.wav &            # on the other machine (or another terminal)
  audiocodec send talk.wav --to 192.168.1.20:5004 --bitrate 6
  audiocodec send talk.wav --to 127.0.0.1:5004 --frames-per-packet 3   # 60 ms packets: less header overhead
  arecord -q -f S16_LE -r 16000 -c 1 -t raw | audiocodec send - --raw --to 192.168.1.20:5004   # live; Ctrl-C ends

Frames of 20 ms are encoded as they "arrive" (paced like a live microphone) and sent as UDP packets: a
24-byte header (sequence number, timestamp, session id, codebook count, CRC-32; docs/packets.md) plus
ceil(frames x codebooks x 10 / 8) bytes of codes. At 6 kbps, one frame per packet is 39 bytes every 20 ms
(15.6 kbps, 26.8 with IP/UDP); three frames per packet, 69 bytes every 60 ms (9.2 kbps, 12.9).
The stream ends with an end-of-stream packet (sent 5 times) carrying the exact sample count.
Codec latency: 50 ms (20 ms frame + 30 ms decoder overlap; 70 ms in a stream that sends the pitch, whose
tracker hears 20 ms ahead), plus packetisation, network and jitter buffer.
"""

RECEIVE_EPILOG = """examples:
  audiocodec receive --listen :5004 call.wav
  audiocodec receive --listen 127.0.0.1:5004 - | aplay -f S16_LE -r 16000 -c 1   # play live
  audiocodec receive --listen :5004 call.wav --buffer-ms 120 --timeout 30 --json

Packets wait in a jitter buffer until their turn (--buffer-ms after the first packet said they would be
due); reordered packets are put back in order, a packet after its turn is counted late and dropped, and a
missing frame is concealed (the decoder is fed a stand-in latent that fades to silence), so the output
always has the stream's exact duration. Packets of another session (the first one heard wins, or
--session), corrupted (CRC-32), malformed, oversized or duplicated ones are counted and dropped.
Ends after the end-of-stream packet, after --timeout seconds without a packet, or on Ctrl-C (keeping
what arrived); then prints packets
received/lost/late/duplicated, wire kbps (with headers), RFC 3550 jitter, network and end-to-end delay.
With --fast a frame is played as soon as the frames --buffer-ms after it have arrived (for senders run
with --fast; no wall clock involved).
With --adaptive, --buffer-ms is only the starting depth: the buffer follows how late packets come (deep
enough for 98% of the last 5 s of packets, at most 1 s), growing by a stand-in frame when one is
missing and shrinking by skipping a frame in a pause; the output is then a few frames longer or shorter.
"""

SIMULATE_EPILOG = """examples:
  audiocodec simulate talk.wav out.wav --loss 0.1
  audiocodec simulate talk.wav out.wav --loss 0.1 --burst --jitter-ms 30 --reorder 0.02
  audiocodec simulate talk.wav out.wav --loss 0.05 --corrupt 0.01 --duplicate 0.01 --realtime --json
  audiocodec simulate talk.wav out.wav --jitter-ms 60 --buffer-ms 40 --realtime --adaptive

Runs a sender, a lossy relay and a receiver on 127.0.0.1 UDP sockets in one process, then prints the
statistics and PESQ-WB / STOI against the input, next to the loss-free result (the same mode's file path).
The relay loses packets at random (or in Gilbert-Elliott bursts with --burst), delays each by
--delay-ms +- --jitter-ms (uniform, so packets overtake each other), holds --reorder of them back a further
20-40 ms, and can duplicate or corrupt some; everything is seeded (--seed). By default the run is not paced:
it uses the stream's own clock, so a 10 s clip takes about a second and gives the same late/lost counts as
--realtime would on an idle machine.
"""


def add_commands(sub) -> None:
    p = sub.add_parser("send", help="stream audio as UDP packets", formatter_class=FMT, epilog=SEND_EPILOG,
                       description="Encode audio frame by frame and send it over UDP in real time.")
    p.add_argument("input", help="audio file, or - for stdin")
    p.add_argument("--to", required=True, metavar="HOST:PORT", help="where the receiver listens")
    p.add_argument("--raw", action="store_true", help="input is raw signed 16-bit mono 16 kHz PCM, streamed as it "
                                                      "comes (a live microphone: arecord -t raw ... | send - --raw)")
    _stream_options(p)
    p.add_argument("--fast", action="store_true", help="send as fast as possible instead of in real time (tests)")
    p.add_argument("--session", metavar="HEX", help="session id (default: random)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    p.add_argument("--model", help="weights file (default: the shipped model)")
    p.set_defaults(func=cmd_send)

    p = sub.add_parser("receive", help="receive UDP packets into audio", formatter_class=FMT, epilog=RECEIVE_EPILOG,
                       description="Receive, buffer, decode (concealing losses) and write a stream sent by `send`.")
    p.add_argument("--listen", required=True, metavar="HOST:PORT", help="address to listen on (:PORT = all)")
    p.add_argument("output", help="wav file, or - for raw 16-bit PCM on stdout")
    p.add_argument("--buffer-ms", type=float, default=80.0, help="jitter buffer depth (default 80)")
    p.add_argument("--adaptive", action="store_true", help="let the buffer's depth follow the network's jitter "
                                                           "(--buffer-ms is where it starts)")
    p.add_argument("--timeout", type=float, default=10.0, help="give up after this many seconds without packets "
                                                               "(default 10)")
    p.add_argument("--fast", action="store_true", help="play out on the stream's clock, not the wall clock")
    p.add_argument("--session", metavar="HEX", help="accept only this session id (default: the first heard)")
    p.add_argument("--json", action="store_true", help="statistics as JSON on stdout")
    add_output_options(p)
    p.set_defaults(func=cmd_receive)

    p = sub.add_parser("simulate", help="send -> lossy network -> receive on loopback, with quality",
                       formatter_class=FMT, epilog=SIMULATE_EPILOG,
                       description="Stream a file through a simulated bad network and measure what arrives.")
    p.add_argument("input", help="audio file")
    p.add_argument("output", help="received audio (wav)")
    p.add_argument("--loss", type=float, default=0.0, help="fraction of packets lost, 0..1 (default 0)")
    p.add_argument("--burst", action="store_true", help="bursty loss (Gilbert-Elliott) instead of random")
    p.add_argument("--burst-len", type=float, default=3.0, help="mean burst length in packets (default 3)")
    p.add_argument("--delay-ms", type=float, default=40.0, help="one-way delay (default 40)")
    p.add_argument("--jitter-ms", type=float, default=0.0, help="delay varies uniformly by +- this (default 0)")
    p.add_argument("--reorder", type=float, default=0.0, help="fraction held back 20-40 ms extra (default 0)")
    p.add_argument("--duplicate", type=float, default=0.0, help="fraction delivered twice (default 0)")
    p.add_argument("--corrupt", type=float, default=0.0, help="fraction with a flipped bit (default 0)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the network (default 0)")
    _stream_options(p)
    p.add_argument("--buffer-ms", type=float, default=80.0, help="receiver jitter buffer depth (default 80)")
    p.add_argument("--adaptive", action="store_true", help="adaptive jitter buffer (--buffer-ms is where it starts)")
    p.add_argument("--realtime", action="store_true", help="pace everything on the wall clock")
    p.add_argument("--json", action="store_true", help="statistics and quality as JSON on stdout")
    add_output_options(p)
    p.set_defaults(func=cmd_simulate)


def _stream_options(p) -> None:
    p.add_argument("-b", "--bitrate", type=float, default=6.0, help=f"{modes.choices(last=' or ')} kbps (default 6)")
    p.add_argument("--hybrid", action="store_true", help=f"{modes.choices(True, ' or ')} kbps as {modes.hybrid_text()} as a waveform "
                                                          "(as compress --hybrid; 20 ms more latency)")
    p.add_argument("-F", "--frames-per-packet", type=int, default=1, help=f"1..{MAX_FRAMES} frames of 20 ms per "
                                                                           "packet (default 1)")

"""CLI subcommands for the network: send, receive, simulate, keygen. Loads the model, makes the frame encoder
and decoder (``stream/``) and hands them to the socket loops; prints statistics. The only module of transport/
that touches the model."""
from __future__ import annotations

import argparse
import json
import os
import socket
import sys

from .. import audio
from ..constants import FRAME, SAMPLE_RATE
from ..errors import CodecError
from ..options import add_output_options
from ..stream import modes
from ..stream.quality import quality
from .help import KEYGEN_EPILOG, RECEIVE_EPILOG, SEND_EPILOG, SIMULATE_EPILOG
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


def parse_source(text: str) -> tuple[str, int | None]:
    """'HOST', 'HOST:PORT', an IPv6 address or '[v6]:PORT' -> (numeric host, port or None): where
    ``receive --from`` takes datagrams from."""
    host, port = text, ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else rest
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    if not host or (port and (not port.isdigit() or int(port) > 65535)):
        raise CodecError(f"--from {text}: expected HOST or HOST:PORT, e.g. 192.168.1.20 or 192.168.1.20:40000")
    try:
        info = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise CodecError(f"--from {text}: cannot resolve host ({exc.strerror})") from None
    return info[0][4][0], int(port) if port else None


def _key(args) -> bytes | None:
    from .crypto import read_key

    return read_key(args.key) if args.key else None


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
    """The model, on one thread: a live stream's 20 ms frames are too small to split, and more threads only
    make a busy machine late."""
    from ..runtime import use_threads
    from ..stream.engine import load_engine

    use_threads(1)
    return load_engine(args.model)


def _encoder(args):
    """The sender's frame encoder for the options' model and mode (as packets carry it: ``Mode.in_packets``)."""
    from ..stream.encoder import FrameEncoder

    return FrameEncoder(_engine(args).codec, modes.mode(args.bitrate, args.hybrid).in_packets)


def _context(args):
    """The context model packets are coded with: the one installed beside the weights, unless --fixed-rate."""
    return None if args.fixed_rate else _engine(args).context


def _blocks(path: str, raw: bool):
    """Audio blocks of the input: a file (streamed), a file on stdin, or raw PCM streamed as it comes."""
    name = "stdin" if path == "-" else path
    if raw:  # 16-bit mono 16 kHz PCM, one 20 ms frame per read: a live microphone pipe
        if path != "-":
            audio.check_path(path)
        stream = sys.stdin.buffer if path == "-" else open(path, "rb")
        return audio.iter_raw(stream, block_seconds=FRAME / SAMPLE_RATE, name=name)
    return audio.iter_blocks(audio.spool(sys.stdin.buffer) if path == "-" else path, name=name)


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
    if args.key and args.session:
        raise CodecError("--session with --key: a sealed stream picks its own random session (never reused under "
                         "one key); leave --session out")
    family, dest = parse_address(args.to)
    key = _key(args)
    encoder = _encoder(args)
    blocks = _blocks(args.input, args.raw)
    st = SenderStats()
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            send_stream(sock, dest, blocks, encoder, args.frames_per_packet, session=_session(args.session),
                        paced=not args.fast, stats=st, key=key, context=_context(args))
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
    key, source = _key(args), parse_source(args.source) if args.source else None
    sink = _sink(args.output, args.force)
    try:
        engine = _engine(args)
        codec = engine.codec
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
                          paced=not args.fast, session=_session(args.session), adaptive=args.adaptive,
                          key=key, from_addr=source, context=engine.context)
            st = rx.run()
        if st.packets_received == 0:
            _explain_nothing(st, f"{host}:{port}", codec.model_id, args)
    except BaseException:
        sink.abort()
        raise
    sink.close()
    if args.json:
        print(json.dumps(st.as_dict(), indent=2))
    if not args.quiet:
        print("\n".join(st.lines()), file=sys.stderr)
    return 0


def _explain_nothing(st, where: str, model_id: str, args) -> None:
    """CodecError saying why no packet of a stream was received on ``where``."""
    d = st.dropped
    if d["forged"]:
        raise CodecError(f"{d['forged']} sealed packets arrived on {where} but none opened with {args.key}: the sender "
                         f"uses another key (or they were forged)")
    if d["version"]:
        need = ("plain packets, but this receiver has --key" if args.key
                else "sealed packets: pass the sender's --key FILE")
        raise CodecError(f"{d['version']} packets arrived on {where} that this receiver does not read ({need})")
    if d["context"]:
        raise CodecError(f"{d['context']} context-coded packets arrived on {where}, and this receiver has no context "
                         f"model for model {model_id}: install the sender's beside the weights, or send with "
                         f"--fixed-rate")
    if d["corrupt"]:
        raise CodecError(f"{d['corrupt']} packets arrived on {where} but none passed the CRC check: a damaged link, "
                         f"or a sender using other weights or another context model (this receiver runs model "
                         f"{model_id})")
    if args.source and d["foreign"]:
        raise CodecError(f"{d['foreign']} datagrams arrived on {where}, none from {args.source} (--from)")
    raise CodecError(f"no packets received on {where} within {args.timeout:g} s")


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
    key = _key(args)
    encoder, engine = _encoder(args), _engine(args)
    wav = audio.load(args.input)
    sink = _sink(args.output, args.force)
    try:
        decoded, result = run_simulation(wav, encoder, FrameDecoder(engine.codec), model, args.frames_per_packet,
                                         args.buffer_ms, paced=args.realtime, sink=sink, adaptive=args.adaptive,
                                         key=key, context=_context(args))
    except BaseException:
        sink.abort()
        raise
    sink.close()
    clean = decompress(compress(wav, args.bitrate, engine, hybrid=args.hybrid), engine)  # the loss-free file path
    q_clean, q_net = quality(wav, clean), quality(wav, decoded)
    st = result.stats
    if args.json:
        print(json.dumps({"stats": st.as_dict(), "link": result.link.__dict__, "sender": result.sender.__dict__,
                          "network": _describe(model), "quality_loss_free": q_clean, "quality": q_net}, indent=2))
    if not args.quiet:
        lines = [f"network     {_describe(model)}", result.sender.line(), result.link.line(), *st.lines(),
                 f"quality     loss-free: {_fmt(q_clean)}",
                 f"            this run:  {_fmt(q_net)}   (against {args.input}"
                 + ("; the buffer's stretches cut out and its skips filled with silence first)" if args.adaptive else ")")]
        print("\n".join(lines), file=sys.stderr)
    return 0


# ---- keygen -----------------------------------------------------------------------------------------
def cmd_keygen(args) -> int:
    from .crypto import write_key

    write_key(args.file)
    if not args.quiet:
        print(f"wrote a new key to {args.file} (mode 0600). Both ends need it: copy it to the receiver over a "
              f"channel you trust (scp), then\n  audiocodec receive --listen :5004 out.wav --key {args.file}\n"
              f"  audiocodec send talk.wav --to HOST:5004 --key {args.file}", file=sys.stderr)
    return 0


def _describe(m) -> str:
    loss = f"{100 * m.loss:g}% {'bursty (Gilbert-Elliott, mean burst ' + format(m.burst_len, 'g') + ')' if m.burst else 'random'} loss"
    return (f"{loss}, delay {m.delay_ms:g} +- {m.jitter_ms:g} ms, reorder {100 * m.reorder:g}%, "
            f"duplicate {100 * m.duplicate:g}%, corrupt {100 * m.corrupt:g}%, seed {m.seed}")


# ---- argparse ---------------------------------------------------------------------------------------

def add_commands(sub) -> None:
    p = sub.add_parser("send", help="stream audio as UDP packets", formatter_class=FMT, epilog=SEND_EPILOG,
                       description="Encode audio frame by frame and send it over UDP in real time.")
    p.add_argument("input", help="audio file, or - for stdin")
    p.add_argument("--to", required=True, metavar="HOST:PORT", help="where the receiver listens")
    p.add_argument("--raw", action="store_true", help="input is raw signed 16-bit mono 16 kHz PCM, streamed as it "
                                                      "comes (a live microphone: arecord -t raw ... | send - --raw)")
    _stream_options(p)
    p.add_argument("--fast", action="store_true", help="send as fast as possible instead of in real time (tests)")
    p.add_argument("--session", metavar="HEX", help="session id (default: random; not with --key)")
    _key_option(p, "seal every packet with the key in FILE (audiocodec keygen FILE); the receiver needs it too")
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
    _key_option(p, "accept only packets sealed with the key in FILE (the sender's --key FILE)")
    p.add_argument("--from", dest="source", metavar="HOST[:PORT]", help="accept datagrams only from this sender "
                                                                       "(without a key: no stranger picks the stream)")
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
    _key_option(p, "seal the stream with the key in FILE (audiocodec keygen FILE)")
    p.add_argument("--json", action="store_true", help="statistics and quality as JSON on stdout")
    add_output_options(p)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("keygen", help="make a key file for sealed packets (send/receive --key)", formatter_class=FMT,
                       epilog=KEYGEN_EPILOG, description="Write 32 random bytes to a new key file (mode 0600).")
    p.add_argument("file", help="the key file to create (never overwritten)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=cmd_keygen)


def _key_option(p, text: str) -> None:
    p.add_argument("--key", metavar="FILE", help=text)


def _stream_options(p) -> None:
    p.add_argument("-b", "--bitrate", type=float, default=6.0, help=f"{modes.choices(last=' or ')} kbps (default 6)")
    p.add_argument("--hybrid", action="store_true", help=f"{modes.choices(True, ' or ')} kbps as {modes.hybrid_text()} as a waveform "
                                                          "(as compress --hybrid; 20 ms more latency)")
    p.add_argument("-F", "--frames-per-packet", type=int, default=1, help=f"1..{MAX_FRAMES} frames of 20 ms per "
                                                                           "packet (default 1)")
    p.add_argument("--fixed-rate", action="store_true", help="send every code in 10 bits, even where the model's "
                                                            "context model is installed (default: each packet "
                                                            "context-coded when that is smaller; the receiver needs "
                                                            "the same context model)")

"""Packet sizes with and without context coding, and that context coding costs nothing under loss.

    python scripts/bench_packets.py [--context PATH] [--clips 4] [--frames 1,2,5,10] [--loss 10 --loss-clips 2]

Sizes: test clips through the streaming encoder (``FrameEncoder``, as ``send`` runs it) at every bitrate (and
the hybrid ones), cut into packets of 1, 2, 5 and 10 frames and built fixed-rate and with the context model
(``packets.build_audio``: each packet the smaller of the two). Packets carry a mode's fixed-rate rows
(``Mode.in_packets``: three at 1.5 kbps); the four that 1.5 kbps files send are measured too. Per cell: the
payload's bits per frame (codes and, hybrid, the low band; no headers) and the wire rate in kbps with the
24-byte header and IPv4/UDP's 28 bytes; and the share of packets context-coded. ``model bits``: the context
model's cross-entropy of the codes with the context restarting every packet, what the payload would be
without whole 32-bit words.

Loss (``--loss PCT``): a ``run_simulation`` per clip at ``--loss-bitrate`` fixed-rate and context-coded under
the same seeded random loss; PESQ-WB and STOI of both (equal: the codes, and so the audio, are the same).
Prints markdown tables; ``--json FILE`` also writes the numbers.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from audiocodec.bitstream.context import ContextModel
from audiocodec.constants import SAMPLE_RATE
from audiocodec.evaluation.corpus import DEFAULT_ROOT, spread_clips
from audiocodec.stream.decoder import FrameDecoder
from audiocodec.stream.encoder import FrameEncoder
from audiocodec.stream.engine import load_engine, model_tag
from audiocodec.stream.frames import codes_of
from audiocodec.stream.modes import modes
from audiocodec.stream.quality import quality
from audiocodec.transport import packets
from audiocodec.transport.link import NetworkModel
from audiocodec.transport.simulate import run_simulation

FRAME_S = 0.02


def stream_frames(codec, mode, wav: np.ndarray) -> tuple[list, object]:
    """The frames ``send`` would send for ``wav`` in ``mode``, and the encoder's low-band layer (or None)."""
    enc = FrameEncoder(codec, mode)
    with torch.no_grad():
        frames = enc.push(wav) + enc.flush()
    return frames, enc.low_band


def packet_sizes(frames: list, layer, fpp: int, context: ContextModel | None, tag: int) -> dict:
    """Totals over one clip's packets of ``fpp`` frames: payload and wire bytes, packets, context-coded ones,
    and the model's cross-entropy of the codes in bits (context restarting at every packet)."""
    t = dict(payload=0, wire=0, packets=0, context=0, model_bits=0.0)
    for k in range(0, len(frames), fpp):
        chunk = frames[k:k + fpp]
        data = packets.build_audio(k, k * 320, 1, chunk, 0, tag, layer, context=context)
        _, kind, *_, length, _ = packets.HEADER.unpack_from(data)
        t["payload"] += length
        t["wire"] += len(data) + packets.UDP_IP_OVERHEAD
        t["packets"] += 1
        t["context"] += kind in packets.CONTEXT_KINDS
        if context is not None and len(chunk[0].codes) > 1:
            t["model_bits"] += float(context.bits(codes_of(chunk)).sum()) * len(chunk)
    return t


def size_table(codec, clips, context: ContextModel, fpps: list[int], tag: int) -> list[dict]:
    rows = []
    sent = [m.in_packets for m in modes(False) + modes(True)]  # what send sends
    files = [m for m in modes(False) if m.fixed_rows]  # and the rows files send where they differ, for comparison
    for mode in sent + files:
        per_clip = [stream_frames(codec, mode, wav) for _, wav in clips]
        n = sum(len(f) for f, _ in per_clip)
        for fpp in fpps:
            row = dict(kbps=mode.kbps, hybrid=mode.hybrid, rows=mode.rows, fpp=fpp, frames=n, as_in_files=mode in files)
            for name, ctx in (("fixed", None), ("context", context)):
                tot = {k: sum(packet_sizes(f, lb, fpp, ctx, tag)[k] for f, lb in per_clip)
                       for k in ("payload", "wire", "packets", "context", "model_bits")}
                row[name] = dict(bits_per_frame=8 * tot["payload"] / n, wire_kbps=8 * tot["wire"] / (n * FRAME_S) / 1000,
                                 context_share=tot["context"] / tot["packets"], model_bits=tot["model_bits"] / n)
            rows.append(row)
    return rows


def loss_runs(codec, clips, context: ContextModel, kbps: float, loss: float, fpp: int) -> list[dict]:
    mode = next(m for m in modes(False) if m.kbps == kbps)
    out = []
    for i, (path, wav) in enumerate(clips):
        res = {"clip": path}
        for name, ctx in (("fixed", None), ("context", context)):
            y, r = run_simulation(wav, FrameEncoder(codec, mode), FrameDecoder(codec), NetworkModel(loss=loss, seed=i),
                                  fpp, timeout=1.0, context=ctx)
            q = quality(wav, y)
            res[name] = dict(pesq_wb=q["pesq_wb"], stoi=q["stoi"], lost=r.stats.lost, audio=y,
                             context_packets=f"{r.stats.context_packets}/{r.stats.packets_received}",
                             bits_per_frame=r.stats.payload_bits_per_frame, wire_kbps=r.stats.wire_kbps(True))
        res["identical"] = bool(np.array_equal(res["fixed"].pop("audio"), res["context"].pop("audio")))
        out.append(res)
    return out


def sizes(engine, clips, context: ContextModel, fpps: list[int]) -> list[dict]:
    """The size table, printed as markdown."""
    rows = size_table(engine.codec, clips, context, fpps, model_tag(engine.codec.model_id))
    seconds = sum(len(w) for _, w in clips) / SAMPLE_RATE
    print(f"{len(clips)} test clips ({seconds:.1f} s), model {engine.codec.model_id}, context model {context.id.hex()}; "
          f"per cell: payload bits per frame, wire kbps with IPv4/UDP; fixed-rate -> context-coded "
          f"(share of packets context-coded; model bits per frame)\n")
    print("| mode | frames/packet | fixed: bits/frame · wire kbps | context: bits/frame · wire kbps | saved | "
          "context-coded | model bits/frame |")
    print("|---|---:|---|---|---:|---:|---:|")
    for r in rows:
        f, c = r["fixed"], r["context"]
        files = ", as files send it" if r["as_in_files"] else ""
        name = f"{r['kbps']:g} kbps{' hybrid' if r['hybrid'] else ''} ({r['rows']} rows{files})"
        print(f"| {name} | {r['fpp']} | {f['bits_per_frame']:.0f} · {f['wire_kbps']:.2f} | {c['bits_per_frame']:.0f} · "
              f"{c['wire_kbps']:.2f} | {100 * (1 - c['wire_kbps'] / f['wire_kbps']):.1f}% | "
              f"{100 * c['context_share']:.0f}% | {c['model_bits']:.0f} |")
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--context", help="context model file (default: the one installed beside the weights)")
    p.add_argument("--model", help="weights file (default: the shipped model)")
    p.add_argument("--clips", type=int, default=4, help="test clips for the sizes (default 4; 0: no size table)")
    p.add_argument("--frames", default="1,2,5,10", help="frames per packet (default 1,2,5,10)")
    p.add_argument("--loss", type=float, help="also run fixed-rate and context-coded streams at this loss (%%)")
    p.add_argument("--loss-clips", type=int, default=2, help="clips for --loss (default 2)")
    p.add_argument("--loss-bitrate", type=float, default=6.0, help="kbps for --loss (default 6)")
    p.add_argument("--loss-frames", type=int, default=1, help="frames per packet for --loss (default 1)")
    p.add_argument("--data", default=DEFAULT_ROOT, help="speech corpus root (default: AUDIOCODEC_DATA or the shared one)")
    p.add_argument("--json", help="write the numbers to this file")
    a = p.parse_args()
    torch.set_num_threads(1)
    engine = load_engine(a.model)
    context = ContextModel.load(a.context) if a.context else engine.context
    if context is None:
        raise SystemExit("no context model installed for this model: pass --context PATH")
    started = time.time()
    clips = spread_clips(a.data, max(a.clips, a.loss_clips if a.loss is not None else 0))
    rows = sizes(engine, clips[:a.clips], context, [int(x) for x in a.frames.split(",")]) if a.clips else []
    result = {"clips": [c[0] for c in clips[:a.clips]], "context_id": context.id.hex(), "sizes": rows}
    if a.loss is not None:
        runs = loss_runs(engine.codec, clips[:a.loss_clips], context, a.loss_bitrate, a.loss / 100, a.loss_frames)
        print(f"\n{a.loss:g}% random loss, {a.loss_bitrate:g} kbps, {a.loss_frames} frame(s) per packet:\n")
        print("| clip | lost packets | fixed: PESQ-WB / STOI · wire kbps | context: PESQ-WB / STOI · wire kbps | "
              "context-coded | same audio |")
        print("|---|---:|---|---|---:|---|")
        for r in runs:
            f, c = r["fixed"], r["context"]
            print(f"| {r['clip'].split('/')[-1]} | {f['lost']} / {c['lost']} | {f['pesq_wb']:.3f} / {f['stoi']:.3f} · "
                  f"{f['wire_kbps']:.2f} | {c['pesq_wb']:.3f} / {c['stoi']:.3f} · {c['wire_kbps']:.2f} | "
                  f"{c['context_packets']} | {'yes' if r['identical'] else 'NO'} |")
        result["loss"] = runs
    print(f"\n({time.time() - started:.0f} s)")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()

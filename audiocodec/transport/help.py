"""The examples and explanations under `send`, `receive`, `simulate` and `keygen --help`."""

SEND_EPILOG = """examples:
  audiocodec receive --listen :5004 call.wav &            # on the other machine (or another terminal)
  audiocodec send talk.wav --to 192.168.1.20:5004 --bitrate 6
  audiocodec send talk.wav --to 127.0.0.1:5004 --frames-per-packet 3   # 60 ms packets: less header overhead
  arecord -q -f S16_LE -r 16000 -c 1 -t raw | audiocodec send - --raw --to 192.168.1.20:5004   # live; Ctrl-C ends
  audiocodec keygen call.key                               # once; copy call.key to the receiver (scp)
  audiocodec send talk.wav --to 192.168.1.20:5004 --key call.key   # sealed: only key holders hear or inject
  audiocodec send talk.wav --to 192.168.1.20:5004 --fixed-rate     # for a receiver without the context model

Frames of 20 ms are encoded as they "arrive" (paced like a live microphone) and sent as UDP packets: a
24-byte header (sequence number, timestamp, session id, codebook count, CRC-32; docs/packets.md) plus
ceil(frames x codebooks x 10 / 8) bytes of codes. At 6 kbps, one frame per packet is 39 bytes every 20 ms
(15.6 kbps, 26.8 with IP/UDP); three frames per packet, 69 bytes every 60 ms (9.2 kbps, 12.9).
Where the model's context model is installed (beside the weights), each packet's codes are range-coded
with it instead when that is smaller, the context starting afresh in every packet (so a lost packet
costs only its own frames); the receiver needs the same context model, or the sender --fixed-rate.
The stream ends with an end-of-stream packet (sent 5 times) carrying the exact sample count.
With --key FILE every packet is sealed (ChaCha20-Poly1305; version 3, 12 bytes more per packet): the
receiver, given the same FILE, drops anything forged, replayed or of another session. Without a key
anyone who can send UDP to the receiver can inject audio, and anyone on the path can listen.
Codec latency: 50 ms (20 ms frame + 30 ms decoder overlap; 70 ms in a stream that sends the pitch, whose
tracker hears 20 ms ahead), plus packetisation, network and jitter buffer.
"""

RECEIVE_EPILOG = """examples:
  audiocodec receive --listen :5004 call.wav
  audiocodec receive --listen 127.0.0.1:5004 - | aplay -f S16_LE -r 16000 -c 1   # play live
  audiocodec receive --listen :5004 call.wav --buffer-ms 120 --timeout 30 --json
  audiocodec receive --listen :5004 call.wav --key call.key      # only packets sealed with call.key
  audiocodec receive --listen :5004 call.wav --from 192.168.1.10  # without a key: only from that host

Packets wait in a jitter buffer until their turn (--buffer-ms after the first packet said they would be
due); reordered packets are put back in order, a packet after its turn is counted late and dropped, and a
missing frame is concealed (the decoder is fed a stand-in latent that fades to silence), so the output
always has the stream's exact duration. Packets of another session (the first one heard wins, or
--session), corrupted (CRC-32), malformed, oversized or duplicated ones are counted and dropped.
Without a key the first packet heard picks the stream, so a stranger who sends first is heard instead;
--from HOST[:PORT] takes datagrams from that sender only (a forger on the path can still spoof it).
With --key FILE (audiocodec keygen, the sender's FILE) only sealed packets that open are taken; forged,
replayed and foreign ones are counted and dropped before they are decoded.
Context-coded packets are decoded with the context model installed beside the weights; without one they
are counted 'context' and dropped (the sender can send --fixed-rate), and with another one they fail the
CRC (or the seal) like damaged packets.
Ends after the end-of-stream packet, after --timeout seconds without a packet, or on Ctrl-C (keeping
what arrived); then prints packets
received/lost/late/duplicated, wire kbps (with headers), payload bits per frame and how many packets were
context-coded, RFC 3550 jitter, network and end-to-end delay.
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
  audiocodec simulate talk.wav out.wav --loss 0.05 --key call.key   # sealed packets end to end
  audiocodec simulate talk.wav out.wav -F 3 --fixed-rate             # no context coding: compare the rates

Runs a sender, a lossy relay and a receiver on 127.0.0.1 UDP sockets in one process, then prints the
statistics and PESQ-WB / STOI against the input, next to the loss-free result (the same mode's file path).
Packets are context-coded where that is smaller, as send does (unless --fixed-rate): the same codes, so
the same audio, in fewer bytes.
The relay loses packets at random (or in Gilbert-Elliott bursts with --burst), delays each by
--delay-ms +- --jitter-ms (uniform, so packets overtake each other), holds --reorder of them back a further
20-40 ms, and can duplicate or corrupt some; everything is seeded (--seed). By default the run is not paced:
it uses the stream's own clock, so a 10 s clip takes about a second and gives the same late/lost counts as
--realtime would on an idle machine.
"""

KEYGEN_EPILOG = """examples:
  audiocodec keygen call.key
  scp call.key other-host:                                   # the receiver needs the same file
  audiocodec receive --listen :5004 out.wav --key call.key   # on other-host
  audiocodec send talk.wav --to other-host:5004 --key call.key

With a key, packets are encrypted and authenticated (ChaCha20-Poly1305, docs/packets.md): a receiver
takes only packets sealed with its key, so nobody without the file can listen in, inject audio, end the
stream early or replay old packets. Anyone on the path can still drop or delay packets and see their sizes
and timing. Every send picks a fresh session; keep a key for under about a thousand sends (or make one
per call): two sessions under one key collide with probability about n^2 / 2^33.
"""

"""The signal every part of audiocodec agrees on: 16 kHz mono, 20 ms frames, 10-bit codes. No imports."""
SAMPLE_RATE = 16000              # Hz, mono
FRAME = 320                      # samples per codec frame (20 ms)
FRAME_RATE = SAMPLE_RATE // FRAME  # 50 frames per second
CODE_BITS = 10                   # bits per code (1024-entry codebooks): a row of codes is 0.5 kbps

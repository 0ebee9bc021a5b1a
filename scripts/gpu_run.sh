#!/bin/bash
# One prepared, time-boxed training run for a lent GPU (the device tool's `run`), from a data pack:
#
#   python scripts/pack_data.py --minutes 32 --out .pack/train.npz     # here: 47 MiB (the machine takes 64 with the tree)
#   bash scripts/gpu_run.sh SECONDS [train.py options]                 # there, e.g. with carry [".pack", ".whl"]
#
# It times 40 steps first, then runs as many steps as fit in SECONDS (a full cosine schedule), keeping four
# checkpoints, and writes each one's weights (the moving average, int8 safetensors without the sender's pitch
# tracker, ~8.7 MB) and the log to $OUT (default /tmp/gpu_out). Python packages missing there (soundfile, soxr,
# constriction) travel as wheels in .whl (/work/.library/device/README.md says how to fetch them).
# Back here, add the tracker and the entropy model before benchmarking: Codec.load(w).with_pitch_tracker(...).
# Session 24's run (its recipe options, since removed, are in commit 6d5f818):
#   bash scripts/gpu_run.sh 330 --batch 64 --threads 8 --lr 2e-4 --warmup 200 --freeze-codes true ...
set -o pipefail
SECS=${1:?usage: gpu_run.sh SECONDS [train.py options]}; shift
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
if [ -d .whl ] && ! python3 -c "import soundfile, soxr, constriction" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONUNBUFFERED=1
nvidia-smi -L 2>/dev/null
COMMON="--pack .pack/train.npz --init audiocodec/weights/default.safetensors --init-step 1 --sent-pitch pack --pitch-input true
        --teacher-until 0 --reseed-every 0 --commit-weight 1.0 --eval-every 0 --save-every 1000000 $*"
rm -rf /tmp/probe /tmp/gpu
python3 scripts/train.py --out /tmp/probe $COMMON --steps 40 --warmup 10 --log-every 20 2>&1 | grep -v "^model:" | tail -3
SPS=$(python3 -c "import json; print([json.loads(l) for l in open('/tmp/probe/log.jsonl')][-1]['sec_per_step'])") || exit 1
STEPS=$(python3 -c "print(max(4, int($SECS / $SPS) // 100 * 100))")
echo "probe: $SPS s/step -> $STEPS steps"
python3 scripts/train.py --out /tmp/gpu $COMMON --steps "$STEPS" --keep-every $((STEPS / 4)) --weight-ema 0.998 --log-every 100 \
  2>&1 | grep -v "^model:" | tee "$OUT/train.log" || exit 1
python3 - "$OUT" <<'PY'
import glob, os, re, sys
import torch
from audiocodec.model import Codec
for path in sorted(glob.glob("/tmp/gpu/step*.pt"), key=lambda p: int(re.findall(r"\d+", os.path.basename(p))[0])):
    ck = torch.load(path, map_location="cpu", weights_only=False)
    out = os.path.join(sys.argv[1], os.path.basename(path)[:-3] + ".safetensors")
    Codec.from_checkpoint(ck).save(out, {"steps": ck["step"], "weights": "moving average"})
    print("wrote", out, os.path.getsize(out))
PY

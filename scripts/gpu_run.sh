#!/bin/bash
# One prepared, time-boxed training run for a lent GPU machine (the device tool's `run`), from a data pack:
#
#   bash scripts/gpu_prepare.sh                                   # here: .pack/train.npz (whole split) and .whl
#   bash scripts/gpu_run.sh SECONDS [train.py options]            # there, carrying .pack and .whl
#   python -m audiocodec.train.pitch_tracks .pack/train.npz --load tracks.npz   # back here: the run's pitch tracks
#   python scripts/train.py --out runs/next --resume STATE        # then carry on (here or there again)
#   python scripts/export.py STATE --pitch runs/pitch_s/ckpt.pt   # or ship it
#
# First it adds the pack's pitch tracks (audiocodec/train/pitch_tracks.py: Harvest's targets on every core,
# the packed tracker's sent pitch on the GPU; TARGETS=tracker takes the tracker's pitch as targets too, a
# change of recipe), unless the pack has them. Then it trains for what is left of about SECONDS (train.py
# --time-budget times 20 steps, then fits the cosine schedule into what is left), on every GPU there is
# (torch.distributed.run, DistributedDataParallel; bf16 autocast), from the shipped weights with RECIPE: adversarial
# (the default: the decoder alone, codes frozen, against the multi-period and multi-scale STFT discriminators with
# the loss balancer) or lineage (the shipped model's last recipe). Options given here override it; --resume DIR
# carries on from a returned state instead.
# It writes to $OUT (default /tmp/gpu_out): tracks.npz (the pitch tracks, to add to the pack here), state/
# (the run's checkpoint as state-NN.safetensors shards of at most 15 MiB: generator, weight average,
# discriminators, optimizers, codebook EMAs, step and settings; audiocodec/train/state.py) and train.log: at
# most 8 files. Python packages missing there (soundfile, cffi, soxr, constriction, pyworld) travel as wheels
# in .whl (gpu_prepare.sh fetches them). Environment: OUT, PACK (.pack/train.npz), RUN (the run folder there,
# /tmp/gpu_run), TARGETS (harvest), RECIPE (adversarial).
set -o pipefail
SECS=${1:?usage: gpu_run.sh SECONDS [train.py options]}; shift
OUT=${OUT:-/tmp/gpu_out}; PACK=${PACK:-.pack/train.npz}; RUN=${RUN:-/tmp/gpu_run}; TARGETS=${TARGETS:-harvest}
case ${RECIPE:=adversarial} in  # what the run trains, from the shipped weights (docs/training.md, "On a lent GPU")
  adversarial) RECIPE_ARGS=(--batch 128 --freeze-codes true --adv-start 1 --adv-ramp 300 --disc-width 16) ;;
  lineage) RECIPE_ARGS=(--batch 64) ;;  # the shipped lineage's last recipe, encoder and codebooks training too
  *) echo "error: RECIPE is adversarial or lineage, not $RECIPE" >&2; exit 2 ;;
esac
mkdir -p "$OUT"
NEED="soundfile, soxr, constriction"; [ "$TARGETS" = harvest ] && NEED="$NEED, pyworld"
if [ -d .whl ] && ! python3 -c "import $NEED" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}   # the package from this tree, installed or not
GPUS=$(nvidia-smi -L 2>/dev/null | grep -c "^GPU")
LAUNCH=(python3) DEVICE=cpu
if [ "$GPUS" -gt 0 ]; then DEVICE=cuda; nvidia-smi -L; fi
if [ "$GPUS" -gt 1 ]; then LAUNCH=(python3 -m torch.distributed.run --standalone --nproc-per-node "$GPUS"); fi
rm -rf "$RUN"
TQDM_DISABLE=1 python3 -m audiocodec.train.pitch_tracks "$PACK" --device "$DEVICE" --targets "$TARGETS" \
  --save "$OUT/tracks.npz" 2>&1 | tee "$OUT/train.log" || exit 1
echo "pitch tracks: ${SECONDS} s" | tee -a "$OUT/train.log"
"${LAUNCH[@]}" scripts/train.py --out "$RUN" --pack "$PACK" --device "$DEVICE" --time-budget $((SECS - SECONDS - 20)) \
  "${RECIPE_ARGS[@]}" --threads 8 --init audiocodec/weights/default.safetensors --init-step 1 --lr 1e-4 --warmup 100 \
  --teacher-until 0 --reseed-every 0 --nq-weights 4,1,3,2 --commit-weight 1.0 --weight-ema 0.998 \
  --sent-pitch pack --pitch-input true --eval-every 0 --save-every 500 --log-every 100 "$@" 2>&1 \
  | grep -v "^model:" | tee -a "$OUT/train.log" || exit 1
python3 -m audiocodec.train.state "$RUN/ckpt.pt" "$OUT/state" | tee -a "$OUT/train.log"

#!/bin/bash
# Everything a lent GPU machine's first call needs, made here (scripts/gpu_run.sh says what happens there):
# .pack/train.npz, the whole train split as Opus with the validation clips and the shipped sender tracker (about
# 4 minutes on 2 cores; kept if there), and .whl, the wheels of the packages that machine lacks (its Python 3.12).
# Both are ignored by git: name them in the run's `carry`.
set -e
PACK=${PACK:-.pack/train.npz}
[ -f "$PACK" ] || OMP_NUM_THREADS=1 python scripts/pack_data.py --out "$PACK"
mkdir -p .whl
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
  soundfile==0.14.0 cffi==2.1.1 soxr==1.1.0 constriction==0.5.0 pyworld-prebuilt==0.3.6.post1
du -ch "$PACK" .whl | tail -1

# One command each, on a fresh machine:  make demo   |   make test
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
SAMPLE  ?= samples/speech_female.wav
BITRATE ?= 6
OUT     ?= /tmp/audiocodec-demo

.PHONY: setup tools demo test benchmark figures train clean

$(BIN)/audiocodec: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0        # the CPU build (a plain "torch" pulls a multi-GB CUDA build)
	$(BIN)/pip install -q -e '.[test,onnx]'   # onnx: the optional ONNX Runtime backend, tested too
	touch $@

setup: $(BIN)/audiocodec

# Optional reference codecs and the browser for the report test (Debian; skipped where not root)
tools:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (command -v opusenc >/dev/null && command -v c2enc >/dev/null && command -v chromium >/dev/null) || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq opus-tools codec2 chromium >/dev/null) || \
	  echo "note: could not install opus-tools/codec2/chromium; tests that need them will skip"; \
	else echo "note: not root: install opus-tools, codec2 and chromium yourself to enable those comparisons"; fi

demo: setup
	@mkdir -p $(OUT)
	$(BIN)/audiocodec compress $(SAMPLE) $(OUT)/sample.acdc --bitrate $(BITRATE) -f
	$(BIN)/audiocodec info $(OUT)/sample.acdc
	$(BIN)/audiocodec decompress $(OUT)/sample.acdc $(OUT)/sample.wav -f --reference $(SAMPLE)
	$(BIN)/audiocodec compress $(SAMPLE) $(OUT)/hybrid.acdc --bitrate 6 --hybrid -f
	$(BIN)/audiocodec decompress $(OUT)/hybrid.acdc $(OUT)/hybrid.wav -f --reference $(SAMPLE)
	@echo "listen: $(OUT)/sample.wav and $(OUT)/hybrid.wav (original: $(SAMPLE))"

test: setup tools
	$(BIN)/python -m pytest -q -rs

benchmark: setup tools
	$(BIN)/python scripts/benchmark.py --out reports/benchmark

figures: setup
	$(BIN)/python scripts/make_figures.py

train: setup
	$(BIN)/pip install -q -e '.[train]'
	$(BIN)/python scripts/train.py --out runs/main

clean:
	rm -rf $(VENV) reports .pytest_cache

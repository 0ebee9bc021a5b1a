"""Optional backend: the decoder backbone on ONNX Runtime (``pip install audiocodec[onnx]``).

Why only the backbone: on one thread it is where ONNX Runtime pays. Its 14 ConvNeXt blocks are matrix
products of 500 x 256 by 256 x 768 per 10 s, which torch sends to MKL; on an AMD EPYC (Zen 5, AVX-512) MKL
took 1.9 ms for one where ONNX Runtime's MLAS (and oneDNN) take 0.9, and the backbone as a whole ran in
3.1 ms per second of audio instead of 6.6. The SEANet encoder (small convolutions at 16 kHz) ran 7 %
slower on it, so the encoder, the quantizer, the iSTFT head and the pitch tracker stay on torch, and the
codes (the .acdc bytes) stay the same. The decoded audio differs from torch's by float rounding, which the
harmonic source's running phase carries along: on 20 clips of the test split at 6 kbps, at most 1.4e-3
(full scale 1), and PESQ-WB 2.4189 on average with either backend (at most 0.001 apart on a clip). Setting
it up (export, 0.2 s, and ONNX Runtime's graph optimisation, 0.6 s) costs 0.8 s of CPU once per model.

The backbone is exported with its causal convolutions' past inputs as explicit tensors, in and out
(``BackboneStep``), so one graph serves whole signals (zero past) and streams (the past of the call before,
kept in the ``Decoder``'s own ``stream``) exactly as the torch layers do.
"""
from __future__ import annotations

import io
import warnings

import numpy as np
import torch
from torch import nn

from .layers import CausalConv1d, stream_copy


class BackboneStep(nn.Module):
    """A decoder's ``backbone`` with the past inputs of its causal convolutions in and out:
    (z (B, latent_dim, T), past_i (B, C_i, left_pad_i) ...) -> (features (B, T, dim), next past_i ...)."""

    def __init__(self, decoder: nn.Module):
        super().__init__()
        self.decoder = stream_copy(decoder)  # a private copy: setting its layers' past leaves the model alone
        self.convs = [m for m in self.decoder.modules() if isinstance(m, CausalConv1d)]

    def pasts(self, batch: int) -> list[np.ndarray]:
        """The zero past of a signal's start, one (batch, C_i, left_pad_i) array per convolution."""
        return [np.zeros((batch, c.in_channels, c.left_pad), dtype=np.float32) for c in self.convs]

    def forward(self, z: torch.Tensor, *pasts: torch.Tensor) -> tuple[torch.Tensor, ...]:
        for conv, past in zip(self.convs, pasts):
            conv.stream = {"past": past}
        feats = self.decoder.backbone(z)
        return (feats, *[conv.stream["past"] for conv in self.convs])


class OnnxDecoder:
    """Runs a ``Decoder``'s backbone on ONNX Runtime: ``runner(z, stream) -> features`` as ``Decoder.forward``
    (``stream`` None for a whole signal, else the decoder's stream dict, whose past it reads and updates).
    One runner serves any number of streams and threads (the state is in the streams)."""

    def __init__(self, decoder: nn.Module, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ImportError("the onnx backend needs onnxruntime and onnx: pip install 'audiocodec[onnx]'") from None

        self.step = BackboneStep(decoder)
        n = len(self.step.convs)
        self.inputs = ["z"] + [f"past{i}" for i in range(n)]
        self.outputs = ["features"] + [f"next{i}" for i in range(n)]
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy waits on a busy host
        self.session = ort.InferenceSession(self._export(), options, providers=["CPUExecutionProvider"])

    def _export(self) -> bytes:
        """The backbone step as ONNX bytes, dynamic in batch and length (about 23 MB: float32 weights)."""
        z = torch.zeros(1, self.step.decoder.embed.in_channels, 4)
        pasts = [torch.from_numpy(p) for p in self.step.pasts(1)]
        axes = {"z": {0: "batch", 2: "frames"}, "features": {0: "batch", 1: "frames"}}
        axes.update({name: {0: "batch"} for name in self.inputs[1:] + self.outputs[1:]})
        f = io.BytesIO()
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript-based exporter announces its deprecation
            torch.onnx.export(self.step, (z, *pasts), f, input_names=self.inputs, output_names=self.outputs,
                              dynamic_axes=axes, opset_version=17, dynamo=False)
        return f.getvalue()

    def __call__(self, z: torch.Tensor, stream: dict | None) -> torch.Tensor:
        """z (B, latent_dim, T) -> features (B, T, dim)."""
        pasts = self.step.pasts(z.shape[0]) if not stream else stream["pasts"]
        out = self.session.run(self.outputs, dict(zip(self.inputs, [np.ascontiguousarray(z.detach().numpy()), *pasts])))
        if stream is not None:
            stream["pasts"] = out[1:]
        return torch.from_numpy(out[0])


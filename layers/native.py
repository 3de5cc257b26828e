"""Native torch equivalents of the seed layers, written to be TorchScript-able,
``torch.compile``-able and ONNX-exportable (plain tensor ops, type-annotated)."""

import torch
import torch.nn.functional as F

__all__ = ["torch_conv2d", "torch_fft"]


def torch_fft(x: torch.Tensor) -> torch.Tensor:
    """``|rfft2(x)|``: what ``BadFFTFunction`` computes, differentiated by autograd."""
    return torch.fft.rfft2(x).abs()


def torch_conv2d(x: torch.Tensor, filter: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """'valid' 2-D cross-correlation plus a (1, 1) bias: what ``ScipyConv2dFunction``
    computes. ``conv2d`` in deep-learning libraries is a cross-correlation."""
    out = F.conv2d(x.unsqueeze(0).unsqueeze(0), filter.unsqueeze(0).unsqueeze(0))
    return out[0, 0] + bias

"""The built-in layers: the seed tutorial's two, declared through the public API.

``LAYERS`` is what the ``harness.layers`` entry point ``builtin`` names; a package of
your own exposes a list of ``harness.Layer`` the same way.
"""

from harness_layers.conv2d import LAYER as CONV2D
from harness_layers.fft import LAYER as FFT

__all__ = ["CONV2D", "FFT", "LAYERS"]

LAYERS = [FFT, CONV2D]

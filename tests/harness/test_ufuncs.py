"""NumPy/SciPy ufuncs made visible to the profile hook while a call is profiled."""

from __future__ import annotations

import math
import sys
import types

import numpy as np
import pytest
import scipy.special
import torch

from harness.profile_call import calibrate, profile_call
from harness.ufuncs import Visible, ufunc_label, ufunc_modules, visible_ufuncs


def test_every_ufunc_of_the_modules_is_replaced_and_put_back() -> None:
    user = types.ModuleType("user_layer")
    user.ive = scipy.special.ive  # type: ignore[attr-defined]  # from scipy.special import ive
    user.scale = 2.0  # type: ignore[attr-defined]
    exp, ive = np.exp, scipy.special.ive
    with visible_ufuncs(ufunc_modules([user])) as count:
        assert count > 100
        assert isinstance(np.exp, Visible) and np.exp.label == "numpy.exp"
        assert isinstance(user.ive, Visible) and user.ive.label == "scipy.special.ive"  # type: ignore[attr-defined]
        assert user.scale == 2.0  # type: ignore[attr-defined]
        # a stand-in computes what the ufunc does, and passes its methods through
        x = np.array([0.0, 1.0])
        assert np.array_equal(np.exp(x), exp(x))
        assert np.add.reduce(x) == 1.0 and np.add.nin == 2
        assert ufunc_label(exp) == "numpy.exp"
    assert np.exp is exp and scipy.special.ive is ive and user.ive is ive  # type: ignore[attr-defined]


def test_what_a_call_raises_leaves_every_ufunc_put_back() -> None:
    tanh = np.tanh
    with pytest.raises(ZeroDivisionError), visible_ufuncs(ufunc_modules()):
        assert isinstance(np.tanh, Visible)
        raise ZeroDivisionError
    assert np.tanh is tanh


class _Special(torch.autograd.Function):
    """An elementwise layer all ufuncs: tanh, and a SciPy special function imported
    by name into this module."""

    @staticmethod
    def forward(ctx, x):  # type: ignore[no-untyped-def, override]
        a = x.detach().numpy()
        return torch.from_numpy(np.tanh(a) + _IVE(0.5, a))

    @staticmethod
    def backward(ctx, grad):  # type: ignore[no-untyped-def, override]
        return grad


_IVE = scipy.special.ive


def test_a_layer_of_ufuncs_is_named_not_read_as_its_own_code() -> None:
    """2026-12-01: a public gammainc layer read 90% "TorchGammainc.forward" (the layer's
    own code) and named no SciPy call: sys.setprofile sees no ufunc called."""
    x = torch.rand(100_000, dtype=torch.float64)
    module = sys.modules[__name__]
    b = profile_call(lambda: _Special.apply(x), costs=calibrate()).breakdown
    parts = {(p.kind, p.part): p for p in b.parts}
    assert ("numpy", "scipy.special.ive") in parts and ("numpy", "numpy.tanh") in parts, b.parts
    body = parts.get(("code", "_Special.forward"))
    assert body is None or body.share < 0.3, b.parts
    assert math.fsum(p.share for p in b.parts) == pytest.approx(1.0)
    assert module._IVE is scipy.special.ive and not isinstance(np.tanh, Visible)
    # off (a compiled form's guards): the ufuncs stay unseen
    off = profile_call(lambda: _Special.apply(x), costs=calibrate(), ufuncs=False).breakdown
    assert ("numpy", "scipy.special.ive") not in {(p.kind, p.part) for p in off.parts}

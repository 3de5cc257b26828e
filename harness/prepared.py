"""One variant made ready in a worker process: its inputs, its built form, its calls.

``Worker.prepare`` builds it (``harness.forms.build``) once per variant and process;
the setup checks (``harness.checks``), the timed rounds and the profiled calls read
their time functions and calls from it, so every task times and checks the same call:
``forward`` under ``inference_mode`` (native) or ``no_grad``, ``backward`` through a
retained graph, ``step`` a forward and every gradient without ``retain_graph``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from harness.case import Variant
from harness.deviation import upstream_gradient
from harness.forms import Built
from harness.layer import Implementation, Layer
from harness.measure import backward_time_func, forward_time_func, served_call, step_time_func
from harness.outputs import Outputs, differentiable, graded, several

__all__ = ["Prepared"]


@dataclass
class Prepared:
    """One variant made ready in this process: its inputs and its built form."""

    variant: Variant
    layer: Layer
    impl: Implementation
    built: Built
    inputs: tuple[torch.Tensor, ...]
    grad_mask: tuple[bool, ...]
    seed: int
    _graph: tuple[Outputs, list[torch.Tensor]] | None = field(default=None, repr=False)
    _graph_inputs: tuple[torch.Tensor, ...] = field(default=(), repr=False)
    _grad_output: Outputs | None = field(default=None, repr=False)

    _leaves: tuple[torch.Tensor, ...] | None = field(default=None, repr=False)

    @property
    def inference(self) -> bool:
        """Native candidates and their forms are served under ``inference_mode``; the
        NumPy/SciPy code (and its compiled form) runs as it is, under ``no_grad``."""
        return self.impl.role == "native"

    @property
    def grad_mode(self) -> bool:
        """An ONNX Runtime session is served bare: a deployment never enters torch's
        grad modes around it."""
        return self.impl.form != "onnxruntime"

    def forward_time_func(self) -> Callable[[int], float]:
        return forward_time_func(
            self.built.fn,
            self.inputs,
            self.variant.device,
            inference=self.inference,
            grad_mode=self.grad_mode,
        )

    def forward(self) -> Outputs:
        """One inference call, as ``forward`` times it (deviation and peak memory); one
        that fails under ``inference_mode`` alone says so (``measure.served_call``)."""
        return served_call(self.built.fn, self.inputs, self.inference, self.grad_mode)

    def graph(self) -> tuple[Outputs, list[torch.Tensor]]:
        """Output (or outputs) with its autograd graph, and the leaves to differentiate
        (built once)."""
        if self._graph is None:
            leaves = [
                t.detach().clone().requires_grad_(m)
                for t, m in zip(self.inputs, self.grad_mask, strict=True)
            ]
            with torch.enable_grad():
                out = self.built.fn(*leaves)
            self._graph = (out, [t for t, m in zip(leaves, self.grad_mask, strict=True) if m])
            self._graph_inputs = tuple(leaves)
        return self._graph

    def graph_inputs(self) -> tuple[torch.Tensor, ...]:
        """Every input the retained graph was recorded on (``graph``), in call order,
        differentiable or not: what a backward reads its saved inputs from."""
        self.graph()
        return self._graph_inputs

    def leaves(self) -> tuple[torch.Tensor, ...]:
        """The step's inputs: copies of the inputs, differentiable ones requiring grad."""
        if self._leaves is None:
            self._leaves = tuple(
                t.detach().clone().requires_grad_(m)
                for t, m in zip(self.inputs, self.grad_mask, strict=True)
            )
        return self._leaves

    def grad_output(self) -> Outputs:
        """The seeded upstream gradient (one per output): the same values as the
        reference's, in every process."""
        if self._grad_output is None:
            out, _ = self.graph()
            self._grad_output = upstream_gradient(out, self.seed + 1)
        return self._grad_output

    def step_call(self) -> Any:
        """One training step, as ``step`` times it: a forward recording the graph,
        then every gradient without retain_graph (the graph is freed)."""
        with torch.enable_grad():
            out = self.built.fn(*self.leaves())
            wrt = [t for t, m in zip(self.leaves(), self.grad_mask, strict=True) if m]
            outs, grads = differentiable(out, self.grad_output())
            return torch.autograd.grad(outs, wrt, grads, allow_unused=True)

    def backward_time_func(self) -> Callable[[int], float]:
        out, wrt = self.graph()
        return backward_time_func(out, wrt, self.grad_output(), self.variant.device)

    def drop_graph(self) -> None:
        """Free the retained graph: a step builds its own graphs."""
        self._graph = None
        self._graph_inputs = ()

    def step_time_func(self) -> Callable[[int], float]:
        grad = self.grad_output()
        out, _ = self.graph()
        pick = None
        if several(out):  # the outputs with a graph, as the retained one has them
            pick = graded(out)
            _, grad = differentiable(out, grad)
        self._graph = None  # the step builds its own graphs: no retained one beside them
        self._graph_inputs = ()
        return step_time_func(
            self.built.fn, self.leaves(), self.grad_mask, grad, self.variant.device, pick=pick
        )

    def time_func(self, phase: str) -> Callable[[int], float]:
        if phase == "forward":
            return self.forward_time_func()
        if phase == "step":
            return self.step_time_func()
        return self.backward_time_func()

"""A small CNN training loop with the seed tutorial's two NumPy/SciPy layers inside.

Used by README's "Start from your training script" and by the scan's end-to-end test:

    python examples/scan/train.py                         # train (a few seconds on a CPU)
    python -m harness scan --out reports/scan-example examples/scan/train.py --iters 6

Images come in two sizes (32 x 32 and 48 x 48, alternating batches), so the scan sees
the SciPy layer at two shapes and proposes a size axis.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for layers.seed

from layers.seed import BadFFTFunction, ScipyConv2d


class Net(nn.Module):
    """Native conv -> the seed's SciPy conv and NumPy FFT magnitude per image -> linear."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)  # native
        self.scipy_conv = ScipyConv2d(3, 3)  # seed layer: scipy.signal.correlate2d
        self.fc = nn.Linear(8 * 8, classes)  # native

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv(x)).mean(1)  # [B, n-2, n-2]
        maps = []
        for image in h:
            y = self.scipy_conv(image)  # [n-4, n-4]
            maps.append(BadFFTFunction.apply(y))  # seed layer: |numpy.fft.rfft2|
        z = F.adaptive_avg_pool2d(torch.stack(maps)[:, None], (8, 8)).flatten(1)
        return self.fc(z)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=10, help="training iterations")
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    start = time.perf_counter()
    for it in range(args.iters):
        side = 32 if it % 2 == 0 else 48
        x = torch.randn(args.batch, 1, side, side)
        target = torch.randint(0, 10, (args.batch,))
        opt.zero_grad()
        loss = F.cross_entropy(model(x), target)
        loss.backward()
        opt.step()
    print(f"{args.iters} iterations, loss {loss.item():.3f}, {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()

"""Small modules for the torch plugin's tests, in an importable module: MLflow pickles a
module's class by reference, so a process that loads the model must be able to import it."""

from __future__ import annotations

import torch
from torch import nn


class TinyNet(nn.Module):
    """Four features in, two out, through a hidden layer."""

    def __init__(self, hidden: int = 8) -> None:
        super().__init__()
        self.hidden = nn.Linear(4, hidden)
        self.out = nn.Linear(hidden, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.hidden(x)))


class NeedsArguments(nn.Module):
    """A module that cannot be built without arguments."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.layer = nn.Linear(4, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


def make_tiny_net() -> TinyNet:
    """A seeded TinyNet (weights are the same on every call)."""
    torch.manual_seed(0)
    return TinyNet()


class RenamedTinyNet(nn.Module):
    """TinyNet's layout under another name: where TinyNet's code went after a refactor."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(4, 8)
        self.out = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.hidden(x)))

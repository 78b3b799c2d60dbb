"""Sequence nets for ``GRUModel`` (``[batch, steps, features]`` -> one score per sample).

Kept apart from the trainer so a user can swap the net: ``GRUModel(net={"class": ..., "module_path":
..., "kwargs": {...}})`` builds any ``nn.Module`` whose ``__init__`` takes ``d_feat`` and whose
``forward(x)`` maps ``[B, L, d_feat]`` float32 to ``[B]``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["GRUNet"]


class GRUNet(nn.Module):
    """``nn.GRU`` over the steps, then a linear head on the last step's hidden state (Qlib's GRU net)."""

    def __init__(self, d_feat: int = 7, hidden_size: int = 64, num_layers: int = 2, dropout: float = 0.0):
        super().__init__()
        self.rnn = nn.GRU(input_size=d_feat, hidden_size=hidden_size, num_layers=num_layers, batch_first=True,
                          dropout=dropout if num_layers > 1 else 0.0)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1, :]).squeeze(-1)

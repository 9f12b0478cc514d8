"""What every GPT family's model does once it has hidden states and a head.

The families' models differ in their blocks and their output head; the logits of a token batch
and the training loss (TTT's objective) are the same on top of them, so they live here once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def softcap(logits: Tensor, cap: float) -> Tensor:
    """The references' tanh logit softcap."""
    return cap * torch.tanh(logits / cap)


class HiddenHeadLM(nn.Module):
    """A language model split into `hidden(ids)` and `head(h)`; adds the logits and the loss."""

    def hidden(self, ids: Tensor) -> Tensor:
        raise NotImplementedError

    def head(self, h: Tensor) -> Tensor:
        raise NotImplementedError

    def forward_logits(self, ids: Tensor) -> Tensor:
        return self.head(self.hidden(ids))

    def forward(self, ids: Tensor, targets: Tensor) -> Tensor:
        logits = self.forward_logits(ids)
        return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1))

"""The classification task the trainer optimises for every LRA run of a comparison.

``loss = mean cross-entropy(logits, labels)``, ``accuracy = mean(argmax logits == labels)``, over
the batches of :meth:`experiments.lra.TaskData.batches` (``tokens``, ``labels`` and, for pair
tasks such as Retrieval, ``tokens2``). Padding is the model's business: it masks the token id
``ModelConfig.pad_id`` (ListOps / bytes: 0; pixel tasks have no padding).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ClassificationObjective"]


class ClassificationObjective:
    """:class:`experiments.train.Task` for single-sequence and pair (dual-encoder) classification."""

    def __init__(self, pair: bool = False) -> None:
        if not isinstance(pair, bool):
            raise TypeError(f"pair must be a bool, got {pair!r}")
        self.pair = pair

    def logits(self, model: nn.Module, batch: Mapping[str, Any]) -> torch.Tensor:
        if self.pair:
            return model(batch["tokens"], batch["tokens2"])
        return model(batch["tokens"])

    def loss_and_metrics(self, model: nn.Module, batch: Mapping[str, Any]
                         ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits = self.logits(model, batch).float()
        labels = batch["labels"]
        loss = F.cross_entropy(logits, labels)
        accuracy = (logits.argmax(dim=-1) == labels).float().mean()
        return loss, {"accuracy": accuracy}

    def num_tokens(self, batch: Mapping[str, Any]) -> int:
        """Real (unpadded) input tokens of the batch, for tokens/s."""
        n = int(batch["lengths"].sum())
        if self.pair:
            n += int(batch["lengths2"].sum())
        return n

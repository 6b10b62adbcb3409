"""Task heads on the sparse encoder: sequence classification, dual encoder, masked LM.

Every model keeps its encoder as the submodule ``encoder``, so an MLM-pretrained checkpoint's
``encoder.*`` weights load into a classifier (``model.encoder.load_state_dict(...)``) with the same
graphs (the layout hashes travel in the encoder's state).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sparsegraph.experiments.models.config import ModelConfig
from sparsegraph.experiments.models.encoder import Encoder, init_weights

__all__ = ["SequenceClassifier", "DualEncoderClassifier", "MaskedLM"]


def _check_classes(num_classes: int) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be an int >= 1, got {num_classes!r}")
    return num_classes


class SequenceClassifier(nn.Module):
    """Encoder + pooling + MLP classifier: ``logits = W_2 Dropout(GELU(W_1 Dropout(pool(x))))``.

    Pooling is ``ModelConfig.pooling``: the prepended CLS token (as in BERT, Devlin et al. 2019),
    the mean over the real tokens, or the mean over the ETC global tokens. With an ITC pattern the
    CLS token (regular position 0) becomes a global token by adding ``|global_itc:indices=[0]`` to
    the pattern spec (see ``docs/models.md``).

    ``forward(input_ids, padding_mask=None) -> logits [batch, num_classes]``. Only the pooled
    vector is read, so positions that pad every example of the batch are skipped
    (``Encoder.forward(skip_padding=True)``: the same graph and result, at the cost of the batch's
    longest example).
    """

    def __init__(self, config: ModelConfig, num_classes: int) -> None:
        super().__init__()
        self.num_classes = _check_classes(num_classes)
        self.encoder = Encoder(config)
        d = config.d_model
        self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(d, d), nn.GELU(),
                                  nn.Dropout(config.dropout), nn.Linear(d, num_classes))
        init_weights(self.head, config.init_std)

    @property
    def config(self) -> ModelConfig:
        return self.encoder.config

    def forward(self, input_ids: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.encoder(input_ids, padding_mask, skip_padding=True).pooled)


class DualEncoderClassifier(nn.Module):
    """Pair classifier with one shared encoder (LRA Retrieval, Tay et al. 2021).

    ``u = pool(enc(a))``, ``v = pool(enc(b))``, features ``[u, v, u*v, u-v]`` (as in LRA's
    dual-encoder baseline, after Conneau et al. 2017), then
    ``logits = W_2 Dropout(GELU(W_1 features))``.

    ``forward(input_ids_a, input_ids_b, padding_mask_a=None, padding_mask_b=None) -> logits``.
    When both sides have the same shape they go through the encoder as one batch.
    """

    def __init__(self, config: ModelConfig, num_classes: int, hidden: int | None = None) -> None:
        super().__init__()
        self.num_classes = _check_classes(num_classes)
        hidden = config.d_model if hidden is None else hidden
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
            raise ValueError(f"hidden must be an int >= 1 or None, got {hidden!r}")
        self.encoder = Encoder(config)
        self.head = nn.Sequential(nn.Linear(4 * config.d_model, hidden), nn.GELU(),
                                  nn.Dropout(config.dropout), nn.Linear(hidden, num_classes))
        init_weights(self.head, config.init_std)

    @property
    def config(self) -> ModelConfig:
        return self.encoder.config

    def encode_pair(self, input_ids_a: torch.Tensor, input_ids_b: torch.Tensor,
                    padding_mask_a: torch.Tensor | None = None,
                    padding_mask_b: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The pooled vectors ``(u, v)`` of both sides."""
        if input_ids_a.shape[0] != input_ids_b.shape[0]:
            raise ValueError(
                f"input_ids_a and input_ids_b must have the same batch size, got "
                f"{input_ids_a.shape[0]} and {input_ids_b.shape[0]}"
            )
        same = input_ids_a.shape == input_ids_b.shape and (padding_mask_a is None) == (padding_mask_b is None)
        if same:
            masks = None if padding_mask_a is None else torch.cat([padding_mask_a, padding_mask_b])
            pooled = self.encoder(torch.cat([input_ids_a, input_ids_b]), masks, skip_padding=True).pooled
            return pooled.chunk(2)
        return (self.encoder(input_ids_a, padding_mask_a, skip_padding=True).pooled,
                self.encoder(input_ids_b, padding_mask_b, skip_padding=True).pooled)

    def forward(self, input_ids_a: torch.Tensor, input_ids_b: torch.Tensor,
                padding_mask_a: torch.Tensor | None = None,
                padding_mask_b: torch.Tensor | None = None) -> torch.Tensor:
        u, v = self.encode_pair(input_ids_a, input_ids_b, padding_mask_a, padding_mask_b)
        return self.head(torch.cat([u, v, u * v, u - v], dim=-1))


class MaskedLM(nn.Module):
    """Masked-language-model head with tied embeddings (BERT, Devlin et al. 2019).

    ``logits = LN(GELU(W h)) E^T + b`` where ``E`` is the encoder's token embedding matrix (the
    same parameter, so the input and output embeddings are tied) and ``b`` a per-token bias.

    ``forward(input_ids, padding_mask=None) -> logits [batch, L, vocab_size]``; the loss (on the
    masked positions only) is the trainer's job.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.encoder = Encoder(config)
        d = config.d_model
        self.transform = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.LayerNorm(d, eps=config.layer_norm_eps))
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))
        init_weights(self.transform, config.init_std)

    @property
    def config(self) -> ModelConfig:
        return self.encoder.config

    @property
    def output_embedding(self) -> torch.Tensor:
        """The output projection: the encoder's token embedding weight (tied)."""
        return self.encoder.token.weight

    def forward(self, input_ids: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.transform(self.encoder(input_ids, padding_mask).hidden)
        return F.linear(h, self.encoder.token.weight, self.bias)

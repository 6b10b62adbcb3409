"""A local Hugging Face tokenizer as sparsegraph's text tokenizer (``data.tokenizer = "hf:DIR"``).

``sparsegraph train`` on a text folder encodes every file with a tokenizer that has
``vocab_size``, ``pad_id``, ``mask_id``, ``cls_id`` and ``encode(text)``
(``experiments.text.mlm.Tokenizer``). :func:`load_tokenizer` wraps ``AutoTokenizer`` loaded from
a local directory (never downloaded) in that shape, so a pretrained checkpoint
(``--init-from DIR``) reads its own token ids. ``encode`` adds the tokenizer's special tokens
(``[CLS] ... [SEP]`` / ``<s> ... </s>``): the encoder's ``pooling="first"`` pools the first one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["HFTokenizer", "load_tokenizer"]


class HFTokenizer:
    """``transformers`` tokenizer -> the ``experiments.text.mlm.Tokenizer`` protocol.

    ``vocab_size`` is the model's (``config.json`` next to the tokenizer, when it is at least the
    tokenizer's length; models often round their vocabulary up), else ``len(tokenizer)``.
    """

    def __init__(self, tokenizer: Any, vocab_size: int | None = None, name: str = "") -> None:
        self.tokenizer = tokenizer
        self.name = name
        size = len(tokenizer)
        self.vocab_size = int(vocab_size) if vocab_size is not None and vocab_size >= size else size
        ids = {}
        for attr in ("pad", "mask", "cls"):
            v = getattr(tokenizer, f"{attr}_token_id", None)
            if v is None and attr == "cls":
                v = getattr(tokenizer, "bos_token_id", None)
            if not isinstance(v, int):
                raise ValueError(
                    f"tokenizer {name!r} has no {attr} token ({attr}_token_id is {v!r}); sparsegraph's text data "
                    "needs pad, mask and cls (or bos) tokens"
                )
            ids[attr] = v
        self.pad_id, self.mask_id, self.cls_id = ids["pad"], ids["mask"], ids["cls"]

    def encode(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return list(self.tokenizer(text, add_special_tokens=True, verbose=False)["input_ids"])

    def __repr__(self) -> str:
        return f"HFTokenizer({self.name!r}, vocab_size={self.vocab_size})"


def load_tokenizer(path: str | os.PathLike[str]) -> HFTokenizer:
    """The tokenizer saved in the local directory ``path`` (``AutoTokenizer``, offline)."""
    d = Path(path)
    if not d.is_dir():
        raise FileNotFoundError(f"tokenizer directory {str(d)!r} does not exist")
    try:
        from transformers import AutoTokenizer
    except ImportError as e:  # pragma: no cover - the hf extra is missing
        raise ImportError("a Hugging Face tokenizer needs transformers: pip install 'sparsegraph[hf]'") from e
    try:
        tok = AutoTokenizer.from_pretrained(str(d), local_files_only=True)
    except Exception as e:
        raise ValueError(f"{str(d)!r} holds no loadable Hugging Face tokenizer: {type(e).__name__}: {e}") from e
    vocab = None
    cfg = d / "config.json"
    if cfg.is_file():
        vocab = json.loads(cfg.read_text()).get("vocab_size")
    return HFTokenizer(tok, vocab if isinstance(vocab, int) else None, str(d))

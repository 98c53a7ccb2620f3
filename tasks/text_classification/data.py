"""Tokenised dataloaders for text classification."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader


def tokenize_split(dataset: Any, tokenizer: Any, max_length: int) -> Any:
    """Tokenise once (batched, truncated, unpadded); padding happens per batch in the collator."""
    def encode(batch: dict) -> dict:
        enc = tokenizer(batch["text"], truncation=True, max_length=max_length)
        enc["labels"] = batch["label"]
        return enc

    columns = [c for c in dataset.column_names]
    return dataset.map(encode, batched=True, remove_columns=columns, desc="tokenizing",
                       load_from_cache_file=False, keep_in_memory=True)


def make_dataloader(dataset: Any, tokenizer: Any, max_length: int, batch_size: int, *,
                    shuffle: bool, seed: int, num_workers: int = 0) -> DataLoader:
    from transformers import DataCollatorWithPadding

    encoded = tokenize_split(dataset, tokenizer, max_length)
    encoded.set_format("python")
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(encoded, batch_size=batch_size, shuffle=shuffle, generator=generator,
                      collate_fn=DataCollatorWithPadding(tokenizer, return_tensors="pt"),
                      num_workers=num_workers)

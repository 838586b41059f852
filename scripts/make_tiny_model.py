#!/usr/bin/env python3
"""A tiny BERT (2 layers, hidden 32) with all-MiniLM-L6-v2's tokenizer, for the trainer tests.

    python3 scripts/make_tiny_model.py --tokenizer-from artifacts/models/all-MiniLM-L6-v2 --out DIR

The weights are transformers' own random initialisation (seeded), saved with save_pretrained,
so the trainer tests read a folder exactly as a user's would look; the tokenizer files are
copied from the real model, so the tests tokenise real text with the real vocabulary.
"""
import argparse
import shutil
from pathlib import Path

import torch
from transformers import BertConfig, BertModel

TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer-from", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    source = BertConfig.from_pretrained(args.tokenizer_from)
    config = BertConfig(vocab_size=source.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, hidden_dropout_prob=0.1,
                        attention_probs_dropout_prob=0.1, pad_token_id=source.pad_token_id)
    args.out.mkdir(parents=True, exist_ok=True)
    BertModel(config).save_pretrained(args.out)
    for name in TOKENIZER_FILES:
        if (args.tokenizer_from / name).exists():
            shutil.copy(args.tokenizer_from / name, args.out / name)
    print(f"tiny model: {sum(p.numel() for p in BertModel(config).parameters())} parameters in {args.out}")


if __name__ == "__main__":
    main()

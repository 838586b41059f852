#!/usr/bin/env python3
"""Checks that a checkpoint folder written by dp-train loads in transformers and gives the expected logits.

Usage:
    python scripts/check_hf_checkpoint.py DIR EXPECTED.safetensors

DIR holds config.json and model.safetensors in the layout of scripts/golden.py. config.json's
"dp_train_pooling" picks the model:
  "pooler", "roberta_head"  AutoModelForSequenceClassification (the head is part of the HF model)
  "mean", "first_token"     AutoModel + masked mean / token 0 + a Linear built from "classifier.weight" (K, H)
                            and "classifier.bias" (K) of model.safetensors. The base model gets a pooler only
                            if model.safetensors has pooler weights, so an unused pooler is neither required
                            nor rejected.
  "attention"               the same, pooled by softmax over the unmasked tokens of v . tanh(W h + b), from
                            "attention_pool.dense.weight" (H, H), ".dense.bias" (H), ".score.weight" (1, H)
  "weighted_layers"         the same, pooled as sum_l w_l h_l[:, 0] / sum_l w_l over the last
                            "dp_train_pooled_layers" hidden states, from "layer_pool.weight"
Loading must report no missing, unexpected (other than our head's keys) or mismatched keys.

EXPECTED.safetensors needs input_ids (B, T), attention_mask (B, T) and logits (B, K); token_type_ids (B, T) is
used when present. Position ids are left to transformers. The forward runs in float32, eval mode (no dropout),
with eager attention. Tolerance: |logits - expected| <= 1e-4 + 1e-4 * |expected| elementwise (as
torch.allclose), since the Swift side accumulates in a different order.

Prints one line, `OK <dir>: max |diff| = ...`, or `FAIL <dir>: ...` and exits 1. Usage errors exit 2.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from safetensors import safe_open  # noqa: E402
from transformers import AutoModel, AutoModelForSequenceClassification  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

ATOL = 1e-4
RTOL = 1e-4
HEAD_KEYS = {"classifier.weight", "classifier.bias"}
HEAD_EXTRAS = {
    "attention": {"attention_pool.dense.weight", "attention_pool.dense.bias", "attention_pool.score.weight"},
    "weighted_layers": {"layer_pool.weight"},
}


class CheckFailed(Exception):
    pass


def load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(path, "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def summarize(names: list[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return f"[{shown}, ... {len(names) - limit} more]" if len(names) > limit else f"[{shown}]"


def check_loading_info(info: dict, allowed_unexpected: set[str]) -> None:
    problems = []
    missing = sorted(info.get("missing_keys", []))
    unexpected = sorted(set(info.get("unexpected_keys", [])) - allowed_unexpected)
    mismatched = sorted(str(m) for m in info.get("mismatched_keys", []))
    errors = [str(e) for e in info.get("error_msgs", [])]
    if missing:
        problems.append(f"missing keys {summarize(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {summarize(unexpected)}")
    if mismatched:
        problems.append(f"mismatched keys {summarize(mismatched)}")
    if errors:
        problems.append(f"load errors {errors}")
    if problems:
        raise CheckFailed("transformers reports " + "; ".join(problems))


def load_model(model_dir: Path):
    """Returns forward(input_ids, attention_mask, token_type_ids) -> logits (B, K)."""
    config_path = model_dir / "config.json"
    weights_path = model_dir / "model.safetensors"
    for path in (config_path, weights_path):
        if not path.is_file():
            raise CheckFailed(f"{path} does not exist")
    config = json.loads(config_path.read_text())
    pooling = config.get("dp_train_pooling")
    # Shape mismatches are reported in the loading info (and fail the check) instead of raising.
    common = dict(output_loading_info=True, ignore_mismatched_sizes=True, attn_implementation="eager",
                  dtype=torch.float32)

    if pooling in ("pooler", "roberta_head"):
        model, info = AutoModelForSequenceClassification.from_pretrained(model_dir, **common)
        check_loading_info(info, allowed_unexpected=set())
        model.eval()

        def forward(**inputs):
            return model(**inputs).logits

        return forward

    if pooling not in ("mean", "first_token", *HEAD_EXTRAS):
        raise CheckFailed(f"{config_path}: dp_train_pooling is {pooling!r}, not pooler|roberta_head|mean|first_token|"
                          f"{'|'.join(HEAD_EXTRAS)}")
    head_keys = HEAD_KEYS | HEAD_EXTRAS.get(pooling, set())
    with safe_open(weights_path, "pt") as f:
        keys = set(f.keys())
        if not head_keys <= keys:
            raise CheckFailed(f"{weights_path}: no {sorted(head_keys - keys)} for the {pooling} head")
        head = {key: f.get_tensor(key).float() for key in head_keys}
    weight, bias = head["classifier.weight"], head["classifier.bias"]
    if pooling == "weighted_layers" and config.get("dp_train_pooled_layers") != len(head["layer_pool.weight"]):
        raise CheckFailed(f"{config_path}: dp_train_pooled_layers is {config.get('dp_train_pooled_layers')!r} but "
                          f"layer_pool.weight holds {len(head['layer_pool.weight'])} weights")
    has_pooler = any("pooler" in key.split(".") for key in keys - head_keys)
    base, info = AutoModel.from_pretrained(model_dir, add_pooling_layer=has_pooler, **common)
    check_loading_info(info, allowed_unexpected=head_keys)
    base.eval()
    if weight.ndim != 2 or weight.shape[1] != base.config.hidden_size or bias.shape != (weight.shape[0],):
        raise CheckFailed(f"classifier.weight {tuple(weight.shape)} / bias {tuple(bias.shape)} do not fit hidden "
                          f"size {base.config.hidden_size}")
    if "num_labels" in config and config["num_labels"] != weight.shape[0]:
        raise CheckFailed(f"config num_labels {config['num_labels']} but classifier.weight has {weight.shape[0]} rows")

    def forward(input_ids, attention_mask, token_type_ids=None):
        out = base(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                   output_hidden_states=True)
        last = out.last_hidden_state
        if pooling == "mean":
            mask = attention_mask.unsqueeze(-1).to(last.dtype)
            pooled = (last * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        elif pooling == "attention":
            hidden = torch.tanh(torch.nn.functional.linear(
                last, head["attention_pool.dense.weight"], head["attention_pool.dense.bias"]))
            scores = torch.nn.functional.linear(hidden, head["attention_pool.score.weight"]).squeeze(-1)
            weights = torch.softmax(scores.masked_fill(attention_mask == 0, float("-inf")), dim=1)
            pooled = (weights.unsqueeze(-1) * last).sum(dim=1)
        elif pooling == "weighted_layers":
            layer_weights = head["layer_pool.weight"]
            stacked = torch.stack(out.hidden_states[-len(layer_weights):])
            pooled = ((layer_weights.view(-1, 1, 1, 1) * stacked).sum(dim=0) / layer_weights.sum())[:, 0]
        else:
            pooled = last[:, 0]
        return torch.nn.functional.linear(pooled, weight, bias)

    return forward


def check(model_dir: Path, expected_path: Path) -> float:
    if not expected_path.is_file():
        raise CheckFailed(f"{expected_path} does not exist")
    expected = load_safetensors(expected_path)
    for name in ("input_ids", "attention_mask", "logits"):
        if name not in expected:
            raise CheckFailed(f"{expected_path} has no {name}")
    inputs = {name: expected[name].long() for name in ("input_ids", "attention_mask", "token_type_ids")
              if name in expected}
    forward = load_model(model_dir)
    with torch.no_grad():
        logits = forward(**inputs).float()
    want = expected["logits"].float()
    if logits.shape != want.shape:
        raise CheckFailed(f"logits have shape {tuple(logits.shape)}, expected {tuple(want.shape)}")
    if not torch.isfinite(logits).all():
        raise CheckFailed("transformers' logits are not finite")
    diff = (logits - want).abs()
    max_diff = diff.max().item() if diff.numel() else 0.0
    bad = ~(diff <= ATOL + RTOL * want.abs())  # also catches NaN in the expected logits
    if bad.any():
        index = tuple(bad.nonzero()[0].tolist())
        raise CheckFailed(f"max |diff| = {max_diff:.3e} exceeds {ATOL:g} + {RTOL:g} * |expected|; first at {index}: "
                          f"transformers {logits[index].item():.6g}, expected {want[index].item():.6g}")
    return max_diff


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: check_hf_checkpoint.py DIR EXPECTED.safetensors", file=sys.stderr)
        return 2
    model_dir, expected_path = Path(argv[0]), Path(argv[1])
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.set_num_threads(1)
    try:
        max_diff = check(model_dir, expected_path)
    except CheckFailed as e:
        print(f"FAIL {model_dir}: {e}")
        return 1
    except Exception as e:  # a loader crash is a failed check too, with its message on the one line
        print(f"FAIL {model_dir}: {type(e).__name__}: {e}".replace("\n", " "))
        return 1
    print(f"OK {model_dir}: max |diff| = {max_diff:.3e}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

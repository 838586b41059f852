#!/usr/bin/env python3
"""Golden tensors from PyTorch/transformers that the Swift tests compare against.

Usage:
    python scripts/golden.py                      # regenerate every tiny case into Tests/DPModelsTests/Golden/
    python scripts/golden.py --case albert-classification      # one tiny case
    python scripts/golden.py --case minilm --model-dir DIR --out OUTDIR   # real all-MiniLM-L6-v2, not committed

Each case is a folder <out>/<case>/ with three files:

  config.json        what `model.save_pretrained(dir)` writes, plus three keys of ours:
                       "dp_train_pooling": "pooler"       BERT/ALBERT *ForSequenceClassification (tanh pooler on token 0)
                                           "roberta_head"  RobertaForSequenceClassification (dense+tanh+out_proj on token 0)
                                           "mean"          base model + masked mean over tokens + Linear(H, K)
                                           "first_token"   base model + last_hidden_state[:, 0] + Linear(H, K)
                                           "attention"     base model + attention pooling (below) + Linear(H, K)
                                           "weighted_layers" base model + weighted layer pooling (below) + Linear(H, K)
                       "dp_train_pooled_layers": P   only for "weighted_layers": how many of the last hidden states it mixes
                       "num_labels": K
                       "problem_type": "regression" (K == 1, MSE) or "single_label_classification" (cross-entropy)
  model.safetensors  what save_pretrained writes. For "pooler"/"roberta_head" that is the whole
                     *ForSequenceClassification, keys prefixed "bert." / "roberta." / "albert."; the head keys are
                     "classifier.weight"/"classifier.bias" (BERT, ALBERT) or "classifier.dense.*"/"classifier.out_proj.*"
                     (RoBERTa). For "mean"/"first_token"/"attention" it is the BASE model, keys NOT prefixed (as the
                     sentence-transformers checkpoints are, e.g. "embeddings.word_embeddings.weight"), plus our head
                     "classifier.weight" (K, H) and "classifier.bias" (K). Base models for these heads are built
                     without a pooler, so every stored tensor gets a gradient.
  golden.safetensors the tensors below; floats are F32, integers I64. Metadata: "case", and for minilm "sentences"
                     (a JSON list of the input strings).

Legend: B batch, T tokens (longest sequence; shorter ones are right-padded with pad_token_id), H hidden size,
E embedding size (ALBERT only, else E == H), K num_labels, L num_hidden_layers. All tensors are row-major, batch first,
exactly as PyTorch returns them; Linear weights are (out, in) as nn.Linear stores them.

  input_ids        (B, T) I64  token ids; pads are pad_token_id
  token_type_ids   (B, T) I64  BERT/ALBERT: 0 on the first ceil(n/2) real tokens, 1 on the rest, 0 on pads;
                               RoBERTa: all 0
  attention_mask   (B, T) I64  1 on real tokens, 0 on pads
  position_ids     (B, T) I64  the ids transformers feeds to position_embeddings (checked with a hook):
                               BERT/ALBERT 0..T-1 on every row, pads included;
                               RoBERTa padding_idx+1, padding_idx+2, ... on real tokens and padding_idx on pads
                               (transformers' create_position_ids_from_input_ids)
  labels           (B)    I64 class ids in [0, K) for classification (each class occurs), F32 for regression
  embedding_output (B, T, E)  ALBERT only: AlbertEmbeddings output (LayerNorm of word+position+type), before
                               encoder.embedding_hidden_mapping_in
  hidden_states.<i> (B, T, H) for i in 0...L, transformers' output_hidden_states=True: 0 is the input of the
                               first layer (the embeddings output; for ALBERT AFTER embedding_hidden_mapping_in),
                               i is the output of layer i-1. Pad positions are included as computed.
  pooled_output    (B, H)     only where the model has a pooler (BERT/ALBERT "pooler"): tanh(W h[:, 0] + b)
  pooled           (B, H)     only for "mean"/"first_token"/"attention": the vector the classifier consumes.
                               mean: sum_t(mask * h_last) / max(sum_t mask, 1e-9)   (sentence-transformers' formula)
                               attention: sum_t(a_t * h_last[:, t]) with a = softmax over the unmasked tokens
                               of v . tanh(W h_last[:, t] + b), padding -inf (the CommonLit attention head);
                               W, b, v are "attention_pool.dense.weight" (H, H), ".dense.bias" (H) and
                               "attention_pool.score.weight" (1, H), which has no bias
                               weighted_layers: sum_l w_l hidden_states[L+1-P+l][:, 0] / sum_l w_l over the last P
                               hidden states (hidden_states[0], the embeddings output, counts), w = "layer_pool.weight" (P)
  attention_weights (B, T)    only for "attention": a
  logits           (B, K)
  loss             (1)        the transformers loss, a mean over the batch: MSE(logits.squeeze(), labels) for
                               regression, cross-entropy for classification
  grad.<name>      same shape as the parameter: d loss / d parameter for EVERY tensor in model.safetensors, with
                               <name> the exact key there (e.g. grad.bert.encoder.layer.0.attention.self.query.weight).
                               Embedding rows at padding_idx get zero gradient (nn.Embedding(padding_idx=...)):
                               word_embeddings for all models, position_embeddings for RoBERTa.
                               The attention key biases have a gradient that is exactly 0 in exact arithmetic
                               (softmax ignores a shift shared by a row of scores); the stored values are float
                               round-off, |g| < 1e-8, so compare gradients with an absolute floor, not only relatively.

Everything runs in float32 on the CPU with eager attention, in eval mode (no dropout) but with gradients on.
Weights are the transformers init under a fixed seed, then N(0, 0.1) noise is added to every parameter so that
LayerNorm weights are not all 1 and biases are not all 0 (which would hide bugs).
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn
from transformers import (
    AlbertConfig,
    AlbertForSequenceClassification,
    AlbertModel,
    BertConfig,
    BertForSequenceClassification,
    BertModel,
    RobertaConfig,
    RobertaForSequenceClassification,
    RobertaModel,
)
from transformers.models.roberta import modeling_roberta
from transformers.utils import logging as hf_logging

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "Tests" / "DPModelsTests" / "Golden"

SEQUENCE_LENGTHS = (7, 4, 2)  # real tokens per sequence; B = 3, T = 7
WEIGHT_NOISE_STD = 0.1

TINY = dict(
    vocab_size=99,
    hidden_size=32,
    num_attention_heads=4,
    intermediate_size=37,
    num_hidden_layers=2,
    max_position_embeddings=40,
)

FAMILIES = {
    "bert": (BertConfig, BertForSequenceClassification, BertModel),
    "roberta": (RobertaConfig, RobertaForSequenceClassification, RobertaModel),
    "albert": (AlbertConfig, AlbertForSequenceClassification, AlbertModel),
}


@dataclass
class Case:
    family: str  # "bert" | "roberta" | "albert"
    pooling: str  # "pooler" | "roberta_head" | "mean" | "first_token" | "attention" | "weighted_layers"
    num_labels: int
    seed: int
    config: dict = field(default_factory=dict)  # overrides of TINY
    pooled_layers: int = 0  # weighted_layers only


CASES = {
    "bert-regression-pooler": Case("bert", "pooler", 1, 1001, dict(hidden_act="gelu")),
    "bert-classification-mean": Case("bert", "mean", 3, 1002, dict(hidden_act="gelu_new")),
    "bert-classification-first-token": Case("bert", "first_token", 2, 1003, dict(hidden_act="gelu")),
    # layer_norm_eps 1e-5 as in roberta-base, so the Swift side must read eps from config.json.
    "roberta-classification": Case(
        "roberta", "roberta_head", 3, 1004, dict(pad_token_id=1, type_vocab_size=1, layer_norm_eps=1e-5)
    ),
    "roberta-regression-mean": Case(
        "roberta", "mean", 1, 1005, dict(pad_token_id=1, type_vocab_size=1, layer_norm_eps=1e-5)
    ),
    "albert-classification": Case(
        "albert",
        "pooler",
        2,
        1006,
        dict(embedding_size=16, num_hidden_layers=3, num_hidden_groups=1, inner_group_num=1, hidden_act="gelu_new"),
    ),
    "bert-regression-attention": Case("bert", "attention", 1, 1008, dict(hidden_act="gelu")),
    "roberta-classification-attention": Case(
        "roberta", "attention", 3, 1009, dict(pad_token_id=1, type_vocab_size=1, layer_norm_eps=1e-5)
    ),
    # Every hidden state, the embeddings' output included.
    "bert-classification-weighted-layers": Case("bert", "weighted_layers", 3, 1010, dict(hidden_act="gelu"),
                                                pooled_layers=3),
    "albert-regression-weighted-layers": Case(
        "albert",
        "weighted_layers",
        1,
        1011,
        dict(embedding_size=16, num_hidden_layers=3, num_hidden_groups=1, inner_group_num=1, hidden_act="gelu_new"),
        pooled_layers=2,
    ),
    # layer i uses group int(i / (L / G)): layers 0,1 -> group 0, layers 2,3 -> group 1.
    "albert-regression-groups": Case(
        "albert",
        "pooler",
        1,
        1007,
        dict(embedding_size=16, num_hidden_layers=4, num_hidden_groups=2, inner_group_num=1, hidden_act="gelu_new"),
    ),
}

MINILM_SENTENCES = [
    "A man is playing a guitar on the stage.",
    "The new movie is awesome!",
    "Data parallel training splits each batch across several GPUs, then averages the gradients.",
    "Hi.",
]


def problem_type(num_labels: int) -> str:
    return "regression" if num_labels == 1 else "single_label_classification"


class PooledHead(nn.Module):
    """A base encoder + masked mean, first-token or attention pooling + Linear(H, K); the loss is transformers'."""

    def __init__(self, base: nn.Module, pooling: str, num_labels: int, pooled_layers: int = 0):
        super().__init__()
        self.base = base
        self.pooling = pooling
        self.pooled_layers = pooled_layers
        self.num_labels = num_labels
        hidden = base.config.hidden_size
        if pooling == "attention":
            self.attention_dense = nn.Linear(hidden, hidden)
            self.attention_score = nn.Linear(hidden, 1, bias=False)
        if pooling == "weighted_layers":
            self.layer_weights = nn.Parameter(torch.ones(pooled_layers))
        self.classifier = nn.Linear(hidden, num_labels)

    def forward(self, input_ids, attention_mask, token_type_ids, labels):
        out = self.base(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            output_hidden_states=True,
            return_dict=True,
        )
        last = out.last_hidden_state  # (B, T, H)
        if self.pooling == "mean":
            mask = attention_mask.unsqueeze(-1).to(last.dtype)  # (B, T, 1)
            pooled = (last * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        elif self.pooling == "first_token":
            pooled = last[:, 0]
        elif self.pooling == "attention":
            scores = self.attention_score(torch.tanh(self.attention_dense(last))).squeeze(-1)  # (B, T)
            weights = torch.softmax(scores.masked_fill(attention_mask == 0, float("-inf")), dim=1)
            pooled = (weights.unsqueeze(-1) * last).sum(dim=1)
        elif self.pooling == "weighted_layers":
            stacked = torch.stack(out.hidden_states[-self.pooled_layers:])  # (P, B, T, H)
            mixed = (self.layer_weights.view(-1, 1, 1, 1) * stacked).sum(dim=0) / self.layer_weights.sum()
            pooled = mixed[:, 0]
        else:
            raise ValueError(f"unknown pooling {self.pooling!r}")
        logits = self.classifier(pooled)  # (B, K)
        if self.num_labels == 1:
            loss = nn.functional.mse_loss(logits.squeeze(), labels.squeeze())
        else:
            loss = nn.functional.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1))
        result = dict(loss=loss, logits=logits, pooled=pooled, hidden_states=out.hidden_states)
        if self.pooling == "attention":
            result["attention_weights"] = weights
        return result

    def named_checkpoint_parameters(self):
        """(key in model.safetensors, parameter): the base model's own names, then the head."""
        yield from self.base.named_parameters()
        if self.pooling == "attention":
            yield "attention_pool.dense.weight", self.attention_dense.weight
            yield "attention_pool.dense.bias", self.attention_dense.bias
            yield "attention_pool.score.weight", self.attention_score.weight
        if self.pooling == "weighted_layers":
            yield "layer_pool.weight", self.layer_weights
        yield "classifier.weight", self.classifier.weight
        yield "classifier.bias", self.classifier.bias


def base_module(model: nn.Module) -> nn.Module:
    return model.base if isinstance(model, PooledHead) else model.base_model


def checkpoint_parameters(model: nn.Module) -> dict[str, torch.Tensor]:
    if isinstance(model, PooledHead):
        return dict(model.named_checkpoint_parameters())
    return dict(model.named_parameters())


def perturb_(model: nn.Module, generator: torch.Generator) -> None:
    with torch.no_grad():
        for _, p in sorted(model.named_parameters()):
            p.add_(torch.randn(p.shape, generator=generator) * WEIGHT_NOISE_STD)


def build_tiny_model(case: Case) -> nn.Module:
    config_cls, classifier_cls, base_cls = FAMILIES[case.family]
    config = config_cls(
        **{**TINY, **case.config},
        num_labels=case.num_labels,
        problem_type=problem_type(case.num_labels),
        attn_implementation="eager",
    )
    torch.manual_seed(case.seed)
    if case.pooling in ("pooler", "roberta_head"):
        model = classifier_cls(config)
    else:
        model = PooledHead(base_cls(config, add_pooling_layer=False), case.pooling, case.num_labels, case.pooled_layers)
    perturb_(model, torch.Generator().manual_seed(case.seed + 1))
    return model.float()


def tiny_batch(case: Case, config) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(case.seed + 2)
    pad = config.pad_token_id
    B, T = len(SEQUENCE_LENGTHS), max(SEQUENCE_LENGTHS)
    input_ids = torch.full((B, T), pad, dtype=torch.long)
    token_type_ids = torch.zeros((B, T), dtype=torch.long)
    attention_mask = torch.zeros((B, T), dtype=torch.long)
    for b, n in enumerate(SEQUENCE_LENGTHS):
        input_ids[b, :n] = torch.randint(pad + 1, config.vocab_size, (n,), generator=g)
        attention_mask[b, :n] = 1
        if config.type_vocab_size > 1:
            token_type_ids[b, math.ceil(n / 2) : n] = 1
    if case.num_labels == 1:
        labels = torch.randn(B, generator=g)
    else:
        # A random permutation of 0..<B, mod K: random, but every class up to min(B, K) occurs.
        labels = torch.randperm(B, generator=g) % case.num_labels
    return dict(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask, labels=labels)


def expected_position_ids(config, input_ids: torch.Tensor) -> torch.Tensor:
    if config.model_type == "roberta":
        # transformers 4.x: a module-level function; 5.x: a static method of RobertaEmbeddings.
        helper = getattr(modeling_roberta, "create_position_ids_from_input_ids", None)
        helper = helper or modeling_roberta.RobertaEmbeddings.create_position_ids_from_input_ids
        return helper(input_ids, config.pad_token_id)
    B, T = input_ids.shape
    return torch.arange(T, dtype=torch.long).unsqueeze(0).expand(B, T).contiguous()


def compute_golden(model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Forward (eval mode, no dropout) and backward; returns every tensor of golden.safetensors."""
    model.eval()
    base = base_module(model)
    config = base.config
    captured = {}
    hooks = [
        base.embeddings.register_forward_hook(lambda m, a, out: captured.__setitem__("embedding_output", out)),
        base.embeddings.position_embeddings.register_forward_hook(
            lambda m, a, out: captured.__setitem__("position_ids", a[0])
        ),
        base.register_forward_hook(lambda m, a, out: captured.__setitem__("base_output", out)),
    ]
    model.zero_grad(set_to_none=True)
    with torch.enable_grad():
        if isinstance(model, PooledHead):
            out = model(**batch)
        else:
            out = model(**batch, output_hidden_states=True, return_dict=True)
        out["loss"].backward()
    for h in hooks:
        h.remove()

    golden = {k: v for k, v in batch.items()}
    position_ids = expected_position_ids(config, batch["input_ids"])
    seen = captured["position_ids"].expand_as(position_ids)
    assert torch.equal(seen, position_ids), f"position ids: transformers used {seen}, expected {position_ids}"
    golden["position_ids"] = position_ids

    hidden_states = out["hidden_states"]
    assert len(hidden_states) == config.num_hidden_layers + 1, len(hidden_states)
    for i, h in enumerate(hidden_states):
        golden[f"hidden_states.{i}"] = h
    if config.model_type == "albert":
        golden["embedding_output"] = captured["embedding_output"]
    else:
        assert torch.equal(captured["embedding_output"], hidden_states[0])
    pooler_output = getattr(captured["base_output"], "pooler_output", None)
    if pooler_output is not None:
        golden["pooled_output"] = pooler_output
    if isinstance(model, PooledHead):
        golden["pooled"] = out["pooled"]
    if "attention_weights" in out:
        golden["attention_weights"] = out["attention_weights"]
    golden["logits"] = out["logits"]
    golden["loss"] = out["loss"].reshape(1)

    for name, p in checkpoint_parameters(model).items():
        assert p.grad is not None, f"{name} got no gradient"
        golden[f"grad.{name}"] = p.grad
    return {
        k: v.detach().to(torch.float32 if v.is_floating_point() else torch.int64).contiguous()
        for k, v in golden.items()
    }


def save_model_folder(model: nn.Module, pooling: str, num_labels: int, out_dir: Path) -> None:
    """config.json + model.safetensors, as save_pretrained writes them, plus our head and config keys."""
    hf_model = model.base if isinstance(model, PooledHead) else model
    kwargs = {}
    if "safe_serialization" in inspect.signature(hf_model.save_pretrained).parameters:
        kwargs["safe_serialization"] = True  # transformers 4.x; 5.x always writes safetensors
    hf_model.save_pretrained(out_dir, **kwargs)
    weights = out_dir / "model.safetensors"
    assert weights.exists(), f"save_pretrained wrote no single model.safetensors in {out_dir}"

    if isinstance(model, PooledHead):
        with safe_open(weights, "pt") as f:
            metadata = f.metadata()
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        for name, p in model.named_checkpoint_parameters():
            if name not in tensors:
                tensors[name] = p.detach().contiguous()
        save_file(tensors, weights, metadata=metadata)

    config_path = out_dir / "config.json"
    config = json.loads(config_path.read_text())
    config["dp_train_pooling"] = pooling
    if isinstance(model, PooledHead) and model.pooling == "weighted_layers":
        config["dp_train_pooled_layers"] = model.pooled_layers
    config["num_labels"] = num_labels
    config["problem_type"] = problem_type(num_labels)
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")

    with safe_open(weights, "pt") as f:
        stored = set(f.keys())
    expected = set(checkpoint_parameters(model))
    assert stored == expected, f"model.safetensors keys differ: {sorted(stored ^ expected)}"


def write_case(name: str, model: nn.Module, pooling: str, num_labels: int, golden: dict, out_dir: Path,
               metadata: dict | None = None) -> None:
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    save_model_folder(model, pooling, num_labels, out_dir)
    save_file(golden, out_dir / "golden.safetensors", metadata={"case": name, **(metadata or {})})
    verify_case(out_dir, model)
    size = sum(p.stat().st_size for p in out_dir.iterdir())
    print(f"wrote {out_dir} ({len(golden)} tensors, {size / 1024:.0f} KiB, loss {golden['loss'].item():.6f})")


def verify_case(out_dir: Path, model: nn.Module) -> None:
    """Reads the folder back: the weights equal the model's and every parameter has a gradient of its shape."""
    with safe_open(out_dir / "model.safetensors", "pt") as f:
        weights = {k: f.get_tensor(k) for k in f.keys()}
    with safe_open(out_dir / "golden.safetensors", "pt") as f:
        golden = {k: f.get_tensor(k) for k in f.keys()}
    for name, p in checkpoint_parameters(model).items():
        assert torch.equal(weights[name], p.detach()), name
        assert golden[f"grad.{name}"].shape == p.shape, name
    grads = {k for k in golden if k.startswith("grad.")}
    assert grads == {f"grad.{k}" for k in weights}, sorted(grads ^ {f"grad.{k}" for k in weights})
    config = json.loads((out_dir / "config.json").read_text())
    assert golden["logits"].shape == (golden["input_ids"].shape[0], config["num_labels"])


def run_tiny_case(name: str, out_root: Path) -> None:
    case = CASES[name]
    model = build_tiny_model(case)
    batch = tiny_batch(case, base_module(model).config)
    golden = compute_golden(model, batch)
    write_case(name, model, case.pooling, case.num_labels, golden, out_root / name)


def run_minilm(model_dir: Path, out_dir: Path, seed: int = 2024) -> None:
    """Real all-MiniLM-L6-v2 + masked mean pooling + a fresh Linear(384, 1) regression head."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    base, info = BertModel.from_pretrained(
        model_dir, add_pooling_layer=False, attn_implementation="eager", dtype=torch.float32, output_loading_info=True
    )
    # The checkpoint has a pooler, which mean pooling does not use: it is dropped, and nothing else may be off.
    unexpected = sorted(k for k in info["unexpected_keys"] if k.split(".")[0] != "pooler")
    assert not info["missing_keys"] and not unexpected and not info["mismatched_keys"], info
    torch.manual_seed(seed)
    model = PooledHead(base, "mean", 1).float()
    with torch.no_grad():
        nn.init.normal_(model.classifier.weight, mean=0.0, std=0.02)
        nn.init.zeros_(model.classifier.bias)
    base.config.num_labels = 1
    base.config.problem_type = "regression"

    encoded = tokenizer(MINILM_SENTENCES, padding=True, return_tensors="pt")
    labels = torch.rand(len(MINILM_SENTENCES), generator=torch.Generator().manual_seed(seed + 1))
    batch = dict(
        input_ids=encoded["input_ids"].long(),
        token_type_ids=encoded["token_type_ids"].long(),
        attention_mask=encoded["attention_mask"].long(),
        labels=labels,
    )
    golden = compute_golden(model, batch)
    write_case("minilm", model, "mean", 1, golden, out_dir, metadata={"sentences": json.dumps(MINILM_SENTENCES)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", help=f"one of {', '.join(CASES)}, or minilm; default: every tiny case")
    parser.add_argument("--model-dir", type=Path, help="minilm: the all-MiniLM-L6-v2 folder")
    parser.add_argument("--out", type=Path, help="tiny cases: the Golden folder; minilm: the case folder itself")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # deterministic reductions
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()  # the load report of minilm's dropped pooler; real problems are asserted

    if args.case == "minilm":
        if args.model_dir is None or args.out is None:
            parser.error("--case minilm needs --model-dir and --out")
        run_minilm(args.model_dir, args.out)
        return 0
    if args.model_dir is not None:
        parser.error("--model-dir is only for --case minilm")
    out_root = args.out or DEFAULT_OUT
    names = list(CASES) if args.case is None else [args.case]
    for name in names:
        if name not in CASES:
            parser.error(f"unknown case {name!r}; known: {', '.join(CASES)}, minilm")
        run_tiny_case(name, out_root)
    return 0


if __name__ == "__main__":
    sys.exit(main())

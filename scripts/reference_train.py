#!/usr/bin/env python3
"""The PyTorch/transformers baseline for `dp-train train`: the same recipe on the same split.

    python3 scripts/reference_train.py --model artifacts/models/all-MiniLM-L6-v2 \
        --data artifacts/data/vader-movies.tsv --split OUTPUT/split.json \
        --text-column text --label-column sentiment --epochs 3 --seed 42 \
        --eval-every 200 --threads 2 --output artifacts/reference/metrics.json

The recipe (../shared/docs/RECIPES.md, and dp-train's defaults): global batch 16 with
the last partial batch kept; AdamW with bias correction (torch.optim.AdamW), lr 2e-5, betas
(0.9, 0.999), eps 1e-6, weight decay 0.01 never on biases or LayerNorm weights; linear warmup
over ceil(10% of the steps) then linear decay to 0 (get_linear_schedule_with_warmup); the global
gradient norm clipped to 1.0; dropout from config.json; max length 128; a seeded shuffle each
epoch. The data order differs from dp-train's (another generator), the recipe does not.

The split file is the one dp-train writes: {"train_rows": [...], "validation_rows": [...]},
0-based data rows (header excluded) of --data. Files are read as dp-train reads them: .csv by
csv.reader, .tsv split on tabs with no quoting (quotechar=None), .jsonl/.ndjson one object a line.
"""

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup
from transformers.trainer_pt_utils import get_length_grouped_indices


def as_text(value):
    """A JSON value as dp-train's table holds it: booleans as true/false, nested values as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value) if isinstance(value, (bool, dict, list)) else str(value)


def read_rows(path):
    """The data rows of a CSV/TSV/JSONL file as dictionaries, in file order."""
    suffix = Path(path).suffix.lower()
    with open(path, newline="", encoding="utf-8-sig") as f:
        if suffix in (".jsonl", ".ndjson"):
            return [{key: as_text(value) for key, value in json.loads(line).items() if value is not None}
                    for line in f if line.strip()]
        if suffix == ".tsv":
            reader = csv.reader(f, delimiter="\t", quotechar=None)
        elif suffix == ".csv":
            reader = csv.reader(f)
        else:
            sys.exit(f"{path}: expected a .csv, .tsv or .jsonl file")
        # Blank lines are skipped, as dp-train skips them, so row indices agree.
        rows = [row for row in reader if row]
    header, body = rows[0], rows[1:]
    for number, row in enumerate(body):
        if len(row) != len(header):
            sys.exit(f"{path}: data row {number}: {len(row)} fields, header has {len(header)}")
    return [dict(zip(header, row)) for row in body]


def regression_metrics(predictions, targets):
    # Here rather than at the top, so that check_recipe_vs_pytorch.py, which borrows
    # parameter_groups, runs where SciPy is absent (the GPU machine).
    from scipy import stats

    p, t = np.asarray(predictions, dtype=np.float64), np.asarray(targets, dtype=np.float64)
    constant = np.all(p == p[0]) or np.all(t == t[0])
    return {
        "rmse": float(np.sqrt(np.mean((p - t) ** 2))),
        "mae": float(np.mean(np.abs(p - t))),
        # 0 for a constant side, where scipy gives NaN, as dp-train reports it.
        "pearson": 0.0 if constant else float(stats.pearsonr(p, t)[0]),
        "spearman": 0.0 if constant else float(stats.spearmanr(p, t)[0]),
    }


def classification_metrics(predictions, labels, num_labels):
    p, t = np.asarray(predictions), np.asarray(labels)
    confusion = np.zeros((num_labels, num_labels))
    np.add.at(confusion, (t, p), 1)
    true_counts, predicted_counts = confusion.sum(1), confusion.sum(0)
    denominators = true_counts + predicted_counts
    f1 = np.divide(2 * np.diag(confusion), denominators, out=np.zeros(num_labels), where=denominators > 0)
    present = denominators > 0
    s, c = confusion.sum(), np.trace(confusion)
    mcc_denominator = np.sqrt((s * s - predicted_counts @ predicted_counts) * (s * s - true_counts @ true_counts))
    metrics = {
        "accuracy": float(c / s),
        "macro_f1": float(f1[present].mean()),
        "mcc": float((c * s - predicted_counts @ true_counts) / mcc_denominator) if mcc_denominator > 0 else 0.0,
    }
    if num_labels == 2:
        metrics["f1"] = float(f1[1])
    return metrics


def layer_rate_scale(name, layers, decay):
    """dp-train's --layer-lr-decay: the head and pooler at lr, layer l at decay^(layers - l), the
    embeddings at decay^(layers + 1)."""
    parts = name.split(".")
    if "embeddings" in parts:
        return decay ** (layers + 1)
    if "layer" in parts and "encoder" in parts:
        return decay ** (layers - int(parts[parts.index("layer") + 1]))
    return 1.0


def parameter_groups(model, weight_decay, lr, layer_decay):
    """Decay everything but biases and LayerNorm weights, as dp-train's parameter table does, with
    one group per (learning-rate scale, decays?) pair."""
    layers = model.config.num_hidden_layers
    groups = {}
    for name, parameter in model.named_parameters():
        decays = not (name.endswith("bias") or "LayerNorm" in name)
        scale = layer_rate_scale(name, layers, layer_decay)
        groups.setdefault((scale, decays), []).append(parameter)
    decaying = [p for (_, decays), ps in groups.items() if decays for p in ps]
    others = [p for (_, decays), ps in groups.items() if not decays for p in ps]
    print(f"weight decay {weight_decay} on {len(decaying)} tensors ({sum(p.numel() for p in decaying):,} parameters); "
          f"none on {len(others)} ({sum(p.numel() for p in others):,}); {len(groups)} parameter groups")
    return [{"params": ps, "lr": lr * scale, "weight_decay": weight_decay if decays else 0.0}
            for (scale, decays), ps in groups.items()]


class PretrainedWeightDecay:
    """Zhang et al.'s pretrained weight decay, as their PriorWD wraps torch.optim.AdamW: each group's
    decay moves to this class, which pulls the parameters toward the values they start from,
    p -= lr * wd * (p - p0), before the optimizer's own (now decay-free) step."""

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.decays = [group["weight_decay"] for group in optimizer.param_groups]
        self.priors = [[p.detach().clone() for p in group["params"]] for group in optimizer.param_groups]
        for group in optimizer.param_groups:
            group["weight_decay"] = 0.0

    def step(self):
        with torch.no_grad():
            for group, decay, priors in zip(self.optimizer.param_groups, self.decays, self.priors):
                for p, prior in zip(group["params"], priors):
                    p.add_(p - prior, alpha=-group["lr"] * decay)
        self.optimizer.step()


class Mixout:
    """dp-train's --mixout, Lee et al.'s Mixout: every nn.Linear weight W is used as
    ((1 - M) W0 + M W - p W0) / (1 - p), W0 its starting value, M one draw per input column
    (`keep(name, columns)` gives it, shape (1, columns)). The forward runs through
    torch.func.functional_call with the mixed weights, so autograd carries the gradient through
    the mixture, M / (1 - p); Lee et al.'s MixLinear multiplies by M alone."""

    def __init__(self, model, p):
        self.model, self.p = model, p
        self.weights = {name + ".weight": module.weight for name, module in model.named_modules()
                        if isinstance(module, torch.nn.Linear)}
        self.starting = {name: weight.detach().clone() for name, weight in self.weights.items()}
        print(f"mixout {p}: {len(self.weights)} linear weights mixed with their starting values")

    def __call__(self, keep, **batch):
        mixed = {}
        for name, weight in self.weights.items():
            kept, w0 = keep(name, weight.shape[1]), self.starting[name]
            mixed[name] = ((1 - kept) * w0 + kept * weight - self.p * w0) / (1 - self.p)
        return torch.func.functional_call(self.model, mixed, args=(), kwargs=batch)


def reinitialise_top_layers(model, count):
    """dp-train's --reinit-layers: the top `count` layers and BertPooler drawn as transformers'
    _init_weights draws them (Zhang et al. 2020). Written out, because transformers 5 skips
    modules it has initialised once."""
    base = model.base_model
    modules = list(base.encoder.layer[len(base.encoder.layer) - count:])
    if getattr(base, "pooler", None) is not None:
        modules.append(base.pooler)
    with torch.no_grad():
        for module in (m for top in modules for m in top.modules()):
            if isinstance(module, torch.nn.Linear):
                module.weight.normal_(0.0, model.config.initializer_range)
                module.bias.zero_()
            elif isinstance(module, torch.nn.LayerNorm):
                module.weight.fill_(1.0)
                module.bias.zero_()
    print(f"re-initialised the top {count} layers" + (" and the pooler" if len(modules) > count else ""))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a Hugging Face checkpoint folder")
    parser.add_argument("--data", required=True, help="the CSV/TSV/JSONL file that dp-train trained on")
    parser.add_argument("--split", required=True, help="split.json written by dp-train")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--text-pair-column")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--task", choices=["regression", "classification"], default="regression")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--eval-every", type=int, default=0, help="evaluate every N steps (0: only at the end)")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--eval-batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--max-grad-norm", type=float, default=1.0, help="0 turns clipping off")
    parser.add_argument("--adam-eps", type=float, default=1e-6)
    parser.add_argument("--adam-betas", default="0.9,0.999")
    parser.add_argument("--dropout", type=float, help="hidden, attention and head dropout (default: config.json's)")
    parser.add_argument("--reinit-layers", type=int, default=0, help="re-initialise the pooler and the top N layers")
    parser.add_argument("--layer-lr-decay", type=float, default=1.0, help="layer-wise learning-rate decay (1: off)")
    parser.add_argument("--weight-decay-toward", choices=["zero", "pretrained"], default="zero",
                        help="pretrained: decay toward the starting weights (Zhang et al.'s pretrained weight decay)")
    parser.add_argument("--mixout", type=float, default=0.0, help="Mixout's probability (0: off; dropout then defaults to 0)")
    parser.add_argument("--group-by-length", action="store_true",
                        help="batches of similar length, as the HF Trainer's group_by_length")
    parser.add_argument("--output", help="write the final metrics here as JSON")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    rows = read_rows(args.data)
    split = json.loads(Path(args.split).read_text())
    train_rows, validation_rows = split["train_rows"], split["validation_rows"]
    for name, indices in (("train_rows", train_rows), ("validation_rows", validation_rows)):
        bad = [i for i in indices if not 0 <= i < len(rows)]
        if bad:
            sys.exit(f"{args.split}: {name} holds row {bad[0]}, but {args.data} has {len(rows)} data rows")

    regression = args.task == "regression"
    if regression:
        targets = [float(row[args.label_column]) for row in rows]
        num_labels = 1
    else:
        # dp-train's order: numeric when every training label is an integer, else by text.
        names = {rows[i][args.label_column].strip() for i in train_rows}
        numeric = all(name.lstrip("-").isdigit() for name in names)
        classes = sorted(names, key=int) if numeric else sorted(names)
        index = {label: k for k, label in enumerate(classes)}
        targets = [index.get(row[args.label_column].strip(), -1) for row in rows]
        unseen = [i for i in validation_rows if targets[i] < 0]
        if unseen:
            sys.exit(f"{args.data}: data row {unseen[0]}: label {rows[unseen[0]][args.label_column]!r} "
                     f"never occurs in training (labels: {', '.join(classes)})")
        num_labels = len(classes)

    overrides = {}
    dropout = 0.0 if args.dropout is None and args.mixout > 0 else args.dropout
    if dropout is not None:
        overrides = {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout,
                     "classifier_dropout": dropout}
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForSequenceClassification.from_pretrained(
        args.model, num_labels=num_labels, problem_type="regression" if regression else "single_label_classification",
        **overrides)
    if args.reinit_layers:
        reinitialise_top_layers(model, args.reinit_layers)

    def encode(indices):
        texts = [rows[i][args.text_column] for i in indices]
        pairs = [rows[i][args.text_pair_column] for i in indices] if args.text_pair_column else None
        batch = tokenizer(texts, pairs, truncation=True, max_length=args.max_length, padding=True, return_tensors="pt")
        label_type = torch.float32 if regression else torch.long
        batch["labels"] = torch.tensor([targets[i] for i in indices], dtype=label_type)
        return batch

    def evaluate():
        model.eval()
        outputs = []
        with torch.no_grad():
            for start in range(0, len(validation_rows), args.eval_batch_size):
                batch = encode(validation_rows[start:start + args.eval_batch_size])
                outputs.append(model(**batch).logits)
        model.train()
        logits = torch.cat(outputs)
        labels = [targets[i] for i in validation_rows]
        if regression:
            return regression_metrics(logits.squeeze(-1).tolist(), labels)
        return classification_metrics(logits.argmax(-1).tolist(), labels, num_labels)

    steps_per_epoch = math.ceil(len(train_rows) / args.batch_size)
    total_steps = steps_per_epoch * args.epochs
    warmup_steps = math.ceil(args.warmup_ratio * total_steps)
    betas = tuple(float(b) for b in args.adam_betas.split(","))
    groups = parameter_groups(model, args.weight_decay, args.lr, args.layer_lr_decay)
    optimizer = torch.optim.AdamW(groups, lr=args.lr, betas=betas, eps=args.adam_eps)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup_steps, total_steps)
    stepper = PretrainedWeightDecay(optimizer) if args.weight_decay_toward == "pretrained" else optimizer
    print(f"training: {len(train_rows)} examples, {steps_per_epoch} steps per epoch, {total_steps} steps "
          f"({warmup_steps} warmup), batch {args.batch_size}; validation: {len(validation_rows)} examples; "
          f"{args.threads} threads")

    generator = torch.Generator().manual_seed(args.seed)
    mixout = Mixout(model, args.mixout) if args.mixout > 0 else None

    def keep(name, columns):
        return torch.bernoulli(torch.full((1, columns), 1 - args.mixout), generator=generator)

    lengths = [len(tokenizer(rows[i][args.text_column], rows[i][args.text_pair_column] if args.text_pair_column else None,
                             truncation=True, max_length=args.max_length)["input_ids"]) for i in train_rows] \
        if args.group_by_length else None
    model.train()
    history, step, started, window = [], 0, time.time(), []
    for epoch in range(args.epochs):
        shuffled = get_length_grouped_indices(lengths, args.batch_size, generator=generator) if lengths \
            else torch.randperm(len(train_rows), generator=generator).tolist()
        order = [train_rows[i] for i in shuffled]
        for start in range(0, len(order), args.batch_size):
            batch = encode(order[start:start + args.batch_size])
            loss = (mixout(keep, **batch) if mixout else model(**batch)).loss
            loss.backward()
            window.append(loss.item())
            # An infinite bound measures the norm without clipping.
            bound = args.max_grad_norm if args.max_grad_norm > 0 else math.inf
            grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), bound))
            stepper.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if step % 10 == 0 or step == total_steps:
                print(f"step {step}/{total_steps} epoch {step / steps_per_epoch:.2f} loss {np.mean(window):.4f} "
                      f"lr {scheduler.get_last_lr()[0]:.3g} grad_norm {grad_norm:.3f} "
                      f"{time.time() - started:.0f}s", flush=True)
                window = []
            if (args.eval_every and step % args.eval_every == 0) or step == total_steps:
                metrics = evaluate()
                history.append({"step": step, **metrics})
                print(f"eval step {step}: " + " ".join(f"{k} {v:.4f}" for k, v in metrics.items()), flush=True)

    final = {k: v for k, v in history[-1].items() if k != "step"}
    print("final " + json.dumps(final))
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps({**final, "steps": total_steps, "seconds": time.time() - started,
                                                 "history": history}, indent=2) + "\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The whole recipe against PyTorch, step by step (a stage of scripts/test.sh).

    python3 scripts/tests/check_recipe_vs_pytorch.py --bin .build/release/dp-train \\
        --data artifacts/data/vader-movies.tsv --tokenizer-from artifacts/models/all-MiniLM-L6-v2
    ... --backend cuda   (cuda/device/run.sh on a GPU; scripts/tests/check_cuda_emulator.sh)

GoldenModelTests prove one forward and backward; AdamWTests one update. This proves what sits
between them over a run: `dp-train train --ranks 1` and a plain PyTorch loop start from the
same tiny BERT regression model (scripts/make_tiny_model.py, with a head, so that no side draws
fresh weights) and train 30 steps on the same batches of real sentences, with dropout off:

- dp-train's data order (DataSchedule: a Fisher-Yates shuffle per epoch driven by splitmix64,
  ported here), batches padded to their longest member;
- mean squared error; torch.nn.utils.clip_grad_norm_ at 1.0; torch.optim.AdamW with one group
  per (learning rate, decays?) pair, scripts/reference_train.py's parameter_groups: no decay on
  biases or LayerNorm, and the layer-wise rates of --layer-lr-decay;
- get_linear_schedule_with_warmup over ceil(10%) of the steps.

Three runs: --layer-lr-decay 0.8; --weight-decay 5 --weight-decay-toward pretrained (Zhang et
al.'s decay toward the starting weights, reference_train.py's PretrainedWeightDecay, as their
PriorWD); and --mixout 0.3 (Lee et al.'s mixture of every nn.Linear weight with its starting
value, ((1 - M) W0 + M W - p W0) / (1 - p), M one draw per input column: here through
torch.func.functional_call, so that autograd carries the gradient through the mixture, with the
columns drawn by dp-train's counter hash, ported). Every step's loss must agree within 1e-5 relative, and every tensor of the final model
within TENSOR_TOLERANCE of its largest value. The same PyTorch loop without the option must not
agree, so the check would notice the option doing nothing.
"""
import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, BertForSequenceClassification, BertModel
from transformers.utils import logging as transformers_logging

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reference_train import Mixout, PretrainedWeightDecay, parameter_groups  # noqa: E402

STEPS, BATCH, MAX_LENGTH, LR, LAYER_DECAY, SEED, ROWS = 30, 16, 48, 1e-4, 0.8, 7, 200
LOSS_TOLERANCE = 1e-5
# Float sums in another order, compounded over 30 Adam steps: Adam divides each gradient by its
# own running magnitude, so an element whose gradient is mostly rounding noise moves by up to lr
# a step on either side. The measured worst is 1.4e-6 (printed below).
TENSOR_TOLERANCE = 1e-5
MASK64 = (1 << 64) - 1


def fail(message: str) -> None:
    sys.exit(f"check_recipe_vs_pytorch: FAILED: {message}")


class SeededGenerator:
    """Sources/DPTensor/SeededGenerator.swift: splitmix64."""

    def __init__(self, seed: int):
        self.state = seed & MASK64

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)


def epoch_order(count: int, seed: int, epoch: int) -> list:
    """DataSchedule.order(epoch:) and seededPermutation."""
    generator = SeededGenerator(seed ^ ((epoch * 0x9E3779B97F4A7C15) & MASK64))
    order = list(range(count))
    for i in range(count - 1, 0, -1):
        j = generator.next() % (i + 1)
        order[i], order[j] = order[j], order[i]
    return order


def split_mix(value: int) -> int:
    """splitMix in Sources/DPBackend/CPU/Dropout.swift."""
    return SeededGenerator(value).next()


def mixout_columns(name: str, columns: int, p: float, seed: int, step: int) -> torch.Tensor:
    """The columns dp-train keeps (1) or replaces (0) in weight `name` at `step`: the site is FNV-1a
    of the name (Mixout.swift), the mask dropout's hash over the columns of example 0."""
    site = 0xCBF29CE484222325
    for byte in name.encode():
        site = ((site ^ byte) * 0x100000001B3) & MASK64
    example_key = split_mix(split_mix(split_mix(split_mix(seed) ^ step) ^ site))
    threshold = round(float(torch.tensor(p, dtype=torch.float32)) * 65536)
    keep = []
    for column in range(columns):
        bits = split_mix((example_key + (column >> 2) * 0xD1B54A32D192ED03) & MASK64)
        keep.append(1.0 if (bits >> ((column & 3) * 16)) & 0xFFFF >= threshold else 0.0)
    return torch.tensor(keep).unsqueeze(0)


def make_model(out: Path, tokenizer_from: Path) -> Path:
    """The tiny BERT with a regression head and no dropout, saved as a user's folder would be."""
    subprocess.run([sys.executable, str(Path(__file__).resolve().parents[1] / "make_tiny_model.py"),
                    "--tokenizer-from", str(tokenizer_from), "--out", str(out / "base")], check=True,
                   capture_output=True)
    base = BertModel.from_pretrained(out / "base")
    config = base.config
    config.num_labels, config.problem_type = 1, "regression"
    config.hidden_dropout_prob = config.attention_probs_dropout_prob = 0.0
    torch.manual_seed(SEED)
    model = BertForSequenceClassification(config)
    model.bert.load_state_dict(base.state_dict())
    model.save_pretrained(out / "model")
    for name in (out / "base").iterdir():
        if name.suffix in (".json", ".txt") and name.name != "config.json":
            shutil.copy(name, out / "model" / name.name)
    return out / "model"


# (what, dp-train's options, PyTorch's run, PyTorch's run without the option)
CASES = [
    ("--layer-lr-decay 0.8", ["--layer-lr-decay", "0.8"], dict(layer_decay=0.8), dict()),
    ("pretrained weight decay", ["--weight-decay", "5", "--weight-decay-toward", "pretrained"],
     dict(weight_decay=5.0, toward="pretrained"), dict(weight_decay=5.0)),
    ("--mixout 0.3", ["--mixout", "0.3"], dict(mixout=0.3), dict()),
]


def torch_run(model_dir: Path, texts: list, targets: list, layer_decay: float = 1.0, weight_decay: float = 0.01,
              toward: str = "zero", mixout: float = 0.0) -> tuple:
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = BertForSequenceClassification.from_pretrained(model_dir)
    model.train()
    optimizer = torch.optim.AdamW(parameter_groups(model, weight_decay, LR, layer_decay), lr=LR, betas=(0.9, 0.999),
                                  eps=1e-6)
    stepper = PretrainedWeightDecay(optimizer) if toward == "pretrained" else optimizer
    warmup = math.ceil(0.1 * STEPS)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda k: k / warmup if k < warmup else max(0.0, (STEPS - k) / (STEPS - warmup)))
    key_biases = [p for name, p in model.named_parameters() if name.endswith("attention.self.key.bias")]
    steps_per_epoch = math.ceil(len(texts) / BATCH)
    mixture = Mixout(model, mixout) if mixout else None
    losses = []
    for step in range(STEPS):
        order = epoch_order(len(texts), SEED, step // steps_per_epoch)
        start = (step % steps_per_epoch) * BATCH
        batch = order[start:start + BATCH]
        encoded = tokenizer([texts[i] for i in batch], truncation=True, max_length=MAX_LENGTH, padding=True,
                            return_tensors="pt")
        labels = torch.tensor([targets[i] for i in batch])
        if mixture:
            def keep(name: str, columns: int) -> torch.Tensor:
                return mixout_columns(name.removeprefix("bert."), columns, mixout, SEED, step)
            loss = mixture(keep, **encoded, labels=labels).loss
        else:
            loss = model(**encoded, labels=labels).loss
        loss.backward()
        # Softmax makes the key bias's gradient exactly 0; dp-train stores that 0 rather than
        # the round-off PyTorch leaves, which Adam would amplify into lr-sized steps.
        for p in key_biases:
            p.grad.zero_()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        stepper.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return losses, {name: p.detach() for name, p in model.named_parameters()}


def worst_tensor_error(ours: dict, theirs: dict) -> tuple:
    errors = {name: float((ours[name] - p).abs().max() / max(float(p.abs().max()), 1e-30)) for name, p in theirs.items()}
    name = max(errors, key=errors.get)
    return errors[name], name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="a TSV with text and sentiment columns")
    parser.add_argument("--tokenizer-from", type=Path, required=True)
    parser.add_argument("--backend", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    transformers_logging.disable_progress_bar()
    work = Path(tempfile.mkdtemp(prefix="dp-train-recipe-"))
    try:
        model_dir = make_model(work, args.tokenizer_from)
        lines = args.data.read_text(encoding="utf-8").splitlines()[:ROWS + 1]
        (work / "train.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        header = lines[0].split("\t")
        rows = [dict(zip(header, line.split("\t"))) for line in lines[1:]]
        texts, targets = [row["text"] for row in rows], [float(row["sentiment"]) for row in rows]

        for what, options, torch_options, contrast in CASES:
            output = work / f"run-{len(options)}-{options[-1]}"
            command = [str(args.bin), "train", "--ranks", "1", "--threads", "1", "--model", str(model_dir),
                       "--train", str(work / "train.tsv"), "--text-column", "text", "--label-column", "sentiment",
                       "--max-length", str(MAX_LENGTH), "--max-steps", str(STEPS), "--lr", str(LR), "--seed", str(SEED),
                       "--dropout", "0", *options, "--log-every", "1", "--backend", args.backend, "--output", str(output)]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                fail(f"{what}: dp-train exited {result.returncode}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
            records = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
            ours = [r["loss"] for r in records if r["type"] == "train"]
            clipped = sum(r["grad_norm"] > 1 for r in records if r["type"] == "train")
            saved = load_file(output / f"checkpoint-{STEPS}" / "model.safetensors")

            theirs, parameters = torch_run(model_dir, texts, targets, **torch_options)
            if len(ours) != STEPS:
                fail(f"{what}: dp-train logged {len(ours)} steps, expected {STEPS}")
            step_errors = [abs(a / b - 1) for a, b in zip(ours, theirs)]
            worst_step = max(range(STEPS), key=lambda s: step_errors[s])
            if step_errors[worst_step] > LOSS_TOLERANCE:
                fail(f"{what}: step {worst_step + 1}: loss {ours[worst_step]} against PyTorch's {theirs[worst_step]}")
            missing = sorted(set(parameters) - set(saved))
            if missing:
                fail(f"{what}: the checkpoint lacks {missing[:3]}")
            error, name = worst_tensor_error(saved, parameters)
            if error > TENSOR_TOLERANCE:
                fail(f"{what}: {name}: normalised error {error:.2e} after {STEPS} steps (limit {TENSOR_TOLERANCE:.0e})")
            print(f"{args.backend}, {what}: {STEPS} steps against PyTorch: losses within {step_errors[worst_step]:.1e} "
                  f"({theirs[0]:.4f} to {theirs[-1]:.4f}; clipped in {clipped} steps), every tensor within {error:.1e} "
                  f"(worst {name})")

            _, without = torch_run(model_dir, texts, targets, **contrast)
            unlike, name = worst_tensor_error(saved, without)
            if unlike <= 100 * TENSOR_TOLERANCE:
                fail(f"{what}: PyTorch without it also agrees with dp-train ({unlike:.1e} at {name})")
            print(f"  without it PyTorch ends {unlike:.1e} away ({name}): the option takes effect")
        print("check_recipe_vs_pytorch: passed")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

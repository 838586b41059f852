#!/usr/bin/env python3
"""End-to-end checks of `dp-train train` with real MPI processes (a stage of scripts/test.sh).

    python3 scripts/tests/check_trainer.py --bin .build/release/dp-train --data artifacts/data/vader-movies.tsv
    python3 scripts/tests/check_trainer.py ... --backend cuda --sections 1,8,11   (cuda/device/run.sh, on a GPU)

A tiny BERT (scripts/make_tiny_model.py) with MiniLM's real tokenizer trains on real sentences.
Each check exits non-zero with a message naming what differed:
  1. rank-count invariance: 20 steps with --ranks 1, mpirun -np 2 and mpirun -np 4 give per-step
     losses and final parameters equal within 1e-5 relative; so do --ranks 2 (self-launch under
     mpirun) and micro-batches of 3 on one and on two ranks; the gradient buckets overlapped with
     backward (the default) give exactly what one allreduce after backward gives;
  2. --check proves that 4 ranks hold identical parameters;
  3. resume: deleting the last checkpoint and rerunning with --resume reproduces the uninterrupted
     run's losses and parameters exactly on the same rank count, and within 1e-5 on another;
  4. SIGTERM to one process, and SIGUSR1 to mpirun (which forwards it to every rank, as Slurm's
     --signal does): the ranks stop after the same step and exit 75 with a checkpoint written,
     and --resume ends identical to an uninterrupted run;
  5. non-finite steps: an absurd learning rate makes the loss non-finite; the steps are skipped
     with a warning and the run stops after 5 in a row with one clear error;
  6. evaluate and predict on the final checkpoint agree with training's last evaluation; an
     ensemble of two checkpoints predicts their mean, and evaluate scores that mean; for
     classification, one model twice scores as itself and an ensemble's accuracy is predict's
     soft vote's;
  7. --config FILE (YAML) gives the same run as the command line, which overrides it; an unknown
     key names the key and the file; --keep K keeps the newest K checkpoints plus the best;
     --log-layer-grad-norms logs per-layer norms that make up the global norm; --evals-per-epoch 2
     evaluates twice an epoch;
  8. --precision bf16 and tf32 against fp32 over 200 steps: every 20-step window's mean loss within
     1% of fp32's, the curves not identical (the rounding took effect), and tf32 (10 mantissa
     bits) closer to fp32 than bf16 (7 bits) by the median step;
  9. --reinit-layers 1 --layer-lr-decay 0.8 --weight-decay-toward pretrained --mixout 0.2:
     mpirun -np 2 agrees with --ranks 1 within 1e-5, the losses differ from a run without them,
     --resume reproduces the uninterrupted run exactly (the starting weights, which the decay and
     Mixout pull toward, come back from optimizer.safetensors), and resuming with another
     --layer-lr-decay, --weight-decay-toward or --mixout is refused with one line;
 10. --folds 3 --fold K: the three runs' validation rows (split.json) partition the data, and
     resuming with another fold is refused with one line naming the split;
 11. --pooling attention and --pooling weighted_layers --pooled-layers 2: mpirun -np 2 agrees
     with --ranks 1 within 5e-5, --resume reproduces the uninterrupted run exactly, `evaluate` on
     the saved checkpoint, which records the head in config.json, reproduces training's final
     evaluation, and --pooled-layers past the model's hidden states is refused in one line;
 12. --group-by-length: mpirun -np 2 agrees with --ranks 1 within 1e-5, the batches' mean lengths
     fall step by step through the first megabatch (they do not in a plain run), --resume is
     exact, and resuming without the option is refused with one line; --early-stopping-patience:
     with a threshold no change can pass, patience 2 stops after the third evaluation on 1 and
     on 2 ranks with a checkpoint there, and --resume then trains nothing; with threshold 0 the
     run stops exactly where the HF Trainer's EarlyStoppingCallback rule, applied to its own
     evaluations, says; an unknown --metric-for-best is refused with one line.
"""
import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

REPO = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-5  # relative, per step loss and per tensor (max |a-b| / max |b|)
# The attention head's dense bias sums its tokens' score gradients, which cancel (softmax's sum
# to zero), so Adam's normalised steps magnify round-off: 0.8-1.2e-5 across 2, 3 and 4 ranks
# and micro-batches, where every other tensor stays near 1e-6. A sharding mistake is O(1e-2).
HEAD_TOLERANCE = 5e-5


def fail(message: str) -> None:
    sys.exit(f"check_trainer: FAILED: {message}")


class Runner:
    def __init__(self, binary: Path, model: Path, data: Path, work: Path, backend: str = "cpu"):
        self.binary, self.model, self.data, self.work, self.backend = binary, model, data, work, backend

    def train_args(self, output: Path, *extra: str) -> list:
        return [str(self.binary), "train", "--model", str(self.model), "--train", str(self.data),
                "--text-column", "text", "--label-column", "sentiment", "--validation-fraction", "0.05",
                "--max-steps", "20", "--log-every", "1", "--eval-every", "10", "--save-every", "10",
                "--keep", "5", "--max-length", "48", "--threads", "1", "--backend", self.backend,
                "--output", str(output), *extra]

    def run(self, name: str, command: list, expect_rc: int = 0) -> subprocess.CompletedProcess:
        started = time.time()
        result = subprocess.run(command, capture_output=True, text=True)
        print(f"  {name}: exit {result.returncode} in {time.time() - started:.1f} s")
        if result.returncode != expect_rc:
            fail(f"{name}: exit status {result.returncode}, expected {expect_rc}\n"
                 f"command: {' '.join(command)}\nstdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}")
        return result

    def mpirun(self, ranks: int) -> list:
        return ["mpirun", "-np", str(ranks), "--oversubscribe", "--bind-to", "none"]


def without(options: list, *names: str) -> list:
    """`options` less each named option and the value after it."""
    for name in names:
        at = options.index(name)
        options = options[:at] + options[at + 2:]
    return options


def single_error_line(name: str, result: subprocess.CompletedProcess, expected: str) -> str:
    """The one line a refused run printed, which must contain `expected`."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if len(lines) != 1 or expected not in lines[0]:
        fail(f"{name}: expected one error line containing {expected!r}, got:\n{result.stderr}")
    return lines[0]


def held_out_rows(run: Path, data: Path, out: Path) -> tuple:
    """Writes the rows a run held out (its split.json) to `out`, with the header; returns the
    split, the data's lines and `out`."""
    split = json.loads((run / "split.json").read_text())
    lines = data.read_text(encoding="utf-8").splitlines()
    out.write_text("\n".join([lines[0]] + [lines[1 + row] for row in split["validation_rows"]]) + "\n", encoding="utf-8")
    return split, lines, out


def metric_records(output: Path) -> list:
    """metrics.jsonl's complete lines. A run still writing (the checks poll it) or killed
    mid-write can leave a last line without its newline, which is not a record yet."""
    text = (output / "metrics.jsonl").read_text()
    return [json.loads(line) for line in text[:text.rfind("\n") + 1].splitlines()]


def losses(output: Path) -> dict:
    return {r["step"]: r["loss"] for r in metric_records(output) if r["type"] == "train"}


def evaluations(output: Path) -> list:
    records = metric_records(output)
    return [r for r in records if r["type"] == "eval"]


def parameters(output: Path, step: int) -> dict:
    return load_file(str(output / f"checkpoint-{step}" / "model.safetensors"))


class CheckFailed(Exception):
    """A check that did not hold. The scripts that run several checks catch it and go on."""


def agreement(name: str, a: Path, b: Path, tolerance: float, steps: int = 20) -> str:
    """Per-step losses and the final checkpoint's tensors of two runs, within `tolerance`
    relative (0: identical bits); says how close they were, or raises CheckFailed."""
    la, lb = losses(a), losses(b)
    if sorted(la) != list(range(1, steps + 1)) or sorted(lb) != list(range(1, steps + 1)):
        raise CheckFailed(f"{name}: expected train records for steps 1-{steps}, got {sorted(la)} and {sorted(lb)}")
    for step in la:
        if not np.isfinite(la[step]) or abs(la[step] - lb[step]) > tolerance * abs(lb[step]):
            raise CheckFailed(f"{name}: step {step} loss {la[step]!r} vs {lb[step]!r}")
    pa, pb = parameters(a, steps), parameters(b, steps)
    if pa.keys() != pb.keys():
        raise CheckFailed(f"{name}: checkpoints hold different tensors")
    worst = 0.0
    for key in pa:
        scale = float(np.max(np.abs(pb[key]))) or 1.0
        error = float(np.max(np.abs(pa[key] - pb[key]))) / scale
        if not np.isfinite(error) or error > tolerance:
            raise CheckFailed(f"{name}: tensor {key} differs by {error:.3g} (relative), tolerance {tolerance}")
        worst = max(worst, error)
    return f"{steps} step losses and {len(pa)} tensors agree (worst tensor error {worst:.2e})"


def compare(name: str, a: Path, b: Path, tolerance: float, steps: int = 20) -> None:
    """agreement(), printed; a failure ends this script."""
    try:
        print(f"  {name}: {agreement(name, a, b, tolerance, steps)}")
    except CheckFailed as failure:
        fail(str(failure))


def check_arguments(doc: str, model_option: str = "--tokenizer-from") -> argparse.ArgumentParser:
    """The options of every check script: the dp-train binary, the data, and the MiniLM folder."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True, type=Path)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument(model_option, type=Path, default=REPO / "artifacts/models/all-MiniLM-L6-v2")
    return parser


def make_tiny_model(out: Path, tokenizer_from: Path) -> Path:
    """A tiny BERT with the real model's tokenizer (scripts/make_tiny_model.py) in `out`."""
    subprocess.run([sys.executable, str(REPO / "scripts/make_tiny_model.py"), "--tokenizer-from", str(tokenizer_from),
                    "--out", str(out)], check=True, capture_output=True)
    return out


def main() -> None:
    parser = check_arguments(__doc__)
    parser.add_argument("--backend", default="cpu", choices=["cpu", "cuda"],
                        help="cuda: every run on the GPU (ranks share it), e.g. --backend cuda --sections 1,8")
    parser.add_argument("--sections", default="1,2,3,4,5,6,7,8,9,10,11,12", help="which numbered checks to run")
    args = parser.parse_args()
    try:
        sections = {int(n) for n in args.sections.split(",")}
    except ValueError:
        parser.error(f"--sections: expected comma-separated numbers, got {args.sections!r}")
    if sections - set(range(1, 13)):
        parser.error(f"--sections: there is no section {', '.join(map(str, sorted(sections - set(range(1, 13)))))}; they are 1-12")
    if sections & {2, 3, 6} and 1 not in sections:
        parser.error("--sections: sections 2, 3 and 6 reuse section 1's runs, so they need section 1 too")

    work = Path(tempfile.mkdtemp(prefix="dp-train-check-"))
    try:
        model = make_tiny_model(work / "tiny", args.tokenizer_from)
        r = Runner(args.bin.resolve(), model, args.data, work, args.backend)
        # The CUDA embedding backward adds with atomics, in a different order on every run, so
        # the checks that are exact on the CPU hold there to the rank-count tolerance.
        exact = 0.0 if args.backend == "cpu" else TOLERANCE

        if 1 in sections:
            print("1. rank-count invariance")
            r.run("--ranks 1", r.train_args(work / "r1"))
            r.run("mpirun -np 2", r.mpirun(2) + r.train_args(work / "np2"))
            r.run("mpirun -np 4 --check", r.mpirun(4) + r.train_args(work / "np4", "--check"))
            r.run("--ranks 2 (self-launch)", r.train_args(work / "self2", "--ranks", "2"))
            r.run("--ranks 1 --micro-batch-size 3", r.train_args(work / "micro", "--micro-batch-size", "3"))
            r.run("mpirun -np 2 --overlap-allreduce false", r.mpirun(2) + r.train_args(work / "np2-sync", "--overlap-allreduce", "false"))
            r.run("mpirun -np 2 --micro-batch-size 3", r.mpirun(2) + r.train_args(work / "np2-micro", "--micro-batch-size", "3"))
            compare("np2 vs ranks 1", work / "np2", work / "r1", TOLERANCE)
            compare("np4 vs ranks 1", work / "np4", work / "r1", TOLERANCE)
            compare("self-launched 2 vs ranks 1", work / "self2", work / "r1", TOLERANCE)
            compare("micro-batches vs whole shard", work / "micro", work / "r1", TOLERANCE)
            # Two ranks sum in the same order whether the buckets go during backward or after it.
            compare("np2 overlapped vs one allreduce after backward", work / "np2", work / "np2-sync", exact)
            compare("np2 micro-batches (buckets sent in the last one) vs ranks 1", work / "np2-micro", work / "r1", TOLERANCE)

        if 2 in sections:
            print("2. --check")
            log = r.run("np4 --check again", r.mpirun(4) + r.train_args(work / "check4", "--check", "--max-steps", "2"))
            if "parameters identical on all 4 rank(s)" not in log.stdout:
                fail(f"--check printed no confirmation for 4 ranks:\n{log.stdout[-2000:]}")
            print("  --check: parameters identical on all 4 ranks")

        if 3 in sections:
            print("3. resume")
            for name, launcher in [("resume-same", []), ("resume-np2", r.mpirun(2))]:
                shutil.copytree(work / "r1", work / name)
                shutil.rmtree(work / name / "checkpoint-20")
                r.run(f"{name}: --resume from checkpoint-10", launcher + r.train_args(work / name, "--resume"))
            compare("resume on 1 rank vs uninterrupted", work / "resume-same", work / "r1", exact)
            compare("resume on 2 ranks vs uninterrupted 1 rank", work / "resume-np2", work / "r1", TOLERANCE)

        if 4 in sections:
            print("4. stop signals")
            long = ["--max-steps", "200", "--save-every", "1000", "--eval-every", "1000"]
            for name, launcher, number in [("SIGTERM to --ranks 1", [], signal.SIGTERM),
                                           ("SIGUSR1 to mpirun -np 2", r.mpirun(2), signal.SIGUSR1)]:
                reference, output = work / f"long-{number}", work / f"stopped-{number}"
                r.run(f"{name}: uninterrupted", launcher + r.train_args(reference, *long))
                process = subprocess.Popen(launcher + r.train_args(output, *long),
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                deadline = time.time() + 120
                while time.time() < deadline and process.poll() is None and len(
                        losses(output) if (output / "metrics.jsonl").exists() else {}) < 20:
                    time.sleep(0.02)
                process.send_signal(number)
                stdout, stderr = process.communicate(timeout=60)
                stopped = sorted(losses(output))
                if process.returncode != 75 or not stopped or stopped[-1] >= 200:
                    fail(f"{name}: exit {process.returncode} after step {stopped[-1] if stopped else None}, "
                         f"expected 75 before step 200\n{stdout[-2000:]}\n{stderr[-2000:]}")
                if not (output / f"checkpoint-{stopped[-1]}" / "trainer_state.json").exists():
                    fail(f"{name}: no checkpoint-{stopped[-1]} after stopping at step {stopped[-1]}")
                print(f"  {name}: stopped after step {stopped[-1]} with exit 75 and a checkpoint")
                r.run(f"{name}: --resume", launcher + r.train_args(output, *long, "--resume"))
                compare(f"{name}: stopped and resumed vs uninterrupted", output, reference, exact, steps=200)

        if 5 in sections:
            print("5. non-finite steps")
            bad = r.run("--lr 1e30", r.train_args(work / "nan", "--lr", "1e30", "--warmup-ratio", "0"), expect_rc=1)
            errors = [line for line in bad.stderr.splitlines() if line.startswith("Error:")]
            if len(errors) != 1 or "NaN or infinite 5 steps in a row" not in errors[0] or "skipped the update" not in bad.stderr:
                fail(f"non-finite: expected skipped-step warnings and one error line, got:\n{bad.stderr[-2000:]}")
            print(f"  {errors[0]}")

        if 6 in sections:
            print("6. evaluate and predict")
            split, lines, validation = held_out_rows(work / "r1", args.data, work / "validation.tsv")
            checkpoint = work / "r1" / "checkpoint-20"
            evaluated = r.run("evaluate", [str(r.binary), "evaluate", "--model", str(checkpoint), "--data", str(validation),
                                           "--text-column", "text", "--label-column", "sentiment", "--max-length", "48"])
            metrics = json.loads(evaluated.stdout.strip().splitlines()[-1])
            final = evaluations(work / "r1")[-1]
            for key in ("rmse", "mae", "pearson", "spearman"):
                if abs(metrics[key] - final[key]) > 1e-5 * max(1.0, abs(final[key])):
                    fail(f"evaluate: {key} {metrics[key]} differs from training's final evaluation {final[key]}")
            predictions = work / "predictions.csv"
            r.run("predict", [str(r.binary), "predict", "--model", str(checkpoint), "--data", str(validation),
                              "--text-column", "text", "--id-column", "id", "--max-length", "48", "--output", str(predictions)])
            rows = predictions.read_text().splitlines()
            if rows[0] != "id,prediction" or len(rows) != len(split["validation_rows"]) + 1:
                fail(f"predict: expected a header and {len(split['validation_rows'])} rows, got {len(rows)} lines")
            predicted = np.array([float(row.split(",")[1]) for row in rows[1:]])
            targets = np.array([float(lines[1 + row].split("\t")[1]) for row in split["validation_rows"]])
            rmse = float(np.sqrt(np.mean((predicted - targets) ** 2)))
            if abs(rmse - final["rmse"]) > 1e-4 * max(1.0, final["rmse"]):
                fail(f"predict: the predictions' RMSE {rmse} differs from training's final evaluation {final['rmse']}")
            print(f"  evaluate and predict agree with training's final evaluation (rmse {final['rmse']:.4f})")
            single = {}
            for step in (10, 20):
                out = work / f"predictions-{step}.csv"
                r.run(f"predict checkpoint-{step}", [str(r.binary), "predict", "--model", str(work / "r1" / f"checkpoint-{step}"),
                                                   "--data", str(validation), "--max-length", "48", "--output", str(out)])
                single[step] = np.array([float(row.split(",")[1]) for row in out.read_text().splitlines()[1:]])
            ensemble = work / "predictions-ensemble.csv"
            r.run("predict, an ensemble of checkpoints 10 and 20",
                  [str(r.binary), "predict", "--model", str(work / "r1" / "checkpoint-10"), "--model",
                   str(work / "r1" / "checkpoint-20"), "--data", str(validation), "--max-length", "48", "--output", str(ensemble)])
            averaged = np.array([float(row.split(",")[1]) for row in ensemble.read_text().splitlines()[1:]])
            if np.abs(averaged - (single[10] + single[20]) / 2).max() > 1e-6 * np.abs(averaged).max():
                fail("predict with two --model folders: the predictions are not the mean of the two models'")
            print("  predict with two --model folders writes the mean of their predictions")
            scored = r.run("evaluate, the same ensemble", [
                str(r.binary), "evaluate", "--model", str(work / "r1" / "checkpoint-10"), "--model",
                str(work / "r1" / "checkpoint-20"), "--data", str(validation), "--text-column", "text",
                "--label-column", "sentiment", "--max-length", "48"])
            ensemble_rmse = json.loads(scored.stdout.strip().splitlines()[-1])["rmse"]
            expected_rmse = float(np.sqrt(np.mean((averaged - targets) ** 2)))
            if abs(ensemble_rmse - expected_rmse) > 1e-5 * max(1.0, expected_rmse):
                fail(f"evaluate with two --model folders: rmse {ensemble_rmse}, but their mean predictions score {expected_rmse}")
            print(f"  evaluate with two --model folders scores their mean predictions (rmse {ensemble_rmse:.4f})")
            # Classification: the sentences labelled by the sign of their rating.
            rows = [line.split("\t") for line in lines[1:401]]
            polarity = work / "polarity.tsv"
            polarity.write_text("id\ttext\tpolarity\n" + "".join(
                f"{row[0]}\t{row[2]}\t{'pos' if float(row[1]) > 0 else 'neg'}\n" for row in rows), encoding="utf-8")
            r.run("classification run", without(r.train_args(work / "polarity", "--lr", "1e-3"), "--train", "--label-column",
                                                 "--validation-fraction")
                  + ["--train", str(polarity), "--validation", str(polarity), "--label-column", "polarity"])
            folders = [str(work / "polarity" / f"checkpoint-{step}") for step in (10, 20)]
            def score(*models: str) -> dict:
                command = [str(r.binary), "evaluate", "--data", str(polarity), "--label-column", "polarity", "--max-length", "48"]
                for model in models:
                    command += ["--model", model]
                return json.loads(r.run(f"evaluate {len(models)} model(s)", command).stdout.strip().splitlines()[-1])
            alone, twice = score(folders[1]), score(folders[1], folders[1])
            if abs(twice["loss"] - alone["loss"]) > 1e-6 * alone["loss"] or twice["accuracy"] != alone["accuracy"]:
                fail(f"evaluate with one model twice: {twice}, alone: {alone}")
            voted = work / "polarity-ensemble.csv"
            r.run("predict, the classification ensemble", [str(r.binary), "predict", "--model", folders[0], "--model",
                                                         folders[1], "--data", str(polarity), "--id-column", "id",
                                                         "--max-length", "48", "--output", str(voted)])
            truth = {row[0]: ("pos" if float(row[1]) > 0 else "neg") for row in rows}
            votes = [line.split(",") for line in voted.read_text().splitlines()[1:]]
            accuracy = sum(truth[id] == label for id, label in votes) / len(votes)
            both = score(*folders)
            if abs(both["accuracy"] - accuracy) > 1e-12:
                fail(f"evaluate's ensemble accuracy {both['accuracy']} differs from predict's votes' {accuracy}")
            print(f"  classification: one model twice scores as itself (loss {alone['loss']:.4f}); the ensemble's "
                  f"accuracy {accuracy:.4f} is predict's soft vote's")

        if 7 in sections:
            print("7. config file, and --keep")
            config = work / "run.yaml"
            options = r.train_args(work / "unused")[2:]
            pairs = dict(zip(options[0::2], options[1::2]))
            pairs.pop("--output")
            pairs["--max-steps"] = "7"  # overridden on the command line below
            config.write_text("# the scenario's options, as a user would write them\n" + "".join(
                f"{key[2:].replace('-', '_')}: {value}\n" for key, value in pairs.items()), encoding="utf-8")
            r.run("--config run.yaml --max-steps 20", [str(r.binary), "train", "--config", str(config), "--max-steps", "20",
                                                        "--output", str(work / "config")])
            compare("config file vs command line", work / "config", work / "r1", exact)
            config.write_text(config.read_text() + "learning_rate: 0.1\n", encoding="utf-8")
            bad = r.run("unknown config key", [str(r.binary), "train", "--config", str(config), "--output",
                                               str(work / "config-bad")], expect_rc=1)
            if "learning_rate" not in bad.stderr or str(config) not in bad.stderr:
                fail(f"unknown config key: the error names neither the key nor the file:\n{bad.stderr}")
            print(f"  unknown config key: {bad.stderr.strip().splitlines()[0]}")
            r.run("--keep 1 --save-every 5", r.train_args(work / "keep", "--keep", "1", "--save-every", "5",
                                                          "--eval-every", "5", "--metric-for-best", "pearson"))
            state = json.loads((work / "keep" / "checkpoint-20" / "trainer_state.json").read_text())
            kept = sorted(int(p.name.split("-")[1]) for p in (work / "keep").glob("checkpoint-*"))
            if kept != sorted({20, state["best_step"]}):
                fail(f"--keep 1: kept checkpoints {kept}, expected the newest (20) and the best ({state['best_step']})")
            print(f"  --keep 1: kept {kept} (newest, and best by pearson)")
            r.run("--log-layer-grad-norms", r.train_args(work / "layers", "--log-layer-grad-norms", "--max-steps", "4"))
            for record in json.loads("[" + ",".join((work / "layers" / "metrics.jsonl").read_text().split()) + "]"):
                if record["type"] != "train":
                    continue
                groups = record["layer_grad_norms"]
                total = float(np.sqrt(sum(v * v for v in groups.values())))
                if set(groups) != {"embeddings", "layer_0", "layer_1", "head"} or abs(total - record["grad_norm"]) > 1e-4 * total:
                    fail(f"--log-layer-grad-norms: step {record['step']}: {groups} do not make up grad_norm {record['grad_norm']}")
            print("  --log-layer-grad-norms: the per-layer norms make up the global norm at every step")
            head = work / "head-64.tsv"
            head.write_text("\n".join(args.data.read_text(encoding="utf-8").splitlines()[:65]) + "\n", encoding="utf-8")
            options = r.train_args(work / "evals", "--train", str(head), "--epochs", "2", "--evals-per-epoch", "2")
            r.run("--evals-per-epoch 2 over 2 epochs of 4 steps", without(options, "--max-steps", "--eval-every"))
            steps = [e["step"] for e in evaluations(work / "evals")]
            if steps != [2, 4, 6, 8]:
                fail(f"--evals-per-epoch 2 with 4 steps an epoch evaluated at steps {steps}, expected [2, 4, 6, 8]")
            print(f"  --evals-per-epoch 2: evaluated at steps {steps}")

        if 8 in sections:
            print("8. --precision bf16 and tf32 against fp32, 200 steps")
            # A rate at which the tiny model's loss moves, so that rounding has something to change.
            steps = ["--max-steps", "200", "--save-every", "1000", "--eval-every", "1000", "--lr", "1e-3"]
            curves = {}
            for precision in ("fp32", "bf16", "tf32"):
                r.run(f"--precision {precision}", r.train_args(work / precision, *steps, "--precision", precision))
                recorded = losses(work / precision)
                curves[precision] = np.array([recorded[step] for step in range(1, 201)])
            reference = curves["fp32"]
            median = {}
            for precision in ("bf16", "tf32"):
                curve = curves[precision]
                if not np.all(np.isfinite(curve)):
                    fail(f"--precision {precision}: non-finite losses")
                windows = np.abs(curve.reshape(10, 20).mean(1) / reference.reshape(10, 20).mean(1) - 1)
                steps_off = np.abs(curve / reference - 1)
                median[precision] = float(np.median(steps_off))
                if windows.max() > 0.01 or median[precision] == 0:
                    fail(f"--precision {precision}: 20-step windows off fp32 by up to {windows.max():.2e} (limit 1e-2), "
                         f"median step {median[precision]:.2e} (must not be 0)")
                print(f"  {precision}: windows within {windows.max():.1e} of fp32, steps by median {median[precision]:.1e}, "
                      f"worst {steps_off.max():.1e}")
            if not median["tf32"] < median["bf16"]:
                fail(f"tf32 is no closer to fp32 than bf16: median step error {median['tf32']:.2e} vs {median['bf16']:.2e}")

        if 9 in sections:
            print("9. --reinit-layers, --layer-lr-decay, --weight-decay-toward pretrained and --mixout")
            # A decay strong enough to move the weights in 20 steps. Mixout would turn dropout off,
            # and without dropout some of the tiny model's bias gradients cancel to round-off, which
            # Adam magnifies: np2 and --ranks 1 then end 3.2e-5 apart with no option at all.
            layered = ["--reinit-layers", "1", "--layer-lr-decay", "0.8", "--weight-decay", "20",
                       "--weight-decay-toward", "pretrained", "--mixout", "0.2", "--dropout", "0.1"]
            r.run("--ranks 1", r.train_args(work / "layers-r1", *layered))
            r.run("mpirun -np 2", r.mpirun(2) + r.train_args(work / "layers-np2", *layered))
            compare("np2 vs ranks 1", work / "layers-np2", work / "layers-r1", TOLERANCE)
            if not (work / "r1").exists():
                r.run("--ranks 1 without them", r.train_args(work / "r1"))
            plain, treated = losses(work / "r1"), losses(work / "layers-r1")
            if max(abs(treated[step] / plain[step] - 1) for step in plain) < 1e-3:
                fail(f"--reinit-layers and --layer-lr-decay left the losses within 1e-3 of a plain run's: {treated}")
            print("  the losses differ from a plain run's")
            shutil.copytree(work / "layers-r1", work / "layers-resume")
            shutil.rmtree(work / "layers-resume" / "checkpoint-20")
            r.run("--resume from checkpoint-10", r.train_args(work / "layers-resume", *layered, "--resume"))
            compare("resumed vs uninterrupted", work / "layers-resume", work / "layers-r1", exact)
            for option, value, expected in [("--layer-lr-decay", "0.9", "--layer-lr-decay was 0.8 in the checkpoint and is 0.9 now"),
                                            ("--weight-decay-toward", "zero",
                                             "--weight-decay-toward was pretrained in the checkpoint and is zero now"),
                                            ("--mixout", "0.3", "--mixout was 0.2 in the checkpoint and is 0.3 now")]:
                changed = [value if previous == option else item
                           for previous, item in zip([None] + layered, layered)]
                bad = r.run(f"--resume with {option} {value}", r.train_args(work / "layers-resume", *changed, "--resume"),
                            expect_rc=1)
                print("  " + single_error_line(f"resume with another {option}", bad, expected))

        if 10 in sections:
            print("10. --folds and --fold")
            def fold_args(output: Path, fold: int, *extra: str) -> list:
                return without(r.train_args(output, "--folds", "3", "--fold", str(fold), *extra), "--validation-fraction")
            held_out = []
            for fold in range(3):
                r.run(f"--folds 3 --fold {fold}", fold_args(work / f"fold-{fold}", fold))
                split = json.loads((work / f"fold-{fold}" / "split.json").read_text())
                held_out.append(split["validation_rows"])
                rows = sorted(split["train_rows"] + split["validation_rows"])
                if rows != list(range(len(rows))):
                    fail(f"--fold {fold}: the train and validation rows do not make up the data")
            everything = sorted(row for rows in held_out for row in rows)
            if everything != list(range(len(everything))):
                fail("the three folds' validation rows do not partition the data")
            print(f"  the folds partition {len(everything)} rows into {', '.join(str(len(rows)) for rows in held_out)}")
            shutil.rmtree(work / "fold-0" / "checkpoint-20")
            bad = r.run("--resume fold 0's run with --fold 1", fold_args(work / "fold-0", 1, "--resume"), expect_rc=1)
            print("  " + single_error_line("resume with another fold", bad, "the validation split was fold 0 of 3, "
                                           "seed 0 in the checkpoint and is fold 1 of 3, seed 0 now"))

        if 11 in sections:
            print("11. --pooling attention and weighted_layers")
            for pooling, options in [("attention", []), ("weighted_layers", ["--pooled-layers", "2"])]:
                head = ["--pooling", pooling, *options]
                r.run(f"{pooling}: --ranks 1", r.train_args(work / f"{pooling}-r1", *head))
                r.run(f"{pooling}: mpirun -np 2", r.mpirun(2) + r.train_args(work / f"{pooling}-np2", *head))
                compare(f"{pooling}: np2 vs ranks 1", work / f"{pooling}-np2", work / f"{pooling}-r1", HEAD_TOLERANCE)
                shutil.copytree(work / f"{pooling}-r1", work / f"{pooling}-resume")
                shutil.rmtree(work / f"{pooling}-resume" / "checkpoint-20")
                r.run(f"{pooling}: --resume from checkpoint-10", r.train_args(work / f"{pooling}-resume", *head, "--resume"))
                compare(f"{pooling}: resumed vs uninterrupted", work / f"{pooling}-resume", work / f"{pooling}-r1", exact)
                checkpoint = work / f"{pooling}-r1" / "checkpoint-20"
                saved = json.loads((checkpoint / "config.json").read_text())
                if saved.get("dp_train_pooling") != pooling:
                    fail(f"{checkpoint}/config.json: dp_train_pooling is {saved.get('dp_train_pooling')!r}, not {pooling!r}")
                _, _, validation = held_out_rows(work / f"{pooling}-r1", args.data, work / f"{pooling}-validation.tsv")
                evaluated = r.run(f"{pooling}: evaluate checkpoint-20", [
                    str(r.binary), "evaluate", "--model", str(checkpoint), "--data", str(validation), "--text-column",
                    "text", "--label-column", "sentiment", "--max-length", "48"])
                metrics = json.loads(evaluated.stdout.strip().splitlines()[-1])
                final = evaluations(work / f"{pooling}-r1")[-1]
                if abs(metrics["rmse"] - final["rmse"]) > 1e-5 * max(1.0, final["rmse"]):
                    fail(f"{pooling}: evaluate's rmse {metrics['rmse']} differs from training's final evaluation {final['rmse']}")
                print(f"  {pooling}: the reloaded head reproduces training's final evaluation (rmse {final['rmse']:.4f})")
            weights = parameters(work / "weighted_layers-r1", 20)["layer_pool.weight"]
            if weights.shape != (2,) or np.all(weights == 1):
                fail(f"weighted_layers: layer_pool.weight is {weights}, expected 2 trained weights")
            bad = r.run("--pooled-layers 4 on a 2-layer model", r.train_args(
                work / "too-deep", "--pooling", "weighted_layers", "--pooled-layers", "4"), expect_rc=1)
            print("  " + single_error_line("--pooled-layers past the hidden states", bad,
                                           "there are 3 hidden states to pool"))

        if 12 in sections:
            print("12. --group-by-length and --early-stopping-patience")
            grouped = ["--group-by-length"]
            r.run("grouped: --ranks 1", r.train_args(work / "grouped-r1", *grouped))
            r.run("grouped: mpirun -np 2", r.mpirun(2) + r.train_args(work / "grouped-np2", *grouped))
            compare("grouped: np2 vs ranks 1", work / "grouped-np2", work / "grouped-r1", TOLERANCE)
            if not (work / "r1").exists():
                r.run("--ranks 1 without it", r.train_args(work / "r1"))

            def mean_lengths(output: Path) -> list:
                """Tokens per example of each logged step (--log-every 1), in step order."""
                records = sorted((x for x in metric_records(output) if x["type"] == "train"), key=lambda x: x["step"])
                return [x["tokens_per_s"] / x["examples_per_s"] for x in records]
            # The first megabatch (50 global batches here) is sorted longest first, so each of the
            # first 20 batches is no longer on average than the one before it.
            for name, run, falls in [("grouped", "grouped-r1", True), ("plain", "r1", False)]:
                lengths = mean_lengths(work / run)
                falling = all(b <= a * (1 + 1e-9) for a, b in zip(lengths, lengths[1:]))
                if falling != falls:
                    fail(f"{name}: the batches' mean lengths {'do not fall' if falls else 'fall'} step by step: "
                         + ", ".join(f"{x:.1f}" for x in lengths))
            print(f"  grouped batches' mean lengths fall step by step ({mean_lengths(work / 'grouped-r1')[0]:.1f} to "
                  f"{mean_lengths(work / 'grouped-r1')[-1]:.1f} tokens); a plain run's do not")
            shutil.copytree(work / "grouped-r1", work / "grouped-resume")
            shutil.rmtree(work / "grouped-resume" / "checkpoint-20")
            r.run("grouped: --resume from checkpoint-10", r.train_args(work / "grouped-resume", *grouped, "--resume"))
            compare("grouped: resumed vs uninterrupted", work / "grouped-resume", work / "grouped-r1", exact)
            shutil.rmtree(work / "grouped-resume" / "checkpoint-20")
            bad = r.run("grouped: --resume without --group-by-length", r.train_args(work / "grouped-resume", "--resume"),
                        expect_rc=1)
            print("  " + single_error_line("resume without --group-by-length", bad,
                                           "--group-by-length was true in the checkpoint and is false now"))

            # No improvement can exceed the threshold, so only the first evaluation sets the best.
            stopping = ["--max-steps", "40", "--eval-every", "5", "--save-every", "5", "--keep", "1",
                        "--early-stopping-patience", "2", "--early-stopping-threshold", "1000"]
            for name, output, launcher in [("patience: --ranks 1", work / "patience-r1", []),
                                           ("patience: mpirun -np 2", work / "patience-np2", r.mpirun(2))]:
                log = r.run(name, launcher + r.train_args(output, *stopping))
                steps = [e["step"] for e in evaluations(output)]
                saved = sorted(int(p.name.split("-")[1]) for p in output.glob("checkpoint-*"))
                best = json.loads((output / "checkpoint-15" / "trainer_state.json").read_text())["best_step"]
                if steps != [5, 10, 15] or max(losses(output)) != 15 or saved != sorted({15, best}):
                    fail(f"{name}: evaluated at {steps}, trained to step {max(losses(output))}, saved {saved}; expected "
                         f"evaluations at 5, 10 and 15, the stop after 15, and checkpoints 15 and {best} (the best)")
                if "early stopping: rmse has not improved" not in log.stdout or f"{output}/checkpoint-{best}" not in log.stdout:
                    fail(f"{name}: no early-stopping line naming the best checkpoint:\n{log.stdout[-2000:]}")
            compare("patience: np2 vs ranks 1", work / "patience-np2", work / "patience-r1", TOLERANCE, steps=15)
            again = r.run("patience: --resume after the stop", r.train_args(work / "patience-r1", *stopping, "--resume"))
            if "nothing left to train" not in again.stdout or max(losses(work / "patience-r1")) != 15:
                fail(f"--resume after an early stop trained on:\n{again.stdout[-2000:]}")
            print("  stopped after step 15 (evaluations at 5, 10, 15) on 1 and 2 ranks; --resume trains nothing")

            patience = 2
            r.run("patience 2, threshold 0", r.train_args(work / "patience-0", "--max-steps", "60", "--eval-every", "3",
                                                          "--lr", "1e-3", "--early-stopping-patience", str(patience)))
            # The HF Trainer's EarlyStoppingCallback.check_metric_value, applied to the run's own evaluations.
            best, counter, expected_stop = None, 0, 60
            for record in evaluations(work / "patience-0"):
                if best is None or record["rmse"] < best:
                    best, counter = record["rmse"], 0
                else:
                    counter += 1
                if counter >= patience:
                    expected_stop = record["step"]
                    break
            trained = max(losses(work / "patience-0"))
            if trained != expected_stop:
                fail(f"threshold 0: trained to step {trained}, but the evaluations say stop after step {expected_stop}")
            print(f"  threshold 0: stopped after step {trained} of 60, where EarlyStoppingCallback's rule stops")
            bad = r.run("--metric-for-best acuracy", r.train_args(work / "typo", "--metric-for-best", "acuracy"), expect_rc=1)
            print("  " + single_error_line("unknown metric", bad, "--metric-for-best acuracy: regression evaluation has no such metric"))

        print("check_trainer: all checks passed")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

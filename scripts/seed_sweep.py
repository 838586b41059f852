#!/usr/bin/env python3
"""Seed sweeps, the way Mosbach et al. 2020 and Zhang et al. 2020 judge fine-tuning stability.

    python3 scripts/seed_sweep.py run --output runs/rte --name baseline --seeds 1-5 -- \\
        --ranks 2 --model artifacts/models/all-MiniLM-L6-v2 --train RTE/train.tsv --validation RTE/dev.tsv \\
        --text-column sentence1 --text-pair-column sentence2 --eval-every 52
    python3 scripts/seed_sweep.py run --output runs/rte --name reinit2 --seeds 1-5 -- ... --reinit-layers 2
    python3 scripts/seed_sweep.py summary runs/rte --failed-at 0.5271

`run` trains once per seed into OUTPUT/NAME/seed-S (`dp-train train ARGS --seed S`), skipping
seeds whose run already finished, and passing --resume so that an interrupted sweep picks up
where it stopped. With `--folds N` it trains every fold of a stratified N-fold cross-validation
for each seed (`--folds N --fold K`, into OUTPUT/NAME/seed-S-fold-K), Kaggle's protocol; the
summary then spreads over seeds and folds together. `summary` prints, per NAME, the final and the best evaluation of the metric
that picked the best checkpoint (--metric-for-best) as std / mean / median / max over the
seeds, the statistics of Mosbach et al.'s Table 1, and with --failed-at X how many runs ended
at or below X (the majority-class score: a failed run predicts one class).
"""
import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def seeds(text: str) -> list:
    values = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        values.extend(range(int(first), int(last or first) + 1))
    return values


def final_state(run: Path):
    """trainer_state.json of the run's last checkpoint when that is its last step, else None."""
    states = [json.loads(p.read_text()) for p in run.glob("checkpoint-*/trainer_state.json")]
    done = [s for s in states if s["step"] == s["total_steps"]]
    return done[0] if done else None


def run_sweep(args) -> None:
    runs = [(seed, fold) for seed in seeds(args.seeds) for fold in (range(args.folds) if args.folds else [None])]
    for seed, fold in runs:
        name = f"seed-{seed}" + ("" if fold is None else f"-fold-{fold}")
        output = args.output / args.name / name
        if final_state(output):
            print(f"{args.name} {name}: finished already, in {output}")
            continue
        folds = [] if fold is None else ["--folds", str(args.folds), "--fold", str(fold)]
        command = [str(args.bin), "train", *args.train_args, *folds, "--seed", str(seed), "--output", str(output),
                   "--resume"]
        print(f"{args.name} {name}: {' '.join(command)}", flush=True)
        output.mkdir(parents=True, exist_ok=True)
        with open(output / "train.log", "a") as log:
            if subprocess.run(command, stdout=log, stderr=subprocess.STDOUT).returncode != 0:
                sys.exit(f"{args.name} {name}: dp-train failed; see {output / 'train.log'}")


def spread(values: list) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{std:.4f} / {statistics.mean(values):.4f} / {statistics.median(values):.4f} / {max(values):.4f}"


def summarise(args) -> None:
    print("| run | runs | metric | final: std / mean / median / max | best: std / mean / median / max |"
          + (" failed |" if args.failed_at is not None else ""))
    print("|---|---:|---|---|---|" + ("---:|" if args.failed_at is not None else ""))
    for group in sorted(p for p in args.output.iterdir() if p.is_dir()):
        finals, bests, metric = [], [], None
        for run in sorted(group.glob("seed-*")):
            state = final_state(run)
            if state is None:
                print(f"{run}: not finished; left out", file=sys.stderr)
                continue
            metric = state["metric_for_best"]
            evaluations = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
                           if '"type":"eval"' in line.replace(" ", "")]
            finals.append(max(evaluations, key=lambda e: e["step"])[metric])
            bests.append(state["best_metric"])
        if not finals:
            continue
        failed = f" {sum(value <= args.failed_at for value in finals)} |" if args.failed_at is not None else ""
        print(f"| {group.name} | {len(finals)} | {metric} | {spread(finals)} | {spread(bests)} |{failed}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="train once per seed")
    run.add_argument("--output", type=Path, required=True)
    run.add_argument("--name", required=True, help="this configuration's folder under --output")
    run.add_argument("--seeds", default="1-5", help="e.g. 1-5 or 1,3,7")
    run.add_argument("--folds", type=int, help="also train every fold of an N-fold cross-validation")
    run.add_argument("--bin", type=Path, default=REPO / ".build" / "release" / "dp-train")
    run.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then the dp-train train options")
    summary = commands.add_parser("summary", help="tabulate the finished runs")
    summary.add_argument("output", type=Path)
    summary.add_argument("--failed-at", type=float, help="count final scores at or below this as failed")
    args = parser.parse_args()
    if args.command == "run":
        if args.train_args[:1] == ["--"]:
            args.train_args = args.train_args[1:]
        if any(a in ("--seed", "--output", "--folds", "--fold") for a in args.train_args):
            parser.error("run sets --seed, --output, --folds and --fold itself")
        run_sweep(args)
    else:
        summarise(args)


if __name__ == "__main__":
    main()

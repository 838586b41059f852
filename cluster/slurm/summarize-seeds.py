#!/usr/bin/env python3
"""Summarise a seed sweep (cluster/slurm/seed-sweep.sbatch): the final evaluation of each seed,
then mean, std (over the seeds as a population, numpy's default), median, min and max, as
Mosbach et al. (2021) report them.

    python3 cluster/slurm/summarize-seeds.py runs/dp-train-seeds-1234
    python3 cluster/slurm/summarize-seeds.py runs/dp-train-seeds-1234 --metric accuracy --fail-below 0.53

A seed is unfinished when its run has not reached its last step (it crashed, or is still
running); it is left out of the statistics and listed. A finished seed whose metric is at or
past --fail-below / --fail-above (e.g. the majority-class score) counts as a failed run, and
stays in the statistics, as in the paper.
"""
import argparse
import json
import math
import statistics
import sys
from pathlib import Path


def final_evaluation(run: Path):
    """The eval record of the run's last step, with the metric the run picked its best by; None if unfinished."""
    checkpoints = sorted(run.glob("checkpoint-*/trainer_state.json"), key=lambda p: int(p.parent.name.split("-")[1]))
    if not checkpoints or not (run / "metrics.jsonl").exists():
        return None, None
    state = json.loads(checkpoints[-1].read_text())
    if state["step"] < state["total_steps"]:
        return None, None
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    evaluations = [r for r in records if r["type"] == "eval" and r["step"] == state["total_steps"]]
    return (evaluations[-1] if evaluations else None), state.get("metric_for_best")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep", type=Path, help="the sweep's folder, holding seed-<N>/ per seed")
    parser.add_argument("--metric", help="the evaluation metric to summarise; default: the runs' --metric-for-best")
    parser.add_argument("--fail-below", type=float, help="a seed at or below this value is a failed run")
    parser.add_argument("--fail-above", type=float, help="a seed at or above this value is a failed run")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()

    runs = sorted(args.sweep.glob("seed-*"), key=lambda p: int(p.name.split("-")[1]))
    if not runs:
        sys.exit(f"summarize-seeds: no seed-<N> folders in {args.sweep}")
    values, unfinished, failed = {}, [], []
    metric = args.metric
    for run in runs:
        seed = int(run.name.split("-")[1])
        evaluation, best_by = final_evaluation(run)
        if evaluation is None:
            unfinished.append(seed)
            continue
        metric = metric or best_by
        if metric not in evaluation:
            sys.exit(f"summarize-seeds: {run}'s final evaluation has no metric {metric!r} (it has {sorted(evaluation)})")
        value = float(evaluation[metric])
        values[seed] = value
        if not math.isfinite(value) or (args.fail_below is not None and value <= args.fail_below) \
                or (args.fail_above is not None and value >= args.fail_above):
            failed.append(seed)
    numbers = list(values.values())
    summary = {"metric": metric, "seeds": len(runs), "finished": len(numbers), "values": values,
               "failed": failed, "unfinished": unfinished}
    if numbers:
        summary.update(mean=statistics.fmean(numbers), std=statistics.pstdev(numbers),
                       median=statistics.median(numbers), min=min(numbers), max=max(numbers))
    if args.json:
        print(json.dumps(summary))
        return
    for seed, value in values.items():
        print(f"seed {seed:>4}  {metric} {value:.4f}{'  FAILED' if seed in failed else ''}")
    for seed in unfinished:
        print(f"seed {seed:>4}  unfinished")
    if numbers:
        print(f"{metric} over {len(numbers)} finished seed(s): mean {summary['mean']:.4f}  std {summary['std']:.4f}  "
              f"median {summary['median']:.4f}  min {summary['min']:.4f}  max {summary['max']:.4f}")
    print(f"failed runs: {len(failed)} {failed}; unfinished: {len(unfinished)} {unfinished}")


if __name__ == "__main__":
    main()

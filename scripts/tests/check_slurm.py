#!/usr/bin/env python3
"""The Slurm scripts of cluster/slurm/, submitted to a real Slurm on this machine.

    python3 scripts/tests/check_slurm.py --bin .build/release/dp-train --data artifacts/data/vader-movies.tsv

scripts/tests/slurm_cluster.sh starts munged, slurmctld and slurmd in a temporary folder (and
installs slurm-wlm and munge with apt if missing); they are stopped at the end whatever happens.
The scripts are submitted as they are, shaped to this machine's 2 CPUs only through sbatch
options and their documented environment variables, with a tiny BERT (scripts/make_tiny_model.py):
  1. the cluster is up and srun offers PMIx;
  2. single-node.sbatch (srun --mpi=pmix, 2 tasks), multi-node.sbatch (1 task of 2 CPUs: 2 BLAS
     threads) and mpirun.sbatch (mpirun, 2 tasks) complete, each with its log, and give the same
     losses and parameters as --ranks 1 within 1e-5 relative;
  3. seed-sweep.sbatch over seeds 1-3: one log and one folder per seed, each seed matching its own
     --ranks 1 run, the seeds differing, and summarize-seeds.py agreeing with the runs;
  4. preemption: USR1 to the batch shell (`scancel --batch`, as #SBATCH --signal=B:USR1 sends it)
     makes the job checkpoint, requeue itself and resume; it completes with the same per-step
     losses and parameters as an uninterrupted run on the same ranks;
  5. the real time-limit warning (--time=1 --signal=B:USR1@40) reaches the batch shell and
     requeues the job.
Each check prints one line; the first failure ends the run with a message naming it.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_trainer import (REPO, TOLERANCE, CheckFailed as Failure, agreement as compare,  # noqa: E402
                           check_arguments, losses)

SLURM = REPO / "cluster/slurm"
STEPS = 20
LONG_STEPS = 1500  # about 10 s on 2 ranks: the signal must land mid-run however late metrics.jsonl is flushed
JOB_TIMEOUT = 120  # seconds any one job may take, queueing included
SHAPE = ["--nodes=1", "--ntasks-per-node=2", "--cpus-per-task=1"]  # 2 ranks on this 2-CPU machine


def train_options(steps: int = STEPS, *extra: str) -> list:
    saves = ["--eval-every", "10", "--save-every", "10"] if steps == STEPS else ["--eval-every", "1000", "--save-every", "1000"]
    return ["--text-column", "text", "--label-column", "sentiment", "--validation-fraction", "0.05",
            "--max-steps", str(steps), "--log-every", "1", *saves, "--keep", "5", "--max-length", "48", *extra]


class Cluster:
    def __init__(self, work: Path, env: dict, logs: Path):
        self.work, self.env, self.logs = work, env, logs
        self.variables = {"DPTRAIN_REPO": str(REPO)}  # what every job is given; see checks()

    def command(self, *command: str) -> str:
        result = subprocess.run(command, capture_output=True, text=True, env=self.env, cwd=self.work)
        if result.returncode != 0:
            raise Failure(f"{' '.join(command)}: exit {result.returncode}: {(result.stderr or result.stdout).strip()}")
        return result.stdout

    def submit(self, script: str, *options: str, **variables: str) -> str:
        """sbatch from the work folder (where %x-%j.log lands), the script's variables in its environment."""
        env = dict(self.env, **self.variables, **variables)
        result = subprocess.run(["sbatch", "--parsable", *options, str(SLURM / script)],
                                capture_output=True, text=True, env=env, cwd=self.work)
        if result.returncode != 0:
            raise Failure(f"sbatch {script}: {result.stderr.strip()}")
        return result.stdout.strip().split(";")[0]

    def job(self, job: str) -> dict:
        line = self.command("scontrol", "show", "job", "--oneliner", job)
        return dict(field.split("=", 1) for field in line.split() if "=" in field)

    def wait(self, job: str, until, what: str, log: Path, timeout: float = JOB_TIMEOUT) -> dict:
        started = time.time()
        while True:
            state = self.job(job)
            if until(state):
                return state
            if state["JobState"] in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
                                     "BOOT_FAIL") \
                    or time.time() > started + timeout:
                text = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log file)"
                daemons = "".join(f"\n{name}, last lines:\n" + "\n".join(
                    (self.logs / name).read_text(errors="replace").splitlines()[-12:])
                    for name in ("slurmctld.log", "slurmd.log"))
                raise Failure(f"job {job} is {state['JobState']} (reason {state.get('Reason')}, exit "
                              f"{state.get('ExitCode')}) after {time.time() - started:.0f} s, waiting for "
                              f"{what}; {log.name}:\n{text}{daemons}")
            time.sleep(0.25)

    def completed(self, job: str, log: Path) -> dict:
        state = self.wait(job, lambda s: s["JobState"] == "COMPLETED", "COMPLETED", log)
        if not log.exists():
            raise Failure(f"job {job} COMPLETED but wrote no log {log.name}")
        return state


def run_local(name: str, command: list, env: dict) -> None:
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise Failure(f"{name}: exit {result.returncode}\ncommand: {' '.join(command)}\n{result.stderr[-3000:]}")


def checks(args, work: Path, cluster: Cluster, report) -> None:
    binary, model = str(args.bin.resolve()), work / "tiny"
    subprocess.run([sys.executable, str(REPO / "scripts/make_tiny_model.py"), "--tokenizer-from",
                    str(args.tokenizer_from), "--out", str(model)], check=True, capture_output=True)
    local = lambda output, *options: [binary, "train", "--model", str(model), "--train", str(args.data.resolve()),
                                      "--threads", "1", "--output", str(output), *options]
    cluster.variables.update(DP_TRAIN=binary, MODEL=str(model), TRAIN=str(args.data.resolve()))

    mpi = cluster.command("srun", "--mpi=list")
    if "pmix" not in mpi.split():
        raise Failure(f"srun --mpi=list offers no pmix:\n{mpi}")
    plugins = sorted(set(re.findall(r"pmix\S*", mpi)))
    report(f"cluster up; srun --mpi=list offers {', '.join(plugins)}")

    run_local("reference --ranks 1", local(work / "r1", *train_options()), cluster.env)
    for script, shape, ranks, threads in [("single-node.sbatch", SHAPE, 2, 1),
                                          ("multi-node.sbatch", ["--nodes=1", "--ntasks-per-node=1", "--cpus-per-task=2"], 1, 2),
                                          ("mpirun.sbatch", SHAPE, 2, 1)]:
        output = work / script.split(".")[0]
        job = cluster.submit(script, *shape, OUTPUT=str(output), ARGS=" ".join(train_options()))
        log = work / f"dp-train-{job}.log"
        cluster.completed(job, log)
        text = log.read_text()
        if f"ranks: {ranks}; backend cpu, rank 0 on {threads} thread(s)" not in text:
            raise Failure(f"{script}: the log does not show {ranks} rank(s) of {threads} thread(s) from "
                          f"SLURM_CPUS_PER_TASK:\n{text[-2000:]}")
        report(f"{script} ({' '.join(shape)}): COMPLETED, {log.name}, {ranks} rank(s) x {threads} thread(s); "
               + compare(f"{script} vs --ranks 1", output, work / "r1", TOLERANCE))

    seeds, sweep = [1, 2, 3], work / "sweep"
    for seed in seeds:
        run_local(f"reference --ranks 1 --seed {seed}", local(work / f"r1-seed-{seed}", *train_options(), "--seed", str(seed)),
                  cluster.env)
    array = cluster.submit("seed-sweep.sbatch", f"--array={seeds[0]}-{seeds[-1]}", *SHAPE, SWEEP=str(sweep),
                           ARGS=" ".join(train_options()))
    for seed in seeds:
        cluster.completed(f"{array}_{seed}", work / f"dp-train-seeds-{array}_{seed}.log")
        compare(f"seed {seed} vs its --ranks 1 run", sweep / f"seed-{seed}", work / f"r1-seed-{seed}", TOLERANCE)
    finals = {seed: losses(sweep / f"seed-{seed}")[STEPS] for seed in seeds}
    if len(set(finals.values())) != len(seeds):
        raise Failure(f"seed sweep: seeds {seeds} do not all differ: final losses {finals}")
    summary = json.loads(cluster.command(sys.executable, str(SLURM / "summarize-seeds.py"), str(sweep), "--json"))
    rmse = [[r for r in map(json.loads, (sweep / f"seed-{s}" / "metrics.jsonl").read_text().splitlines())
             if r["type"] == "eval" and r["step"] == STEPS][-1]["rmse"] for s in seeds]
    if summary["metric"] != "rmse" or summary["finished"] != len(seeds) or summary["unfinished"] \
            or abs(summary["mean"] - float(np.mean(rmse))) > 1e-9 or abs(summary["std"] - float(np.std(rmse))) > 1e-9:
        raise Failure(f"summarize-seeds.py: {summary} does not match the runs' final rmse {rmse}")
    report(f"seed-sweep.sbatch --array=1-3: 3 COMPLETED tasks, one log and folder each, each matching its --ranks 1 "
           f"run, final losses differ; summarize-seeds.py: rmse mean {summary['mean']:.4f} std {summary['std']:.2e}")

    long = train_options(LONG_STEPS)
    reference = work / "long-np2"
    run_local("uninterrupted mpirun -np 2", ["mpirun", "-np", "2", "--bind-to", "none"] + local(reference, *long), cluster.env)
    output = work / "preempted"
    job = cluster.submit("single-node.sbatch", *SHAPE, OUTPUT=str(output), ARGS=" ".join(long))
    log = work / f"dp-train-{job}.log"
    deadline = time.time() + JOB_TIMEOUT
    while not ((output / "metrics.jsonl").exists() and len(losses(output)) >= 20):
        if time.time() > deadline or cluster.job(job)["JobState"] not in ("PENDING", "RUNNING"):
            raise Failure(f"preemption: job {job} logged no 20 steps: {cluster.job(job)['JobState']}")
        time.sleep(0.05)
    cluster.command("scancel", "--batch", "--signal=USR1", job)
    state = cluster.wait(job, lambda s: s["Restarts"] == "1" and s["JobState"] == "PENDING", "the requeue", log)
    # Slurm holds a requeued job until its old credential expires (EligibleTime, Reason=BeginTime):
    # cred_expire + 1 s, 11 s on the test cluster, 121 s by default.
    held = time.mktime(time.strptime(state["EligibleTime"], "%Y-%m-%dT%H:%M:%S")) - time.time()
    cluster.completed(job, log)
    text = log.read_text()
    stopped = re.search(r"stopped by SIGUSR1 after step (\d+)", text)
    for expected in ["got SIGUSR1", "stopped by SIGUSR1", f"requeueing job {job}", f"job {job} (restart 0)",
                     f"job {job} (restart 1)"]:
        if expected not in text:
            raise Failure(f"preemption: {log.name} lacks {expected!r}:\n{text[-3000:]}")
    if int(stopped.group(1)) >= LONG_STEPS:
        raise Failure(f"preemption: the run finished (step {stopped.group(1)}) before the signal stopped it")
    report(f"preemption: scancel --batch --signal=USR1 stopped job {job} after step {stopped.group(1)}; it requeued "
           f"itself (Restarts=1; held {held:.0f} s more by Slurm), resumed and COMPLETED; "
           + compare("preempted vs uninterrupted", output, reference, 0.0, steps=LONG_STEPS))

    warned = work / "warned"
    job = cluster.submit("single-node.sbatch", *SHAPE, "--time=1", "--signal=B:USR1@40", OUTPUT=str(warned),
                         ARGS=" ".join(train_options(1_000_000)))
    log = work / f"dp-train-{job}.log"
    started = time.time()
    cluster.wait(job, lambda s: s["Restarts"] == "1", "the time-limit warning and the requeue", log, timeout=100)
    cluster.command("scancel", job)
    text = log.read_text()
    if "got SIGUSR1" not in text or f"requeueing job {job}" not in text:
        raise Failure(f"time-limit warning: job {job} was requeued, but not by run-preemptible.sh:\n{text[-3000:]}")
    report(f"--time=1 --signal=B:USR1@40: the warning reached the batch shell {time.time() - started:.0f} s after "
           f"submission; checkpointed after step {max(losses(warned))} and requeued")


def main() -> None:
    args = check_arguments(__doc__).parse_args()
    # A SIGTERM to this script must still stop the daemons in the finally below.
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit("check_slurm: stopped by SIGTERM"))

    work = Path(tempfile.mkdtemp(prefix="dp-train-slurm-"))
    cluster_dir = work / "cluster"
    env = dict(os.environ, SLURM_CONF=str(cluster_dir / "slurm.conf"), OMPI_ALLOW_RUN_AS_ROOT="1",
               OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1")
    passed, started = 0, time.time()

    def report(line: str) -> None:
        nonlocal passed
        passed += 1
        print(f"  ok {passed}: {line} [{time.time() - started:.0f} s]", flush=True)

    try:
        result = subprocess.run(["bash", str(REPO / "scripts/tests/slurm_cluster.sh"), "start", str(cluster_dir)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise Failure(f"slurm_cluster.sh start: {result.stderr.strip()}")
        checks(args, work, Cluster(work, env, cluster_dir / "log"), report)
    except Failure as failure:
        print(f"check_slurm: FAILED: {failure}", file=sys.stderr)
        print(f"check_slurm: {passed} passed, 1 failed")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(f"check_slurm: interrupted after {passed} passed check(s)")
    finally:
        stopped = subprocess.run(["bash", str(REPO / "scripts/tests/slurm_cluster.sh"), "stop", str(cluster_dir)],
                                 capture_output=True, text=True)
        if stopped.returncode != 0:
            print(f"check_slurm: slurm_cluster.sh stop: {stopped.stderr.strip()}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)
    print(f"check_slurm: {passed} passed, 0 failed")


if __name__ == "__main__":
    main()

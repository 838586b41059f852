#!/usr/bin/env python3
"""Faults survived, nothing lost: `dp-train train` under the failures a cluster produces.

    python3 scripts/tests/check_faults.py --bin .build/release/dp-train --data artifacts/data/vader-movies.tsv

Real MPI processes, a tiny BERT with MiniLM's tokenizer (scripts/make_tiny_model.py), real sentences:
  1. kill -9 of one rank of `mpirun -np 2` mid-run ends the whole job with a non-zero exit within
     30 s; the newest complete checkpoint is intact (`dp-train evaluate` loads it), and --resume
     from it ends identical to an uninterrupted run (every step's loss and every tensor, exactly);
  2. kill -9 while a checkpoint is being written (the real MiniLM, whose checkpoint takes long
     enough to catch): the half-written folder stays hidden, the previous checkpoint loads, and
     --resume ends identical to an uninterrupted run;
  3. a full disk during a checkpoint (the output on a small tmpfs): one clear error line naming the
     file and "No space left on device", a non-zero exit, no half-written folder, and the previous
     checkpoint intact;
  4. a rank that stalls (SIGSTOP) makes the job fail with a clear error after --collective-timeout
     seconds instead of hanging, and no process is left behind.
The closing line counts the checks, as "check_faults: N passed, N failed".
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_trainer import (CheckFailed as Failed, Runner, agreement, check_arguments, losses,  # noqa: E402
                           make_tiny_model)

KILL_DEADLINE_S = 30
STALL_TIMEOUT_S = 5
# The first 64 rows of the data, in the work folder: enough for `dp-train evaluate` to load a checkpoint.
EVALUATION_SAMPLE = "sample.tsv"


def rank_pids(launcher: subprocess.Popen) -> dict:
    """{rank: pid} of the dp-train processes that `launcher` (mpirun) started."""
    ranks = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if parent != launcher.pid:
            continue
        for variable in environ:
            if variable.startswith(b"OMPI_COMM_WORLD_RANK="):
                ranks[int(variable.split(b"=", 1)[1])] = int(entry.name)
    return ranks


def wait_for_steps(output: Path, process: subprocess.Popen, steps: int, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        if (output / "metrics.jsonl").exists() and len(losses(output)) >= steps:
            return
        time.sleep(0.05)
    process.kill()
    raise Failed(f"{output.name}: did not log {steps} steps (exit {process.poll()}): {process.communicate()[1][-2000:]}")


def complete_checkpoints(output: Path) -> list:
    return sorted(int(p.name.split("-")[1]) for p in output.glob("checkpoint-*") if p.is_dir())


def expect_loadable(r: Runner, checkpoint: Path) -> None:
    """`dp-train evaluate` reads the checkpoint's config, weights and tokenizer."""
    result = subprocess.run([str(r.binary), "evaluate", "--model", str(checkpoint), "--data", str(r.work / EVALUATION_SAMPLE),
                             "--text-column", "text", "--label-column", "sentiment", "--max-length", "16"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise Failed(f"{checkpoint} does not load: {result.stderr.strip()}")


def kill_one_rank(r: Runner, work: Path) -> str:
    reference, output = work / "kill-reference", work / "killed"
    args = ["--max-steps", "40", "--save-every", "10", "--eval-every", "1000"]
    r.run("uninterrupted, mpirun -np 2", r.mpirun(2) + r.train_args(reference, *args))
    process = subprocess.Popen(r.mpirun(2) + r.train_args(output, *args), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    wait_for_steps(output, process, 15)
    ranks = rank_pids(process)
    if 1 not in ranks:
        process.kill()
        raise Failed(f"could not find rank 1 among mpirun's children: {ranks}")
    killed_after = max(losses(output))
    killed_at = time.time()
    os.kill(ranks[1], signal.SIGKILL)
    try:
        _, stderr = process.communicate(timeout=KILL_DEADLINE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        raise Failed(f"mpirun still running {KILL_DEADLINE_S} s after rank 1 was killed")
    took = time.time() - killed_at
    if process.returncode == 0:
        raise Failed("mpirun exited 0 after rank 1 was killed")
    newest = complete_checkpoints(output)
    if not newest or newest[-1] < 10:
        raise Failed(f"no complete checkpoint after the kill: {newest}")
    expect_loadable(r, output / f"checkpoint-{newest[-1]}")
    r.run("--resume after the kill", r.mpirun(2) + r.train_args(output, *args, "--resume"))
    agreement("killed and resumed vs uninterrupted", output, reference, 0.0, steps=40)
    return (f"rank 1 killed after step {killed_after}: mpirun exited "
            f"{process.returncode} in {took:.1f} s; checkpoint-{newest[-1]} loads; the resumed run is identical")


def kill_while_saving(r: Runner, work: Path, minilm: Path) -> str:
    big = Runner(r.binary, minilm, r.data, work)
    args = ["--max-steps", "12", "--save-every", "2", "--keep", "10", "--eval-every", "1000", "--max-length", "16",
            "--batch-size", "4"]
    reference = work / "save-reference"
    big.run("MiniLM uninterrupted", big.train_args(reference, *args))
    for attempt in range(3):
        output = work / f"save-killed-{attempt}"
        process = subprocess.Popen(big.train_args(output, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        partial = None
        deadline = time.time() + 300
        while partial is None and process.poll() is None and time.time() < deadline:
            # The first checkpoint has none before it to protect; wait for the second.
            found = [p for p in output.glob(".checkpoint-*.partial") if p.name != ".checkpoint-2.partial"]
            partial = found[0] if found else None
        if partial is None:
            process.kill()
            process.communicate()
            raise Failed("never saw a checkpoint being written")
        process.kill()
        process.communicate()
        step = int(partial.name.split("-")[1].split(".")[0])
        if (output / f"checkpoint-{step}").exists():
            continue  # the write finished before the kill landed; try again
        previous = complete_checkpoints(output)
        if not previous or previous[-1] != step - 2:
            raise Failed(f"killed while writing checkpoint-{step}: complete checkpoints are {previous}")
        expect_loadable(big, output / f"checkpoint-{step - 2}")
        big.run("--resume after a kill mid-checkpoint", big.train_args(output, *args, "--resume"))
        if list(output.glob(".checkpoint-*.partial")):
            raise Failed(f"the half-written {partial.name} was left behind after the resumed run")
        agreement("killed mid-checkpoint and resumed vs uninterrupted", output, reference, 0.0, steps=12)
        return (f"killed while writing checkpoint-{step}: checkpoint-{step - 2} loads, the partial folder was "
                "hidden and then cleaned, the resumed run is identical")
    raise Failed("three kills all landed after the checkpoint was complete")


def full_disk(r: Runner, work: Path) -> str:
    mount = work / "tiny-disk"
    mount.mkdir()
    # Room for the metrics and one checkpoint of the tiny model (about 13 MB), not two.
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mount)], check=True)
    try:
        output = mount / "run"
        result = r.run("train onto a 20 MB tmpfs", r.train_args(output, "--max-steps", "6", "--save-every", "2",
                                                                 "--eval-every", "1000"), expect_rc=1)
        errors = [line for line in result.stderr.splitlines() if line.strip()]
        if len(errors) != 1 or "No space left on device" not in errors[0] or str(output) not in errors[0]:
            raise Failed(f"expected one error line naming the file and 'No space left on device', got: {errors}")
        kept = complete_checkpoints(output)
        if kept != [2]:
            raise Failed(f"expected checkpoint-2 alone to survive the full disk, found {kept}")
        if list(output.glob(".checkpoint-*")):
            raise Failed(f"a half-written checkpoint was left on the full disk: {list(output.glob('.checkpoint-*'))}")
        expect_loadable(r, output / "checkpoint-2")
        return f"full disk: {errors[0]}; checkpoint-2 intact"
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def stalled_rank(r: Runner, work: Path) -> str:
    output = work / "stalled"
    process = subprocess.Popen(r.mpirun(2) + r.train_args(output, "--max-steps", "100000", "--save-every", "100000",
                                                          "--eval-every", "100000", "--collective-timeout",
                                                          str(STALL_TIMEOUT_S)),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_steps(output, process, 5)
    ranks = rank_pids(process)
    if 1 not in ranks:
        process.kill()
        raise Failed(f"could not find rank 1 among mpirun's children: {ranks}")
    stopped_at = time.time()
    os.kill(ranks[1], signal.SIGSTOP)
    try:
        _, stderr = process.communicate(timeout=STALL_TIMEOUT_S + 30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise Failed(f"the job still hung {STALL_TIMEOUT_S + 30} s after rank 1 stalled")
    finally:
        for pid in ranks.values():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    took = time.time() - stopped_at
    line = next((l for l in stderr.splitlines() if "--collective-timeout" in l), None)
    if process.returncode == 0 or line is None:
        raise Failed(f"expected a non-zero exit and an error naming --collective-timeout; exit "
                     f"{process.returncode}, stderr: {stderr[-2000:]}")
    if took < STALL_TIMEOUT_S:
        raise Failed(f"the job ended {took:.1f} s after the stall, before the {STALL_TIMEOUT_S} s timeout")
    return f"stall: exit {process.returncode} after {took:.1f} s: {line.strip()}"


def main() -> None:
    args = check_arguments(__doc__, "--minilm").parse_args()

    work = Path(tempfile.mkdtemp(prefix="dp-train-faults-"))
    passed, failed = 0, 0
    try:
        model = make_tiny_model(work / "tiny", args.minilm)
        r = Runner(args.bin.resolve(), model, args.data, work)
        (work / EVALUATION_SAMPLE).write_text("".join(args.data.read_text(encoding="utf-8").splitlines(True)[:65]), encoding="utf-8")
        checks = [("kill -9 of one rank", lambda: kill_one_rank(r, work)),
                  ("kill -9 while writing a checkpoint", lambda: kill_while_saving(r, work, args.minilm)),
                  ("full disk during a checkpoint", lambda: full_disk(r, work)),
                  ("a stalled rank (SIGSTOP)", lambda: stalled_rank(r, work))]
        for name, check in checks:
            print(f"== {name}", flush=True)
            try:
                print(f"  ok: {check()}", flush=True)
                passed += 1
            except (Failed, SystemExit) as error:
                print(f"  FAILED: {name}: {error}", flush=True)
                failed += 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"check_faults: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

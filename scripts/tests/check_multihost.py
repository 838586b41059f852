#!/usr/bin/env python3
"""`dp-train train` across emulated hosts: network namespaces on one machine (needs root or CAP_NET_ADMIN).

    python3 scripts/tests/check_multihost.py --bin .build/release/dp-train --data artifacts/data/vader-movies.tsv

scripts/tests/multihost.sh makes hosts dpth-h1..dpth-h4, each a network namespace with its own
address in 10.231.0.0/24 and its own hostname, joined by veth pairs to one bridge. mpirun runs in
dpth-h1 and starts its daemons on the other hosts through multihost.sh as the rsh agent, as it
would with ssh; MPI talks TCP over the bridge only (oob and btl pinned to the subnet, btl
self,tcp: the hosts share no memory, as real ones do not). Checks, on the tiny model:
  1. every rank runs on the host it was placed on, and `hostname` there names that host;
  2. 2 hosts x 1 rank, 4 hosts x 1 rank and 2 hosts x 2 ranks (shared memory within a host, TCP
     between) give per-step losses and final parameters bitwise identical to mpirun -np 2 / -np 4
     on one host: the reduction order depends only on the rank count, never on the transport;
  3. --overlap-allreduce false across 2 hosts gives the same bits as the overlapped default;
  4. a tbf limit on the veths bounds the gradient allreduce: at 100 Mbit/s, 1 Gbit/s and
     10 Gbit/s the bus bandwidth it achieves stays under the rate, and the step's split into
     compute and allreduce is printed (scripts/bench/allreduce-across-hosts measures real models).
The namespaces, bridge, veths and qdiscs are removed on every exit, and leftovers of a crashed
run are removed first.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_trainer import REPO, CheckFailed as Failure, agreement, check_arguments  # noqa: E402

MULTIHOST = REPO / "scripts/tests/multihost.sh"
SUBNET = "10.231.0.0/24"
STEPS = 12
MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "OMPI_MCA_rmaps_base_oversubscribe": "1"}


def run(name: str, command: list, timeout: float = 120) -> str:
    """Runs `command` in its own process group, so that a timeout or Ctrl-C ends every process it started."""
    started = time.time()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, **MPI_ENV}, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    print(f"  {name}: exit {process.returncode} in {time.time() - started:.1f} s")
    if process.returncode != 0:
        raise Failure(f"{name}: exit status {process.returncode}\ncommand: {' '.join(command)}\n"
                      f"stdout:\n{stdout[-2000:]}\nstderr:\n{stderr[-2000:]}")
    return stdout


def multihost(*words: str) -> None:
    result = subprocess.run([str(MULTIHOST), *words], capture_output=True, text=True)
    if result.returncode != 0:
        raise Failure(f"multihost.sh {' '.join(words)}: {result.stderr.strip() or result.returncode}")


def address(host: int) -> str:
    return f"10.231.0.{10 + host}"


def across(slots: list, btl: str = "self,tcp") -> list:
    """mpirun in dpth-h1 over len(slots) hosts, slots[i] ranks on host i+1 (ranks fill hosts in order)."""
    hosts = ",".join(f"{address(i + 1)}:{n}" for i, n in enumerate(slots))
    return [str(MULTIHOST), "exec", "dpth-h1", "mpirun", "--host", hosts, "-np", str(sum(slots)),
            "--bind-to", "none", "--mca", "plm_rsh_agent", f"{MULTIHOST} rsh",
            "--mca", "oob_tcp_if_include", SUBNET, "--mca", "btl_tcp_if_include", SUBNET, "--mca", "btl", btl]


def one_host(ranks: int) -> list:
    return ["mpirun", "-np", str(ranks), "--bind-to", "none"]


def records(output: Path) -> list:
    lines = (output / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["type"] == "train"]


def identical(name: str, a: Path, b: Path) -> None:
    print(f"  {name}: {agreement(name, a, b, 0.0, steps=STEPS)}")


def check_placement() -> None:
    script = 'echo "$OMPI_COMM_WORLD_RANK $(hostname)"'
    out = run("4 hosts x 1 rank: hostname", across([1, 1, 1, 1]) + ["sh", "-c", script])
    placed = dict(line.split() for line in out.split("\n") if line.strip())
    expected = {str(rank): f"dpth-h{rank + 1}" for rank in range(4)}
    if placed != expected:
        raise Failure(f"placement: ranks ran on {placed}, expected {expected}")
    print(f"  ranks 0-3 on {', '.join(expected.values())}")


def check_rate_limit(train, work: Path, bytes_per_rank: int) -> None:
    # Without overlap allreduce_s is the whole gradient's allreduce, so its bus bandwidth
    # 2(N-1)/N * bytes / time is what the link carried; tbf must keep it under the rate.
    print(f"  (2 hosts, --overlap-allreduce false, {bytes_per_rank / 1e6:.1f} MB of gradients, steps 2-6)")
    times = {}
    for rate, bits in [("100mbit", 1e8), ("1gbit", 1e9), ("10gbit", 1e10), ("none", None)]:
        multihost("rate", rate)
        output = work / f"rate-{rate}"
        run(f"2 hosts at {rate}", across([1, 1]) + train(output, "--max-steps", "6", "--overlap-allreduce", "false"))
        steps = records(output)[1:]
        compute = float(np.mean([r["compute_s"] for r in steps]))
        allreduce = float(np.mean([r["allreduce_s"] for r in steps]))
        busbw = 2 * (2 - 1) / 2 * bytes_per_rank * 8 / allreduce
        print(f"    {rate:>7}: compute {compute * 1e3:7.1f} ms, allreduce {allreduce * 1e3:7.1f} ms "
              f"({allreduce / (compute + allreduce):4.0%} of the step), bus bandwidth {busbw / 1e9:.2f} Gbit/s")
        if bits is not None and busbw > 1.1 * bits:
            raise Failure(f"rate {rate}: the allreduce reached {busbw / 1e9:.2f} Gbit/s, so tbf did not limit it")
        times[rate] = allreduce
    multihost("rate", "none")
    # 10 Gbit/s is left out: two shared cores carry little more than that unlimited.
    if not times["100mbit"] > times["1gbit"] > times["none"]:
        raise Failure(f"the allreduce time does not fall as the rate rises: {times}")


def main() -> None:
    args = check_arguments(__doc__).parse_args()
    binary, data = args.bin.resolve(), args.data.resolve()
    # Every stop signal unwinds through the finally that removes the namespaces; SIGINT too, which
    # a shell without job control hands background jobs ignored.
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, lambda number, _: sys.exit(f"check_multihost: stopped by {signal.Signals(number).name}"))

    work = Path(tempfile.mkdtemp(prefix="dp-train-multihost-"))
    model = work / "tiny"
    subprocess.run([sys.executable, str(REPO / "scripts/make_tiny_model.py"), "--tokenizer-from",
                    str(args.tokenizer_from), "--out", str(model)], check=True, capture_output=True)

    def train(output: Path, *extra: str) -> list:
        return [str(binary), "train", "--model", str(model), "--train", str(data), "--text-column", "text",
                "--label-column", "sentiment", "--validation-fraction", "0.05", "--max-steps", str(STEPS),
                "--log-every", "1", "--eval-every", str(STEPS), "--save-every", str(STEPS), "--keep", "1",
                "--max-length", "48", "--threads", "1", "--output", str(output), *extra]

    def transports():
        run("mpirun -np 2, one host", one_host(2) + train(work / "np2"))
        run("mpirun -np 4, one host", one_host(4) + train(work / "np4"))
        run("2 hosts x 1 rank", across([1, 1]) + train(work / "h2"))
        run("4 hosts x 1 rank", across([1, 1, 1, 1]) + train(work / "h4"))
        run("2 hosts x 2 ranks", across([2, 2], btl="self,vader,tcp") + train(work / "h2x2"))
        identical("2 hosts x 1 vs -np 2", work / "h2", work / "np2")
        identical("4 hosts x 1 vs -np 4", work / "h4", work / "np4")
        identical("2 hosts x 2 vs -np 4", work / "h2x2", work / "np4")

    def no_overlap():
        run("2 hosts, --overlap-allreduce false", across([1, 1]) + train(work / "h2-serial", "--overlap-allreduce",
                                                                          "false"))
        identical("serial vs overlapped allreduce, 2 hosts", work / "h2-serial", work / "h2")

    def rate_limit():
        parameters = sum(t.size for t in load_file(str(model / "model.safetensors")).values())
        check_rate_limit(train, work, 4 * parameters)

    checks = [("1. placement and hostnames", check_placement),
              ("2. identical results across hosts and on one host", transports),
              ("3. --overlap-allreduce false across hosts", no_overlap),
              ("4. tbf bandwidth limit", rate_limit)]
    passed = failed = 0
    try:
        multihost("down")
        multihost("up", "4")
        for title, check in checks:
            print(title)
            try:
                check()
                passed += 1
            except Failure as failure:
                print(f"check_multihost: FAILED: {failure}")
                failed += 1
    finally:
        subprocess.run([str(MULTIHOST), "down"])
        shutil.rmtree(work, ignore_errors=True)
    print(f"check_multihost: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

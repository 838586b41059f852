#!/usr/bin/env bash
# Runs a dp-train launch line (srun ... or mpirun ...) inside a Slurm batch job and makes the job
# preemptible; every script in cluster/slurm/ ends with it:
#
#   run-preemptible.sh srun --mpi=pmix dp-train train ... --resume
#
# Slurm's warning (#SBATCH --signal=B:USR1@120) reaches only the batch shell, so this forwards
# USR1 (and TERM) to the launcher, which passes it on to every rank. dp-train then finishes the
# step, rank 0 writes a checkpoint and all ranks exit 75. On 75 after USR1 the job requeues
# itself; the requeued job runs the same script, and --resume continues from that checkpoint.
# A TERM (scancel, or the time limit without a warning) still checkpoints but is not requeued,
# so that a cancelled job stays cancelled.
set -uo pipefail

[ $# -gt 0 ] || { echo "run-preemptible.sh: no command to run" >&2; exit 2; }
[ -n "${SLURM_JOB_ID:-}" ] || { echo "run-preemptible.sh: not inside a Slurm job (no SLURM_JOB_ID)" >&2; exit 2; }

received=""
forward() {
    received=$1
    echo "run-preemptible.sh: got SIG$1; passing it to the ranks to checkpoint and stop" >&2
    kill -s "$1" "$launcher" 2>/dev/null || true
}
trap 'forward USR1' USR1
trap 'forward TERM' TERM

echo "job $SLURM_JOB_ID (restart ${SLURM_RESTART_COUNT:-0}) on $(hostname): $*"
# In the background, because bash runs a trap only once the foreground command has finished.
"$@" &
launcher=$!
# wait returns early, with a status above 128, each time a trapped signal arrives.
while true; do
    rc=0
    wait "$launcher" || rc=$?
    kill -0 "$launcher" 2>/dev/null || break
done

if [ "$rc" -eq 75 ] && [ "$received" = USR1 ]; then
    echo "run-preemptible.sh: checkpoint written; requeueing job $SLURM_JOB_ID to resume" >&2
    scontrol requeue "$SLURM_JOB_ID" || { echo "run-preemptible.sh: scontrol requeue $SLURM_JOB_ID failed" >&2; exit 75; }
    exit 0
fi
[ "$rc" -eq 0 ] || echo "run-preemptible.sh: $1 exited with status $rc" >&2
exit "$rc"

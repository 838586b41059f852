#!/usr/bin/env bash
# A real one-node Slurm on this machine, for testing cluster/slurm/ (scripts/tests/check_slurm.py).
#
#   bash scripts/tests/slurm_cluster.sh start DIR   # installs slurm-wlm and munge if missing
#   . DIR/env                                       # SLURM_CONF, PATH: sbatch, squeue, ... now talk to it
#   bash scripts/tests/slurm_cluster.sh stop DIR
#
# munged, slurmctld and slurmd run as root from DIR: the munge key and socket, slurm.conf, state,
# spool, pid and log files all live there, and the ports are not Slurm's defaults, so nothing in
# /etc or /run is read or written and a system Slurm, if any, is left alone. No accounting;
# proctrack/linuxproc and task/none because a container has no cgroup hierarchy of its own to
# hand out. EnforcePartLimits=ALL makes a job that asks for more CPUs than the node has fail at
# submission instead of pending forever (`srun -n 4` on 2 CPUs needs --overcommit).
# cred_expire=10: slurmd refuses a job id whose credential it revoked until that credential
# expires, so Slurm holds a requeued job for cred_expire + 1 s; the default 120 would make the
# preemption test wait two minutes.
set -euo pipefail

die() { printf 'slurm_cluster: %s\n' "$*" >&2; exit 1; }

usage() { die "usage: $0 start|stop DIR"; }
[ $# -eq 2 ] || usage
action=$1
dir=$2

install_packages() {
    command -v slurmctld >/dev/null && command -v munged >/dev/null && return
    [ "$(id -u)" -eq 0 ] || die "slurm-wlm and munge are missing and installing them needs root"
    apt-get update -qq >/dev/null || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null \
        || die "apt-get install slurm-wlm munge failed"
}

start() {
    [ "$(id -u)" -eq 0 ] || die "the daemons run as root here (SlurmUser=root); run this as root"
    install_packages
    [ ! -e "$dir/slurm.conf" ] || die "$dir already holds a cluster; stop it first"
    # The ports are fixed, so a second cluster would only time out talking to the first one.
    local port
    for port in 16817 16818; do
        ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null \
            || die "port $port is in use (another cluster from this script still running?); stop it first"
    done
    mkdir -p "$dir"/{munge,state,spool,log}
    dir=$(cd "$dir" && pwd)
    # munged checks that its socket folder lets every user reach the socket.
    chmod 0755 "$dir" "$dir/munge"
    chmod 0700 "$dir/state" "$dir/spool"
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
    chmod 0600 "$dir/munge/munge.key"
    munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/seed" \
        || die "munged did not start (see $dir/log/munged.log)"

    local node cpus memory
    node=$(hostname -s)
    cpus=$(nproc)
    memory=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
    cat > "$dir/slurm.conf" <<EOF
ClusterName=dptest
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket,cred_expire=10
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
EnforcePartLimits=ALL
ReturnToService=2
MailProg=/bin/true
PlugStackConfig=$dir/plugstack.conf
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
    : > "$dir/plugstack.conf"
    cat > "$dir/env" <<EOF
export SLURM_CONF=$dir/slurm.conf
EOF
    export SLURM_CONF=$dir/slurm.conf
    slurmctld -i || die "slurmctld did not start (see $dir/log/slurmctld.log)"
    slurmd || die "slurmd did not start (see $dir/log/slurmd.log)"
    local deadline=$((SECONDS + 30))
    until sinfo -h -N -o '%T' 2>/dev/null | grep -qx idle; do
        [ "$SECONDS" -lt "$deadline" ] || die "the node did not become idle within 30 s: $(sinfo -N 2>&1); see $dir/log"
        sleep 0.2
    done
    printf 'slurm_cluster: node %s idle (%s CPUs); . %s/env to use it\n' "$node" "$cpus" "$dir"
}

# Each daemon by the pid in its own pid file: other Slurm or munge processes on the machine
# are not ours to stop.
stop_daemon() {
    local pidfile=$1 pid
    [ -s "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
}

# Jobs first: slurmstepd outlives slurmd, so a running job would keep its ranks alive.
cancel_jobs() {
    [ -s "$dir/slurmctld.pid" ] && kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null || return 0
    export SLURM_CONF=$dir/slurm.conf
    local jobs
    jobs=$(squeue -h -o %i 2>/dev/null) || return 0
    [ -n "$jobs" ] || return 0
    # shellcheck disable=SC2086  # one job id per word
    scancel --full --signal=KILL $jobs 2>/dev/null || true
    # shellcheck disable=SC2086
    scancel $jobs 2>/dev/null || true
    for _ in $(seq 100); do
        [ -z "$(squeue -h -t RUNNING,COMPLETING -o %i 2>/dev/null)" ] && return 0
        sleep 0.1
    done
}

stop() {
    [ -d "$dir" ] || return 0
    cancel_jobs
    stop_daemon "$dir/slurmd.pid"
    stop_daemon "$dir/slurmctld.pid"
    stop_daemon "$dir/munge/munged.pid"
}

case "$action" in
    start) start ;;
    stop) stop ;;
    *) usage ;;
esac

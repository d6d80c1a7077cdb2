#!/usr/bin/env bash
# tests/slurm_single_node.sh - a throwaway one-node Slurm cluster for the sweep test (test.c,
# demo_sweep): munged, slurmctld and slurmd of Debian's slurm-wlm and munge, all under DIR, on
# ports of their own, so that `sbatch` runs the script `demo sweep --emit slurm` wrote.
#
#   tests/slurm_single_node.sh start DIR   start it; then SLURM_CONF=DIR/slurm.conf sbatch ...
#   tests/slurm_single_node.sh stop DIR    cancel its jobs and stop the three daemons
#
# start exits 0 when the node is idle and takes jobs, 77 when this machine cannot run it (the
# line says why: not installed, not root, a daemon that does not come up); the test then skips.
# Nothing outside DIR is written; no system service is started or changed.
set -u
cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
mkdir -p "$dir" && dir=$(cd "$dir" && pwd)
skip() { echo "slurm: $*" >&2; exit 77; }

stop() {
    SLURM_CONF="$dir/slurm.conf" scancel --quiet --full -u "$(id -un)" > /dev/null 2>&1
    for p in slurmd slurmctld munged; do
        [ -f "$dir/$p.pid" ] && kill "$(cat "$dir/$p.pid")" > /dev/null 2>&1
    done
    for _ in $(seq 50); do   # up to 5 s for them to go
        alive=0
        for p in slurmd slurmctld munged; do
            [ -f "$dir/$p.pid" ] && kill -0 "$(cat "$dir/$p.pid")" > /dev/null 2>&1 && alive=1
        done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for p in slurmd slurmctld munged; do
        [ -f "$dir/$p.pid" ] && kill -9 "$(cat "$dir/$p.pid")" > /dev/null 2>&1
        rm -f "$dir/$p.pid"
    done
    return 0
}
if [ "$cmd" = stop ]; then stop; exit 0; fi
[ "$cmd" = start ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

for tool in munged slurmctld slurmd sbatch sinfo scancel; do
    command -v "$tool" > /dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] \
        || skip "$tool not found (apt-get install slurm-wlm munge)"
done
PATH=$PATH:/usr/sbin
[ "$(id -u)" = 0 ] || skip "needs root to run slurmd as its own SlurmdUser (this is user $(id -un))"

host=$(hostname -s)
# ports of our own: a free pair above 20000, picked by the process id
port=$((20000 + ($$ % 2000) * 2))
mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
chmod 700 "$dir/munge"
head -c 1024 /dev/urandom > "$dir/munge/munge.key"
chmod 400 "$dir/munge/munge.key"
cpus=$(nproc)
cat > "$dir/slurm.conf" <<EOF
# written by tests/slurm_single_node.sh: one node, this machine, for one test
ClusterName=ltftest
SlurmctldHost=$host
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=$(id -un)
SlurmdUser=$(id -un)
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=30
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF

munged --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" --pid-file="$dir/munged.pid" \
    --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed" --force > "$dir/munged.out" 2>&1 \
    || { stop; skip "munged did not start: $(tail -n 1 "$dir/munged.out")"; }
export SLURM_CONF="$dir/slurm.conf"
slurmctld -i > "$dir/slurmctld.out" 2>&1 || { stop; skip "slurmctld did not start: $(tail -n 1 "$dir/slurmctld.out")"; }
slurmd -N "$host" > "$dir/slurmd.out" 2>&1 || { stop; skip "slurmd did not start: $(tail -n 1 "$dir/slurmd.out")"; }
for _ in $(seq 150); do   # up to 15 s for the node to register
    state=$(sinfo -h -n "$host" -o %t 2> /dev/null | head -n 1)
    case "$state" in idle*|mix*) echo "slurm: node $host idle ($cpus CPUs), slurmctld on port $port, config $dir/slurm.conf"; exit 0 ;; esac
    sleep 0.1
done
msg="node $host did not become idle (state '${state:-none}'); $(tail -n 1 "$dir/slurmctld.log" 2> /dev/null)"
stop
skip "$msg"

#!/bin/sh
# The local Slurm cluster is closed to the network (about 20 s): while a job of
# 8 ranks on 4 nodes runs, no process of the cluster (munged, slurmctld, slurmd,
# slurmstepd, srun, the ranks) listens on anything but loopback; a request
# without the cluster's munge credential — a client with auth/none, or one with
# a munged of another key — is refused and queues no job; munged is the
# cluster's own and ends with it. Skips only where Slurm cannot start here.
set -u
cd "$(dirname "$0")/../.."
. tests/slurm/lib.sh
command -v ss >/dev/null 2>&1 || { skip slurm_security "ss not installed (iproute2, scripts/deps.sh)"; exit 0; }
export HERD_SLURM_DIR=$(mktemp -d /tmp/herd-slurm-test.XXXXXX)
tmp=$(mktemp -d)
rogue_pid=""
cleanup() {
    [ -n "$rogue_pid" ] && kill "$rogue_pid" 2>/dev/null
    sh slurm/local/cluster.sh stop >/dev/null 2>&1
    rm -rf "$tmp" "$HERD_SLURM_DIR"
}
trap cleanup EXIT INT TERM

if ! cluster_up 4; then skip slurm_security "Slurm cannot start here: $why"; exit 0; fi
mpicc -O2 -o "$tmp/mpi_probe" tests/slurm/mpi_probe.c 2>"$tmp/mpicc.err" \
    || { fail cluster_listens_on_loopback_only "mpicc: $(cat "$tmp/mpicc.err")"; exit 1; }

# ---- every listening socket of the cluster's processes, during a job ----
# srun and its tasks carry the cluster's marker too (not this shell: `stop`
# ends every process that has it)
HERD_SLURM_CLUSTER=$HERD_SLURM_DIR timeout 90 srun --mpi=pmix -N4 -n8 "$tmp/mpi_probe" 20 "$tmp/ready" \
    >"$tmp/job.out" 2>&1 &
job_pid=$!
t=0
while [ "$t" -lt 300 ] && [ "$(ls "$tmp"/ready.* 2>/dev/null | wc -l)" -lt 8 ]; do sleep 0.1; t=$((t + 1)); done
ready=$(ls "$tmp"/ready.* 2>/dev/null | wc -l)
# "tcp LISTEN 0 4096 127.0.0.1:23517 0.0.0.0:* users:(("slurmctld",pid=2216,fd=3))":
# the local address and each process holding the socket, TCP and UDP, IPv4 and IPv6;
# then the cluster's processes, while the job still holds (checked after)
ss -Hltunp 2>/dev/null >"$tmp/ss.txt"
pids=" $(cluster_procs | tr '\n' ' ')"
kill -0 "$job_pid" 2>/dev/null; held=$?
awk -v pids="$pids" '{
        local = $5; users = $0; sub(/.*users:/, "", users)
        n = split(users, u, /pid=/)
        for (i = 2; i <= n; i++) {
            p = u[i]; sub(/[^0-9].*/, "", p)
            name = u[i - 1]; sub(/.*\("/, "", name); sub(/".*/, "", name)
            if (index(pids, " " p " ")) print name, p, local
        }
    }' "$tmp/ss.txt" | sort -u >"$tmp/ours.txt"
# loopback: 127.0.0.0/8 and ::1 (with or without an interface suffix: 127.0.0.1%lo)
open=$(awk '{a = $3; sub(/:[0-9*]+$/, "", a); sub(/%.*/, "", a)
             if (a !~ /^127\./ && a != "[::1]" && a != "[::ffff:127.0.0.1]") print}' "$tmp/ours.txt")
n_ctld=$(grep -c '^slurmctld ' "$tmp/ours.txt"); n_slurmd=$(grep -c '^slurmd ' "$tmp/ours.txt")
n_srun=$(grep -c '^srun ' "$tmp/ours.txt"); n_stepd=$(grep -c '^slurmstepd ' "$tmp/ours.txt")
wait "$job_pid"; rc=$?
if [ "$ready" -eq 8 ] && [ "$held" -eq 0 ] && [ "$rc" -eq 0 ] && [ -z "$open" ] \
   && [ "$n_ctld" -ge 1 ] && [ "$n_slurmd" -ge 4 ] && [ "$n_srun" -ge 1 ] && [ "$n_stepd" -ge 4 ]; then
    pass "cluster_listens_on_loopback_only ($(wc -l <"$tmp/ours.txt") listening sockets of $(cut -d' ' -f1 "$tmp/ours.txt" | sort -u | tr '\n' ' ')during an 8-rank job)"
else
    fail cluster_listens_on_loopback_only "ranks ready $ready, job still running when looked at: $([ "$held" -eq 0 ] && echo yes || echo no), srun exit $rc; not on loopback: $(echo "$open" | tr '\n' ';') (sockets seen: slurmctld $n_ctld, slurmd $n_slurmd, slurmstepd $n_stepd, srun $n_srun; $(tail -n 3 "$tmp/job.out" | tr '\n' ' '))"
fi

# ---- requests without the cluster's credential ----
# each client config is the cluster's own slurm.conf with another authentication;
# sbatch must be refused and no job queued (scontrol keeps jobs MinJobAge s)
intruder() { # intruder CONF: 0 when the job was refused and does not exist
    out=$(SLURM_CONF=$1 timeout 30 sbatch --job-name=intruder --output="$tmp/intruder.out" --wrap=true 2>&1); rc=$?
    echo "$out" | tail -n 1 >"$1.out"
    [ "$rc" -ne 0 ] && ! scontrol show jobs 2>/dev/null | grep -q 'JobName=intruder'
}
conf=$HERD_SLURM_DIR/etc/slurm.conf
sed -e 's|^AuthType=.*|AuthType=auth/none|' -e 's|^CredType=.*|CredType=cred/none|' \
    -e 's|^AuthInfo=.*|AuthInfo=cred_expire=10|' "$conf" >"$tmp/none.conf"
# a munged of its own, with another key: what a user of another cluster would have
mkdir -p "$tmp/rogue" && chmod 0700 "$tmp/rogue"
mungekey --create --keyfile="$tmp/rogue/munge.key" 2>"$tmp/rogue.err" \
    && /usr/sbin/munged --force --socket="$tmp/rogue/munge.socket" --key-file="$tmp/rogue/munge.key" \
        --pid-file="$tmp/rogue/munged.pid" --log-file="$tmp/rogue/munged.log" \
        --seed-file="$tmp/rogue/munged.seed" 2>>"$tmp/rogue.err" \
    && rogue_pid=$(cat "$tmp/rogue/munged.pid")
sed -e "s|^AuthType=.*|AuthType=auth/munge|" -e "s|^CredType=.*|CredType=cred/munge|" \
    -e "s|^AuthInfo=.*|AuthInfo=socket=$tmp/rogue/munge.socket,cred_expire=10|" "$conf" >"$tmp/rogue.conf"
# the cluster's own client, for contrast: accepted
own=$(timeout 30 sbatch --parsable --job-name=own --output="$tmp/own.out" --wrap=true 2>&1)
if [ -z "$rogue_pid" ]; then
    fail unauthenticated_requests_refused "the second munged did not start: $(cat "$tmp/rogue.err")"
elif intruder "$tmp/none.conf" && intruder "$tmp/rogue.conf" && [ -n "$own" ] && [ "$own" -eq "$own" ] 2>/dev/null; then
    pass "unauthenticated_requests_refused (auth/none: $(cat "$tmp/none.conf.out"); another munge key: $(cat "$tmp/rogue.conf.out"))"
else
    fail unauthenticated_requests_refused "own job '$own'; auth/none: $(cat "$tmp/none.conf.out" 2>&1); another key: $(cat "$tmp/rogue.conf.out" 2>&1); jobs: $(scontrol show jobs 2>&1 | grep -o 'JobName=[a-z]*' | tr '\n' ' ')"
fi

# ---- munged: the cluster's own (its key root's only, its socket in the cluster's
# directory) and gone after stop ----
m_pid=$(cat "$HERD_SLURM_DIR/munge/munged.pid" 2>/dev/null)
key_mode=$(stat -c %a "$HERD_SLURM_DIR/etc/munge.key" 2>/dev/null)
grep -q "^AuthInfo=socket=$HERD_SLURM_DIR/munge.socket," "$conf"; sock_in_conf=$?
sh slurm/local/cluster.sh stop >"$tmp/stop.out" 2>&1
if [ -n "$m_pid" ] && [ "$key_mode" = 600 ] && [ "$sock_in_conf" -eq 0 ] && ! kill -0 "$m_pid" 2>/dev/null \
   && [ -z "$(own_procs)" ]; then
    pass cluster_munged_private_and_stopped
else
    fail cluster_munged_private_and_stopped "munged PID '$m_pid' (alive after stop: $(kill -0 "$m_pid" 2>/dev/null && echo yes || echo no)), key mode '$key_mode', AuthInfo socket in slurm.conf: $([ "$sock_in_conf" -eq 0 ] && echo yes || echo no); $(cat "$tmp/stop.out")"
fi
[ "$fails" -eq 0 ]

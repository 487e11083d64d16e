#!/bin/sh
# Start-up and first-checkpoint cost of herd train against the number of ranks.
#
#   sh benchmarks/startup_scale.sh [NP ...]        (default: 8 16 32 64)
#   HERD=path/to/herd REPEAT=3 OUT=dir sh benchmarks/startup_scale.sh 8 64
#
# Every run is a tiny model (2 layers, d_model 64) with the same layout per
# rank count, TP2 x PP2 x DP(NP/4), two micro-batches of 32 tokens per DP rank,
# 2 steps, a checkpoint after each; all ranks on this machine (mpirun
# --oversubscribe, one thread each). Per run it keeps: rank 0's "startup:"
# line (phase times, printed by src/train/trainer.c), the wall time of the
# whole mpirun, the first checkpoint's commit line (checkpoint/writer.c), and
# the size of that checkpoint's MANIFEST. It prints one row per run, then the
# median of the REPEAT runs per NP and the ratio of the largest NP to the
# smallest per column. A binary without the startup: line (an older herd)
# gives "-" in those columns; the MANIFEST and commit columns still compare.
# Load: the 1-minute load average before each run is printed with it.
set -u
herd=${HERD:-build/herd}
repeat=${REPEAT:-3}
nps=${*:-8 16 32 64}
out=${OUT:-$(mktemp -d /tmp/herd-startup-XXXXXX)}
mkdir -p "$out"
# as the tests do: a container's root, more ranks than cores
[ "$(id -u)" -eq 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
[ -x "$herd" ] || { echo "startup_scale: $herd: not an executable (make build/herd)" >&2; exit 2; }

$herd data prepare --out "$out/train.bin" /usr/share/common-licenses/GPL-3 >/dev/null 2>&1 \
    || { echo "startup_scale: herd data prepare failed" >&2; exit 1; }

config() { # config NP
    dp=$(($1 / 4))
    cat <<YAML
model: {n_layers: 2, d_model: 64, n_heads: 8, n_kv_heads: 2, ffn_dim: 128, vocab_size: 512, max_seq_len: 64}
batch:
  micro_batch: 1
  ramp:
    - {after_tokens: 0, batch_tokens: $((dp * 64)), seq_len: 32}
parallel: {tp: 2, pp: 2, placement: 1}
optim: {lr: 1.0e-3, min_lr: 1.0e-4}
schedule: {warmup_steps: 1, decay_steps: 10}
train: {max_steps: 2, log_every: 0, threads: 1}
monitor: {peak_tflops: 1}
checkpoint: {every: 1}
data: {path: $out/train.bin}
YAML
}

# field N of a "startup:" line: the number before " s" in the N-th "|" part
phase() { sed -n 's/^startup: //p' "$1" | head -1 | awk -F'|' -v k="$2" '{
    n = split($k, w, " "); for (i = 1; i < n; i++) if (w[i + 1] == "s") { print w[i]; exit } }'; }

rows=$out/rows.txt
: >"$rows"
printf '%-4s %-3s %5s %8s %8s %8s %8s %8s %8s %8s %9s %8s\n' np run load wall_s launch place comms model \
    ckpt_open commit_s manifest_B index_s
for np in $nps; do
    [ $((np % 4)) -eq 0 ] || { echo "startup_scale: NP $np: not a multiple of 4 (TP2 x PP2)" >&2; continue; }
    config "$np" >"$out/cfg$np.yaml"
    r=1
    while [ "$r" -le "$repeat" ]; do
        d=$out/np$np.r$r
        rm -rf "$d"
        load=$(cut -d' ' -f1 /proc/loadavg)
        t0=$(date +%s.%N)
        timeout 600 mpirun --oversubscribe -np "$np" --bind-to none "$herd" train "$out/cfg$np.yaml" \
            --set train.out_dir="$d" >"$d.log" 2>&1
        rc=$?
        t1=$(date +%s.%N)
        if [ "$rc" -ne 0 ]; then
            echo "startup_scale: NP $np run $r: exit $rc; $(tail -2 "$d.log")" >&2
            r=$((r + 1))
            continue
        fi
        wall=$(echo "$t1 $t0" | awk '{printf "%.2f", $1 - $2}')
        commit=$(sed -n 's/.*step 1 committed.* commit \([0-9.]*\) s.*/\1/p' "$d.log" | head -1)
        index=$(sed -n 's/.*step 1 committed.*shard indexes \([0-9.]*\) s.*/\1/p' "$d.log" | head -1)
        mbytes=$(stat -c %s "$d/checkpoints/step_00000001/MANIFEST" 2>/dev/null)
        launch=$(phase "$d.log" 2) place=$(phase "$d.log" 3) comms=$(phase "$d.log" 4)
        model=$(phase "$d.log" 6) copen=$(phase "$d.log" 7)
        printf '%-4s %-3s %5s %8s %8s %8s %8s %8s %8s %8s %9s %8s\n' "$np" "$r" "$load" "$wall" \
            "${launch:--}" "${place:--}" "${comms:--}" "${model:--}" "${copen:--}" "${commit:--}" \
            "${mbytes:--}" "${index:--}" | tee -a "$rows"
        r=$((r + 1))
    done
done

echo "median of $repeat per NP (columns as above, load and run left out):"
median() { sort -g | awk '{v[NR] = $1} END {if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2];
    else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
meds=$out/medians.txt
: >"$meds"
for np in $nps; do
    line=$np
    for col in 4 5 6 7 8 9 10 11 12; do
        m=$(awk -v n="$np" -v c="$col" '$1 == n && $c != "-" {print $c}' "$rows" | median)
        line="$line $m"
    done
    echo "$line" >>"$meds"
done
awk '{printf "%-4s %8s %8s %8s %8s %8s %8s %8s %9s %8s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10}' "$meds"
awk 'NR == 1 {for (i = 1; i <= NF; i++) a[i] = $i} {for (i = 1; i <= NF; i++) b[i] = $i}
    END {printf "ratio %s/%s:", b[1], a[1];
         split("wall launch place comms model ckpt_open commit manifest index", n, " ");
         for (i = 2; i <= 10; i++) printf " %s %s", n[i - 1], (a[i] > 0 && a[i] != "-" ? sprintf("%.2f", b[i] / a[i]) : "-");
         printf "\n"}' "$meds"
echo "runs and logs: $out"

#!/bin/sh
# make demo: the Llama 3 recipe in miniature on a real local Slurm cluster.
#
#   1. the demo corpus (make demo-data: four sources, BPE tokenizer, shards)
#   2. a 4-node Slurm cluster on this machine (slurm/local/cluster.sh)
#   3. the tiny recipe chain (slurm/pipeline.sh configs/recipe/tiny): pre-training
#      with the batch ramp and the mix, three long-context stages (context
#      parallel at the longest), annealing, the average of the annealing
#      checkpoints as the final model, evaluations between the stages
#   4. one node failure during pre-training (its slurmd and its rank killed);
#      the stage driver excludes the node and goes on from the last checkpoint;
#      then the node rejoins (its slurmd restarted)
#   5. post-training (configs/recipe/tiny/post), once per seed (3, each its own
#      task instance): SFT of the final model (round 0), then a round of
#      preference annotation, reward model, rejection sampling, SFT, DPO and
#      averaging beside a same-steps SFT control, each a 2-node Slurm job
#   6. a summary per stage, the post-training table (mean ± sd over the seeds,
#      slurm/post_table.sh), then the cluster stops (make demo-stop if interrupted)
#
# DEMO_FAULT=0 skips the node failure. RUN (default runs/recipe-demo) is where
# everything goes.
set -eu
cd "$(dirname "$0")/.."
RUN=${RUN:-runs/recipe-demo}
export HERD_SLURM_DIR=${HERD_SLURM_DIR:-/tmp/herd-demo-slurm}
t_start=$(date +%s)

echo "== 1. data: the demo mix (general, math, code, multilingual) =="
if [ ! -s data/demo-mix/mix.yaml ] || [ ! -s data/demo-mix/passkey1024.bin ] ||
   [ ! -s data/demo-mix/post-style/s3/test_restated.jsonl ]; then sh scripts/make_demo_mix.sh
else echo "data/demo-mix is there"; fi

echo
echo "== 2. a 4-node Slurm cluster on this machine =="
sh slurm/local/cluster.sh stop >/dev/null 2>&1 || true
sh slurm/local/cluster.sh start 4
eval "$(sh slurm/local/cluster.sh env)"
trap 'sh slurm/local/cluster.sh stop >/dev/null 2>&1' EXIT INT TERM
sinfo -N -o '%N %T' | sed 's/^/  /'
scontrol show topology | sed 's/^/  /'

echo
echo "== 3. the tiny recipe chain (slurm/pipeline.sh configs/recipe/tiny) =="
rm -rf "$RUN"; mkdir -p "$(dirname "$RUN")"
sh slurm/pipeline.sh configs/recipe/tiny --out "$RUN" --wait >"$RUN.pipeline.log" 2>&1 &
pipe=$!
sleep 2
sed 's/^/  /' "$RUN.pipeline.log"

# ---- progress while the chain runs: every DEMO_PROGRESS_S seconds (default 30) a line
# per running stage (slurm/recipe_progress.sh), a stage's last line once when it is
# done, and the other jobs running when no stage is ----
progress_loop() {
    while sleep "${DEMO_PROGRESS_S:-30}" && kill -0 "$pipe" 2>/dev/null; do
        echo "  -- progress at $(( $(date +%s) - t_start )) s (sh $PWD/slurm/pipeline.sh --progress $(cd "$RUN" && pwd)) --"
        lines=$(sh slurm/pipeline.sh --progress "$RUN" 2>/dev/null | while IFS= read -r l; do
            n=$(echo "$l" | awk '{print $1, $3}')     # stage and step/total: an extension is news
            case "$l" in *"  done"*) grep -qxF "$n" "$RUN.progress-done" 2>/dev/null && continue
                                     echo "$n" >>"$RUN.progress-done" ;; esac
            echo "$l"
        done) || true
        [ -n "$lines" ] && echo "$lines"
        if ! echo "$lines" | grep -q '  running'; then
            r=$(squeue -h -t R -o %j 2>/dev/null | tr '\n' ' ') || true
            echo "  jobs running: ${r:-none}"
        fi
    done
}
rm -f "$RUN.progress-done"
progress_loop &
prog=$!

# ---- 4. a node failure during pre-training ----
nloss() { n=$(grep -c '"loss"' "$1" 2>/dev/null || true); echo "${n:-0}"; }
herd_exe=$(readlink -f build/herd)
# (after step 22: the checkpoint of step 20 has committed, so the recovery
# resumes from it)
# the ranks of job $1 on node $2 (by their environment: processes this demo started)
node_ranks() {
    for e in /proc/[0-9]*/environ; do
        p=${e#/proc/}; p=${p%/environ}
        [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$herd_exe" ] || continue
        env=$(tr '\0' '\n' 2>/dev/null <"$e")
        echo "$env" | grep -qx "SLURM_JOB_ID=$1" && echo "$env" | grep -qx "SLURMD_NODENAME=$2" && echo "$p"
    done
}
if [ "${DEMO_FAULT:-1}" = 1 ]; then
    pre=$RUN/01_pretrain
    t=0
    while [ "$t" -lt 1200 ] && [ "$(nloss "$pre/metrics.jsonl")" -lt 23 ] && kill -0 $pipe 2>/dev/null; do
        sleep 0.5; t=$((t + 1))
    done
    job=$(awk '$1 == "stage" && $2 == "01_pretrain" {print $3}' "$RUN/pipeline.jobs")
    node=$(scontrol show hostnames "$(squeue -h -j "$job" -o '%N')" 2>/dev/null | tail -n 1)
    if [ -n "$node" ] && [ -f "$HERD_SLURM_DIR/run/slurmd-$node.pid" ]; then
        ranks=$(node_ranks "$job" "$node")
        echo
        echo "== 4. node failure: killing $node's slurmd and its ranks ($ranks) at step $(nloss "$pre/metrics.jsonl") of pre-training =="
        # shellcheck disable=SC2086
        kill -KILL "$(cat "$HERD_SLURM_DIR/run/slurmd-$node.pid")" $ranks 2>/dev/null || true
        # the node is repaired once pre-training has left it: its slurmd rejoins
        # (ReturnToService=2), and the post-training jobs get all 4 nodes
        ( t=0; while [ "$t" -lt 1200 ] && kill -0 $pipe 2>/dev/null; do
              if grep -q 'excluding failed nodes' "$pre/recovery.log" 2>/dev/null; then
                  HERD_SLURM_CLUSTER=$HERD_SLURM_DIR /usr/sbin/slurmd -N "$node"; break
              fi
              sleep 1; t=$((t + 1))
          done ) >/dev/null 2>&1 &
    else
        echo "== 4. node failure: skipped (pre-training was not running on a node this demo could find)"
    fi
fi

prc=0; wait $pipe || prc=$?
kill "$prog" 2>/dev/null || true
tail -n 3 "$RUN.pipeline.log" | sed 's/^/  /'

echo
echo "== 5. summary ($RUN) =="
val() { sed -n "s/.*\"$2\":\([-0-9.e+]*\).*/\1/p" "$1" | tail -n 1; }
printf '  %-16s %8s %10s %9s %8s %9s  %s\n' stage steps tokens loss mfu% restarts "short-context val loss (general math code multilingual)"
for d in "$RUN"/[0-9]*_*; do
    [ -d "$d" ] || continue
    m=$d/metrics.jsonl
    last=$(grep '"loss"' "$m" 2>/dev/null | tail -n 1)
    steps=$(echo "$last" | sed -n 's/.*"step":\([0-9]*\).*/\1/p')
    tokens=$(echo "$last" | sed -n 's/.*"tokens_seen":\([0-9]*\).*/\1/p')
    loss=$(echo "$last" | sed -n 's/.*"loss":\([-0-9.e+]*\).*/\1/p')
    mfu=$(grep '"mfu"' "$m" 2>/dev/null | sed -n 's/.*"mfu":\([0-9.e+-]*\).*/\1/p' |
          awk '{s += $1; n++} END {if (n) printf "%.2f", 100 * s / n}')
    restarts=$(grep -c 'restart [0-9]*/\|requeueing' "$d/recovery.log" 2>/dev/null || true)
    ev=""
    if [ -f "$d/eval.json" ]; then
        ev=$(for s in general math code multilingual; do
                 sed -n "s/.*\"$s\": {\"loss\": \([0-9.]*\).*/\1/p" "$d/eval.json" | cut -c1-5
             done | tr '\n' ' ')
    fi
    printf '  %-16s %8s %10s %9.4f %8s %9s  %s\n' "$(basename "$d")" "${steps:-?}" "${tokens:-?}" \
        "${loss:-0}" "${mfu:-?}" "${restarts:-0}" "$ev"
done
if [ -f "$d/passkey.json" ]; then
    echo "  passkey retrieval accuracy by stage and context length ($(grep -o '"trials": [0-9]*' "$d/passkey.json" | head -n 1 | grep -o '[0-9]*$') trials per length):"
    for p in "$RUN"/[0-9]*_*/passkey.json; do
        printf '    %-22s %s\n' "$(basename "$(dirname "$p")")" \
            "$(grep -o '"[0-9]*": {"correct": [0-9]*, "skipped": [0-9]*, "accuracy": [0-9.]*' "$p" |
               sed 's/"\([0-9]*\)".*"accuracy": \([0-9.]*\)/\1: \2/' | tr '\n' ' ')"
    done
fi
echo
echo "  recovery of pre-training ($RUN/01_pretrain/recovery.log):"
sed 's/^/    /' "$RUN"/01_pretrain/recovery.log 2>/dev/null || true
echo "  $(sh scripts/goodput_stage.sh "$RUN/01_pretrain")"
# the adaptation gates (configs with #GATE lines): which stages were extended, and why
for g in "$RUN"/[0-9]*_*/gate.json; do
    [ -f "$g" ] || continue
    n=$(sed -n 's/.*"extensions": \([0-9]*\).*/\1/p' "$g"); add=$(sed -n 's/.*"steps_added": \([0-9]*\).*/\1/p' "$g")
    verdict="passed"; grep -q '"passed": true' "$g" || verdict="not adapted at the limit"
    printf '  gate %-20s %s; extensions %s (+%s steps): %s\n' "$(basename "$(dirname "$g")")" "$verdict" "$n" "$add" \
        "$(sed -n 's/.*"reason": "\(.*\)"}$/\1/p' "$g" | sed 's/\\"/"/g')"
done
if [ -f "$RUN/final/average.json" ]; then
    echo "  final model: the average of the annealing checkpoints: $(ls -d "$RUN"/final/step_* 2>/dev/null | tail -n 1)"
    echo "               safetensors: $RUN/final/model.safetensors"
    echo "               $(cat "$RUN/final/average.json")"
fi
if [ -d "$RUN/post" ]; then
    echo
    echo "  post-training ($RUN/post/seedS/roundR: eval.tsv, log.txt; each seed its own task instance;"
    echo "  the held-out questions are in none of the training sets, and the wanted answer is the"
    echo "  number alone, which only the preference data says: docs/post-training.md \"The demo task\")"
    done_seeds=$(for d in $(ls -d "$RUN"/post/seed* | sort -V); do
                     [ -f "$d/round0/eval.tsv" ] && echo "$d" || echo "  $d: no result (see its round*/log.txt)" >&2; done)
    # shellcheck disable=SC2086
    [ -n "$done_seeds" ] && sh slurm/post_table.sh $done_seeds 2>&1 | sed 's/^/  /' | tee "$RUN/post/table.txt"
fi
echo "  took $(( $(date +%s) - t_start )) s; the chain exited $prc"
if [ -x build/herd ] && [ -d "$RUN/01_pretrain" ]; then
    build/herd report --out "$RUN/report" "$RUN"/[0-9]*_* >"$RUN/report.txt" 2>&1 &&
        sed -n '/^heat-map/,$p' "$RUN/report.txt" | sed 's/^/  passkey /' &&
        echo "  plots: $RUN/report/report.html"
fi
exit $prc

#!/bin/sh
# slurm/post_train_round.sh's launches and the demo's post-training task:
#  - a bad *_LAUNCH is refused before anything runs, naming the variable;
#  - scripts/make_post_style_data.sh: the restated answers are the bare ones
#    restated, about half of the SFT answers, the held-out RM pairs are out of
#    the training files, the same seed gives the same bytes and another seed
#    other ones;
#  - on a 4-node local Slurm cluster, a whole round (annotate, rm, rs, sft, dpo,
#    average, control, eval) with every step at "4 8" and sft, rm and dpo at
#    TP2 ("4 8 parallel.tp=2": `herd train` with post.objective, FSDP over DP4):
#    each step's ranks (seen by a wrapper that logs the node and rank, then runs
#    build/herd) are 8 over 4 nodes, the trainer ran TP2 x DP4 for each
#    trained model, each was exported by one task (`herd ckpt export`), average
#    is one task, a layout KEY=VALUE reaches its step's command only, and
#    eval.tsv has the five models; SEED, N_PROMPTS and RM_VAL reach their
#    steps (train.seed, the sampling seed, 10 prompts, the reward model's
#    held-out accuracy in log.txt).
set -u
cd "$(dirname "$0")/../.."
. tests/slurm/lib.sh
[ -x build/herd ] || { skip post_round_launch "build/herd not built"; exit 0; }
tmp=$(mktemp -d /tmp/herd-post-launch.XXXXXX)
export HERD_SLURM_DIR=$tmp/slurm
cleanup() { sh slurm/local/cluster.sh stop >/dev/null 2>&1; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM

# ---- bad launches ----
for v in "RM_LAUNCH=4" "SFT_LAUNCH=4 0" "DPO_LAUNCH=a 2" "EVAL_LAUNCH=1 2 tp=2"; do
    name=${v%%=*}; val=${v#*=}
    msg=$(env "$name=$val" OUT="$tmp/bad" sh slurm/post_train_round.sh 2>&1); rc=$?
    if [ "$rc" -ne 0 ] && echo "$msg" | grep -q "post_train_round: $name"; then pass "post_round_bad_launch_refused ($name='$val')"
    else fail "post_round_bad_launch_refused ($name='$val')" "rc $rc: $msg"; fi
done

# ---- the task's data ----
d1=$tmp/s1; d1b=$tmp/s1b; d2=$tmp/s2
ok=1
for x in "$d1 1" "$d1b 1" "$d2 2"; do
    set -- $x
    sh scripts/make_post_style_data.sh --out "$1" --seed "$2" >/dev/null 2>&1 || ok=0
done
if [ "$ok" = 1 ]; then
    # each restated SFT answer is its question with the number in place of '?' ("x=N" for x+b=c)
    bad=$(awk -F'"' '$18 !~ /^[0-9]+$/ { q = $10; a = $18
            if (q ~ /^x\+/) { if (a !~ /^x=[0-9]+$/) print } else { sub(/\?$/, "", q); if (index(a, q) != 1) print } }' "$d1/sft.jsonl" | wc -l)
    n=$(awk -F'"' '$18 !~ /^[0-9]+$/' "$d1/sft.jsonl" | wc -l); all=$(wc -l <"$d1/sft.jsonl")
    # restated test answers carry the bare answer's number
    mism=$(paste -d'\n' "$d1/test.jsonl" "$d1/test_restated.jsonl" | awk -F'"' 'NR % 2 { a = $18; next }
            { b = $18; sub(/^.*=/, "", b); if (a != b) print }' | wc -l)
    if [ "$bad" = 0 ] && [ "$mism" = 0 ] && [ "$n" -gt $((all * 2 / 5)) ] && [ "$n" -lt $((all * 3 / 5)) ]; then
        pass "post_style_restated_answers ($n of $all SFT answers restated, test_restated matches test)"
    else fail post_style_restated_answers "bad $bad, mismatched $mism, restated $n of $all"; fi
    vq=$(awk -F'"' '{ print $10 }' "$d1/pref_val.jsonl" | sort -u)
    leak=$(awk -F'"' '{ print $10 }' "$d1/pref.jsonl" "$d1/pref_questions.jsonl" | sort -u | grep -cxF "$vq")
    if [ "$(wc -l <"$d1/pref_val.jsonl")" = 200 ] && [ "$leak" = 0 ]; then pass post_style_rm_val_held_out
    else fail post_style_rm_val_held_out "$(wc -l <"$d1/pref_val.jsonl") pairs, $leak of their questions in training files"; fi
    if cmp -s "$d1/sft.jsonl" "$d1b/sft.jsonl" && cmp -s "$d1/pref.jsonl" "$d1b/pref.jsonl" &&
       ! cmp -s "$d1/sft.jsonl" "$d2/sft.jsonl" && cmp -s "$d1/test.jsonl" "$d2/test.jsonl"; then
        pass post_style_seeded
    else fail post_style_seeded "seed 1 twice differ, or seed 2 equals it, or the questions moved"; fi
else
    fail post_style_data "make_post_style_data.sh failed"
fi

# ---- a round at 4 nodes x 2 ranks per step ----
tok=data/demo-mix/tokenizer.model
# a fresh clone has no demo data yet: build it as recipe_chain.sh does
[ -s "$tok" ] || sh scripts/make_demo_mix.sh >/dev/null 2>&1 ||
    { skip post_round_multinode "$tok missing and make demo-data failed"; exit "$((fails > 0))"; }
if ! cluster_up 4; then skip post_round_multinode "$why"; exit "$((fails > 0))"; fi
data=$tmp/data; mkdir -p "$data"
for f in sft pref pref_questions prompts test pref_val; do head -n 24 "$d1/$f.jsonl" >"$data/$f.jsonl"; done
cfg=configs/recipe/tiny/post/post.yaml
build/herd post sft "$cfg" --tokenizer "$tok" --data "$data/sft.jsonl" --steps 1 --out "$tmp/start.safetensors" >/dev/null 2>&1 ||
    { fail post_round_multinode "the starting model: herd post sft failed"; exit 1; }
# train.init_from of a weights file (what the round's trainer steps start
# from): one step at lr 0 dumps the file's tensors bitwise; a truncated file
# is refused naming it
init() { build/herd train "$cfg" --set post.objective=sft --set post.data="$data/sft.jsonl" --set post.tokenizer="$tok" \
         --set train.max_steps=1 --set optim.lr=0 --set optim.min_lr=0 "$@"; }
if init --set train.init_from="$tmp/start.safetensors" --set train.out_dir="$tmp/init" --dump-params "$tmp/init.st" \
        >"$tmp/init.log" 2>&1 &&
   /usr/bin/python3 - "$tmp/init.st" "$tmp/start.safetensors" <<'PY'
import sys
sys.path.insert(0, "tests/mpi")
import numpy as np
from compare_runs import load_st
a, b = load_st(sys.argv[1]), load_st(sys.argv[2])
assert set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a), "weights differ from the file's"
PY
then pass "trainer_init_from_weights_file (lr 0: the run's weights are the file's, bitwise)"
else fail trainer_init_from_weights_file "$(tail -n 3 "$tmp/init.log")"; fi
head -c 1000 "$tmp/start.safetensors" >"$tmp/torn.safetensors"
msg=$(init --set train.init_from="$tmp/torn.safetensors" --set train.out_dir="$tmp/init_torn" 2>&1); rc=$?
if [ "$rc" -ne 0 ] && echo "$msg" | grep -q "herd: $tmp/torn.safetensors: "; then pass trainer_init_from_torn_file_refused
else fail trainer_init_from_torn_file_refused "rc $rc: $(echo "$msg" | tail -n 2)"; fi
cat >"$tmp/herd" <<EOF
#!/bin/sh
echo "\${SLURMD_NODENAME:-none} \${SLURM_PROCID:-0} \$*" >>"$tmp/ranks.log"
exec "$PWD/build/herd" "\$@"
EOF
chmod +x "$tmp/herd"
L="4 8"; TP="4 8 parallel.tp=2"
jid=$(HERD=$tmp/herd CONFIG=$cfg TOK=$tok DATA=$data ROUND=1 MODEL=$tmp/start.safetensors OUT=$tmp/round1 \
      CONTROL_FROM=$tmp/start.safetensors RM_STEPS=2 SFT_STEPS=2 DPO_STEPS=2 K=2 SEED=5 N_PROMPTS=10 \
      ANNOTATE_LAUNCH="$L" RM_LAUNCH="$TP" RS_LAUNCH="$L" SFT_LAUNCH="$TP train.log_every=1" DPO_LAUNCH="$TP" \
      EVAL_LAUNCH="$L" sbatch --parsable --export=ALL --nodes=4 --ntasks=8 --cpus-per-task=1 \
      --output="$tmp/job-%j.out" slurm/post_train_round.sh 2>&1)
jid=${jid%%;*}
job_wait "$jid" 600 || fail post_round_multinode "job $jid still running after 600 s"
st=$(job_state "$jid")
why=""
[ "$st" = COMPLETED ] || why="job $jid $st: $(tail -n 5 "$tmp/job-$jid.out" 2>/dev/null | tr '\n' ' ');"
# each logged command as "NODE RANK STEP ARGS...": herd post's subcommand, the
# trainer's post.objective, "export" for herd ckpt export
awk '{ s = $4 } $3 == "ckpt" { s = "export" }
     $3 == "train" { for (i = 4; i <= NF; i++) if ($i ~ /^post\.objective=/) { s = $i; sub(/^[^=]*=/, "", s) } }
     { $3 = s; print }' "$tmp/ranks.log" >"$tmp/steps.log" 2>/dev/null
for c in annotate rm rs sft dpo eval; do
    r=$(awk -v c="$c" '$3 == c { print $2 }' "$tmp/steps.log" 2>/dev/null | sort -u | wc -l)
    n=$(awk -v c="$c" '$3 == c { print $1 }' "$tmp/steps.log" 2>/dev/null | sort -u | wc -l)
    [ "$r" = 8 ] && [ "$n" = 4 ] || why="$why $c on $r ranks, $n nodes;"
done
a=$(awk '$3 == "average"' "$tmp/steps.log" 2>/dev/null | wc -l)
[ "$a" = 1 ] || why="$why average ran $a times;"
# rm, sft, dpo and the control: 8 ranks each of `herd train`, then one export
t=$(awk '$3 == "train"' "$tmp/ranks.log" 2>/dev/null | wc -l); e=$(awk '$3 == "export"' "$tmp/steps.log" 2>/dev/null | wc -l)
[ "$t" = 32 ] && [ "$e" = 4 ] || why="$why herd train ran on $t ranks (want 4 x 8), ckpt export $e times (want 4);"
l=$(grep -c "layout TP2 x CP1 x PP1 x DP4 (8 ranks)" "$tmp/round1/log.txt" 2>/dev/null)
[ "$l" = 4 ] || why="$why $l trainer runs at TP2 x DP4 in log.txt (want 4);"
for c in rm sft dpo; do
    awk -v c="$c" '$3 == c' "$tmp/steps.log" | grep -v -q -- "--set parallel.tp=2" && why="$why $c lacks its layout;"
done
awk '$3 == "sft"' "$tmp/steps.log" | grep -v -q -- "--set train.log_every=1" && why="$why the sft layout did not reach the command;"
awk '$3 == "rs" || $3 == "rm"' "$tmp/steps.log" | grep -q -- "train.log_every" && why="$why rs or rm got sft's --set;"
awk '$3 == "rs"' "$tmp/steps.log" | grep -q -- "--set" && why="$why rs got a --set it was not given;"
for m in rm sft dpo control; do
    [ -s "$tmp/round1/$m.safetensors" ] || why="$why $m.safetensors missing;"
done
grep -q "annotate 4 8, rm $TP, rs 4 8, sft $TP train.log_every=1, dpo $TP, eval 4 8" "$tmp/round1/log.txt" 2>/dev/null ||
    why="$why log.txt does not name the launches;"
[ "$(tail -n +2 "$tmp/round1/eval.tsv" 2>/dev/null | wc -l)" = 5 ] || why="$why eval.tsv lacks models;"
# SEED: the trainer's train.seed and the sampling seed 100 x SEED + ROUND; N_PROMPTS:
# the first 10 questions and prompts; RM_VAL (DATA/pref_val.jsonl): the reward
# model's held-out accuracy in the log
for c in rm sft dpo; do
    awk -v c="$c" '$3 == c' "$tmp/steps.log" | grep -v -q -- "--set train.seed=5" && why="$why $c lacks train.seed=5;"
done
for c in annotate rs; do
    awk -v c="$c" '$3 == c' "$tmp/steps.log" | grep -v -q -- "--seed 501" && why="$why $c lacks --seed 501;"
done
grep -q "herd post annotate: .*: 10 prompts" "$tmp/round1/log.txt" && grep -q "herd post rs: 10 prompts" "$tmp/round1/log.txt" ||
    why="$why annotate or rs did not take the first 10 prompts;"
grep -q "reward model on the held-out pairs: $data/pref_val.jsonl: loss [0-9.]* accuracy [0-9.]* over [1-9][0-9]* pairs" \
    "$tmp/round1/log.txt" || why="$why no held-out accuracy of the reward model in log.txt;"
if [ -z "$why" ]; then pass "post_round_multinode (annotate, rs, eval: 8 ranks on 4 nodes; rm, sft, dpo: herd train TP2 x DP4 on 4 nodes, exported)"
else fail post_round_multinode "$why"; fi
exit "$((fails > 0))"

#!/bin/sh
# The tiny recipe end to end on the local Slurm cluster (about 2-4 minutes):
# slurm/pipeline.sh submits configs/recipe/tiny with its step counts scaled down
# (pre-training with a batch ramp, long context 256 -> 512 -> 1024 with cp 2 at
# 1024, annealing), the evaluations
# and the averaging as a chain of afterok jobs, and waits. Checks (the numerical
# ones in tests/recipe/check_chain.py):
#  - every job completed;
#  - each stage started from the previous stage's final checkpoint: the same step
#    and the same MANIFEST (its per-shard checksums) in both, and the stage's first
#    logged step is that step + 1;
#  - seq_len and lr of every logged step follow the stage's config (the schedule
#    recomputed from the resolved config: warm-up, cosine, annealing to 0);
#  - the final model equals the element-wise mean of the annealing checkpoints
#    (each exported to safetensors; max |diff| <= 1e-6);
#  - the short-context (128) validation loss after the long-context stages is
#    within 0.30 nats of its value before them, per source (eval.json);
#  - each stage has passkey.json (4 context lengths x 5 depths, 50 trials per length,
#    none skipped, accuracy in [0, 1]);
#  - post-training joins the chain: round 0 (SFT) from the final model, round 1
#    (RM, rejection sampling, SFT, DPO, average, control) from round 0's model, each
#    with held-out accuracies; the round's model is the mean of its SFT and DPO;
#  - SEEDS runs post-training once per seed, one seed's jobs after the other's,
#    each on its own data (DATA's %s), and slurm/post_table.sh sums them up;
#  - a failed stage stops the chain and --status names it (a stage whose data
#    path is missing).
set -u
cd "$(dirname "$0")/../.."
. tests/slurm/lib.sh
[ -x build/herd ] || { skip recipe_chain "build/herd not built"; exit 0; }
if [ ! -s data/demo-mix/mix.yaml ] || [ ! -s data/demo-mix/passkey1024.bin ]; then
    sh scripts/make_demo_mix.sh >/dev/null 2>&1 || { skip recipe_chain "data/demo-mix missing and make demo-data failed"; exit 0; }
fi
export HERD_SLURM_DIR=$(mktemp -d /tmp/herd-slurm-recipe.XXXXXX)
tmp=$(mktemp -d /tmp/herd-recipe.XXXXXX)
cleanup() {
    sh slurm/local/cluster.sh stop >/dev/null 2>&1
    [ "${HERD_KEEP:-0}" = 1 ] && echo "kept $tmp" || rm -rf "$tmp"; rm -rf "$HERD_SLURM_DIR"
}
trap cleanup EXIT INT TERM

# bad input: refused before anything is submitted
msg=$(sh slurm/pipeline.sh "$tmp/nodir" 2>&1); rc=$?
if [ "$rc" -ne 0 ] && echo "$msg" | grep -q "$tmp/nodir: config directory does not exist"; then
    pass recipe_pipeline_missing_dir_refused
else
    fail recipe_pipeline_missing_dir_refused "rc $rc: $msg"
fi
msg=$(sh slurm/pipeline.sh configs/recipe/tiny --from 09 --out "$tmp/x" 2>&1); rc=$?
if [ "$rc" -ne 0 ] && echo "$msg" | grep -q -- "--from 09: no stage 09"; then
    pass recipe_pipeline_bad_from_refused
else
    fail recipe_pipeline_bad_from_refused "rc $rc: $msg"
fi

if ! cluster_up 4; then skip recipe_chain "$why"; exit 0; fi
export HERD_OMPI_IF=lo

t0=$(date +%s)
RUN=$tmp/run
# the recipe's stages with their step counts scaled down: 40 + 10 + 10 + 10 + 12 steps
# instead of 1200 + 200 + 200 + 200 + 12 (learning retrieval takes the long schedule;
# this test checks the mechanics): the same stages, data, layouts, schedule and checks
CDIR=$tmp/tiny
cp -r configs/recipe/tiny "$CDIR"
scale() { # scale STAGE MAX_TOKENS (cumulative)
    sed -i "s/^  max_tokens: .*/  max_tokens: $2/" "$CDIR/$1.yaml"
}
scale 01_pretrain 122880; scale 02_long_context_256 163840; scale 03_long_context_512 204800
scale 04_long_context_1024 245760; scale 05_anneal 294912    # steps 40, 50, 60, 70, 82
# post-training as a link of the chain, with few steps (the demo runs the real ones)
head -n 40 data/demo-mix/post/prompts.jsonl >"$tmp/prompts.jsonl"
head -n 40 data/demo-mix/post/test.jsonl >"$tmp/test.jsonl"
mkdir -p "$tmp/postdata"
cp data/demo-mix/post/sft.jsonl data/demo-mix/post/pref.jsonl "$tmp/postdata/"
cp "$tmp/test.jsonl" "$tmp/postdata/test.jsonl"; cp "$tmp/prompts.jsonl" "$tmp/postdata/prompts.jsonl"
# one rank per step here (the demo's 4 x 2 launches: tests/cli/post_round_launch.sh)
export POST_SBATCH="--nodes=1 --ntasks=1" ANNOTATE_LAUNCH="0 1" RM_LAUNCH="0 1" RS_LAUNCH="0 1" \
       SFT_LAUNCH="0 1" DPO_LAUNCH="0 1" EVAL_LAUNCH="0 1"
# one seed here (SEEDS empty: RUN/post/roundR); the seeds' layout: below
export ROUNDS=1 SFT0_STEPS=20 RM_STEPS=4 SFT_STEPS=6 DPO_STEPS=4 K=2 DATA=$tmp/postdata SEEDS=
# no adaptation gates (HERD_GATE=0): the checks below follow the stages' configured
# steps, which a gate's extension would move (the gate: tests/cli/recipe_gate.sh)
# the timeout only stops a hung chain: ~4 min on a quiet 2-core machine, past
# 8 min beside a running `make demo` (load 10-20)
HERD_GATE=0 timeout 900 sh slurm/pipeline.sh "$CDIR" --out "$RUN" --wait >"$tmp/pipeline.log" 2>&1; rc=$?
unset ROUNDS SFT0_STEPS RM_STEPS SFT_STEPS DPO_STEPS K DATA
t1=$(date +%s)
unset POST_SBATCH ANNOTATE_LAUNCH RM_LAUNCH RS_LAUNCH SFT_LAUNCH DPO_LAUNCH EVAL_LAUNCH
if [ "$rc" -eq 0 ] && [ "$(grep -c 'COMPLETED' "$tmp/pipeline.log")" -ge 13 ]; then
    pass "recipe_chain_completed ($((t1 - t0)) s, 5 stages + 5 evaluations + averaging + 2 post-training rounds)"
else
    fail recipe_chain_completed "rc $rc after $((t1 - t0)) s: $(tail -n 30 "$tmp/pipeline.log")"
    exit 1
fi
grep -q "squeue -j" "$tmp/pipeline.log" && grep -Eq "stage 01_pretrain: job [0-9]+" "$tmp/pipeline.log" \
    && pass recipe_pipeline_prints_jobs || fail recipe_pipeline_prints_jobs "$(head -n 5 "$tmp/pipeline.log")"

# MANIFESTs: stage i's copy of stage i-1's newest checkpoint is byte-identical
prev=""; ok=1; why=""
for s in $(ls "$CDIR" | grep '\.yaml$' | sed 's/\.yaml$//'); do
    if [ -n "$prev" ]; then
        p=$(ls -d "$RUN/$prev"/checkpoints/step_* | sort | tail -n 1)
        c=$RUN/$s/checkpoints/$(basename "$p")
        cmp -s "$p/MANIFEST" "$c/MANIFEST" || { ok=0; why="$why $s: $c/MANIFEST differs from $p/MANIFEST;"; }
        build/herd ckpt verify "$c" >/dev/null 2>&1 || { ok=0; why="$why $c fails verify;"; }
    fi
    prev=$s
done
[ "$ok" = 1 ] && pass recipe_stages_start_from_previous_checkpoint_manifest || fail recipe_stages_start_from_previous_checkpoint_manifest "$why"

# the final model and the annealing checkpoints as safetensors
mkdir -p "$tmp/st"
for d in $(python3 -c "import json,sys; print(' '.join(json.load(open(sys.argv[1]))['checkpoints']))" "$RUN/final/average.json"); do
    build/herd ckpt export "$d" "$tmp/st/$(basename "$d").safetensors" >/dev/null 2>&1 || fail recipe_export "$d"
done
/usr/bin/python3 tests/recipe/check_chain.py "$CDIR" "$RUN" "$tmp/st" 0.30; rc=$?
[ "$rc" -eq 0 ] || fails=$((fails + 1))

# post-training: round 0 starts from the chain's final model, round 1 from round 0's;
# each evaluated on the held-out questions; a round's model is the mean of its SFT and DPO
ok=1; why=""
grep -q "round 0 (SFT only) .* from $RUN/final/model.safetensors" "$RUN/post/round0/log.txt" 2>/dev/null || { ok=0; why="$why round0 did not start from final/model.safetensors;"; }
grep -q "round 1: .* from $RUN/post/round0/model.safetensors" "$RUN/post/round1/log.txt" 2>/dev/null || { ok=0; why="$why round1 did not start from round0's model;"; }
for r in 0 1; do
    n=$(tail -n +2 "$RUN/post/round$r/eval.tsv" 2>/dev/null | awk -F'\t' '$2 >= 0 && $2 <= 1' | wc -l)
    want=2; [ "$r" = 1 ] && want=5
    [ "$n" -eq "$want" ] || { ok=0; why="$why round$r/eval.tsv has $n accuracies in [0, 1], expected $want;"; }
done
grep -Eq "^post +round1 .*COMPLETED" "$tmp/pipeline.log" || { ok=0; why="$why post round1 not COMPLETED;"; }
[ "$ok" = 1 ] && pass "recipe_post_training_rounds_chained ($(tail -n +2 "$RUN/post/round1/eval.tsv" | cut -f2 | tr '\n' ' '))" \
    || fail recipe_post_training_rounds_chained "$why $(tail -n 5 "$tmp/pipeline.log")"
if /usr/bin/python3 tests/lib/check_mean.py "$RUN/post/round1/model.safetensors" "$RUN/post/round1/sft.safetensors" \
       "$RUN/post/round1/dpo.safetensors" >/dev/null
then pass recipe_post_round_model_is_mean_of_sft_and_dpo; else fail recipe_post_round_model_is_mean_of_sft_and_dpo "numpy check"; fi

# SEEDS: post-training once per seed (--from post on the same run), RUN/post/seedS with
# DATA's %s the seed; a seed's first job waits for the previous seed's last (afterany);
# slurm/post_table.sh gives every model's accuracy over the 2 seeds and the gains
for s in 1 2; do cp -r "$tmp/postdata" "$tmp/postdata$s"; done
SEEDS="1 2" ROUNDS=1 SFT0_STEPS=10 RM_STEPS=2 SFT_STEPS=2 DPO_STEPS=2 K=2 N_PROMPTS=8 DATA="$tmp/postdata%s" \
    POST_SBATCH="--nodes=1 --ntasks=1" ANNOTATE_LAUNCH="0 1" RM_LAUNCH="0 1" RS_LAUNCH="0 1" SFT_LAUNCH="0 1" \
    DPO_LAUNCH="0 1" EVAL_LAUNCH="0 1" timeout 600 sh slurm/pipeline.sh "$CDIR" --out "$RUN" --from post --wait \
    >"$tmp/seeds.log" 2>&1; rc=$?
why=""
[ "$rc" -eq 0 ] || why="rc $rc;"
for s in 1 2; do
    grep -q "round 1: .* from $RUN/post/seed$s/round0/model.safetensors" "$RUN/post/seed$s/round1/log.txt" 2>/dev/null ||
        why="$why seed$s/round1 did not start from seed$s/round0's model;"
    grep -q "from .*, data $tmp/postdata$s (" "$RUN/post/seed$s/round0/log.txt" 2>/dev/null || why="$why seed $s did not read postdata$s;"
    grep -q "herd post rs: 8 prompts" "$RUN/post/seed$s/round1/log.txt" 2>/dev/null || why="$why seed $s: N_PROMPTS not taken;"
done
j1=$(awk '$2 == "seed1/round1" { print $3 }' "$RUN/pipeline.jobs")
grep -Eq "seed 2, round 0 \(SFT only\): job [0-9]+ \(after (afterok:[0-9]+,)?afterany:$j1\)" "$tmp/seeds.log" ||
    why="$why seed 2 does not wait for seed 1's last job ($j1);"
[ "$(grep -c '^post .*seed[12]/round[01] .*COMPLETED' "$tmp/seeds.log")" = 4 ] || why="$why not 4 post jobs COMPLETED;"
tab=$(sh slurm/post_table.sh "$RUN/post/seed1" "$RUN/post/seed2" 2>&1)
echo "$tab" | grep -q "round 1: average of SFT and DPO (the round's model) .*n 2)" &&
    echo "$tab" | grep -Eq "round 1 - control, per seed: -?[0-9.]+ -?[0-9.]+; mean ± sd" || why="$why table: $tab;"
[ -z "$why" ] && pass "recipe_post_seeds (2 seeds x 2 rounds, one seed after the other, the table over both)" ||
    fail recipe_post_seeds "$why $(tail -n 8 "$tmp/seeds.log")"

# a failed stage stops the chain, --status names it and why; --from resumes there
mkdir -p "$tmp/badcfg"
cp configs/recipe/tiny/01_pretrain.yaml configs/recipe/tiny/02_long_context_256.yaml "$tmp/badcfg/"
sed -i 's/^  max_tokens: .*/  max_tokens: 20480/' "$tmp/badcfg/01_pretrain.yaml"           # 10 steps
sed -i 's/^  max_tokens: .*/  max_tokens: 28672/' "$tmp/badcfg/02_long_context_256.yaml"   # 2 more
# stage 2's data disappears after submission: the checks pass, its job fails
cp data/demo-mix/code.bin "$tmp/code.bin"
sed -i "s|data/demo-mix/code.bin|$tmp/code.bin|" "$tmp/badcfg/02_long_context_256.yaml"
sh slurm/pipeline.sh "$tmp/badcfg" --out "$tmp/badrun" --no-eval >"$tmp/bad.log" 2>&1 && mv "$tmp/code.bin" "$tmp/code.bin.away"
timeout 120 sh -c 'while [ -n "$(squeue -h -o %i)" ]; do sleep 1; done'
st=$(sh slurm/pipeline.sh --status "$tmp/badrun" 2>&1); rc=$?
if [ "$rc" -ne 0 ] && echo "$st" | grep -q "stage 02_long_context_256 FAILED" && echo "$st" | grep -q "code.bin" \
   && echo "$st" | grep -Eq "^stage +01_pretrain .*COMPLETED" && echo "$st" | grep -Eq "^average .*CANCELLED" \
   && [ ! -f "$tmp/badrun/final/average.json" ]; then
    pass recipe_failed_stage_stops_chain
else
    fail recipe_failed_stage_stops_chain "rc $rc: $st"
fi
mv "$tmp/code.bin.away" "$tmp/code.bin"
timeout 120 sh slurm/pipeline.sh "$tmp/badcfg" --out "$tmp/badrun" --from 02 --no-eval --wait >"$tmp/from.log" 2>&1; rc=$?
first=$(grep -m1 '^{"step"' "$tmp/badrun/02_long_context_256/metrics.jsonl" 2>/dev/null | sed -n 's/^{"step":\([0-9]*\),.*/\1/p')
if [ "$rc" -eq 0 ] && ! grep -q "stage 01_pretrain: job" "$tmp/from.log" && [ "$first" = 11 ] \
   && [ -f "$tmp/badrun/final/average.json" ] && grep -Eq "^stage +02_long_context_256 .*COMPLETED" "$tmp/from.log"; then
    pass "recipe_from_resumes_failed_stage (stage 02 from step 10 of stage 01)"
else
    fail recipe_from_resumes_failed_stage "rc $rc, first step ${first:-none}: $(cat "$tmp/from.log")"
fi
exit $fails

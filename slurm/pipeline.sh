#!/bin/sh
# pipeline.sh — the training recipe as a chain of Slurm jobs.
#
#   sh slurm/pipeline.sh CONFIG_DIR [--out RUN_DIR] [--from STAGE] [--wait] [--no-eval] [--test-only]
#   sh slurm/pipeline.sh --status RUN_DIR
#   sh slurm/pipeline.sh --progress RUN_DIR
#
# Every CONFIG_DIR/*.yaml is a stage, in file-name order (01_pretrain.yaml,
# 02_long_context_..., ..., NN_anneal.yaml). Each stage is one slurm/train.sbatch job
# into RUN_DIR/STAGE, submitted with --dependency=afterok on the stage before and
# --init-from the previous stage's directory (it starts from that stage's newest
# complete checkpoint). The `#SBATCH` lines of a stage's config are passed to sbatch
# (nodes, tasks per node, time, partition, account: edit them there).
# After each stage, an evaluation job (slurm/recipe_eval.sh, afterok on the stage)
# writes RUN_DIR/STAGE/eval.json: the validation loss per source at the short
# context of the first stage, and RUN_DIR/STAGE/passkey.json: passkey retrieval
# accuracy per context length. After the last stage (the annealing stage), an
# averaging job (afterok) averages that stage's own checkpoints (`herd ckpt average`)
# into RUN_DIR/final/ and exports RUN_DIR/final/model.safetensors.
# Post-training follows when CONFIG_DIR/post/post.env exists: round 0 (SFT of the
# final model) and ROUNDS rounds of slurm/post_train_round.sh (reward model,
# rejection sampling, SFT, DPO, averaging), one job each, afterok on the one
# before, into RUN_DIR/post/roundR (held-out accuracy in its eval.tsv). post.env
# sets the round's variables (CONFIG, TOK, DATA, ROUNDS, step counts: see
# slurm/post_train_round.sh); a variable already in the environment wins.
# SEEDS (post.env, e.g. "1 2 3") runs post-training once per seed, into
# RUN_DIR/post/seedS/roundR: SEED=S for the rounds, DATA with each %s replaced
# by S (a task instance per seed), each seed's jobs after the previous seed's
# (one seed on the nodes at a time), so slurm/post_table.sh can give every
# model's held-out accuracy as mean and spread over the seeds.
# A failed stage stops the chain: dependent jobs are cancelled
# (--kill-on-invalid-dep=yes), and `--status` names the stage and its log tail.
# The adaptation gate: a stage config with `#GATE key=value ...` lines gets a gate job
# (slurm/recipe_gate.sh, the stage's #SBATCH options) after its evaluation, and the
# next stage waits for the gate instead of the stage: the gate checks the paper's two
# criteria (short-context loss back within a margin of the first stage's, passkey
# accuracy at the stage's length) and extends the stage until they hold or its limit
# is reached; RUN_DIR/STAGE/gate.json says what it decided. HERD_GATE=0 (or
# --no-eval) submits no gates.
#
#   --from STAGE   resume the chain at STAGE (a file name, with or without .yaml, or
#                  its number prefix, e.g. 03): the stages before it are not submitted;
#                  STAGE starts from its own newest checkpoint, else the previous one's
#   --wait         wait until every job left the queue, print --status, exit 0 only
#                  when every job completed
#   --no-eval      no evaluation jobs
#   --no-post      no post-training jobs
#   --from post    only post-training, from RUN_DIR/final/model.safetensors
#   --test-only    submit nothing: ask Slurm (`sbatch --test-only`) whether it would
#                  accept each stage's job, with its #SBATCH lines, and when it would
#                  start; exit 1 when it refuses one
#   --status RUN_DIR    works from any shell: without SLURM_CONF it uses the one the
#                  chain was submitted with (RUN_DIR/pipeline.env); when the cluster
#                  does not answer within seconds it fails, naming SLURM_CONF
#   --progress RUN_DIR  a line per started stage from its files (no Slurm needed):
#                  step/total, loss, tokens/s, elapsed and expected time, restarts
#                  (slurm/recipe_progress.sh)
# Environment: HERD_ROOT, HERD_BIN (as slurm/train.sbatch), HERD_SBATCH_ARGS (added to
# every sbatch), HERD_PIPELINE_POLL (seconds between --wait polls, default 2),
# HERD_GATE (0: no gate jobs).
set -u
me=pipeline.sh
die() { echo "$me: $*" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
export HERD_ROOT=${HERD_ROOT:-$(dirname "$here")}
HERD_BIN=${HERD_BIN:-$HERD_ROOT/build/herd}
export HERD_BIN

# ---- the cluster of a run, from any shell ----
# SLURM_CONF from the environment, else the one the chain was submitted with
# (RUN_DIR/pipeline.env); then one `scontrol ping` (it answers at once, where a job
# query retries for tens of seconds): fail now, naming what is missing
cluster_env() {
    if [ -z "${SLURM_CONF:-}" ] && [ -f "$1/pipeline.env" ]; then
        c=$(sed -n 's/^SLURM_CONF=//p' "$1/pipeline.env" | tail -n 1)
        [ -n "$c" ] && export SLURM_CONF="$c"
    fi
    hint="set SLURM_CONF to the cluster's slurm.conf (a local cluster: eval \"\$(HERD_SLURM_DIR=${HERD_SLURM_DIR:-DIR} sh $here/local/cluster.sh env)\"${HERD_SLURM_DIR:+)}"
    [ -n "${HERD_SLURM_DIR:-}" ] || hint="$hint, DIR its directory: /tmp/herd-demo-slurm for make demo, /tmp/herd-slurm by default)"
    if [ -n "${SLURM_CONF:-}" ] && [ ! -f "$SLURM_CONF" ]; then
        die "SLURM_CONF=$SLURM_CONF: no such file (the cluster was stopped or moved); $hint"
    fi
    if ! out=$(timeout -k 1 "${HERD_SLURM_PROBE_S:-5}" scontrol ping 2>&1) || ! echo "$out" | grep -q ' is UP'; then
        why=$(echo "$out" | grep -v '^\*' | grep . | tail -n 1)
        if [ -n "${SLURM_CONF:-}" ]; then
            die "the Slurm cluster of SLURM_CONF=$SLURM_CONF does not answer (${why:-no answer within ${HERD_SLURM_PROBE_S:-5} s}); is it running? $hint"
        fi
        die "no Slurm cluster reachable: SLURM_CONF is not set and $1/pipeline.env records none (${why:-no answer}); $hint"
    fi
}

# ---- --status RUN_DIR: one line per job, and the log tail of a failed one ----
status() {
    run=$1
    [ -f "$run/pipeline.jobs" ] || die "$run/pipeline.jobs: not a pipeline run directory (no job list)"
    cluster_env "$run"
    bad=0
    while read -r kind name job dir; do
        st=$(scontrol show job "$job" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
        reason=$(scontrol show job "$job" 2>/dev/null | sed -n 's/.* Reason=\([^ ]*\).*/\1/p')
        rc=$(scontrol show job "$job" 2>/dev/null | sed -n 's/.* ExitCode=\([^ ]*\).*/\1/p')
        # a job that aged out of slurmctld (MinJobAge): accounting if there is any, else its files
        [ -n "$st" ] || st=$(sacct -n -X -P -j "$job" -o State 2>/dev/null | head -n 1 | cut -d' ' -f1)
        if [ -z "$st" ]; then
            case "$kind" in
                stage) tail -n 1 "$dir/recovery.log" 2>/dev/null | grep -q "stage finished" && st=COMPLETED ;;
                eval) [ -f "$dir/eval.json" ] && st=COMPLETED ;;
                gate) grep -q '"moves_on": true' "$dir/gate.json" 2>/dev/null && st=COMPLETED ;;
                average) [ -f "$dir/average.json" ] && st=COMPLETED ;;
                post) [ -f "$dir/eval.tsv" ] && st=COMPLETED ;;
            esac
            st=${st:-UNKNOWN}
        fi
        printf '%-6s %-28s job %-6s %-10s exit %-5s %s\n' "$kind" "$name" "$job" "$st" "${rc:--}" "$dir"
        case "$st" in
            COMPLETED|PENDING|RUNNING|CONFIGURING|COMPLETING|REQUEUED) ;;
            UNKNOWN) bad=1; echo "       $kind $name: not known to Slurm any more and no result in $dir" ;;
            CANCELLED) [ "$reason" = DependencyNeverSatisfied ] || bad=1
                       echo "       not run: $reason" ;;
            *) bad=1
               echo "       $kind $name FAILED ($st, exit $rc); last lines of its log:"
               for f in "$dir"/job-"$job".out; do [ -f "$f" ] && tail -n 15 "$f" | sed 's/^/       | /'; done
               [ -f "$dir/recovery.log" ] && tail -n 3 "$dir/recovery.log" | sed 's/^/       | recovery: /'
               [ "$kind" = gate ] && [ -f "$dir/gate.log" ] && tail -n 3 "$dir/gate.log" | sed 's/^/       | gate: /' ;;
        esac
    done <"$run/pipeline.jobs"
    for e in "$run"/*/eval.json "$run"/*/passkey.json; do [ -f "$e" ] && echo "eval   $e: $(cat "$e")"; done
    for e in "$run"/*/gate.json; do [ -f "$e" ] && echo "gate   $e: $(cat "$e")"; done
    [ -f "$run/final/average.json" ] && echo "final  $(cat "$run/final/average.json")"
    for e in "$run"/post/round*/eval.tsv "$run"/post/seed*/round*/eval.tsv; do
        [ -f "$e" ] && echo "post   $(dirname "$e"): held-out accuracy $(tail -n +2 "$e" | awk -F'\t' '{n = split($1, p, "/"); printf "%s%s %s", (NR > 1 ? ", " : ""), p[n], $2}')"
    done
    return $bad
}

[ $# -ge 1 ] || die "usage: $me CONFIG_DIR [--out RUN_DIR] [--from STAGE|post] [--wait] [--no-eval] [--no-post] [--test-only] | --status RUN_DIR | --progress RUN_DIR"
if [ "$1" = --status ]; then
    [ $# -eq 2 ] || die "usage: $me --status RUN_DIR"
    status "$2"; exit $?
fi
if [ "$1" = --progress ]; then
    [ $# -eq 2 ] || die "usage: $me --progress RUN_DIR"
    exec sh "$here/recipe_progress.sh" "$2"
fi
CDIR=$1; shift
RUN=""; FROM=""; WAIT=0; EVAL=1; POST=1; TEST_ONLY=0
while [ $# -gt 0 ]; do
    case "$1" in
        --out) [ $# -ge 2 ] || die "--out: needs a directory"; RUN=$2; shift 2 ;;
        --from) [ $# -ge 2 ] || die "--from: needs a stage"; FROM=${2%.yaml}; shift 2 ;;
        --wait) WAIT=1; shift ;;
        --no-eval) EVAL=0; shift ;;
        --no-post) POST=0; shift ;;
        --test-only) TEST_ONLY=1; POST=0; shift ;;
        *) die "argument '$1': expected --out, --from, --wait, --no-eval, --no-post or --test-only" ;;
    esac
done
[ -d "$CDIR" ] || die "$CDIR: config directory does not exist"
stages=$(ls "$CDIR" | grep '\.yaml$' | sort)
[ -n "$stages" ] || die "$CDIR: no stage configs (*.yaml)"
[ -n "$RUN" ] || RUN=runs/recipe-$(basename "$CDIR")
case "$RUN" in /*) ;; *) RUN=$(pwd)/$RUN ;; esac
CDIR=$(cd "$CDIR" && pwd)
mkdir -p "$RUN" || die "$RUN: run directory cannot be created"
first=$(echo "$stages" | head -n 1)
last=$(echo "$stages" | tail -n 1)

# --from: the first stage to submit
postenv=$CDIR/post/post.env
[ -f "$postenv" ] || POST=0
if [ "$FROM" = post ]; then
    [ "$POST" = 1 ] || die "--from post: $postenv does not exist (or --no-post)"
    [ -s "$RUN/final/model.safetensors" ] || die "--from post: $RUN/final/model.safetensors: the chain has no final model yet"
elif [ -n "$FROM" ]; then
    hit=$(echo "$stages" | sed 's/\.yaml$//' | awk -v f="$FROM" '$0 == f || index($0, f "_") == 1' | head -n 1)
    [ -n "$hit" ] || die "--from $FROM: no stage $FROM in $CDIR (stages: $(echo $stages))"
    FROM=$hit
fi

# a stage is gated when its config has #GATE lines, the gates are on and evaluations run
GATE=${HERD_GATE:-1}
case "$GATE" in 0|1) ;; *) die "HERD_GATE '$GATE': expected 0 or 1" ;; esac
gated() { [ "$GATE" = 1 ] && [ "$EVAL" = 1 ] && grep -q '^#GATE\([ 	]\|$\)' "$1"; }

# ---- check every stage before submitting any (no allocation for bad input) ----
for s in $stages; do
    name=${s%.yaml}
    sh "$here/run_stage.sh" check "$CDIR/$s" --out "$RUN/$name" >/dev/null || die "$CDIR/$s: stage $name refused (above)"
    if gated "$CDIR/$s"; then
        [ "$s" != "$first" ] || die "$CDIR/$s: #GATE on the first stage: there is no stage before it to compare the short-context loss with"
        sh "$here/recipe_gate.sh" check "$CDIR/$s" >/dev/null || die "$CDIR/$s: the #GATE settings of stage $name refused (above)"
    fi
done
# post-training: its variables (the environment wins), its config and its files
if [ "$POST" = 1 ]; then
    ROUNDS=${ROUNDS:-}
    set -a; . "$postenv" || die "$postenv: cannot be read"; set +a
    case "$ROUNDS" in ''|*[!0-9]*) die "$postenv: ROUNDS '$ROUNDS': expected a number of rounds >= 0" ;; esac
    for v in CONFIG TOK DATA; do
        eval "f=\${$v:-}"
        [ -n "$f" ] || die "$postenv: $v is not set"
    done
    SEEDS=${SEEDS:-}
    # seed_data S: DATA with each %s replaced by the seed S (its own task instance)
    seed_data() { echo "$DATA" | sed "s/%s/$1/g"; }
    for s in ${SEEDS:-none}; do
        case $s in none) d=$DATA ;; *[!0-9]*) die "$postenv: SEEDS '$SEEDS': expected numbers" ;;
                   *) d=$(seed_data "$s") ;; esac
        for f in "$CONFIG" "$TOK" "$d/sft.jsonl" "$d/pref.jsonl" "$d/test.jsonl"; do
            [ -e "$f" ] || die "$postenv: $f: not found"
        done
    done
    "$HERD_BIN" config "$CONFIG" >/dev/null || die "$CONFIG: post-training config refused (above)"
fi

# sbatch options of a stage: its config's `#SBATCH` lines
stage_sbatch() { sed -n 's/^#SBATCH[ 	]\{1,\}\(--[^ 	#]*\).*/\1/p' "$1" | tr '\n' ' '; }

# --test-only: Slurm's verdict on every stage's job, nothing submitted
if [ "$TEST_ONLY" = 1 ]; then
    bad=0
    for s in $stages; do
        name=${s%.yaml}
        # shellcheck disable=SC2086
        if v=$(sbatch --test-only --job-name="herd-$name" $(stage_sbatch "$CDIR/$s") ${HERD_SBATCH_ARGS:-} \
                   "$here/train.sbatch" "$CDIR/$s" --out "$RUN/$name" 2>&1) && echo "$v" | grep -q ' to start at '; then
            echo "$me: stage $name: accepted: $(echo "$v" | grep ' to start at ' | sed 's/^sbatch: //')"
        else
            echo "$me: stage $name: refused ($(stage_sbatch "$CDIR/$s")): $v" >&2; bad=1
        fi
    done
    exit $bad
fi

jobsfile=$RUN/pipeline.jobs
# a resumed chain keeps the lines of the stages it does not resubmit
if [ -z "$FROM" ] || [ ! -f "$jobsfile" ]; then : >"$jobsfile"
else awk -v f="$FROM" '$1 != "average" && $2 < f' "$jobsfile" >"$jobsfile.tmp" && mv "$jobsfile.tmp" "$jobsfile"; fi
submitting=0; [ -z "$FROM" ] && submitting=1
[ "$FROM" = post ] && stages=""
prev=""; prev_job=""; first_ej=""
ids=""
for s in $stages; do
    name=${s%.yaml}
    [ "$name" = "$FROM" ] && submitting=1
    if [ "$submitting" = 0 ]; then prev=$name; continue; fi
    dep=""; [ -n "$prev_job" ] && dep="--dependency=afterok:$prev_job --kill-on-invalid-dep=yes"
    init=""
    if [ -n "$prev" ]; then
        init="--init-from $RUN/$prev"
        # resuming the chain: the previous stage must have left a checkpoint
        if [ -z "$prev_job" ] && ! ls -d "$RUN/$prev"/checkpoints/step_*/MANIFEST >/dev/null 2>&1; then
            die "--from $FROM: $RUN/$prev/checkpoints: the previous stage left no complete checkpoint"
        fi
    fi
    mkdir -p "$RUN/$name"
    # shellcheck disable=SC2086
    job=$(sbatch --parsable --job-name="herd-$name" --output="$RUN/$name/job-%j.out" \
              $(stage_sbatch "$CDIR/$s") ${HERD_SBATCH_ARGS:-} $dep \
              "$here/train.sbatch" "$CDIR/$s" --out "$RUN/$name" $init) \
        || die "sbatch of stage $name failed"
    job=${job%%;*}
    echo "stage $name $job $RUN/$name" >>"$jobsfile"
    echo "$me: stage $name: job $job${prev_job:+ (after $prev_job)}"
    ids="$ids${ids:+,}$job"
    if [ "$EVAL" = 1 ]; then
        ej=$(sbatch --parsable --job-name="herd-eval-$name" --output="$RUN/$name/job-%j.out" \
                 --nodes=1 --ntasks=1 ${HERD_SBATCH_ARGS:-} --dependency=afterok:"$job" --kill-on-invalid-dep=yes \
                 "$here/recipe_eval.sh" "$RUN/$name" "$CDIR/$first") || die "sbatch of the evaluation of $name failed"
        ej=${ej%%;*}
        echo "eval $name $ej $RUN/$name" >>"$jobsfile"
        echo "$me: evaluation of $name: job $ej"
        ids="$ids,$ej"
        [ "$s" = "$first" ] && first_ej=$ej
    fi
    if gated "$CDIR/$s"; then
        # a resubmitted stage is judged afresh (gate.log keeps the history)
        rm -f "$RUN/$name/gate.state" "$RUN/$name/gate.json"
        # the next stage waits for the gate, which waits for the stage's evaluation
        # and the first stage's (the short-context loss before the extension)
        # shellcheck disable=SC2086
        gj=$(sbatch --parsable --job-name="herd-gate-$name" --output="$RUN/$name/job-%j.out" \
                 $(stage_sbatch "$CDIR/$s") ${HERD_SBATCH_ARGS:-} \
                 --dependency=afterok:"$ej${first_ej:+:$first_ej}" --kill-on-invalid-dep=yes \
                 "$here/recipe_gate.sh" run "$CDIR/$s" "$RUN/$name" "$RUN/${first%.yaml}" "$CDIR/$first") \
            || die "sbatch of the gate of $name failed"
        gj=${gj%%;*}
        echo "gate $name $gj $RUN/$name" >>"$jobsfile"
        echo "$me: adaptation gate of $name: job $gj (the next stage waits for it)"
        ids="$ids,$gj"
        job=$gj
    fi
    prev=$name; prev_job=$job
done
[ -n "$prev_job" ] || [ "$FROM" = post ] || die "--from $FROM: nothing submitted"

# ---- averaging the annealing stage's checkpoints into RUN_DIR/final ----
aj=""
if [ -n "$prev_job" ]; then
before=$(echo "$stages" | sed 's/\.yaml$//' | grep -B1 -x "${last%.yaml}" | head -n 1)
aj=$(sbatch --parsable --job-name=herd-average --output="$RUN/final-job-%j.out" --nodes=1 --ntasks=1 \
         ${HERD_SBATCH_ARGS:-} --dependency=afterok:"$prev_job" --kill-on-invalid-dep=yes \
         "$here/recipe_average.sh" "$RUN/${last%.yaml}" "$RUN/$before" "$RUN/final") \
    || die "sbatch of the averaging job failed"
aj=${aj%%;*}
mkdir -p "$RUN/final"
echo "average final $aj $RUN/final" >>"$jobsfile"
echo "$me: averaging of ${last%.yaml}'s checkpoints into $RUN/final: job $aj"
ids="$ids,$aj"
fi

# ---- post-training: round 0 (SFT only), then ROUNDS rounds (per seed of SEEDS) ----
# post_rounds DIR DATA SEED AFTER: the rounds into DIR/roundR; AFTER: a
# dependency of the first job besides the final model (the previous seed's
# last job, afterany: a failed seed does not cancel the next). Sets pj.
post_rounds() {
    pdir=$1 pdata=$2 pseed=$3 after=$4
    model=$RUN/final/model.safetensors; pdep=${aj:+afterok:$aj}; r=0
    [ -n "$after" ] && pdep="${pdep:+$pdep,}afterany:$after"
    while [ "$r" -le "$ROUNDS" ]; do
        out=$pdir/round$r
        mkdir -p "$out"
        # the control of round r continues round r-1's control (round 0's model for round 1);
        # POST_SBATCH (post.env): the job's allocation, which its steps' *_LAUNCH need
        ctl=""; [ "$r" -ge 1 ] && ctl=$pdir/round$((r - 1))/control.safetensors
        [ "$r" = 1 ] && ctl=$pdir/round0/model.safetensors
        # shellcheck disable=SC2086
        pj=$(HERD=$HERD_BIN ROUND=$r MODEL=$model OUT=$out CONTROL_FROM=$ctl DATA=$pdata SEED=$pseed \
                 sbatch --parsable --export=ALL --job-name=herd-post${pseed:+-s$pseed}-$r \
                 --output="$out/job-%j.out" ${POST_SBATCH:-} ${HERD_SBATCH_ARGS:-} \
                 ${pdep:+--dependency=$pdep --kill-on-invalid-dep=yes} "$here/post_train_round.sh") \
            || die "sbatch of post-training round $r${pseed:+ (seed $pseed)} failed"
        pj=${pj%%;*}
        echo "post ${pseed:+seed$pseed/}round$r $pj $out" >>"$jobsfile"
        echo "$me: post-training ${pseed:+seed $pseed, }round $r$( [ "$r" = 0 ] && echo ' (SFT only)'): job $pj${pdep:+ (after ${pdep})}"
        ids="$ids${ids:+,}$pj"
        model=$out/model.safetensors; pdep=afterok:$pj; r=$((r + 1))
    done
}
if [ "$POST" = 1 ]; then
    [ "$FROM" = post ] && awk '$1 != "post"' "$jobsfile" >"$jobsfile.tmp" && mv "$jobsfile.tmp" "$jobsfile"
    if [ -z "$SEEDS" ]; then post_rounds "$RUN/post" "$DATA" "" ""
    else
        pj=""
        for s in $SEEDS; do post_rounds "$RUN/post/seed$s" "$(seed_data "$s")" "$s" "$pj"; done
    fi
fi
# the hints work from another shell as printed: the cluster's SLURM_CONF with them
# (and in RUN_DIR/pipeline.env, where --status finds it)
conf=""
if [ -n "${SLURM_CONF:-}" ]; then
    conf="SLURM_CONF=$SLURM_CONF "
    echo "SLURM_CONF=$SLURM_CONF" >"$RUN/pipeline.env"
else
    rm -f "$RUN/pipeline.env"
fi
echo "$me: job list in $jobsfile; watch with:"
echo "  ${conf}squeue -j $ids -o '%.8i %.24j %.10T %.20R'"
echo "  sh $here/pipeline.sh --status $RUN"
echo "  sh $here/pipeline.sh --progress $RUN"

[ "$WAIT" = 1 ] || exit 0
while [ -n "$(squeue -h -j "$ids" -o %i 2>/dev/null)" ]; do sleep "${HERD_PIPELINE_POLL:-2}"; done
status "$RUN"

#!/bin/sh
# The adaptation gate (slurm/recipe_gate.sh) and the chain's hints from another shell.
# Without a cluster:
#  - #GATE settings are checked before anything is submitted (file and key named);
#  - the gate's decision from a stage's eval.json and passkey.json: passed; failed
#    at the limit (max_extensions 0): the chain moves on (on_limit=continue) or
#    stops (on_limit=stop, exit 1), the reason naming the failed criterion; outside
#    a Slurm job it refuses to extend (train.sbatch would submit a job instead);
#  - `pipeline.sh --status RUN_DIR` without SLURM_CONF and no recorded one, or with
#    a recorded cluster that is down, fails at once naming SLURM_CONF (a hang guard
#    of 30 s, no timing asserted).
# On the local cluster, a 3-stage chain (1 rank each) whose gated stage 02 cannot
# pass (passkey_min=1 at 256, a 14-step tiny model): the gate extends it twice by 2
# steps (14 -> 16 -> 18), evaluates it again each time, stops at the limit with its
# message, and stage 03 starts from step 18 and still trains its own 2 steps (its
# cumulative train.max_tokens moved by the extension); --status works from a shell without
# SLURM_CONF; --progress shows the gate.
set -u
cd "$(dirname "$0")/../.."
. tests/slurm/lib.sh
[ -x build/herd ] || { skip recipe_gate "build/herd not built"; exit 0; }
if [ ! -s data/demo-mix/mix.yaml ]; then
    sh scripts/make_demo_mix.sh >/dev/null 2>&1 || { skip recipe_gate "data/demo-mix missing and make demo-data failed"; exit 0; }
fi
tmp=$(mktemp -d /tmp/herd-gate.XXXXXX)
export HERD_SLURM_DIR=$tmp/slurm
cleanup() {
    [ -f "$HERD_SLURM_DIR/etc/slurm.conf" ] && sh slurm/local/cluster.sh stop >/dev/null 2>&1
    [ "${HERD_KEEP:-0}" = 1 ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
unset SLURM_CONF

# ---- the stage configs: 10 steps at 128, 4 at 256 (gated), 2 at 128 ----
D=$PWD/data/demo-mix
stage() { # stage FILE SEQ MAX_TOKENS MAX_STEPS [#GATE line]
    {
        echo "#SBATCH --nodes=1"
        echo "#SBATCH --ntasks-per-node=1"
        [ -n "${5:-}" ] && echo "$5"
        cat <<YAML
model: {preset: tiny, vocab_size: 4096, max_seq_len: 256}
batch:
  micro_batch: 4
  ramp:
    - {after_tokens: 0, batch_tokens: 1024, seq_len: $2}
schedule: {warmup_steps: 2, decay_steps: 20}
train: {seed: 7, max_steps: $4, max_tokens: $3, log_every: 1, eval_every: 2, eval_batches: 1, threads: 1}
checkpoint: {keep_last: 0, every: 2}
data:
  sources:
    - {name: general, path: $D/general.bin, val_path: $D/general.val.bin, weight: 0.6}
    - {name: math,    path: $D/math.bin,    val_path: $D/math.val.bin,    weight: 0.4}
YAML
    } >"$1"
}
C=$tmp/cfg; mkdir -p "$C"
stage "$C/01_pre.yaml" 128 10240 0
stage "$C/02_long_256.yaml" 256 14336 0 "#GATE passkey_min=1 extend_steps=2 max_extensions=2   # cannot pass: on purpose"
stage "$C/03_next.yaml" 128 16384 0      # cumulative: 2 steps after 02's planned 14
stage "$C/04_more.yaml" 128 18432 0      # and 2 after 03's planned 16

# ---- bad settings: refused before anything is submitted ----
refused() { # refused NAME GATE_LINE EXPECTED
    mkdir -p "$tmp/bad"; rm -f "$tmp/bad"/*.yaml
    cp "$C/01_pre.yaml" "$tmp/bad/"
    stage "$tmp/bad/02_x.yaml" 256 14336 0 "$2"
    msg=$(sh slurm/pipeline.sh "$tmp/bad" --out "$tmp/badrun" 2>&1); rc=$?
    if [ "$rc" -ne 0 ] && echo "$msg" | grep -qF "$tmp/bad/02_x.yaml: #GATE $3"; then pass "$1"
    else fail "$1" "rc $rc: $msg"; fi
}
refused gate_bad_passkey_min_refused "#GATE passkey_min=1.5" "passkey_min '1.5': expected an accuracy in [0, 1]"
refused gate_bad_on_limit_refused "#GATE on_limit=maybe" "on_limit 'maybe': expected continue or stop"
refused gate_unknown_key_refused "#GATE extend=3" "'extend': unknown key"
refused gate_bad_extend_steps_refused "#GATE extend_steps=0" "extend_steps '0': expected a number of steps >= 1"
sed '1i #GATE' "$C/01_pre.yaml" >"$tmp/bad/01_pre.yaml"
msg=$(sh slurm/pipeline.sh "$tmp/bad" --out "$tmp/badrun" 2>&1); rc=$?
[ "$rc" -ne 0 ] && echo "$msg" | grep -q "01_pre.yaml: #GATE on the first stage" && pass gate_on_first_stage_refused \
    || fail gate_on_first_stage_refused "rc $rc: $msg"

# ---- the decision, from a stage's files (no Slurm: no extension is needed) ----
mkdir -p "$tmp/d/ref" "$tmp/d/st"
echo '{"stage": "ref", "val": {"general": {"loss": 6.0, "bpb": 3.0}, "math": {"loss": 3.0, "bpb": 2.0}}}' >"$tmp/d/ref/eval.json"
decide() { # decide GATE_LINE GENERAL_LOSS ACC256 -> rc, message in $out
    stage "$tmp/d/cfg.yaml" 256 14336 0 "$1"
    echo "{\"stage\": \"st\", \"val\": {\"general\": {\"loss\": $2, \"bpb\": 3.1}, \"math\": {\"loss\": 2.9, \"bpb\": 2.0}}}" >"$tmp/d/st/eval.json"
    # the per-length accuracy nested with a depth grid beside it, as the passkey eval may write it
    echo "{\"trials\": 50, \"lengths\": {\"128\": {\"accuracy\": 1.0}, \"256\": {\"depths\": {\"0.5\": {\"accuracy\": 1.0}}, \"correct\": 1, \"skipped\": 0, \"accuracy\": $3}}}" >"$tmp/d/st/passkey.json"
    rm -f "$tmp/d/st/gate.state"
    out=$(env -u SLURM_JOB_ID sh slurm/recipe_gate.sh run "$tmp/d/cfg.yaml" "$tmp/d/st" "$tmp/d/ref" "$tmp/d/cfg.yaml" 2>&1)
}
decide "#GATE max_extensions=0" 6.2 0.94; rc=$?
if [ "$rc" -eq 0 ] && grep -q '"passed": true, "moves_on": true, "extensions": 0' "$tmp/d/st/gate.json" \
   && echo "$out" | grep -q "passkey accuracy at 256 0.94 >= 0.9"; then pass gate_passes_when_both_criteria_hold
else fail gate_passes_when_both_criteria_hold "rc $rc: $out $(cat "$tmp/d/st/gate.json" 2>&1)"; fi
decide "#GATE max_extensions=0" 6.4 0.94; rc=$?
if [ "$rc" -eq 0 ] && grep -q '"passed": false, "moves_on": true' "$tmp/d/st/gate.json" \
   && echo "$out" | grep -q "short-context loss above ref's + 0.30: general 6.400 > 6.300" \
   && echo "$out" | grep -q "criteria still not met after 0 extensions.*the limit.*the chain moves on"; then
    pass gate_short_context_loss_fails_and_moves_on_at_limit
else fail gate_short_context_loss_fails_and_moves_on_at_limit "rc $rc: $out"; fi
decide "#GATE max_extensions=0 on_limit=stop" 6.2 0.5; rc=$?
if [ "$rc" -eq 1 ] && grep -q '"passed": false, "moves_on": false' "$tmp/d/st/gate.json" \
   && echo "$out" | grep -q "passkey accuracy at 256 0.5 < 0.9.*stopping the chain (on_limit=stop)"; then
    pass gate_passkey_fails_and_stops_chain_at_limit
else fail gate_passkey_fails_and_stops_chain_at_limit "rc $rc: $out"; fi

decide "#GATE max_extensions=1" 6.2 0.5; rc=$?
if [ "$rc" -eq 1 ] && [ ! -f "$tmp/d/st/gate.json" ] && [ ! -s "$tmp/d/st/gate.state" ] \
   && echo "$out" | grep -q "st not adapted (.*passkey accuracy at 256 0.5 < 0.9): extending it needs a Slurm allocation"; then
    pass gate_outside_slurm_refuses_to_extend
else fail gate_outside_slurm_refuses_to_extend "rc $rc: $out"; fi

# ---- --status from a shell without the cluster's environment ----
mkdir -p "$tmp/norun"; echo "stage 01_pre 1 $tmp/norun/01_pre" >"$tmp/norun/pipeline.jobs"
msg=$(timeout 30 sh slurm/pipeline.sh --status "$tmp/norun" 2>&1); rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && echo "$msg" | grep -q "SLURM_CONF is not set and $tmp/norun/pipeline.env records none"; then
    pass status_without_cluster_env_fails_naming_it
else fail status_without_cluster_env_fails_naming_it "rc $rc: $msg"; fi

if ! cluster_up 2; then skip recipe_gate_chain "$why"; exit $fails; fi
export HERD_OMPI_IF=lo
RUN=$tmp/run
timeout 420 sh slurm/pipeline.sh "$C" --out "$RUN" --wait >"$tmp/pipeline.log" 2>&1; rc=$?
G=$RUN/02_long_256
if [ "$rc" -eq 0 ] && grep -Eq '^gate +02_long_256 .*COMPLETED' "$tmp/pipeline.log" \
   && grep -Eq '^average .*COMPLETED' "$tmp/pipeline.log"; then pass gate_chain_completed
else fail gate_chain_completed "rc $rc: $(tail -n 30 "$tmp/pipeline.log"; tail -n 5 "$G"/job-*.out)"; fi
# extended twice by 2 steps, evaluated after each, stopped at the limit with its message
steps=$(ls -d "$G"/checkpoints/step_* 2>/dev/null | sed 's/.*step_0*//' | tr '\n' ' ')
ok=1; why=""
grep -q '"passed": false, "moves_on": true, "extensions": 2, "steps_added": 4' "$G/gate.json" 2>/dev/null || { ok=0; why="$why gate.json: $(cat "$G/gate.json" 2>&1);"; }
grep -q "extension 1/2: 2 more steps, 14 -> 16" "$G/gate.log" && grep -q "extension 2/2: 2 more steps, 16 -> 18" "$G/gate.log" \
    || { ok=0; why="$why gate.log lacks the extensions;"; }
grep -q "criteria still not met after 2 extensions of 2 steps (max_extensions 2, the limit): .*passkey accuracy at 256 [0-9.]* < 1; the chain moves on" "$G/gate.log" \
    || { ok=0; why="$why no limit message;"; }
echo " $steps " | grep -q " 16 .*18 " || { ok=0; why="$why checkpoints: $steps;"; }
grep -q '"step": 18,' "$G/eval.json" || { ok=0; why="$why eval.json not of step 18: $(cat "$G/eval.json");"; }
[ "$ok" = 1 ] && pass "gate_extends_to_limit_then_moves_on (checkpoints $steps)" \
    || fail gate_extends_to_limit_then_moves_on "$why $(cat "$G/gate.log" 2>&1)"
# the next stage starts from the extended stage's last checkpoint, and keeps its own
# 2 steps: its cumulative train.max_tokens moves by the extension's 4 x 1024 tokens
first=$(grep -m1 '"loss"' "$RUN/03_next/metrics.jsonl" 2>/dev/null | sed -n 's/^{"step":\([0-9]*\),.*/\1/p')
last=$(grep '"loss"' "$RUN/03_next/metrics.jsonl" 2>/dev/null | tail -n 1 | sed -n 's/^{"step":\([0-9]*\),.*/\1/p')
if [ "$first" = 19 ] && [ "$last" = 20 ] && cmp -s "$G/checkpoints/step_00000018/MANIFEST" "$RUN/03_next/checkpoints/step_00000018/MANIFEST" \
   && grep -q "extended by 4096 tokens past the plan: train.max_tokens 16384 -> 20480" "$RUN/03_next/recovery.log"; then
    pass "next_stage_starts_from_extended_checkpoint_and_keeps_its_steps (steps 19..20)"
else fail next_stage_starts_from_extended_checkpoint_and_keeps_its_steps "steps ${first:-none}..${last:-none}: $(cat "$RUN/03_next/recovery.log" 2>&1)"; fi
# and the stage after it too (the shift carries on: 18432 + 4096 tokens, steps 21..22)
first=$(grep -m1 '"loss"' "$RUN/04_more/metrics.jsonl" 2>/dev/null | sed -n 's/^{"step":\([0-9]*\),.*/\1/p')
last=$(grep '"loss"' "$RUN/04_more/metrics.jsonl" 2>/dev/null | tail -n 1 | sed -n 's/^{"step":\([0-9]*\),.*/\1/p')
if [ "$first" = 21 ] && [ "$last" = 22 ] && grep -q "train.max_tokens 18432 -> 22528" "$RUN/04_more/recovery.log"; then
    pass "shift_carries_to_later_stages (steps 21..22)"
else fail shift_carries_to_later_stages "steps ${first:-none}..${last:-none}: $(cat "$RUN/04_more/recovery.log" 2>&1)"; fi
# the hints work from a shell without the cluster's environment; --progress shows the gate
st=$(env -u SLURM_CONF timeout 60 sh slurm/pipeline.sh --status "$RUN" 2>&1); rc=$?
if [ "$rc" -eq 0 ] && echo "$st" | grep -Eq '^gate +02_long_256 .*COMPLETED' && echo "$st" | grep -q "gate   $G/gate.json"; then
    pass status_finds_cluster_env_of_run
else fail status_finds_cluster_env_of_run "rc $rc: $st"; fi
pr=$(env -u SLURM_CONF sh slurm/pipeline.sh --progress "$RUN" 2>&1)
if echo "$pr" | grep -Eq '02_long_256 +step +18/18 .*done, gate: not adapted after 2 extensions' \
   && echo "$pr" | grep -Eq '03_next +step +20/20 ' && echo "$pr" | grep -Eq '04_more +step +22/22 '; then pass progress_shows_stages_and_gate
else fail progress_shows_stages_and_gate "$pr"; fi
hint=$(grep "squeue -j" "$tmp/pipeline.log" | sed 's/^ *//')
if echo "$hint" | grep -q "^SLURM_CONF=$SLURM_CONF squeue" && env -u SLURM_CONF sh -c "$hint" >/dev/null 2>&1; then
    pass squeue_hint_runs_as_printed
else fail squeue_hint_runs_as_printed "$hint"; fi
# the cluster stopped: --status fails at once, naming SLURM_CONF
sh slurm/local/cluster.sh stop >/dev/null 2>&1
msg=$(env -u SLURM_CONF timeout 30 sh slurm/pipeline.sh --status "$RUN" 2>&1); rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && echo "$msg" | grep -q "SLURM_CONF=$SLURM_CONF does not answer"; then
    pass status_with_cluster_down_fails_naming_it
else fail status_with_cluster_down_fails_naming_it "rc $rc: $msg"; fi
exit $fails

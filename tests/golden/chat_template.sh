#!/bin/sh
# herd's chat tokens against transformers' apply_chat_template, live: where
# transformers is importable (HERD_HF_PYTHON, default /usr/bin/python3), render
# the Llama 3 / 3.1 templates on the fixture's conversations again, check that
# the committed fixture is what transformers renders today, and run
# build/tests/test_chat_template on the fresh rendering. Without transformers
# the committed fixture is checked by make test (build/tests/test_chat_template).
# HERD_LLAMA3_TOKENIZER=tokenizer.model also runs it with Meta's vocabulary.
set -u
cd "$(dirname "$0")/../.."
py=${HERD_HF_PYTHON:-/usr/bin/python3}
t=build/tests/test_chat_template
if [ ! -x "$t" ]; then echo "SKIP chat_template_live: $t not built"; exit 0; fi
# with a real Llama 3 vocabulary (Meta's tokenizer.model, e.g. from PyPI's llama-models)
if [ -n "${HERD_LLAMA3_TOKENIZER:-}" ]; then
    if HERD_CHAT_RANKS=$HERD_LLAMA3_TOKENIZER "$t" >/tmp/chat_template.$$ 2>&1; then
        echo "PASS chat_template_llama3_vocab ($(grep ' cases (' /tmp/chat_template.$$ | sed 's/^ *//'))"
    else echo "FAIL chat_template_llama3_vocab: $(tail -20 /tmp/chat_template.$$)"; rm -f /tmp/chat_template.$$; exit 1; fi
    rm -f /tmp/chat_template.$$
fi
if ! "$py" -c 'import transformers, tokenizers' >/dev/null 2>&1; then
    echo "SKIP chat_template_live: transformers is not importable by $py (set HERD_HF_PYTHON)"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! "$py" tests/fixtures/chat/make_fixture.py >"$tmp/cases.jsonl" 2>"$tmp/err"; then
    echo "FAIL chat_template_render: $(tail -3 "$tmp/err")"; exit 1
fi
fails=0
if cmp -s "$tmp/cases.jsonl" tests/fixtures/chat/cases.jsonl; then echo "PASS chat_template_fixture_current"
else echo "FAIL chat_template_fixture_current: transformers renders differently from tests/fixtures/chat/cases.jsonl"
    fails=1; fi
if "$t" "$tmp/cases.jsonl" >"$tmp/out" 2>&1; then echo "PASS chat_template_live ($(grep ' cases (' "$tmp/out" | sed 's/^ *//'))"
else echo "FAIL chat_template_live: $(tail -20 "$tmp/out")"; fails=1; fi
exit $fails

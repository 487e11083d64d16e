#!/usr/bin/python3
"""Parse herd's Prometheus textfile with prometheus_client's own parser.

  promcheck.py FILE [--step N]      one read: every family present, names valid,
                                    values consistent (and herd_step == N if given)
  promcheck.py FILE --loop SECONDS  read again and again for SECONDS while a
                                    writer rewrites FILE; every read must be whole

The writer in test_prometheus.c writes step s with tokens_total = 1000*s and
loss = 1/(s+1), so a read that mixes two versions, or a truncated one, fails.
Exit 0 when every read is valid; prints 'reads N invalid M'.
"""
import re
import sys
import time

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    print("SKIP: python3 prometheus_client missing (apt-get install python3-prometheus-client)")
    sys.exit(3)

NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
REQUIRED = {  # family name as the parser reports it (counters lose _total) -> type
    "herd_step": "gauge", "herd_loss": "gauge", "herd_grad_norm": "gauge",
    "herd_learning_rate": "gauge", "herd_tokens": "counter", "herd_step_seconds": "gauge",
    "herd_tokens_per_second": "gauge", "herd_mfu_ratio": "gauge",
    "herd_step_part_seconds": "gauge", "herd_comm_seconds": "gauge",
    "herd_checkpoint_seconds": "gauge",
    "herd_checkpoint_last_success_timestamp_seconds": "gauge",
    "herd_restarts": "counter", "herd_straggler_score": "gauge", "herd_straggler_suspect": "gauge",
}


def check(text, want_step=None):
    """Return None when valid, else why not."""
    fams = {}
    for fam in text_string_to_metric_families(text):
        if not NAME.match(fam.name):
            return "bad metric name %r" % fam.name
        if not fam.documentation:
            return "no HELP for %s" % fam.name
        fams[fam.name] = fam
    for name, typ in REQUIRED.items():
        if name not in fams:
            return "family %s missing" % name
        if fams[name].type != typ:
            return "%s has type %s, want %s" % (name, fams[name].type, typ)
    val = {n: f.samples[0].value for n, f in fams.items() if f.samples}
    step = val["herd_step"]
    if want_step is not None and step != want_step:
        return "herd_step %g, want %g" % (step, want_step)
    if val["herd_tokens"] != 1000 * step or abs(val["herd_loss"] - 1 / (step + 1)) > 1e-12:
        return "inconsistent: step %g tokens %g loss %g" % (step, val["herd_tokens"], val["herd_loss"])
    parts = {s.labels["part"] for s in fams["herd_step_part_seconds"].samples}
    if parts != {"compute", "comm_tp", "comm_cp", "comm_pp", "comm_dp", "bubble", "data", "ckpt", "other"}:
        return "step parts %s" % sorted(parts)
    groups = {s.labels["group"] for s in fams["herd_comm_seconds"].samples}
    if groups != {"tp", "cp", "pp", "dp"}:
        return "comm groups %s" % sorted(groups)
    strag = fams["herd_straggler_score"].samples
    if not strag or any("rank" not in s.labels or "host" not in s.labels for s in strag):
        return "straggler samples without rank/host labels"
    return None


def main():
    path = sys.argv[1]
    args = sys.argv[2:]
    if args[:1] == ["--loop"]:
        end = time.monotonic() + float(args[1])
        reads = bad = 0
        first = None
        while time.monotonic() < end:
            try:
                with open(path) as f:
                    text = f.read()
            except FileNotFoundError:
                continue  # before the writer's first rename
            reads += 1
            try:
                why = check(text)
            except Exception as e:  # the parser's own complaint about a torn file
                why = "parser: %s" % e
            if why:
                bad += 1
                first = first or why
        print("reads %d invalid %d%s" % (reads, bad, " (first: %s)" % first if first else ""))
        sys.exit(0 if bad == 0 and reads > 0 else 1)
    want = float(args[1]) if args[:1] == ["--step"] else None
    with open(path) as f:
        why = check(f.read(), want)
    print("invalid: %s" % why if why else "valid")
    sys.exit(1 if why else 0)


main()

/* cmd_report.c — `herd report [--out DIR] RUN_DIR...`: one HTML page with
 * the plots of one or more runs (a run directory per stage of the recipe).
 *
 * Reads each RUN_DIR/metrics.jsonl (monitoring/runlog.h), writes the series
 * as whitespace-separated data files and a gnuplot script into DIR, runs
 * gnuplot (pngcairo) there, and writes DIR/report.html with the PNGs embedded
 * as base64 (the PNGs stay beside it too). Stages are laid end to end: a
 * stage whose step or token count starts again from 0 is shifted to follow
 * the previous stage; one that continues the count (resumed from the
 * previous stage's checkpoint) is left where it is.
 *
 * Plots: loss.png (train and validation loss per stage over tokens),
 * lr_batch.png (learning rate and batch size over tokens), breakdown.png
 * (step time split into parts, stacked, over steps), mfu.png (MFU over
 * steps). Restarts (red) and checkpoints (blue, with their stall on the right
 * axis) are marked on the breakdown and MFU timelines. Stages with a
 * passkey.json add the passkey retrieval table and heat-map (report_passkey.h),
 * printed on stdout too.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "monitoring/runlog.h"
#include "src/cli/commands.h"
#include "src/cli/report_passkey.h"

#define MAX_STAGES 32

static const char usage_text[] =
    "usage: herd report [--out DIR] RUN_DIR...\n"
    "\n"
    "  Plots the metrics.jsonl of each RUN_DIR (one per stage, in order) into\n"
    "  DIR/report.html (PNG plots embedded; also DIR/*.png). DIR defaults to\n"
    "  the first RUN_DIR/report. Needs gnuplot (Debian: gnuplot-nox).\n";

typedef struct {
    const char *dir;
    char        name[128];
    herd_runlog log;
    int64_t     step_off, tok_off; /* shift that lays this stage after the previous */
} stage;

static void stage_name(stage *s)
{
    size_t n = strlen(s->dir);
    while (n > 1 && s->dir[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && s->dir[b - 1] != '/') b--;
    snprintf(s->name, sizeof s->name, "%.*s", (int)(n - b), s->dir + b);
    for (char *p = s->name; *p; p++) /* quotes would end the gnuplot title string */
        if (*p == '\'' || *p == '"' || *p == '\\') *p = '-';
}

/* the global token count at a stage's step (for validation points) */
static double tokens_at(const stage *s, int64_t step)
{
    const herd_runlog *l = &s->log;
    for (int i = 0; i < l->n_steps; i++)
        if (l->steps[i].step >= step) return (double)(l->steps[i].tokens_seen + s->tok_off);
    return (double)(l->steps[l->n_steps - 1].tokens_seen + s->tok_off);
}

static int write_data(const char *out, stage *st, int n, int *any_times, int *any_events,
                      int *any_vals)
{
    char path[4352];
    for (int i = 0; i < n; i++) {
        const herd_runlog *l = &st[i].log;
        snprintf(path, sizeof path, "%s/stage%d.dat", out, i);
        FILE *f = fopen(path, "w");
        if (!f) goto fail;
        /* gstep gtokens loss lr batch_tokens step_s mfu% then cumulative parts */
        for (int k = 0; k < l->n_steps; k++) {
            const herd_runlog_step *r = &l->steps[k];
            fprintf(f, "%lld %lld %.9g %.9g %lld %.9g %.9g", (long long)(r->step + st[i].step_off),
                    (long long)(r->tokens_seen + st[i].tok_off), r->loss, r->lr,
                    (long long)r->batch_tokens, r->step_seconds, 100 * r->mfu);
            double cum = 0;
            for (int p = 0; p < HERD_T_COUNT; p++) {
                cum += r->parts[p];
                if (r->has_times) fprintf(f, " %.9g", cum);
                else fputs(" NaN", f);
            }
            fputc('\n', f);
            *any_times |= r->has_times;
        }
        if (fclose(f)) goto fail;
        snprintf(path, sizeof path, "%s/val%d.dat", out, i);
        if (!(f = fopen(path, "w"))) goto fail;
        for (int k = 0; k < l->n_vals; k++)
            fprintf(f, "%lld %.0f %.9g\n", (long long)(l->vals[k].step + st[i].step_off),
                    tokens_at(&st[i], l->vals[k].step), l->vals[k].val_loss);
        *any_vals |= l->n_vals > 0;
        if (fclose(f)) goto fail;
    }
    snprintf(path, sizeof path, "%s/events.gp", out);
    FILE *f = fopen(path, "w");
    if (!f) goto fail;
    /* markers as gnuplot arrows (loaded into the timeline plots) */
    for (int i = 0; i < n; i++)
        for (int k = 0; k < st[i].log.n_events; k++) {
            const herd_runlog_event *e = &st[i].log.events[k];
            long long x = (long long)(e->step + st[i].step_off);
            if (e->kind == HERD_EVENT_RESTART)
                fprintf(f, "set arrow from %lld, graph 0 to %lld, graph 1 nohead lw 2 lc rgb 'red'\n"
                           "set label 'restart' at %lld, graph 0.5 center rotate by 90 offset -0.8,0 front tc rgb 'red' font ',8'\n",
                        x, x, x);
            else
                fprintf(f, "set arrow from %lld, graph 0 to %lld, graph 1 nohead dt 2 lc rgb 'blue'\n", x, x);
            *any_events = 1;
        }
    if (fclose(f)) goto fail;
    snprintf(path, sizeof path, "%s/ckpt.dat", out);
    if (!(f = fopen(path, "w"))) goto fail;
    int n_ckpt = 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < st[i].log.n_events; k++)
            if (st[i].log.events[k].kind == HERD_EVENT_CHECKPOINT)
                fprintf(f, "%lld %.9g\n", (long long)(st[i].log.events[k].step + st[i].step_off),
                        st[i].log.events[k].stall_s), n_ckpt++;
    if (n_ckpt == 0) fputs("NaN NaN\n", f); /* gnuplot refuses an empty file */
    if (fclose(f)) goto fail;
    return 0;
fail:
    fprintf(stderr, "herd report: %s: cannot write: %s\n", path, strerror(errno));
    return -1;
}

static int write_script(const char *out, const stage *st, int n, int any_times, int any_vals)
{
    char path[4352];
    snprintf(path, sizeof path, "%s/report.gp", out);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "herd report: %s: cannot write: %s\n", path, strerror(errno));
        return -1;
    }
    fputs("# written by herd report; run in this directory: gnuplot report.gp\n"
          "set terminal pngcairo noenhanced size 960,480 font 'sans,10'\nset grid\nset key outside right top\n"
          "set datafile missing 'NaN'\n", f);
    /* loss per stage over tokens */
    fputs("set output 'loss.png'\nset title 'Loss per stage'\nset xlabel 'tokens'\n"
          "set ylabel 'loss (nats/token)'\nplot ", f);
    for (int i = 0; i < n; i++) {
        fprintf(f, "%s'stage%d.dat' u 2:3 w l lw 1.5 lc %d t '%s train'", i ? ", " : "", i, i + 1,
                st[i].name);
        if (st[i].log.n_vals)
            fprintf(f, ", 'val%d.dat' u 2:3 w lp pt 7 ps 0.8 dt 2 lc %d t '%s val'", i, i + 1, st[i].name);
    }
    (void)any_vals;
    /* learning rate and batch size over tokens */
    fputs("\nset output 'lr_batch.png'\nset title 'Learning rate and batch size'\n"
          "set ylabel 'learning rate'\nset y2label 'batch (tokens)'\nset y2tics\nset ytics nomirror\n"
          "set format y '%.1e'\nplot ", f);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s'stage%d.dat' u 2:4 w l lw 1.5 lc %d t '%s lr', 'stage%d.dat' u 2:5 axes x1y2 "
                   "w steps dt 3 lc %d t '%s batch'", i ? ", " : "", i, i + 1, st[i].name, i, i + 1,
                st[i].name);
    fputs("\nset format y '%g'\nunset y2tics\nunset y2label\nset ytics mirror\n", f);
    /* step-time breakdown (stacked, cumulative columns 8..16), events marked */
    fputs("set output 'breakdown.png'\nset xlabel 'step'\nset ylabel 'seconds'\n"
          "load 'events.gp'\n", f);
    static const char *colors[HERD_T_COUNT] = {"#4477aa", "#ee6677", "#228833", "#ccbb44",
                                               "#66ccee", "#aa3377", "#bbbbbb", "#000000", "#dddddd"};
    if (any_times) {
        fputs("set title 'Step time breakdown (rank 0; restarts red, checkpoints blue)'\nplot ", f);
        for (int i = 0; i < n; i++)
            for (int p = HERD_T_COUNT - 1; p >= 0; p--) /* draw the tallest band first */
                fprintf(f, "%s'stage%d.dat' u 1:%d w filledcurves x1 fs solid 0.8 lc rgb '%s' t '%s'",
                        i || p != HERD_T_COUNT - 1 ? ", " : "", i, 8 + p, colors[p],
                        i ? "" : herd_timer_part_name(p));
    } else {
        fputs("set title 'Step time (no time split in these metrics; restarts red, checkpoints blue)'\nplot ", f);
        for (int i = 0; i < n; i++)
            fprintf(f, "%s'stage%d.dat' u 1:6 w l lc %d t '%s step'", i ? ", " : "", i, i + 1, st[i].name);
    }
    fputs(", 'ckpt.dat' u 1:2 w impulses lw 3 lc rgb 'blue' t 'checkpoint stall'\n", f);
    /* MFU over steps, events marked */
    fputs("set output 'mfu.png'\nset title 'MFU (restarts red, checkpoints blue)'\n"
          "set ylabel 'MFU (%)'\nplot ", f);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s'stage%d.dat' u 1:7 w l lc %d t '%s'", i ? ", " : "", i, i + 1, st[i].name);
    fputs("\nunset output\n", f);
    if (fclose(f)) {
        fprintf(stderr, "herd report: %s: cannot write: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int run_gnuplot(const char *out)
{
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        if (chdir(out)) _exit(126);
        execlp("gnuplot", "gnuplot", "report.gp", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        fprintf(stderr, "herd report: gnuplot not found (Debian: apt-get install gnuplot-nox, "
                        "or sh scripts/deps.sh)\n");
        return -1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "herd report: %s/report.gp: gnuplot failed (status %d)\n", out, status);
        return -1;
    }
    return 0;
}

/* append the file as base64 */
static int put_base64(FILE *out, const char *path)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "herd report: %s: gnuplot made no plot: %s\n", path, strerror(errno));
        return -1;
    }
    unsigned char in[3];
    size_t n;
    while ((n = fread(in, 1, 3, f)) > 0) {
        unsigned v = (unsigned)in[0] << 16 | (n > 1 ? (unsigned)in[1] << 8 : 0) | (n > 2 ? in[2] : 0);
        fputc(tab[v >> 18 & 63], out);
        fputc(tab[v >> 12 & 63], out);
        fputc(n > 1 ? tab[v >> 6 & 63] : '=', out);
        fputc(n > 2 ? tab[v & 63] : '=', out);
    }
    fclose(f);
    return 0;
}

static void html_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else fputc(*s, f);
    }
}

static int write_html(const char *out, const stage *st, int n, const herd_pk_report *pk)
{
    char path[4352];
    snprintf(path, sizeof path, "%s/report.html", out);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "herd report: %s: cannot write: %s\n", path, strerror(errno));
        return -1;
    }
    fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>herd report</title>\n"
          "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
          "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style></head><body>\n"
          "<h1>herd report</h1>\n<table>\n<tr><th>stage</th><th>run dir</th><th>steps</th>"
          "<th>tokens</th><th>first loss</th><th>last loss</th><th>last val loss</th>"
          "<th>mean tokens/s</th><th>mean MFU</th><th>restarts</th><th>checkpoints</th>"
          "<th>checkpoint stall (s)</th></tr>\n", f);
    for (int i = 0; i < n; i++) {
        const herd_runlog *l = &st[i].log;
        double tps = 0, mfu = 0, stall = 0;
        int from = l->n_steps > 1, restarts = 0, ckpts = 0; /* mean skips the warm-up step */
        for (int k = from; k < l->n_steps; k++) tps += l->steps[k].tokens_per_second, mfu += l->steps[k].mfu;
        for (int k = 0; k < l->n_events; k++) {
            if (l->events[k].kind == HERD_EVENT_RESTART) restarts++;
            else ckpts++, stall += l->events[k].stall_s;
        }
        int m = l->n_steps - from;
        fprintf(f, "<tr><td>%d</td><td>", i + 1);
        html_escape(f, st[i].dir);
        fprintf(f, "</td><td>%lld</td><td>%lld</td><td>%.4f</td><td>%.4f</td><td>", (long long)l->steps[l->n_steps - 1].step,
                (long long)l->steps[l->n_steps - 1].tokens_seen, l->steps[0].loss, l->steps[l->n_steps - 1].loss);
        if (l->n_vals) fprintf(f, "%.4f", l->vals[l->n_vals - 1].val_loss);
        else fputs("-", f);
        fprintf(f, "</td><td>%.0f</td><td>%.2f%%</td><td>%d</td><td>%d</td><td>%.2f</td></tr>\n",
                tps / m, 100 * mfu / m, restarts, ckpts, stall);
    }
    fputs("</table>\n", f);
    static const char *plots[][2] = {
        {"loss.png", "Training and validation loss per stage"},
        {"lr_batch.png", "Learning rate and batch size over tokens"},
        {"breakdown.png", "Step-time breakdown; restarts (red) and checkpoints (blue) on the timeline"},
        {"mfu.png", "MFU over time"}};
    int rc = 0;
    for (size_t p = 0; p < sizeof plots / sizeof plots[0] && rc == 0; p++) {
        fprintf(f, "<h2>%s</h2>\n<img alt=\"%s\" src=\"data:image/png;base64,", plots[p][1], plots[p][0]);
        snprintf(path, sizeof path, "%s/%s", out, plots[p][0]);
        rc = put_base64(f, path);
        fputs("\">\n", f);
    }
    herd_pk_report_html(pk, f);
    fputs("<p>Event lines and fields: docs/monitoring.md.</p>\n</body></html>\n", f);
    if (fclose(f) && rc == 0) {
        fprintf(stderr, "herd report: %s/report.html: write failed\n", out);
        rc = -1;
    }
    return rc;
}

int herd_cmd_report(int argc, char **argv)
{
    const char *out = NULL;
    stage st[MAX_STAGES];
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return fputs(usage_text, stdout), 0;
        if (!strcmp(argv[i], "--out") && i + 1 < argc) { out = argv[++i]; continue; }
        if (argv[i][0] == '-') {
            fprintf(stderr, "herd report: unknown option '%s'\n%s", argv[i], usage_text);
            return 2;
        }
        if (n == MAX_STAGES) {
            fprintf(stderr, "herd report: more than %d run directories\n", MAX_STAGES);
            return 2;
        }
        memset(&st[n], 0, sizeof st[n]);
        st[n].dir = argv[i];
        n++;
    }
    if (n == 0) return fputs(usage_text, stderr), 2;
    char def[3900];
    if (!out) snprintf(def, sizeof def, "%s/report", st[0].dir), out = def;
    if (strlen(out) > 3800) {
        fprintf(stderr, "herd report: --out: path longer than 3800 bytes\n");
        return 2;
    }

    int rc = 0, loaded = 0;
    for (int i = 0; i < n && rc == 0; i++, loaded++) {
        char path[4352];
        snprintf(path, sizeof path, "%s/metrics.jsonl", st[i].dir);
        rc = herd_runlog_read(&st[i].log, path);
        stage_name(&st[i]);
        if (rc == 0 && i > 0) { /* lay the stage after the previous one unless it continues it */
            const herd_runlog_step *prev = &st[i - 1].log.steps[st[i - 1].log.n_steps - 1];
            int64_t last_step = prev->step + st[i - 1].step_off;
            int64_t last_tok = prev->tokens_seen + st[i - 1].tok_off;
            if (st[i].log.steps[0].step <= last_step) st[i].step_off = last_step;
            if (st[i].log.steps[0].tokens_seen <= last_tok) st[i].tok_off = last_tok;
        }
    }
    if (rc == 0 && mkdir(out, 0777) && errno != EEXIST) {
        fprintf(stderr, "herd report: %s: cannot create the output directory: %s\n", out, strerror(errno));
        rc = -1;
    }
    /* each stage's passkey.json (slurm/recipe_passkey.sh), when there is one */
    herd_pk_report *pk = rc == 0 ? malloc(sizeof *pk) : NULL;
    if (rc == 0 && !pk) rc = -1;
    if (rc == 0) {
        const char *dirs[MAX_STAGES], *names[MAX_STAGES];
        for (int i = 0; i < n; i++) dirs[i] = st[i].dir, names[i] = st[i].name;
        rc = herd_pk_report_load(pk, dirs, names, n);
    }
    int any_times = 0, any_events = 0, any_vals = 0;
    if (rc == 0) rc = write_data(out, st, n, &any_times, &any_events, &any_vals);
    if (rc == 0) rc = write_script(out, st, n, any_times, any_vals);
    if (rc == 0) rc = run_gnuplot(out);
    if (rc == 0) rc = write_html(out, st, n, pk);
    if (rc == 0)
        printf("report: %s/report.html (%d stage%s; plots loss.png lr_batch.png breakdown.png mfu.png%s%s)\n",
               out, n, n > 1 ? "s" : "", any_times ? "; with time split" : "; no time split in the metrics",
               any_events ? "; events marked" : "");
    if (rc == 0) herd_pk_report_text(pk, stdout);
    free(pk);
    for (int i = 0; i < loaded; i++) herd_runlog_free(&st[i].log);
    return rc ? 1 : 0;
}

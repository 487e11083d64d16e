/* report_passkey.c — the passkey grid in `herd report` (report_passkey.h). */
#include "src/cli/report_passkey.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "src/base/file.h"
#include "src/base/json.h"

static int bad(const char *path, const char *field, const char *why)
{
    fprintf(stderr, "herd report: %s: %s: %s\n", path, field, why);
    return -1;
}

/* Index of v in a[0..*n), added (kept sorted) when absent; -1 when full. */
static int slot(int *a, int *n, int max, int v)
{
    int i = 0;
    while (i < *n && a[i] < v) i++;
    if (i < *n && a[i] == v) return i;
    if (*n == max) return -1;
    memmove(a + i + 1, a + i, sizeof(int) * (size_t)(*n - i));
    a[i] = v;
    (*n)++;
    return i;
}

static int num_of(const herd_json *o, const char *key, double lo, double hi, double *v)
{
    const herd_json *j = herd_json_get(o, key);
    if (!j || j->type != HERD_JSON_NUM || !(j->num >= lo && j->num <= hi)) return -1;
    *v = j->num;
    return 0;
}

/* Shift the columns at and after a newly inserted length index in every stage read so far. */
static void open_column(herd_pk_report *r, int at, int n_stages)
{
    for (int s = 0; s <= n_stages && s < HERD_PK_MAX_STAGES; s++) {
        herd_pk_stage *st = &r->st[s];
        for (int k = r->n_lengths - 1; k > at; k--) {
            st->acc[k] = st->acc[k - 1];
            for (int d = 0; d < HERD_PK_MAX_DEPTHS; d++) st->cell[d][k] = st->cell[d][k - 1];
        }
        st->acc[at] = -1;
        for (int d = 0; d < HERD_PK_MAX_DEPTHS; d++) st->cell[d][at] = -1;
    }
}

static int read_length(herd_pk_report *r, herd_pk_stage *st, const char *path, const char *key,
                       const herd_json *v, int n_stages)
{
    char *end;
    long L = strtol(key, &end, 10);
    if (*end || L < 1 || L > (1L << 30)) return bad(path, "lengths", "a key is not a context length");
    int before = r->n_lengths;
    int k = slot(r->lengths, &r->n_lengths, HERD_PK_MAX_LENGTHS, (int)L);
    if (k < 0) return bad(path, "lengths", "more than 8 context lengths");
    if (r->n_lengths > before) open_column(r, k, n_stages);
    if (num_of(v, "accuracy", 0, 1, &st->acc[k]))
        return bad(path, "lengths.accuracy", "missing or not a number in [0, 1]");
    const herd_json *bd = herd_json_get(v, "by_depth");
    if (!bd) return 0;
    if (bd->type != HERD_JSON_OBJ) return bad(path, "by_depth", "not an object");
    for (size_t i = 0; i < bd->len; i++) {
        long dp = strtol(bd->keys[i], &end, 10);
        int d = 0;
        while (d < r->n_depths && r->depths[d] != dp) d++;
        if (*end || d == r->n_depths) return bad(path, "by_depth", "a depth that is not in \"depths\"");
        if (num_of(&bd->items[i], "accuracy", 0, 1, &st->cell[d][k]))
            return bad(path, "by_depth.accuracy", "missing or not a number in [0, 1]");
    }
    return 0;
}

/* The same for a newly inserted depth row. */
static void open_row(herd_pk_report *r, int at, int n_stages)
{
    for (int s = 0; s <= n_stages && s < HERD_PK_MAX_STAGES; s++)
        for (int k = 0; k < HERD_PK_MAX_LENGTHS; k++) {
            for (int d = r->n_depths - 1; d > at; d--) r->st[s].cell[d][k] = r->st[s].cell[d - 1][k];
            r->st[s].cell[at][k] = -1;
        }
}

static int read_depths(herd_pk_report *r, const herd_json *j, const char *path)
{
    const herd_json *dj = herd_json_get(j, "depths");
    if (!dj) return 0;
    if (dj->type != HERD_JSON_ARR || dj->len > HERD_PK_MAX_DEPTHS)
        return bad(path, "depths", "not an array of at most 11 percentages");
    for (size_t i = 0; i < dj->len; i++) {
        const herd_json *d = &dj->items[i];
        if (d->type != HERD_JSON_NUM || !(d->num >= 0 && d->num <= 100))
            return bad(path, "depths", "not a percentage in [0, 100]");
        int before = r->n_depths, at = slot(r->depths, &r->n_depths, HERD_PK_MAX_DEPTHS, (int)d->num);
        if (at < 0) return bad(path, "depths", "more than 11 depths over the stages");
        if (r->n_depths > before) open_row(r, at, r->n_stages);
    }
    return 0;
}

static int read_stage(herd_pk_report *r, const char *path, const char *name)
{
    size_t n;
    char *text = (char *)herd_file_slurp(path, &n);
    if (!text) return -1;
    herd_json j;
    char err[160];
    int rc = herd_json_parse(&j, text, n, err, sizeof err) ? bad(path, "json", err) : 0;
    free(text);
    if (rc) return -1;
    herd_pk_stage *st = &r->st[r->n_stages];
    memset(st, 0, sizeof *st);
    snprintf(st->name, sizeof st->name, "%s", name);
    for (int k = 0; k < HERD_PK_MAX_LENGTHS; k++) {
        st->acc[k] = -1;
        for (int d = 0; d < HERD_PK_MAX_DEPTHS; d++) st->cell[d][k] = -1;
    }
    double t = 0;
    const herd_json *ls = herd_json_get(&j, "lengths");
    if (num_of(&j, "trials", 1, 1e9, &t)) rc = bad(path, "trials", "missing or not a positive count");
    else if (!ls || ls->type != HERD_JSON_OBJ) rc = bad(path, "lengths", "missing or not an object");
    else rc = read_depths(r, &j, path);
    st->trials = (int)t;
    for (size_t i = 0; rc == 0 && ls && i < ls->len; i++)
        rc = read_length(r, st, path, ls->keys[i], &ls->items[i], r->n_stages);
    herd_json_free(&j);
    if (rc == 0) r->n_stages++;
    return rc;
}

int herd_pk_report_load(herd_pk_report *r, const char *const *dirs, const char *const *names, int n)
{
    memset(r, 0, sizeof *r);
    for (int i = 0; i < n && i < HERD_PK_MAX_STAGES; i++) {
        char path[4352];
        snprintf(path, sizeof path, "%s/passkey.json", dirs[i]);
        FILE *f = fopen(path, "r");
        if (!f) {
            if (errno == ENOENT) continue;
            fprintf(stderr, "herd report: %s: cannot read: %s\n", path, strerror(errno));
            return -1;
        }
        fclose(f);
        if (read_stage(r, path, names[i])) return -1;
    }
    return 0;
}

/* ---- text ------------------------------------------------------------------ */

static char shade(double a)
{
    static const char ramp[] = " .:-=+*#%@"; /* 0 .. 1 in ten steps */
    if (a < 0) return '?';
    int k = (int)(a * 9 + 0.5);
    return ramp[k < 0 ? 0 : k > 9 ? 9 : k];
}

void herd_pk_report_text(const herd_pk_report *r, FILE *f)
{
    if (r->n_stages == 0) return;
    fprintf(f, "passkey retrieval accuracy (%d trials per length):\n  %-29s", r->st[r->n_stages - 1].trials,
            "stage \\ context length");
    for (int k = 0; k < r->n_lengths; k++) fprintf(f, " %6d", r->lengths[k]);
    fputc('\n', f);
    for (int s = 0; s < r->n_stages; s++) {
        fprintf(f, "  %2d %-26.26s", s + 1, r->st[s].name);
        for (int k = 0; k < r->n_lengths; k++)
            if (r->st[s].acc[k] < 0) fprintf(f, " %6s", "-");
            else fprintf(f, " %6.2f", r->st[s].acc[k]);
        fputc('\n', f);
    }
    if (r->n_depths == 0) return;
    fprintf(f, "heat-map: depth of the key (rows) x context length (columns, as above), a panel per "
               "stage;\n  accuracy 0 ' .:-=+*#%%@' 1, '?' no depth grid in the file\n      ");
    for (int s = 0; s < r->n_stages; s++) fprintf(f, "  %-*d", r->n_lengths + 2, s + 1);
    fputc('\n', f);
    for (int d = 0; d < r->n_depths; d++) {
        fprintf(f, "  %3d%%", r->depths[d]);
        for (int s = 0; s < r->n_stages; s++) {
            fputs("  |", f);
            for (int k = 0; k < r->n_lengths; k++) fputc(shade(r->st[s].cell[d][k]), f);
            fputc('|', f);
        }
        fputc('\n', f);
    }
}

/* ---- HTML / SVG ----------------------------------------------------------------- */

static void esc(FILE *f, const char *s)
{
    for (; *s; s++)
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else fputc(*s, f);
}

/* white (0) to dark green (1) */
static void color(FILE *f, double a)
{
    if (a < 0) {
        fputs("#dddddd", f);
        return;
    }
    int r = (int)(255 - a * (255 - 0x1b)), g = (int)(255 - a * (255 - 0x7a)), b = (int)(255 - a * (255 - 0x3e));
    fprintf(f, "#%02x%02x%02x", r, g, b);
}

static void html_table(const herd_pk_report *r, FILE *f)
{
    fprintf(f, "<h2>Passkey retrieval</h2>\n<p>Accuracy per context length, %d trials per length "
               "(slurm/recipe_passkey.sh).</p>\n<table>\n<tr><th>stage</th>", r->st[r->n_stages - 1].trials);
    for (int k = 0; k < r->n_lengths; k++) fprintf(f, "<th>%d</th>", r->lengths[k]);
    fputs("</tr>\n", f);
    for (int s = 0; s < r->n_stages; s++) {
        fputs("<tr><td>", f);
        esc(f, r->st[s].name);
        fputs("</td>", f);
        for (int k = 0; k < r->n_lengths; k++) {
            double a = r->st[s].acc[k];
            fputs("<td style=\"background:", f);
            color(f, a);
            if (a < 0) fputs("\">-</td>", f);
            else fprintf(f, "\">%.2f</td>", a);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

void herd_pk_report_html(const herd_pk_report *r, FILE *f)
{
    if (r->n_stages == 0) return;
    html_table(r, f);
    if (r->n_depths == 0) return;
    const int cw = 44, ch = 22, left = 44, top = 34, gap = 24;
    int pw = r->n_lengths * cw, W = left + r->n_stages * (pw + gap), H = top + r->n_depths * ch + 24;
    fprintf(f, "<h3>Depth of the key x context length</h3>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
               "width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"10\">\n", W, H);
    for (int d = 0; d < r->n_depths; d++)
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%d%%</text>\n", left - 4,
                top + d * ch + ch / 2 + 4, r->depths[d]);
    for (int s = 0; s < r->n_stages; s++) {
        int x0 = left + s * (pw + gap);
        fprintf(f, "<text x=\"%d\" y=\"12\">", x0);
        esc(f, r->st[s].name);
        fputs("</text>\n", f);
        for (int k = 0; k < r->n_lengths; k++) {
            fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%d</text>\n", x0 + k * cw + cw / 2, top - 6,
                    r->lengths[k]);
            for (int d = 0; d < r->n_depths; d++) {
                double a = r->st[s].cell[d][k];
                fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" stroke=\"#fff\" fill=\"", x0 + k * cw,
                        top + d * ch, cw, ch);
                color(f, a);
                fprintf(f, "\"><title>%d tokens, depth %d%%: %.2f</title></rect>\n", r->lengths[k], r->depths[d], a);
                if (a >= 0)
                    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"%s\">%.1f</text>\n",
                            x0 + k * cw + cw / 2, top + d * ch + ch / 2 + 4, a > 0.6 ? "#fff" : "#000", a);
            }
        }
    }
    fprintf(f, "<text x=\"%d\" y=\"%d\">rows: depth of the key in the haystack; columns: context length "
               "(tokens); cells: accuracy (white 0, green 1)</text>\n</svg>\n", left, H - 6);
}

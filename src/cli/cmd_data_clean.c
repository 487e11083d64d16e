/* cmd_data_clean.c — `herd data clean`: the curation steps of src/data/curate.h
 * over document files (NUL-separated documents), with the parameters from the
 * config's curate section (a file and/or --set), and a report of what each
 * step removed (a table, and JSON with --report).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "src/cli/commands.h"
#include "src/config/config.h"
#include "src/data/curate.h"
#include "src/base/file.h"
#include "checkpoint/safe_file.h"

static int clean_usage(const char *why)
{
    if (why) fprintf(stderr, "herd data clean: %s\n", why);
    fputs("usage: herd data clean [--config CFG] [--set curate.KEY=VALUE]... --out DOCS\n"
          "                       [--report JSON] FILE...\n"
          "  FILEs hold documents separated by NUL bytes (a file without NUL is one document);\n"
          "  the kept documents go to DOCS in the same format. Parameters: the curate.* keys\n"
          "  (herd config --keys).\n",
          stderr);
    return 2;
}

static int write_docs(const char *path, const herd_doc *d, size_t n)
{
    herd_safe_file sf;
    FILE *f = herd_safe_file_begin_stream(&sf, path, 0666); /* fopen's mode */
    if (!f) return -1;
    int first = 1;
    for (size_t j = 0; j < n; j++) {
        if (!d[j].keep) continue;
        if (!first) fputc(0, f);
        fwrite(d[j].p, 1, d[j].n, f);
        first = 0;
    }
    return herd_safe_file_stream_commit(&sf, f);
}

static void print_report(FILE *f, const herd_curate_report *r, int json)
{
    if (json) {
        fprintf(f, "{\"in\": {\"docs\": %llu, \"bytes\": %llu}, \"steps\": [", (unsigned long long)r->in_docs,
                (unsigned long long)r->in_bytes);
        for (int s = 0; s < HERD_CURATE_N_STEPS; s++)
            fprintf(f, "%s{\"step\": \"%s\", \"removed_docs\": %llu, \"removed_bytes\": %llu}", s ? ", " : "",
                    herd_curate_step_name(s), (unsigned long long)r->docs[s], (unsigned long long)r->bytes[s]);
        fprintf(f, "], \"out\": {\"docs\": %llu, \"bytes\": %llu}}\n", (unsigned long long)r->out_docs,
                (unsigned long long)r->out_bytes);
        return;
    }
    fprintf(f, "%-16s %10s %12s\n", "step", "docs", "bytes");
    fprintf(f, "%-16s %10llu %12llu\n", "in", (unsigned long long)r->in_docs, (unsigned long long)r->in_bytes);
    for (int s = 0; s < HERD_CURATE_N_STEPS; s++)
        fprintf(f, "%-16s %10lld %12lld\n", herd_curate_step_name(s), -(long long)r->docs[s],
                -(long long)r->bytes[s]);
    fprintf(f, "%-16s %10llu %12llu\n", "out", (unsigned long long)r->out_docs, (unsigned long long)r->out_bytes);
}

int herd_cmd_data_clean(int argc, char **argv)
{
    const char *cfg = NULL, *out = NULL, *report = NULL;
    char **sets = malloc(sizeof(char *) * (size_t)argc), **files = malloc(sizeof(char *) * (size_t)argc);
    int n_sets = 0, n_files = 0, rc = 0;
    if (!sets || !files) {
        free(sets);
        free(files);
        return 1;
    }
    for (int i = 1; i < argc && rc == 0; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc) cfg = argv[++i];
        else if (!strcmp(argv[i], "--set") && i + 1 < argc) sets[n_sets++] = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--report") && i + 1 < argc) report = argv[++i];
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) rc = clean_usage(NULL);
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "herd data clean: unknown option or missing value: %s\n", argv[i]);
            rc = clean_usage(NULL);
        } else files[n_files++] = argv[i];
    }
    if (rc == 0 && (!out || !n_files)) rc = clean_usage("--out DOCS and a FILE are required");
    herd_config *c = rc ? NULL : malloc(sizeof *c);
    if (rc == 0 && (!c || herd_config_resolve(c, cfg, n_sets, sets))) rc = 1;
    if (rc == 0) c->curate.seed = c->train.seed;
    if (rc == 0 && herd_curate_check(&c->curate)) rc = 1;

    unsigned char **bufs = calloc((size_t)(n_files ? n_files : 1), sizeof *bufs);
    herd_doc *docs = NULL;
    size_t n_docs = 0, cap = 0;
    for (int k = 0; rc == 0 && k < n_files; k++) {
        size_t n;
        if (!bufs || !(bufs[k] = herd_file_slurp(files[k], &n))) {
            rc = 1;
            break;
        }
        for (size_t d = 0; d < n;) {
            unsigned char *z = memchr(bufs[k] + d, 0, n - d);
            size_t e = z ? (size_t)(z - bufs[k]) : n;
            if (n_docs == cap) {
                herd_doc *p = realloc(docs, sizeof *docs * (cap = cap ? 2 * cap : 1024));
                if (!p) {
                    rc = 1;
                    break;
                }
                docs = p;
            }
            docs[n_docs++] = (herd_doc){bufs[k] + d, e - d, 1};
            d = e + 1;
        }
    }
    if (rc == 0 && n_docs == 0) {
        fprintf(stderr, "herd data clean: the input files are empty: no documents\n");
        rc = 1;
    }
    herd_curate_report r;
    if (rc == 0 && herd_curate_run(&c->curate, docs, n_docs, &r)) rc = 1;
    if (rc == 0 && write_docs(out, docs, n_docs)) rc = 1;
    if (rc == 0) {
        printf("herd data clean: %s\n", out);
        print_report(stdout, &r, 0);
        if (report) {
            FILE *f = fopen(report, "w");
            if (!f) {
                fprintf(stderr, "herd: %s: cannot create: %s\n", report, strerror(errno));
                rc = 1;
            } else {
                print_report(f, &r, 1);
                if (fclose(f)) rc = 1;
            }
        }
    }
    for (int k = 0; bufs && k < n_files; k++) free(bufs[k]);
    free(bufs);
    free(docs);
    free(c);
    free(sets);
    free(files);
    return rc;
}

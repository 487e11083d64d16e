/* report_passkey.h — the passkey retrieval grid of a recipe's stages in
 * `herd report`: each stage directory's passkey.json (slurm/recipe_passkey.sh)
 * as a table (accuracy per stage and context length) and a heat-map (depth of
 * the key x context length, one panel per stage), in text for the terminal and
 * as HTML with inline SVG for report.html.
 */
#ifndef HERD_REPORT_PASSKEY_H
#define HERD_REPORT_PASSKEY_H

#include <stdio.h>

#define HERD_PK_MAX_STAGES  32
#define HERD_PK_MAX_LENGTHS 8
#define HERD_PK_MAX_DEPTHS  11

typedef struct {
    char   name[128];
    int    trials;                                        /* per length */
    double acc[HERD_PK_MAX_LENGTHS];                      /* per length; < 0: absent */
    double cell[HERD_PK_MAX_DEPTHS][HERD_PK_MAX_LENGTHS]; /* < 0: absent (no grid) */
} herd_pk_stage;

typedef struct {
    int n_stages, n_lengths, n_depths;
    int lengths[HERD_PK_MAX_LENGTHS], depths[HERD_PK_MAX_DEPTHS];
    herd_pk_stage st[HERD_PK_MAX_STAGES];
} herd_pk_report;

/* Read DIR/passkey.json of each of the n stage directories (names: their
 * labels); a stage without the file is left out. 0 (r->n_stages may be 0), or
 * -1 with a message naming the file and the field. */
int  herd_pk_report_load(herd_pk_report *r, const char *const *dirs, const char *const *names, int n);
void herd_pk_report_text(const herd_pk_report *r, FILE *f);
void herd_pk_report_html(const herd_pk_report *r, FILE *f);

#endif

/* cmd_ckpt_export.h — the Hugging Face side of `herd ckpt export`
 * (cmd_ckpt_export.c), dispatched from cmd_ckpt.c. */
#ifndef HERD_CMD_CKPT_EXPORT_H
#define HERD_CMD_CKPT_EXPORT_H

#include <stddef.h>

/* 1 when the export's arguments ask for the Hugging Face layout (--format,
 * --dtype, --max-shard-size, --tie or --tokenizer among them). */
int herd_ckpt_export_wants_hf(int argc, char **argv);
/* argv: CKPT OUT_DIR and those options (kind: --kind, refused here).
 * The exit status: 0, 1 (failed), 2 (usage). */
int herd_cmd_ckpt_export_hf(int argc, char **argv, const char *kind);
/* cmd_ckpt.c: CKPT as a step directory (a checkpoints directory: its newest
 * good checkpoint). 0 or -1 with a message. */
int herd_cmd_ckpt_resolve(const char *arg, char *out, size_t n);

#endif

/* commands.h — the subcommands of the herd binary (git style), one per file
 * src/cmd_*.c. Each takes argv with argv[0] the subcommand's name and returns
 * the process exit status (0 ok, 1 failure, 2 usage). */
#ifndef HERD_COMMANDS_H
#define HERD_COMMANDS_H

int herd_cmd_train(int argc, char **argv);
int herd_cmd_config(int argc, char **argv);
int herd_cmd_data(int argc, char **argv);
int herd_cmd_report(int argc, char **argv);
int herd_cmd_topo(int argc, char **argv);
int herd_cmd_plan(int argc, char **argv);
int herd_cmd_check(int argc, char **argv);
/* herd data train-tokenizer|encode|tokenize|clean (argv[0] the data command) */
int herd_cmd_data_tok(int argc, char **argv);
int herd_cmd_data_clean(int argc, char **argv);
int herd_cmd_data_sample(int argc, char **argv);
int herd_cmd_data_decode(int argc, char **argv);
int herd_cmd_data_passkey(int argc, char **argv);
int herd_cmd_ckpt(int argc, char **argv);
int herd_cmd_ckpt_import(int argc, char **argv); /* herd ckpt import (cmd_ckpt_import.c) */
int herd_cmd_generate(int argc, char **argv);
int herd_cmd_post(int argc, char **argv);

#endif

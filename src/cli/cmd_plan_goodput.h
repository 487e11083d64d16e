/* cmd_plan_goodput.h — `herd plan --goodput` (docs/goodput.md). */
#ifndef HERD_CMD_PLAN_GOODPUT_H
#define HERD_CMD_PLAN_GOODPUT_H

/* 1 when argv asks for --goodput */
int herd_plan_wants_goodput(int argc, char **argv);
int herd_cmd_plan_goodput(int argc, char **argv);

#endif

/* exitcodes.h — exit codes of `herd train`, fixed project-wide (the Slurm
 * scripts turn HERD_EXIT_REQUEUE into a requeue). */
#ifndef HERD_EXITCODES_H
#define HERD_EXITCODES_H

#define HERD_EXIT_OK 0
#define HERD_EXIT_FAIL 1
#define HERD_EXIT_USAGE 2
#define HERD_EXIT_REQUEUE 75
#define HERD_EXIT_HANG 76

#endif

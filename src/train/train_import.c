/* train_import.c — see train_import.h. */
#include <stdio.h>
#include "src/train/train_import.h"
#include "src/train/trainer.h"

int herd_train_import(const herd_config *c, const char *config_origin)
{
    herd_train_options opt = {0};
    herd_trainer *t = NULL;
    int rc = herd_trainer_open(&t, c, config_origin, &opt);
    if (rc == 0) rc = herd_trainer_checkpoint(t, 1);
    if (t && herd_trainer_finish(t) && rc == 0) rc = -1; /* the checkpoint commits */
    herd_trainer_close(t);
    return rc;
}

/* train_import.h — a Hugging Face Llama checkpoint turned into a herd
 * checkpoint (`herd ckpt import`): the trainer of a config opened with
 * train.init_from, its step-0 state saved as checkpoint 0. */
#ifndef HERD_TRAIN_IMPORT_H
#define HERD_TRAIN_IMPORT_H

#include "src/config/config.h"

/* Open the trainer of c (train.init_from set; checkpoint.every > 0), write
 * checkpoint step 0 (the weights, zero Adam moments, the loader at its
 * start) into checkpoint.dir and wait for it to commit. Collective; 0 or -1
 * (the message printed). `herd train` with checkpoint.resume 1 then resumes
 * it on any layout. */
int herd_train_import(const herd_config *c, const char *config_origin);

#endif

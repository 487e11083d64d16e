/* train_report.h — the trainer's printed header (backend, layout, memory,
 * precision, model, MFU formula, batch ramp, placement, pipeline). */
#ifndef HERD_TRAIN_REPORT_H
#define HERD_TRAIN_REPORT_H

#include "src/train/trainer.h"

/* Rank 0, after the model is built; place / bind: how the ranks were placed
 * and rank 0 bound. */
void herd_train_print_header(const herd_trainer *t, const char *peak_origin, const char *place,
                             const char *bind);

#endif

/* train.c — see train.h: the loop over the trainer (trainer.h). */
#include "monitoring/exitcodes.h"
#include "monitoring/watchdog.h"
#include "src/train/train.h"
#include "src/train/trainer.h"

int herd_train(const herd_config *c, const char *config_origin, const herd_train_options *opt)
{
    herd_trainer *t;
    int rc = herd_trainer_open(&t, c, config_origin, opt);
    while (rc == 0 && herd_trainer_more(t)) {
        herd_step_metrics sm;
        if ((rc = herd_trainer_step(t, &sm))) break;
        rc = herd_trainer_log(t, &sm);
        int last = !herd_trainer_more(t);
        if (rc == 0 && c->train.eval_every > 0 && (t->step % c->train.eval_every == 0 || last))
            rc = herd_trainer_evaluate(t, sm.seq_len);
        rc = herd_trainer_agree(t, rc);
        /* checkpoint every checkpoint.every steps, at the end, and when a
         * signal asks every rank to stop (SIGUSR1 before the time limit, SIGTERM) */
        int stop = 0;
        if (rc == 0) rc = herd_trainer_poll(t, &stop);
        if (rc == 0) rc = herd_trainer_checkpoint(t, last || stop);
        herd_watchdog_beat(t->step);
        if (rc == 0 && stop) {
            rc = herd_trainer_stop(t);
            break;
        }
    }
    if (t && herd_trainer_finish(t) && rc == 0) rc = -1; /* the last checkpoint commits */
    if (rc == 0) rc = herd_trainer_report(t);
    herd_trainer_close(t);
    return rc;
}

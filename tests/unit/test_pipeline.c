/* test_pipeline.c — the pipeline schedules without MPI: every rank's op list
 * holds each F and B once, each B after its F; the planned lists never wait
 * forever on one another (any N >= PP, any V); the 1F1B activation bound
 * (micro-batches whose forward ran and backward did not, per rank) is PP - p;
 * the simulated bubble of 1F1B is the textbook (PP-1)/(N+PP-1); layer splits. */
#include <string.h>
#include "src/model/model.h"
#include "src/parallel/pipeline.h"
#include "tests/unit/test.h"

/* each (chunk, mb) forward once and backward once, backward after forward;
 * returns the most micro-batch chunks alive at once */
static int check_order(int P, int V, int N, int p, int warmup, int *ok)
{
    int n = 2 * N * V, alive = 0, peak = 0;
    herd_pipe_op *ops = malloc(sizeof(*ops) * n);
    int *f = calloc(V * N, sizeof(int)), *b = calloc(V * N, sizeof(int));
    herd_pipe_order(P, V, N, p, warmup, ops);
    for (int i = 0; i < n; i++) {
        int k = ops[i].chunk * N + ops[i].mb;
        if (ops[i].chunk < 0 || ops[i].chunk >= V || ops[i].mb < 0 || ops[i].mb >= N) { *ok = 0; break; }
        if (ops[i].kind == 0) { f[k]++; alive++; }
        else { if (!f[k]) *ok = 0; b[k]++; alive--; }
        if (alive > peak) peak = alive;
    }
    for (int k = 0; k < V * N; k++) if (f[k] != 1 || b[k] != 1) *ok = 0;
    free(ops); free(f); free(b);
    return peak;
}

TEST(pipe_orders_complete_and_valid)
{
    int ok = 1;
    for (int P = 1; P <= 8; P++)
        for (int V = 1; V <= 3; V++)
            for (int N = P; N <= 2 * P + 3; N++) {
                int warm[8];
                double bub = herd_pipe_plan(P, V, N, warm);
                if (bub < 0 || bub >= 1) {
                    fprintf(stderr, "  P %d V %d N %d: no schedule (%g)\n", P, V, N, bub);
                    ok = 0;
                }
                for (int p = 0; p < P; p++) check_order(P, V, N, p, warm[p], &ok);
            }
    CHECK(ok);
}

TEST(pipe_1f1b_activation_bound)
{
    int ok = 1;
    for (int P = 2; P <= 8; P++)
        for (int N = P; N <= 3 * P; N++) {
            int warm[8];
            herd_pipe_plan(P, 1, N, warm);
            for (int p = 0; p < P; p++) {
                int peak = check_order(P, 1, N, p, warm[p], &ok);
                if (peak != P - p) {
                    fprintf(stderr, "  P %d N %d stage %d: %d alive, want %d\n", P, N, p, peak, P - p);
                    ok = 0;
                }
            }
        }
    CHECK(ok);
}

TEST(pipe_bubble_matches_theory)
{
    int warm[8];
    /* 1F1B: (P-1)/(N+P-1) for every N >= P, multiples of P or not */
    for (int P = 2; P <= 8; P++)
        for (int N = P; N <= 3 * P; N++)
            CHECK_NEAR(herd_pipe_plan(P, 1, N, warm), herd_pipe_theory(P, 1, N), 1e-12);
    /* interleaving shrinks the bubble below 1F1B's at the same N */
    CHECK(herd_pipe_plan(4, 2, 8, warm) < herd_pipe_plan(4, 1, 8, warm) - 0.05);
    CHECK(herd_pipe_plan(4, 4, 8, warm) < herd_pipe_plan(4, 2, 8, warm));
    CHECK_NEAR(herd_pipe_theory(4, 2, 6), 3.0 / 15.0, 1e-12);
}

TEST(pipe_split_layers)
{
    int first[8], count[8];
    CHECK(herd_model_split_layers(8, 4, 0, first, count) == 0);
    CHECK(count[0] == 2 && count[3] == 2 && first[3] == 6);
    CHECK(herd_model_split_layers(6, 4, 1, first, count) == 0); /* 1 2 2 1 */
    CHECK(count[0] == 1 && count[1] == 2 && count[2] == 2 && count[3] == 1);
    CHECK(first[1] == 1 && first[2] == 3 && first[3] == 5);
    fprintf(stderr, "  (two messages expected below)\n");
    CHECK(herd_model_split_layers(6, 4, 0, first, count) == -1);
    CHECK(herd_model_split_layers(4, 6, 1, first, count) == -1);  /* first and last: 0 layers */
}

int main(void)
{
    RUN(pipe_orders_complete_and_valid);
    RUN(pipe_1f1b_activation_bound);
    RUN(pipe_bubble_matches_theory);
    RUN(pipe_split_layers);
    return test_summary();
}

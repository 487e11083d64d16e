/* test_computemodel.c — the shape-aware compute of herd plan
 * (topology/computemodel.c): the roofline's wave quantization and memory
 * roof, the built-in H100 points reproduced at their own shapes, a
 * calibration table scaling the nearest shape, and the table's bad input. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "tests/unit/test.h"
#include "topology/computemodel.h"

/* a GEMM whose output tiles fill less than one wave costs the whole wave:
 * m = 128 and m = 1024 (8 x 4 = 32 tiles of 132 SMs) take the same time */
TEST(wave_quantization)
{
    herd_gpu_profile g;
    CHECK(herd_gpu_profile_get("h100", &g) == 0);
    g.n_points = 0;
    double t1 = herd_gemm_roofline(&g, 128, 1024, 8192), t8 = herd_gemm_roofline(&g, 1024, 1024, 8192);
    CHECK_NEAR(t1, t8, 1e-12);
    /* a full wave more (133 tiles of 132) doubles the compute part */
    double a = herd_gemm_roofline(&g, 128 * 132, 256, 8192), b = herd_gemm_roofline(&g, 128 * 133, 256, 8192);
    CHECK(b > 1.9 * (a - 4e-6));
    /* a skinny GEMM is memory-bound: 2 (mk + kn + mn) bytes over HBM */
    double m = herd_gemm_roofline(&g, 1, 131072, 4096);
    CHECK_NEAR(m, 2.0 * (4096 + 4096.0 * 131072 + 131072) / 3350e9 + 4e-6, 1e-12);
}

/* the built-in points are the public square measurements: at their own
 * shapes the model returns their times */
TEST(h100_points_reproduced)
{
    herd_gpu_profile g;
    CHECK(herd_gpu_profile_get("h100", &g) == 0);
    CHECK(g.n_points == 5);
    double n = 8192, t = herd_gemm_seconds(&g, n, n, n);
    CHECK_NEAR(2 * n * n * n / t / 1e12, 797.51, 0.01);
    n = 1024, t = herd_gemm_seconds(&g, n, n, n);
    CHECK_NEAR(2 * n * n * n / t / 1e12, 176.62, 0.01);
    /* attention: slower per FLOP than the GEMMs, faster at long keys */
    double a2 = herd_attn_seconds(&g, 2048, 2048, 4096, 1), a8 = herd_attn_seconds(&g, 8192, 8192, 4096, 1);
    CHECK(a8 / 16 < a2);
}

TEST(calibration_scales_the_nearest_shape)
{
    char path[] = "/tmp/herd_cal_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "# two measured kernels\ngemm 4096 4096 4096 0.01\nattn 2048 2048 1024 1 0.002\n");
    fclose(f);
    herd_gpu_profile g;
    CHECK(herd_gpu_profile_get("h100", &g) == 0);
    double before = herd_gemm_seconds(&g, 4096, 4096, 8192);
    CHECK(herd_gpu_profile_calibrate(&g, path) == 0);
    CHECK(g.n_points == 2);
    CHECK_NEAR(herd_gemm_seconds(&g, 4096, 4096, 4096), 0.01, 1e-12);
    /* a shape near the point gets the point's measured/roofline ratio */
    double ratio = 0.01 / herd_gemm_roofline(&g, 4096, 4096, 4096);
    CHECK_NEAR(herd_gemm_seconds(&g, 4096, 4096, 8192), ratio * herd_gemm_roofline(&g, 4096, 4096, 8192), 1e-12);
    CHECK(herd_gemm_seconds(&g, 4096, 4096, 8192) > 10 * before);
    CHECK_NEAR(herd_attn_seconds(&g, 2048, 2048, 1024, 1), 0.002, 1e-12);
    /* bad tables: a short line, an unknown kind, nothing measured */
    const char *bad[] = {"gemm 1 2 3\n", "conv 1 2 3 4\n", "peak 900\n", "attn 1 2 3 2 0.1\n", "gemm 1 2 -3 0.1\n"};
    printf("  (the messages of 5 bad tables, a missing one and an unknown GPU are expected here)\n");
    fflush(stdout);
    for (int i = 0; i < 5; i++) {
        f = fopen(path, "w");
        fputs(bad[i], f);
        fclose(f);
        CHECK(herd_gpu_profile_calibrate(&g, path) == -1);
    }
    unlink(path);
    CHECK(herd_gpu_profile_calibrate(&g, path) == -1); /* missing */
    CHECK(herd_gpu_profile_get("b200", &g) == -1);
}

int main(void)
{
    RUN(wave_quantization);
    RUN(h100_points_reproduced);
    RUN(calibration_scales_the_nearest_shape);
    return test_summary();
}

/* test.h — the unit-test harness: one binary per file, many cases per binary.
 *
 *   TEST(name) { CHECK(cond); CHECK_NEAR(a, b, tol); ... }
 *   int main(void) { RUN(name); ...; return test_summary(); }
 *
 * Each case prints one line "PASS name", "FAIL name" or "SKIP name: why";
 * tests/run.sh counts them. A case calls SKIP("why") to skip (e.g. no GPU).
 */
#ifndef HERD_TEST_H
#define HERD_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int test_failed_, test_skipped_, test_n_pass_, test_n_fail_, test_n_skip_;
static const char *test_skip_why_ = "";

#define TEST(name) static void name(void)

#define CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
    test_failed_ = 1; } } while (0)

#define CHECK_NEAR(a, b, tol) do { double a_ = (a), b_ = (b); \
    if (!(fabs(a_ - b_) <= (tol)) ) { \
    fprintf(stderr, "  %s:%d: %s = %.9g, %s = %.9g, |diff| %.3g > %.3g\n", __FILE__, \
            __LINE__, #a, a_, #b, b_, fabs(a_ - b_), (double)(tol)); \
    test_failed_ = 1; } } while (0)

#define SKIP(why) do { test_skipped_ = 1; test_skip_why_ = (why); return; } while (0)

#define RUN(name) do { test_failed_ = 0; test_skipped_ = 0; name(); \
    if (test_skipped_) { printf("SKIP %s: %s\n", #name, test_skip_why_ ? test_skip_why_ : ""); test_n_skip_++; } \
    else if (test_failed_) { printf("FAIL %s\n", #name); test_n_fail_++; } \
    else { printf("PASS %s\n", #name); test_n_pass_++; } fflush(stdout); } while (0)

static inline int test_summary(void) { return test_n_fail_ ? 1 : 0; }

#endif

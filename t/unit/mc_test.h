/* mc_test.h - a tiny TAP-style assertion framework for the unit tests.
 *
 * One test binary = one .c file including this header. Each CHECK prints
 * "ok N - msg" or "not ok N - msg" (TAP, so `prove` can run the binaries),
 * and MC_TEST_DONE() prints the plan, then a last line "N passed, M failed",
 * and yields the exit status: 0 only when nothing failed.
 */
#ifndef MC_TEST_H
#define MC_TEST_H

#include <stdio.h>

static int mc_test_passed;
static int mc_test_failed;

static int mc_test_check(int ok, const char *file, int line, const char *msg)
{
    int n = mc_test_passed + mc_test_failed + 1;

    if (ok) {
        mc_test_passed++;
        printf("ok %d - %s\n", n, msg);
    }
    else {
        mc_test_failed++;
        printf("not ok %d - %s\n", n, msg);
        printf("#   failed at %s:%d\n", file, line);
    }
    fflush(stdout);
    return ok;
}

/* CHECK(cond, msg): record one assertion; evaluates to cond's truth so a
 * test can stop early (`if (!CHECK(p != NULL, "...")) return;`). */
#define CHECK(cond, msg) mc_test_check((cond) ? 1 : 0, __FILE__, __LINE__, (msg))

/* Diagnostics that TAP harnesses show but do not count. */
#define NOTE(...) do { printf("# "); printf(__VA_ARGS__); printf("\n"); } while (0)

static int mc_test_done(void)
{
    printf("1..%d\n", mc_test_passed + mc_test_failed);
    printf("%d passed, %d failed\n", mc_test_passed, mc_test_failed);
    fflush(stdout);
    return mc_test_failed ? 1 : 0;
}

#define MC_TEST_DONE() mc_test_done()

#endif /* MC_TEST_H */

/* page_cost.c - what a process pays to read a page of shared memory: the first time, and again.
 *
 * The built-in store lives in memory the httpd parent maps before it forks. Each child maps a
 * page of it into its own page tables the first time it reads it. On bare metal that is a
 * minor fault; on some virtual machines it is also a trip through the hypervisor, and it is
 * paid once per child and page. bench/run prints this figure beside the session-count table,
 * so that table can be read for the machine it ran on.
 *
 * A parent writes every page of a shared anonymous mapping (the store's kind of memory), then
 * a child it forks reads one byte of each page in a random order, four times: the first pass
 * pays the mapping, the second is an ordinary cache- and TLB-missing read, the third comes
 * after the pages lay untouched for IDLE seconds. That one is what a stored session's page
 * costs when many sessions are in use and each is read again only every few seconds: on the
 * bench's virtual machine memory left alone for seconds costs more to read again, more the
 * longer it was left: the guest kernel's DAMON samples pages by clearing their accessed bits,
 * and the next touch of a sampled page pays for setting them again (bench/README.md; 0.03 us
 * with the kdamond stopped). The fourth pass shows that price alone: the child first clears
 * the accessed bits of all its pages itself (MADV_COLD, which leaves them mapped), so every
 * read has to set one again. Prints its pages and IDLE, then microseconds per page:
 *   pages 32768 idle_s 10 first 6.34 again 0.03 idle 0.92 cleared 4.82
 *
 * Build: cc -O2 -o page_cost page_cost.c   Run: ./page_cost [pages, default 32768] */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define IDLE 10         /* seconds: a page of a 100,000-session store rotating at ~15,000
                         * requests a second is read again after about 7 */

static volatile unsigned sink;  /* the reads' sum goes here, so they are not left out */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Reads one byte of each page, in the order given; returns microseconds per page. */
static double read_pages(const volatile unsigned char *m, const size_t *order, size_t n)
{
    unsigned sum = 0;
    double t0 = now();
    for (size_t i = 0; i < n; i++)
        sum += m[order[i] * PAGE];
    double t = now() - t0;
    sink = sum;
    return t / n * 1e6;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 32768;
    if (n < 2) {
        fprintf(stderr, "page_cost: at least 2 pages\n");
        return 2;
    }
    unsigned char *m = mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    size_t *order = malloc(n * sizeof(*order));
    if (m == MAP_FAILED || order == NULL) {
        perror("page_cost");
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        memset(m + i * PAGE, 0x5a, 64);
        order[i] = i;
    }
    /* A fixed shuffle: the same order on every run, with no pattern a prefetcher follows. */
    unsigned long long x = 88172645463325252ULL;
    for (size_t i = n - 1; i > 0; i--) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        size_t j = x % (i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("page_cost: fork");
        return 1;
    }
    if (pid == 0) {
        double first = read_pages(m, order, n);
        double again = read_pages(m, order, n);
        sleep(IDLE);
        double idle = read_pages(m, order, n);
        double cleared = -1;            /* the idle pass set every accessed bit again */
        if (madvise(m, n * PAGE, MADV_COLD) == 0)
            cleared = read_pages(m, order, n);
        printf("pages %zu idle_s %d first %.2f again %.2f idle %.2f cleared %.2f\n", n, IDLE,
               first, again, idle, cleared);
        fflush(stdout);
        _exit(0);
    }
    /* The child's mapping alone keeps the pages: MADV_COLD leaves pages mapped by more than
     * one process as they are. */
    munmap(m, n * PAGE);
    int st;
    if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return 1;
    return 0;
}

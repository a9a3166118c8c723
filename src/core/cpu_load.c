#include "core/cpu_load.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int nm_cpu_usable(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* Reads a small /proc file into buf (NUL-terminated); bytes read or -1. */
static int read_small(const char *path, char *buf, int cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, (size_t)cap - 1);
    close(fd);
    if (n < 0) return -1;
    buf[n] = 0;
    return (int)n;
}

/* This process's threads in state R. The state follows the command name,
 * which is in parentheses and may itself hold ')' or spaces. */
static int own_runnable(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    int running = 0;
    struct dirent *e;
    char path[64], buf[512];
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        snprintf(path, sizeof path, "/proc/self/task/%.20s/stat", e->d_name);
        if (read_small(path, buf, sizeof buf) <= 0) continue;
        const char *p = strrchr(buf, ')');
        if (p && p[1] == ' ' && p[2] == 'R') running++;
    }
    closedir(d);
    return running;
}

int nm_cpu_runnable_elsewhere(void)
{
    char buf[128];
    if (read_small("/proc/loadavg", buf, sizeof buf) <= 0) return -1;
    /* "0.51 0.15 0.05 3/345 1234": the fourth field is runnable/total. */
    const char *p = buf;
    for (int field = 0; field < 3 && p; field++) {
        p = strchr(p, ' ');
        if (p) p++;
    }
    if (!p) return -1;
    int all = atoi(p);
    int own = own_runnable();
    if (own < 0) return -1;
    /* The two reads are not one snapshot: never below 0. */
    return all > own ? all - own : 0;
}

double nm_cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

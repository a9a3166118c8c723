/* What the other processes on this machine are doing to the cores, read from
 * /proc: the engine's thread policy (graph/model.c) uses it to run on fewer
 * threads while other work keeps the cores busy. OpenMP threads that wait at
 * a barrier for a peer the kernel has descheduled lose whole time slices, so
 * two threads on a shared core are much slower than one. */
#ifndef NM_CORE_CPU_LOAD_H
#define NM_CORE_CPU_LOAD_H

/* CPUs this process may run on (its affinity mask), at least 1. */
int nm_cpu_usable(void);

/* Threads of other processes that are runnable at this instant (running or
 * waiting for a core): the system's count of runnable threads
 * (/proc/loadavg) minus this process's own (/proc/self/task/N/stat).
 * -1 when /proc cannot be read. */
int nm_cpu_runnable_elsewhere(void);

/* Seconds on a monotonic clock. */
double nm_cpu_now(void);

#endif

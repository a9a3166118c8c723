/* A competitor for bench/threads.sh: a CPU-bound OpenMP program with the
 * runtime's default settings (all cores, threads spinning at barriers), a
 * short parallel loop after another as any OpenMP engine runs, until killed. */
#include <stdio.h>

int main(void)
{
    static double a[1 << 15];
    for (unsigned long round = 0;; round++) {
#pragma omp parallel for
        for (int i = 0; i < (1 << 15); i++) a[i] = a[i] * 0.999 + 1.0;
        if (round == ~0ul) printf("%g\n", a[0]);   /* keeps the loop */
    }
}

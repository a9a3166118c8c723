/* Sharding for job arrays: `--shard K/N` runs the K-th (0-based) of N
 * contiguous parts of the input list, so that N tasks (Slurm job-array
 * tasks, Kubernetes Indexed Job pods) together cover it once.
 *
 * Where the shard comes from, first match wins:
 *   --shard K/N                 as given;
 *   --shards N                  K = JOB_COMPLETION_INDEX (Kubernetes) or
 *                               SLURM_ARRAY_TASK_ID (submit --array=0-(N-1);
 *                               resubmitting task K alone, --array=K, keeps K/N);
 *   SLURM_ARRAY_TASK_ID set     K = SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN,
 *                               N = SLURM_ARRAY_TASK_COUNT (a contiguous array);
 *   otherwise                   no sharding. */
#ifndef NM_CLI_SHARD_H
#define NM_CLI_SHARD_H

#include "cli_common.h"

typedef struct cli_shard_flags {
    const char *shard;      /* --shard K/N */
    int shards;             /* --shards N (0: not given) */
} cli_shard_flags;

typedef struct cli_shard {
    int k, n;               /* n == 0: the whole list */
} cli_shard;

/* Matches --shard and --shards. */
int cli_shard_option(cli_parser *p, cli_shard_flags *f);
#define CLI_SHARD_HELP                                                                           \
    "  --shard K/N          only the K-th (0-based) of N contiguous parts of the input\n"      \
    "                       list; default: from a Slurm job array (SLURM_ARRAY_TASK_ID -\n"   \
    "                       SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT)\n"                 \
    "  --shards N           N parts, K from JOB_COMPLETION_INDEX (Kubernetes Indexed Job)\n"   \
    "                       or SLURM_ARRAY_TASK_ID (an array submitted as --array=0-(N-1))\n"

/* The shard from the flags and the environment (see above). Returns CLI_OK,
 * or prints why the combination is inconsistent and returns CLI_USAGE. */
int cli_shard_resolve(const char *cmd, const cli_shard_flags *f, cli_shard *out);

/* The shard's part of n items: [*first, *first + *count). The list is cut
 * into ceil(n / unit) runs of `unit` items (a batch) and shard k gets runs
 * [k * runs / N, (k + 1) * runs / N), so every shard's batches are those of a
 * whole run. Without sharding: everything. */
void cli_shard_range(const cli_shard *s, int n, int unit, int *first, int *count);

/* "shard-K-of-N" into buf. */
void cli_shard_name(const cli_shard *s, char *buf, size_t cap);

#endif

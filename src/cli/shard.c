/* Which part of the input list this task runs (see shard.h). */
#include "shard.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int cli_shard_option(cli_parser *p, cli_shard_flags *f)
{
    return cli_string(p, "--shard", &f->shard) || cli_int(p, "--shards", 1, 1 << 24, &f->shards);
}

/* A whole number 0..2^24 in s (the variable `name`), or -1 (also when unset). */
static long env_number(const char *name, int *set)
{
    const char *s = getenv(name);
    *set = s != NULL;
    if (!s) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    return *s && !*end && !errno && v >= 0 && v <= (1 << 24) ? v : -1;
}

static int parse_k_of_n(const char *cmd, const char *s, cli_shard *out)
{
    char *end;
    errno = 0;
    long k = strtol(s, &end, 10), n = -1;
    if (end != s && *end == '/') {
        const char *t = end + 1;
        n = strtol(t, &end, 10);
        if (end == t || *end || errno) n = -1;
    }
    if (n < 1 || n > (1 << 24) || k < 0 || k >= n)
        return cli_usage_error(cmd, "--shard wants K/N with 0 <= K < N (K counts from 0), got '%s'", s);
    out->k = (int)k, out->n = (int)n;
    return CLI_OK;
}

/* --shards N: the task's index from Kubernetes or Slurm. */
static int index_of_task(const char *cmd, int shards, cli_shard *out)
{
    int k8s_set, slurm_set;
    long k8s = env_number("JOB_COMPLETION_INDEX", &k8s_set), slurm = env_number("SLURM_ARRAY_TASK_ID", &slurm_set);
    if (k8s_set && k8s < 0)
        return cli_usage_error(cmd, "JOB_COMPLETION_INDEX='%s' is not a whole number", getenv("JOB_COMPLETION_INDEX"));
    if (slurm_set && slurm < 0)
        return cli_usage_error(cmd, "SLURM_ARRAY_TASK_ID='%s' is not a whole number", getenv("SLURM_ARRAY_TASK_ID"));
    if (k8s_set && slurm_set && k8s != slurm)
        return cli_usage_error(cmd, "JOB_COMPLETION_INDEX=%ld and SLURM_ARRAY_TASK_ID=%ld disagree; give --shard K/N",
                               k8s, slurm);
    if (!k8s_set && !slurm_set)
        return cli_usage_error(cmd, "--shards %d needs the task's index in JOB_COMPLETION_INDEX or "
                                    "SLURM_ARRAY_TASK_ID (or give --shard K/N)", shards);
    long k = k8s_set ? k8s : slurm;
    if (k >= shards)
        return cli_usage_error(cmd, "%s=%ld is not below --shards %d (submit the array as --array=0-%d)",
                               k8s_set ? "JOB_COMPLETION_INDEX" : "SLURM_ARRAY_TASK_ID", k, shards, shards - 1);
    out->k = (int)k, out->n = shards;
    return CLI_OK;
}

/* Neither flag: a Slurm array task runs its part of the array. */
static int slurm_array(const char *cmd, cli_shard *out)
{
    int id_set, min_set, max_set, count_set, step_set;
    long id = env_number("SLURM_ARRAY_TASK_ID", &id_set), min = env_number("SLURM_ARRAY_TASK_MIN", &min_set);
    long max = env_number("SLURM_ARRAY_TASK_MAX", &max_set), count = env_number("SLURM_ARRAY_TASK_COUNT", &count_set);
    long step = env_number("SLURM_ARRAY_TASK_STEP", &step_set);
    if (!id_set) {
        int k8s_set;
        env_number("JOB_COMPLETION_INDEX", &k8s_set);
        if (k8s_set)
            return cli_usage_error(cmd, "JOB_COMPLETION_INDEX is set: give --shards N (the Job's completions) "
                                        "or --shard K/N");
        out->k = 0, out->n = 0;
        return CLI_OK;
    }
    if (id < 0 || min < 0 || count < 1 || id < min || id - min >= count || (max_set && max - min + 1 != count) ||
        (step_set && step != 1))
        return cli_usage_error(cmd, "SLURM_ARRAY_TASK_ID=%s, _MIN=%s, _MAX=%s, _COUNT=%s, _STEP=%s is not a task of "
                                    "a contiguous array; give --shard K/N or --shards N",
                               getenv("SLURM_ARRAY_TASK_ID"), min_set ? getenv("SLURM_ARRAY_TASK_MIN") : "unset",
                               max_set ? getenv("SLURM_ARRAY_TASK_MAX") : "unset",
                               count_set ? getenv("SLURM_ARRAY_TASK_COUNT") : "unset",
                               step_set ? getenv("SLURM_ARRAY_TASK_STEP") : "unset");
    out->k = (int)(id - min), out->n = (int)count;
    return CLI_OK;
}

int cli_shard_resolve(const char *cmd, const cli_shard_flags *f, cli_shard *out)
{
    if (f->shard && f->shards) return cli_usage_error(cmd, "give --shard K/N or --shards N, not both");
    if (f->shard) return parse_k_of_n(cmd, f->shard, out);
    if (f->shards) return index_of_task(cmd, f->shards, out);
    return slurm_array(cmd, out);
}

void cli_shard_range(const cli_shard *s, int n, int unit, int *first, int *count)
{
    if (s->n < 1) {
        *first = 0, *count = n;
        return;
    }
    long long runs = unit > 0 ? (n + unit - 1) / unit : n, u = unit > 0 ? unit : 1;
    long long a = (long long)s->k * runs / s->n * u, b = (long long)(s->k + 1) * runs / s->n * u;
    if (a > n) a = n;
    if (b > n) b = n;
    *first = (int)a, *count = (int)(b - a);
}

void cli_shard_name(const cli_shard *s, char *buf, size_t cap)
{
    snprintf(buf, cap, "shard-%d-of-%d", s->k, s->n);
}

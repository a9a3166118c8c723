/* Fuzz target: the command line. The input, split at NUL bytes, is an argv
 * for `neuromask` (the first token's first byte picks the subcommand); each
 * token is also given to the option-spec parsers. No file is ever read or
 * written: the process works in a fresh empty directory, and a token that
 * could name anything outside it ('/' inside, "." or "..") becomes "x". */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_main.h"
#include "neuromask.h"

#define MAX_TOKENS 32

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Sanitizer reports go to this fd once stderr is /dev/null (absent without sanitizers). */
void __sanitizer_set_report_fd(void *fd) __attribute__((weak));

static char dir[] = "/tmp/nm_fuzz_args.XXXXXX";

static void remove_dir(void)
{
    if (chdir("/") == 0) rmdir(dir);   /* still empty: nothing is ever written there */
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (!mkdtemp(dir) || chdir(dir) != 0) {
        perror("fuzz_args: temporary directory");
        exit(1);
    }
    atexit(remove_dir);
    int null = open("/dev/null", O_WRONLY);
    if (null < 0) {
        perror("fuzz_args: /dev/null");
        exit(1);
    }
    fflush(stdout);
    dup2(null, 1);
#ifndef NM_LIBFUZZER
    /* libFuzzer keeps its own stderr and discards ours with -close_fd_mask=2
     * (fuzz/run.sh); the replay program does it here, keeping the original
     * stderr for sanitizer reports. */
    int keep = dup(2);
    fflush(stderr);
    dup2(null, 2);
    if (keep >= 0 && __sanitizer_set_report_fd) __sanitizer_set_report_fd((void *)(intptr_t)keep);
#endif
    close(null);
    /* The CLI writes its messages a character at a time to an unbuffered
     * stderr: one system call each. Into /dev/null, buffered. */
    static char out_buf[1 << 16], err_buf[1 << 16];
    setvbuf(stdout, out_buf, _IOFBF, sizeof out_buf);
    setvbuf(stderr, err_buf, _IOFBF, sizeof err_buf);
    return 0;
}

static int unsafe_token(const char *s)
{
    return strchr(s, '/') || !strcmp(s, ".") || !strcmp(s, "..");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const commands[] = { "classify", "info", "explain", "eval", "--help" };
    char *buf = malloc(size + 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';

    /* The specs the CLI hands to the library, each token on its own. */
    nm_error err = { 0 };
    for (size_t pos = 0; pos < size; pos += strlen(buf + pos) + 1) {
        nm_preprocess pp;
        nm_neuromask_options o;
        nm_preprocess_parse(buf + pos, &pp, &err);
        nm_neuromask_preset("cifar", &o, &err);
        nm_neuromask_parse(buf + pos, &o, &err);
        nm_method_from_name(buf + pos);
    }

    /* Each token in its own allocation of its exact size, so that reading
     * past one is a heap overflow rather than a read of the next. */
    char *argv[MAX_TOKENS + 3];
    int argc = 0, first = 2;
    argv[argc++] = "neuromask";
    argv[argc++] = (char *)commands[size ? (unsigned char)buf[0] % 5 : 4];
    for (size_t pos = strlen(buf) + 1; pos < size && argc < MAX_TOKENS + 2;
         pos += strlen(buf + pos) + 1)
        argv[argc++] = strdup(unsafe_token(buf + pos) ? "x" : buf + pos);
    argv[argc] = NULL;
    int ok = 1;
    for (int i = first; i < argc; i++) ok = ok && argv[i];
    if (ok) neuromask_main(argc, argv);
    for (int i = first; i < argc; i++) free(argv[i]);
    free(buf);
    return 0;
}

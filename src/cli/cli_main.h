/* The neuromask command as a function: main() calls it, and so does the
 * argument fuzzer (fuzz/fuzz_args.c). */
#ifndef NM_CLI_MAIN_H
#define NM_CLI_MAIN_H

/* Run the command line argv[0..argc) (argv[1] is the subcommand); returns
 * the exit code (0 ok, 1 bad input or runtime error, 2 usage error). */
int neuromask_main(int argc, char **argv);

#endif

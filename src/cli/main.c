/* neuromask: the command-line tool (the commands are in cli_main.c). */
#include "cli_main.h"

int main(int argc, char **argv)
{
    return neuromask_main(argc, argv);
}

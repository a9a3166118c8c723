/* Forced into every library source (-include): the declarations of the
 * public header get default visibility while everything else is compiled
 * with -fvisibility=hidden, so libneuromask.so exports exactly the functions
 * of include/neuromask.h, with no mark on each declaration. */
#ifndef NM_PUBLIC_API_H
#define NM_PUBLIC_API_H
#pragma GCC visibility push(default)
#include "neuromask.h"
#pragma GCC visibility pop
#endif

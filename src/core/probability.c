#include "core/probability.h"

#include <math.h>

float nm_class_probability(const float *logits, int k, int c)
{
    float mx = logits[0];
    for (int j = 1; j < k; j++) mx = logits[j] > mx ? logits[j] : mx;
    double sum = 0;
    for (int j = 0; j < k; j++) sum += exp((double)logits[j] - mx);
    return (float)(exp((double)logits[c] - mx) / sum);
}

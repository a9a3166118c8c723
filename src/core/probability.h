/* The softmax probability of one class from a row of logits, in double
 * precision with the maximum subtracted: what every metric and explainer
 * reports as "the probability of the class". */
#ifndef NM_CORE_PROBABILITY_H
#define NM_CORE_PROBABILITY_H

float nm_class_probability(const float *logits, int k, int c);

#endif

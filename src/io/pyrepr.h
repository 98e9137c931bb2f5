/*
 * pyrepr.h: Python's repr() of a float, for the files beard writes as BEARD's Python code
 * writes them (checkpoint names with the accuracy, the eval_accuracies dictionaries of the
 * black-box log).
 */
#ifndef BEARD_PYREPR_H
#define BEARD_PYREPR_H

#include <stddef.h>

// the shortest round-trip form in repr's layout: 0.6995, 0.26, 1.0, 10.0, 5e-05, 1e+16, nan
void py_repr_float(double v, char *buf, size_t n);

#endif

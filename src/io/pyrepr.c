/*
 * pyrepr.c: see pyrepr.h.
 */
#include "pyrepr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void py_repr_float(double v, char *buf, size_t n) {
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    // Python writes integral values with ".0" and never uses %g's "e+" for these values
    if (!strpbrk(buf, ".eninf")) {
        size_t l = strlen(buf);
        if (l + 2 < n) memcpy(buf + l, ".0", 3);
    }
}

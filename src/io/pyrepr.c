/*
 * pyrepr.c: see pyrepr.h.
 */
#include "pyrepr.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void py_repr_float(double v, char *buf, size_t n) {
    if (!isfinite(v)) {
        snprintf(buf, n, "%s", isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
        return;
    }
    // the shortest digits that read back as v, then Python's repr layout: positional for
    // decimal exponents in [-4, 16) (10.0, 1000.0, 0.0001), scientific outside (1e-05, 1e+16)
    char sci[48];
    int prec = 1;
    for (; prec <= 17; prec++) {
        snprintf(sci, sizeof(sci), "%.*e", prec - 1, v);
        if (strtod(sci, NULL) == v) break;
    }
    if (prec > 17) prec = 17;
    int exp = v == 0 ? 0 : atoi(strchr(sci, 'e') + 1);
    if (exp < -4 || exp >= 16) {
        snprintf(buf, n, "%s", sci);
        return;
    }
    int dec = prec - 1 - exp;
    snprintf(buf, n, "%.*f", dec > 0 ? dec : 0, v);
    if (!strchr(buf, '.')) { // Python writes integral values with ".0"
        size_t l = strlen(buf);
        if (l + 2 < n) memcpy(buf + l, ".0", 3);
    }
}

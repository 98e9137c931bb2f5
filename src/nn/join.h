/*
 * join.h: ops that join or split feature maps, for the graph models (src/models/net.h):
 * the residual sum of ResNets. Same conventions as nn.h (outputs first, backward adds
 * into its gradient buffers, any of which may be NULL).
 */
#ifndef BEARD_JOIN_H
#define BEARD_JOIN_H

#include <stddef.h>

#include "real.h"

// out = a + b elementwise (torch's `out += shortcut(x)`); out may alias a or b
void add_forward(real *out, const real *a, const real *b, size_t n);
// da += dout, db += dout (da and db may be the same buffer: then it gets 2 dout)
void add_backward(real *da, real *db, const real *dout, size_t n);

#endif

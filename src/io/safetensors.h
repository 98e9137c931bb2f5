/*
 * safetensors.h: the safetensors format (huggingface/safetensors): an 8-byte
 * little-endian header length N, N bytes of JSON
 *   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *    "__metadata__": {"key": "value"}}
 * then the tensors' raw little-endian bytes, offsets relative to the end of the header.
 *
 * Reading validates as the reference implementation does: known dtype, end - begin ==
 * numel * dtype size, offsets inside the data, no two tensors overlapping and no bytes
 * left unaccounted for. Writing pads the header with spaces to a multiple of 8 bytes.
 */
#ifndef BEARD_SAFETENSORS_H
#define BEARD_SAFETENSORS_H

#include "tensordict.h"

// out must be initialised (tensordict_init); tensors are added in header order
int safetensors_load(const char *path, TensorDict *out, Err *e);
int safetensors_loads(const uint8_t *buf, size_t n, TensorDict *out, Err *e);
int safetensors_save(const char *path, const TensorDict *sd, Err *e);

#endif

/*
 * file.h: whole-file reads and atomic whole-file writes for the io and data layers.
 *
 * Readers check the size before allocating and refuse files larger than max_bytes, so a
 * corrupt path cannot make us allocate more than the caller is ready for. Writers write
 * to "<path>.tmp" and rename it over path, so a crash never leaves half a checkpoint.
 */
#ifndef BEARD_FILE_H
#define BEARD_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "../core/common.h"

// Reads all of path into a new buffer (*buf, free with free(); NUL-terminated one byte
// past *n for the convenience of text parsers). Fails on files over max_bytes.
int file_read_all(const char *path, size_t max_bytes, uint8_t **buf, size_t *n, Err *e);
// Writes n bytes to path via path.tmp and rename
int file_write_all(const char *path, const void *buf, size_t n, Err *e);

#endif

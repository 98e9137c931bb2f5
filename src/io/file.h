/*
 * file.h: how beard touches the file system. Everything that reads or writes a user's
 * files goes through here, because each of these is a place where hostile input (a
 * crafted checkpoint, a config naming "../../etc", a FIFO given as a checkpoint) once
 * did harm:
 *
 * Reading. file_open_regular opens a path only if it is a regular file, and does so
 * without blocking: a FIFO or a device given as a checkpoint or a log is refused with a
 * clear error instead of hanging beard (it opens with O_NONBLOCK, checks with fstat, then
 * clears O_NONBLOCK). file_read_all reads a whole file through it, after checking the
 * size against the caller's limit before allocating.
 *
 * Names built from data. A method, model, dataset or attack name read from a config, a
 * results.json, a log, a checkpoint or the command line must never choose where a file
 * goes. Every command that builds a file name from such a name passes it through
 * file_name_check, the one rule, which REFUSES (it does not rewrite) anything but a plain
 * name: 1 to FILE_NAME_MAX bytes of ASCII letters, digits and "._-+=,@", not starting
 * with '.' or '-', and without "..". That excludes '/', '\\', absolute paths, "..",
 * control characters (newlines included), spaces, and the characters that break a
 * Markdown table cell or HTML ('|', '`', '<', '>', '&', '[', ']', '*', '#', quotes).
 * Refusing, not rewriting, keeps two different names from landing in one file and tells
 * the user which field to fix. file_name_sanitize is the rewriting form for the rare
 * name that is not the user's to fix (it maps every other byte to '_' and appends a hash
 * of the original, so that distinct names stay distinct); file_path_join checks the last
 * component once more when it joins a folder and a name.
 *
 * Writing. Nothing beard writes may ever be seen half-written under its final name (a
 * kill -9, a full disk, an error midway). file_atomic_open creates a temporary file next
 * to the target (same folder, so the rename stays on one file system; a hidden name
 * ".<name>.<pid>.<n>.tmp" that no glob of results picks up), the caller writes to it,
 * and file_atomic_commit flushes, fsyncs, renames it over the target and fsyncs the
 * folder; file_atomic_abort (and any failed commit) removes it. A kill -9 can leave a
 * hidden temporary behind, never a partial file under the final name. file_write_all is
 * the same for a whole buffer. A symbolic link to a file stays a link (the file it
 * points to is replaced); a target that is a stream (/dev/stdout, /dev/null, a FIFO) is
 * written in place and never replaced, so `--json /dev/stdout` works.
 *
 * Up-front checks. file_check_writable / file_check_dir_writable run before any long work
 * (attacks, training) so that "--json /nonexistent/x.json" fails in a millisecond, not
 * after an hour. They probe exactly what the real write will do: create a temporary file
 * in the folder and remove it (access(2) is not enough: root passes it on read-only
 * mounts), and say why it failed (strerror).
 */
#ifndef BEARD_FILE_H
#define BEARD_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../core/common.h"

// ----------------------------------------------------------------------------
// reading

// Opens path for reading if it is a regular file (FIFOs, devices, sockets and folders are
// refused without blocking); NULL with e set otherwise. Close with fclose.
FILE *file_open_regular(const char *path, Err *e);
// The same as a file descriptor (for libraries that take one: zip_fdopen, gzdopen); -1
// on failure
int file_open_regular_fd(const char *path, Err *e);
// 0 if path names a regular file (following symbolic links), -1 with a reason otherwise
int file_check_regular(const char *path, Err *e);
// Reads all of path into a new buffer (*buf, free with free(); NUL-terminated one byte
// past *n for the convenience of text parsers). Fails on files over max_bytes and on
// anything but a regular file.
int file_read_all(const char *path, size_t max_bytes, uint8_t **buf, size_t *n, Err *e);

// ----------------------------------------------------------------------------
// names built from data

#define FILE_NAME_MAX 128
// 0 if name is a plain file-name component under the rule above; otherwise -1 and e says
// which character or rule it broke, naming it as `what` ("method name", "attack name")
int file_name_check(const char *name, const char *what, Err *e);
// Writes a name that passes file_name_check into dst (cap bytes, at least
// FILE_NAME_MAX + 1): src itself when it passes, otherwise src with each offending byte
// (and a leading '.' or '-', and the second dot of "..") replaced by '_', cut to fit, and
// "-" and 8 hex digits of a hash of src appended. Returns 1 if it changed src, 0 if not.
int file_name_sanitize(char *dst, size_t cap, const char *src);
// dst = dir + "/" + name (dir may be "" or NULL: name alone), after file_name_check(name)
// and a check that it fits in cap bytes
int file_path_join(char *dst, size_t cap, const char *dir, const char *name, const char *what, Err *e);

// ----------------------------------------------------------------------------
// writing

typedef struct {
    FILE *f;    // write here (stdio); see file_atomic_open about writers that need a path
    char *path; // the final name
    char *tmp;  // the temporary, in the same folder
} FileAtomic;

// Creates the temporary next to path and opens it as a->f ("wb"). A writer that needs a
// path instead of a FILE (libzip) may fclose(a->f), set a->f = NULL and write a->tmp
// itself; commit then fsyncs what it finds there.
int file_atomic_open(FileAtomic *a, const char *path, Err *e);
// Checks the stream for write errors, flushes, fsyncs and closes it, renames the
// temporary over path and fsyncs the folder. On any failure the temporary is removed and
// e says what failed (with strerror). a is released either way.
int file_atomic_commit(FileAtomic *a, Err *e);
// Closes and removes the temporary; safe on a zeroed, committed or aborted FileAtomic
void file_atomic_abort(FileAtomic *a);
// Writes n bytes to path atomically (file_atomic_open + fwrite + commit)
int file_write_all(const char *path, const void *buf, size_t n, Err *e);

// ----------------------------------------------------------------------------
// up-front checks

// mkdir -p dir (0 if it exists as a folder or was made; -1 with the failing component)
int file_mkdirs(const char *dir, Err *e);
// Can beard write a file at path? path must not be a folder or other non-regular file,
// and its folder must exist (or be made when make_dirs) and take a new file (probed by
// creating and removing a temporary). Leaves an existing file at path untouched.
int file_check_writable(const char *path, int make_dirs, Err *e);
// Can beard write files into folder dir? (made when make_dirs; probed the same way)
int file_check_dir_writable(const char *dir, int make_dirs, Err *e);

#endif

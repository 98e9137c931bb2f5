/*
 * file.c: see file.h.
 */
#include "file.h"

#include "../core/fault.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// ----------------------------------------------------------------------------
// reading

static const char *file_kind(mode_t m) {
    if (S_ISDIR(m)) return "a directory";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    return "not a regular file";
}

int file_open_regular_fd(const char *path, Err *e) {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return err_set(e, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int er = errno;
        close(fd);
        return err_set(e, "cannot stat %s: %s", path, strerror(er));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(e, "%s is %s, not a regular file", path, file_kind(st.st_mode));
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        int er = errno;
        close(fd);
        return err_set(e, "cannot open %s: %s", path, strerror(er));
    }
    return fd;
}

FILE *file_open_regular(const char *path, Err *e) {
    int fd = file_open_regular_fd(path, e);
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        err_set(e, "cannot open %s: %s", path, strerror(errno));
        close(fd);
    }
    return f;
}

int file_check_regular(const char *path, Err *e) {
    struct stat st;
    if (stat(path, &st) != 0) return err_set(e, "cannot open %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return err_set(e, "%s is %s, not a regular file", path, file_kind(st.st_mode));
    return 0;
}

int file_read_all(const char *path, size_t max_bytes, uint8_t **buf, size_t *n, Err *e) {
    *buf = NULL;
    *n = 0;
    FILE *f = file_open_regular(path, e);
    if (!f) return -1;
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        fclose(f);
        return err_set(e, "cannot stat %s: %s", path, strerror(errno));
    }
    if ((uint64_t)st.st_size > (uint64_t)max_bytes) {
        fclose(f);
        return err_set(e, "%s is too large (%lld bytes, at most %zu)", path, (long long)st.st_size, max_bytes);
    }
    size_t size = (size_t)st.st_size;
    uint8_t *p = malloc(size + 1);
    if (!p) {
        fclose(f);
        return err_set(e, "out of memory reading %s (%zu bytes)", path, size);
    }
    size_t got = fread(p, 1, size, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || got != size) {
        free(p);
        return err_set(e, "cannot read %s (got %zu of %zu bytes)", path, got, size);
    }
    p[size] = 0;
    *buf = p;
    *n = size;
    return 0;
}

// ----------------------------------------------------------------------------
// names built from data

static int name_char_ok(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return 1;
    return c && strchr("._-+=,@", c) != NULL;
}

// a printable rendering of byte c for messages
static const char *char_desc(unsigned char c, char *buf, size_t n) {
    if (c == '\n') snprintf(buf, n, "a newline");
    else if (c == '\t') snprintf(buf, n, "a tab");
    else if (c == ' ') snprintf(buf, n, "a space");
    else if (c < 0x20 || c == 0x7f) snprintf(buf, n, "control character 0x%02x", c);
    else if (c >= 0x80) snprintf(buf, n, "non-ASCII byte 0x%02x", c);
    else snprintf(buf, n, "'%c'", c);
    return buf;
}

// name, quoted, with unsafe bytes as \xNN and cut at 64 bytes, for messages
static const char *name_quote(const char *name, char *buf, size_t n) {
    size_t o = 0;
    for (size_t i = 0; name[i] && o + 8 < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (i == 64) {
            o += (size_t)snprintf(buf + o, n - o, "...");
            break;
        }
        if (c < 0x20 || c >= 0x7f || c == '\\') o += (size_t)snprintf(buf + o, n - o, "\\x%02x", c);
        else buf[o++] = (char)c;
    }
    buf[o] = 0;
    return buf;
}

int file_name_check(const char *name, const char *what, Err *e) {
    if (!what) what = "name";
    if (!name || !name[0]) return err_set(e, "%s is empty", what);
    char q[300], d[40];
    size_t n = strlen(name);
    for (size_t i = 0; i < n; i++) {
        if (!name_char_ok((unsigned char)name[i]))
            return err_set(e, "%s '%s' contains %s; a name that becomes a file name may use only letters, digits and ._-+=,@",
                           what, name_quote(name, q, sizeof(q)), char_desc((unsigned char)name[i], d, sizeof(d)));
    }
    if (n > FILE_NAME_MAX) return err_set(e, "%s '%s' is %zu bytes long (at most %d)", what, name_quote(name, q, sizeof(q)), n, FILE_NAME_MAX);
    if (name[0] == '.' || name[0] == '-')
        return err_set(e, "%s '%s' starts with '%c', which a name that becomes a file name may not", what, name, name[0]);
    if (strstr(name, "..")) return err_set(e, "%s '%s' contains \"..\"", what, name);
    return 0;
}

int file_name_sanitize(char *dst, size_t cap, const char *src) {
    if (cap < FILE_NAME_MAX + 1) {
        if (cap) dst[0] = 0;
        return 1;
    }
    if (file_name_check(src, NULL, NULL) == 0) {
        memcpy(dst, src, strlen(src) + 1);
        return 0;
    }
    // FNV-1a of the original keeps distinct names distinct after the rewrite
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)src; *p; p++) h = (h ^ *p) * 16777619u;
    size_t keep = FILE_NAME_MAX - 9, o = 0;
    for (size_t i = 0; src[i] && o < keep; i++) {
        unsigned char c = (unsigned char)src[i];
        int bad = !name_char_ok(c) || (o == 0 && (c == '.' || c == '-')) || (c == '.' && o > 0 && dst[o - 1] == '.');
        dst[o++] = bad ? '_' : (char)c;
    }
    if (o == 0) dst[o++] = '_';
    snprintf(dst + o, cap - o, "-%08x", h);
    return 1;
}

int file_path_join(char *dst, size_t cap, const char *dir, const char *name, const char *what, Err *e) {
    if (file_name_check(name, what, e)) return -1;
    int w;
    if (!dir || !dir[0]) w = snprintf(dst, cap, "%s", name);
    else {
        size_t dl = strlen(dir);
        w = snprintf(dst, cap, "%s%s%s", dir, dir[dl - 1] == '/' ? "" : "/", name);
    }
    if (w < 0 || (size_t)w >= cap) return err_set(e, "path too long: %s/%s", dir ? dir : "", name);
    return 0;
}

// ----------------------------------------------------------------------------
// writing

static char *dir_of(const char *path) {
    const char *s = strrchr(path, '/');
    if (!s) return xstrdup(".");
    if (s == path) return xstrdup("/");
    size_t n = (size_t)(s - path);
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = 0;
    }
    return d;
}

static void atomic_release(FileAtomic *a) {
    free(a->path);
    free(a->tmp);
    a->path = a->tmp = NULL;
    a->f = NULL;
}

// creates a fresh temporary next to path ("<dir>/.<base>.<pid>.<n>.tmp", under NAME_MAX
// whatever the base's length); returns its fd and sets *tmp (malloc'd), or -errno
static int tmp_create(const char *path, char **tmp) {
    static unsigned long seq;
    *tmp = NULL;
    const char *slash = strrchr(path, '/');
    size_t dl = slash ? (size_t)(slash - path) + 1 : 0;
    const char *base = path + dl;
    size_t bl = strlen(base);
    if (bl > 200) bl = 200;
    size_t cap = dl + bl + 64;
    char *t = malloc(cap);
    if (!t) return -ENOMEM;
    int fd = -1, er = 0;
    for (int tries = 0; tries < 100; tries++) {
        snprintf(t, cap, "%.*s.%.*s.%ld.%lu.tmp", (int)dl, path, (int)bl, base, (long)getpid(),
                 __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
        fd = open(t, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST) break;
    }
    if (fd < 0) {
        er = errno ? errno : EEXIST;
        free(t);
        return -er;
    }
    *tmp = t;
    return fd;
}

int file_atomic_open(FileAtomic *a, const char *path, Err *e) {
    memset(a, 0, sizeof(*a));
    if (!path || !path[0]) return err_set(e, "empty output path");
    size_t pl = strlen(path);
    if (path[pl - 1] == '/') return err_set(e, "cannot write %s: it names a folder", path);
    struct stat st, lst;
    int exists = stat(path, &st) == 0;
    if (exists && S_ISDIR(st.st_mode)) return err_set(e, "cannot write %s: it is a directory", path);
    if (exists && !S_ISREG(st.st_mode)) {
        // a stream (/dev/stdout, a FIFO, /dev/null): written in place, never replaced
        int fd = open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
        if (fd < 0) return err_set(e, "cannot write %s: %s", path, strerror(errno));
        a->f = fdopen(fd, "wb");
        if (!a->f) {
            close(fd);
            return err_set(e, "cannot write %s: %s", path, strerror(errno));
        }
        return 0;
    }
    // a symbolic link to a file: replace the file it points to, keep the link
    char *real = NULL;
    if (exists && lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode)) real = realpath(path, NULL);
    a->path = real ? real : xstrdup(path);
    if (!a->path) return err_set(e, "out of memory");
    int fd = tmp_create(a->path, &a->tmp);
    if (fd < 0) {
        char *dir = dir_of(a->path);
        err_set(e, "cannot write %s: cannot create a file in %s: %s", path, dir ? dir : "its folder", strerror(-fd));
        free(dir);
        atomic_release(a);
        return -1;
    }
    // an existing target keeps its permissions
    if (exists) (void)fchmod(fd, st.st_mode & 07777);
    a->f = fdopen(fd, "wb");
    if (!a->f) {
        int er = errno;
        close(fd);
        unlink(a->tmp);
        atomic_release(a);
        return err_set(e, "cannot write %s: %s", path, strerror(er));
    }
    return 0;
}

void file_atomic_abort(FileAtomic *a) {
    if (!a) return;
    if (a->f) fclose(a->f);
    if (a->tmp) unlink(a->tmp);
    atomic_release(a);
}

static int fsync_dir(const char *path) {
    char *dir = dir_of(path);
    if (!dir) return -1;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int file_atomic_commit(FileAtomic *a, Err *e) {
    if (!a->tmp && a->f) {
        // a stream target (see file_atomic_open)
        int bad = ferror(a->f);
        bad = (fclose(a->f) != 0) || bad;
        a->f = NULL;
        return bad ? err_set(e, "cannot write: %s", strerror(errno ? errno : EIO)) : 0;
    }
    if (!a->tmp) return err_set(e, "internal error: commit of a file that is not open");
    int er = 0;
    const char *what = "write";
    if (a->f) {
        if (ferror(a->f)) er = errno ? errno : EIO;
        if (!er && fflush(a->f) != 0) er = errno;
        if (!er && fsync(fileno(a->f)) != 0 && errno != EINVAL) er = errno, what = "fsync";
        if (fclose(a->f) != 0 && !er) er = errno;
        a->f = NULL;
    } else {
        // written by path (libzip): make what is there durable
        int fd = open(a->tmp, O_RDONLY | O_CLOEXEC);
        if (fd < 0) er = errno;
        else {
            if (fsync(fd) != 0 && errno != EINVAL) er = errno, what = "fsync";
            close(fd);
        }
    }
    fault_point("file-commit"); // the kill tests' worst moment: complete, not yet renamed
    if (!er && rename(a->tmp, a->path) != 0) er = errno, what = "rename the temporary over";
    if (er) {
        err_set(e, "cannot %s %s: %s", what, a->path, strerror(er));
        unlink(a->tmp);
        atomic_release(a);
        return -1;
    }
    (void)fsync_dir(a->path); // best effort: the data is already safe from a kill
    atomic_release(a);
    return 0;
}

int file_write_all(const char *path, const void *buf, size_t n, Err *e) {
    FileAtomic a;
    if (file_atomic_open(&a, path, e)) return -1;
    if (n && fwrite(buf, 1, n, a.f) != n) {
        int er = errno;
        file_atomic_abort(&a);
        return err_set(e, "cannot write %s: %s", path, strerror(er ? er : EIO));
    }
    return file_atomic_commit(&a, e);
}

// ----------------------------------------------------------------------------
// up-front checks

int file_mkdirs(const char *dir, Err *e) {
    if (!dir || !dir[0]) return 0;
    size_t n = strlen(dir);
    char *p = malloc(n + 1);
    if (!p) return err_set(e, "out of memory");
    memcpy(p, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != 0) continue;
        char c = p[i];
        p[i] = 0;
        struct stat st;
        if (stat(p, &st) == 0) {
            if (!S_ISDIR(st.st_mode)) {
                err_set(e, "cannot create folder %s: %s exists and is not a folder", dir, p);
                free(p);
                return -1;
            }
        } else if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            err_set(e, "cannot create folder %s: %s: %s", dir, p, strerror(errno));
            free(p);
            return -1;
        }
        p[i] = c;
    }
    free(p);
    return 0;
}

// creates and removes a temporary in dir, as file_atomic_open would for a file there
static int probe_dir(const char *dir, const char *for_path, Err *e) {
    char *probe = malloc(strlen(dir) + 32), *tmp;
    if (!probe) return err_set(e, "out of memory");
    sprintf(probe, "%s/.beard-write-check", dir);
    int fd = tmp_create(probe, &tmp);
    free(probe);
    if (fd < 0) {
        if (strcmp(dir, for_path) == 0) return err_set(e, "cannot write into folder %s: %s", dir, strerror(-fd));
        return err_set(e, "cannot write %s: cannot create a file in %s: %s", for_path, dir, strerror(-fd));
    }
    close(fd);
    unlink(tmp);
    free(tmp);
    return 0;
}

int file_check_dir_writable(const char *dir, int make_dirs, Err *e) {
    if (!dir || !dir[0]) dir = ".";
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno != ENOENT) return err_set(e, "cannot use folder %s: %s", dir, strerror(errno));
        if (!make_dirs) return err_set(e, "folder %s does not exist", dir);
        if (file_mkdirs(dir, e)) return -1;
    } else if (!S_ISDIR(st.st_mode)) {
        return err_set(e, "%s is not a folder", dir);
    }
    return probe_dir(dir, dir, e);
}

int file_check_writable(const char *path, int make_dirs, Err *e) {
    if (!path || !path[0]) return err_set(e, "empty output path");
    size_t pl = strlen(path);
    if (path[pl - 1] == '/') return err_set(e, "cannot write %s: it names a folder", path);
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) return err_set(e, "cannot write %s: it is a directory", path);
        if (!S_ISREG(st.st_mode)) {
            // a stream target (/dev/stdout, a FIFO): written in place; can we open it?
            if (access(path, W_OK) != 0) return err_set(e, "cannot write %s: %s", path, strerror(errno));
            return 0;
        }
    }
    char *real = NULL, *dir;
    struct stat lst;
    if (lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode)) real = realpath(path, NULL);
    dir = dir_of(real ? real : path);
    free(real);
    if (!dir) return err_set(e, "out of memory");
    int rc = 0;
    if (stat(dir, &st) != 0) {
        if (errno == ENOENT && make_dirs) rc = file_mkdirs(dir, e);
        else rc = err_set(e, "cannot write %s: folder %s: %s", path, dir, strerror(errno));
    } else if (!S_ISDIR(st.st_mode)) {
        rc = err_set(e, "cannot write %s: %s is not a folder", path, dir);
    }
    if (rc == 0) rc = probe_dir(dir, path, e);
    free(dir);
    return rc;
}

/*
 * test_file.c: src/io/file.h, the file system boundary: the file-name rule for names
 * built from data, atomic writes (commit, abort, failure, and a writer killed with
 * SIGKILL midway), the up-front writability checks, and reads that refuse FIFOs and
 * devices without blocking.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../src/io/file.h"
#include "harness.h"

static void test_name_rule(void) {
    Err e;
    const char *good[] = {"BACON", "ConvNet", "CIFAR10", "PGD_e4", "G-VBSM", "res_DM_CIFAR10_ConvNet_10ipc.pt",
                          "a+b=c,d@e", "x.json", "1"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        CHECK(file_name_check(good[i], "name", &e) == 0, "'%s' refused: %s", good[i], e.msg);
    const char *bad[] = {"",      "..",    ".",      "../x",  "a/b",   "/etc/passwd", "a\\b", "a\nb",   "a|b",
                         "a\rb",  "a\tb",  "a b",    "a`b",   "a<b",   "a>b",         "a&b",  "a[b]",   "a*b",
                         "a#b",   "a'b",   "a\"b",   ".hidden", "-rf", "a..b",        "x\x7f", "\xc3\xa9", "a:b",
                         "a$b",   "a;b",   "a%b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        e.msg[0] = 0;
        CHECK(file_name_check(bad[i], "method name", &e) != 0, "'%s' accepted", bad[i]);
        CHECK(strncmp(e.msg, "method name", 11) == 0, "message for '%s' does not name the field: %s", bad[i], e.msg);
        CHECK(!strchr(e.msg, '\n'), "message for '%s' holds a newline", bad[i]);
    }
    char longname[FILE_NAME_MAX + 2];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[FILE_NAME_MAX + 1] = 0;
    CHECK(file_name_check(longname, "x", &e) != 0, "a %d-byte name accepted", FILE_NAME_MAX + 1);
    longname[FILE_NAME_MAX] = 0;
    CHECK(file_name_check(longname, "x", &e) == 0, "a %d-byte name refused", FILE_NAME_MAX);
    // messages show the name with its unsafe bytes escaped
    file_name_check("a\nb", "model", &e);
    CHECK(strstr(e.msg, "a\\x0ab") && strstr(e.msg, "newline"), "newline not shown escaped: %s", e.msg);

    // the rewriting form: always passes the rule, changes only bad names, keeps distinct names distinct
    char a[FILE_NAME_MAX + 1], b[FILE_NAME_MAX + 1];
    CHECK(file_name_sanitize(a, sizeof(a), "BACON") == 0 && strcmp(a, "BACON") == 0, "good name rewritten to %s", a);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(file_name_sanitize(a, sizeof(a), bad[i]) == 1, "'%s' not rewritten", bad[i]);
        CHECK(file_name_check(a, "x", &e) == 0, "sanitised '%s' -> '%s' still refused: %s", bad[i], a, e.msg);
    }
    file_name_sanitize(a, sizeof(a), "a/b");
    file_name_sanitize(b, sizeof(b), "a|b");
    CHECK(strcmp(a, b) != 0, "a/b and a|b both became %s", a);
    file_name_sanitize(a, sizeof(a), "../../etc/passwd");
    CHECK(!strchr(a, '/') && !strstr(a, ".."), "../../etc/passwd became %s", a);
    longname[FILE_NAME_MAX] = 'a';
    CHECK(file_name_sanitize(a, sizeof(a), longname) == 1 && strlen(a) <= FILE_NAME_MAX, "long name not cut: %zu", strlen(a));

    char p[64];
    CHECK(file_path_join(p, sizeof(p), "out", "x.json", "name", &e) == 0 && strcmp(p, "out/x.json") == 0, "join: %s", p);
    CHECK(file_path_join(p, sizeof(p), "out/", "x.json", "name", &e) == 0 && strcmp(p, "out/x.json") == 0, "join: %s", p);
    CHECK(file_path_join(p, sizeof(p), "", "x.json", "name", &e) == 0 && strcmp(p, "x.json") == 0, "join: %s", p);
    CHECK(file_path_join(p, sizeof(p), "out", "../x.json", "name", &e) != 0, "join accepted ../x.json");
    CHECK(file_path_join(p, 8, "out", "long.json", "name", &e) != 0, "join truncated silently");
}

// the hidden temporaries file_atomic_open leaves in dir
static int count_tmp(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return -1;
    for (struct dirent *de; (de = readdir(d));)
        if (de->d_name[0] == '.' && strstr(de->d_name, ".tmp")) n++;
    closedir(d);
    return n;
}

static char *slurp(const char *path, size_t *n) {
    uint8_t *b;
    Err e;
    if (file_read_all(path, 1 << 24, &b, n, &e)) return NULL;
    return (char *)b;
}

static void test_atomic(void) {
    Err e;
    const char *dir = test_tmp("atomic");
    CHECK(file_mkdirs(dir, &e) == 0, "mkdirs %s: %s", dir, e.msg);
    char path[1100];
    snprintf(path, sizeof(path), "%s/out.txt", dir);

    CHECK(file_write_all(path, "old\n", 4, &e) == 0, "write_all: %s", e.msg);
    chmod(path, 0640);
    FileAtomic a;
    CHECK(file_atomic_open(&a, path, &e) == 0, "atomic_open: %s", e.msg);
    if (a.f) fputs("new contents\n", a.f);
    size_t n;
    char *s = slurp(path, &n);
    CHECK(s && strcmp(s, "old\n") == 0, "target changed before commit: %s", s ? s : "(unreadable)");
    free(s);
    CHECK(count_tmp(dir) == 1, "%d temporaries while writing", count_tmp(dir));
    CHECK(file_atomic_commit(&a, &e) == 0, "commit: %s", e.msg);
    s = slurp(path, &n);
    CHECK(s && strcmp(s, "new contents\n") == 0, "after commit: %s", s ? s : "(unreadable)");
    free(s);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0640, "permissions not kept: %o", st.st_mode & 0777);
    CHECK(count_tmp(dir) == 0, "%d temporaries after commit", count_tmp(dir));

    // abort leaves the old file and no temporary
    CHECK(file_atomic_open(&a, path, &e) == 0, "atomic_open: %s", e.msg);
    if (a.f) fputs("discarded", a.f);
    file_atomic_abort(&a);
    file_atomic_abort(&a); // twice is harmless
    s = slurp(path, &n);
    CHECK(s && strcmp(s, "new contents\n") == 0, "abort changed the target: %s", s ? s : "(unreadable)");
    free(s);
    CHECK(count_tmp(dir) == 0, "%d temporaries after abort", count_tmp(dir));

    // a write error (a full device) fails the commit, leaves the target alone, removes the temporary
    if (access("/dev/full", W_OK) == 0) {
        FileAtomic full = {0};
        full.f = fopen("/dev/full", "wb");
        full.path = xstrdup(path);
        char t[1100];
        snprintf(t, sizeof(t), "%s/.never.tmp", dir);
        full.tmp = xstrdup(t);
        if (full.f) fputs("x", full.f);
        CHECK(file_atomic_commit(&full, &e) != 0, "commit on a full device succeeded");
        CHECK(strstr(e.msg, "No space"), "full-device error does not say why: %s", e.msg);
        s = slurp(path, &n);
        CHECK(s && strcmp(s, "new contents\n") == 0, "failed commit changed the target");
        free(s);
    }
    // a folder that does not exist: a clear error that says why
    char nowhere[1100];
    snprintf(nowhere, sizeof(nowhere), "%s/no/such/dir/x.json", dir);
    CHECK(file_write_all(nowhere, "x", 1, &e) != 0 && strstr(e.msg, "No such file"), "write into a missing folder: %s", e.msg);

    // a writer killed with SIGKILL mid-file: the old contents stay under the final name
    pid_t pid = fork();
    if (pid == 0) {
        FileAtomic k;
        if (file_atomic_open(&k, path, NULL)) _exit(3);
        for (int i = 0; i < 1000; i++) fprintf(k.f, "partial line %d\n", i);
        fflush(k.f);
        kill(getpid(), SIGKILL);
        _exit(4);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child did not die by SIGKILL (status %d)", status);
    s = slurp(path, &n);
    CHECK(s && strcmp(s, "new contents\n") == 0, "SIGKILL left a partial file under the final name");
    free(s);
    CHECK(count_tmp(dir) == 1, "the killed writer's temporary is not hidden next to the target (%d)", count_tmp(dir));

    // a symbolic link stays a link; the file it points to gets the new contents
    char link[1100];
    snprintf(link, sizeof(link), "%s/link.txt", dir);
    CHECK(symlink("out.txt", link) == 0, "symlink: %s", strerror(errno));
    CHECK(file_write_all(link, "via link\n", 9, &e) == 0, "write via link: %s", e.msg);
    struct stat lst;
    CHECK(lstat(link, &lst) == 0 && S_ISLNK(lst.st_mode), "the link was replaced by a file");
    s = slurp(path, &n);
    CHECK(s && strcmp(s, "via link\n") == 0, "the link's target not written: %s", s ? s : "(unreadable)");
    free(s);
    CHECK(count_tmp(dir) == 1, "%d temporaries after writing through a link", count_tmp(dir));

    // a FIFO target is written in place, not replaced by a file
    char fifo[1100];
    snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
    CHECK(mkfifo(fifo, 0600) == 0, "mkfifo: %s", strerror(errno));
    pid_t rd = fork();
    if (rd == 0) {
        int fd = open(fifo, O_RDONLY);
        char buf[64];
        ssize_t k = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
        _exit(k == 5 && memcmp(buf, "hello", 5) == 0 ? 0 : 1);
    }
    alarm(10);
    CHECK(file_write_all(fifo, "hello", 5, &e) == 0, "write to a FIFO: %s", e.msg);
    alarm(0);
    waitpid(rd, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the FIFO's reader did not get the data");
    CHECK(lstat(fifo, &lst) == 0 && S_ISFIFO(lst.st_mode), "the FIFO was replaced");

    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "cleanup");
}

static void test_writable(void) {
    Err e;
    const char *dir = test_tmp("writable");
    char p[1100];
    snprintf(p, sizeof(p), "%s/a/b", dir);
    CHECK(file_check_dir_writable(p, 0, &e) != 0 && strstr(e.msg, "does not exist"), "missing folder: %s", e.msg);
    CHECK(file_check_dir_writable(p, 1, &e) == 0, "make_dirs: %s", e.msg);
    struct stat st;
    CHECK(stat(p, &st) == 0 && S_ISDIR(st.st_mode), "folder not made");
    CHECK(count_tmp(p) == 0, "probe left a file behind");
    snprintf(p, sizeof(p), "%s/a/b/x.json", dir);
    CHECK(file_check_writable(p, 0, &e) == 0, "writable file: %s", e.msg);
    CHECK(access(p, F_OK) != 0, "the check created the target");
    file_write_all(p, "keep", 4, &e);
    CHECK(file_check_writable(p, 0, &e) == 0, "existing file: %s", e.msg);
    size_t n;
    char *s = slurp(p, &n);
    CHECK(s && strcmp(s, "keep") == 0, "the check touched an existing target");
    free(s);
    snprintf(p, sizeof(p), "%s/nonexistent/x.json", dir);
    CHECK(file_check_writable(p, 0, &e) != 0 && strstr(e.msg, "No such file"), "missing folder: %s", e.msg);
    CHECK(file_check_writable(p, 1, &e) == 0, "make_dirs: %s", e.msg);
    snprintf(p, sizeof(p), "%s/a", dir);
    CHECK(file_check_writable(p, 0, &e) != 0 && strstr(e.msg, "directory"), "a folder as a file: %s", e.msg);
    snprintf(p, sizeof(p), "%s/a/b/x.json/y.json", dir);
    CHECK(file_check_writable(p, 1, &e) != 0, "a file as a folder accepted");
    CHECK(file_check_dir_writable(p, 1, &e) != 0, "a file as a folder accepted (dir)");
    // /proc takes no new files, even for root (for whom access(2) says yes to everything)
    CHECK(file_check_writable("/proc/beard-x.json", 0, &e) != 0, "/proc accepted");
    CHECK(file_check_dir_writable("/proc", 0, &e) != 0, "/proc accepted as a folder");
    // streams are written in place (checked, never replaced)
    CHECK(file_check_writable("/dev/null", 0, &e) == 0, "/dev/null refused: %s", e.msg);
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "cleanup");
}

static void test_regular(void) {
    Err e;
    const char *fifo = test_tmp("fifo");
    unlink(fifo);
    CHECK(mkfifo(fifo, 0600) == 0, "mkfifo: %s", strerror(errno));
    // none of these may block: a FIFO without a writer would hang a plain open()
    alarm(10);
    uint8_t *b;
    size_t n;
    CHECK(file_read_all(fifo, 100, &b, &n, &e) != 0 && strstr(e.msg, "FIFO"), "FIFO read: %s", e.msg);
    CHECK(file_open_regular(fifo, &e) == NULL, "FIFO opened");
    CHECK(file_open_regular_fd(fifo, &e) < 0, "FIFO opened (fd)");
    CHECK(file_check_regular(fifo, &e) != 0, "FIFO passed the check");
    CHECK(file_read_all("/dev/zero", 100, &b, &n, &e) != 0 && strstr(e.msg, "device"), "/dev/zero: %s", e.msg);
    CHECK(file_read_all("/tmp", 100, &b, &n, &e) != 0 && strstr(e.msg, "directory"), "/tmp: %s", e.msg);
    CHECK(file_read_all("/nonexistent/x", 100, &b, &n, &e) != 0 && strstr(e.msg, "No such file"), "missing: %s", e.msg);
    alarm(0);
    unlink(fifo);
    const char *f = test_tmp("regular");
    file_write_all(f, "0123456789", 10, &e);
    CHECK(file_read_all(f, 9, &b, &n, &e) != 0 && strstr(e.msg, "too large"), "size limit: %s", e.msg);
    CHECK(file_read_all(f, 10, &b, &n, &e) == 0 && n == 10 && b[10] == 0, "read: %s", e.msg);
    if (n == 10) free(b);
    FILE *fp = file_open_regular(f, &e);
    CHECK(fp && fgetc(fp) == '0', "regular open: %s", e.msg);
    if (fp) fclose(fp);
    unlink(f);
}

int main(void) {
    test_name_rule();
    test_atomic();
    test_writable();
    test_regular();
    return test_done("test_file");
}

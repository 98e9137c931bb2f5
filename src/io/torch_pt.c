/*
 * torch_pt.c: reading and writing PyTorch checkpoints (see torch_pt.h for the layouts).
 *
 * It matches torch/serialization.py of torch 1.13 (_load for the zip format,
 * _legacy_load for the old one, torch.storage._load_from_bytes for plain pickles), with
 * these differences: only the allow-listed globals of pickle.c are resolved, so saved
 * nn.Module objects ('module' persistent ids) and TorchScript archives are refused;
 * a storage referenced with two different dtypes is refused (torch reinterprets the
 * bytes); big-endian legacy files are refused.
 *
 * Every size read from a file is checked before anything is allocated: a zip record must
 * hold at least the bytes its storage claims (and a compressed one cannot claim more than
 * deflate can expand to), a legacy storage's element count must match its persistent id
 * and fit in what is left of the file.
 */
#include "torch_pt.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include "../core/hash.h"
#include "file.h"

// torch.serialization.MAGIC_NUMBER = 0x1950a86a20f9469cfc6c, as LONG1 bytes
static const uint8_t legacy_magic[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
#define LEGACY_PROTOCOL_VERSION 1001
#define KEY_MAX 256

typedef struct {
    char *key;
    PickleValue *v;
    int is_view;
} StorageEntry;

typedef struct {
    PickleDoc *doc;
    zip_t *za;          // zip format
    const char *prefix; // "<archive>/"
    StorageEntry *st;
    size_t n_st, cap_st;
    StrMap index;       // key -> position in st (a file may hold a million storages)
} TorchCtx;

static int load_buffer(PickleDoc *doc, const uint8_t *buf, size_t n, int allow_plain, PickleValue **out, Err *e);

static void ctx_free(TorchCtx *c) {
    for (size_t i = 0; i < c->n_st; i++) free(c->st[i].key);
    free(c->st);
    strmap_free(&c->index);
    c->st = NULL;
    c->n_st = c->cap_st = 0;
}

static StorageEntry *ctx_find(TorchCtx *c, const char *key) {
    int i = strmap_get(&c->index, key);
    return i >= 0 ? &c->st[i] : NULL;
}

static int ctx_add(TorchCtx *c, const char *key, PickleValue *v, int is_view, Err *e) {
    if (c->n_st >= INT32_MAX) return err_set(e, "too many storages");
    if (strmap_put(&c->index, key, (int)c->n_st, e)) return -1;
    if (c->n_st == c->cap_st) {
        size_t cap = c->cap_st ? 2 * c->cap_st : 16;
        if (pickle_doc_charge(c->doc, (cap - c->cap_st) * (sizeof(StorageEntry) + 64), e)) return -1;
        StorageEntry *p = realloc(c->st, cap * sizeof(*p));
        if (!p) return err_set(e, "out of memory");
        c->st = p;
        c->cap_st = cap;
    }
    char *k = strdup(key);
    if (!k) return err_set(e, "out of memory");
    c->st[c->n_st++] = (StorageEntry){k, v, is_view};
    return 0;
}

// a persistent id's text field (str, or bytes from Python 2) into buf
static int pid_text(const PickleValue *v, const char *what, char *buf, size_t cap, Err *e) {
    if (!v || (v->type != PICKLE_STR && v->type != PICKLE_BYTES))
        return err_set(e, "storage %s in a persistent id is a %s, not a string", what,
                       pickle_type_name(v ? v->type : PICKLE_NONE));
    if (v->len >= cap || memchr(v->s, 0, v->len)) return err_set(e, "bad storage %s in a persistent id", what);
    memcpy(buf, v->s, v->len);
    buf[v->len] = 0;
    return 0;
}

// the common part of both persistent id layouts: ('storage', type, key, location, numel, ...)
static int pid_parse(const PickleValue *pid, size_t want_len, DType *dt, char *key, size_t *numel, Err *e) {
    if (!pickle_is(pid, PICKLE_TUPLE) || pid->n < 1)
        return err_set(e, "persistent id is a %s, not a tuple", pickle_type_name(pid->type));
    if (pickle_is_str(pid->items[0], "module"))
        return err_set(e, "file holds a pickled nn.Module, which is not supported (save its state_dict instead)");
    if (!pickle_is_str(pid->items[0], "storage") || pid->n != want_len)
        return err_set(e, "unexpected persistent id (a %zu-tuple, expected ('storage', ...) of %zu)", pid->n, want_len);
    if (pickle_storage_dtype(pid->items[1], dt))
        return err_set(e, "unsupported storage type %s",
                       pid->items[1]->type == PICKLE_GLOBAL ? pid->items[1]->s : pickle_type_name(pid->items[1]->type));
    if (pid_text(pid->items[2], "key", key, KEY_MAX, e)) return -1;
    int64_t n;
    if (pickle_as_int(pid->items[4], &n, e) || n < 0) return err_set(e, "bad storage size in a persistent id");
    *numel = (size_t)n;
    return 0;
}

// Reads the first `want` bytes of record idx (of `size` bytes) into dst, then the rest to
// the end so that libzip checks the record's CRC-32 (it does so only at the end of a
// record): a record whose bytes do not match its checksum is an error, not silently
// wrong weights.
static int zip_read_record(zip_t *za, zip_uint64_t idx, const char *name, uint8_t *dst, size_t want, uint64_t size,
                           Err *e) {
    zip_file_t *zf = zip_fopen_index(za, idx, 0);
    if (!zf) return err_set(e, "cannot open record %s: %s", name, zip_strerror(za));
    size_t got = 0;
    int bad = 0;
    while (got < want) {
        zip_int64_t r = zip_fread(zf, dst + got, want - got);
        if (r <= 0) {
            bad = r < 0;
            break;
        }
        got += (size_t)r;
    }
    // the rest of the record (torch writes none), then the end, where the CRC is checked
    uint8_t scratch[4096];
    uint64_t left = got == want ? size - want : 0;
    while (!bad && got == want) {
        zip_int64_t r = zip_fread(zf, scratch, left < sizeof(scratch) && left ? (size_t)left : sizeof(scratch));
        if (r < 0) bad = 1;
        if (r <= 0) break;
        left = (uint64_t)r > left ? 0 : left - (uint64_t)r;
    }
    char why[128];
    snprintf(why, sizeof(why), "%s", bad ? zip_file_strerror(zf) : "");
    int close_rc = zip_fclose(zf);
    if (bad || close_rc != 0)
        return err_set(e, "record %s is corrupt (%s)", name, why[0] ? why : "bad checksum or data");
    if (got != want) return err_set(e, "record %s is truncated (read %zu of %zu bytes)", name, got, want);
    return 0;
}

static int zip_persistent_load(void *vctx, PickleDoc *doc, PickleValue *pid, PickleValue **out, Err *e) {
    TorchCtx *c = vctx;
    DType dt;
    char key[KEY_MAX];
    size_t numel, bytes;
    if (pid_parse(pid, 5, &dt, key, &numel, e)) return -1;
    StorageEntry *se = ctx_find(c, key);
    if (se) {
        if (se->v->storage->dtype != dt || se->v->storage->numel != numel)
            return err_set(e, "storage '%s' is used with two different dtypes or sizes", key);
        *out = se->v;
        return 0;
    }
    if (!size_mul(numel, dtype_size(dt), &bytes)) return err_set(e, "storage '%s' is too large", key);
    char name[KEY_MAX + 600];
    snprintf(name, sizeof(name), "%sdata/%s", c->prefix, key);
    zip_int64_t idx = zip_name_locate(c->za, name, ZIP_FL_ENC_RAW);
    zip_stat_t st;
    if (idx < 0 || zip_stat_index(c->za, (zip_uint64_t)idx, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE))
        return err_set(e, "archive has no record %s", name);
    if (st.size < bytes)
        return err_set(e, "record %s has %llu bytes but its storage needs %zu", name, (unsigned long long)st.size, bytes);
    if ((st.valid & ZIP_STAT_COMP_SIZE) && st.size > st.comp_size &&
        (st.comp_method == ZIP_CM_STORE || st.size / 1100 > st.comp_size + 64))
        return err_set(e, "record %s claims more bytes than its compressed size allows", name);
    PickleValue *v = pickle_new_storage(doc, dt, key, numel, e);
    if (!v) return -1;
    if (pickle_doc_work(doc, st.size / 64, e) ||
        zip_read_record(c->za, (zip_uint64_t)idx, name, v->storage->data, bytes, st.size, e))
        return -1;
    v->storage->loaded = 1;
    if (ctx_add(c, key, v, 0, e)) return -1;
    *out = v;
    return 0;
}

static int legacy_persistent_load(void *vctx, PickleDoc *doc, PickleValue *pid, PickleValue **out, Err *e) {
    TorchCtx *c = vctx;
    DType dt;
    char key[KEY_MAX], view_key[KEY_MAX];
    size_t numel;
    if (pid_parse(pid, 6, &dt, key, &numel, e)) return -1;
    StorageEntry *se = ctx_find(c, key);
    PickleValue *root;
    if (se) {
        if (se->is_view || se->v->storage->dtype != dt || se->v->storage->numel != numel)
            return err_set(e, "storage '%s' is used with two different dtypes or sizes", key);
        root = se->v;
    } else {
        if (!(root = pickle_new_storage(doc, dt, key, numel, e)) || ctx_add(c, key, root, 0, e)) return -1;
    }
    const PickleValue *vm = pid->items[5];
    if (pickle_is(vm, PICKLE_NONE)) {
        *out = root;
        return 0;
    }
    // (view_key, offset, view_size): a storage view from torch < 0.4
    int64_t off, vsize;
    if (!pickle_is(vm, PICKLE_TUPLE) || vm->n != 3 || pid_text(vm->items[0], "view key", view_key, KEY_MAX, e) ||
        pickle_as_int(vm->items[1], &off, e) || pickle_as_int(vm->items[2], &vsize, e) || off < 0 || vsize < 0)
        return err_set(e, "bad storage view in a persistent id");
    se = ctx_find(c, view_key);
    if (se) {
        if (!se->is_view || se->v->storage->base != root) return err_set(e, "storage view '%s' is inconsistent", view_key);
        *out = se->v;
        return 0;
    }
    PickleValue *v = pickle_new_storage_view(doc, root, (size_t)off, (size_t)vsize, e);
    if (!v || ctx_add(c, view_key, v, 1, e)) return -1;
    *out = v;
    return 0;
}

static int hook_load_from_bytes(void *vctx, PickleDoc *doc, const uint8_t *b, size_t n, PickleValue **out, Err *e) {
    (void)vctx;
    if (load_buffer(doc, b, n, 0, out, e)) return err_wrap(e, "tensor blob in pickle");
    return 0;
}

// ----------------------------------------------------------------------------
// the zip format

// a whole record into a new buffer of *n bytes, drawn from the document's budget (the
// caller gives it back with pickle_doc_refund when it frees the buffer)
static int zip_read_entry(PickleDoc *doc, zip_t *za, zip_uint64_t idx, const char *name, size_t max, uint8_t **buf,
                          size_t *n, Err *e) {
    zip_stat_t st;
    *buf = NULL;
    if (zip_stat_index(za, idx, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE)) return err_set(e, "cannot stat %s", name);
    if (st.size > max) return err_set(e, "%s is too large (%llu bytes)", name, (unsigned long long)st.size);
    if ((st.valid & ZIP_STAT_COMP_SIZE) && st.size > st.comp_size &&
        (st.comp_method == ZIP_CM_STORE || st.size / 1100 > st.comp_size + 64))
        return err_set(e, "%s claims more bytes than its compressed size allows", name);
    size_t size = (size_t)st.size;
    if (pickle_doc_charge(doc, size + 1, e)) return -1;
    uint8_t *p = malloc(size + 1);
    if (!p) return err_set(e, "out of memory reading %s", name);
    if (zip_read_record(za, idx, name, p, size, st.size, e)) {
        free(p);
        return -1;
    }
    *buf = p;
    *n = size;
    return 0;
}

static int load_zip(PickleDoc *doc, zip_t *za, PickleValue **out, Err *e) {
    zip_int64_t count = zip_get_num_entries(za, 0);
    zip_int64_t found = -1;
    const char *pkl_name = NULL;
    for (zip_int64_t i = 0; i < count; i++) {
        const char *nm = zip_get_name(za, (zip_uint64_t)i, ZIP_FL_ENC_RAW);
        if (!nm) continue;
        size_t len = strlen(nm);
        const char *slash = strchr(nm, '/');
        int top = !strcmp(nm, "data.pkl") ||
                  (len > 9 && !strcmp(nm + len - 9, "/data.pkl") && slash == nm + len - 9);
        if (top) {
            found = i;
            pkl_name = nm;
            break;
        }
    }
    if (found < 0) return err_set(e, "zip archive has no data.pkl (not a torch.save file; TorchScript is not supported)");
    size_t plen = strlen(pkl_name) - strlen("data.pkl");
    if (plen > 512) return err_set(e, "archive folder name is too long");
    char prefix[520];
    memcpy(prefix, pkl_name, plen);
    prefix[plen] = 0;
    uint8_t *pkl;
    size_t n = 0;
    if (zip_read_entry(doc, za, (zip_uint64_t)found, "data.pkl", (size_t)1 << 30, &pkl, &n, e)) return -1;
    TorchCtx c = {.doc = doc, .za = za, .prefix = prefix};
    PickleHooks h = {.persistent_load = zip_persistent_load, .load_from_bytes = hook_load_from_bytes, .ctx = &c};
    int rc = pickle_loads_doc(doc, pkl, n, NULL, &h, out, e);
    free(pkl);
    pickle_doc_refund(doc, n + 1);
    ctx_free(&c);
    return rc;
}

static int load_zip_buffer(PickleDoc *doc, const uint8_t *buf, size_t n, PickleValue **out, Err *e) {
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(buf, n, 0, &ze);
    if (!src) {
        zip_error_fini(&ze);
        return err_set(e, "out of memory");
    }
    zip_t *za = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze);
    if (!za) {
        err_set(e, "not a readable zip archive: %s", zip_error_strerror(&ze));
        zip_source_free(src);
        zip_error_fini(&ze);
        return -1;
    }
    zip_error_fini(&ze);
    int rc = load_zip(doc, za, out, e);
    zip_discard(za);
    return rc;
}

// ----------------------------------------------------------------------------
// the legacy format

static int is_legacy(PickleDoc *doc, const uint8_t *buf, size_t n, size_t *used) {
    PickleValue *v;
    // the magic-number pickle is ~15 bytes; never parse further than that to decide
    if (pickle_loads_doc(doc, buf, n < 64 ? n : 64, used, NULL, &v, NULL)) return 0;
    return pickle_is(v, PICKLE_BIGINT) && v->len == sizeof(legacy_magic) && !memcmp(v->s, legacy_magic, v->len);
}

static int load_legacy(PickleDoc *doc, const uint8_t *buf, size_t n, size_t pos, PickleValue **out, Err *e) {
    size_t used;
    PickleValue *v, *sys, *result, *keys;
    if (pickle_loads_doc(doc, buf + pos, n - pos, &used, NULL, &v, e)) return err_wrap(e, "legacy protocol version");
    pos += used;
    if (!pickle_is(v, PICKLE_INT) || v->i != LEGACY_PROTOCOL_VERSION)
        return err_set(e, "unsupported legacy torch.save protocol (expected %d)", LEGACY_PROTOCOL_VERSION);
    if (pickle_loads_doc(doc, buf + pos, n - pos, &used, NULL, &sys, e)) return err_wrap(e, "legacy sys_info");
    pos += used;
    PickleValue *le = pickle_dict_get(sys, "little_endian");
    if (le && !(pickle_is(le, PICKLE_BOOL) && le->i)) return err_set(e, "big-endian legacy checkpoints are not supported");
    TorchCtx c = {.doc = doc};
    PickleHooks h = {.persistent_load = legacy_persistent_load, .load_from_bytes = hook_load_from_bytes, .ctx = &c};
    int rc = -1;
    if (pickle_loads_doc(doc, buf + pos, n - pos, &used, &h, &result, e)) goto done;
    pos += used;
    if (pickle_loads_doc(doc, buf + pos, n - pos, &used, NULL, &keys, e)) {
        err_wrap(e, "legacy storage keys");
        goto done;
    }
    pos += used;
    if (!pickle_is(keys, PICKLE_LIST)) {
        err_set(e, "legacy storage key list is a %s", pickle_type_name(keys->type));
        goto done;
    }
    for (size_t k = 0; k < keys->n; k++) {
        char key[KEY_MAX];
        if (pid_text(keys->items[k], "key", key, sizeof(key), e)) goto done;
        StorageEntry *se = ctx_find(&c, key);
        if (!se || se->is_view) {
            err_set(e, "legacy storage key '%s' names no storage", key);
            goto done;
        }
        PickleStorage *st = se->v->storage;
        if (st->loaded) {
            err_set(e, "legacy storage '%s' listed twice", key);
            goto done;
        }
        if (n - pos < 8) {
            err_set(e, "legacy file truncated before storage '%s'", key);
            goto done;
        }
        uint64_t count = 0;
        for (int b = 7; b >= 0; b--) count = (count << 8) | buf[pos + (size_t)b];
        pos += 8;
        if (count != st->numel) {
            err_set(e, "legacy storage '%s' has %llu elements, expected %zu", key, (unsigned long long)count, st->numel);
            goto done;
        }
        size_t bytes = st->numel * dtype_size(st->dtype); // fits: the storage was allocated
        if (n - pos < bytes) {
            err_set(e, "legacy file truncated inside storage '%s' (%zu of %zu bytes)", key, n - pos, bytes);
            goto done;
        }
        if (bytes) memcpy(st->data, buf + pos, bytes);
        pos += bytes;
        st->loaded = 1;
    }
    *out = result;
    rc = 0;
done:
    ctx_free(&c);
    return rc;
}

static int load_buffer(PickleDoc *doc, const uint8_t *buf, size_t n, int allow_plain, PickleValue **out, Err *e) {
    *out = NULL;
    if (n == 0) return err_set(e, "empty (0 bytes)");
    if (n >= 4 && !memcmp(buf, "PK\x03\x04", 4)) return load_zip_buffer(doc, buf, n, out, e);
    size_t used;
    if (is_legacy(doc, buf, n, &used)) return load_legacy(doc, buf, n, used, out, e);
    if (!allow_plain) return err_set(e, "not a torch.save file (neither zip nor legacy format)");
    PickleHooks h = {.load_from_bytes = hook_load_from_bytes};
    if (pickle_loads_doc(doc, buf, n, NULL, &h, out, e) == 0) return 0;
    // protocol 2+ pickles start with PROTO; anything else that fails is likely not a pickle
    if (n == 0 || buf[0] != 0x80) return err_wrap(e, "not a torch.save file or a pickle");
    return -1;
}

int torch_loads(const uint8_t *buf, size_t n, PickleValue **out, Err *e) {
    *out = NULL;
    PickleDoc *doc = pickle_doc_new(pickle_budget_for(n));
    if (!doc) return err_set(e, "out of memory");
    PickleValue *root;
    if (load_buffer(doc, buf, n, 1, &root, e) || pickle_doc_finish(doc, root, e)) {
        pickle_doc_free(doc);
        return -1;
    }
    *out = root;
    return 0;
}

int torch_load(const char *path, PickleValue **out, Err *e) {
    *out = NULL;
    // regular files only, checked before anything blocks (a FIFO would hang a plain open)
    int fd = file_open_regular_fd(path, e);
    if (fd < 0) return -1;
    uint8_t head[4] = {0};
    ssize_t got = pread(fd, head, 4, 0);
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return err_set(e, "cannot stat %s", path);
    }
    if (sb.st_size == 0) {
        close(fd);
        return err_set(e, "%s is empty (0 bytes)", path);
    }
    if (got < 4 || memcmp(head, "PK\x03\x04", 4)) {
        close(fd);
        uint8_t *buf;
        size_t n;
        if (file_read_all(path, (size_t)1 << 36, &buf, &n, e)) return -1;
        int rc = torch_loads(buf, n, out, e);
        free(buf);
        return rc ? err_wrap(e, "%s", path) : 0;
    }
    int zerr = 0;
    zip_t *za = zip_fdopen(fd, ZIP_CHECKCONS, &zerr); // takes fd on success
    if (!za) {
        close(fd);
        zip_error_t ze;
        zip_error_init_with_code(&ze, zerr);
        err_set(e, "%s: not a readable zip archive: %s", path, zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return -1;
    }
    PickleDoc *doc = pickle_doc_new(pickle_budget_for((size_t)sb.st_size));
    PickleValue *root = NULL;
    int rc = doc ? load_zip(doc, za, &root, e) : err_set(e, "out of memory");
    zip_discard(za);
    if (rc == 0) rc = pickle_doc_finish(doc, root, e);
    if (rc) {
        pickle_doc_free(doc);
        return err_wrap(e, "%s", path);
    }
    *out = root;
    return 0;
}

// ----------------------------------------------------------------------------
// state_dicts

#define STATE_DICT_NAME_MAX 4096

typedef struct {
    TensorDict *out;
    PickleDoc *doc;
    PtrSet seen; // nested dicts already flattened
    Err *e;
} Flatten;

// Each nested dict is entered once: a dict reached under two names (a DAG, which no
// torch.save of a module writes) is refused, so that a small file cannot make the
// flattening visit a shared subtree exponentially often. Tensors may be shared freely
// (tied weights): every entry borrows the tensor's bytes from the document.
static int flatten(Flatten *fl, const PickleValue *d, const char *prefix, int depth) {
    if (depth > PICKLE_MAX_DEPTH) return err_set(fl->e, "state_dict nests too deeply");
    int seen = ptrset_add(&fl->seen, d);
    if (seen < 0) return err_set(fl->e, "out of memory");
    if (seen)
        return err_set(fl->e, "state_dict reaches the nested dict '%.200s' a second time (one dict under two names; a crafted file?)",
                       prefix);
    size_t plen = strlen(prefix);
    for (size_t k = 0; k < d->n; k++) {
        const PickleValue *key = d->items[2 * k], *v = d->items[2 * k + 1];
        if (pickle_doc_work(fl->doc, 1, fl->e)) return -1;
        if (v->type != PICKLE_TENSOR && v->type != PICKLE_DICT) continue;
        if (key->type != PICKLE_STR && key->type != PICKLE_BYTES) continue;
        if (key->len > STATE_DICT_NAME_MAX - 2 - plen)
            return err_set(fl->e, "state_dict entry name '%.60s...' is longer than %d bytes", prefix, STATE_DICT_NAME_MAX);
        char name[STATE_DICT_NAME_MAX];
        memcpy(name, prefix, plen);
        memcpy(name + plen, key->s, key->len);
        name[plen + key->len] = 0;
        if (memchr(key->s, 0, key->len))
            return err_set(fl->e, "state_dict entry name '%s...' holds a NUL byte", name);
        if (v->type == PICKLE_DICT) {
            strcat(name, ".");
            if (flatten(fl, v, name, depth + 1)) return -1;
            continue;
        }
        const char *nm = name;
        while (!strncmp(nm, "module.", 7)) nm += 7; // nn.DataParallel
        if (!v->tensor) return err_set(fl->e, "state_dict entry '%s' is an unresolved tensor", nm);
        // the entry's name and index slot count against the file's budget
        if (pickle_doc_charge(fl->doc, strlen(nm) + 1 + sizeof(NamedTensor) + 4 * sizeof(void *), fl->e) ||
            tensordict_add_borrowed(fl->out, nm, v->tensor, fl->e))
            return -1;
    }
    return 0;
}

int torch_state_dict_from(const PickleValue *root, TensorDict *out, Err *e) {
    if (!pickle_is(root, PICKLE_DICT))
        return err_set(e, "file holds a %s, not a state_dict", pickle_type_name(root ? root->type : PICKLE_NONE));
    static const char *wrappers[] = {"state_dict", "model_state_dict", "model", "net"};
    const PickleValue *sd = root;
    for (size_t k = 0; k < sizeof(wrappers) / sizeof(wrappers[0]); k++) {
        const PickleValue *v = pickle_dict_get(root, wrappers[k]);
        if (pickle_is(v, PICKLE_DICT)) {
            sd = v;
            break;
        }
    }
    Flatten fl = {.out = out, .doc = root->doc, .e = e};
    int rc = flatten(&fl, sd, "", 0);
    ptrset_free(&fl.seen);
    if (rc) return -1;
    if (out->n == 0) return err_set(e, "no tensors found (not a state_dict)");
    return 0;
}

static void free_root(void *root) { pickle_free(root); }

int torch_load_state_dict(const char *path, TensorDict *out, Err *e) {
    PickleValue *root;
    if (torch_load(path, &root, e)) return -1;
    int rc = torch_state_dict_from(root, out, e);
    // out's entries borrow the file's tensors: it keeps the document (freed with out)
    if (tensordict_keep(out, root, free_root, rc ? NULL : e) && rc == 0) rc = -1;
    return rc ? err_wrap(e, "%s", path) : 0;
}

// ----------------------------------------------------------------------------
// writing: a protocol 2 pickle as torch.save emits it, then a zip with stored records

typedef struct {
    uint8_t *p;
    size_t n, cap;
    int oom;
} Buf;

static void put(Buf *b, const void *s, size_t k) {
    if (b->oom) return;
    if (b->n + k > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + k) cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, k);
    b->n += k;
}

static void put_op(Buf *b, uint8_t op) { put(b, &op, 1); }
static void put_str(Buf *b, const char *s) { put(b, s, strlen(s)); }

static void put_unicode(Buf *b, const char *s) {
    size_t len = strlen(s);
    uint8_t h[5] = {'X', (uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16), (uint8_t)(len >> 24)};
    put(b, h, 5);
    put(b, s, len);
}

static void put_int(Buf *b, int64_t v) {
    if (v >= 0 && v < 256) {
        uint8_t h[2] = {'K', (uint8_t)v};
        put(b, h, 2);
    } else if (v >= 0 && v < 65536) {
        uint8_t h[3] = {'M', (uint8_t)v, (uint8_t)(v >> 8)};
        put(b, h, 3);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
        uint32_t u = (uint32_t)(int32_t)v;
        uint8_t h[5] = {'J', (uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
        put(b, h, 5);
    } else {
        uint64_t u = (uint64_t)v;
        uint8_t h[10] = {0x8a, 8};
        for (int k = 0; k < 8; k++) h[2 + k] = (uint8_t)(u >> (8 * k));
        put(b, h, 10);
    }
}

static void put_int_tuple(Buf *b, int n, const int64_t *v) {
    if (n == 0) {
        put_op(b, ')');
        return;
    }
    put_op(b, '(');
    for (int k = 0; k < n; k++) put_int(b, v[k]);
    put_op(b, 't');
}

static const char *storage_name(DType t) {
    static const char *names[DTYPE_COUNT] = {
        [DTYPE_F32] = "FloatStorage", [DTYPE_F64] = "DoubleStorage", [DTYPE_F16] = "HalfStorage",
        [DTYPE_BF16] = "BFloat16Storage", [DTYPE_I64] = "LongStorage", [DTYPE_I32] = "IntStorage",
        [DTYPE_I16] = "ShortStorage", [DTYPE_I8] = "CharStorage", [DTYPE_U8] = "ByteStorage",
        [DTYPE_BOOL] = "BoolStorage",
    };
    return (unsigned)t < DTYPE_COUNT ? names[t] : NULL;
}

// ----------------------------------------------------------------------------
// object trees

typedef enum { TO_NONE, TO_BOOL, TO_INT, TO_FLOAT, TO_STR, TO_TENSOR, TO_LIST, TO_TUPLE, TO_DICT, TO_ODICT } TObjKind;

struct TorchObj {
    TObjKind kind;
    int64_t i;
    double f;
    char *s;          // STR; dict keys live in keys[]
    const Tensor *t;  // TENSOR (borrowed)
    int n, cap;
    TorchObj **items; // LIST, TUPLE, DICT values
    char **keys;      // DICT
};

static TorchObj *tobj_new(TObjKind k) {
    TorchObj *o = calloc(1, sizeof(*o));
    if (o) o->kind = k;
    return o;
}

TorchObj *tobj_none(void) { return tobj_new(TO_NONE); }
TorchObj *tobj_bool(int v) {
    TorchObj *o = tobj_new(TO_BOOL);
    if (o) o->i = v != 0;
    return o;
}
TorchObj *tobj_int(int64_t v) {
    TorchObj *o = tobj_new(TO_INT);
    if (o) o->i = v;
    return o;
}
TorchObj *tobj_float(double v) {
    TorchObj *o = tobj_new(TO_FLOAT);
    if (o) o->f = v;
    return o;
}
TorchObj *tobj_str(const char *s) {
    TorchObj *o = tobj_new(TO_STR);
    if (o && !(o->s = strdup(s ? s : ""))) {
        free(o);
        return NULL;
    }
    return o;
}
TorchObj *tobj_tensor(const Tensor *t) {
    if (!t) return NULL;
    TorchObj *o = tobj_new(TO_TENSOR);
    if (o) o->t = t;
    return o;
}
TorchObj *tobj_list(void) { return tobj_new(TO_LIST); }
TorchObj *tobj_tuple(void) { return tobj_new(TO_TUPLE); }
TorchObj *tobj_dict(void) { return tobj_new(TO_DICT); }

void tobj_free(TorchObj *o) {
    if (!o) return;
    for (int k = 0; k < o->n; k++) {
        tobj_free(o->items[k]);
        if (o->keys) free(o->keys[k]);
    }
    free(o->items);
    free(o->keys);
    free(o->s);
    free(o);
}

static int tobj_push(TorchObj *o, char *key, TorchObj *v) {
    if (o->n == o->cap) {
        int cap = o->cap ? 2 * o->cap : 8;
        TorchObj **it = realloc(o->items, sizeof(*it) * (size_t)cap);
        if (!it) return -1;
        o->items = it;
        if (o->kind == TO_DICT || o->kind == TO_ODICT) {
            char **ks = realloc(o->keys, sizeof(*ks) * (size_t)cap);
            if (!ks) return -1;
            o->keys = ks;
        }
        o->cap = cap;
    }
    if (o->keys) o->keys[o->n] = key;
    o->items[o->n++] = v;
    return 0;
}

int tobj_append(TorchObj *seq, TorchObj *item) {
    if (!seq || !item || (seq->kind != TO_LIST && seq->kind != TO_TUPLE) || tobj_push(seq, NULL, item)) {
        tobj_free(item);
        return -1;
    }
    return 0;
}

int tobj_set(TorchObj *dict, const char *key, TorchObj *v) {
    char *k = key ? strdup(key) : NULL;
    if (!dict || !v || !k || (dict->kind != TO_DICT && dict->kind != TO_ODICT) || tobj_push(dict, k, v)) {
        free(k);
        tobj_free(v);
        return -1;
    }
    return 0;
}

typedef struct {
    Buf *b;
    int legacy_storages; // pickle.dump: storages as _load_from_bytes blobs; else persistent ids
    const Tensor **tensors; // zip: the storages in key order
    int n_tensors, cap_tensors;
    Err *e;
} Pickler;

static void put_float(Buf *b, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    uint8_t h[9] = {'G'};
    for (int k = 0; k < 8; k++) h[1 + k] = (uint8_t)(u >> (8 * (7 - k))); // big-endian
    put(b, h, 9);
}

static void put_bytes(Buf *b, const void *p, size_t n) {
    uint32_t len = (uint32_t)n;
    uint8_t h[5] = {'B', (uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16), (uint8_t)(len >> 24)};
    put(b, h, 5);
    put(b, p, n);
}

static void tensor_strides(const Tensor *t, int64_t *stride) {
    int64_t acc = 1;
    for (int d = t->ndim - 1; d >= 0; d--) { // torch's contiguous strides
        stride[d] = acc;
        acc *= t->shape[d] > 1 ? t->shape[d] : 1;
    }
}

// torch.save(storage, f, _use_new_zipfile_serialization=False) of t's storage: the magic
// number, the protocol version, sys_info, the storage as a persistent id, the key list,
// then the element count and the raw bytes
static int legacy_storage_bytes(const Tensor *t, const char *sn, Buf *out) {
    put(out, "\x80\x02\x8a\x0a", 4);
    put(out, legacy_magic, sizeof(legacy_magic));
    put_op(out, '.');
    put(out, "\x80\x02M\xe9\x03.", 6);
    put(out, "\x80\x02}(", 4);
    put_unicode(out, "protocol_version");
    put_int(out, LEGACY_PROTOCOL_VERSION);
    put_unicode(out, "little_endian");
    put_op(out, 0x88);
    put_unicode(out, "type_sizes");
    put(out, "}(", 2);
    put_unicode(out, "short");
    put_int(out, 2);
    put_unicode(out, "int");
    put_int(out, 4);
    put_unicode(out, "long");
    put_int(out, 4);
    put(out, "uu.", 3);
    put(out, "\x80\x02(", 3);
    put_unicode(out, "storage");
    put_str(out, "ctorch\n");
    put_str(out, sn);
    put_op(out, '\n');
    put_unicode(out, "0");
    put_unicode(out, "cpu");
    put_int(out, (int64_t)t->numel);
    put_op(out, 'N');
    put(out, "tQ.", 3);
    put(out, "\x80\x02]", 3);
    put_unicode(out, "0");
    put(out, "a.", 2);
    uint64_t cnt = t->numel;
    uint8_t c8[8];
    for (int k = 0; k < 8; k++) c8[k] = (uint8_t)(cnt >> (8 * k));
    put(out, c8, 8);
    if (t->numel) put(out, t->data, tensor_nbytes(t));
    return out->oom ? -1 : 0;
}

static int pickle_obj(Pickler *pk, const TorchObj *o, int depth) {
    Buf *b = pk->b;
    if (depth > 64) return err_set(pk->e, "object nests too deeply");
    switch (o->kind) {
    case TO_NONE: put_op(b, 'N'); break;
    case TO_BOOL: put_op(b, o->i ? 0x88 : 0x89); break;
    case TO_INT: put_int(b, o->i); break;
    case TO_FLOAT: put_float(b, o->f); break;
    case TO_STR: put_unicode(b, o->s); break;
    case TO_TENSOR: {
        const Tensor *t = o->t;
        const char *sn = storage_name(t->dtype);
        if (!sn) return err_set(pk->e, "a tensor has an unknown dtype");
        int64_t stride[TENSOR_MAX_DIM];
        tensor_strides(t, stride);
        put_str(b, "ctorch._utils\n_rebuild_tensor_v2\n(");
        if (pk->legacy_storages) {
            Buf blob = {0};
            if (legacy_storage_bytes(t, sn, &blob) || blob.n > UINT32_MAX) {
                free(blob.p);
                return err_set(pk->e, "out of memory (or a tensor over 4 GB)");
            }
            put_str(b, "ctorch.storage\n_load_from_bytes\n(");
            put_bytes(b, blob.p, blob.n);
            put_str(b, "tR");
            free(blob.p);
        } else {
            if (pk->n_tensors == pk->cap_tensors) {
                int cap = pk->cap_tensors ? 2 * pk->cap_tensors : 16;
                const Tensor **tt = realloc(pk->tensors, sizeof(*tt) * (size_t)cap);
                if (!tt) return err_set(pk->e, "out of memory");
                pk->tensors = tt, pk->cap_tensors = cap;
            }
            char key[32];
            snprintf(key, sizeof(key), "%d", pk->n_tensors);
            pk->tensors[pk->n_tensors++] = t;
            put_op(b, '(');
            put_unicode(b, "storage");
            put_str(b, "ctorch\n");
            put_str(b, sn);
            put_op(b, '\n');
            put_unicode(b, key);
            put_unicode(b, "cpu");
            put_int(b, (int64_t)t->numel);
            put_str(b, "tQ");
        }
        put_int(b, 0);
        put_int_tuple(b, t->ndim, t->shape);
        put_int_tuple(b, t->ndim, stride);
        put_op(b, 0x89); // requires_grad=False
        put_str(b, "ccollections\nOrderedDict\n)R"); // backward_hooks
        put_str(b, "tR");
        break;
    }
    case TO_LIST:
    case TO_TUPLE:
        if (o->kind == TO_LIST) put_op(b, ']');
        if (o->n || o->kind == TO_TUPLE) put_op(b, '(');
        for (int k = 0; k < o->n; k++)
            if (pickle_obj(pk, o->items[k], depth + 1)) return -1;
        if (o->kind == TO_LIST && o->n) put_op(b, 'e');
        if (o->kind == TO_TUPLE) put_op(b, 't');
        break;
    case TO_DICT:
    case TO_ODICT:
        if (o->kind == TO_DICT) put_op(b, '}');
        else put_str(b, "ccollections\nOrderedDict\n)R");
        if (o->n) put_op(b, '(');
        for (int k = 0; k < o->n; k++) {
            put_unicode(b, o->keys[k]);
            if (pickle_obj(pk, o->items[k], depth + 1)) return -1;
        }
        if (o->n) put_op(b, 'u');
        break;
    }
    return b->oom ? err_set(pk->e, "out of memory") : 0;
}

static int archive_add(zip_t *za, const char *name, const void *data, size_t n, Err *e) {
    zip_source_t *src = zip_source_buffer(za, data, n, 0);
    if (!src) return err_set(e, "cannot add %s: %s", name, zip_strerror(za));
    zip_int64_t idx = zip_file_add(za, name, src, ZIP_FL_ENC_UTF_8 | ZIP_FL_OVERWRITE);
    if (idx < 0) {
        zip_source_free(src);
        return err_set(e, "cannot add %s: %s", name, zip_strerror(za));
    }
    if (zip_set_file_compression(za, (zip_uint64_t)idx, ZIP_CM_STORE, 0) != 0)
        return err_set(e, "cannot store %s uncompressed: %s", name, zip_strerror(za));
    return 0;
}

int torch_save_obj(const char *path, const TorchObj *obj, Err *e) {
    if (!obj) return err_set(e, "saving %s: out of memory building the object", path);
    Buf b = {0};
    Pickler pk = {.b = &b, .e = e};
    put(&b, "\x80\x02", 2);
    int rc = -1;
    zip_t *za = NULL;
    FileAtomic fa = {0};
    if (pickle_obj(&pk, obj, 0)) goto out;
    put_op(&b, '.');
    if (b.oom) {
        err_set(e, "out of memory");
        goto out;
    }
    // libzip writes by path: the atomic writer's temporary, committed when complete
    if (file_atomic_open(&fa, path, e)) goto out;
    fclose(fa.f);
    fa.f = NULL;
    int zerr = 0;
    za = zip_open(fa.tmp, ZIP_CREATE | ZIP_TRUNCATE, &zerr);
    if (!za) {
        err_set(e, "cannot create %s", fa.tmp);
        goto out;
    }
    if (archive_add(za, "archive/data.pkl", b.p, b.n, e)) goto out;
    for (int i = 0; i < pk.n_tensors; i++) {
        char name[64];
        snprintf(name, sizeof(name), "archive/data/%d", i);
        const Tensor *t = pk.tensors[i];
        if (archive_add(za, name, t->numel ? t->data : "", tensor_nbytes(t), e)) goto out;
    }
    if (archive_add(za, "archive/version", "3\n", 2, e) || archive_add(za, "archive/byteorder", "little", 6, e)) goto out;
    if (zip_close(za) != 0) {
        err_set(e, "cannot write %s: %s", fa.tmp, zip_strerror(za));
        goto out;
    }
    za = NULL;
    rc = file_atomic_commit(&fa, e);
out:
    if (za) zip_discard(za);
    file_atomic_abort(&fa);
    free(b.p);
    free(pk.tensors);
    return rc ? err_wrap(e, "saving %s", path) : 0;
}

int pickle_dump_obj(const char *path, const TorchObj *obj, Err *e) {
    if (!obj) return err_set(e, "saving %s: out of memory building the object", path);
    Buf b = {0};
    Pickler pk = {.b = &b, .legacy_storages = 1, .e = e};
    put(&b, "\x80\x03", 2);
    int rc = pickle_obj(&pk, obj, 0);
    put_op(&b, '.');
    if (!rc && b.oom) rc = err_set(e, "out of memory");
    if (!rc) rc = file_write_all(path, b.p, b.n, e);
    free(b.p);
    return rc ? err_wrap(e, "saving %s", path) : 0;
}

int torch_save_state_dict(const char *path, const TensorDict *sd, Err *e) {
    TorchObj *d = tobj_new(TO_ODICT);
    for (int i = 0; d && i < sd->n; i++)
        if (tobj_set(d, sd->items[i].name, tobj_tensor(&sd->items[i].t))) {
            tobj_free(d);
            return err_set(e, "saving %s: out of memory", path);
        }
    int rc = torch_save_obj(path, d, e);
    tobj_free(d);
    return rc;
}

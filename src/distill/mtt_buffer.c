/*
 * mtt_buffer.c: MTT's expert trajectories: training (stage 2's train_model with a
 * snapshot per epoch), the replay_buffer_{n}.pt files, buffer_info.json, and reading
 * both back with their checks (see mtt_buffer.h).
 */
#include "mtt_buffer.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../io/file.h"
#include "../io/jsonval.h"
#include "../io/torch_pt.h"
#include "../models/convnet.h"

// ----------------------------------------------------------------------------
// data

void mtt_data_free(MttData *d) {
    zca_free(&d->z);
    xfree(d->x_train), xfree(d->y_train), xfree(d->x_test), xfree(d->y_test);
    memset(d, 0, sizeof(*d));
}

int mtt_data_prepare(MttData *d, const Dataset *train, const Dataset *test, const DatasetInfo *info, int zca,
                     Err *e) {
    memset(d, 0, sizeof(*d));
    d->zca = zca, d->C = train->c, d->H = train->h, d->W = train->w, d->K = train->n_classes;
    size_t D = (size_t)train->c * train->h * train->w;
    d->n_train = train->n, d->n_test = test ? test->n : 0;
    d->x_train = xmalloc(sizeof(float) * D * (size_t)train->n);
    d->y_train = xmalloc(sizeof(int) * (size_t)train->n);
    if (test) d->x_test = xmalloc(sizeof(float) * D * (size_t)test->n), d->y_test = xmalloc(sizeof(int) * test->n);
    if (!d->x_train || !d->y_train || (test && (!d->x_test || !d->y_test))) {
        mtt_data_free(d);
        return err_set(e, "out of memory for the %s images", info->name);
    }
    memcpy(d->y_train, train->labels, sizeof(int) * train->n);
    if (test) memcpy(d->y_test, test->labels, sizeof(int) * test->n);
    // ZCA: ToTensor only (the official transform drops Normalize when --zca), then whiten
    dataset_to_float(train, 0, train->n, d->x_train, !zca);
    if (test) dataset_to_float(test, 0, test->n, d->x_test, !zca);
    if (!zca) return 0;
    if (zca_fit(&d->z, d->x_train, train->n, (int)D, 0.1, e)) {
        mtt_data_free(d);
        return err_wrap(e, "ZCA on the %s training set", info->name);
    }
    float *tmp = xmalloc(sizeof(float) * D * (size_t)(train->n > d->n_test ? train->n : d->n_test));
    if (!tmp) {
        mtt_data_free(d);
        return err_set(e, "out of memory whitening the %s images", info->name);
    }
    zca_whiten(&d->z, tmp, d->x_train, train->n);
    memcpy(d->x_train, tmp, sizeof(float) * D * train->n);
    if (test) {
        zca_whiten(&d->z, tmp, d->x_test, test->n);
        memcpy(d->x_test, tmp, sizeof(float) * D * test->n);
    }
    xfree(tmp);
    return 0;
}

// ----------------------------------------------------------------------------
// configuration and paths

void mtt_buffer_config_default(MttBufferConfig *c) {
    memset(c, 0, sizeof(*c));
    c->num_experts = 100;
    c->train_epochs = 50;
    c->lr_teacher = 0.01f;
    c->batch_train = 256;
    c->dsa = 1;
    snprintf(c->dsa_strategy, sizeof(c->dsa_strategy), "color_crop_cutout_flip_scale_rotate");
    c->save_interval = 10;
}

static int is_cifar(const DatasetInfo *info) {
    return !strcmp(info->name, "CIFAR10") || !strcmp(info->name, "CIFAR100");
}

int mtt_buffer_dir(char *out, size_t n, const char *buffer_path, const DatasetInfo *info, int zca, const char *arch,
                   Err *e) {
    if (file_name_check(arch, "architecture", e)) return -1;
    int k = snprintf(out, n, "%s/%s%s/%s", buffer_path, info->name, is_cifar(info) && !zca ? "_NO_ZCA" : "", arch);
    if (k < 0 || (size_t)k >= n) return err_set(e, "buffer path too long");
    return 0;
}

// ----------------------------------------------------------------------------
// buffer_info.json

static int info_write(const char *dir, const MttBufferConfig *cfg, const char *arch, const DatasetInfo *info, int zca,
                      Err *e) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return err_set(e, "out of memory");
    cJSON_AddStringToObject(j, "format", "mtt-distillation replay buffer (buffer.py), written by beard");
    cJSON_AddStringToObject(j, "dataset", info->name);
    cJSON_AddStringToObject(j, "model", arch);
    cJSON_AddBoolToObject(j, "zca", zca);
    cJSON_AddNumberToObject(j, "train_epochs", cfg->train_epochs);
    cJSON_AddNumberToObject(j, "lr_teacher", cfg->lr_teacher);
    cJSON_AddNumberToObject(j, "mom", cfg->mom);
    cJSON_AddNumberToObject(j, "l2", cfg->l2);
    cJSON_AddNumberToObject(j, "batch_train", cfg->batch_train);
    cJSON_AddStringToObject(j, "dsa_strategy", cfg->dsa ? cfg->dsa_strategy : "none");
    char *txt = cJSON_Print(j);
    cJSON_Delete(j);
    if (!txt) return err_set(e, "out of memory");
    char path[1200];
    int rc = file_path_join(path, sizeof(path), dir, "buffer_info.json", "buffer info", e);
    if (!rc) rc = file_write_all(path, txt, strlen(txt), e);
    free(txt);
    return rc;
}

// the dataset, model and ZCA flag of an existing buffer_info.json (1), or 0 when there is none
static int info_read(const char *dir, char *dataset, char *model, int *zca, Err *e) {
    char path[1200];
    if (file_path_join(path, sizeof(path), dir, "buffer_info.json", "buffer info", e)) return -1;
    struct stat st;
    if (stat(path, &st) != 0) return 0;
    uint8_t *buf;
    size_t n;
    if (file_read_all(path, 1 << 20, &buf, &n, e)) return -1;
    cJSON *j = cJSON_ParseWithLength((const char *)buf, n);
    xfree(buf);
    if (!j) return err_set(e, "%s is not valid JSON", path);
    int rc = -1;
    const cJSON *ds = cJSON_GetObjectItemCaseSensitive(j, "dataset");
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(j, "model"), *zc = cJSON_GetObjectItemCaseSensitive(j, "zca");
    if (!ds || !md || !zc) err_set(e, "%s lacks dataset, model or zca", path);
    else if (!json_get_str(ds, dataset, 32, e) && !json_get_str(md, model, 32, e) && !json_get_bool(zc, zca, e)) rc = 1;
    else err_wrap(e, "%s", path);
    cJSON_Delete(j);
    return rc;
}

// ----------------------------------------------------------------------------
// training

typedef struct {
    float *traj;    // (train_epochs + 1, P) of this expert
    size_t P;
    int max_epochs;
} Snap;

static int snap_epoch(void *ctx, const Net *net, int ep, Err *e) {
    Snap *s = ctx;
    if (ep + 1 > s->max_epochs) return err_set(e, "internal: epoch %d beyond the trajectory", ep);
    memcpy(s->traj + (size_t)(ep + 1) * s->P, net->params, sizeof(float) * s->P);
    return 0;
}

int mtt_buffer_write(const char *dir, const Net *net, float **trajs, int n, int n_epochs, int *written, Err *e) {
    char path[1200];
    struct stat st;
    int k = 0;
    for (;; k++) {
        char name[64];
        snprintf(name, sizeof(name), "replay_buffer_%d.pt", k);
        if (file_path_join(path, sizeof(path), dir, name, "replay buffer", e)) return -1;
        if (stat(path, &st) != 0) break;
    }
    // tensors are borrowed by the object tree: one Tensor header per (expert, epoch, param)
    int np = 0;
    for (int i = 0; i < net->n_entries; i++) np += net->entries[i].kind == PENTRY_PARAM;
    Tensor *hdr = xcalloc(sizeof(Tensor) * (size_t)n * n_epochs * (np ? np : 1));
    TorchObj *root = tobj_list();
    int rc = -1;
    if (!hdr || !root) {
        err_set(e, "out of memory writing %s", path);
        goto done;
    }
    size_t h = 0;
    for (int x = 0; x < n; x++) {
        TorchObj *traj = tobj_list();
        for (int t = 0; t < n_epochs; t++) {
            TorchObj *snap = tobj_list();
            const float *p = trajs[x] + (size_t)t * net->n_params;
            for (int i = 0; i < net->n_entries; i++) {
                const ParamEntry *pe = &net->entries[i];
                if (pe->kind != PENTRY_PARAM) continue;
                Tensor *T = &hdr[h++];
                T->dtype = DTYPE_F32;
                T->ndim = pe->ndim;
                for (int d = 0; d < pe->ndim; d++) T->shape[d] = pe->shape[d];
                T->numel = pe->numel;
                T->data = (void *)(p + pe->offset);
                if (tobj_append(snap, tobj_tensor(T))) break;
            }
            if (tobj_append(traj, snap)) break;
        }
        if (tobj_append(root, traj)) {
            err_set(e, "out of memory writing %s", path);
            goto done;
        }
    }
    rc = torch_save_obj(path, root, e);
    if (!rc && written) (*written)++;
done:
    tobj_free(root);
    xfree(hdr);
    return rc;
}

int mtt_buffer_train(const MttBufferConfig *cfg, const char *arch, const DatasetInfo *info, const MttData *d,
                     const char *dir, int *written, Err *e) {
    if (written) *written = 0;
    if (cfg->num_experts < 1 || cfg->train_epochs < 1 || cfg->save_interval < 1 || cfg->batch_train < 1 ||
        !(cfg->lr_teacher > 0))
        return err_set(e, "bad expert settings (num_experts %d, train_epochs %d, save_interval %d, lr_teacher %g)",
                       cfg->num_experts, cfg->train_epochs, cfg->save_interval, cfg->lr_teacher);
    char ds[32], md[32];
    int zc;
    int have = info_read(dir, ds, md, &zc, e);
    if (have < 0) return -1;
    if (have == 1 && (strcmp(ds, info->name) || strcmp(md, arch) || zc != d->zca))
        return err_set(e, "%s holds experts of %s on %s%s; asked to add %s on %s%s", dir, md, ds, zc ? " (ZCA)" : "",
                       arch, info->name, d->zca ? " (ZCA)" : "");
    if (file_mkdirs(dir, e)) return -1;
    if (info_write(dir, cfg, arch, info, d->zca, e)) return -1;

    TrainConfig tc;
    train_config_default(&tc);
    tc.epochs = cfg->train_epochs - 1; // train_model runs epochs + 1 (the recipe's range(Epoch + 1))
    tc.batch = cfg->batch_train;
    tc.lr = (float)cfg->lr_teacher, tc.momentum = (float)cfg->mom, tc.weight_decay = (float)cfg->l2;
    tc.lr_decay = 0;
    tc.dsa = cfg->dsa;
    if (cfg->dsa && dsa_strategy_parse(&tc.strategy, cfg->dsa_strategy, e)) return -1;
    tc.dsa_cfg.align_corners = 1; // MTT's DiffAugment
    tc.eval_every = 0;            // the test accuracy after the last epoch only
    tc.progress = cfg->progress;
    tc.keep_params = 1;

    Pool pool = {.n = d->n_train, .c = d->C, .h = d->H, .w = d->W, .n_classes = d->K, .x = d->x_train,
                 .y = d->y_train, .stored_normalised = 1};
    snprintf(pool.format, sizeof(pool.format), "dataset");
    TrainTest test = {.x = d->x_test, .y = d->y_test, .n = d->n_test};
    int n_epochs = cfg->train_epochs + 1;
    int group = cfg->save_interval < cfg->num_experts ? cfg->save_interval : cfg->num_experts;
    float **trajs = xcalloc(sizeof(float *) * (size_t)group);
    Net net;
    int rc = -1, have_net = 0, kept = 0;
    if (!trajs) {
        err_set(e, "out of memory");
        goto done;
    }
    if (model_create(&net, arch, d->C, d->K, d->H, d->W, e)) goto done;
    have_net = 1;
    size_t P = net.n_params;
    for (int i = 0; i < group; i++) {
        size_t sz;
        if (!size_mul((size_t)n_epochs, P, &sz) || !(trajs[i] = xmalloc(sizeof(float) * sz))) {
            err_set(e, "out of memory for %d trajectories of %d snapshots", group, n_epochs);
            goto done;
        }
    }
    for (int x = 0; x < cfg->num_experts; x++) {
        uint64_t seed = cfg->seed + (uint64_t)x;
        net_init_params(&net, seed);
        for (int l = 0; l < net.n_layers; l++) // fresh BatchNorm statistics, as a new network's
            if (net.layers[l].kind == LAYER_BATCHNORM) {
                Layer *L = &net.layers[l];
                for (int c = 0; c < L->in_c; c++) net.buffers[L->rm + c] = 0.0f, net.buffers[L->rv + c] = 1.0f;
                L->num_batches_tracked = 0;
            }
        memcpy(trajs[kept], net.params, sizeof(float) * P);
        Snap sn = {trajs[kept], P, n_epochs};
        tc.on_epoch = snap_epoch, tc.on_epoch_ctx = &sn;
        char label[48];
        snprintf(label, sizeof(label), "expert %d/%d", x + 1, cfg->num_experts);
        tc.run_label = label;
        TrainResult res;
        if (train_model(&net, &pool, d->n_test ? &test : NULL, &tc, seed, NULL, &res, e)) goto done;
        if (cfg->log)
            fprintf(cfg->log, "expert %d: %d epochs, train acc %.2f%%, test acc %.2f%%, %.1f s\n", x,
                    cfg->train_epochs, res.train_acc, res.test_acc, res.seconds);
        kept++;
        if (kept == group || x == cfg->num_experts - 1) {
            if (mtt_buffer_write(dir, &net, trajs, kept, n_epochs, written, e)) goto done;
            kept = 0;
        }
    }
    rc = 0;
done:
    for (int i = 0; trajs && i < group; i++) xfree(trajs[i]);
    xfree(trajs);
    if (have_net) net_free(&net);
    return rc;
}

// ----------------------------------------------------------------------------
// reading

void mtt_buffer_free(MttBuffer *b) {
    for (int i = 0; i < b->n_files; i++) xfree(b->files[i]);
    xfree(b->files);
    xfree(b->params);
    memset(b, 0, sizeof(*b));
}

int mtt_buffer_open(MttBuffer *b, const char *dir, const Net *net, const char *arch, const DatasetInfo *info, int zca,
                    Err *e) {
    memset(b, 0, sizeof(*b));
    b->loaded = -1;
    snprintf(b->dir, sizeof(b->dir), "%s", dir);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        // name what the buffer path does hold: experts of another model or dataset
        char root[1024], have[512];
        snprintf(root, sizeof(root), "%s", dir);
        for (int up = 0; up < 2; up++) {
            char *sl = strrchr(root, '/');
            if (sl) *sl = 0;
        }
        mtt_buffer_list(root, have, sizeof(have));
        return err_set(e, "no expert trajectories for %s on %s%s at %s (make them with `beard buffer`); %s holds "
                          "experts for: %s",
                       arch, info->name, zca ? " with ZCA" : "", dir, root, have);
    }
    char ds[32], md[32];
    int zc;
    int have = info_read(dir, ds, md, &zc, e);
    if (have < 0) return -1;
    if (have == 1 && (strcmp(ds, info->name) || strcasecmp(md, arch) || zc != zca))
        return err_set(e, "the replay buffer in %s is for %s on %s%s, not %s on %s%s as asked", dir, md, ds,
                       zc ? " with ZCA" : " without ZCA", arch, info->name, zca ? " with ZCA" : " without ZCA");
    for (;;) {
        char name[64], path[1200];
        snprintf(name, sizeof(name), "replay_buffer_%d.pt", b->n_files);
        if (file_path_join(path, sizeof(path), dir, name, "replay buffer", e)) return -1;
        if (stat(path, &st) != 0) break;
        char **f = realloc(b->files, sizeof(char *) * (size_t)(b->n_files + 1));
        if (!f) return err_set(e, "out of memory");
        b->files = f;
        if (!(b->files[b->n_files] = xstrdup(path))) return err_set(e, "out of memory");
        b->n_files++;
    }
    if (b->n_files == 0) return err_set(e, "no buffers detected at %s (replay_buffer_0.pt is missing)", dir);
    (void)net;
    return 0;
}

void mtt_buffer_list(const char *buffer_path, char *out, size_t n) {
    size_t k = 0;
    out[0] = 0;
    NameList ds = {0};
    Err e;
    if (name_list_dir(buffer_path, 1, &ds, &e) == 0) {
        for (int i = 0; i < ds.n && k + 1 < n; i++) {
            char sub[1200];
            snprintf(sub, sizeof(sub), "%s/%s", buffer_path, ds.items[i]);
            NameList ms = {0};
            if (name_list_dir(sub, 1, &ms, &e)) continue;
            for (int j = 0; j < ms.n && k + 1 < n; j++) {
                char f[1400];
                struct stat st;
                snprintf(f, sizeof(f), "%s/%s/replay_buffer_0.pt", sub, ms.items[j]);
                if (stat(f, &st) == 0)
                    k += (size_t)snprintf(out + k, n - k, "%s%s/%s", k ? ", " : "", ds.items[i], ms.items[j]);
            }
            name_list_free(&ms);
        }
        name_list_free(&ds);
    }
    if (!out[0]) snprintf(out, n, "nothing");
}

// "(128, 3, 3, 3), (128), ..." for the first and the last tensors of a snapshot
static void describe_snapshot(char *out, size_t n, const PickleValue *snap) {
    size_t len = pickle_len(snap), k = 0;
    k += (size_t)snprintf(out + k, n - k, "%zu tensors", len);
    for (size_t i = 0; i < len && k < n; i++) {
        if (i == 1 && len > 3) i = len - 1; // the first (input channels) and the last (classes)
        const PickleValue *t = pickle_item(snap, i);
        k += (size_t)snprintf(out + k, n - k, i == 0 ? ", first (" : len > 3 ? " ... last (" : ", (");
        if (t && t->type == PICKLE_TENSOR)
            for (int d = 0; d < t->tensor->ndim && k < n; d++)
                k += (size_t)snprintf(out + k, n - k, d ? ", %lld" : "%lld", (long long)t->tensor->shape[d]);
        if (k < n) k += (size_t)snprintf(out + k, n - k, ")");
    }
}

static void describe_net(char *out, size_t n, const Net *net) {
    const ParamEntry *first = NULL, *last = NULL;
    int np = 0;
    for (int i = 0; i < net->n_entries; i++)
        if (net->entries[i].kind == PENTRY_PARAM) {
            if (!first) first = &net->entries[i];
            last = &net->entries[i], np++;
        }
    size_t k = (size_t)snprintf(out, n, "%d tensors", np);
    const ParamEntry *show[2] = {first, last};
    for (int s = 0; s < 2 && show[s] && k < n; s++) {
        k += (size_t)snprintf(out + k, n - k, s ? " ... last (" : ", first (");
        for (int d = 0; d < show[s]->ndim && k < n; d++)
            k += (size_t)snprintf(out + k, n - k, d ? ", %lld" : "%lld", (long long)show[s]->shape[d]);
        if (k < n) k += (size_t)snprintf(out + k, n - k, ")");
    }
}

// does a snapshot (list of tensors) fit the net's parameters?
static int snapshot_fits(const PickleValue *snap, const Net *net) {
    if (!snap || (snap->type != PICKLE_LIST && snap->type != PICKLE_TUPLE)) return 0;
    size_t j = 0;
    for (int i = 0; i < net->n_entries; i++) {
        const ParamEntry *pe = &net->entries[i];
        if (pe->kind != PENTRY_PARAM) continue;
        const PickleValue *t = pickle_item(snap, j++);
        if (!t || t->type != PICKLE_TENSOR || t->tensor->dtype != DTYPE_F32 || t->tensor->numel != pe->numel) return 0;
        const Tensor *T = t->tensor;
        // PyTorch shapes; a LayerNorm weight is (C, H, W) in both
        if (T->ndim != pe->ndim) return 0;
        for (int d = 0; d < pe->ndim; d++)
            if (T->shape[d] != pe->shape[d]) return 0;
    }
    return j == pickle_len(snap);
}

int mtt_buffer_load(MttBuffer *b, int i, const Net *net, Err *e) {
    if (i < 0 || i >= b->n_files) return err_set(e, "replay buffer %d of %d", i, b->n_files);
    if (b->loaded == i) return 0;
    PickleValue *root = NULL;
    if (torch_load(b->files[i], &root, e)) return err_wrap(e, "reading %s", b->files[i]);
    int rc = -1;
    size_t n_exp = pickle_len(root), n_ep = 0;
    if (root->type != PICKLE_LIST || n_exp == 0) {
        err_set(e, "%s is not a replay buffer (a list of expert trajectories)", b->files[i]);
        goto done;
    }
    for (size_t x = 0; x < n_exp; x++) {
        const PickleValue *traj = pickle_item(root, x);
        if (!traj || traj->type != PICKLE_LIST || pickle_len(traj) == 0) {
            err_set(e, "%s: trajectory %zu is not a list of per-epoch snapshots", b->files[i], x);
            goto done;
        }
        if (x == 0) n_ep = pickle_len(traj);
        if (pickle_len(traj) != n_ep) {
            err_set(e, "%s: trajectory %zu has %zu snapshots, trajectory 0 has %zu", b->files[i], x, pickle_len(traj),
                    n_ep);
            goto done;
        }
        for (size_t t = 0; t < n_ep; t++) {
            const PickleValue *snap = pickle_item(traj, t);
            if (!snapshot_fits(snap, net)) {
                char got[256], want[256];
                if (snap && (snap->type == PICKLE_LIST || snap->type == PICKLE_TUPLE))
                    describe_snapshot(got, sizeof(got), snap);
                else
                    snprintf(got, sizeof(got), "a %s", snap ? pickle_type_name(snap->type) : "nothing");
                describe_net(want, sizeof(want), net);
                err_set(e, "%s holds another model than asked: its parameters are %s; %s for %s takes %s", b->files[i],
                        got, net->arch, b->dir, want);
                goto done;
            }
        }
    }
    size_t P = net->n_params, total;
    if (!size_mul(n_exp * n_ep, P, &total)) {
        err_set(e, "%s is too large", b->files[i]);
        goto done;
    }
    xfree(b->params);
    b->params = xmalloc(sizeof(float) * (total ? total : 1));
    b->loaded = -1;
    if (!b->params) {
        err_set(e, "out of memory for %zu expert snapshots", n_exp * n_ep);
        goto done;
    }
    for (size_t x = 0; x < n_exp; x++)
        for (size_t t = 0; t < n_ep; t++) {
            const PickleValue *snap = pickle_item(pickle_item(root, x), t);
            float *dst = b->params + (x * n_ep + t) * P;
            size_t j = 0;
            for (int k = 0; k < net->n_entries; k++) {
                const ParamEntry *pe = &net->entries[k];
                if (pe->kind != PENTRY_PARAM) continue;
                memcpy(dst + pe->offset, pickle_item(snap, j++)->tensor->data, sizeof(float) * pe->numel);
            }
        }
    b->n_experts = (int)n_exp, b->n_epochs = (int)n_ep, b->P = P, b->loaded = i;
    rc = 0;
done:
    pickle_free(root);
    return rc;
}

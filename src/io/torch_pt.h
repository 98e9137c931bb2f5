/*
 * torch_pt.h: PyTorch checkpoints (.pt/.pth) and pickled tensors (.pkl), read through the
 * restricted unpickler (pickle.h), and state_dicts written so that torch.load reads them.
 *
 * Three layouts are read, told apart by their first bytes:
 *   - the zip format of torch >= 1.6: "<prefix>/data.pkl" plus one record
 *     "<prefix>/data/<key>" per storage (the prefix is the archive's top folder, which
 *     torch names after the file, so it varies);
 *   - the legacy format of torch < 1.6 (and `_use_new_zipfile_serialization=False`):
 *     five pickles back to back (magic number, protocol 1001, sys_info, the object with
 *     storages as persistent ids, the storage keys) followed by each storage's int64
 *     element count and raw little-endian bytes;
 *   - a plain pickle (pickle.dump((images, labels)) as IDM/BACON write it), in which every
 *     tensor's storage is a legacy torch.save blob passed to
 *     torch.storage._load_from_bytes.
 * Tensors come back contiguous; storage locations (cuda:0) are ignored.
 */
#ifndef BEARD_TORCH_PT_H
#define BEARD_TORCH_PT_H

#include "pickle.h"
#include "tensordict.h"

// The whole object tree of a .pt/.pth/.pkl file, tensors resolved; pickle_free(*out).
int torch_load(const char *path, PickleValue **out, Err *e);
// The same from memory (zip, legacy or plain pickle).
int torch_loads(const uint8_t *buf, size_t n, PickleValue **out, Err *e);

// A state_dict: the file's top-level dict, or the dict under 'state_dict',
// 'model_state_dict', 'model' or 'net'. Nested dicts are flattened with '.', the
// DataParallel prefix 'module.' is dropped, non-tensor entries are skipped. Error if no
// tensor is found. out must be initialised (tensordict_init); entries are added to it.
// The entries borrow the file's tensors (a storage behind many names is held once):
// torch_load_state_dict hands the loaded file to out, which frees it with itself;
// torch_state_dict_from leaves root to the caller, who must free out before root.
// A nested dict reached twice (a DAG) is refused; the flattening draws on the file's
// memory and work budgets (pickle.h).
int torch_load_state_dict(const char *path, TensorDict *out, Err *e);
int torch_state_dict_from(const PickleValue *root, TensorDict *out, Err *e);

// Writes sd as torch.save(OrderedDict) would in the zip format (protocol 2 pickle, one
// uncompressed record per tensor, version 3), so that torch.load returns it exactly.
int torch_save_state_dict(const char *path, const TensorDict *sd, Err *e);

// ----------------------------------------------------------------------------
// writing any small object tree of Python values and tensors: what dataset-distillation
// code torch.saves ({'data': [[images, labels]], 'accs_all_exps': {...}}) or
// pickle.dumps ((images, labels)). Build the tree with the constructors (each returns
// NULL when out of memory; passing NULL on to tobj_append/tobj_set makes them fail, so a
// tree can be built without checking every call), write it, tobj_free the root.
// Tensors are borrowed: they must outlive the write.

typedef struct TorchObj TorchObj;
TorchObj *tobj_none(void);
TorchObj *tobj_bool(int v);
TorchObj *tobj_int(int64_t v);
TorchObj *tobj_float(double v);
TorchObj *tobj_str(const char *s);
TorchObj *tobj_tensor(const Tensor *t);
TorchObj *tobj_list(void);
TorchObj *tobj_tuple(void);
TorchObj *tobj_dict(void);
// appends item to a list or tuple (takes it; frees it on failure); -1 on failure
int tobj_append(TorchObj *seq, TorchObj *item);
// dict[key] = v (takes v; frees it on failure); keys keep their insertion order
int tobj_set(TorchObj *dict, const char *key, TorchObj *v);
void tobj_free(TorchObj *o);

// torch.save(obj, path) in the zip format of torch >= 1.6 (loads with
// torch.load(weights_only=True)); written to path.tmp and renamed
int torch_save_obj(const char *path, const TorchObj *obj, Err *e);
// pickle.dump(obj, f) (protocol 3): tensors pickled as torch pickles them, storages as
// torch.storage._load_from_bytes of a legacy torch.save of the storage (what IDM and
// BACON's .pkl files hold; pickle.load reads it, torch.load does not); written atomically
int pickle_dump_obj(const char *path, const TorchObj *obj, Err *e);

#endif

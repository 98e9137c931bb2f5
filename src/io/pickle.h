/*
 * pickle.h: a restricted unpickler for the pickles that PyTorch, numpy and the CIFAR
 * python batches use. It is a security boundary: checkpoints come from the internet.
 *
 * What it reads. Pickle protocols 0 to 5 as CPython's pickle module writes them, with
 * the opcodes that torch.save, pickle.dump and Python 2's cPickle emit (the official
 * CIFAR python batches are Python 2 pickles). Python 2 `str` (STRING, BINSTRING,
 * SHORT_BINSTRING) loads as bytes, which is what `pickle.load(f, encoding='bytes')`
 * does; pickle_dict_get() matches str and bytes keys alike, so callers need not care.
 *
 * What it builds. A tree of PickleValue nodes: None, bool, int (int64; integers too wide
 * for 64 bits become PICKLE_BIGINT and only fail when used as a number), float, str,
 * bytes, list, tuple, dict (ordered; OrderedDict is a dict), set, and three typed nodes:
 * TENSOR (a torch tensor or a numpy array, always resolved into a contiguous, owning
 * Tensor), STORAGE (a torch storage, from a persistent id) and GLOBAL (an allow-listed
 * class or function that was referenced but not called). numpy scalars become plain
 * int/float/bool nodes with `np` set to the numpy dtype they came from.
 *
 * What it never does: execute anything. GLOBAL and STACK_GLOBAL resolve against a fixed
 * allow-list (pickle.c: allowed_globals) and anything else fails with
 * "disallowed global 'os.system' in pickle". REDUCE, NEWOBJ and BUILD are interpreted for
 * those few callables only (OrderedDict, torch's _rebuild_tensor_v2 family, torch.Size,
 * torch.storage._load_from_bytes, numpy's scalar/dtype/_reconstruct/_frombuffer,
 * _codecs.encode, set/frozenset/bytes); torch storage types may only appear inside
 * persistent ids, which the torch loader (torch_pt.c) turns into storages.
 *
 * Limits. Every read is bounds-checked; claimed lengths are checked against the bytes
 * that remain before anything is allocated; memo indices are bounded by the input size;
 * nesting is bounded by PICKLE_MAX_DEPTH; nested torch blobs
 * (torch.storage._load_from_bytes) may nest PICKLE_MAX_NEST deep. A document has two
 * budgets fixed from its input size, and every part of a load draws on them (the
 * unpickler, the torch loaders, the state_dict flattening): memory (every node, string,
 * container, stack, memo, storage and tensor; pickle_doc_charge) and work (one step per
 * opcode, per container item and per state_dict entry; pickle_doc_work), so that no file
 * makes beard allocate or compute much more than its size. Malformed input gives an
 * error, never a crash or a hang.
 *
 * Sharing. A contiguous tensor shares its storage's bytes (borrowed, owner = the storage
 * node): a storage referenced a thousand times costs its size once. Strided tensors are
 * copied (against the budget).
 *
 * Ownership. All nodes of one load belong to a PickleDoc (an arena); pickle_free() on any
 * node of it frees the whole document. Shared references (memo GETs) and even cycles are
 * therefore harmless; walkers stop at PICKLE_MAX_DEPTH.
 */
#ifndef BEARD_PICKLE_H
#define BEARD_PICKLE_H

#include <stdint.h>
#include <stdio.h>

#include "../core/common.h"

#define PICKLE_MAX_DEPTH 256 // container nesting, checked while loading and by every walker
#define PICKLE_MAX_NEST 4    // torch blobs inside pickles inside torch blobs ...

typedef enum {
    PICKLE_NONE,
    PICKLE_BOOL,    // i: 0 or 1
    PICKLE_INT,     // i
    PICKLE_BIGINT,  // s/len: little-endian two's complement bytes (more than 64 bits)
    PICKLE_FLOAT,   // f
    PICKLE_STR,     // s/len: utf-8, NUL-terminated
    PICKLE_BYTES,   // s/len: raw, NUL-terminated for convenience
    PICKLE_LIST,    // items[0..n)
    PICKLE_TUPLE,   // items[0..n)
    PICKLE_SET,     // items[0..n) (set and frozenset)
    PICKLE_DICT,    // n pairs: items[2k] key, items[2k+1] value, in insertion order
    PICKLE_GLOBAL,  // s: "module.attr" of an allow-listed, uncalled global
    PICKLE_STORAGE, // storage
    PICKLE_TENSOR,  // tensor (contiguous, owned by the document)
    PICKLE_NPDTYPE, // a numpy.dtype (only meaningful as an argument)
    PICKLE_TYPE_COUNT
} PickleType;

typedef struct PickleDoc PickleDoc;
typedef struct PickleValue PickleValue;

// A torch storage: numel elements of dtype, data filled by the torch loader. A view
// (legacy format only) points into base's data at base_offset elements.
typedef struct {
    DType dtype;
    char *key;
    size_t numel;
    uint8_t *data;     // numel * dtype_size bytes once loaded; NULL before
    int loaded;
    PickleValue *base; // view of another storage, or NULL
    size_t base_offset;
} PickleStorage;

struct PickleValue {
    PickleType type;
    int np;                 // numpy origin: DType + 1 of the numpy scalar/array, else 0
    int64_t i;              // BOOL, INT
    double f;               // FLOAT
    char *s;                // STR, BYTES, BIGINT, GLOBAL
    size_t len;
    PickleValue **items;    // LIST, TUPLE, SET: n items; DICT: 2n (key, value)
    size_t n, cap;
    Tensor *tensor;         // TENSOR
    PickleStorage *storage; // STORAGE
    // loader internals
    int borrowed;           // TENSOR: tensor->data lies inside owner's storage bytes
    PickleValue *owner;     // TENSOR: the storage node whose bytes it shares, or NULL
    int depth;              // nesting depth (1 for a leaf)
    int gid;                // GLOBAL: which allow-listed global; NPDTYPE: byte order
    void *aux;              // TENSOR: a view awaiting its storage; NPDTYPE: dtype info
    PickleDoc *doc;
};

// What the torch loader plugs in. Either function may be NULL, in which case persistent
// ids and torch.storage._load_from_bytes are errors.
typedef struct {
    // BINPERSID/PERSID: the object a persistent id stands for (torch: a storage)
    int (*persistent_load)(void *ctx, PickleDoc *doc, PickleValue *pid, PickleValue **out, Err *e);
    // torch.storage._load_from_bytes(b): a legacy torch.save blob inside a plain pickle
    int (*load_from_bytes)(void *ctx, PickleDoc *doc, const uint8_t *b, size_t n, PickleValue **out, Err *e);
    void *ctx;
} PickleHooks;

// ----------------------------------------------------------------------------
// loading

// One pickle from buf into a new document; tensors resolved. *out must be pickle_free()d.
int pickle_loads(const uint8_t *buf, size_t n, const PickleHooks *hooks, PickleValue **out, Err *e);
// reads a whole file and calls pickle_loads (no hooks)
int pickle_load_file(const char *path, PickleValue **out, Err *e);
// frees the document v belongs to (every node of it); NULL is fine
void pickle_free(PickleValue *v);

// The pieces the torch loader builds on. A document allocates at most `budget` bytes.
PickleDoc *pickle_doc_new(size_t budget);
void pickle_doc_free(PickleDoc *doc);
// the budget for an input of n bytes (a generous constant factor plus headroom)
size_t pickle_budget_for(size_t n);
// One pickle starting at buf (ending at its STOP opcode, *used = its length) into doc.
// Tensors referring to storages stay pending until pickle_doc_finish.
int pickle_loads_doc(PickleDoc *doc, const uint8_t *buf, size_t n, size_t *used, const PickleHooks *hooks,
                     PickleValue **out, Err *e);
// Resolves every pending tensor against its (now loaded) storage, checking that offset,
// shape and strides stay inside it, then releases storage data that root cannot reach.
int pickle_doc_finish(PickleDoc *doc, PickleValue *root, Err *e);
// the current nesting of loads (for torch.storage._load_from_bytes); inc/dec around one
int pickle_doc_nest(PickleDoc *doc, int delta, Err *e);
// draws bytes from the document's memory budget / steps from its work budget; -1 (with
// a message saying the file asks for more than its size allows) when exhausted
int pickle_doc_charge(PickleDoc *doc, size_t bytes, Err *e);
void pickle_doc_refund(PickleDoc *doc, size_t bytes); // gives back what a freed buffer drew
size_t pickle_doc_used(const PickleDoc *doc);           // bytes drawn so far
int pickle_doc_work(PickleDoc *doc, uint64_t steps, Err *e);
// a new storage node owned by doc; data allocated (uninitialised) but not marked loaded
PickleValue *pickle_new_storage(PickleDoc *doc, DType dtype, const char *key, size_t numel, Err *e);
// a storage that views numel elements of base starting at offset (legacy format)
PickleValue *pickle_new_storage_view(PickleDoc *doc, PickleValue *base, size_t offset, size_t numel, Err *e);

// ----------------------------------------------------------------------------
// inspecting

const char *pickle_type_name(PickleType t);
int pickle_is(const PickleValue *v, PickleType t);
// str or bytes equal to s
int pickle_is_str(const PickleValue *v, const char *s);
// the value for key (str or bytes) in a dict; the last one if a key repeats; NULL if absent
PickleValue *pickle_dict_get(const PickleValue *dict, const char *key);
// list/tuple/set length, dict pair count; 0 for scalars
size_t pickle_len(const PickleValue *v);
// list/tuple/set item; NULL when out of range or not a sequence
PickleValue *pickle_item(const PickleValue *v, size_t i);
// int/bool (or an integral float); -1 and an error otherwise
int pickle_as_int(const PickleValue *v, int64_t *out, Err *e);
// int/bool/float, or a tensor with one element
int pickle_as_double(const PickleValue *v, double *out, Err *e);
// the torch storage dtype of a GLOBAL node such as torch.FloatStorage; -1 if it is none
int pickle_storage_dtype(const PickleValue *v, DType *out);
// deep copy of a tensor node's data into a new, owning Tensor
int pickle_tensor_copy(const PickleValue *v, Tensor *out, Err *e);

// Prints the tree: dict keys, tensor dtypes and shapes (and a few values), scalars,
// lengths. Containers longer than max_items are cut with "... (N more)".
void pickle_print(FILE *f, const PickleValue *v, int max_items);
// one line (no newline): "tensor float32 [2, 3] = [values...]" with min/max when long
void pickle_print_tensor(FILE *f, const Tensor *t, int numpy);

#endif

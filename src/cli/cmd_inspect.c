/*
 * cmd_inspect.c: `beard inspect FILE` prints what a checkpoint or distilled-set file
 * holds: the object tree of a .pt/.pth (zip or legacy torch.save) or .pkl file, read
 * through the restricted unpickler, or the tensors of a .safetensors file. It is the
 * first thing to run on a file from a paper's release before pointing beard at it.
 */
#include <stdlib.h>
#include <string.h>

#include "../io/pickle.h"
#include "../io/safetensors.h"
#include "../io/torch_pt.h"
#include "../io/file.h"
#include "cli.h"

static void usage(FILE *f) {
    fprintf(f, "usage: beard inspect FILE [--max-items N] [--threads N]\n\n"
               "Prints the object tree of a .pt/.pth (zip or legacy torch.save), .pkl or .safetensors\n"
               "file: dict keys, tensor dtypes and shapes with their first values, scalars and list\n"
               "lengths, with the NaN and Inf counts of every tensor that holds any. An object shared\n"
               "by several names is printed once. Only allow-listed pickle globals are resolved;\n"
               "nothing in the file is executed.\n\n"
               "  --max-items N   show at most N entries of each list or dict (default 20)\n"
               "  --threads N     accepted as by every command (reading a file uses one)\n");
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static int looks_like_safetensors(const char *path) {
    FILE *f = file_open_regular(path, NULL);
    if (!f) return 0;
    uint8_t h[9];
    int ok = fread(h, 1, 9, f) == 9 && h[8] == '{' && h[6] == 0 && h[7] == 0;
    fclose(f);
    return ok;
}

static int inspect_safetensors(const char *path, int max_items) {
    TensorDict sd;
    Err e;
    tensordict_init(&sd);
    if (safetensors_load(path, &sd, &e)) {
        tensordict_free(&sd);
        return cli_error("inspect", "%s", e.msg);
    }
    printf("%s: safetensors, %d tensors\n", path, sd.n);
    for (int i = 0; i < sd.n && i < max_items; i++) {
        printf("  %s: ", sd.items[i].name);
        pickle_print_tensor(stdout, &sd.items[i].t, 0);
        putchar('\n');
    }
    if (sd.n > max_items) printf("  ... (%d more)\n", sd.n - max_items);
    tensordict_free(&sd);
    return 0;
}

int cmd_inspect(int argc, char **argv) {
    const char *path = NULL;
    long max_items = 20;
    for (int i = 1; i < argc; i++) {
        int missing = 0;
        const char *v;
        if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            usage(stdout);
            return 0;
        } else if ((v = cli_opt(argc, argv, &i, "--max-items", &missing))) {
            if (cli_parse_int("inspect", "--max-items", v, 1, 1000000, &max_items)) return 2;
        } else if ((v = cli_opt(argc, argv, &i, "--threads", &missing))) {
            long t; // accepted as everywhere; reading a file is single-threaded
            if (cli_parse_int("inspect", "--threads", v, 0, 256, &t)) return 2;
        } else if (missing) {
            return 2;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage_error("inspect", "unknown option '%s' (see beard inspect --help)", argv[i]);
        } else if (path) {
            return cli_usage_error("inspect", "expects one FILE, got '%s' and '%s'", path, argv[i]);
        } else {
            path = argv[i];
        }
    }
    if (!path) return cli_usage_error("inspect", "missing FILE (see beard inspect --help)");
    if (ends_with(path, ".safetensors")) return inspect_safetensors(path, (int)max_items);
    PickleValue *root;
    Err e;
    if (torch_load(path, &root, &e)) {
        if (looks_like_safetensors(path)) return inspect_safetensors(path, (int)max_items);
        return cli_error("inspect", "%s", e.msg);
    }
    printf("%s:\n", path);
    pickle_print(stdout, root, (int)max_items);
    pickle_free(root);
    return 0;
}

/* make_corpus.c - writes the seed corpus of the checkpoint fuzzer into a folder:
 *
 *   make_corpus DIR        (./build.sh fuzz runs it)
 *
 * valid checkpoints of the configs in fuzz_config.h, weights only and with a train state, and
 * corrupt variants of them: truncations, bit flips, huge declared lengths, wrong dtypes, NaN and
 * Inf data, duplicate, missing and unknown tensors, bad shapes and offsets, broken JSON, bad
 * metadata. It checks that the library rejects every corrupt seed with a message (exit 1 if
 * not) and prints the counts. Seeds are files named valid-* and corrupt-*.
 */
#define _POSIX_C_SOURCE 200809L
#define LOOPED_TF_IMPLEMENTATION
#include "../looped_tf.h"
#include "fuzz_config.h"

typedef struct { unsigned char *p; size_t len; } blob;

static const char *g_dir;
static int g_valid, g_corrupt, g_accepted, g_full;   /* g_full: the seeds now come from a file with a train state */

static size_t header_len(blob f) {
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | f.p[i];
    return (size_t)n;
}

/* Writes a seed. A valid one must load; a corrupt one must be rejected by the load it breaks: with
 * the train state when the file has one (a weights-only load of a full file ignores the Adam
 * tensors and the state's metadata by design), else weights only. */
static void emit(const char *kind, const char *name, blob f) {
    char path[512], err[LTF_ERR_LEN];
    snprintf(path, sizeof path, "%s/%s-%s", g_dir, kind, name);
    FILE *out = fopen(path, "wb");
    if (!out || (f.len && fwrite(f.p, 1, f.len, out) != f.len) || fclose(out) != 0) {
        fprintf(stderr, "make_corpus: cannot write %s\n", path);
        exit(1);
    }
    ltf_model m;
    ltf_train_state st;
    int loads = ltf_checkpoint_load_mem(&m, g_full ? &st : NULL, f.p, f.len, NULL, err) == 0;
    if (loads) ltf_model_free(&m);
    if (kind[0] == 'c') { g_corrupt++; if (loads) { g_accepted++; fprintf(stderr, "make_corpus: corrupt seed %s loads\n", name); } }
    else { g_valid++; if (!loads) { fprintf(stderr, "make_corpus: valid seed %s does not load: %s\n", name, err); exit(1); } }
}

static blob copy(blob f) {
    blob g = {(unsigned char *)malloc(f.len + 1), f.len};
    memcpy(g.p, f.p, f.len);
    return g;
}

/* f with its JSON header replaced by json (data block kept) */
static blob with_json(blob f, const char *json) {
    size_t n = strlen(json), ds = 8 + header_len(f);
    blob g = {(unsigned char *)malloc(8 + n + (f.len - ds) + 1), 8 + n + (f.len - ds)};
    for (int i = 0; i < 8; i++) g.p[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(g.p + 8, json, n);
    memcpy(g.p + 8 + n, f.p + ds, f.len - ds);
    return g;
}

/* f with the first `old` in its header replaced by `new_`; NULL blob when old is absent */
static blob replace(blob f, const char *old, const char *new_) {
    size_t n = header_len(f);
    char *j = (char *)malloc(n + 1), *k;
    memcpy(j, f.p + 8, n);
    j[n] = 0;
    char *at = strstr(j, old);
    blob g = {NULL, 0};
    if (!at) { fprintf(stderr, "make_corpus: '%s' not in the header\n", old); exit(1); }
    k = (char *)malloc(n + strlen(new_) + 1);
    memcpy(k, j, (size_t)(at - j));
    strcpy(k + (at - j), new_);
    strcat(k, at + strlen(old));
    g = with_json(f, k);
    free(j); free(k);
    return g;
}

static void emit_replace(const char *name, blob f, const char *old, const char *new_) {
    blob g = replace(f, old, new_);
    emit("corrupt", name, g);
    free(g.p);
}

static blob encode(const ltf_model *m, const ltf_train_state *st) {
    char path[512], err[LTF_ERR_LEN];
    snprintf(path, sizeof path, "%s/.encode.tmp.safetensors", g_dir);
    if (ltf_checkpoint_save(m, st, path, err) != 0) { fprintf(stderr, "make_corpus: %s\n", err); exit(1); }
    FILE *f = fopen(path, "rb");
    blob b = {NULL, 0};
    fseek(f, 0, SEEK_END);
    b.len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    b.p = (unsigned char *)malloc(b.len + 1);
    if (fread(b.p, 1, b.len, f) != b.len) exit(1);
    fclose(f);
    remove(path);
    return b;
}

static void corrupt_variants(blob f, const char *tag) {
    char name[128];
    size_t ds = 8 + header_len(f), cuts[] = {0, 1, 7, 8, 9, ds / 2, ds - 1, ds, ds + 1, ds + (f.len - ds) / 2, f.len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {   /* truncations */
        blob g = {f.p, cuts[i]};
        snprintf(name, sizeof name, "%s-truncated-%zu", tag, cuts[i]);
        emit("corrupt", name, g);
    }
    static const uint64_t lens[] = {0, 1, 2, 100000001ull, 1ull << 40, ~0ull};   /* declared header lengths */
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        blob g = copy(f);
        for (int b = 0; b < 8; b++) g.p[b] = (unsigned char)(lens[i] >> (8 * b));
        snprintf(name, sizeof name, "%s-header-length-%llu", tag, (unsigned long long)lens[i]);
        emit("corrupt", name, g);
        free(g.p);
    }
    {   /* header length one more than the file holds */
        blob g = copy(f);
        uint64_t n = (uint64_t)(f.len - 7);
        for (int b = 0; b < 8; b++) g.p[b] = (unsigned char)(n >> (8 * b));
        snprintf(name, sizeof name, "%s-header-length-past-end", tag);
        emit("corrupt", name, g);
        free(g.p);
    }
    ltf_rng r;
    ltf_rng_seed(&r, 7);
    for (int i = 0; i < 24; i++) {   /* bit flips: in the header (JSON) and in the data */
        blob g = copy(f);
        size_t at = i < 16 ? 8 + ltf_rng_u32(&r) % (ds - 8) : ds + ltf_rng_u32(&r) % (f.len - ds);
        g.p[at] ^= (unsigned char)(1u << (ltf_rng_u32(&r) % 8));
        if (i >= 16) {   /* a flipped data bit usually still loads: flip an exponent bit to NaN/Inf */
            size_t w = ds + ((at - ds) & ~(size_t)3);
            g.p[w + 3] |= 0x7f; g.p[w + 2] |= 0x80;
        }
        snprintf(name, sizeof name, "%s-bitflip-%02d-at-%zu", tag, i, at);
        emit("corrupt", name, g);
        free(g.p);
    }
    static const char *const dtypes[] = {"F16", "BF16", "F64", "I32", "U8", "BOOL", "f32", ""};
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++) {
        char nd[32];
        snprintf(nd, sizeof nd, "\"dtype\":\"%s\"", dtypes[i]);
        snprintf(name, sizeof name, "%s-dtype-%s", tag, dtypes[i][0] ? dtypes[i] : "empty");
        emit_replace(name, f, "\"dtype\":\"F32\"", nd);
    }
    static const float bad[] = {NAN, INFINITY, -INFINITY};
    static const char *const bad_names[] = {"nan", "inf", "neg-inf"};
    for (int i = 0; i < 3; i++) {   /* non-finite data: first, middle, last float */
        size_t where[3] = {ds, ds + ((f.len - ds) / 8) * 4, f.len - 4};
        for (int w = 0; w < 3; w++) {
            blob g = copy(f);
            uint32_t u;
            memcpy(&u, &bad[i], 4);
            for (int b = 0; b < 4; b++) g.p[where[w] + b] = (unsigned char)(u >> (8 * b));
            snprintf(name, sizeof name, "%s-data-%s-%d", tag, bad_names[i], w);
            emit("corrupt", name, g);
            free(g.p);
        }
    }
    emit_replace(strcat(strcpy(name, tag), "-missing-tensor"), f, "\"_read_out.bias\":{\"dtype\":\"F32\",\"shape\":[1],", "\"_read_out.biaz\":{\"dtype\":\"F32\",\"shape\":[1],");
    emit_replace(strcat(strcpy(name, tag), "-duplicate-tensor"), f, "\"_read_in.bias\"", "\"_read_out.bias\"");
    emit_replace(strcat(strcpy(name, tag), "-unknown-tensor"), f, "{\"__metadata__\"", "{\"extra\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"__metadata__\"");
    emit_replace(strcat(strcpy(name, tag), "-shape-swapped"), f, "\"shape\":[1,4]", "\"shape\":[4,1]");
    emit_replace(strcat(strcpy(name, tag), "-shape-huge"), f, "\"shape\":[1]", "\"shape\":[4294967297]");
    emit_replace(strcat(strcpy(name, tag), "-shape-rank9"), f, "\"shape\":[1]", "\"shape\":[1,1,1,1,1,1,1,1,1]");
    emit_replace(strcat(strcpy(name, tag), "-offsets-huge"), f, "\"data_offsets\":[0,", "\"data_offsets\":[18446744073709551612,");
    emit_replace(strcat(strcpy(name, tag), "-offsets-overflow"), f, "\"data_offsets\":[0,", "\"data_offsets\":[18446744073709551616,");
    emit_replace(strcat(strcpy(name, tag), "-offsets-negative"), f, "\"data_offsets\":[0,", "\"data_offsets\":[-4,");
    emit_replace(strcat(strcpy(name, tag), "-offsets-three"), f, "\"data_offsets\":[0,", "\"data_offsets\":[0,0,");
    emit_replace(strcat(strcpy(name, tag), "-json-unclosed"), f, "\"__metadata__\":{", "\"__metadata__\":{{");
    emit_replace(strcat(strcpy(name, tag), "-json-deep"), f, "\"format_version\":\"1\"", "\"format_version\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
    emit_replace(strcat(strcpy(name, tag), "-json-escape"), f, "\"looped-tf\"", "\"looped\\ud800tf\"");
    emit_replace(strcat(strcpy(name, tag), "-json-nul"), f, "\"looped-tf\"", "\"looped\\u0000tf\"");
    emit_replace(strcat(strcpy(name, tag), "-format"), f, "\"looped-tf\"", "\"looped-tX\"");
    emit_replace(strcat(strcpy(name, tag), "-version"), f, "\"format_version\":\"1\"", "\"format_version\":\"2\"");
    emit_replace(strcat(strcpy(name, tag), "-config-huge"), f, "\"n_embd\":\"", "\"n_embd\":\"999999");
    emit_replace(strcat(strcpy(name, tag), "-config-negative"), f, "\"n_layer\":\"", "\"n_layer\":\"-");
    emit_replace(strcat(strcpy(name, tag), "-config-text"), f, "\"n_head\":\"", "\"n_head\":\"x");
    emit_replace(strcat(strcpy(name, tag), "-config-missing"), f, "\"n_dims\"", "\"n_dimz\"");
    emit_replace(strcat(strcpy(name, tag), "-config-duplicate"), f, "\"n_dims\":\"", "\"n_dims\":\"2\",\"n_dims\":\"");
}

static void state_variants(blob f, const char *tag) {
    char name[128];
    emit_replace(strcat(strcpy(name, tag), "-state-lr"), f, "\"lr\":\"", "\"lr\":\"nan");
    emit_replace(strcat(strcpy(name, tag), "-state-lr-inf"), f, "\"lr\":\"", "\"lr\":\"1e99");
    emit_replace(strcat(strcpy(name, tag), "-state-step"), f, "\"step\":\"", "\"step\":\"-");
    emit_replace(strcat(strcpy(name, tag), "-state-step-huge"), f, "\"step\":\"", "\"step\":\"99999999999999999999");
    emit_replace(strcat(strcpy(name, tag), "-state-task"), f, "\"task\":\"", "\"task\":\"x");
    emit_replace(strcat(strcpy(name, tag), "-state-batch"), f, "\"batch_size\":\"", "\"batch_size\":\"-");
    emit_replace(strcat(strcpy(name, tag), "-state-rng"), f, "\"data_rng_state\":\"", "\"data_rng_state\":\"99999999999999999999999");
    emit_replace(strcat(strcpy(name, tag), "-state-adam-missing"), f, "\"optim.exp_avg_sq._read_out.bias\"", "\"optim.exp_avg_sq._read_out.biaz\"");
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: make_corpus DIR\n"); return 2; }
    g_dir = argv[1];
    char err[LTF_ERR_LEN], tag[64];
    for (int i = 0; i < FUZZ_N_CONFIGS; i++) {
        ltf_config c;
        ltf_model m;
        fuzz_config(i, &c);
        if (ltf_model_create(&m, &c, 100 + (uint64_t)i, err) != 0) { fprintf(stderr, "make_corpus: %s\n", err); return 1; }
        ltf_train_config tc;
        ltf_train_config_default(&tc);
        tc.batch_size = 2; tc.n_points = c.n_positions;
        ltf_curriculum cur;
        ltf_curriculum_default(&cur, LTF_TASK_LINEAR, &c, c.n_positions);
        ltf_train_state st;
        ltf_train_state_init(&st, i % LTF_TASK_COUNT, &tc, &cur, 5);
        float xs[2 * 5 * 3], ys[2 * 5], loss;
        for (int s = 0; s < 2; s++)   /* a few steps: Adam state and step in the file */
            if (ltf_train_next(&m, &st, xs, ys, &loss, NULL) != 0) { fprintf(stderr, "make_corpus: %s\n", m.err); return 1; }
        blob w = encode(&m, NULL), full = encode(&m, &st);
        snprintf(tag, sizeof tag, "config%d-weights", i);
        g_full = 0;
        emit("valid", tag, w);
        if (i == 0 || i == 2) corrupt_variants(w, tag);
        snprintf(tag, sizeof tag, "config%d-full", i);
        g_full = 1;
        emit("valid", tag, full);
        if (i == 0) { corrupt_variants(full, tag); state_variants(full, tag); }
        free(w.p); free(full.p);
        ltf_model_free(&m);
    }
    blob empty = {(unsigned char *)"", 0}, tiny = {(unsigned char *)"\x02\0\0\0\0\0\0\0{}", 10};
    g_full = 0;
    emit("corrupt", "empty", empty);
    emit("corrupt", "empty-header", tiny);
    printf("make_corpus: %d valid and %d corrupt seeds in %s; %d corrupt seeds loaded\n", g_valid, g_corrupt, g_dir, g_accepted);
    return g_accepted ? 1 : 0;
}

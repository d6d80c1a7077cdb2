/* fuzz_checkpoint.c - libFuzzer harness for the checkpoint loader, ltf_checkpoint_load_mem.
 *
 *   ./build.sh fuzz [seconds]      builds this with clang -fsanitize=fuzzer,address,undefined,
 *                                  seeds it from fuzz/make_corpus.c and runs it (default 60 s)
 *
 * Every input is loaded four ways: weights only or with a train state, with or without an
 * expected config (fuzz_expect_config, the first config of the seed corpus). The contract,
 * checked here on top of what the sanitizers check (out-of-bounds reads, use after free, leaks,
 * undefined behaviour): a load either succeeds with a valid config, the expected one when one
 * was given, and finite numbers; or fails with a message, a zeroed model and the train state
 * untouched. Anything else aborts, which libFuzzer reports as a crash with the input saved.
 */
#define LOOPED_TF_IMPLEMENTATION
#include "../looped_tf.h"
#include "fuzz_config.h"

static long g_loads, g_rejected;

static void finding(const char *what, const char *err) {
    fprintf(stderr, "fuzz_checkpoint: %s (%s)\n", what, err);
    abort();
}

static void all_finite(const float *p, size_t n, const char *what) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(p[i])) finding("loaded a non-finite number", what);
}

static void report(void) {
    fprintf(stderr, "fuzz_checkpoint: %ld loads (4 per input): %ld loaded, %ld rejected with a message\n",
            g_loads, g_loads - g_rejected, g_rejected);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc; (void)argv;
    atexit(report);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ltf_config expect;
    fuzz_expect_config(&expect);
    for (int mode = 0; mode < 4; mode++) {
        int with_state = mode & 1, with_expect = mode & 2;
        ltf_model m;
        ltf_train_state st, keep;
        char err[LTF_ERR_LEN] = "", e[LTF_ERR_LEN];
        memset(&st, 0xa5, sizeof st);
        keep = st;
        int rc = ltf_checkpoint_load_mem(&m, with_state ? &st : NULL, data, size, with_expect ? &expect : NULL, err);
        g_loads++;
        if (rc == 0) {
            if (ltf_config_check(&m.cfg, e) != 0) finding("loaded an invalid config", e);
            if (with_expect && memcmp(&m.cfg, &expect, sizeof expect) != 0) finding("loaded a config other than the expected", "");
            if (m.n_params == 0 || !m.params || ltf_model_num_params(&m) != m.n_params) finding("loaded an empty model", "");
            all_finite(m.params, m.n_params, "weights");
            if (with_state) {
                if (ltf_train_config_check(&st.train, &m.cfg, e) != 0) finding("loaded an invalid train config", e);
                if (st.task_kind < 0 || st.task_kind >= LTF_TASK_COUNT || st.step < 0 || m.adam_t < 0)
                    finding("loaded an invalid train state", "");
                all_finite(m.adam_m, m.n_params, "Adam m");
                all_finite(m.adam_v, m.n_params, "Adam v");
            } else if (memcmp(&st, &keep, sizeof st) != 0) finding("a weights-only load wrote the train state", "");
            ltf_model_free(&m);
        } else {
            g_rejected++;
            if (!err[0] || strlen(err) >= LTF_ERR_LEN) finding("rejected without a message", err);
            if (m.params || m.tensors || m.n_params || m.adam_m) finding("a failed load left a model behind", err);
            if (memcmp(&st, &keep, sizeof st) != 0) finding("a failed load changed the train state", err);
        }
    }
    return 0;
}

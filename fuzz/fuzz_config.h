/* fuzz_config.h - the configs of the fuzz seed corpus (fuzz/make_corpus.c); the first one is
 * also the config the harness (fuzz/fuzz_checkpoint.c) passes as `expect`. Small models: a seed
 * of a few KB lets libFuzzer run thousands of loads a second. */
#ifndef LTF_FUZZ_CONFIG_H
#define LTF_FUZZ_CONFIG_H

enum { FUZZ_N_CONFIGS = 4 };

static inline void fuzz_config(int i, ltf_config *c) {
    ltf_config_default(c);
    c->n_dims = 2; c->n_positions = 3; c->n_embd = 4; c->n_head = 2; c->n_layer = 1;
    c->kind = LTF_LOOPED; c->n_loops = 3; c->loop_window = 2;
    if (i == 1) { c->kind = LTF_STANDARD; c->n_layer = 2; c->n_head = 1; c->n_dims = 1; }
    if (i == 2) { c->mask_mode = LTF_MASK_KEEP_LAST; c->mask_pairs = 2; c->mask_when = LTF_AT_TRAIN; }
    if (i == 3) { c->n_dims = 3; c->n_embd = 8; c->n_positions = 5; c->n_loops = 5; c->loop_window = 5; }
}

static inline void fuzz_expect_config(ltf_config *c) { fuzz_config(0, c); }

#endif

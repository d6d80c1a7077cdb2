/* looped_tf.h - looped transformers in one C header, trained by hand-written backprop.
 * version 0.3.0 (2026-12-04)                                   licence: MIT (end of this file)
 *
 * The reference implementation of "Looped Transformers are Better at Learning Learning
 * Algorithms" (Yang, Lee, Nowak, Papailiopoulos; ICLR 2024; arXiv 2311.12424). The math it
 * follows is docs/MATH.md, next to this file: "§4" in a comment is its section 4.
 *
 * ============================================================================================
 * HOW TO USE
 *   In exactly ONE C or C++ file:
 *       #define LOOPED_TF_IMPLEMENTATION
 *       #include "looped_tf.h"
 *   Everywhere else just #include "looped_tf.h". Needs stb_ds.h (Debian: libstb-dev, found
 *   as <stb/stb_ds.h>); the implementation file also compiles stb_ds's implementation unless
 *   you define LTF_NO_STB_DS_IMPLEMENTATION (do that if your program already has it).
 *   Build: cc -O3 -march=native -fopenmp my.c -lm   (OpenMP optional: two threads help).
 *   The matrix multiply uses AVX-512 or AVX2 + FMA when the compiler targets them
 *   (-march=native does on such a CPU), else plain C, about 3x slower (section [4]).
 *   GPU (section [14]): define LOOPED_TF_CUDA before the include in that one file and compile
 *   it as CUDA, which pulls in looped_tf_cuda.cu (next to this header):
 *       nvcc -O3 -x cu -DLOOPED_TF_CUDA -arch=sm_90 -Xcompiler -fopenmp my.c -o my
 *   Other files see the same declarations with or without LOOPED_TF_CUDA.
 *
 * OPTIONS (define before including the implementation)
 *   LTF_MALLOC(n) / LTF_FREE(p)   allocator (default malloc/free). A NULL from LTF_MALLOC is
 *                                 handled everywhere: the function returns -1 with a message
 *                                 and frees what it took (the workbench's too: its
 *                                 ltf_baseline_predict returns NAN, which ltf_baseline_evaluate
 *                                 passes on into err_by_k).
 *   LTF_REALLOC(p, n)             define it (with the two above) to send stb_ds's allocations,
 *                                 the tensor name table of each model (a few KB), through your
 *                                 allocator too; without it stb_ds uses realloc/free. stb_ds does
 *                                 not check for NULL, so LTF_REALLOC must not fail. Used only
 *                                 where this file compiles stb_ds (no LTF_NO_STB_DS_IMPLEMENTATION);
 *                                 other files of your program that use stb_ds arrays must then
 *                                 define STBDS_REALLOC/STBDS_FREE the same way.
 *   LTF_ASSERT(x)                 internal invariants only, never user input (default assert).
 *   LTF_NO_STB_DS_IMPLEMENTATION  do not define STB_DS_IMPLEMENTATION here.
 *
 * ERRORS
 *   Every function that can fail on user input returns 0 on success and -1 on failure and
 *   writes a message that names the bad value and what is allowed into err / model->err.
 *   User input never reaches an assert.
 *
 * PUBLIC API (one line each; [n]: the section that holds it)
 *   ltf_config_default(&cfg)                       [1] the demo's model: §6's sizes scaled down
 *   ltf_config_check(&cfg, err)                    [1] 0 or -1 + message for an impossible config
 *     (cfg.kind LTF_STANDARD | LTF_LOOPED | LTF_TIED; cfg.loop_func, .inject_every_block,
 *      .no_pos_emb: the paper code's variants, §12; 0 is the plain model)
 *   ltf_train_config_default(&tc)                  [1] batch 64, Adam lr 1e-3, betas, eps, no decay
 *   ltf_train_config_check(&tc, &cfg, err)         [1] 0 or -1 + message
 *   ltf_rng_seed(&rng, seed)                       [2] seeded RNG: same seed, same bits, everywhere
 *   ltf_rng_u32 / ltf_rng_uniform / ltf_rng_normal [2] draws
 *   ltf_model_create(&m, &cfg, seed, err)          [3] allocate and initialise (§5); runs on the CPU
 *   ltf_model_free(&m)                             [3] release everything (the GPU's memory too)
 *   ltf_model_find(&m, name)                       [3] tensor by PyTorch name -> ltf_tensor* or NULL
 *   ltf_model_num_params(&m) / ltf_model_bytes(&m) [3] floats of parameters / bytes held in all
 *   ltf_model_backend(&m)                          [3] "cpu" or "cuda": where its ops run
 *   ltf_model_init_weights(&m, seed)               [3] draw the initial weights again (§5)
 *   ltf_gemm / ltf_gemm_plain                      [4] Cm += A.B, fast / readable (the oracle)
 *   ops (raw pointers; backward ADDS into gradients) [5]: ltf_matmul_forward/backward,
 *     ltf_layernorm_forward/backward, ltf_attention_forward/backward (+ _plain twins),
 *     ltf_gelu_forward/backward, ltf_residual_forward/backward, ltf_residual_layernorm_forward
 *     (+ _plain), ltf_position_forward/backward; the loop's: ltf_tokens, ltf_inject,
 *     ltf_mask_backward, ltf_read_out(_backward), ltf_loss_sum, ltf_loss_backward,
 *     ltf_check_finite, ltf_adam_update, ltf_zero
 *   ltf_backend                                    [6] the op table a backend fills (CPU, CUDA)
 *   ltf_forward_backward(&m, xs, ys, B, n, &loss)  [8] training loss and gradients (grads zeroed first)
 *   ltf_forward_loss(&m, xs, ys, B, n, &loss)      [8] training loss only
 *   ltf_predict(&m, xs, ys, B, n, loops, last, it) [8] predictions after `loops` iterations (and each)
 *   ltf_hidden_states(&m, xs, ys, B, n, loops, states)  [8] the states a probe reads, by iteration
 *   ltf_window_start_state / ltf_forward_loss_from [8] for gradient checks: Y_s0, the state the loss
 *                                                  window starts from, and the loss from a given one
 *   ltf_adam_step(&m, &tc)                         [9] one Adam(W) update from the gradients
 *   ltf_train_step(&m, &tc, xs, ys, B, n, &loss)   [9] forward_backward + NaN check + Adam
 *   ltf_task_make(kind, d, d_active)               [10] a task of §7 (LTF_TASK_LINEAR, ...)
 *   ltf_task_linear_regression(d, d_active)        [10] the linear regression task
 *   ltf_task_kind_name(kind) / _from_name(name)    [10] "linear_regression" <-> kind
 *   ltf_task_sample(&task, &rng, B, n, xs, ys)     [10] one batch of prompts
 *   ltf_evaluate(&m, &task, &rng, P, n, loops, err_k, err_it, err_p)  [11] normalized error (§8)
 *                                                  by index k, by loop iteration, by prompt
 *   ltf_schedule_value(&sched, step)               [12] a curriculum variable at a step (§6)
 *   ltf_curriculum_default / _off / _check         [12] the paper's curriculum, none, validation
 *   ltf_train_state_init(&st, task, &tc, &cur, seed)  [12] step 0 of a training run
 *   ltf_train_next(&m, &st, xs, ys, &loss, &n)     [12] one curriculum step: sample, train, advance
 *   ltf_write_atomic(path, data, len, err)         [13] write a file via path.tmp + rename
 *   ltf_checkpoint_save(&m, &st or NULL, path, err) [13] safetensors: weights [+ Adam + train state]
 *   ltf_checkpoint_load(&m, &st or NULL, path, &expect or NULL, err)  [13] a model from a file
 *   ltf_checkpoint_load_mem(&m, &st, buf, len, &expect, err)          [13] the same from memory
 *   ltf_gpu_available(msg)                         [14] 0 + the CUDA device, or -1 + why none is usable
 *   ltf_model_to_gpu(&m, err)                      [14] run the model's ops on the GPU from now on
 *   ltf_model_sync_host(&m, err) / ltf_model_to_cpu(&m, err)  [14] its numbers back to the host
 *                                                  (and stay on the GPU / leave it)
 *   ltf_gpu_set_precision("fp32"|"tf32"|"bf16", err)  [14] the GPU's matrix multiplies
 *   ltf_cpu_set_precision("fp32"|"bf16", err)      [4] the CPU's Linear layers: bf16 operands
 *   ltf_cpu_profile(on) / ltf_cpu_profile_read(ops, cap)  [5] time and work per CPU op
 *   ltf_gpu_profile(on, err) / ltf_gpu_profile_read(phases, cap, err)  [14] time per kernel
 *   ltf_gpu_launches()                             [14] kernels queued so far
 *
 * SECTIONS OF THIS FILE (search for the banner; the implementation follows the same numbers)
 *   [1] config        [2] rng          [3] model: parameters, their PyTorch names, init
 *   [4] matrix multiply (fast and plain)            [5] ops: forward and backward pairs
 *   [6] backends: the op table, the store of a model's numbers, the CPU backend
 *   [7] the backbone f (once, over the ops)         [8] the loop, the window loss, predict
 *   [9] Adam and the training step                  [10] tasks     [11] evaluation
 *   [12] curriculum and training runs               [13] files and checkpoints
 *   [14] GPU (its backend: looped_tf_cuda.cu)
 * Not here: baselines, bootstrap bands, plots, FLOP counts and the FMA peak are the workbench's
 * (the files in workbench/, used by demo.c), as the README's layout table says.
 *
 * NOTATION (docs/MATH.md): B batch, n points, d = n_dims, N = 2n tokens, C = n_embd, H heads,
 * hs = C/H, L layers, b loop iterations (only that: the prompt index is p), T loss window,
 * s0 = max(0, b - T) the window's first iteration, n_win = b - s0, BT = B*N token rows;
 * the state mask keeps mask_pairs token pairs. Linear weights are stored [out, in] as PyTorch does.
 * ============================================================================================
 */
#ifndef LOOPED_TF_H
#define LOOPED_TF_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LTF_VERSION "0.3.0"   /* major.minor.patch; checkpoints carry their own format_version */
#define LTF_ERR_LEN 256
#define LTF_MAX_LAYERS 64
#define LTF_MAX_DIMS 4096   /* largest task dimension d */
#define LTF_MAX_CLASSES 1024   /* largest n_classes K */

/* ============================== [1] config ============================== */

enum { LTF_STANDARD = 0, LTF_LOOPED = 1, LTF_TIED = 2 };  /* ltf_config.kind      */
enum { LTF_LOOP_ADD = 0, LTF_LOOP_MUL = 1 };               /* ltf_config.loop_func */
enum { LTF_MASK_NONE = 0, LTF_MASK_KEEP_LAST = 1, LTF_MASK_KEEP_FIRST = 2 }; /* mask_mode */
enum { LTF_AT_TRAIN = 1, LTF_AT_EVAL = 2, LTF_AT_BOTH = 3 };  /* mask_when (bit set)   */

typedef struct {
    int n_dims;       /* d: width of x (§1)                                          */
    int n_positions;  /* max points per prompt; wpe has 2*n_positions+1 rows (§2)    */
    int n_embd;       /* C                                                               */
    int n_head;       /* H, must divide C                                                */
    int n_layer;      /* L: blocks in f (12 standard, 1 looped in the paper)             */
    int kind;         /* LTF_STANDARD, LTF_LOOPED or LTF_TIED (§12)                      */
    int n_loops;      /* b: loop iterations in training (looped); applications of f (tied) */
    int loop_window;  /* T: the last T iterations carry the loss and the gradient (tied: b) */
    int mask_mode;    /* §4 variant: LTF_MASK_NONE / KEEP_LAST / KEEP_FIRST          */
    int mask_pairs;   /* token pairs kept in the carried state (§4)                      */
    int mask_when;    /* LTF_AT_TRAIN, LTF_AT_EVAL or LTF_AT_BOTH                         */
    /* the paper code's variants (§9); 0 everywhere is the model of §1-§4                      */
    int loop_func;    /* looped: LTF_LOOP_ADD (Y_0 = 0, u = Y + E) or LTF_LOOP_MUL (Y_0 = 1, u = Y * E) */
    int inject_every_block; /* standard: 1 = E also added before every block (add_inputs_embeds) */
    int no_pos_emb;   /* 1 = the position embedding is not added (rm_pos_embd; wpe stays, unused) */
    int n_classes;    /* 0: regression (one output, squared error); K >= 2: K class logits and
                       * cross-entropy, ys are class indices 0..K-1 (§13)                     */
} ltf_config;

typedef struct {
    int batch_size;      /* B prompts per step                                           */
    int n_points;        /* n points per prompt (<= n_positions)                         */
    float lr;            /* Adam learning rate                                           */
    float beta1, beta2;  /* Adam betas                                                   */
    float eps;           /* Adam eps                                                     */
    float weight_decay;  /* decoupled (AdamW) weight decay; 0 = plain Adam as the paper  */
} ltf_train_config;

void ltf_config_default(ltf_config *c);
int  ltf_config_check(const ltf_config *c, char err[LTF_ERR_LEN]);
void ltf_train_config_default(ltf_train_config *t);
int  ltf_train_config_check(const ltf_train_config *t, const ltf_config *c, char err[LTF_ERR_LEN]);

/* ============================== [2] rng ============================== */

typedef struct { uint64_t state; uint64_t inc; } ltf_rng;   /* PCG32 */

void     ltf_rng_seed(ltf_rng *r, uint64_t seed);
uint32_t ltf_rng_u32(ltf_rng *r);
double   ltf_rng_uniform(ltf_rng *r);            /* [0, 1) with 53 random bits          */
double   ltf_rng_normal(ltf_rng *r);             /* N(0, 1), Box-Muller, no cached pair  */

/* ============================== [3] model ============================== */

typedef struct {
    char *key;        /* PyTorch name, e.g. "_backbone.transformer.h.0.attn.c_attn.weight" */
    size_t offset;    /* offset in floats into params (and grads, Adam m and v)            */
    size_t size;      /* number of floats                                                  */
    int ndim;         /* 1 or 2                                                            */
    int shape[2];     /* [out, in] for Linear weights                                      */
} ltf_tensor;

typedef struct {             /* one GPT-2 block of f; pointers into the parameter buffer  */
    float *ln1_w, *ln1_b;    /* [C], [C]                                                   */
    float *qkv_w, *qkv_b;    /* [3C, C], [3C]   attn.c_attn                                */
    float *proj_w, *proj_b;  /* [C, C], [C]     attn.c_proj                                */
    float *ln2_w, *ln2_b;    /* [C], [C]                                                   */
    float *fc_w, *fc_b;      /* [4C, C], [4C]   mlp.c_fc                                   */
    float *fcp_w, *fcp_b;    /* [C, 4C], [C]    mlp.c_proj                                 */
} ltf_block;

typedef struct {                /* every tensor of the model; same layout for gradients    */
    float *read_in_w, *read_in_b;   /* [C, d], [C]                                          */
    float *wpe;                     /* [2*n_positions+1, C]                                 */
    ltf_block h[LTF_MAX_LAYERS];    /* [L]                                                  */
    float *lnf_w, *lnf_b;           /* [C], [C]                                             */
    float *read_out_w, *read_out_b; /* [1, C], [1]; classification: [K, C], [K] (§13)       */
} ltf_weights;

typedef struct {          /* activations of ONE pass of f over BT = B*N rows (§2)        */
    float *h;             /* [L+1, BT, C] residual stream: h[0] = u + wpe, h[l+1] = block l  */
    float *ln1;           /* [L, BT, C]   ln_1 output                                         */
    float *ln1_mean, *ln1_rstd; /* [L, BT]                                                    */
    float *qkv;           /* [L, BT, 3C]                                                      */
    float *att;           /* [L, B, H, N, N] softmax probabilities                            */
    float *atty;          /* [L, BT, C]   attention output before c_proj                      */
    float *hmid;          /* [L, BT, C]   h + attn(ln_1(h))                                   */
    float *ln2;           /* [L, BT, C]                                                       */
    float *ln2_mean, *ln2_rstd; /* [L, BT]                                                    */
    float *fch;           /* [L, BT, 4C]  c_fc output (GELU input)                            */
    float *fch_gelu;      /* [L, BT, 4C]                                                      */
    float *lnf_mean, *lnf_rstd; /* [BT]                                                       */
    float *out;           /* [BT, C]      ln_f output = f(u) = Y_{t+1}                        */
} ltf_acts;

typedef struct {          /* two scalars a training pass leaves in the backend's memory       */
    double loss_sum;      /* sum of the squared errors of the window                          */
    unsigned long long first_bad;   /* index of the first non-finite gradient, n_params if none */
} ltf_stats;

typedef struct {          /* the numbers of one training step, in the backend's memory, so that a
                           * recorded step (graph_begin, [6]) replays with this step's values */
    uint64_t key;         /* the device sampler's counter key (ltf__step_key, [2])            */
    float step, sqrt_bc2, decay;     /* Adam: lr / (1 - b1^t), sqrt(1 - b2^t), 1 - lr wd ([9]) */
    float beta1, beta2, eps;
} ltf_step_scalars;

typedef struct {                /* a model's numbers where its backend computes ([6])          */
    float *params, *grads;      /* [n_params] each; on the CPU the model's own arrays           */
    float *adam_m, *adam_v;     /* [n_params] each                                              */
    ltf_weights w, g;           /* views into params and grads                                  */
    int n_sets;                 /* activation sets: T window sets + 1 scratch set               */
    ltf_acts *sets;             /* [n_sets] views into act_mem (the array is host memory)       */
    float *act_mem, *work;      /* the sets' memory; the per-step work buffers                  */
    size_t cap_rows, cap_bhnn;  /* room for B*N token rows and B*H*N*N attention entries        */
    size_t act_floats, work_floats;
    const float *xs, *ys;       /* the batch the ops read: [B, n, d], [B, n]                    */
    int batch_B, batch_n;       /* its shape (0: none)                                          */
    float *batch;               /* the backend's copy of it, where that is not host memory      */
    size_t cap_points;          /* points of room in batch                                      */
    float *preds;               /* ltf_predict's predictions of every iteration [loops, B, n]   */
    size_t cap_preds;
    ltf_stats *stats;           /* [1] the loss sum and the gradient check of a training pass   */
    ltf_step_scalars *scalars;  /* [1] the step's numbers (key, Adam's step sizes)              */
    unsigned generation;        /* +1 whenever a buffer is (re)allocated: recordings go stale   */
} ltf_store;

struct ltf_backend;             /* [6]: the ops a model runs on (the CPU's, or CUDA's)          */

typedef struct {
    ltf_config cfg;
    ltf_tensor *tensors;  /* stb_ds string map: PyTorch name -> tensor (insertion ordered) */
    size_t n_params;      /* floats in params                                          */
    float *params;        /* all parameters, one contiguous buffer (host)              */
    float *grads;         /* gradients, same layout                                    */
    float *adam_m, *adam_v; /* Adam moments, same layout                               */
    long adam_t;          /* Adam steps taken                                          */
    ltf_weights w, g;     /* views into params and grads                               */
    const struct ltf_backend *backend;   /* where the ops run ([6]); the CPU's by default */
    ltf_store run;        /* the numbers the ops work on, in the backend's memory      */
    double loss;          /* loss of the last training-mode forward, in double         */
    size_t grad_bad;      /* first non-finite gradient of the last training pass, or n_params */
    char err[LTF_ERR_LEN];
} ltf_model;

int         ltf_model_create(ltf_model *m, const ltf_config *c, uint64_t seed, char err[LTF_ERR_LEN]);
void        ltf_model_free(ltf_model *m);
ltf_tensor *ltf_model_find(ltf_model *m, const char *name);
size_t      ltf_model_num_params(const ltf_model *m);
size_t      ltf_model_bytes(const ltf_model *m);
void        ltf_model_init_weights(ltf_model *m, uint64_t seed);
const char *ltf_model_backend(const ltf_model *m);   /* "cpu" or "cuda": where it runs */

/* ============================== [4] matrix multiply ============================== */

void ltf_gemm(int M, int N, int K, const float *A, ptrdiff_t a_row, ptrdiff_t a_col,
              const float *B, ptrdiff_t b_row, ptrdiff_t b_col, float *Cm, ptrdiff_t ldc);
void ltf_gemm_plain(int M, int N, int K, const float *A, ptrdiff_t a_row, ptrdiff_t a_col,
                    const float *B, ptrdiff_t b_row, ptrdiff_t b_col, float *Cm, ptrdiff_t ldc);

/* ============================== [5] ops ============================== */

/* The CPU's Linear layers (ltf_matmul_forward/backward): "fp32" (the default; what every exact
 * test runs) or "bf16": both operands of each multiply rounded to bfloat16 (to nearest even),
 * their products (exact in float32) summed in float32 in the fp32 mode's order. Parameters,
 * Adam, LayerNorm, attention, softmax, GELU, the residual stream and the loss stay float32. For
 * every model on the CPU; set it between steps, not while one runs. ltf_cpu_precision: 0 fp32, 1 bf16. */
int ltf_cpu_set_precision(const char *mode, char err[LTF_ERR_LEN]);
int ltf_cpu_precision(void);
/* A profile of the CPU ops: ltf_cpu_profile(1) clears it and starts timing (wall clock) the
 * Linear multiplies, attention, LayerNorm, GELU, zeroing and Adam, every call made outside a
 * parallel region; (0) stops. ltf_cpu_profile_read fills up to cap entries, most time first,
 * and returns how many. gflop: the multiply-adds' work (2 flops each) of the calls timed. */
typedef struct { const char *name; long calls; double ms; double gflop; } ltf_op_time;
void ltf_cpu_profile(int on);
int  ltf_cpu_profile_read(ltf_op_time *ops, int cap);
void ltf_matmul_forward(float *out, const float *inp, const float *w, const float *bias, int BT, int C, int OC);
void ltf_matmul_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                         const float *w, int BT, int C, int OC);
void ltf_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                           const float *b, int BT, int C);
void ltf_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                            const float *w, const float *mean, const float *rstd, int BT, int C);
void ltf_attention_forward(float *out, float *att, const float *qkv, int B, int N, int C, int H);
void ltf_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv,
                            const float *att, int B, int N, int C, int H);
void ltf_attention_forward_plain(float *out, float *att, const float *qkv, int B, int N, int C, int H);
void ltf_attention_backward_plain(float *dqkv, float *datt, const float *dout, const float *qkv,
                                  const float *att, int B, int N, int C, int H);
void ltf_gelu_forward(float *out, const float *inp, size_t n);
void ltf_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n);
void ltf_residual_forward(float *out, const float *a, const float *b, size_t n);
void ltf_residual_layernorm_forward(float *h, float *out, float *mean, float *rstd, const float *a,
                                    const float *c, const float *w, const float *b, int BT, int C);
void ltf_residual_layernorm_forward_plain(float *h, float *out, float *mean, float *rstd, const float *a,
                                          const float *c, const float *w, const float *b, int BT, int C);
void ltf_residual_backward(float *da, float *db, const float *dout, size_t n);
void ltf_add(float *y, const float *x, size_t n);
void ltf_mul_forward(float *out, const float *a, const float *b, size_t n);
void ltf_mul_backward(float *da, float *db, const float *dout, const float *a, const float *b, size_t n);
void ltf_position_forward(float *out, const float *inp, const float *wpe, int B, int N, int C);
void ltf_position_backward(float *dinp, float *dwpe, const float *dout, int B, int N, int C);
/* the loop's ops (section [5] of the implementation): tokens, injection with the state mask
 * (the tokens keep_lo..keep_hi-1 of each prompt keep their state), read-out, loss, checks */
void ltf_zero(float *p, size_t n);
void ltf_tokens(float *z, const float *xs, const float *ys, int B, int n, int d);
void ltf_inject(float *u, const float *Y, const float *E, int B, int N, int C, int keep_lo, int keep_hi);
void ltf_mask_backward(float *dY, const float *du, int B, int N, int C, int keep_lo, int keep_hi);
void ltf_read_out(float *pred, const float *Y, const float *w, const float *b, int B, int n, int C);
void ltf_read_out_backward(float *dY, float *dw, float *db, const float *dpred, const float *Y,
                           const float *w, int B, int n, int C);
void ltf_loss_sum(ltf_stats *stats, const float *pred, const float *ys, size_t count, int first);
void ltf_loss_backward(float *dpred, const float *ys, size_t count, float denom);
void ltf_ce_loss(ltf_stats *stats, const float *logits, const float *ys, int B, int n, int K, int first);
void ltf_ce_backward(float *logits, const float *ys, float denom, int B, int n, int K);
void ltf_check_finite(ltf_stats *stats, const float *p, size_t n);
void ltf_adam_update(float *p, float *m, float *v, const float *g, size_t n, float step, float sqrt_bc2,
                     float decay, float b1, float b2, float eps);

/* ============================== [6] backends ============================== */

/* The ops a model runs on. The loop of the paper ([7] backbone, [8] loop) is written once, as
 * host code calling these; the CPU's table holds the ops of [5], looped_tf_cuda.cu's holds CUDA
 * kernels. Every float pointer is in the backend's memory. Ops return nothing: errors of a
 * device are reported by the next get or finish, which wait for everything queued before. */
struct ltf_task;
typedef struct ltf_backend {
    const char *name;         /* "cpu", "cuda"                                                 */
    int host_memory;          /* 1: the backend computes in host memory (the batch is used in place) */
    /* memory */
    int  (*alloc)(float **p, size_t n, char *err, const char *what);   /* n floats, zeroed   */
    void (*release)(float *p);
    int  (*put)(void *dst, const void *src, size_t bytes, char *err);  /* host -> backend    */
    int  (*get)(void *dst, const void *src, size_t bytes, char *err, const char *what); /* waits; backend -> host */
    int  (*finish)(char *err, const char *what);                       /* waits; reports     */
    /* the ops of [5]; backward ADDS into gradients */
    void (*zero)(float *p, size_t n);
    void (*matmul_forward)(float *out, const float *inp, const float *w, const float *bias, int BT, int C, int OC);
    void (*matmul_backward)(float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                            const float *w, int BT, int C, int OC);
    void (*residual_layernorm_forward)(float *h, float *out, float *mean, float *rstd, const float *a,
                                       const float *c, const float *w, const float *b, int BT, int C);
    void (*layernorm_backward)(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                               const float *w, const float *mean, const float *rstd, int BT, int C);
    void (*attention_forward)(float *out, float *att, const float *qkv, int B, int N, int C, int H);
    void (*attention_backward)(float *dqkv, float *datt, const float *dout, const float *qkv,
                               const float *att, int B, int N, int C, int H);
    void (*tokens)(float *z, const float *xs, const float *ys, int B, int n, int d);
    void (*add)(float *y, const float *x, size_t n);
    void (*mul_forward)(float *out, const float *a, const float *b, size_t n);
    void (*mul_backward)(float *da, float *db, const float *dout, const float *a, const float *b, size_t n);
    void (*read_out)(float *pred, const float *Y, const float *w, const float *b, int B, int n, int C);
    void (*check_finite)(ltf_stats *stats, const float *p, size_t n);
    /* [5]'s ops in the pairs the loop runs them, each the composition of the ops named on its
     * right (so a backend may run a pair as one kernel):                                     */
    /* h = mask(Y) + E + wpe; out = LayerNorm(h)                 inject, position, layernorm */
    void (*inject_layernorm)(float *h, float *out, float *mean, float *rstd, const float *Y, const float *E,
                             const float *wpe, const float *w, const float *b, int B, int N, int C,
                             int keep_lo, int keep_hi);
    /* dwpe += sum_p dh; dE += dh; dY = mask(dh) (dY, dE NULL: not wanted)   their backwards */
    void (*inject_backward)(float *dY, float *dE, float *dwpe, const float *dh, int B, int N, int C,
                            int keep_lo, int keep_hi);
    /* out = inp . w^T + bias; gelu_out = GELU(out)                            matmul, gelu */
    void (*matmul_gelu_forward)(float *out, float *gelu_out, const float *inp, const float *w,
                                const float *bias, int BT, int C, int OC);
    /* dgelu_inp += GELU'(gelu_inp) * (dout . w); dw, dbias as matmul_backward; scratch
     * [BT, C], zero on entry, may receive dout . w                         their backwards */
    void (*matmul_gelu_backward)(float *dgelu_inp, float *dw, float *dbias, const float *dout, const float *inp,
                                 const float *w, const float *gelu_inp, float *scratch, int BT, int C, int OC);
    /* pred = read_out(Y); stats->loss_sum (+)= sum (pred - y)^2           read_out, loss_sum */
    void (*read_out_loss)(float *pred, ltf_stats *stats, const float *Y, const float *w, const float *b,
                          const float *ys, int B, int n, int C, int first);
    /* pred becomes dL/dpred; dY, dw, db += the read-out's backward
     *                                                  loss_backward, read_out_backward   */
    void (*read_out_loss_backward)(float *dY, float *dw, float *db, float *pred, const float *ys, float denom,
                                   const float *Y, const float *w, int B, int n, int C);
    /* Adam's update with the step's numbers s, skipped when guard (may be NULL) holds a
     * non-finite loss or gradient                                               adam_update */
    void (*adam)(float *p, float *m, float *v, const float *g, size_t n, const ltf_step_scalars *s,
                 const ltf_stats *guard);
    /* optional: the classification loss and its backward, ltf_ce_loss and ltf_ce_backward
     * (NULL: the backend runs regression models only) */
    void (*ce_loss)(ltf_stats *stats, const float *logits, const float *ys, int B, int n, int K, int first);
    void (*ce_backward)(float *logits, const float *ys, float denom, int B, int n, int K);
    /* optional: draws a training batch into xs [B, n, d], ys [B, n] of the backend's memory,
     * with the counter key in s (NULL: the host draws it) */
    void (*sample)(const struct ltf_task *task, const ltf_step_scalars *s, int B, int n, float *xs, float *ys);
    /* optional: records a training step once per key (shape) and replays it. graph_begin
     * returns 1: replayed (issue nothing), 0: issue the ops (they may be recorded), -1: error.
     * graph_end stops recording and runs what was recorded; graph_drop forgets the model's
     * recordings (its memory is about to go). */
    int  (*graph_begin)(ltf_model *m, const void *key, size_t key_bytes);
    int  (*graph_end)(ltf_model *m);
    void (*graph_drop)(const ltf_model *m);
} ltf_backend;

/* ============================== [8] the loop, the loss, the training pass ============================== */

int ltf_forward_backward(ltf_model *m, const float *xs, const float *ys, int B, int n, float *loss);
int ltf_forward_loss(ltf_model *m, const float *xs, const float *ys, int B, int n, float *loss);
int ltf_window_start_state(ltf_model *m, const float *xs, const float *ys, int B, int n, float *Ys);
int ltf_forward_loss_from(ltf_model *m, const float *xs, const float *ys, int B, int n,
                          const float *Ys, float *loss);
int ltf_predict(ltf_model *m, const float *xs, const float *ys, int B, int n, int n_loops,
                float *pred_last, float *pred_iters);
/* What a probe reads: states [S, B*2n, C]. Looped model: S = n_loops + 1, state 0 is E (the
 * injected input), state t the loop state Y_t after iteration t. Standard model: S = L + 1,
 * state l the residual stream entering block l (l = L: after the last block, before ln_f). */
int ltf_hidden_states(ltf_model *m, const float *xs, const float *ys, int B, int n, int n_loops, float *states);

/* ============================== [9] Adam and the training step ============================== */

int ltf_adam_step(ltf_model *m, const ltf_train_config *t);
int ltf_train_step(ltf_model *m, const ltf_train_config *t, const float *xs, const float *ys,
                   int B, int n, float *loss);

/* ============================== [10] tasks ============================== */

/* Task kinds of §7. */
enum { LTF_TASK_LINEAR = 0, LTF_TASK_NOISY_LINEAR, LTF_TASK_SPARSE_LINEAR, LTF_TASK_DECISION_TREE,
       LTF_TASK_RELU_2NN, LTF_TASK_COUNT };

typedef struct ltf_task ltf_task;
struct ltf_task {
    const char *name;   /* "linear_regression", ... (the paper's names)                */
    int kind;           /* LTF_TASK_*                                                  */
    int n_dims;         /* d                                                           */
    int n_dims_active;  /* dims curriculum: coordinates >= this are zero (§7)      */
    float error_scale;  /* normalized error = squared error / error_scale (§8)     */
    float noise_std;    /* noisy_linear_regression: std of the noise on y (0.1)        */
    int sparsity;       /* sparse_linear_regression: nonzero coordinates of w (3)      */
    int depth;          /* decision_tree: depth (4: 15 inner nodes, 16 leaves)         */
    int hidden;         /* relu_2nn_regression: hidden units (100)                     */
    /* draws B prompts of n points: xs [B, n, d], ys [B, n] */
    void (*sample)(const ltf_task *t, ltf_rng *rng, int B, int n, float *xs, float *ys);
};

ltf_task    ltf_task_make(int kind, int d, int d_active);   /* kind LTF_TASK_*; d clamped to 1..LTF_MAX_DIMS */
ltf_task    ltf_task_linear_regression(int d, int d_active);
int         ltf_task_kind_from_name(const char *name);     /* LTF_TASK_* or -1                  */
const char *ltf_task_kind_name(int kind);                  /* "linear_regression", ... or "?"  */
void        ltf_task_sample(const ltf_task *t, ltf_rng *rng, int B, int n, float *xs, float *ys);

/* ============================== [11] evaluation ============================== */

int ltf_evaluate(ltf_model *m, const ltf_task *task, ltf_rng *rng, int n_prompts, int n,
                 int n_loops, double *err_by_k, double *err_by_iter, float *err_by_prompt);

/* ============================== [12] curriculum and training runs ============================== */

typedef struct { int start, end, inc, interval; } ltf_schedule;  /* §6: value at step i =
                                                  min(start + floor(i / interval) * inc, end) */
typedef struct {
    ltf_schedule dims;    /* active dims of the task (d_active)                         */
    ltf_schedule points;  /* points per prompt n                                        */
    ltf_schedule loops;   /* loop iterations b of the looped model (window stays T)     */
} ltf_curriculum;

typedef struct {          /* everything besides the model that a bit-identical resume needs */
    long step;            /* training steps done                                          */
    ltf_rng data_rng;     /* the RNG that draws the training prompts, after `step` steps  */
    int task_kind;        /* LTF_TASK_*                                                    */
    ltf_train_config train;
    ltf_curriculum curriculum;
} ltf_train_state;

int  ltf_schedule_value(const ltf_schedule *s, long step);
/* the paper's curriculum for a task (§6), ending at the model's d and b and at n points */
void ltf_curriculum_default(ltf_curriculum *cur, int task_kind, const ltf_config *c, int n_points);
void ltf_curriculum_off(ltf_curriculum *cur, const ltf_config *c, int n_points);  /* constant */
int  ltf_curriculum_check(const ltf_curriculum *cur, const ltf_config *c, char err[LTF_ERR_LEN]);
/* sets st for step 0: the paper's curriculum, data RNG seeded, task kind, train config */
void ltf_train_state_init(ltf_train_state *st, int task_kind, const ltf_train_config *t,
                          const ltf_curriculum *cur, uint64_t data_seed);
/* one training step at st->step of the curriculum: draws a batch (xs [B, n_end, d] and ys
 * [B, n_end] are caller buffers; a model on the GPU draws it on the device instead, [14]),
 * trains with b_cur loops, advances st. -1 + m->err on failure, parameters unchanged.
 * *n_used (optional) gets the number of points drawn this step. */
int  ltf_train_next(ltf_model *m, ltf_train_state *st, float *xs, float *ys, float *loss, int *n_used);

/* ============================== [13] files and checkpoints ============================== */

/* Writes len bytes to path atomically: path.tmp, flushed (and fsync'd where POSIX is on),
 * closed, then renamed over path. On failure path is untouched and err says why. */
int ltf_write_atomic(const char *path, const void *data, size_t len, char err[LTF_ERR_LEN]);

/* Checkpoints: safetensors files that PyTorch reads (format in the [13] implementation).
 * save: st == NULL writes the weights only; otherwise also Adam's m, v, adam_t and all of *st.
 * load: creates *m from the config in the file (m must not hold a model). st == NULL loads the
 * weights only (Adam state starts fresh); st != NULL needs a file saved with a train state.
 * expect (or NULL): every config field must equal it. On failure *m is freed and zeroed, *st
 * untouched, and err says what is wrong (the file loader prefixes the path). */
int ltf_checkpoint_save(const ltf_model *m, const ltf_train_state *st, const char *path,
                        char err[LTF_ERR_LEN]);
int ltf_checkpoint_load(ltf_model *m, ltf_train_state *st, const char *path, const ltf_config *expect,
                        char err[LTF_ERR_LEN]);
int ltf_checkpoint_load_mem(ltf_model *m, ltf_train_state *st, const void *buf, size_t len,
                            const ltf_config *expect, char err[LTF_ERR_LEN]);

/* ============================== [14] GPU ============================== */

/* The CUDA backend (looped_tf_cuda.cu; HOW TO USE says how to build it). ltf_model_to_gpu
 * moves the model's store ([6]) to device memory: parameters, gradients and Adam state, then
 * activations, sized once per batch shape. From then on every op of ltf_train_step,
 * ltf_forward_backward, ltf_forward_loss(_from), ltf_window_start_state, ltf_predict,
 * ltf_evaluate, ltf_adam_step and ltf_train_next is a kernel, in float32 unless
 * ltf_gpu_set_precision says otherwise, called by the same loop as on the CPU ([7], [8]). A
 * training step queues its kernels and reads the device once, at its end; each shape's first
 * step is recorded as a CUDA graph that later steps replay (LTF_CUDA_GRAPH=0: never).
 * ltf_train_next draws its prompts on the device from a counter-based RNG (Philox4x32-10 keyed
 * by the run's data RNG and the step): the same distributions as ltf_task_sample but another
 * stream, so a GPU run sees other prompts than a CPU run of the same seed; xs and ys are not
 * written then. ltf_evaluate draws on the host as always (the same test prompts as the CPU and
 * the baselines) and predicts on the GPU.
 * While a model is on the GPU, m->params, grads, adam_m and adam_v on the host are stale until
 * ltf_model_sync_host or ltf_model_to_cpu (ltf_checkpoint_save syncs by itself); change them
 * on the host only before ltf_model_to_gpu. ltf_model_free frees the device memory too.
 * Without LOOPED_TF_CUDA, ltf_gpu_available and ltf_model_to_gpu return -1 and say so. */
int ltf_gpu_available(char msg[LTF_ERR_LEN]);                        /* msg: the device, or why none */
int ltf_model_to_gpu(ltf_model *m, char err[LTF_ERR_LEN]);           /* 0, or -1 and m stays on the CPU */
int ltf_model_sync_host(const ltf_model *m, char err[LTF_ERR_LEN]);  /* host copies current; stays on GPU */
int ltf_model_to_cpu(ltf_model *m, char err[LTF_ERR_LEN]);           /* sync, then free the device state */
/* The GPU's matrix multiplies (the Linear layers; attention, LayerNorm, softmax, GELU, the
 * residual stream, the loss and Adam stay float32): "fp32" (the default; what the exact tests
 * run), "tf32" or "bf16": tensor cores on operands rounded to TF32 / bfloat16, accumulating in
 * float32 (looped_tf_cuda.cu [4] states the error bound). For every model on the GPU. */
int ltf_gpu_set_precision(const char *mode, char err[LTF_ERR_LEN]);
/* Time per kernel from CUDA events: ltf_gpu_profile(1, err) clears and starts recording (steps
 * then run without graphs), (0, err) stops. ltf_gpu_profile_read waits for the GPU, fills up to
 * cap phases (kernel name, launches, milliseconds; most time first) and returns their count. */
typedef struct { const char *name; long launches; double ms; } ltf_gpu_phase;
int ltf_gpu_profile(int on, char err[LTF_ERR_LEN]);
int ltf_gpu_profile_read(ltf_gpu_phase *phases, int cap, char err[LTF_ERR_LEN]);
long ltf_gpu_launches(void);   /* kernels and memsets queued since the program started (0 without CUDA) */


#ifdef __cplusplus
}
#endif
#endif /* LOOPED_TF_H */

/* ############################################################################################
 * ##########################            IMPLEMENTATION            ############################
 * ############################################################################################ */
#ifdef LOOPED_TF_IMPLEMENTATION
#ifndef LOOPED_TF_IMPLEMENTATION_DONE
#define LOOPED_TF_IMPLEMENTATION_DONE

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <errno.h>
#include <time.h>     /* clock: the op profile's clock without OpenMP */
#if defined(_POSIX_C_SOURCE) && _POSIX_C_SOURCE >= 200112L
#include <unistd.h>   /* fsync */
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#ifndef LTF_MALLOC
#define LTF_MALLOC(n) malloc(n)
#define LTF_FREE(p) free(p)
#endif
#ifndef LTF_ASSERT
#include <assert.h>
#define LTF_ASSERT(x) assert(x)
#endif

#ifndef LTF_NO_STB_DS_IMPLEMENTATION
#define STB_DS_IMPLEMENTATION
#if defined(LTF_REALLOC) && !defined(STBDS_REALLOC) && !defined(INCLUDE_STB_DS_H)
#define STBDS_REALLOC(context, p, n) LTF_REALLOC(p, n)   /* stb_ds through the LTF_ hooks */
#define STBDS_FREE(context, p) LTF_FREE(p)
#endif
#endif
#include <stb/stb_ds.h>

#if defined(LOOPED_TF_CUDA) && !defined(__CUDACC__) && !defined(LTF_CUDA_EMU)
#error "LOOPED_TF_CUDA: compile the file that defines LOOPED_TF_IMPLEMENTATION with nvcc (-x cu)"
#endif
#ifdef __CUDACC__
#define LTF__HD __host__ __device__   /* a helper the GPU kernels share with the CPU code */
#else
#define LTF__HD
#endif

#ifdef __cplusplus
extern "C" {
#endif

static int ltf__fail(char *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (err) vsnprintf(err, LTF_ERR_LEN, fmt, ap);
    va_end(ap);
    return -1;
}

/* ============================== [1] config ============================== */

void ltf_config_default(ltf_config *c) {
    memset(c, 0, sizeof *c);
    c->n_dims = 5; c->n_positions = 11;
    c->n_embd = 64; c->n_head = 4; c->n_layer = 1;
    c->kind = LTF_LOOPED; c->n_loops = 10; c->loop_window = 5;
    c->mask_mode = LTF_MASK_NONE; c->mask_pairs = 0; c->mask_when = LTF_AT_BOTH;
    c->loop_func = LTF_LOOP_ADD; c->inject_every_block = 0; c->no_pos_emb = 0;
}

/* the variants of §12 that a config may combine */
static int ltf__variants_check(const ltf_config *c, char *err) {
    if (c->loop_func != LTF_LOOP_ADD && c->loop_func != LTF_LOOP_MUL)
        return ltf__fail(err, "loop_func = %d: must be %d (add) or %d (mul)", c->loop_func, LTF_LOOP_ADD, LTF_LOOP_MUL);
    if (c->loop_func == LTF_LOOP_MUL && c->kind != LTF_LOOPED)
        return ltf__fail(err, "loop_func mul needs the looped model: only it carries a state to multiply");
    if (c->loop_func == LTF_LOOP_MUL && c->mask_mode != LTF_MASK_NONE)
        return ltf__fail(err, "loop_func mul with a state mask: the mask is defined for u = mask(Y) + E only");
    if (c->inject_every_block != 0 && c->inject_every_block != 1)
        return ltf__fail(err, "inject_every_block = %d: must be 0 or 1", c->inject_every_block);
    if (c->inject_every_block && c->kind != LTF_STANDARD)
        return ltf__fail(err, "inject_every_block needs the standard model (the looped one injects E every iteration)");
    if (c->no_pos_emb != 0 && c->no_pos_emb != 1)
        return ltf__fail(err, "no_pos_emb = %d: must be 0 or 1", c->no_pos_emb);
    if (c->n_classes != 0 && (c->n_classes < 2 || c->n_classes > LTF_MAX_CLASSES))
        return ltf__fail(err, "n_classes = %d: must be 0 (regression) or 2..%d", c->n_classes, LTF_MAX_CLASSES);
    return 0;
}

int ltf_config_check(const ltf_config *c, char err[LTF_ERR_LEN]) {
    if (c->n_dims < 1 || c->n_dims > LTF_MAX_DIMS)
        return ltf__fail(err, "n_dims (d) = %d: must be in 1..%d", c->n_dims, LTF_MAX_DIMS);
    if (c->n_positions < 1 || c->n_positions > 100000)
        return ltf__fail(err, "n_positions = %d: must be in 1..100000", c->n_positions);
    if (c->n_embd < 1 || c->n_embd > 65536)
        return ltf__fail(err, "n_embd (C) = %d: must be in 1..65536", c->n_embd);
    if (c->n_head < 1 || c->n_head > c->n_embd)
        return ltf__fail(err, "n_head (H) = %d: must be in 1..n_embd (%d)", c->n_head, c->n_embd);
    if (c->n_embd % c->n_head != 0)
        return ltf__fail(err, "n_embd (C) = %d is not divisible by n_head (H) = %d", c->n_embd, c->n_head);
    if (c->n_layer < 1 || c->n_layer > LTF_MAX_LAYERS)
        return ltf__fail(err, "n_layer (L) = %d: must be in 1..%d", c->n_layer, LTF_MAX_LAYERS);
    if (c->kind != LTF_STANDARD && c->kind != LTF_LOOPED && c->kind != LTF_TIED)
        return ltf__fail(err, "kind = %d: must be %d (standard), %d (looped) or %d (tied)", c->kind, LTF_STANDARD,
                         LTF_LOOPED, LTF_TIED);
    if (c->kind == LTF_TIED) {
        if (c->n_loops < 1 || c->n_loops > 1000)
            return ltf__fail(err, "n_loops = %d applications of the tied block: must be in 1..1000", c->n_loops);
        if (c->loop_window != c->n_loops)
            return ltf__fail(err, "tied model: loop_window = %d must equal n_loops = %d (the gradient passes "
                             "through every application)", c->loop_window, c->n_loops);
    }
    if (c->kind == LTF_LOOPED) {
        if (c->n_loops < 1 || c->n_loops > 100000)
            return ltf__fail(err, "n_loops (b) = %d: must be in 1..100000", c->n_loops);
        if (c->loop_window < 1)
            return ltf__fail(err, "loop_window (T) = %d: must be at least 1", c->loop_window);
        if (c->loop_window > c->n_loops)
            return ltf__fail(err, "loop_window (T) = %d is larger than n_loops (b) = %d: need T <= b",
                             c->loop_window, c->n_loops);
    }
    if (c->mask_mode < LTF_MASK_NONE || c->mask_mode > LTF_MASK_KEEP_FIRST)
        return ltf__fail(err, "mask_mode = %d: must be 0 (none), 1 (keep last) or 2 (keep first)", c->mask_mode);
    if (c->mask_mode != LTF_MASK_NONE) {
        if (c->kind != LTF_LOOPED)
            return ltf__fail(err, "a state mask needs the looped model: the %s model carries no masked state",
                             c->kind == LTF_TIED ? "tied" : "standard");
        if (c->mask_pairs < 1 || c->mask_pairs > c->n_positions)
            return ltf__fail(err, "mask_pairs (N) = %d: must be in 1..n_positions (%d)", c->mask_pairs, c->n_positions);
        if (c->mask_when < LTF_AT_TRAIN || c->mask_when > LTF_AT_BOTH)
            return ltf__fail(err, "mask_when = %d: must be 1 (train), 2 (eval) or 3 (both)", c->mask_when);
    }
    return ltf__variants_check(c, err);
}

void ltf_train_config_default(ltf_train_config *t) {
    t->batch_size = 64; t->n_points = 11;
    t->lr = 1e-3f; t->beta1 = 0.9f; t->beta2 = 0.999f; t->eps = 1e-8f; t->weight_decay = 0.0f;
}

int ltf_train_config_check(const ltf_train_config *t, const ltf_config *c, char err[LTF_ERR_LEN]) {
    if (t->batch_size < 1 || t->batch_size > 1000000)
        return ltf__fail(err, "batch_size = %d: must be in 1..1000000", t->batch_size);
    if (t->n_points < 1 || t->n_points > c->n_positions)
        return ltf__fail(err, "n_points = %d: must be in 1..n_positions (%d)", t->n_points, c->n_positions);
    if (!(t->lr > 0.0f) || !isfinite(t->lr))
        return ltf__fail(err, "lr = %g: must be a finite number > 0", (double)t->lr);
    if (!(t->beta1 >= 0.0f && t->beta1 < 1.0f))
        return ltf__fail(err, "beta1 = %g: must be in [0, 1)", (double)t->beta1);
    if (!(t->beta2 >= 0.0f && t->beta2 < 1.0f))
        return ltf__fail(err, "beta2 = %g: must be in [0, 1)", (double)t->beta2);
    if (!(t->eps > 0.0f) || !isfinite(t->eps))
        return ltf__fail(err, "eps = %g: must be a finite number > 0", (double)t->eps);
    if (!(t->weight_decay >= 0.0f) || !isfinite(t->weight_decay))
        return ltf__fail(err, "weight_decay = %g: must be a finite number >= 0", (double)t->weight_decay);
    return 0;
}

/* ============================== [2] rng ==============================
 * PCG32 (O'Neill 2014): 64-bit LCG state, xorshift + random rotation output. Integer-only,
 * so the same seed gives the same bits on every machine and compiler. */

uint32_t ltf_rng_u32(ltf_rng *r) {
    uint64_t old = r->state;
    r->state = old * 6364136223846793005ULL + r->inc;
    uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = (uint32_t)(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((32u - rot) & 31u));
}

void ltf_rng_seed(ltf_rng *r, uint64_t seed) {
    r->state = 0u;
    r->inc = (seed << 1u) | 1u;
    ltf_rng_u32(r);
    r->state += seed ^ 0x853c49e6748fea9bULL;
    ltf_rng_u32(r);
}

double ltf_rng_uniform(ltf_rng *r) {
    uint64_t hi = ltf_rng_u32(r) >> 5, lo = ltf_rng_u32(r) >> 6;   /* 27 + 26 = 53 bits */
    return (double)(hi * 67108864u + lo) / 9007199254740992.0;
}

double ltf_rng_normal(ltf_rng *r) {
    /* Box-Muller: u1 in (0, 1] so log(u1) is finite */
    double u1 = 1.0 - ltf_rng_uniform(r), u2 = ltf_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* splitmix64's finalizer (Steele, Lea, Flood 2014): a bijective 64-bit mix */
static uint64_t ltf__mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
/* The counter key of training step `step` for a backend that draws its own batches
 * (ltf_backend.sample): a function of the run's data RNG r, which such a run never advances,
 * so a resumed run gets the same keys. */
static uint64_t ltf__step_key(const ltf_rng *r, long step) {
    return ltf__mix64(ltf__mix64(r->state ^ ltf__mix64(r->inc)) + (uint64_t)step);
}

/* ============================== [3] model and parameter table ==============================
 * The parameter buffer holds the tensors in the order of the paper's PyTorch state_dict, each
 * under its PyTorch name, so a checkpoint maps one-to-one onto TransformerModel(Looped). */

static float *ltf__add_tensor(ltf_model *m, float *base, size_t *cursor, const char *name, int d0, int d1) {
    ltf_tensor t;
    memset(&t, 0, sizeof t);
    t.offset = *cursor;
    t.ndim = d1 > 0 ? 2 : 1;
    t.shape[0] = d0; t.shape[1] = d1 > 0 ? d1 : 0;
    t.size = (size_t)d0 * (size_t)(d1 > 0 ? d1 : 1);
    *cursor += t.size;
    if (m) shputs(m->tensors, (t.key = (char *)name, t));
    return base ? base + t.offset : NULL;
}

/* Walks the tensor list once. With m == NULL only counts floats (the return value); with m set
 * it also fills the name table and the views `w` (into base). */
static size_t ltf__layout(ltf_model *m, const ltf_config *c, float *base, ltf_weights *w) {
    size_t cur = 0;
    int C = c->n_embd, L = c->n_layer;
    char name[128];
    ltf_weights tmp;
    if (!w) w = &tmp;
    w->read_in_w = ltf__add_tensor(m, base, &cur, "_read_in.weight", C, c->n_dims);
    w->read_in_b = ltf__add_tensor(m, base, &cur, "_read_in.bias", C, 0);
    w->wpe = ltf__add_tensor(m, base, &cur, "_backbone.transformer.wpe.weight", 2 * c->n_positions + 1, C);
    for (int l = 0; l < L; l++) {
        ltf_block *bl = &w->h[l];
#define LTF__T(field, suffix, d0, d1) \
        snprintf(name, sizeof name, "_backbone.transformer.h.%d.%s", l, suffix); \
        bl->field = ltf__add_tensor(m, base, &cur, name, d0, d1);
        LTF__T(ln1_w, "ln_1.weight", C, 0)
        LTF__T(ln1_b, "ln_1.bias", C, 0)
        LTF__T(qkv_w, "attn.c_attn.weight", 3 * C, C)
        LTF__T(qkv_b, "attn.c_attn.bias", 3 * C, 0)
        LTF__T(proj_w, "attn.c_proj.weight", C, C)
        LTF__T(proj_b, "attn.c_proj.bias", C, 0)
        LTF__T(ln2_w, "ln_2.weight", C, 0)
        LTF__T(ln2_b, "ln_2.bias", C, 0)
        LTF__T(fc_w, "mlp.c_fc.weight", 4 * C, C)
        LTF__T(fc_b, "mlp.c_fc.bias", 4 * C, 0)
        LTF__T(fcp_w, "mlp.c_proj.weight", C, 4 * C)
        LTF__T(fcp_b, "mlp.c_proj.bias", C, 0)
#undef LTF__T
    }
    w->lnf_w = ltf__add_tensor(m, base, &cur, "_backbone.transformer.ln_f.weight", C, 0);
    w->lnf_b = ltf__add_tensor(m, base, &cur, "_backbone.transformer.ln_f.bias", C, 0);
    int outs = c->n_classes ? c->n_classes : 1;   /* §13: K class logits */
    w->read_out_w = ltf__add_tensor(m, base, &cur, "_read_out.weight", outs, C);
    w->read_out_b = ltf__add_tensor(m, base, &cur, "_read_out.bias", outs, 0);
    return cur;
}

/* Rebases a weights view built on `from` onto another buffer of the same layout. */
static void ltf__rebase(ltf_weights *dst, const ltf_weights *src, const float *from, float *to, int L) {
#define LTF__RB(f) dst->f = src->f ? to + (src->f - from) : NULL
    LTF__RB(read_in_w); LTF__RB(read_in_b); LTF__RB(wpe);
    for (int l = 0; l < L; l++) {
        LTF__RB(h[l].ln1_w); LTF__RB(h[l].ln1_b); LTF__RB(h[l].qkv_w); LTF__RB(h[l].qkv_b);
        LTF__RB(h[l].proj_w); LTF__RB(h[l].proj_b); LTF__RB(h[l].ln2_w); LTF__RB(h[l].ln2_b);
        LTF__RB(h[l].fc_w); LTF__RB(h[l].fc_b); LTF__RB(h[l].fcp_w); LTF__RB(h[l].fcp_b);
    }
    LTF__RB(lnf_w); LTF__RB(lnf_b); LTF__RB(read_out_w); LTF__RB(read_out_b);
#undef LTF__RB
}

/* Every view starts at a multiple of LTF__ALIGN floats (256 bytes) from its buffer's base, so
 * a device kernel may load it with vector or asynchronous loads. */
#define LTF__ALIGN 64
static size_t ltf__pad(size_t n) { return (n + LTF__ALIGN - 1) / LTF__ALIGN * LTF__ALIGN; }

static void *ltf__calloc_floats(size_t n) {
    if (n > (size_t)-1 / sizeof(float)) return NULL;
    void *p = LTF_MALLOC(n * sizeof(float) + 1);
    if (p) memset(p, 0, n * sizeof(float));
    return p;
}

static void ltf__fill_normal(ltf_rng *r, float *p, size_t n, double std) {
    for (size_t i = 0; i < n; i++) p[i] = (float)(std * ltf_rng_normal(r));
}
static void ltf__fill_uniform(ltf_rng *r, float *p, size_t n, double bound) {
    for (size_t i = 0; i < n; i++) p[i] = (float)(bound * (2.0 * ltf_rng_uniform(r) - 1.0));
}
static void ltf__fill_const(float *p, size_t n, float v) {
    for (size_t i = 0; i < n; i++) p[i] = v;
}

/* §5. Backbone Linear weights N(0, 0.02), biases 0, wpe N(0, 0.02), LayerNorm 1 and 0; both
 * c_proj weights N(0, 0.02/sqrt(2L)) (GPT-2's scaled residual init). read_in and read_out keep
 * PyTorch's default Linear init U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias. */
void ltf_model_init_weights(ltf_model *m, uint64_t seed) {
    const ltf_config *c = &m->cfg;
    ltf_weights *w = &m->w;
    ltf_rng r;
    size_t C = (size_t)c->n_embd;
    double in_bound = 1.0 / sqrt((double)c->n_dims), out_bound = 1.0 / sqrt((double)C);
    double proj_std = 0.02 / sqrt(2.0 * c->n_layer);
    ltf_rng_seed(&r, seed);
    ltf__fill_uniform(&r, w->read_in_w, C * c->n_dims, in_bound);
    ltf__fill_uniform(&r, w->read_in_b, C, in_bound);
    ltf__fill_normal(&r, w->wpe, (size_t)(2 * c->n_positions + 1) * C, 0.02);
    for (int l = 0; l < c->n_layer; l++) {
        ltf_block *bl = &w->h[l];
        ltf__fill_const(bl->ln1_w, C, 1.0f); ltf__fill_const(bl->ln1_b, C, 0.0f);
        ltf__fill_normal(&r, bl->qkv_w, 3 * C * C, 0.02); ltf__fill_const(bl->qkv_b, 3 * C, 0.0f);
        ltf__fill_normal(&r, bl->proj_w, C * C, proj_std); ltf__fill_const(bl->proj_b, C, 0.0f);
        ltf__fill_const(bl->ln2_w, C, 1.0f); ltf__fill_const(bl->ln2_b, C, 0.0f);
        ltf__fill_normal(&r, bl->fc_w, 4 * C * C, 0.02); ltf__fill_const(bl->fc_b, 4 * C, 0.0f);
        ltf__fill_normal(&r, bl->fcp_w, 4 * C * C, proj_std); ltf__fill_const(bl->fcp_b, C, 0.0f);
    }
    ltf__fill_const(w->lnf_w, C, 1.0f); ltf__fill_const(w->lnf_b, C, 0.0f);
    int outs = m->cfg.n_classes ? m->cfg.n_classes : 1;   /* §13: K rows */
    ltf__fill_uniform(&r, w->read_out_w, (size_t)outs * C, out_bound);
    ltf__fill_uniform(&r, w->read_out_b, (size_t)outs, out_bound);
}

/* [6]: the store of the model's numbers on a backend */
static const ltf_backend *ltf__cpu(void);
static int ltf__use_backend(ltf_model *m, const ltf_backend *be, char *err);
static void ltf__store_free(ltf_model *m);

int ltf_model_create(ltf_model *m, const ltf_config *c, uint64_t seed, char err[LTF_ERR_LEN]) {
    memset(m, 0, sizeof *m);
    if (ltf_config_check(c, err) != 0) return -1;
    m->cfg = *c;
    m->n_params = ltf__layout(NULL, c, NULL, NULL);
    size_t n = m->n_params;
    m->params = (float *)ltf__calloc_floats(n);
    m->grads = (float *)ltf__calloc_floats(n);
    m->adam_m = (float *)ltf__calloc_floats(n);
    m->adam_v = (float *)ltf__calloc_floats(n);
    if (!m->params || !m->grads || !m->adam_m || !m->adam_v) {
        ltf_model_free(m);
        return ltf__fail(err, "out of memory: the model needs 4 x %zu floats (%.1f MB)", n, 16.0 * n / 1e6);
    }
    sh_new_strdup(m->tensors);
    ltf__layout(m, c, m->params, &m->w);
    ltf__rebase(&m->g, &m->w, m->params, m->grads, c->n_layer);
    ltf_model_init_weights(m, seed);
    if (ltf__use_backend(m, ltf__cpu(), err) != 0) {   /* [6]: the ops run on the CPU */
        ltf_model_free(m);
        return -1;
    }
    return 0;
}

void ltf_model_free(ltf_model *m) {
    ltf__store_free(m);
    LTF_FREE(m->params); LTF_FREE(m->grads); LTF_FREE(m->adam_m); LTF_FREE(m->adam_v);
    if (m->tensors) shfree(m->tensors);
    memset(m, 0, sizeof *m);
}

const char *ltf_model_backend(const ltf_model *m) { return m->backend ? m->backend->name : "none"; }

ltf_tensor *ltf_model_find(ltf_model *m, const char *name) {
    ptrdiff_t i = shgeti(m->tensors, name);
    return i < 0 ? NULL : &m->tensors[i];
}

size_t ltf_model_num_params(const ltf_model *m) { return m->n_params; }

/* Index of the first non-finite float of p[n], or n when all are finite. */
static size_t ltf__first_nonfinite(const float *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(p[i])) return i;
    return n;
}

/* PyTorch name of the tensor that holds float i of the parameter layout ("?" past the end). */
static const char *ltf__tensor_at(const ltf_model *m, size_t i) {
    for (ptrdiff_t k = 0; k < shlen(m->tensors); k++)
        if (i >= m->tensors[k].offset && i < m->tensors[k].offset + m->tensors[k].size) return m->tensors[k].key;
    return "?";
}

size_t ltf_model_bytes(const ltf_model *m) {   /* host memory, plus the backend's */
    const ltf_store *store = &m->run;
    size_t floats = 4 * m->n_params + store->act_floats + store->work_floats + store->cap_points * (size_t)(m->cfg.n_dims + 1)
                  + store->cap_preds + (m->backend && !m->backend->host_memory ? 4 * ltf__pad(m->n_params) : 0);
    return floats * sizeof(float) + sizeof(ltf_stats);
}

/* ============================== [4] matrix multiply ==============================
 * Every Linear of the model is one call of
 *     Cm[M, N] += A[M, K] . B[K, N]
 * where A and B are read through (row, column) strides, so a transposed operand costs nothing
 * to describe: forward uses B = W^T (b_row = 1, b_col = C), the weight gradient A = dout^T.
 *
 * ltf_gemm_plain is the readable definition: a triple loop. ltf_gemm is the fast one, and the
 * tests hold it to the plain one on every shape and transposition. It does the same sums in
 * the order the hardware likes (the GotoBLAS/BLIS scheme):
 *   - The threads split Cm into slices of rows (or of columns, when Cm is wider than tall, as
 *     for weight gradients like dW_fcp [C, 4C]); each thread runs ltf__gemm_block on its slice.
 *   - K is walked in blocks of KC and N in blocks of NC. B is copied ("packed") block by block
 *     into a contiguous, zero-padded buffer on the stack, in NR-wide panels [KC][NR] (W^T in
 *     forward through 8 x 8 transposes in registers). A is read in place, or packed MR rows at
 *     a time into [KC][MR] where a tile would read past its edge and where it is read across
 *     its rows (dout^T in the weight gradient) for at least 128 columns of Cm: the copy costs
 *     about as much as 128 columns' multiply-adds save (measured, weight gradients: in place
 *     16% faster at 64 columns, 12% slower at 256). Row-major B read in place, as version
 *     0.2.0 did, made the backward multiplies take a third longer at the report's shapes (one
 *     thread): its kc rows, 1 or 4 KB apart, fall into a few L1 sets and evict each other. It
 *     stays in place only where few row strips read it (M <= 4 MR: attention's per-head
 *     products), so the copy would not pay.
 *   - The micro-kernel holds an MR x NR tile of Cm in vector registers while k runs over the
 *     block: per k, NV vector loads of B and MR broadcasts of A, MR * NV fused multiply-adds
 *     of whole vectors. The tile is then added to Cm. A tile at the ragged right edge runs
 *     only the vectors it needs (attention's heads are 16 or 32 columns wide).
 * The kernel's vectors are chosen at compile time: AVX-512 (16 floats; MR = 6, NR = 64, 24
 * accumulators of the 32 registers), AVX2 + FMA (8 floats; MR = 6, NR = 16, 12 of 16), else
 * plain C the compiler vectorizes as it can. Every element of Cm is summed the same way
 * (per KC block: acc = 0, acc += a_k b_k for k in order, Cm += acc) however the threads split
 * the work, so the result is bit-identical on 1 or many threads.
 *
 * bf16 mode (ltf_cpu_set_precision; the Linear layers only): both operands are packed, and each
 * packed block rounded to bfloat16 (ltf__bf16_round) before the same kernel runs on it. A
 * product of two bf16 numbers has at most 16 significant bits, so it is exact in float32 and a
 * fused multiply-add rounds exactly as a multiply then an add: the AVX-512, AVX2 and plain-C
 * kernels give the same bits, and so does the test's triple loop over rounded operands (summed
 * per KC block as above). Rounding, not truncation: the error of an element is at most
 * (2u + u^2 + K 2^-24) sum_k |a_ik b_kj| with u = 2^-8, and has no bias. This mode computes what
 * a bf16 multiply computes; it is not faster here (the kernel still does float32 FMAs; the
 * AVX-512 BF16 dot product, two products per float lane, is not used). */

#if defined(__AVX512F__)
#include <immintrin.h>
#define LTF__VL 16                                        /* floats per vector */
typedef __m512 ltf__vec;
#define ltf__vload(p) _mm512_loadu_ps(p)
#define ltf__vstore(p, v) _mm512_storeu_ps(p, v)
#define ltf__vset1(x) _mm512_set1_ps(x)
#define ltf__vzero() _mm512_setzero_ps()
#define ltf__vfma(a, b, c) _mm512_fmadd_ps(a, b, c)       /* a * b + c, one rounding */
#define ltf__vadd(a, b) _mm512_add_ps(a, b)
#define LTF__MR 6
#define LTF__NV 4     /* vectors per tile row: 6 x 4 = 24 accumulators of the 32 registers */
#define LTF__SIMD
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define LTF__VL 8
typedef __m256 ltf__vec;
#define ltf__vload(p) _mm256_loadu_ps(p)
#define ltf__vstore(p, v) _mm256_storeu_ps(p, v)
#define ltf__vset1(x) _mm256_set1_ps(x)
#define ltf__vzero() _mm256_setzero_ps()
#define ltf__vfma(a, b, c) _mm256_fmadd_ps(a, b, c)
#define ltf__vadd(a, b) _mm256_add_ps(a, b)
#define LTF__MR 6
#define LTF__NV 2     /* 6 x 2 = 12 accumulators of the 16 registers */
#define LTF__SIMD
#else
#define LTF__MR 4     /* portable: plain C the compiler vectorizes as it can */
#define LTF__VL 8
#define LTF__NV 4
#endif
#define LTF__NR (LTF__NV * LTF__VL)
#define LTF__KC 128
#define LTF__NC 256   /* the packed B block, KC * NC floats = 128 KB, lives on the stack */

/* bfloat16 = the top 16 bits of a float32 (sign, 8 exponent bits, 7 mantissa bits). x rounded
 * to it, to nearest with ties to even, returned as the float32 it equals: adding 0x7fff (+1 when
 * the kept part is odd) carries into bit 16 exactly when the dropped half is above (or at, for
 * odd) one half. Infinities stay, a value past bf16's largest rounds to infinity, NaN stays NaN
 * (quieted first, so that the carry cannot turn it into infinity). */
static inline LTF__HD float ltf__bf16_round(float x) {
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    if ((b & 0x7fffffffu) > 0x7f800000u) b |= 0x00400000u;
    else b += 0x7fffu + ((b >> 16) & 1u);
    b &= 0xffff0000u;
    memcpy(&x, &b, sizeof x);
    return x;
}
static void ltf__bf16_round_all(float *p, size_t n) {
    for (size_t i = 0; i < n; i++) p[i] = ltf__bf16_round(p[i]);
}

static int ltf__cpu_prec;   /* 0: fp32, 1: bf16 (ltf_cpu_set_precision) */
int ltf_cpu_precision(void) { return ltf__cpu_prec; }
int ltf_cpu_set_precision(const char *mode, char err[LTF_ERR_LEN]) {
    if (mode && strcmp(mode, "fp32") == 0) ltf__cpu_prec = 0;
    else if (mode && strcmp(mode, "bf16") == 0) ltf__cpu_prec = 1;
    else return ltf__fail(err, "CPU precision '%s' is not allowed: use fp32 or bf16", mode ? mode : "(null)");
    return 0;
}

void ltf_gemm_plain(int M, int N, int K, const float *A, ptrdiff_t a_row, ptrdiff_t a_col,
                    const float *B, ptrdiff_t b_row, ptrdiff_t b_col, float *Cm, ptrdiff_t ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float s = 0.0f;
            for (int k = 0; k < K; k++) s += A[i * a_row + k * a_col] * B[k * b_row + j * b_col];
            Cm[i * ldc + j] += s;
        }
}

/* Cm[0..mr, 0..nr] += A . B over kc, where A[r, k] = Ap[r * ar + k * ak] and B[k, j] =
 * Bp[k * bk + j]: a packed, zero-padded A has ar = 1, ak = MR, a full tile of A read in place
 * ar = a_row, ak = a_col; a packed B panel has bk = its padded width, B read in place bk =
 * b_row. nv: the vectors of B the tile needs (nr <= nv * VL). set = 1: Cm = bias + A . B
 * instead (bias [nr], or zeros when NULL): a forward Linear's first K block, which saves
 * writing the bias into Cm in a pass of its own. */
static inline void ltf__gemm_tile(int kc, const float *Ap, ptrdiff_t ar, ptrdiff_t ak, const float *Bp,
                                  ptrdiff_t bk, float *Cm, ptrdiff_t ldc, int mr, int nr, int set,
                                  const float *bias, const int nv) {
#ifdef LTF__SIMD
    ltf__vec acc[LTF__MR][LTF__NV];
    for (int r = 0; r < LTF__MR; r++)
        for (int v = 0; v < nv; v++) acc[r][v] = ltf__vzero();
    for (int k = 0; k < kc; k++) {
        ltf__vec b[LTF__NV];
        for (int v = 0; v < nv; v++) b[v] = ltf__vload(Bp + k * bk + v * LTF__VL);
        for (int r = 0; r < LTF__MR; r++) {
            ltf__vec a = ltf__vset1(Ap[r * ar + k * ak]);
            for (int v = 0; v < nv; v++) acc[r][v] = ltf__vfma(a, b[v], acc[r][v]);
        }
    }
    if (nr == nv * LTF__VL) {
        for (int r = 0; r < mr; r++)
            for (int v = 0; v < nv; v++) {
                float *c = Cm + r * ldc + v * LTF__VL;
                ltf__vec c0 = !set ? ltf__vload(c) : bias ? ltf__vload(bias + v * LTF__VL) : ltf__vzero();
                ltf__vstore(c, ltf__vadd(c0, acc[r][v]));
            }
        return;
    }
    float t[LTF__MR][LTF__NR];   /* a ragged edge: through memory */
    for (int r = 0; r < LTF__MR; r++)
        for (int v = 0; v < nv; v++) ltf__vstore(t[r] + v * LTF__VL, acc[r][v]);
#else
    float t[LTF__MR][LTF__NR] = {{0}};
    for (int k = 0; k < kc; k++)
        for (int r = 0; r < LTF__MR; r++) {
            float a = Ap[r * ar + k * ak];
            for (int j = 0; j < nv * LTF__VL; j++) t[r][j] += a * Bp[k * bk + j];
        }
#endif
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++)
            Cm[r * ldc + j] = (!set ? Cm[r * ldc + j] : bias ? bias[j] : 0.0f) + t[r][j];
}

/* The tile of width nr, with nv a constant in each call so the compiler unrolls it fully */
static void ltf__gemm_micro(int kc, const float *Ap, ptrdiff_t ar, ptrdiff_t ak, const float *Bp, ptrdiff_t bk,
                            float *Cm, ptrdiff_t ldc, int mr, int nr, int set, const float *bias) {
    switch ((nr + LTF__VL - 1) / LTF__VL) {
    case 1: ltf__gemm_tile(kc, Ap, ar, ak, Bp, bk, Cm, ldc, mr, nr, set, bias, 1); break;
#if LTF__NV > 2
    case 2: ltf__gemm_tile(kc, Ap, ar, ak, Bp, bk, Cm, ldc, mr, nr, set, bias, 2); break;
    case 3: ltf__gemm_tile(kc, Ap, ar, ak, Bp, bk, Cm, ldc, mr, nr, set, bias, 3); break;
#endif
    default: ltf__gemm_tile(kc, Ap, ar, ak, Bp, bk, Cm, ldc, mr, nr, set, bias, LTF__NV); break;
    }
}

/* B[kc0.., jc..] (kc x nc) into panels [kc][w] of NR columns, the last one w = its columns
 * rounded up to whole vectors, zero-padded. The loop that walks B's unit stride is innermost,
 * so a W^T operand (b_row = 1) is read along its rows. */
static int ltf__panel_width(int cols) { return cols < LTF__NR ? (cols + LTF__VL - 1) / LTF__VL * LTF__VL : LTF__NR; }

#if defined(__AVX2__)
/* dst[k * ldd + j] = src[j * ld + k] for j, k < 8: the 8 x 8 transpose of unpack, shuffle and
 * lane-permute steps (each output vector gathers one k from the 8 input rows) */
static inline void ltf__transpose8(const float *src, ptrdiff_t ld, float *dst, ptrdiff_t ldd) {
    __m256 r[8], t[8], u[8];
    for (int j = 0; j < 8; j++) r[j] = _mm256_loadu_ps(src + j * ld);
    for (int j = 0; j < 8; j += 2) {
        t[j] = _mm256_unpacklo_ps(r[j], r[j + 1]);      /* r0k0 r1k0 r0k1 r1k1 | r0k4 r1k4 r0k5 r1k5 */
        t[j + 1] = _mm256_unpackhi_ps(r[j], r[j + 1]);  /* k2, k3 | k6, k7 */
    }
    for (int j = 0; j < 8; j += 4) {
        u[j] = _mm256_shuffle_ps(t[j], t[j + 2], 0x44);       /* k0 of 4 rows | k4 */
        u[j + 1] = _mm256_shuffle_ps(t[j], t[j + 2], 0xEE);   /* k1 | k5 */
        u[j + 2] = _mm256_shuffle_ps(t[j + 1], t[j + 3], 0x44); /* k2 | k6 */
        u[j + 3] = _mm256_shuffle_ps(t[j + 1], t[j + 3], 0xEE); /* k3 | k7 */
    }
    for (int k = 0; k < 4; k++) {
        _mm256_storeu_ps(dst + k * ldd, _mm256_permute2f128_ps(u[k], u[k + 4], 0x20));
        _mm256_storeu_ps(dst + (k + 4) * ldd, _mm256_permute2f128_ps(u[k], u[k + 4], 0x31));
    }
}
#endif

static void ltf__gemm_pack_b(float *Bp, const float *B, ptrdiff_t b_row, ptrdiff_t b_col, int kc, int nc) {
    for (int jp = 0; jp < nc; jp += LTF__NR) {
        float *panel = Bp + (size_t)jp * kc;
        int w = nc - jp < LTF__NR ? nc - jp : LTF__NR, wp = ltf__panel_width(w);
        if (b_row == 1) {
            int j8 = 0, k8 = 0;
#if defined(__AVX2__)
            for (k8 = 0; k8 + 8 <= kc; k8 += 8)   /* 8 x 8 blocks transposed in registers */
                for (j8 = 0; j8 + 8 <= w; j8 += 8)
                    ltf__transpose8(B + k8 + (jp + j8) * b_col, b_col, panel + k8 * wp + j8, wp);
#endif
            for (int j = 0; j < w; j++)   /* what the blocks left: columns past j8, rows past k8 */
                for (int k = j < j8 ? k8 : 0; k < kc; k++) panel[k * wp + j] = B[k + (jp + j) * b_col];
        } else if (b_col == 1) {
            for (int k = 0; k < kc; k++)   /* unit stride, so it vectorizes (memcpy became rep movs) */
                for (int j = 0; j < w; j++) panel[k * wp + j] = B[k * b_row + jp + j];
        } else {
            for (int k = 0; k < kc; k++)
                for (int j = 0; j < w; j++) panel[k * wp + j] = B[k * b_row + (jp + j) * b_col];
        }
        for (int k = 0; w < wp && k < kc; k++)
            for (int j = w; j < wp; j++) panel[k * wp + j] = 0.0f;
    }
}

/* A[ir.., kc0..] (mr x kc) into [kc][MR], zero-padded past mr; same rule for the loop order */
static void ltf__gemm_pack_a(float *Ap, const float *A, ptrdiff_t a_row, ptrdiff_t a_col, int mr, int kc) {
    if (a_col == 1) {
        for (int r = 0; r < LTF__MR; r++)
            for (int k = 0; k < kc; k++) Ap[k * LTF__MR + r] = r < mr ? A[r * a_row + k] : 0.0f;
    } else {
        for (int k = 0; k < kc; k++)
            for (int r = 0; r < LTF__MR; r++) Ap[k * LTF__MR + r] = r < mr ? A[r * a_row + k * a_col] : 0.0f;
    }
}

/* One thread's share: Cm[0..M, 0..N] += A . B (the pointers already at the share's corner);
 * set = 1: Cm = bias + A . B (K >= 1). B is packed unless few row strips read it and its rows
 * are contiguous; A is packed at a ragged edge, and where its rows are not contiguous and Cm
 * has at least 128 columns; elsewhere read in place. */
static void ltf__gemm_block(int M, int N, int K, const float *A, ptrdiff_t a_row, ptrdiff_t a_col,
                            const float *B, ptrdiff_t b_row, ptrdiff_t b_col, float *Cm, ptrdiff_t ldc,
                            int set, const float *bias, int bf16) {
    float Bp[LTF__KC * LTF__NC];
    float Ap[LTF__KC * LTF__MR];
    int pack_b = bf16 || b_col != 1 || N % LTF__VL != 0 || M > 4 * LTF__MR;
    for (int jc = 0; jc < N; jc += LTF__NC) {
        int nc = N - jc < LTF__NC ? N - jc : LTF__NC;
        for (int kc0 = 0; kc0 < K; kc0 += LTF__KC) {
            int kc = K - kc0 < LTF__KC ? K - kc0 : LTF__KC;
            const float *Bk = B + kc0 * b_row + jc * b_col;
            if (pack_b) ltf__gemm_pack_b(Bp, Bk, b_row, b_col, kc, nc);
            if (bf16) ltf__bf16_round_all(Bp, (size_t)kc * ((nc + LTF__VL - 1) / LTF__VL * LTF__VL));
            for (int ir = 0; ir < M; ir += LTF__MR) {
                int mr = M - ir < LTF__MR ? M - ir : LTF__MR;
                const float *Ak = A + ir * a_row + kc0 * a_col;
                int pack_a = bf16 || mr < LTF__MR || (a_col != 1 && N >= 128);
                if (pack_a) ltf__gemm_pack_a(Ap, Ak, a_row, a_col, mr, kc);
                if (bf16) ltf__bf16_round_all(Ap, (size_t)kc * LTF__MR);
                for (int jp = 0; jp < nc; jp += LTF__NR) {
                    int nr = nc - jp < LTF__NR ? nc - jp : LTF__NR;
                    ltf__gemm_micro(kc, pack_a ? Ap : Ak, pack_a ? 1 : a_row, pack_a ? LTF__MR : a_col,
                                    pack_b ? Bp + (size_t)jp * kc : Bk + jp, pack_b ? ltf__panel_width(nr) : b_row,
                                    Cm + (ptrdiff_t)ir * ldc + jc + jp, ldc, mr, nr,
                                    set && kc0 == 0, bias ? bias + jc + jp : NULL);
                }
            }
        }
    }
}

/* The threaded driver: Cm += A . B, or with set = 1, Cm = bias + A . B; bf16 = 1: on the
 * operands rounded to bfloat16 */
static void ltf__gemm(int M, int N, int K, const float *A, ptrdiff_t a_row, ptrdiff_t a_col,
                      const float *B, ptrdiff_t b_row, ptrdiff_t b_col, float *Cm, ptrdiff_t ldc,
                      int set, const float *bias, int bf16) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {   /* an empty product: only the start value */
        for (int i = 0; set && i < M; i++)
            for (int j = 0; j < N; j++) Cm[(ptrdiff_t)i * ldc + j] = bias ? bias[j] : 0.0f;
        return;
    }
#ifdef _OPENMP
    int by_rows = M >= N;   /* split the longer side: measured faster for dW_fcp [C, 4C] */
    int tiles = by_rows ? (M + LTF__MR - 1) / LTF__MR : (N + LTF__NR - 1) / LTF__NR;
    if (2.0 * M * N * K > 2e5 && tiles >= 2) {
        #pragma omp parallel
        {
            int nt = omp_get_num_threads(), id = omp_get_thread_num();
            int t0 = (int)((long)tiles * id / nt), t1 = (int)((long)tiles * (id + 1) / nt);
            if (by_rows) {
                int i0 = t0 * LTF__MR, i1 = t1 * LTF__MR < M ? t1 * LTF__MR : M;
                if (i0 < i1) ltf__gemm_block(i1 - i0, N, K, A + i0 * a_row, a_row, a_col, B, b_row, b_col,
                                             Cm + (ptrdiff_t)i0 * ldc, ldc, set, bias, bf16);
            } else {
                int j0 = t0 * LTF__NR, j1 = t1 * LTF__NR < N ? t1 * LTF__NR : N;
                if (j0 < j1) ltf__gemm_block(M, j1 - j0, K, A, a_row, a_col, B + j0 * b_col, b_row, b_col,
                                             Cm + j0, ldc, set, bias ? bias + j0 : NULL, bf16);
            }
        }
        return;
    }
#endif
    ltf__gemm_block(M, N, K, A, a_row, a_col, B, b_row, b_col, Cm, ldc, set, bias, bf16);
}

void ltf_gemm(int M, int N, int K, const float *A, ptrdiff_t a_row, ptrdiff_t a_col,
              const float *B, ptrdiff_t b_row, ptrdiff_t b_col, float *Cm, ptrdiff_t ldc) {
    ltf__gemm(M, N, K, A, a_row, a_col, B, b_row, b_col, Cm, ldc, 0, NULL, 0);
}

/* ============================== [5] ops: forward and backward pairs ==============================
 * Each op takes raw pointers and sizes. Backward functions ADD into their gradient outputs
 * (dinp, dw, ...), so a tensor used twice simply receives both contributions. */

/* exp and tanh that the compiler can vectorize (libm's expf/tanhf are scalar calls, a quarter
 * of a training step here). exp(x) = 2^k e^r with k = round(x / ln 2), |r| <= ln(2)/2, e^r by
 * its degree-7 Taylor polynomial (truncation < 6e-9 relative on that range; ln 2 split in a high
 * and a low part so r is nearly exact), 2^k built in the float's exponent bits. Error ~1-2 ulp.
 * tanh(u) = 1 - 2 / (e^{2u} + 1): absolute error about 1e-7, all GELU needs.
 * ltf__expf_in_range takes x already clamped to [-87, 88] (ltf__exp_clamp): gcc 12 does not
 * vectorize a loop that computes with the result of a select under IEEE trapping rules, so the
 * hot loops clamp in one pass (the select stored) and take the exponential in a second. */
static inline LTF__HD float ltf__exp_clamp(float x) { return x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x); }
static inline LTF__HD float ltf__expf_in_range(float x) {
    /* j = x / ln 2 + 1.5 * 2^23 holds k = round(x / ln 2) in its low mantissa bits (needs strict
     * float semantics, no -ffast-math); k read from j's bits is not a float-to-int conversion, so
     * NaN needs no branch: NaN in, NaN out through r */
    float j = x * 1.44269504088896341f + 12582912.0f, k = j - 12582912.0f;
    float r = x - k * 0.693145751953125f - k * 1.42860682030941723212e-6f;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120
              + r * (1.0f / 720 + r * (1.0f / 5040)))))));
    uint32_t bits;
    memcpy(&bits, &j, sizeof bits);
    bits = (bits - 0x4B400000u + 127u) << 23;   /* 0x4B400000: the bits of 1.5 * 2^23 */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}
static inline LTF__HD float ltf__expf(float x) { return ltf__expf_in_range(ltf__exp_clamp(x)); }
static inline LTF__HD float ltf__tanhf(float u) {
    return 1.0f - 2.0f / (ltf__expf(2.0f * u) + 1.0f);
}

/* Threads: a loop over more than LTF__PAR_MIN floats is split across the threads (below that
 * the fork and join cost more than they save). A sum over rows (a bias or LayerNorm weight
 * gradient) is split by COLUMNS: each thread owns some columns and adds all rows into them in
 * row order, so every sum is taken in the same order as on one thread, bit for bit. */
#define LTF__PAR_MIN 32768
#define LTF__COLS 32   /* columns per task of a column-split sum */

/* acc[j] += sum_r x[r, j], the rows summed in order into a local sum (held in registers:
 * adding into acc itself would chain every row through a store and a load) */
static void ltf__sum_rows(float *acc, const float *x, int rows, size_t cols) {
    long tasks = (long)((cols + LTF__COLS - 1) / LTF__COLS);
    #pragma omp parallel for if ((size_t)rows * cols > LTF__PAR_MIN)
    for (long c = 0; c < tasks; c++) {
        size_t j0 = (size_t)c * LTF__COLS;
        int w = j0 + LTF__COLS < cols ? LTF__COLS : (int)(cols - j0);
        float sum[LTF__COLS] = {0};
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < w; j++) sum[j] += x[(size_t)r * cols + j0 + j];
        for (int j = 0; j < w; j++) acc[j0 + j] += sum[j];
    }
}

/* ---- the CPU ops' profile (ltf_cpu_profile): off, each op pays one test of a flag ---- */
enum { LTF__P_MM_FWD, LTF__P_MM_DINP, LTF__P_MM_DW, LTF__P_BIAS, LTF__P_ATT_FWD, LTF__P_ATT_BWD, LTF__P_LN_FWD,
       LTF__P_LN_BWD, LTF__P_GELU_FWD, LTF__P_GELU_BWD, LTF__P_ZERO, LTF__P_ADAM, LTF__P_COUNT };
static const char *const ltf__cpu_prof_names[LTF__P_COUNT] = {
    "matmul forward (+ bias)", "matmul backward: dinp", "matmul backward: dw", "matmul backward: dbias",
    "attention forward", "attention backward", "layernorm forward (+ residual)", "layernorm backward",
    "gelu forward", "gelu backward", "zero (gradient buffers)", "adam"};
static int ltf__cpu_prof_on;
static ltf_op_time ltf__cpu_prof[LTF__P_COUNT];

static double ltf__seconds(void) {
#ifdef _OPENMP
    return omp_get_wtime();
#else
    return (double)clock() / CLOCKS_PER_SEC;   /* one thread: its processor time is its wall time */
#endif
}
/* The time now when the profile is on and this is not inside a parallel region, else -1 */
static double ltf__cpu_prof_start(void) {
    if (!ltf__cpu_prof_on) return -1.0;   /* off: the one test an op pays */
#ifdef _OPENMP
    if (omp_in_parallel()) return -1.0;
#endif
    return ltf__seconds();
}
/* Adds the time since t0 (from ltf__cpu_prof_start; -1: not timed) to op id; returns the time now
 * (-1 when not timed), the start of the next op timed in the same function */
static double ltf__cpu_prof_stop(int id, double t0, double flop) {
    if (t0 < 0.0) return -1.0;
    double t = ltf__seconds();
    ltf__cpu_prof[id].calls++; ltf__cpu_prof[id].ms += 1e3 * (t - t0); ltf__cpu_prof[id].gflop += flop * 1e-9;
    return t;
}
void ltf_cpu_profile(int on) {
    if (on) memset(ltf__cpu_prof, 0, sizeof ltf__cpu_prof);
    ltf__cpu_prof_on = on != 0;
}
static int ltf__cpu_prof_cmp(const void *a, const void *b) {
    double x = ((const ltf_op_time *)a)->ms, y = ((const ltf_op_time *)b)->ms;
    return (x < y) - (x > y);
}
int ltf_cpu_profile_read(ltf_op_time *ops, int cap) {
    ltf_op_time all[LTF__P_COUNT];
    int n = 0;
    for (int i = 0; i < LTF__P_COUNT; i++)
        if (ltf__cpu_prof[i].calls) { all[n] = ltf__cpu_prof[i]; all[n++].name = ltf__cpu_prof_names[i]; }
    qsort(all, (size_t)n, sizeof all[0], ltf__cpu_prof_cmp);
    n = n < cap ? n : cap;
    for (int i = 0; i < n; i++) ops[i] = all[i];
    return n;
}

/* p[0..n) = 0, in one equal slice per thread for large n */
void ltf_zero(float *p, size_t n) {
    double t0 = ltf__cpu_prof_start();
    #pragma omp parallel if (n > LTF__PAR_MIN)
    {
        size_t i0 = 0, i1 = n;
#ifdef _OPENMP
        size_t nt = (size_t)omp_get_num_threads(), id = (size_t)omp_get_thread_num();
        i0 = n * id / nt; i1 = n * (id + 1) / nt;
#endif
        memset(p + i0, 0, (i1 - i0) * sizeof(float));
    }
    ltf__cpu_prof_stop(LTF__P_ZERO, t0, 0.0);
}

/* Linear (nn.Linear): out[r, o] = bias[o] + sum_i inp[r, i] * w[o, i]      w: [OC, C]
 * backward: dinp += dout . w      dw += dout^T . inp      dbias += sum_r dout[r, :]        */
void ltf_matmul_forward(float *out, const float *inp, const float *w, const float *bias, int BT, int C, int OC) {
    double t0 = ltf__cpu_prof_start();
    ltf__gemm(BT, OC, C, inp, C, 1, w, 1, C, out, OC, 1, bias, ltf__cpu_prec);   /* out = bias + inp . w^T */
    ltf__cpu_prof_stop(LTF__P_MM_FWD, t0, 2.0 * BT * C * OC);
}

void ltf_matmul_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                         const float *w, int BT, int C, int OC) {
    double t = ltf__cpu_prof_start(), flop = 2.0 * BT * C * OC;
    if (dinp) {
        ltf__gemm(BT, C, OC, dout, OC, 1, w, C, 1, dinp, C, 0, NULL, ltf__cpu_prec);
        t = ltf__cpu_prof_stop(LTF__P_MM_DINP, t, flop);
    }
    if (dw) {
        ltf__gemm(OC, C, BT, dout, 1, OC, inp, C, 1, dw, C, 0, NULL, ltf__cpu_prec);
        t = ltf__cpu_prof_stop(LTF__P_MM_DW, t, flop);
    }
    if (dbias) {
        ltf__sum_rows(dbias, dout, BT, OC);
        ltf__cpu_prof_stop(LTF__P_BIAS, t, 0.0);
    }
}

/* LayerNorm over the last dim (eps 1e-5, biased variance, §2):
 *   mean = sum_i x_i / C,  rstd = 1/sqrt(sum_i (x_i - mean)^2 / C + 1e-5)
 *   xhat_i = (x_i - mean) * rstd,   out_i = w_i * xhat_i + b_i
 * backward, with g_i = w_i * dout_i:
 *   dx_i += rstd * (g_i - mean_j(g_j) - xhat_i * mean_j(g_j * xhat_j))
 *   dw_i += dout_i * xhat_i,   db_i += dout_i                                             */
/* Sums of C floats are taken in LTF__LANES interleaved partial sums (lane l adds entries
 * l, l + LANES, ...), which the compiler turns into vector adds; a plain running sum is one
 * long dependency chain it may not reorder (IEEE addition is not associative).
 * ltf__dot(a, b, n) = sum_i a[i] b[i]; ltf__sum(a, n) = sum_i a[i]. */
#define LTF__LANES 16
static float ltf__lanes_total(const float *p) {
    float s = 0.0f;
    for (int l = 0; l < LTF__LANES; l++) s += p[l];
    return s;
}
static float ltf__dot(const float *a, const float *b, int n) {
    float p[LTF__LANES] = {0};
    int i = 0;
    for (; i + LTF__LANES <= n; i += LTF__LANES)
        for (int l = 0; l < LTF__LANES; l++) p[l] += a[i + l] * b[i + l];
    for (int l = 0; i < n; i++, l++) p[l] += a[i] * b[i];
    return ltf__lanes_total(p);
}
static float ltf__sum(const float *a, int n) {
    float p[LTF__LANES] = {0};
    int i = 0;
    for (; i + LTF__LANES <= n; i += LTF__LANES)
        for (int l = 0; l < LTF__LANES; l++) p[l] += a[i + l];
    for (int l = 0; i < n; i++, l++) p[l] += a[i];
    return ltf__lanes_total(p);
}

/* One row: out = LN(x) with its mean and rstd. out doubles as scratch for x - mean. */
static void ltf__layernorm_row(float *o, float *mean, float *rstd, const float *x, const float *w,
                               const float *b, int C) {
    float m = ltf__sum(x, C) / (float)C;
    for (int i = 0; i < C; i++) o[i] = x[i] - m;
    float rs = 1.0f / sqrtf(ltf__dot(o, o, C) / (float)C + 1e-5f);
    for (int i = 0; i < C; i++) o[i] = o[i] * rs * w[i] + b[i];
    *mean = m; *rstd = rs;
}

void ltf_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                           const float *b, int BT, int C) {
    double t0 = ltf__cpu_prof_start();
    #pragma omp parallel for if ((size_t)BT * C > LTF__PAR_MIN)
    for (int r = 0; r < BT; r++)
        ltf__layernorm_row(out + (size_t)r * C, mean + r, rstd + r, inp + (size_t)r * C, w, b, C);
    ltf__cpu_prof_stop(LTF__P_LN_FWD, t0, 0.0);
}

/* Residual + LayerNorm in one pass (the block's two joins, §2): h = a + c, out = LN(h).
 * Same arithmetic as ltf_residual_forward then ltf_layernorm_forward; each row is read once
 * while it is in cache. Backward needs no twin: the LN backward adds into dh, which the
 * residual passes on unchanged. */
void ltf_residual_layernorm_forward(float *h, float *out, float *mean, float *rstd, const float *a,
                                    const float *c, const float *w, const float *b, int BT, int C) {
    double t0 = ltf__cpu_prof_start();
    #pragma omp parallel for if ((size_t)BT * C > LTF__PAR_MIN)
    for (int r = 0; r < BT; r++) {
        float *hr = h + (size_t)r * C;
        for (int i = 0; i < C; i++) hr[i] = a[(size_t)r * C + i] + c[(size_t)r * C + i];
        ltf__layernorm_row(out + (size_t)r * C, mean + r, rstd + r, hr, w, b, C);
    }
    ltf__cpu_prof_stop(LTF__P_LN_FWD, t0, 0.0);
}

/* The fused op's readable twin: the residual, then the LayerNorm; the same bits (test plain_twins). */
void ltf_residual_layernorm_forward_plain(float *h, float *out, float *mean, float *rstd, const float *a,
                                          const float *c, const float *w, const float *b, int BT, int C) {
    ltf_residual_forward(h, a, c, (size_t)BT * C);
    ltf_layernorm_forward(out, mean, rstd, h, w, b, BT, C);
}

void ltf_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                            const float *w, const float *mean, const float *rstd, int BT, int C) {
    double t0 = ltf__cpu_prof_start();
    #pragma omp parallel for if ((size_t)BT * C > LTF__PAR_MIN)
    for (int r = 0; r < BT; r++) {                           /* dx: rows are independent */
        const float *x = inp + (size_t)r * C, *dy = dout + (size_t)r * C;
        float *dx = dinp + (size_t)r * C;
        float m = mean[r], rs = rstd[r], pg[LTF__LANES] = {0}, pgx[LTF__LANES] = {0};
        int i = 0;
        for (; i + LTF__LANES <= C; i += LTF__LANES)         /* the two sums, in lanes */
            for (int l = 0; l < LTF__LANES; l++) {
                float g = w[i + l] * dy[i + l];
                pg[l] += g; pgx[l] += g * ((x[i + l] - m) * rs);
            }
        for (int l = 0; i < C; i++, l++) { float g = w[i] * dy[i]; pg[l] += g; pgx[l] += g * ((x[i] - m) * rs); }
        float g_mean = ltf__lanes_total(pg) / (float)C, gx_mean = ltf__lanes_total(pgx) / (float)C;
        for (i = 0; i < C; i++) {
            float xhat = (x[i] - m) * rs, g = w[i] * dy[i];
            dx[i] += rs * (g - g_mean - xhat * gx_mean);
        }
    }
    int tasks = (C + LTF__COLS - 1) / LTF__COLS;
    #pragma omp parallel for if ((size_t)BT * C > LTF__PAR_MIN)
    for (int c = 0; c < tasks; c++) {                        /* dw, db: sums over rows, by columns */
        int i0 = c * LTF__COLS, w = i0 + LTF__COLS < C ? LTF__COLS : C - i0;
        float sw[LTF__COLS] = {0}, sb[LTF__COLS] = {0};     /* local sums, as in ltf__sum_rows */
        for (int r = 0; r < BT; r++) {
            const float *x = inp + (size_t)r * C + i0, *dy = dout + (size_t)r * C + i0;
            float m = mean[r], rs = rstd[r];
            for (int i = 0; i < w; i++) { sw[i] += dy[i] * ((x[i] - m) * rs); sb[i] += dy[i]; }
        }
        for (int i = 0; i < w; i++) { dw[i0 + i] += sw[i]; db[i0 + i] += sb[i]; }
    }
    ltf__cpu_prof_stop(LTF__P_LN_BWD, t0, 0.0);
}

/* Causal multi-head self-attention (§2). qkv [B, N, 3C] holds q | k | v; head h uses
 * columns h*hs .. h*hs+hs-1 of each. For query t and key t2 <= t:
 *   s[t2] = q_t . k_t2 / sqrt(hs),  att[t2] = exp(s[t2] - max) / sum,  out_t = sum_t2 att[t2] v_t2
 * att [B, H, N, N] keeps the probabilities (entries t2 > t stay 0) for backward:
 *   datt[t2] = dout_t . v_t2,   dv_t2 += att[t2] dout_t
 *   ds[t2] = att[t2] (datt[t2] - sum_j att[j] datt[j])          (softmax backward)
 *   dq_t += sum_t2 ds[t2] k_t2 / sqrt(hs),   dk_t2 += ds[t2] q_t / sqrt(hs)
 * datt is scratch of the size of att.
 * Per (p, h) these are matrix products, so both passes run them through the matrix multiply
 * of section [4] (one thread per (p, h); the strides pick the head's columns out of qkv):
 *   forward   S = Q K^T,  att = softmax(S / sqrt(hs)) row by row,  out = att V
 *   backward  dA = dY V^T,  dV += att^T dY,  dS = att (dA - rowsum(att dA)) / sqrt(hs),
 *             dQ += dS K,  dK += dS^T Q
 * S and dA are computed for every (t, t2), the causal half above the diagonal included (twice
 * the multiply-adds of a triangular loop, but at the multiply's speed); att is 0 there, so
 * those entries drop out of everything after the softmax.                                  */
void ltf_attention_forward(float *out, float *att, const float *qkv, int B, int N, int C, int H) {
    int hs = C / H, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
    double t0 = ltf__cpu_prof_start();
    #pragma omp parallel for collapse(2) if ((long)B * H * N * N * hs > 100000)
    for (int p = 0; p < B; p++)
        for (int h = 0; h < H; h++) {
            const float *q = qkv + (size_t)p * N * C3 + h * hs, *k = q + C, *v = q + 2 * C;
            float *a = att + ((size_t)p * H + h) * N * N, *o = out + (size_t)p * N * C + h * hs;
            ltf__gemm_block(N, N, hs, q, C3, 1, k, 1, C3, a, N, 1, NULL, 0);   /* S = Q K^T */
            for (int t = 0; t < N; t++, a += N) {                          /* softmax   */
                float mx = -INFINITY, sum = 0.0f;
                for (int t2 = 0; t2 <= t; t2++) { a[t2] *= scale; mx = a[t2] > mx ? a[t2] : mx; }
                for (int t2 = 0; t2 <= t; t2++) a[t2] = ltf__exp_clamp(a[t2] - mx);   /* = ltf__expf(a - mx), */
                for (int t2 = 0; t2 <= t; t2++) a[t2] = ltf__expf_in_range(a[t2]);    /* in two vector passes */
                for (int t2 = 0; t2 <= t; t2++) sum += a[t2];
                for (int t2 = 0; t2 <= t; t2++) a[t2] /= sum;
                for (int t2 = t + 1; t2 < N; t2++) a[t2] = 0.0f;
            }
            a -= (size_t)N * N;
            ltf__gemm_block(N, hs, N, a, N, 1, v, C3, 1, o, C, 1, NULL, 0);   /* out = att V */
        }
    ltf__cpu_prof_stop(LTF__P_ATT_FWD, t0, 4.0 * B * H * N * N * hs);   /* two N x N x hs products per head */
}

void ltf_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv,
                            const float *att, int B, int N, int C, int H) {
    int hs = C / H, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
    double t0 = ltf__cpu_prof_start();
    /* one (p, h) per iteration: heads write disjoint columns of dqkv, so threads never collide */
    #pragma omp parallel for collapse(2) if ((long)B * H * N * N * hs > 100000)
    for (int p = 0; p < B; p++)
        for (int h = 0; h < H; h++) {
            size_t head = (size_t)p * N * C3 + h * hs;
            const float *q = qkv + head, *k = q + C, *v = q + 2 * C, *dy = dout + (size_t)p * N * C + h * hs;
            float *dq = dqkv + head, *dk = dq + C, *dv = dq + 2 * C;
            const float *a = att + ((size_t)p * H + h) * N * N;
            float *da = datt + ((size_t)p * H + h) * N * N;
            ltf__gemm_block(N, N, hs, dy, C, 1, v, 1, C3, da, N, 1, NULL, 0);    /* dA = dY V^T    */
            ltf__gemm_block(N, hs, N, a, 1, N, dy, C, 1, dv, C3, 0, NULL, 0);    /* dV += att^T dY */
            for (int t = 0; t < N; t++) {                                  /* dS, in place   */
                const float *ar = a + (size_t)t * N;
                float *dr = da + (size_t)t * N, dot = 0.0f;
                for (int t2 = 0; t2 <= t; t2++) dot += ar[t2] * dr[t2];
                for (int t2 = 0; t2 <= t; t2++) dr[t2] = ar[t2] * (dr[t2] - dot) * scale;
                for (int t2 = t + 1; t2 < N; t2++) dr[t2] = 0.0f;
            }
            ltf__gemm_block(N, hs, N, da, N, 1, k, C3, 1, dq, C3, 0, NULL, 0);   /* dQ += dS K     */
            ltf__gemm_block(N, hs, N, da, 1, N, q, C3, 1, dk, C3, 0, NULL, 0);   /* dK += dS^T Q   */
        }
    ltf__cpu_prof_stop(LTF__P_ATT_BWD, t0, 8.0 * B * H * N * N * hs);   /* four products per head */
}

/* The readable twins of the two above, as llm.c keeps matmul_forward_naive: the formulas of
 * the comment, loop by loop, one query row t of one head at a time. The test oracle of the fast
 * pair (test plain_twins) and the text to check against docs/MATH.md §2 and §11; the GPU's
 * attention kernels follow the same loops. */
void ltf_attention_forward_plain(float *out, float *att, const float *qkv, int B, int N, int C, int H) {
    int hs = C / H;
    size_t C3 = 3 * (size_t)C;
    float scale = 1.0f / sqrtf((float)hs);
    for (int p = 0; p < B; p++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < N; t++) {
                const float *q = qkv + ((size_t)p * N + t) * C3 + h * hs;
                float *a = att + (((size_t)p * H + h) * N + t) * N, mx = -INFINITY, sum = 0.0f;
                for (int t2 = 0; t2 <= t; t2++) {                        /* s = q_t . k_t2 / sqrt(hs) */
                    const float *k = qkv + ((size_t)p * N + t2) * C3 + C + h * hs;
                    float dot = 0.0f;
                    for (int i = 0; i < hs; i++) dot += q[i] * k[i];
                    a[t2] = dot * scale;
                    mx = a[t2] > mx ? a[t2] : mx;
                }
                for (int t2 = 0; t2 <= t; t2++) { a[t2] = expf(a[t2] - mx); sum += a[t2]; }   /* softmax */
                for (int t2 = 0; t2 <= t; t2++) a[t2] /= sum;
                for (int t2 = t + 1; t2 < N; t2++) a[t2] = 0.0f;         /* causal: no future keys */
                float *o = out + ((size_t)p * N + t) * C + h * hs;
                for (int i = 0; i < hs; i++) {                            /* out_t = sum att v_t2 */
                    float acc = 0.0f;
                    for (int t2 = 0; t2 <= t; t2++) acc += a[t2] * qkv[((size_t)p * N + t2) * C3 + 2 * C + h * hs + i];
                    o[i] = acc;
                }
            }
}

void ltf_attention_backward_plain(float *dqkv, float *datt, const float *dout, const float *qkv,
                                  const float *att, int B, int N, int C, int H) {
    int hs = C / H;
    size_t C3 = 3 * (size_t)C;
    for (size_t row = 0; row < (size_t)B * H * N; row++) {   /* row = (p H + h) N + t: query t of head h */
        int t = (int)(row % N), h = (int)(row / N % H);
        size_t p = row / N / H, qrow = (p * N + t) * C3 + h * hs;
        const float *q = qkv + qrow, *a = att + row * N, *dy = dout + (p * N + t) * C + h * hs;
        float *da = datt + row * N, *dq = dqkv + qrow, dot = 0.0f;
        for (int t2 = 0; t2 <= t; t2++) {                            /* datt = dout_t . v_t2 */
            const float *v = qkv + (p * N + t2) * C3 + 2 * C + h * hs;
            da[t2] = 0.0f;
            for (int i = 0; i < hs; i++) da[t2] += dy[i] * v[i];
            dot += a[t2] * da[t2];
        }
        for (int t2 = 0; t2 <= t; t2++) {
            size_t key = (p * N + t2) * C3 + h * hs;
            float ds = a[t2] * (da[t2] - dot) / sqrtf((float)hs);     /* softmax backward, / sqrt(hs) */
            for (int i = 0; i < hs; i++) {
                dq[i] += ds * qkv[key + C + i];                       /* dq_t  += ds k_t2      */
                dqkv[key + C + i] += ds * q[i];                       /* dk_t2 += ds q_t       */
                dqkv[key + 2 * C + i] += a[t2] * dy[i];               /* dv_t2 += att dout_t   */
            }
        }
    }
}

/* GELU, tanh form (§2):  gelu(x) = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)
 * d gelu/dx = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 x^2)     */
#define LTF__GELU_K 0.7978845608028654f   /* sqrt(2/pi) */
/* The two passes of the vectorizable exponential (ltf__expf_in_range), LTF__GELU_CHUNK points at
 * a time: v = clamp(2 u(x)) into a buffer on the stack, then tanh(u) = 1 - 2 / (e^v + 1). The
 * same floats as ltf__tanhf(u(x)), bit for bit. */
#define LTF__GELU_CHUNK 256
static void ltf__gelu_arg(float *v, const float *x, int n) {
    for (int i = 0; i < n; i++)
        v[i] = ltf__exp_clamp(2.0f * (LTF__GELU_K * (x[i] + 0.044715f * x[i] * x[i] * x[i])));
}

void ltf_gelu_forward(float *out, const float *inp, size_t n) {
    long chunks = (long)((n + LTF__GELU_CHUNK - 1) / LTF__GELU_CHUNK);
    double t0 = ltf__cpu_prof_start();
    #pragma omp parallel for if (n > LTF__PAR_MIN)
    for (long c = 0; c < chunks; c++) {
        size_t i0 = (size_t)c * LTF__GELU_CHUNK;
        int m = n - i0 < LTF__GELU_CHUNK ? (int)(n - i0) : LTF__GELU_CHUNK;
        float v[LTF__GELU_CHUNK];
        const float *x = inp + i0;
        ltf__gelu_arg(v, x, m);
        for (int i = 0; i < m; i++)
            out[i0 + i] = 0.5f * x[i] * (1.0f + (1.0f - 2.0f / (ltf__expf_in_range(v[i]) + 1.0f)));
    }
    ltf__cpu_prof_stop(LTF__P_GELU_FWD, t0, 0.0);
}

void ltf_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    long chunks = (long)((n + LTF__GELU_CHUNK - 1) / LTF__GELU_CHUNK);
    double t0 = ltf__cpu_prof_start();
    #pragma omp parallel for if (n > LTF__PAR_MIN)
    for (long c = 0; c < chunks; c++) {
        size_t i0 = (size_t)c * LTF__GELU_CHUNK;
        int m = n - i0 < LTF__GELU_CHUNK ? (int)(n - i0) : LTF__GELU_CHUNK;
        float v[LTF__GELU_CHUNK];
        const float *x = inp + i0;
        ltf__gelu_arg(v, x, m);
        for (int i = 0; i < m; i++) {
            float th = 1.0f - 2.0f / (ltf__expf_in_range(v[i]) + 1.0f);
            float du = LTF__GELU_K * (1.0f + 3.0f * 0.044715f * x[i] * x[i]);
            dinp[i0 + i] += (0.5f * (1.0f + th) + 0.5f * x[i] * (1.0f - th * th) * du) * dout[i0 + i];
        }
    }
    ltf__cpu_prof_stop(LTF__P_GELU_BWD, t0, 0.0);
}

/* Residual: out = a + b;   da += dout, db += dout */
void ltf_residual_forward(float *out, const float *a, const float *b, size_t n) {
    #pragma omp parallel for if (n > LTF__PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}
void ltf_residual_backward(float *da, float *db, const float *dout, size_t n) {
    #pragma omp parallel for if (n > LTF__PAR_MIN)
    for (size_t i = 0; i < n; i++) { if (da) da[i] += dout[i]; if (db) db[i] += dout[i]; }
}

/* y += x: E added again (§12: add_inputs_embeds), or a gradient added where E was */
void ltf_add(float *y, const float *x, size_t n) { ltf_residual_backward(y, NULL, x, n); }

/* The multiplicative injection (§12): out = a * b elementwise.
 * backward: da = dout * b (written; NULL: not wanted), db += dout * a */
void ltf_mul_forward(float *out, const float *a, const float *b, size_t n) {
    #pragma omp parallel for if (n > LTF__PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = a[i] * b[i];
}
void ltf_mul_backward(float *da, float *db, const float *dout, const float *a, const float *b, size_t n) {
    #pragma omp parallel for if (n > LTF__PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        if (da) da[i] = dout[i] * b[i];
        db[i] += dout[i] * a[i];
    }
}

/* Learned positions (§2, step 1): out[p, t] = inp[p, t] + wpe[t]
 * backward: dinp += dout, dwpe[t] += sum_p dout[p, t] */
void ltf_position_forward(float *out, const float *inp, const float *wpe, int B, int N, int C) {
    #pragma omp parallel for if ((size_t)B * N * C > LTF__PAR_MIN)
    for (int r = 0; r < B * N; r++)
        for (int i = 0; i < C; i++) out[(size_t)r * C + i] = inp[(size_t)r * C + i] + wpe[(size_t)(r % N) * C + i];
}
void ltf_position_backward(float *dinp, float *dwpe, const float *dout, int B, int N, int C) {
    ltf_residual_backward(dinp, NULL, dout, (size_t)B * N * C);
    ltf__sum_rows(dwpe, dout, B, (size_t)N * C);   /* dout as B rows of N*C: dwpe[t, i] is column t*C + i */
}

/* ---- ops of the loop (docs/MATH.md §1, §4): tokens, input injection, read-out, loss ---- */

/* tokens (§1): z[p, 2i] = x_i, z[p, 2i+1] = (y_i, 0, ..., 0)      z [B, 2n, d] */
void ltf_tokens(float *z, const float *xs, const float *ys, int B, int n, int d) {
    for (int p = 0; p < B; p++)
        for (int i = 0; i < n; i++) {
            float *zx = z + ((size_t)p * 2 * n + 2 * i) * d, *zy = zx + d;
            memcpy(zx, xs + ((size_t)p * n + i) * d, (size_t)d * sizeof(float));
            memset(zy, 0, (size_t)d * sizeof(float));
            zy[0] = ys[(size_t)p * n + i];
        }
}

/* input injection with the state mask (§4): u = mask(Y) + E, where mask keeps the tokens
 * keep_lo <= t < keep_hi of each prompt's N and zeroes the rest; Y == NULL means Y = 0.
 * backward (ltf_mask_backward): dY = mask(du); E's gradient is du itself (added by the loop). */
void ltf_inject(float *u, const float *Y, const float *E, int B, int N, int C, int keep_lo, int keep_hi) {
    #pragma omp parallel for collapse(2) if ((size_t)B * N * C > LTF__PAR_MIN)
    for (int p = 0; p < B; p++)
        for (int t = 0; t < N; t++) {
            size_t r = ((size_t)p * N + t) * C;
            int keep = Y && t >= keep_lo && t < keep_hi;
            for (int i = 0; i < C; i++) u[r + i] = E[r + i] + (keep ? Y[r + i] : 0.0f);
        }
}

void ltf_mask_backward(float *dY, const float *du, int B, int N, int C, int keep_lo, int keep_hi) {
    #pragma omp parallel for if ((size_t)B * N * C > LTF__PAR_MIN)
    for (int r = 0; r < B * N; r++) {
        int keep = r % N >= keep_lo && r % N < keep_hi;
        for (int i = 0; i < C; i++) dY[(size_t)r * C + i] = keep ? du[(size_t)r * C + i] : 0.0f;
    }
}

/* read-out at the x tokens (§1): pred[p, i] = w . Y[p, 2i] + b          w [1, C], b [1]
 * backward: dY[p, 2i] += dpred[p, i] w,  dw += sum_(p,i) dpred[p, i] Y[p, 2i],  db += sum dpred.
 * The weight gradient sums over (p, i) in order; its threads split the C columns. */
void ltf_read_out(float *pred, const float *Y, const float *w, const float *b, int B, int n, int C) {
    #pragma omp parallel for collapse(2) if ((size_t)B * n * C > LTF__PAR_MIN)
    for (int p = 0; p < B; p++)
        for (int i = 0; i < n; i++) {
            const float *y = Y + ((size_t)p * 2 * n + 2 * i) * C;
            float s = b[0];
            for (int k = 0; k < C; k++) s += w[k] * y[k];
            pred[(size_t)p * n + i] = s;
        }
}

void ltf_read_out_backward(float *dY, float *dw, float *db, const float *dpred, const float *Y,
                                   const float *w, int B, int n, int C) {
    int tasks = (C + LTF__COLS - 1) / LTF__COLS;
    #pragma omp parallel for collapse(2) if ((size_t)B * n * C > LTF__PAR_MIN)
    for (int p = 0; p < B; p++)
        for (int i = 0; i < n; i++) {
            size_t r = ((size_t)p * 2 * n + 2 * i) * C;
            float dp = dpred[(size_t)p * n + i];
            for (int k = 0; k < C; k++) dY[r + k] += dp * w[k];
        }
    #pragma omp parallel for if ((size_t)B * n * C > LTF__PAR_MIN)
    for (int c = 0; c < tasks; c++) {
        int k0 = c * LTF__COLS, width = k0 + LTF__COLS < C ? LTF__COLS : C - k0;
        float sum[LTF__COLS] = {0};          /* local sums, as in ltf__sum_rows */
        for (size_t pi = 0; pi < (size_t)B * n; pi++)
            for (int k = 0; k < width; k++) sum[k] += dpred[pi] * Y[2 * pi * C + k0 + k];
        for (int k = 0; k < width; k++) dw[k0 + k] += sum[k];
    }
    for (size_t pi = 0; pi < (size_t)B * n; pi++) db[0] += dpred[pi];
}

/* the loss (§4): sum of (pred - y)^2 in double, added to stats->loss_sum (first = 1: set);
 * its gradient dL/dpred = 2 (pred - y) / count, written over pred */
void ltf_loss_sum(ltf_stats *stats, const float *pred, const float *ys, size_t count, int first) {
    double sum = first ? 0.0 : stats->loss_sum;
    for (size_t i = 0; i < count; i++) sum += (double)(pred[i] - ys[i]) * (pred[i] - ys[i]);
    stats->loss_sum = sum;
}

void ltf_loss_backward(float *dpred, const float *ys, size_t count, float denom) {
    for (size_t i = 0; i < count; i++) dpred[i] = 2.0f * (dpred[i] - ys[i]) / denom;
}

/* stats->first_bad = the index of the first NaN or Inf of p[n], or n when all are finite */
/* Classification (§13). logits [B*2n, K]: the read-out of every token; the x token of point
 * pi = p*n + i is row 2*pi. ltf_ce_loss adds sum_pi -log softmax(logits[2 pi])[y_pi] to
 * stats->loss_sum in double (first = 1: sets it). ltf_ce_backward writes over logits the
 * gradient (softmax - onehot(y)) / denom at the x rows and 0 at the y rows. ys hold class
 * indices (checked by the loop before any op runs). */
/* one point's share, shared with the GPU's kernels: -log softmax(l)[y], in double about max(l) */
static inline LTF__HD double ltf__ce_point(const float *l, int y, int K) {
    double m = l[0], s = 0.0;
    for (int k = 1; k < K; k++) if (l[k] > m) m = l[k];
    for (int k = 0; k < K; k++) s += exp((double)l[k] - m);
    return m + log(s) - (double)l[y];
}
/* ... and its gradient written over the x row l, zeros over the y row after it */
static inline LTF__HD void ltf__ce_point_backward(float *l, int y, float denom, int K) {
    double lse = ltf__ce_point(l, y, K) + (double)l[y];
    for (int k = 0; k < K; k++) l[k] = (float)((exp((double)l[k] - lse) - (k == y ? 1.0 : 0.0)) / denom);
    for (int k = 0; k < K; k++) l[K + k] = 0.0f;
}
void ltf_ce_loss(ltf_stats *stats, const float *logits, const float *ys, int B, int n, int K, int first) {
    double sum = first ? 0.0 : stats->loss_sum;
    for (size_t pi = 0; pi < (size_t)B * n; pi++) sum += ltf__ce_point(logits + 2 * pi * K, (int)ys[pi], K);
    stats->loss_sum = sum;
}
void ltf_ce_backward(float *logits, const float *ys, float denom, int B, int n, int K) {
    for (size_t pi = 0; pi < (size_t)B * n; pi++) ltf__ce_point_backward(logits + 2 * pi * K, (int)ys[pi], denom, K);
}

void ltf_check_finite(ltf_stats *stats, const float *p, size_t n) {
    stats->first_bad = (unsigned long long)ltf__first_nonfinite(p, n);
}

/* Adam's update on n floats (§6; the section [9] comment derives it): step = lr / (1 - b1^t),
 * sqrt_bc2 = sqrt(1 - b2^t), decay = 1 - lr wd. Also the ReLU-net baseline's optimizer. */
void ltf_adam_update(float *p, float *m, float *v, const float *g, size_t n, float step, float sqrt_bc2,
                             float decay, float b1, float b2, float eps) {
    for (size_t i = 0; i < n; i++) {
        float mi = b1 * m[i] + (1.0f - b1) * g[i];
        float vi = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
        m[i] = mi; v[i] = vi;
        p[i] = p[i] * decay - step * mi / (sqrtf(vi) / sqrt_bc2 + eps);
    }
}

/* ============================== [6] backends ==============================
 * The paper's logic, the backbone [7] and the loop [8], is written once, as host code that calls
 * the ops of a backend through the table ltf_backend (declared at the top). The CPU backend is
 * the table below: the ops of [5] on host memory. looped_tf_cuda.cu fills the same table with
 * CUDA kernels on device memory. Where a model's numbers live is its store (ltf_store): the
 * parameters, gradients and Adam moments with their views, the activation sets and work
 * buffers, the batch, the predictions and two scalars (the loss sum, the first non-finite
 * gradient). On the CPU the store's parameters are the model's own arrays; on the GPU they
 * are a device copy, which ltf_model_sync_host brings back.
 * An op returns nothing the host reads: a training step queues its ops and reads its loss
 * (and the gradient check) once, at its end, with be->get; Adam follows only if both are
 * finite. So the GPU runs a step's forward and backward without a host synchronisation in
 * the middle: they can be captured as one CUDA graph. */

typedef struct {          /* per-step work buffers (views into store->work)               */
    float *z;             /* [BT, d]  interleaved tokens x_i, (y_i, 0, ..., 0) (§1)       */
    float *E;             /* [BT, C]  read_in(z), the injected input                      */
    float *dY, *dE;       /* [BT, C]  gradients of the state and of E (adjacent: one zeroing) */
    float *dh;            /* [BT, C]  the residual stream's gradient                      */
    /* a layer's gradient buffers, adjacent from dln2 to dfcg: one zeroing per layer        */
    float *dln2, *dln1;   /* [BT, C]  gradients of ln_2's and ln_1's outputs              */
    float *dtmp;          /* [BT, C]  gradient of the attention output                    */
    float *dqkv;          /* [BT, 3C]                                                     */
    float *dfch, *dfcg;   /* [BT, 4C] gradients of c_fc's output and of the GELU's        */
    float *datt;          /* [B, H, N, N]                                                 */
    float *pred;          /* [T, B, n] predictions of the window iterations ([T, BT, K]: §13) */
    float *pos0;          /* [BT, C]  zeros: the positions added with no_pos_emb (§12)     */
    float *U;             /* [BT, C]  u = Y * E of loop_func mul (§12)                    */
} ltf__work;

/* Lays one activation set over p (a == NULL: only counts); returns its floats. */
static size_t ltf__acts_map(ltf_acts *a, float *p, const ltf_config *c, size_t rows, size_t bhnn) {
    size_t C = (size_t)c->n_embd, L = (size_t)c->n_layer, used = 0;
#define LTF__TAKE(f, n) do { if (a) a->f = p + used; used += ltf__pad(n); } while (0)
    LTF__TAKE(h, (L + 1) * rows * C);
    LTF__TAKE(ln1, L * rows * C); LTF__TAKE(ln1_mean, L * rows); LTF__TAKE(ln1_rstd, L * rows);
    LTF__TAKE(qkv, L * rows * 3 * C); LTF__TAKE(att, L * bhnn); LTF__TAKE(atty, L * rows * C);
    LTF__TAKE(hmid, L * rows * C);
    LTF__TAKE(ln2, L * rows * C); LTF__TAKE(ln2_mean, L * rows); LTF__TAKE(ln2_rstd, L * rows);
    LTF__TAKE(fch, L * rows * 4 * C); LTF__TAKE(fch_gelu, L * rows * 4 * C);
    LTF__TAKE(lnf_mean, rows); LTF__TAKE(lnf_rstd, rows); LTF__TAKE(out, rows * C);
#undef LTF__TAKE
    return used;
}

static size_t ltf__work_map(ltf__work *w, float *p, const ltf_config *c, size_t rows, size_t bhnn, size_t preds) {
    size_t C = (size_t)c->n_embd, d = (size_t)c->n_dims, used = 0;
#define LTF__TAKE(f, n) do { if (w) w->f = p + used; used += ltf__pad(n); } while (0)
    LTF__TAKE(z, rows * d); LTF__TAKE(E, rows * C);
    LTF__TAKE(dY, rows * C); LTF__TAKE(dE, rows * C); LTF__TAKE(dh, rows * C);
    LTF__TAKE(dln2, rows * C); LTF__TAKE(dln1, rows * C); LTF__TAKE(dtmp, rows * C);
    LTF__TAKE(dqkv, rows * 3 * C); LTF__TAKE(dfch, rows * 4 * C); LTF__TAKE(dfcg, rows * 4 * C);
    LTF__TAKE(datt, bhnn); LTF__TAKE(pred, preds);
    LTF__TAKE(pos0, c->no_pos_emb ? rows * C : 0); LTF__TAKE(U, c->loop_func == LTF_LOOP_MUL ? rows * C : 0);
#undef LTF__TAKE
    return used;
}

/* Of a config: the passes of f the gradient goes through (the activation sets kept), the last
 * of them that carry the loss, and the passes of training. Looped: T, T, b. Standard: 1, 1, 1.
 * Tied (§12): b, 1, b: the loss is read after the last application only. */
static int ltf__window(const ltf_config *c) { return c->kind == LTF_STANDARD ? 1 : c->loop_window; }
static int ltf__loss_iters(const ltf_config *c) { return c->kind == LTF_LOOPED ? c->loop_window : 1; }
static int ltf__train_loops(const ltf_config *c) { return c->kind == LTF_STANDARD ? 1 : c->n_loops; }
/* the passes of f at evaluation: the looped model runs as many as asked, the others their own */
static int ltf__eval_loops(const ltf_config *c, int asked) { return c->kind == LTF_LOOPED ? asked : ltf__train_loops(c); }

/* floats of one iteration's read-out: B*n predictions, or K logits for each of the B*N tokens (§13) */
static size_t ltf__pred_floats(const ltf_config *c, int B, int N) {
    return c->n_classes ? (size_t)B * N * c->n_classes : (size_t)B * (N / 2);
}

/* The work buffers of a B x N batch laid over `base` (the store's work memory). */
static ltf__work ltf__work_at(float *base, const ltf_config *c, int B, int N) {
    ltf__work w;
    size_t preds = (size_t)ltf__window(c) * ltf__pred_floats(c, B, N);
    ltf__work_map(&w, base, c, (size_t)B * N, (size_t)B * c->n_head * N * N, preds);
    return w;
}

/* ---- the store: allocated through the backend, laid out here once ---- */

static void ltf__store_release(const ltf_backend *be, float **p) {
    if (*p) be->release(*p);
    *p = NULL;
}

/* A backend buffer of at least `need` floats in *p (capacity *cap); what it held is dropped. */
static int ltf__store_room(ltf_model *m, float **p, size_t *cap, size_t need, const char *what) {
    if (need <= *cap && *p) return 0;
    ltf__store_release(m->backend, p);
    *cap = 0;
    if (m->backend->alloc(p, need, m->err, what) != 0) return -1;
    *cap = need;
    m->run.generation++;
    return 0;
}

static void ltf__store_free_sets(ltf_model *m) {
    ltf_store *store = &m->run;
    ltf__store_release(m->backend, &store->act_mem);
    ltf__store_release(m->backend, &store->work);
    LTF_FREE(store->sets);
    store->sets = NULL; store->n_sets = 0; store->cap_rows = store->cap_bhnn = 0; store->act_floats = store->work_floats = 0;
}

/* Everything the store holds; the parameters too where they are the backend's own copy. */
static void ltf__store_free(ltf_model *m) {
    ltf_store *store = &m->run;
    if (!m->backend) return;
    ltf__store_free_sets(m);
    ltf__store_release(m->backend, &store->batch);
    ltf__store_release(m->backend, &store->preds);
    ltf__store_release(m->backend, (float **)&store->stats);
    ltf__store_release(m->backend, (float **)&store->scalars);
    if (m->backend->graph_drop) m->backend->graph_drop(m);
    if (!m->backend->host_memory) ltf__store_release(m->backend, &store->params);
    memset(store, 0, sizeof *store);
    m->backend = NULL;
}

/* Moves the model's store to backend `be`: its parameters, gradients and Adam state copied
 * from the host arrays (where be computes in host memory, they ARE the host arrays). On
 * failure the model stays where it was. */
static int ltf__use_backend(ltf_model *m, const ltf_backend *be, char *err) {
    ltf_store store;
    size_t n = m->n_params;
    if (m->cfg.n_classes && !be->ce_loss)   /* (both backends have it; a third might not) */
        return ltf__fail(err, "the %s backend has no classification read-out (n_classes = %d): run this model on "
                         "the CPU", be->name, m->cfg.n_classes);
    memset(&store, 0, sizeof store);
    if (be->host_memory) {
        store.params = m->params; store.grads = m->grads; store.adam_m = m->adam_m; store.adam_v = m->adam_v;
    } else {
        size_t np = ltf__pad(n);   /* each of the four views 256-byte aligned */
        if (be->alloc(&store.params, 4 * np, err, "the parameters, gradients and Adam moments") != 0) return -1;
        store.grads = store.params + np; store.adam_m = store.params + 2 * np; store.adam_v = store.params + 3 * np;
        const float *host[4] = {m->params, m->grads, m->adam_m, m->adam_v};
        float *dev[4] = {store.params, store.grads, store.adam_m, store.adam_v};
        for (int i = 0; i < 4; i++)
            if (be->put(dev[i], host[i], n * sizeof(float), err) != 0) { be->release(store.params); return -1; }
    }
    if (be->alloc((float **)&store.stats, sizeof(ltf_stats) / sizeof(float), err, "the loss") != 0 ||
        be->alloc((float **)&store.scalars, sizeof(ltf_step_scalars) / sizeof(float) + 1, err, "the step's numbers") != 0) {
        if (store.stats) be->release((float *)store.stats);
        if (!be->host_memory) be->release(store.params);
        return -1;
    }
    ltf__rebase(&store.w, &m->w, m->params, store.params, m->cfg.n_layer);
    ltf__rebase(&store.g, &m->w, m->params, store.grads, m->cfg.n_layer);
    store.generation = m->run.generation + 1;
    ltf__store_free(m);
    m->backend = be;
    m->run = store;
    return 0;
}

/* Makes room for B prompts of N tokens: T window activation sets + 1 scratch set + work. The
 * buffers only grow, so a training step itself never allocates. */
static int ltf__reserve(ltf_model *m, int B, int N) {
    const ltf_config *c = &m->cfg;
    const ltf_backend *be = m->backend;
    ltf_store *store = &m->run;
    size_t rows = (size_t)B * N, bhnn = (size_t)B * c->n_head * N * N;
    if (rows <= store->cap_rows && bhnn <= store->cap_bhnn && store->sets) return 0;
    int n_sets = ltf__window(c) + 1;
    size_t per_set = ltf__acts_map(NULL, NULL, c, rows, bhnn);
    size_t work = ltf__work_map(NULL, NULL, c, rows, bhnn, (size_t)ltf__window(c) * ltf__pred_floats(c, B, N));
    char what[96];
    ltf__store_free_sets(m);
    if (per_set > ((size_t)-1 / sizeof(float)) / (size_t)n_sets)
        return ltf__fail(m->err, "batch %d x %d tokens is too large to address", B, N);
    snprintf(what, sizeof what, "the activations of a batch of %d x %d tokens", B, N);
    store->sets = (ltf_acts *)LTF_MALLOC(sizeof(ltf_acts) * (size_t)n_sets);
    if (!store->sets) return ltf__fail(m->err, "out of memory: %d activation sets", n_sets);
    if (be->alloc(&store->act_mem, per_set * (size_t)n_sets, m->err, what) != 0 ||
        be->alloc(&store->work, work, m->err, what) != 0) {
        ltf__store_free_sets(m);
        return -1;
    }
    for (int i = 0; i < n_sets; i++) ltf__acts_map(&store->sets[i], store->act_mem + per_set * (size_t)i, c, rows, bhnn);
    store->n_sets = n_sets; store->cap_rows = rows; store->cap_bhnn = bhnn; store->generation++;
    store->act_floats = per_set * (size_t)n_sets; store->work_floats = work;
    return 0;
}

/* ys of the backend's own copy of the batch: after xs, at an aligned offset */
static float *ltf__batch_ys(const ltf_model *m) {
    return m->run.batch + ltf__pad(m->run.cap_points * (size_t)m->cfg.n_dims);
}

/* Room for a batch of `points` points in the backend's memory (a backend that is not the
 * host's keeps its own copy of the batch: xs [points, d] then ys [points]). */
static int ltf__batch_room(ltf_model *m, size_t points) {
    ltf_store *store = &m->run;
    size_t d = (size_t)m->cfg.n_dims, cap = ltf__pad(store->cap_points * d) + store->cap_points;
    if (points <= store->cap_points && store->batch) return 0;
    store->batch_B = store->batch_n = 0;
    store->cap_points = 0;
    if (ltf__store_room(m, &store->batch, &cap, ltf__pad(points * d) + points, "the batch (xs, ys)") != 0) return -1;
    store->cap_points = points;
    store->xs = store->batch; store->ys = ltf__batch_ys(m);
    return 0;
}

/* Makes xs [B, n, d], ys [B, n] (host memory) the batch the ops read: in place on the host,
 * a copy on another backend. */
static int ltf__put_batch(ltf_model *m, const float *xs, const float *ys, int B, int n) {
    ltf_store *store = &m->run;
    const ltf_backend *be = m->backend;
    size_t points = (size_t)B * n;
    if (be->host_memory) {
        store->xs = xs; store->ys = ys;
    } else {
        if (ltf__batch_room(m, points) != 0) return -1;
        store->batch_B = store->batch_n = 0;   /* until both copies are done */
        if (be->put(store->batch, xs, points * m->cfg.n_dims * sizeof(float), m->err) != 0 ||
            be->put(ltf__batch_ys(m), ys, points * sizeof(float), m->err) != 0) return -1;
    }
    store->batch_B = B; store->batch_n = n;
    return 0;
}

/* ---- the CPU backend: section [5]'s ops on host memory ---- */

static int ltf__cpu_alloc(float **p, size_t n, char *err, const char *what) {
    *p = (float *)ltf__calloc_floats(n);
    return *p ? 0 : ltf__fail(err, "out of memory: %.1f MB for %s", 4.0 * (double)n / 1e6, what);
}
static void ltf__cpu_release(float *p) { LTF_FREE(p); }
static int ltf__cpu_put(void *dst, const void *src, size_t bytes, char *err) {
    (void)err;
    if (dst != src && bytes) memcpy(dst, src, bytes);
    return 0;
}
static int ltf__cpu_get(void *dst, const void *src, size_t bytes, char *err, const char *what) {
    (void)what;
    return ltf__cpu_put(dst, src, bytes, err);   /* a copy, either way */
}
static int ltf__cpu_finish(char *err, const char *what) { (void)err; (void)what; return 0; }

/* The pairs of ops the loop runs (the table's comments): on the CPU each is the composition of
 * [5]'s ops, so the CPU's numbers are the ops' numbers. */
static void ltf__cpu_inject_layernorm(float *h, float *out, float *mean, float *rstd, const float *Y, const float *E,
                                      const float *wpe, const float *w, const float *b, int B, int N, int C,
                                      int keep_lo, int keep_hi) {
    ltf_inject(h, Y, E, B, N, C, keep_lo, keep_hi);          /* h = mask(Y) + E  */
    ltf_position_forward(h, h, wpe, B, N, C);                /* h += wpe         */
    ltf_layernorm_forward(out, mean, rstd, h, w, b, B * N, C);
}
static void ltf__cpu_inject_backward(float *dY, float *dE, float *dwpe, const float *dh, int B, int N, int C,
                                     int keep_lo, int keep_hi) {
    ltf__sum_rows(dwpe, dh, B, (size_t)N * C);               /* as ltf_position_backward */
    if (dE) ltf_residual_backward(dE, NULL, dh, (size_t)B * N * C);
    if (dY) ltf_mask_backward(dY, dh, B, N, C, keep_lo, keep_hi);
}
static void ltf__cpu_matmul_gelu_forward(float *out, float *gelu_out, const float *inp, const float *w,
                                         const float *bias, int BT, int C, int OC) {
    ltf_matmul_forward(out, inp, w, bias, BT, C, OC);
    ltf_gelu_forward(gelu_out, out, (size_t)BT * OC);
}
static void ltf__cpu_matmul_gelu_backward(float *dgelu_inp, float *dw, float *dbias, const float *dout, const float *inp,
                                          const float *w, const float *gelu_inp, float *scratch, int BT, int C, int OC) {
    ltf_matmul_backward(scratch, dw, dbias, dout, inp, w, BT, C, OC);   /* scratch = dL/d gelu_out */
    ltf_gelu_backward(dgelu_inp, gelu_inp, scratch, (size_t)BT * C);
}
static void ltf__cpu_read_out_loss(float *pred, ltf_stats *stats, const float *Y, const float *w, const float *b,
                                   const float *ys, int B, int n, int C, int first) {
    ltf_read_out(pred, Y, w, b, B, n, C);
    ltf_loss_sum(stats, pred, ys, (size_t)B * n, first);
}
static void ltf__cpu_read_out_loss_backward(float *dY, float *dw, float *db, float *pred, const float *ys, float denom,
                                            const float *Y, const float *w, int B, int n, int C) {
    ltf_loss_backward(pred, ys, (size_t)B * n, denom);
    ltf_read_out_backward(dY, dw, db, pred, Y, w, B, n, C);
}
/* a step whose loss or a gradient is not finite changes nothing (test nan_loses_nothing) */
LTF__HD static inline int ltf__step_is_bad(const ltf_stats *guard, size_t n) {
    return guard && (guard->first_bad < n || !isfinite(guard->loss_sum));
}
static void ltf__cpu_adam(float *p, float *m, float *v, const float *g, size_t n, const ltf_step_scalars *s,
                          const ltf_stats *guard) {
    if (ltf__step_is_bad(guard, n)) return;
    double t0 = ltf__cpu_prof_start();
    ltf_adam_update(p, m, v, g, n, s->step, s->sqrt_bc2, s->decay, s->beta1, s->beta2, s->eps);
    ltf__cpu_prof_stop(LTF__P_ADAM, t0, 0.0);
}

/* Defines `static const ltf_backend *fn(void)`, the table of a backend from the functions that
 * make it: its memory M<alloc|release|put|get|finish>, the ops of [5] P<op> (the CPU: P = ltf_,
 * the public ops; CUDA: P = ltf__gpu_), the loop's pairs and Adam F<op> (ltf__cpu_ or
 * ltf__gpu_), and the optional sampler and recorder (NULL where there is none). The one list of
 * what a backend implements. */
#define LTF__DEFINE_BACKEND(fn, NAME, HOST_MEMORY, M, P, F, SAMPLE, GRAPH_BEGIN, GRAPH_END, GRAPH_DROP, CE_LOSS, CE_BACKWARD) \
static const ltf_backend *fn(void) { \
    static ltf_backend be; \
    if (!be.name) { \
        be.host_memory = HOST_MEMORY; \
        be.alloc = M##alloc; be.release = M##release; be.put = M##put; be.get = M##get; be.finish = M##finish; \
        be.zero = P##zero; \
        be.matmul_forward = P##matmul_forward; be.matmul_backward = P##matmul_backward; \
        be.residual_layernorm_forward = P##residual_layernorm_forward; be.layernorm_backward = P##layernorm_backward; \
        be.attention_forward = P##attention_forward; be.attention_backward = P##attention_backward; \
        be.tokens = P##tokens; be.read_out = P##read_out; be.check_finite = P##check_finite; \
        be.add = P##add; be.mul_forward = P##mul_forward; be.mul_backward = P##mul_backward; \
        be.inject_layernorm = F##inject_layernorm; be.inject_backward = F##inject_backward; \
        be.matmul_gelu_forward = F##matmul_gelu_forward; be.matmul_gelu_backward = F##matmul_gelu_backward; \
        be.read_out_loss = F##read_out_loss; be.read_out_loss_backward = F##read_out_loss_backward; \
        be.adam = F##adam; \
        be.sample = SAMPLE; be.graph_begin = GRAPH_BEGIN; be.graph_end = GRAPH_END; be.graph_drop = GRAPH_DROP; \
        be.ce_loss = CE_LOSS; be.ce_backward = CE_BACKWARD; \
        be.name = NAME; \
    } \
    return &be; \
}

LTF__DEFINE_BACKEND(ltf__cpu, "cpu", 1, ltf__cpu_, ltf_, ltf__cpu_, NULL, NULL, NULL, NULL,   /* the host draws the batch */
                    ltf_ce_loss, ltf_ce_backward)

/* ============================== [7] the backbone f ==============================
 * §2: f(u) = ln_f(blocks(u + wpe)), each block  h = h + attn(ln_1(h));  h = h + mlp(ln_2(h)).
 * Written once over the backend's ops; `be` computes, `w` and `g` are the store's views. */

typedef struct {              /* one pass over a batch: what the loop and the backbone share */
    ltf_model *m;
    const ltf_backend *be;
    ltf_store *store;             /* the model's store: weights, gradients, activation sets, batch */
    int B, n, N, BT, C, d, H;
    int keep_lo, keep_hi;     /* the state mask keeps tokens keep_lo..keep_hi-1 ([0, N): none) */
    const float *wpe;         /* the positions added: w.wpe, or zeros with no_pos_emb (§12)   */
    ltf__work wk;
} ltf__pass;

/* §4, §12: the two addends of the injection op, h = mask(Y') + E' + wpe, for the state Y that
 * enters this pass of f (NULL: the initial state).
 *   looped, add:  Y' = Y,  E' = E            (Y_0 = 0)
 *   looped, mul:  Y' = 0,  E' = Y * E in wk.U (Y_0 = 1: E' = E)
 *   standard:     Y' = 0,  E' = E; with inject_every_block Y' = E (E enters every block, the first too)
 *   tied:         Y' = 0,  E' = Y            (Y_0 = E: no injection after the first pass) */
static void ltf__injection(const ltf__pass *P, const float *Y, const float **Yi, const float **Ei) {
    const ltf_config *c = &P->m->cfg;
    const float *E = P->wk.E;
    *Yi = NULL; *Ei = E;
    if (c->kind == LTF_TIED) {
        if (Y) *Ei = Y;
    } else if (c->kind == LTF_STANDARD) {
        if (c->inject_every_block) *Yi = E;
    } else if (c->loop_func == LTF_LOOP_MUL) {
        if (Y) { P->be->mul_forward(P->wk.U, Y, E, (size_t)P->BT * P->C); *Ei = P->wk.U; }
    } else {
        *Yi = Y;
    }
}

/* The backward of ltf__injection (and of the positions): dh = dL/du in; dE += its share,
 * dY = dL/dY (NULL: not wanted), dwpe += sum_p dh. */
static void ltf__injection_backward(const ltf__pass *P, const float *Y, const float *dh, float *dY) {
    const ltf_config *c = &P->m->cfg;
    const ltf_backend *be = P->be;
    float *dE = P->wk.dE, *dwpe = P->store->g.wpe;   /* (no_pos_emb: zeroed after the backward) */
    size_t rc = (size_t)P->BT * P->C;
    if (c->kind == LTF_TIED) {                                  /* u = Y, Y_0 = E */
        be->inject_backward(Y ? dY : NULL, Y ? NULL : dE, dwpe, dh, P->B, P->N, P->C, P->keep_lo, P->keep_hi);
    } else if (c->loop_func == LTF_LOOP_MUL) {                  /* u = Y * E, Y_0 = 1 */
        be->inject_backward(NULL, NULL, dwpe, dh, P->B, P->N, P->C, P->keep_lo, P->keep_hi);
        if (Y) be->mul_backward(dY, dE, dh, Y, P->wk.E, rc);   /* dY = dh * E, dE += dh * Y */
        else be->add(dE, dh, rc);
    } else {                                                    /* u = mask(Y) + E */
        be->inject_backward(dY, dE, dwpe, dh, P->B, P->N, P->C, P->keep_lo, P->keep_hi);
        if (c->inject_every_block) be->add(dE, dh, rc);         /* and Y' = E */
    }
}

/* Forward of f on u = mask(Y) + E (§4; Y == NULL is Y = 0; the mask and E are the pass's),
 * every intermediate into a (its out is f(u)). The first op is the injection with the
 * position embedding and ln_1: h = u + wpe, ln1 = ln_1(h). */
static void ltf__backbone_forward(const ltf__pass *P, ltf_acts *a, const float *Y) {
    const ltf_backend *be = P->be;
    const ltf_weights *w = &P->store->w;
    int C = P->C, H = P->H, B = P->B, N = P->N, BT = P->BT, L = P->m->cfg.n_layer;
    size_t rc = (size_t)BT * C, bhnn = (size_t)B * H * N * N;
    float *tmp = P->wk.dtmp;
    const float *Yi, *Ei;
    int every = P->m->cfg.inject_every_block;
    ltf__injection(P, Y, &Yi, &Ei);
    be->inject_layernorm(a->h, a->ln1, a->ln1_mean, a->ln1_rstd, Yi, Ei, P->wpe, w->h[0].ln1_w, w->h[0].ln1_b,
                         B, N, C, P->keep_lo, P->keep_hi);                             /* h = mask(Y) + E + wpe */
    for (int l = 0; l < L; l++) {
        const ltf_block *p = &w->h[l];
        float *x = a->h + l * rc, *ln1 = a->ln1 + l * rc, *qkv = a->qkv + l * 3 * rc;
        float *att = a->att + l * bhnn, *atty = a->atty + l * rc, *hmid = a->hmid + l * rc;
        float *ln2 = a->ln2 + l * rc, *fch = a->fch + l * 4 * rc, *fcg = a->fch_gelu + l * 4 * rc;
        be->matmul_forward(qkv, ln1, p->qkv_w, p->qkv_b, BT, C, 3 * C);
        be->attention_forward(atty, att, qkv, B, N, C, H);
        be->matmul_forward(tmp, atty, p->proj_w, p->proj_b, BT, C, C);
        be->residual_layernorm_forward(hmid, ln2, a->ln2_mean + l * BT, a->ln2_rstd + l * BT,
                                       x, tmp, p->ln2_w, p->ln2_b, BT, C);   /* hmid = h + attn(ln_1(h)) */
        be->matmul_gelu_forward(fch, fcg, ln2, p->fc_w, p->fc_b, BT, C, 4 * C);   /* fcg = GELU(c_fc(ln2)) */
        be->matmul_forward(tmp, fcg, p->fcp_w, p->fcp_b, BT, 4 * C, C);
        /* h[l+1] = hmid + mlp(ln_2(hmid)), and the LayerNorm that reads it: the next block's
         * ln_1, or after the last block ln_f, whose output is f(u) */
        int last = l + 1 == L;
        if (every && !last) be->add(tmp, P->wk.E, rc);        /* §12: the next block's input + E */
        be->residual_layernorm_forward(a->h + (l + 1) * rc, last ? a->out : ln1 + rc,
                                       last ? a->lnf_mean : a->ln1_mean + (l + 1) * BT,
                                       last ? a->lnf_rstd : a->ln1_rstd + (l + 1) * BT, hmid, tmp,
                                       last ? w->lnf_w : w->h[l + 1].ln1_w, last ? w->lnf_b : w->h[l + 1].ln1_b, BT, C);
    }
}

/* Backward of f on the state Y that entered (NULL: the initial one): given dout = dL/d f(u),
 * ADDS the parameter gradients into the store's g and E's share of dL/du into dE, and writes
 * dY = dL/dY (mask(dL/du) for the additive loop) unless dY is NULL. Clobbers dout, which may
 * be dY. */
static void ltf__backbone_backward(const ltf__pass *P, const ltf_acts *a, float *dout, float *dY, const float *Y) {
    const ltf_backend *be = P->be;
    const ltf_weights *w = &P->store->w;
    const ltf_weights *g = &P->store->g;
    const ltf__work *wk = &P->wk;
    int C = P->C, H = P->H, B = P->B, N = P->N, BT = P->BT, L = P->m->cfg.n_layer;
    size_t rc = (size_t)BT * C, bhnn = (size_t)B * H * N * N;
    size_t layer_span = (size_t)(wk->dfcg - wk->dln2) + 4 * rc;   /* dln2 .. dfcg */
    float *dh = wk->dh;
    be->zero(dh, (size_t)(wk->dln2 - dh) + layer_span);          /* dh and the last layer's buffers */
    be->layernorm_backward(dh, g->lnf_w, g->lnf_b, dout, a->h + L * rc, w->lnf_w, a->lnf_mean, a->lnf_rstd, BT, C);
    for (int l = L - 1; l >= 0; l--) {
        const ltf_block *p = &w->h[l], *gp = &g->h[l];
        const float *x = a->h + l * rc, *ln1 = a->ln1 + l * rc, *qkv = a->qkv + l * 3 * rc;
        const float *att = a->att + l * bhnn, *atty = a->atty + l * rc, *hmid = a->hmid + l * rc;
        const float *ln2 = a->ln2 + l * rc, *fch = a->fch + l * 4 * rc, *fcg = a->fch_gelu + l * 4 * rc;
        if (l < L - 1) be->zero(wk->dln2, layer_span);
        /* dh is dL/dh[l+1]; h[l+1] = hmid + mlp(ln_2(hmid)): the residual passes dh to hmid */
        be->matmul_gelu_backward(wk->dfch, gp->fcp_w, gp->fcp_b, dh, fcg, p->fcp_w, fch, wk->dfcg, BT, 4 * C, C);
        be->matmul_backward(wk->dln2, gp->fc_w, gp->fc_b, wk->dfch, ln2, p->fc_w, BT, C, 4 * C);
        be->layernorm_backward(dh, gp->ln2_w, gp->ln2_b, wk->dln2, hmid, p->ln2_w,
                               a->ln2_mean + l * BT, a->ln2_rstd + l * BT, BT, C);   /* dh = dL/dhmid */
        /* hmid = x + attn(ln_1(x)) */
        be->matmul_backward(wk->dtmp, gp->proj_w, gp->proj_b, dh, atty, p->proj_w, BT, C, C);
        be->attention_backward(wk->dqkv, wk->datt, wk->dtmp, qkv, att, B, N, C, H);
        be->matmul_backward(wk->dln1, gp->qkv_w, gp->qkv_b, wk->dqkv, ln1, p->qkv_w, BT, C, 3 * C);
        be->layernorm_backward(dh, gp->ln1_w, gp->ln1_b, wk->dln1, x, p->ln1_w,
                               a->ln1_mean + l * BT, a->ln1_rstd + l * BT, BT, C);   /* dh = dL/dx */
        if (P->m->cfg.inject_every_block && l > 0) be->add(wk->dE, dh, rc);   /* x held + E (§12) */
    }
    /* h[0] = u + wpe: dh is dL/du too */
    ltf__injection_backward(P, Y, dh, dY);
}

/* ============================== [8] the loop, the loss, the training pass ==============================
 * §1: tokens z[2i] = x_i, z[2i+1] = (y_i, 0, ..., 0);  E = read_in(z).
 * §4: Y_0 = 0;  Y_{t+1} = f(mask(Y_t) + E);  the prediction of iteration t+1 for point i is
 *     read_out(Y_{t+1})[2i]. The standard model (§3) is the same code with b = 1 and no mask:
 *     f(0 + E) = f(E).
 * Training: s0 = max(0, b - T). Iterations t < s0 run forward only on the scratch activation
 * set (so memory does not grow with b); iterations s0..b-1 keep their activations in the T
 * window sets. Loss = mean over the n_win = b - s0 window iterations, B prompts and n points
 * of (y_hat - y)^2; backward runs t = b-1 down to s0, and Y_s0 is a constant. */

/* Checks the batch, makes room for it and puts it where the backend reads it. xs = ys = NULL
 * (a backend with its own memory only): the batch it holds, drawn by ltf_train_next. `when`:
 * LTF_AT_TRAIN or LTF_AT_EVAL, which decides whether the state mask applies. */
static int ltf__begin(ltf_model *m, ltf__pass *P, const float *xs, const float *ys, int B, int n, int when) {
    const ltf_config *c = &m->cfg;
    ltf_store *store = &m->run;
    int held = !xs && !ys && !m->backend->host_memory && B > 0 && store->batch_B == B && store->batch_n == n;
    if ((!xs || !ys) && !held) return ltf__fail(m->err, "xs or ys is NULL");
    if (B < 1) return ltf__fail(m->err, "batch size B = %d: must be at least 1", B);
    if (n < 1 || n > c->n_positions)
        return ltf__fail(m->err, "n = %d points: must be in 1..n_positions (%d)", n, c->n_positions);
    if (c->mask_mode != LTF_MASK_NONE && c->mask_pairs > n)
        return ltf__fail(m->err, "mask keeps %d pairs but the prompt has only n = %d points", c->mask_pairs, n);
    for (size_t i = 0; c->n_classes && ys && i < (size_t)B * n; i++)   /* §13: labels index the logits */
        if (!(ys[i] >= 0.0f && ys[i] < (float)c->n_classes && ys[i] == floorf(ys[i])))
            return ltf__fail(m->err, "ys[%zu] = %g: a classification model (n_classes = %d) takes class indices 0..%d",
                             i, (double)ys[i], c->n_classes, c->n_classes - 1);
    if (ltf__reserve(m, B, 2 * n) != 0) return -1;
    if (!held && ltf__put_batch(m, xs, ys, B, n) != 0) return -1;
    memset(P, 0, sizeof *P);
    P->m = m; P->be = m->backend; P->store = store;
    P->B = B; P->n = n; P->N = 2 * n; P->BT = B * 2 * n; P->C = c->n_embd; P->d = c->n_dims; P->H = c->n_head;
    P->keep_lo = 0; P->keep_hi = P->N;
    if ((c->mask_when & when) != 0 && c->mask_mode == LTF_MASK_KEEP_LAST) P->keep_lo = P->N - 2 * c->mask_pairs;
    if ((c->mask_when & when) != 0 && c->mask_mode == LTF_MASK_KEEP_FIRST) P->keep_hi = 2 * c->mask_pairs;
    P->wk = ltf__work_at(store->work, c, B, P->N);
    P->wpe = c->no_pos_emb ? P->wk.pos0 : store->w.wpe;
    return 0;
}

/* z = tokens(xs, ys), E = read_in(z) */
static void ltf__embed(const ltf__pass *P) {
    const ltf_store *store = P->store;
    if (P->m->cfg.no_pos_emb) P->be->zero(P->wk.pos0, (size_t)P->N * P->C);
    P->be->tokens(P->wk.z, store->xs, store->ys, P->B, P->n, P->d);
    P->be->matmul_forward(P->wk.E, P->wk.z, store->w.read_in_w, store->w.read_in_b, P->BT, P->d, P->C);
}

/* The read-out of the state Y into pred: B*n predictions (§1), or the K logits of every token
 * (§13: a Linear over all B*N rows; the loss reads the x rows). */
static void ltf__read_out(const ltf__pass *P, float *pred, const float *Y) {
    const ltf_weights *w = &P->store->w;
    int K = P->m->cfg.n_classes;
    if (K) P->be->matmul_forward(pred, Y, w->read_out_w, w->read_out_b, P->BT, P->C, K);
    else P->be->read_out(pred, Y, w->read_out_w, w->read_out_b, P->B, P->n, P->C);
}

/* ... and its loss (squared error, §4; cross-entropy, §13) into the store's stats (first: set) */
static void ltf__read_out_loss(const ltf__pass *P, float *pred, const float *Y, int first) {
    const ltf_store *store = P->store;
    int K = P->m->cfg.n_classes;
    if (!K) {
        P->be->read_out_loss(pred, store->stats, Y, store->w.read_out_w, store->w.read_out_b, store->ys, P->B, P->n, P->C, first);
        return;
    }
    ltf__read_out(P, pred, Y);
    P->be->ce_loss(store->stats, pred, store->ys, P->B, P->n, K, first);
}

/* The backward of ltf__read_out_loss: pred becomes dL/dpred; dY, dw, db += the read-out's backward */
static void ltf__read_out_loss_backward(const ltf__pass *P, float *pred, const float *Y, float *dY, float denom) {
    const ltf_store *store = P->store;
    int K = P->m->cfg.n_classes;
    if (!K) {
        P->be->read_out_loss_backward(dY, store->g.read_out_w, store->g.read_out_b, pred, store->ys, denom, Y,
                                      store->w.read_out_w, P->B, P->n, P->C);
        return;
    }
    P->be->ce_backward(pred, store->ys, denom, P->B, P->n, K);
    P->be->matmul_backward(dY, store->g.read_out_w, store->g.read_out_b, pred, Y, store->w.read_out_w, P->BT, P->C, K);
}

/* Runs `iters` loop iterations forward on ONE activation set (reused every time: nothing is
 * kept), starting from state Y (NULL means Y = 0). Returns the final state (a->out, or Y when
 * iters = 0). preds [iters, B, n] (optional; [iters, BT, K] for §13) gets the read-out after every iteration. */
static const float *ltf__loop_forward(const ltf__pass *P, ltf_acts *a, int iters, const float *Y, float *preds) {
    size_t pf = ltf__pred_floats(&P->m->cfg, P->B, P->N);
    for (int t = 0; t < iters; t++) {
        ltf__backbone_forward(P, a, Y);                                 /* Y_{t+1} = f(mask(Y_t) + E) */
        Y = a->out;
        if (preds) ltf__read_out(P, preds + (size_t)t * pf, Y);
    }
    return Y;
}

/* The backward of the window (§4, "Backward of the loop"): from the predictions of the loss
 * iterations in wk.pred to every gradient; then the gradient check. Y_s0: the state that
 * entered iteration s0 (NULL: the initial one). */
static void ltf__window_backward(const ltf__pass *P, int s0, int b_loops, const float *Y_s0) {
    const ltf_backend *be = P->be;
    const ltf_config *c = &P->m->cfg;
    ltf_store *store = P->store;
    const ltf__work *wk = &P->wk;
    size_t bn = (size_t)P->B * P->n, pf = ltf__pred_floats(c, P->B, P->N);
    int first_loss = b_loops - ltf__loss_iters(c);
    be->zero(store->grads, P->m->n_params);
    be->zero(wk->dY, (size_t)(wk->dh - wk->dY));                                       /* dY and dE */
    for (int t = b_loops - 1; t >= s0; t--) {
        ltf_acts *a = &store->sets[t - s0];
        float *dpred = wk->pred + (size_t)(t - s0) * pf;   /* the prediction, overwritten by dL/dpred */
        if (t >= first_loss) ltf__read_out_loss_backward(P, dpred, a->out, wk->dY, (float)((double)ltf__loss_iters(c) * bn));
        /* dY: dL/dY_{t+1} in, dL/dY_t out (not for Y_s0, a constant) */
        ltf__backbone_backward(P, a, wk->dY, t > s0 ? wk->dY : NULL, t > s0 ? store->sets[t - 1 - s0].out : Y_s0);
    }
    be->matmul_backward(NULL, store->g.read_in_w, store->g.read_in_b, wk->dE, wk->z, store->w.read_in_w, P->BT, P->d, P->C);
    if (c->no_pos_emb) be->zero(store->g.wpe, (size_t)(2 * c->n_positions + 1) * P->C);   /* wpe unused */
    be->check_finite(store->stats, store->grads, P->m->n_params);
}

/* Queues the training forward over b_loops iterations (the config's b, or the curriculum's b
 * of this step; 1 for the standard model): the window's loss sum into store->stats; with
 * want_grad also the backward and the gradient check. Y_given (optional, backend memory
 * [BT, C]) replaces the s0 pre-window iterations: the window starts there. Reads nothing. */
static void ltf__issue_pass(const ltf__pass *P, int b_loops, int want_grad, const float *Y_given) {
    ltf_store *store = P->store;
    int s0 = b_loops - ltf__window(&P->m->cfg);   /* >= 0: the curriculum keeps b >= T */
    int first_loss = b_loops - ltf__loss_iters(&P->m->cfg);
    size_t pf = ltf__pred_floats(&P->m->cfg, P->B, P->N);
    ltf__embed(P);
    const float *Y = NULL;                                             /* Y_s0, a constant */
    if (s0 > 0) Y = Y_given ? Y_given : ltf__loop_forward(P, &store->sets[store->n_sets - 1], s0, NULL, NULL);
    const float *Y_s0 = Y;
    for (int t = s0; t < b_loops; t++) {                               /* the window */
        ltf_acts *a = &store->sets[t - s0];
        ltf__backbone_forward(P, a, Y);
        Y = a->out;
        if (t >= first_loss) ltf__read_out_loss(P, P->wk.pred + (size_t)(t - s0) * pf, Y, t == first_loss);
    }
    if (want_grad) ltf__window_backward(P, s0, b_loops, Y_s0);
}

/* The one read of a pass: the loss (into *loss and m->loss) and, with want_grad, the index of
 * the first non-finite gradient (m->grad_bad; n_params if none). */
static int ltf__read_pass(ltf_model *m, const ltf__pass *P, int want_grad, float *loss) {
    ltf_stats got;
    double count = (double)ltf__loss_iters(&m->cfg) * P->B * P->n;   /* T iterations (looped) */
    if (P->be->get(&got, P->store->stats, sizeof got, m->err, want_grad ? "the training pass" : "the forward pass") != 0)
        return -1;
    m->loss = got.loss_sum / count;
    m->grad_bad = want_grad && got.first_bad < m->n_params ? (size_t)got.first_bad : m->n_params;
    *loss = (float)m->loss;
    if (!isfinite(*loss))
        return ltf__fail(m->err, "loss is %s: the model diverged (try a smaller lr)", isnan(*loss) ? "NaN" : "Inf");
    return 0;
}

static int ltf__train_pass(ltf_model *m, const float *xs, const float *ys, int B, int n, int b_loops,
                           float *loss, int want_grad, const float *Ys_given) {
    ltf__pass P;
    if (ltf__begin(m, &P, xs, ys, B, n, LTF_AT_TRAIN) != 0) return -1;
    int given = b_loops > ltf__window(&m->cfg) && Ys_given;
    if (given &&   /* into dY, which nothing uses before the backward */
        P.be->put(P.wk.dY, Ys_given, (size_t)P.BT * P.C * sizeof(float), m->err) != 0) return -1;
    ltf__issue_pass(&P, b_loops, want_grad, given ? P.wk.dY : NULL);
    return ltf__read_pass(m, &P, want_grad, loss);
}

int ltf_forward_backward(ltf_model *m, const float *xs, const float *ys, int B, int n, float *loss) {
    return ltf__train_pass(m, xs, ys, B, n, ltf__train_loops(&m->cfg), loss, 1, NULL);
}

int ltf_forward_loss(ltf_model *m, const float *xs, const float *ys, int B, int n, float *loss) {
    return ltf__train_pass(m, xs, ys, B, n, ltf__train_loops(&m->cfg), loss, 0, NULL);
}

int ltf_forward_loss_from(ltf_model *m, const float *xs, const float *ys, int B, int n,
                          const float *Ys, float *loss) {
    return ltf__train_pass(m, xs, ys, B, n, ltf__train_loops(&m->cfg), loss, 0, Ys);
}

/* Y_s0 [B*2n, C]: the state after the s0 = b - T pre-window iterations (zeros when s0 = 0). */
int ltf_window_start_state(ltf_model *m, const float *xs, const float *ys, int B, int n, float *Ys) {
    ltf__pass P;
    if (ltf__begin(m, &P, xs, ys, B, n, LTF_AT_TRAIN) != 0) return -1;
    int s0 = ltf__train_loops(&m->cfg) - ltf__window(&m->cfg);
    size_t rc = (size_t)P.BT * P.C;
    ltf__embed(&P);
    const float *Y = ltf__loop_forward(&P, &P.store->sets[P.store->n_sets - 1], s0, NULL, NULL);
    if (Y) return P.be->get(Ys, Y, rc * sizeof(float), m->err, "ltf_window_start_state");
    memset(Ys, 0, rc * sizeof(float));
    return P.be->finish(m->err, "ltf_window_start_state");
}

/* Reads `iters` read-outs of B x n points from the backend into dst: [iters, B, n], or for §13
 * [iters, B, n, K], the logits of the x tokens (the backend holds every token's). */
static int ltf__get_preds(ltf_model *m, float *dst, const float *src, int iters, int B, int n) {
    int K = m->cfg.n_classes;
    size_t bn = (size_t)B * n, pf = ltf__pred_floats(&m->cfg, B, 2 * n);
    if (!K) return m->backend->get(dst, src, (size_t)iters * bn * sizeof(float), m->err, "ltf_predict");
    float *tmp = (float *)LTF_MALLOC((size_t)iters * pf * sizeof(float));
    if (!tmp) return ltf__fail(m->err, "out of memory for %d x %zu logits", iters, pf);
    int rc = m->backend->get(tmp, src, (size_t)iters * pf * sizeof(float), m->err, "ltf_predict");
    for (size_t t = 0; rc == 0 && t < (size_t)iters; t++)
        for (size_t pi = 0; pi < bn; pi++)
            memcpy(dst + (t * bn + pi) * K, tmp + t * pf + 2 * pi * K, (size_t)K * sizeof(float));
    LTF_FREE(tmp);
    return rc;
}

/* Evaluation forward (§4, last point): runs n_loops iterations (any number, e.g. 500; the
 * standard and tied models ignore it and run their own passes), on the scratch set only.
 * pred_last [B, n] gets the last iteration, pred_iters [n_loops, B, n] (optional) every
 * iteration; a classification model (§13) writes K logits per point: [B, n, K], [n_loops, B, n, K]. */
int ltf_predict(ltf_model *m, const float *xs, const float *ys, int B, int n, int n_loops,
                float *pred_last, float *pred_iters) {
    ltf__pass P;
    n_loops = ltf__eval_loops(&m->cfg, n_loops);
    if (n_loops < 1 || n_loops > 1000000)
        return ltf__fail(m->err, "n_loops = %d for evaluation: must be in 1..1000000", n_loops);
    if (ltf__begin(m, &P, xs, ys, B, n, LTF_AT_EVAL) != 0) return -1;
    ltf_store *store = P.store;
    size_t pf = ltf__pred_floats(&m->cfg, B, 2 * n), all = (size_t)n_loops * pf;
    if (pred_iters && ltf__store_room(m, &store->preds, &store->cap_preds, all, "the predictions of every loop iteration") != 0)
        return -1;
    ltf__embed(&P);
    const float *Y = ltf__loop_forward(&P, &store->sets[store->n_sets - 1], n_loops, NULL, pred_iters ? store->preds : NULL);
    if (pred_last) ltf__read_out(&P, P.wk.pred, Y);
    if (pred_last && ltf__get_preds(m, pred_last, P.wk.pred, 1, B, n) != 0) return -1;
    if (pred_iters && ltf__get_preds(m, pred_iters, store->preds, n_loops, B, n) != 0) return -1;
    return P.be->finish(m->err, "ltf_predict");
}

/* The states a probe reads (declaration): with the evaluation mask, on the scratch set. */
int ltf_hidden_states(ltf_model *m, const float *xs, const float *ys, int B, int n, int n_loops, float *states) {
    ltf__pass P;
    int standard = m->cfg.kind == LTF_STANDARD;
    if (!standard && (n_loops < 1 || n_loops > 100000))
        return ltf__fail(m->err, "n_loops = %d for hidden states: must be in 1..100000", n_loops);
    if (!states) return ltf__fail(m->err, "states is NULL");
    if (ltf__begin(m, &P, xs, ys, B, n, LTF_AT_EVAL) != 0) return -1;
    ltf_store *store = P.store;
    ltf_acts *a = &store->sets[store->n_sets - 1];
    size_t rc = (size_t)P.BT * P.C;
    ltf__embed(&P);
    if (standard) {
        ltf__backbone_forward(&P, a, NULL);
        for (int l = 0; l <= m->cfg.n_layer; l++)
            if (P.be->get(states + l * rc, a->h + l * rc, rc * sizeof(float), m->err, "ltf_hidden_states") != 0) return -1;
        return 0;
    }
    if (P.be->get(states, P.wk.E, rc * sizeof(float), m->err, "ltf_hidden_states") != 0) return -1;
    const float *Y = NULL;
    for (int t = 1; t <= n_loops; t++) {
        Y = ltf__loop_forward(&P, a, 1, Y, NULL);
        if (P.be->get(states + t * rc, Y, rc * sizeof(float), m->err, "ltf_hidden_states") != 0) return -1;
    }
    return 0;
}

/* ============================== [9] Adam and the training step ==============================
 * PyTorch's Adam (bias-corrected), step t = 1, 2, ... (§6):
 *   m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
 *   p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * with optional decoupled weight decay (AdamW): p *= 1 - lr * wd before the update. The paper
 * uses plain Adam (wd = 0). The host computes step t's sizes into the store's
 * ltf_step_scalars; the backend's adam op (the update ltf_adam_update of [5]) runs it on
 * every float. */
static ltf_step_scalars ltf__adam_scalars(const ltf_train_config *t, long adam_t) {
    ltf_step_scalars s;
    double bc1 = 1.0 - pow((double)t->beta1, (double)adam_t);
    double bc2 = 1.0 - pow((double)t->beta2, (double)adam_t);
    memset(&s, 0, sizeof s);
    s.step = (float)(t->lr / bc1); s.sqrt_bc2 = (float)sqrt(bc2);
    s.decay = 1.0f - t->lr * t->weight_decay;
    s.beta1 = t->beta1; s.beta2 = t->beta2; s.eps = t->eps;
    return s;
}

static int ltf__adam_config_check(ltf_model *m, const ltf_train_config *t) {
    ltf_train_config only_adam = *t;   /* batch shape is not Adam's business */
    char err[LTF_ERR_LEN];
    only_adam.batch_size = 1; only_adam.n_points = 1;
    if (ltf_train_config_check(&only_adam, &m->cfg, err) != 0) return ltf__fail(m->err, "%s", err);
    return 0;
}

int ltf_adam_step(ltf_model *m, const ltf_train_config *t) {
    if (ltf__adam_config_check(m, t) != 0) return -1;
    ltf_store *store = &m->run;
    ltf_step_scalars s = ltf__adam_scalars(t, m->adam_t + 1);
    if (m->backend->put(store->scalars, &s, sizeof s, m->err) != 0) return -1;
    m->backend->adam(store->params, store->adam_m, store->adam_v, store->grads, m->n_params, store->scalars, NULL);
    if (m->backend->finish(m->err, "the Adam step") != 0) return -1;
    m->adam_t++;
    return 0;
}

/* What a recording of a training step depends on besides the model's numbers (which live in
 * the store's buffers): those buffers, the shape, and the task where the backend draws. */
typedef struct {
    const ltf_store *store;
    unsigned generation;
    int B, n, b_loops, drawn;
    ltf_task task;
} ltf__step_shape;

/* A training step with b_loops iterations as one unit of work (§4, §6): [the batch drawn by the
 * backend (draw != NULL, counter key `key`),] forward, backward, the gradient check and Adam,
 * which skips itself when the loss or a gradient is not finite. Nothing is read until all of
 * it is queued, so a backend with a recorder records it once per shape and replays it; then
 * one read: the loss and the check. A bad step returns -1 and leaves the parameters and the
 * Adam state exactly as they were, so nothing is lost. */
static int ltf__train_step_loops(ltf_model *m, const ltf_train_config *t, const float *xs, const float *ys,
                                 int B, int n, int b_loops, const ltf_task *draw, uint64_t key, float *loss) {
    ltf__pass P;
    if (ltf__adam_config_check(m, t) != 0 || ltf__begin(m, &P, xs, ys, B, n, LTF_AT_TRAIN) != 0) return -1;
    const ltf_backend *be = P.be;
    ltf_store *store = P.store;
    ltf_step_scalars s = ltf__adam_scalars(t, m->adam_t + 1);
    s.key = key;
    if (be->put(store->scalars, &s, sizeof s, m->err) != 0) return -1;
    int replayed = 0;
    if (be->graph_begin) {
        ltf__step_shape k;
        memset(&k, 0, sizeof k);   /* the padding too: keys are compared as bytes */
        k.store = store; k.generation = store->generation; k.B = B; k.n = n; k.b_loops = b_loops;
        k.drawn = draw != NULL;
        if (draw) k.task = *draw;
        if ((replayed = be->graph_begin(m, &k, sizeof k)) < 0) return -1;
    }
    if (!replayed) {
        if (draw) be->sample(draw, store->scalars, B, n, store->batch, ltf__batch_ys(m));
        ltf__issue_pass(&P, b_loops, 1, NULL);
        be->adam(store->params, store->adam_m, store->adam_v, store->grads, m->n_params, store->scalars, store->stats);
        if (be->graph_end && be->graph_end(m) != 0) return -1;
    }
    if (ltf__read_pass(m, &P, 1, loss) != 0) return -1;
    if (m->grad_bad < m->n_params)
        return ltf__fail(m->err, "gradient of %s is not finite: step skipped, parameters unchanged",
                         ltf__tensor_at(m, m->grad_bad));
    m->adam_t++;
    return 0;
}

int ltf_train_step(ltf_model *m, const ltf_train_config *t, const float *xs, const float *ys,
                   int B, int n, float *loss) {
    return ltf__train_step_loops(m, t, xs, ys, B, n, ltf__train_loops(&m->cfg), NULL, 0, loss);
}

/* ============================== [10] tasks ==============================
 * §7. One fresh function per prompt; x ~ N(0, I_d). The dims curriculum sets coordinates
 * >= d_active of x (and w) to zero, except for decision_tree, where the paper's code ignores it.
 *   linear_regression         y = w . x,               w ~ N(0, I_d)
 *   noisy_linear_regression   y = w . x + N(0, 0.1^2)
 *   sparse_linear_regression  w as above, then only a random 3-subset of ALL d coordinates kept
 *   decision_tree             depth 4: inner node i tests x[c_i] > 0 (c_i ~ U{0..d-1}) and goes
 *                             to 2i+1 (no) or 2i+2 (yes); the 16 leaves hold values ~ N(0, 1)
 *   relu_2nn_regression       y = sqrt(2/100) relu(x W1) W2, W1 [d,100], W2 [100] ~ N(0, 1)
 * Normalized error divides by d (sparse: by 3, tree: by 1), so that predicting 0 scores ~1. */

static void ltf__sample_x(const ltf_task *t, ltf_rng *rng, int da, float *x) {
    for (int j = 0; j < t->n_dims; j++) x[j] = j < da ? (float)ltf_rng_normal(rng) : 0.0f;
}

/* linear, noisy and sparse regression: w, then the n points of the prompt */
static void ltf__sample_linear(const ltf_task *t, ltf_rng *rng, int B, int n, float *xs, float *ys) {
    int d = t->n_dims, da = t->n_dims_active;
    double w[LTF_MAX_DIMS];   /* d <= LTF_MAX_DIMS: ltf_task_make clamps it */
    for (int p = 0; p < B; p++) {
        for (int j = 0; j < d; j++) w[j] = j < da ? ltf_rng_normal(rng) : 0.0;
        if (t->kind == LTF_TASK_SPARSE_LINEAR) {   /* keep a uniform random k-subset of 0..d-1 */
            int keep = t->sparsity < d ? t->sparsity : d, left = keep;
            for (int j = 0; j < d; j++) {          /* selection sampling: P(keep j) = left / (d - j) */
                if ((double)left > ltf_rng_uniform(rng) * (double)(d - j)) left--;
                else w[j] = 0.0;
            }
        }
        for (int i = 0; i < n; i++) {
            float *x = xs + ((size_t)p * n + i) * d;
            ltf__sample_x(t, rng, da, x);
            double y = 0.0;
            for (int j = 0; j < d; j++) y += w[j] * x[j];
            if (t->kind == LTF_TASK_NOISY_LINEAR) y += t->noise_std * ltf_rng_normal(rng);
            ys[(size_t)p * n + i] = (float)y;
        }
    }
}

static void ltf__sample_tree(const ltf_task *t, ltf_rng *rng, int B, int n, float *xs, float *ys) {
    int d = t->n_dims, inner = (1 << t->depth) - 1;
    int coord[(1 << 10) - 1];
    double leaf[1 << 10];
    for (int p = 0; p < B; p++) {
        for (int i = 0; i < inner; i++) coord[i] = (int)(ltf_rng_uniform(rng) * d);
        for (int i = 0; i <= inner; i++) leaf[i] = ltf_rng_normal(rng);
        for (int i = 0; i < n; i++) {
            float *x = xs + ((size_t)p * n + i) * d;
            ltf__sample_x(t, rng, d, x);          /* not truncated: the paper's code */
            int node = 0;
            while (node < inner) node = 2 * node + 1 + (x[coord[node]] > 0.0f);
            ys[(size_t)p * n + i] = (float)leaf[node - inner];
        }
    }
}

/* relu net: the n points first, then one hidden unit at a time (column of W1, entry of W2), so
 * W1 never needs d x 100 floats of storage. */
static void ltf__sample_relu(const ltf_task *t, ltf_rng *rng, int B, int n, float *xs, float *ys) {
    int d = t->n_dims, da = t->n_dims_active;
    double w1[LTF_MAX_DIMS], scale = sqrt(2.0 / t->hidden);
    for (int p = 0; p < B; p++) {
        float *x0 = xs + (size_t)p * n * d, *y0 = ys + (size_t)p * n;
        for (int i = 0; i < n; i++) { ltf__sample_x(t, rng, da, x0 + (size_t)i * d); y0[i] = 0.0f; }
        for (int h = 0; h < t->hidden; h++) {
            for (int j = 0; j < d; j++) w1[j] = ltf_rng_normal(rng);   /* W1 is not truncated */
            double w2 = ltf_rng_normal(rng);
            for (int i = 0; i < n; i++) {
                double z = 0.0;
                for (int j = 0; j < d; j++) z += w1[j] * x0[(size_t)i * d + j];
                if (z > 0.0) y0[i] += (float)(scale * z * w2);
            }
        }
    }
}

static const char *const ltf__task_names[LTF_TASK_COUNT] = {
    "linear_regression", "noisy_linear_regression", "sparse_linear_regression", "decision_tree",
    "relu_2nn_regression"};

const char *ltf_task_kind_name(int kind) {
    return kind >= 0 && kind < LTF_TASK_COUNT ? ltf__task_names[kind] : "?";
}

int ltf_task_kind_from_name(const char *name) {
    for (int k = 0; name && k < LTF_TASK_COUNT; k++)
        if (strcmp(name, ltf__task_names[k]) == 0) return k;
    return -1;
}

ltf_task ltf_task_make(int kind, int d, int d_active) {
    ltf_task t;
    memset(&t, 0, sizeof t);
    t.kind = kind >= 0 && kind < LTF_TASK_COUNT ? kind : LTF_TASK_LINEAR;
    t.name = ltf__task_names[t.kind];
    t.n_dims = d < 1 ? 1 : d > LTF_MAX_DIMS ? LTF_MAX_DIMS : d;   /* a model can't have other d:
                                                 ltf_evaluate then reports the mismatch */
    t.n_dims_active = d_active < 1 || d_active > t.n_dims ? t.n_dims : d_active;
    t.error_scale = (float)t.n_dims;
    t.noise_std = 0.1f; t.sparsity = 3; t.depth = 4; t.hidden = 100;
    t.sample = ltf__sample_linear;
    if (t.kind == LTF_TASK_SPARSE_LINEAR) t.error_scale = (float)t.sparsity;
    if (t.kind == LTF_TASK_DECISION_TREE) { t.error_scale = 1.0f; t.sample = ltf__sample_tree; }
    if (t.kind == LTF_TASK_RELU_2NN) t.sample = ltf__sample_relu;
    return t;
}

ltf_task ltf_task_linear_regression(int d, int d_active) { return ltf_task_make(LTF_TASK_LINEAR, d, d_active); }

void ltf_task_sample(const ltf_task *t, ltf_rng *rng, int B, int n, float *xs, float *ys) {
    t->sample(t, rng, B, n, xs, ys);
}

/* ============================== [11] evaluation ==============================
 * §8: error at in-context index k = squared error of the prediction for point k (which has
 * seen k earlier examples), averaged over prompts, divided by task->error_scale (d for linear
 * regression). err_by_k [n]; err_by_iter [n_loops] (optional): error averaged over all k after
 * each loop iteration (the standard and tied models run their own passes; the first n_loops of
 * them are written); a classification model (§13) reports the error rate instead, not scaled; err_by_prompt [n_prompts, n] (optional): each prompt's normalized squared
 * error, for bootstrap bands. Prompts go through in batches of 64 to bound memory. */
/* One point's error: the squared error (§8), or for a classification model 1 when the largest
 * logit (the first of equals) is not the label's, else 0 (§13). */
static double ltf__point_error(const ltf_model *m, const float *pred, float y) {
    int K = m->cfg.n_classes, best = 0;
    if (!K) return ((double)pred[0] - y) * ((double)pred[0] - y);
    for (int k = 1; k < K; k++) if (pred[k] > pred[best]) best = k;
    return best == (int)y ? 0.0 : 1.0;
}

int ltf_evaluate(ltf_model *m, const ltf_task *task, ltf_rng *rng, int n_prompts, int n,
                 int n_loops, double *err_by_k, double *err_by_iter, float *err_by_prompt) {
    if (task->n_dims != m->cfg.n_dims)
        return ltf__fail(m->err, "task has d = %d but the model has n_dims = %d", task->n_dims, m->cfg.n_dims);
    if (n_prompts < 1) return ltf__fail(m->err, "n_prompts = %d: must be at least 1", n_prompts);
    if (n < 1 || n > m->cfg.n_positions)   /* before any allocation is sized by it */
        return ltf__fail(m->err, "n = %d points: must be in 1..n_positions (%d)", n, m->cfg.n_positions);
    int loops = ltf__eval_loops(&m->cfg, n_loops), chunk = 64, rc = 0;
    int n_iter = loops < n_loops ? loops : n_loops;   /* entries of err_by_iter */
    double scale = m->cfg.n_classes ? 1.0 : task->error_scale;   /* §13: the error rate as it is */
    if (loops < 1 || loops > 1000000)
        return ltf__fail(m->err, "n_loops = %d for evaluation: must be in 1..1000000", n_loops);
    size_t d = (size_t)m->cfg.n_dims, K = m->cfg.n_classes ? (size_t)m->cfg.n_classes : 1;   /* outputs per point */
    float *xs = (float *)LTF_MALLOC(sizeof(float) * chunk * n * d);
    float *ys = (float *)LTF_MALLOC(sizeof(float) * chunk * n);
    float *pred = (float *)LTF_MALLOC(sizeof(float) * chunk * n * K);
    float *iters = err_by_iter ? (float *)LTF_MALLOC(sizeof(float) * (size_t)loops * chunk * n * K) : NULL;
    if (!xs || !ys || !pred || (err_by_iter && !iters)) {
        rc = ltf__fail(m->err, "out of memory for evaluation (%d loops x %d prompts x %d points)", loops, chunk, n);
        goto done;
    }
    for (int k = 0; k < n; k++) err_by_k[k] = 0.0;
    if (err_by_iter) for (int t = 0; t < n_iter; t++) err_by_iter[t] = 0.0;
    for (int p0 = 0; p0 < n_prompts; p0 += chunk) {
        int B = n_prompts - p0 < chunk ? n_prompts - p0 : chunk;
        ltf_task_sample(task, rng, B, n, xs, ys);
        if ((rc = ltf_predict(m, xs, ys, B, n, loops, pred, iters)) != 0) goto done;
        for (int p = 0; p < B; p++)
            for (int k = 0; k < n; k++) {
                double e = ltf__point_error(m, pred + ((size_t)p * n + k) * K, ys[p * n + k]);
                err_by_k[k] += e;
                if (err_by_prompt) err_by_prompt[(size_t)(p0 + p) * n + k] = (float)(e / scale);
            }
        if (err_by_iter)
            for (int t = 0; t < n_iter; t++)
                for (int i = 0; i < B * n; i++) err_by_iter[t] += ltf__point_error(m, iters + ((size_t)t * B * n + i) * K, ys[i]);
    }
    for (int k = 0; k < n; k++) err_by_k[k] /= (double)n_prompts * scale;
    if (err_by_iter) for (int t = 0; t < n_iter; t++) err_by_iter[t] /= (double)n_prompts * n * scale;
done:
    LTF_FREE(xs); LTF_FREE(ys); LTF_FREE(pred); LTF_FREE(iters);
    return rc;
}

/* ============================== [12] curriculum and training runs ==============================
 * §6: each curriculum variable follows value(i) = min(start + floor(i/interval)*inc, end). */
int ltf_schedule_value(const ltf_schedule *s, long step) {
    if (s->interval <= 0 || s->inc == 0 || step < 0) return s->start < s->end ? s->start : s->end;
    long v = (long)s->start + (step / s->interval) * (long)s->inc;
    return v < s->end ? (int)v : s->end;
}

static ltf_schedule ltf__schedule(int start, int end, int inc, int interval) {
    ltf_schedule s;
    s.start = start < end ? start : end; s.end = end; s.inc = inc; s.interval = interval;
    return s;
}

/* §6: dims 5 -> d (+1 / 5000 steps); points 11 -> n (+2 / 5000) for the regressions,
 * 26 -> n (+5 / 5000) for tree and ReLU net; loops T -> b (+2 / 500), window T throughout. */
void ltf_curriculum_default(ltf_curriculum *cur, int task_kind, const ltf_config *c, int n_points) {
    int wide = task_kind == LTF_TASK_DECISION_TREE || task_kind == LTF_TASK_RELU_2NN;
    cur->dims = ltf__schedule(5, c->n_dims, 1, 5000);
    cur->points = ltf__schedule(wide ? 26 : 11, n_points, wide ? 5 : 2, 5000);
    int b = ltf__train_loops(c);
    cur->loops = c->kind == LTF_LOOPED ? ltf__schedule(c->loop_window, b, 2, 500) : ltf__schedule(b, b, 0, 1);
}

void ltf_curriculum_off(ltf_curriculum *cur, const ltf_config *c, int n_points) {
    cur->dims = ltf__schedule(c->n_dims, c->n_dims, 0, 1);
    cur->points = ltf__schedule(n_points, n_points, 0, 1);
    cur->loops = ltf__schedule(ltf__train_loops(c), ltf__train_loops(c), 0, 1);
}

static int ltf__schedule_check(const ltf_schedule *s, const char *what, int lo, int hi, char *err) {
    if (s->start < lo || s->start > hi || s->end < lo || s->end > hi)
        return ltf__fail(err, "curriculum %s: start %d and end %d must be in %d..%d", what, s->start, s->end, lo, hi);
    if (s->inc < 0 || s->interval < 1)
        return ltf__fail(err, "curriculum %s: inc = %d must be >= 0 and interval = %d >= 1", what, s->inc, s->interval);
    return 0;
}

int ltf_curriculum_check(const ltf_curriculum *cur, const ltf_config *c, char err[LTF_ERR_LEN]) {
    int lo = c->kind == LTF_LOOPED ? c->loop_window : ltf__train_loops(c);   /* the window needs b >= T */
    if (ltf__schedule_check(&cur->dims, "dims", 1, c->n_dims, err) != 0) return -1;
    if (ltf__schedule_check(&cur->points, "points", 1, c->n_positions, err) != 0) return -1;
    if (ltf__schedule_check(&cur->loops, "loops", lo, ltf__train_loops(c), err) != 0) return -1;
    return 0;
}

void ltf_train_state_init(ltf_train_state *st, int task_kind, const ltf_train_config *t,
                          const ltf_curriculum *cur, uint64_t data_seed) {
    memset(st, 0, sizeof *st);
    st->task_kind = task_kind;
    st->train = *t;
    st->curriculum = *cur;
    ltf_rng_seed(&st->data_rng, data_seed);
}

int ltf_train_next(ltf_model *m, ltf_train_state *st, float *xs, float *ys, float *loss, int *n_used) {
    const ltf_curriculum *cur = &st->curriculum;
    if (m->cfg.n_classes)   /* the tasks of §7 give numbers, not class indices */
        return ltf__fail(m->err, "a classification model (n_classes = %d) trains on batches of class labels with "
                         "ltf_train_step; the tasks of ltf_train_next are regressions", m->cfg.n_classes);
    if (ltf_curriculum_check(cur, &m->cfg, m->err) != 0) return -1;
    int d_active = ltf_schedule_value(&cur->dims, st->step);
    int n = ltf_schedule_value(&cur->points, st->step);
    int loops = ltf_schedule_value(&cur->loops, st->step);
    ltf_task task = ltf_task_make(st->task_kind, m->cfg.n_dims, d_active);
    ltf_train_config t = st->train;
    t.n_points = n;
    const ltf_task *draw = NULL;
    uint64_t key = 0;
    if (m->backend->sample) {   /* drawn where the backend computes; xs and ys stay unwritten */
        if (task.n_dims != m->cfg.n_dims)
            return ltf__fail(m->err, "task has d = %d but the model has n_dims = %d", task.n_dims, m->cfg.n_dims);
        if (ltf__reserve(m, t.batch_size, 2 * cur->points.end) != 0 ||          /* room for the end */
            ltf__batch_room(m, (size_t)t.batch_size * cur->points.end) != 0) return -1;
        m->run.batch_B = t.batch_size; m->run.batch_n = n;
        draw = &task; key = ltf__step_key(&st->data_rng, st->step);
        xs = ys = NULL;
    } else if (xs) {
        ltf_task_sample(&task, &st->data_rng, t.batch_size, n, xs, ys);
    }
    /* b grows with the curriculum, the window T stays; the standard model runs f once */
    int b_loops = m->cfg.kind == LTF_STANDARD ? 1 : loops;
    if (ltf__train_step_loops(m, &t, xs, ys, t.batch_size, n, b_loops, draw, key, loss) != 0) return -1;
    st->step++;
    if (n_used) *n_used = n;
    return 0;
}

/* ============================== [13] files and checkpoints ============================== */

int ltf_write_atomic(const char *path, const void *data, size_t len, char err[LTF_ERR_LEN]) {
    size_t pl = strlen(path);
    char *tmp = (char *)LTF_MALLOC(pl + 5);
    if (!tmp) return ltf__fail(err, "out of memory writing %s", path);
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp", 5);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        ltf__fail(err, "cannot write %s: %s", tmp, strerror(errno));
        LTF_FREE(tmp);
        return -1;
    }
    /* the first failure's errno is the reason (a full disk: ENOSPC from the write or the flush;
     * what fsync or fclose say after that is noise, e.g. EINVAL) */
    int ok = 1, saved = 0;
    if (len > 0 && fwrite(data, 1, len, f) != len) { ok = 0; saved = errno; }
    if (fflush(f) != 0 && ok) { ok = 0; saved = errno; }
#if defined(_POSIX_C_SOURCE) && _POSIX_C_SOURCE >= 200112L
    if (fsync(fileno(f)) != 0 && ok) { ok = 0; saved = errno; }   /* on disk before the rename makes it visible */
#endif
    if (fclose(f) != 0 && ok) { ok = 0; saved = errno; }
    if (!ok || rename(tmp, path) != 0) {
        if (ok) saved = errno;
        ltf__fail(err, "cannot write %s: %s", path, strerror(saved ? saved : EIO));
        remove(tmp);
        LTF_FREE(tmp);
        return -1;
    }
    LTF_FREE(tmp);
    return 0;
}

/* p (elem-sized items, capacity *cap) moved to a block for at least need items, or p itself
 * when it holds them; NULL when out of memory (p is then untouched). */
static void *ltf__grow(void *p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return p;
    size_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    void *q = LTF_MALLOC(c * elem);
    if (!q) return NULL;
    if (p) {
        memcpy(q, p, *cap * elem);
        LTF_FREE(p);
    }
    *cap = c;
    return q;
}

/* A growing text (the checkpoint's JSON header, the SVG of a plot). After a failed allocation it
 * stops growing and remembers the failure in oom. */
typedef struct { char *p; size_t len, cap; int oom; } ltf__buf;

static int ltf__buf_reserve(ltf__buf *b, size_t extra) {
    if (b->oom) return -1;
    char *q = (char *)ltf__grow(b->p, &b->cap, b->len + extra + 1, 1);
    if (!q) b->oom = 1; else b->p = q;
    return b->oom ? -1 : 0;
}

static void ltf__buf_printf(ltf__buf *b, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0 || ltf__buf_reserve(b, (size_t)n) != 0) return;
    if ((size_t)n < sizeof small) {
        memcpy(b->p + b->len, small, (size_t)n + 1);
    } else {
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}


/* ------------------------------------------------------------------ checkpoints
 * A checkpoint is a safetensors file (https://github.com/huggingface/safetensors):
 *
 *   bytes 0..7     N, the header length: unsigned 64-bit little-endian
 *   bytes 8..8+N   JSON header, padded with spaces so the data starts 8-byte aligned:
 *                  {"__metadata__": {"key": "value", ...},
 *                   "<tensor name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...}
 *   the rest       the data block: raw float32 little-endian, tensors packed in header order,
 *                  no gaps; [begin, end) are byte offsets into the data block.
 *
 * Tensors: every parameter under its PyTorch name (m->tensors, the paper's state_dict order),
 * so safetensors.torch.load_file() + load_state_dict(strict=True) loads the weights into the
 * paper's model. With a train state, then "optim.exp_avg.<name>" (Adam m) for every parameter,
 * then "optim.exp_avg_sq.<name>" (Adam v): PyTorch's names for Adam's state.
 *
 * __metadata__ (all values strings):
 *   "format": "looped-tf", "format_version": "1"
 *   every ltf_config field by its C name: "n_dims", "n_positions", "n_embd", "n_head", "n_layer",
 *     "kind", "n_loops", "loop_window", "mask_mode", "mask_pairs", "mask_when", and the variants
 *     "loop_func", "inject_every_block", "no_pos_emb", "n_classes" (decimal ints; these four may
 *     be absent: 0, as in files written before they existed)
 *   with a train state only (its presence is what "step" marks):
 *     "step", "adam_t"; "data_rng_state", "data_rng_inc" (uint64 in decimal); "task" (the
 *     task's name, e.g. "linear_regression"); "batch_size", "n_points", "lr", "beta1", "beta2",
 *     "eps", "weight_decay" (floats as %.9g: read back bit-exactly); the curriculum as
 *     "curriculum_{dims,points,loops}_{start,end,inc,interval}".
 *   Floats are printed and parsed in the C locale (a program that sets LC_NUMERIC to a locale
 *   with a decimal comma reads and writes "0,001").
 *
 * Loading trusts nothing in the file: a strict JSON parser for exactly this schema (no
 * recursion, so no depth to blow), every read bounds-checked, every tensor checked against the
 * model the config in the file describes (name, dtype, shape, offsets, coverage, finite), and
 * the data size checked before the model is allocated. Tensors may come in any order, so a
 * file re-saved by safetensors.torch.save_file(tensors, metadata=...) loads too. The loader is
 * fuzzed (fuzz/fuzz_checkpoint.c, ./build.sh fuzz). The curriculum of a train state is loaded
 * as saved, unchecked: ltf_train_next and ltf_curriculum_check judge it. */

#define LTF__MAX_HEADER 100000000u   /* safetensors' own limit on the JSON header, 100 MB      */
#define LTF__MAX_ENTRIES 4096        /* tensors in a header (the largest model has 3 x 777)   */
#define LTF__MAX_META 1024           /* __metadata__ pairs                                     */
#define LTF__MAX_RANK 8              /* shape entries                                          */
#define LTF__LONG_MAX ((long long)((unsigned long)-1 >> 1))

static void ltf__put_u64le(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint64_t ltf__get_u64le(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
/* floats go through their IEEE-754 bit pattern, so the file is little-endian on any host */
static void ltf__put_f32le(unsigned char *p, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(u >> (8 * i));
}
static float ltf__get_f32le(const unsigned char *p) {
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* The metadata fields that are ints, as (name, pointer) pairs, so that writing, reading and
 * comparing walk one list. */
typedef struct { const char *name; int *p; } ltf__iref;
typedef struct { const char *name; float *p; } ltf__fref;
/* The config's ints; the last four (the variants, §12, and n_classes, §13) came later: a file
 * without them is the plain regression model (0), so checkpoints written before load as they did. */
enum { LTF__CONFIG_INTS = 15, LTF__CONFIG_REQUIRED = 11, LTF__STATE_INTS = 14, LTF__STATE_FLOATS = 5 };

static void ltf__config_refs(ltf_config *c, ltf__iref r[LTF__CONFIG_INTS]) {
    static const char *const names[LTF__CONFIG_INTS] = {"n_dims", "n_positions", "n_embd", "n_head", "n_layer",
        "kind", "n_loops", "loop_window", "mask_mode", "mask_pairs", "mask_when",
        "loop_func", "inject_every_block", "no_pos_emb", "n_classes"};
    int *p[LTF__CONFIG_INTS] = {&c->n_dims, &c->n_positions, &c->n_embd, &c->n_head, &c->n_layer, &c->kind,
                  &c->n_loops, &c->loop_window, &c->mask_mode, &c->mask_pairs, &c->mask_when,
                  &c->loop_func, &c->inject_every_block, &c->no_pos_emb, &c->n_classes};
    for (int i = 0; i < LTF__CONFIG_INTS; i++) { r[i].name = names[i]; r[i].p = p[i]; }
}

static void ltf__state_int_refs(ltf_train_state *s, ltf__iref r[LTF__STATE_INTS]) {
    static const char *const names[14] = {"batch_size", "n_points",
        "curriculum_dims_start", "curriculum_dims_end", "curriculum_dims_inc", "curriculum_dims_interval",
        "curriculum_points_start", "curriculum_points_end", "curriculum_points_inc", "curriculum_points_interval",
        "curriculum_loops_start", "curriculum_loops_end", "curriculum_loops_inc", "curriculum_loops_interval"};
    ltf_schedule *sc[3] = {&s->curriculum.dims, &s->curriculum.points, &s->curriculum.loops};
    r[0].p = &s->train.batch_size; r[1].p = &s->train.n_points;
    for (int k = 0; k < 3; k++) {
        r[2 + 4 * k].p = &sc[k]->start; r[3 + 4 * k].p = &sc[k]->end;
        r[4 + 4 * k].p = &sc[k]->inc;   r[5 + 4 * k].p = &sc[k]->interval;
    }
    for (int i = 0; i < 14; i++) r[i].name = names[i];
}

static void ltf__state_float_refs(ltf_train_state *s, ltf__fref r[LTF__STATE_FLOATS]) {
    static const char *const names[5] = {"lr", "beta1", "beta2", "eps", "weight_decay"};
    float *p[5] = {&s->train.lr, &s->train.beta1, &s->train.beta2, &s->train.eps, &s->train.weight_decay};
    for (int i = 0; i < 5; i++) { r[i].name = names[i]; r[i].p = p[i]; }
}

/* Checks what a saved file must satisfy to load again: a known task, a valid train config,
 * finite numbers. Refusing to save beats writing a file that will not load. */
static int ltf__checkpoint_save_check(const ltf_model *m, const ltf_train_state *st, char *err) {
    const float *bufs[3] = {m->params, m->adam_m, m->adam_v};
    const char *what[3] = {"", "Adam m of ", "Adam v of "};
    char e[LTF_ERR_LEN];
    if (st) {
        if (st->task_kind < 0 || st->task_kind >= LTF_TASK_COUNT)
            return ltf__fail(err, "train state task_kind = %d: must be in 0..%d", st->task_kind, LTF_TASK_COUNT - 1);
        if (st->step < 0 || m->adam_t < 0)
            return ltf__fail(err, "train state step = %ld, adam_t = %ld: must be >= 0", st->step, m->adam_t);
        if (ltf_train_config_check(&st->train, &m->cfg, e) != 0)
            return ltf__fail(err, "train state: %s", e);
    }
    for (int b = 0; b < (st ? 3 : 1); b++) {
        size_t bad = ltf__first_nonfinite(bufs[b], m->n_params);
        if (bad < m->n_params)
            return ltf__fail(err, "%s%s holds %g: a checkpoint must be finite", what[b], ltf__tensor_at(m, bad),
                             (double)bufs[b][bad]);
    }
    return 0;
}

/* The whole file in one buffer: length, JSON header, data. */
static int ltf__checkpoint_encode(const ltf_model *m, const ltf_train_state *st,
                                  unsigned char **out, size_t *out_len, char *err) {
    static const char *const prefix[3] = {"", "optim.exp_avg.", "optim.exp_avg_sq."};
    const float *bufs[3] = {m->params, m->adam_m, m->adam_v};
    int n_bufs = st ? 3 : 1;
    ltf__iref cr[LTF__CONFIG_INTS], ir[LTF__STATE_INTS];
    ltf__fref fr[LTF__STATE_FLOATS];
    ltf_config cfg = m->cfg;
    ltf__buf t;
    memset(&t, 0, sizeof t);
    *out = NULL; *out_len = 0;
    if (ltf__checkpoint_save_check(m, st, err) != 0) return -1;
    ltf__buf_printf(&t, "{\"__metadata__\":{\"format\":\"looped-tf\",\"format_version\":\"1\"");
    ltf__config_refs(&cfg, cr);
    for (int i = 0; i < LTF__CONFIG_INTS; i++) ltf__buf_printf(&t, ",\"%s\":\"%d\"", cr[i].name, *cr[i].p);
    if (st) {
        ltf_train_state s = *st;
        ltf__buf_printf(&t, ",\"step\":\"%ld\",\"adam_t\":\"%ld\"", s.step, m->adam_t);
        ltf__buf_printf(&t, ",\"data_rng_state\":\"%llu\",\"data_rng_inc\":\"%llu\"",
                         (unsigned long long)s.data_rng.state, (unsigned long long)s.data_rng.inc);
        ltf__buf_printf(&t, ",\"task\":\"%s\"", ltf_task_kind_name(s.task_kind));
        ltf__state_int_refs(&s, ir);
        ltf__state_float_refs(&s, fr);
        for (int i = 0; i < LTF__STATE_INTS; i++) ltf__buf_printf(&t, ",\"%s\":\"%d\"", ir[i].name, *ir[i].p);
        for (int i = 0; i < LTF__STATE_FLOATS; i++)
            ltf__buf_printf(&t, ",\"%s\":\"%.9g\"", fr[i].name, (double)*fr[i].p);
    }
    ltf__buf_printf(&t, "}");
    size_t cursor = 0;   /* bytes into the data block */
    for (int b = 0; b < n_bufs; b++)
        for (ptrdiff_t k = 0; k < shlen(m->tensors); k++) {
            const ltf_tensor *tt = &m->tensors[k];
            size_t bytes = 4 * tt->size;
            if (tt->ndim == 2)
                ltf__buf_printf(&t, ",\"%s%s\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[%zu,%zu]}",
                                 prefix[b], tt->key, tt->shape[0], tt->shape[1], cursor, cursor + bytes);
            else
                ltf__buf_printf(&t, ",\"%s%s\":{\"dtype\":\"F32\",\"shape\":[%d],\"data_offsets\":[%zu,%zu]}",
                                 prefix[b], tt->key, tt->shape[0], cursor, cursor + bytes);
            cursor += bytes;
        }
    ltf__buf_printf(&t, "}");
    while (!t.oom && t.len % 8 != 0) ltf__buf_printf(&t, " ");   /* 8 + N is 8-byte aligned */
    size_t len = t.oom ? 0 : 8 + t.len + cursor;
    unsigned char *f = t.oom ? NULL : (unsigned char *)LTF_MALLOC(len);
    if (!f) {
        LTF_FREE(t.p);
        return ltf__fail(err, "out of memory building a checkpoint of %zu bytes", len);
    }
    ltf__put_u64le(f, (uint64_t)t.len);
    memcpy(f + 8, t.p, t.len);
    unsigned char *d = f + 8 + t.len;
    for (int b = 0; b < n_bufs; b++)
        for (ptrdiff_t k = 0; k < shlen(m->tensors); k++) {
            const float *src = bufs[b] + m->tensors[k].offset;
            for (size_t i = 0; i < m->tensors[k].size; i++, d += 4) ltf__put_f32le(d, src[i]);
        }
    LTF_FREE(t.p);
    *out = f; *out_len = len;
    return 0;
}

int ltf_checkpoint_save(const ltf_model *m, const ltf_train_state *st, const char *path,
                        char err[LTF_ERR_LEN]) {
    unsigned char *buf;
    size_t len;
    char e[LTF_ERR_LEN];
    if (ltf_model_sync_host(m, e) != 0) return ltf__fail(err, "not saving %s: %s", path, e);   /* GPU */
    if (ltf__checkpoint_encode(m, st, &buf, &len, e) != 0) return ltf__fail(err, "not saving %s: %s", path, e);
    int rc = ltf_write_atomic(path, buf, len, err);
    LTF_FREE(buf);
    return rc;
}

/* ---- reading: the parsed header ---- */

typedef struct { char key[64], value[64]; int key_cut, value_cut; } ltf__meta_kv;
typedef struct {
    char name[256], dtype[16];
    int name_cut, ndim;
    uint64_t shape[LTF__MAX_RANK], begin, end;
    int kind;                 /* after matching: 0 parameter, 1 Adam m, 2 Adam v          */
    const ltf_tensor *t;      /* after matching: the model's tensor                       */
} ltf__entry;
typedef struct {
    ltf__entry *e; int n_e; size_t cap_e;
    ltf__meta_kv *meta; int n_meta, has_meta; size_t cap_meta;
} ltf__header;

static void ltf__header_free(ltf__header *h) {
    LTF_FREE(h->e); LTF_FREE(h->meta);
    memset(h, 0, sizeof *h);
}

/* A name from the file, safe to print: non-printable bytes become '?', long ones end in "...". */
static const char *ltf__show(const char *s, char *out, size_t cap) {
    size_t i = 0, n = strlen(s);
    for (; i < n && i + 4 < cap; i++) out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (i < n) { memcpy(out + i, "...", 3); i += 3; }
    out[i] = 0;
    return out;
}

static void ltf__fmt_shape(char *out, size_t cap, const uint64_t *s, int nd) {
    size_t k = (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < nd && k < cap; i++)
        k += (size_t)snprintf(out + k, cap - k, i ? ", %llu" : "%llu", (unsigned long long)s[i]);
    if (k < cap) snprintf(out + k, cap - k, "]");
}

/* Index of the first byte that is not valid UTF-8 (no overlongs, no surrogates), or n. */
static size_t ltf__utf8_bad(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) { i++; continue; }
        unsigned k, cp, lo;
        if ((c & 0xE0) == 0xC0) { k = 1; cp = c & 0x1F; lo = 0x80; }
        else if ((c & 0xF0) == 0xE0) { k = 2; cp = c & 0x0F; lo = 0x800; }
        else if ((c & 0xF8) == 0xF0) { k = 3; cp = c & 0x07; lo = 0x10000; }
        else return i;
        if (n - i <= k) return i;
        for (unsigned j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if (cp < lo || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += k + 1;
    }
    return n;
}

/* ---- reading: a strict JSON parser for exactly the safetensors header ----
 * Grammar (RFC 8259 tokens, this schema only): the top level is an object; "__metadata__" maps
 * to an object of string values; every other key maps to an object with "dtype" (string),
 * "shape" and "data_offsets" (arrays of non-negative integers). Depth is fixed at 3 by the
 * schema: the parser has no recursion. Every access checks the cursor against n. */
typedef struct { const char *s; size_t n, i; char *err; } ltf__json;

static int ltf__json_fail(ltf__json *j, const char *fmt, ...) {
    char msg[LTF_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ltf__fail(j->err, "invalid JSON header at byte %zu: %s", 8 + j->i, msg);
}

static int ltf__json_peek(ltf__json *j) {   /* next non-space byte, or -1 at the end */
    while (j->i < j->n && (j->s[j->i] == ' ' || j->s[j->i] == '\t' || j->s[j->i] == '\n' || j->s[j->i] == '\r'))
        j->i++;
    return j->i < j->n ? (unsigned char)j->s[j->i] : -1;
}

static int ltf__json_expect(ltf__json *j, char c, const char *where) {
    int p = ltf__json_peek(j);
    if (p == c) { j->i++; return 0; }
    if (p < 0) return ltf__json_fail(j, "the header ends where '%c' (%s) should be", c, where);
    return ltf__json_fail(j, "expected '%c' (%s), found '%c'", c, where, p >= 0x20 && p < 0x7f ? p : '?');
}

/* ',' -> 1 (another item follows), close -> 0 (done), else -1 */
static int ltf__json_next(ltf__json *j, char close, const char *where) {
    int p = ltf__json_peek(j);
    if (p == ',') { j->i++; return 1; }
    if (p == close) { j->i++; return 0; }
    if (p < 0) return ltf__json_fail(j, "the header ends inside %s", where);
    return ltf__json_fail(j, "expected ',' or '%c' in %s", close, where);
}

static int ltf__json_hex4(ltf__json *j, unsigned *v) {
    *v = 0;
    if (j->n - j->i < 4) return ltf__json_fail(j, "\\u escape needs 4 hex digits");
    for (int k = 0; k < 4; k++) {
        char c = j->s[j->i++];
        unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0') : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                   : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10) : 16u;
        if (d == 16) return ltf__json_fail(j, "\\u escape needs 4 hex digits");
        *v = *v * 16 + d;
    }
    return 0;
}

/* A string at the cursor, unescaped into out (cap bytes with the NUL); *cut when it did not fit
 * (the string is still read to its end). */
static int ltf__json_string(ltf__json *j, char *out, size_t cap, int *cut) {
    size_t k = 0;
    *cut = 0;
    if (ltf__json_expect(j, '"', "a string") != 0) return -1;
    for (;;) {
        if (j->i >= j->n) return ltf__json_fail(j, "unterminated string");
        unsigned char c = (unsigned char)j->s[j->i++], u[4];
        int nu = 1;
        u[0] = c;
        if (c == '"') break;
        if (c < 0x20) { j->i--; return ltf__json_fail(j, "control character 0x%02x in a string", c); }
        if (c == '\\') {
            if (j->i >= j->n) return ltf__json_fail(j, "unterminated string");
            char e = j->s[j->i++];
            unsigned cp;
            switch (e) {
            case '"': case '\\': case '/': u[0] = (unsigned char)e; break;
            case 'b': u[0] = '\b'; break;
            case 'f': u[0] = '\f'; break;
            case 'n': u[0] = '\n'; break;
            case 'r': u[0] = '\r'; break;
            case 't': u[0] = '\t'; break;
            case 'u':
                if (ltf__json_hex4(j, &cp) != 0) return -1;
                if (cp >= 0xDC00 && cp <= 0xDFFF) return ltf__json_fail(j, "lone low surrogate \\u%04x", cp);
                if (cp >= 0xD800 && cp <= 0xDBFF) {   /* a surrogate pair: \uD8xx\uDCxx */
                    unsigned lo;
                    if (j->n - j->i < 2 || j->s[j->i] != '\\' || j->s[j->i + 1] != 'u')
                        return ltf__json_fail(j, "high surrogate \\u%04x without its low half", cp);
                    j->i += 2;
                    if (ltf__json_hex4(j, &lo) != 0) return -1;
                    if (lo < 0xDC00 || lo > 0xDFFF)
                        return ltf__json_fail(j, "high surrogate \\u%04x followed by \\u%04x", cp, lo);
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                if (cp == 0) return ltf__json_fail(j, "\\u0000 in a string");
                if (cp < 0x80) u[0] = (unsigned char)cp;
                else if (cp < 0x800) { u[0] = (unsigned char)(0xC0 | cp >> 6); u[1] = (unsigned char)(0x80 | (cp & 0x3F)); nu = 2; }
                else if (cp < 0x10000) {
                    u[0] = (unsigned char)(0xE0 | cp >> 12); u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
                    u[2] = (unsigned char)(0x80 | (cp & 0x3F)); nu = 3;
                } else {
                    u[0] = (unsigned char)(0xF0 | cp >> 18); u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
                    u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)); u[3] = (unsigned char)(0x80 | (cp & 0x3F)); nu = 4;
                }
                break;
            default:
                j->i--;
                return ltf__json_fail(j, "invalid escape '\\%c'", e >= 0x20 && e < 0x7f ? e : '?');
            }
        }
        for (int q = 0; q < nu; q++) {
            if (k + 1 < cap) out[k++] = (char)u[q];
            else *cut = 1;
        }
    }
    out[k] = 0;
    return 0;
}

/* A non-negative integer (JSON number without sign, fraction or exponent) that fits uint64. */
static int ltf__json_uint(ltf__json *j, uint64_t *v) {
    int p = ltf__json_peek(j);
    *v = 0;
    if (p < '0' || p > '9') return ltf__json_fail(j, "expected a non-negative integer");
    if (p == '0' && j->i + 1 < j->n && j->s[j->i + 1] >= '0' && j->s[j->i + 1] <= '9')
        return ltf__json_fail(j, "integer with a leading zero");
    while (j->i < j->n && j->s[j->i] >= '0' && j->s[j->i] <= '9') {
        unsigned d = (unsigned)(j->s[j->i] - '0');
        if (*v > (UINT64_MAX - d) / 10) return ltf__json_fail(j, "integer larger than 2^64 - 1");
        *v = *v * 10 + d;
        j->i++;
    }
    if (j->i < j->n && (j->s[j->i] == '.' || j->s[j->i] == 'e' || j->s[j->i] == 'E'))
        return ltf__json_fail(j, "expected an integer, found a fraction or exponent");
    return 0;
}

static int ltf__json_uint_array(ltf__json *j, uint64_t *v, int cap, int *count, const char *what) {
    *count = 0;
    if (ltf__json_expect(j, '[', what) != 0) return -1;
    if (ltf__json_peek(j) == ']') { j->i++; return 0; }
    for (;;) {
        if (*count == cap) return ltf__json_fail(j, "%s has more than %d entries", what, cap);
        if (ltf__json_uint(j, &v[(*count)++]) != 0) return -1;
        int r = ltf__json_next(j, ']', what);
        if (r < 0) return -1;
        if (r == 0) return 0;
    }
}

static int ltf__json_metadata(ltf__json *j, ltf__header *h) {
    if (ltf__json_expect(j, '{', "__metadata__ is an object") != 0) return -1;
    if (ltf__json_peek(j) == '}') { j->i++; return 0; }
    for (;;) {
        ltf__meta_kv kv;
        char show[72];
        if (ltf__json_string(j, kv.key, sizeof kv.key, &kv.key_cut) != 0) return -1;
        if (ltf__json_expect(j, ':', "after a metadata key") != 0) return -1;
        if (ltf__json_peek(j) != '"')
            return ltf__json_fail(j, "metadata '%s': the value must be a string", ltf__show(kv.key, show, sizeof show));
        if (ltf__json_string(j, kv.value, sizeof kv.value, &kv.value_cut) != 0) return -1;
        for (int q = 0; q < h->n_meta && !kv.key_cut; q++)
            if (!h->meta[q].key_cut && strcmp(h->meta[q].key, kv.key) == 0)
                return ltf__json_fail(j, "duplicate metadata key '%s'", ltf__show(kv.key, show, sizeof show));
        if (h->n_meta == LTF__MAX_META) return ltf__json_fail(j, "more than %d metadata entries", LTF__MAX_META);
        void *grown = ltf__grow(h->meta, &h->cap_meta, (size_t)h->n_meta + 1, sizeof kv);
        if (!grown) return ltf__fail(j->err, "out of memory reading the header");
        h->meta = (ltf__meta_kv *)grown;
        h->meta[h->n_meta++] = kv;
        int r = ltf__json_next(j, '}', "__metadata__");
        if (r <= 0) return r;
    }
}

static int ltf__json_tensor(ltf__json *j, ltf__entry *e) {
    int seen[3] = {0, 0, 0}, cut, count;
    char key[32], show[72];
    ltf__show(e->name, show, sizeof show);
    if (ltf__json_expect(j, '{', "a tensor entry is an object") != 0) return -1;
    if (ltf__json_peek(j) != '}')
        for (;;) {
            if (ltf__json_string(j, key, sizeof key, &cut) != 0) return -1;
            if (ltf__json_expect(j, ':', "after a key") != 0) return -1;
            int which = cut ? -1 : strcmp(key, "dtype") == 0 ? 0 : strcmp(key, "shape") == 0 ? 1
                      : strcmp(key, "data_offsets") == 0 ? 2 : -1;
            if (which < 0) return ltf__json_fail(j, "tensor '%s': unknown key '%s'", show, key);
            if (seen[which]++) return ltf__json_fail(j, "tensor '%s': duplicate key '%s'", show, key);
            if (which == 0) {
                if (ltf__json_string(j, e->dtype, sizeof e->dtype, &cut) != 0) return -1;
            } else if (which == 1) {
                if (ltf__json_uint_array(j, e->shape, LTF__MAX_RANK, &e->ndim, "shape") != 0) return -1;
            } else {
                uint64_t off[2];
                if (ltf__json_uint_array(j, off, 2, &count, "data_offsets") != 0) return -1;
                if (count != 2) return ltf__json_fail(j, "tensor '%s': data_offsets needs 2 entries, has %d", show, count);
                e->begin = off[0]; e->end = off[1];
            }
            int r = ltf__json_next(j, '}', "a tensor entry");
            if (r < 0) return -1;
            if (r == 0) break;
        }
    else j->i++;
    for (int q = 0; q < 3; q++)
        if (!seen[q]) {
            static const char *const keys[3] = {"dtype", "shape", "data_offsets"};
            return ltf__json_fail(j, "tensor '%s' has no \"%s\"", show, keys[q]);
        }
    return 0;
}

static int ltf__json_header(const char *s, size_t n, ltf__header *h, char *err) {
    ltf__json j;
    j.s = s; j.n = n; j.i = 0; j.err = err;
    if (ltf__json_expect(&j, '{', "the header is an object") != 0) return -1;
    if (ltf__json_peek(&j) == '}') j.i++;
    else
        for (;;) {
            ltf__entry e;
            memset(&e, 0, sizeof e);
            if (ltf__json_string(&j, e.name, sizeof e.name, &e.name_cut) != 0) return -1;
            if (ltf__json_expect(&j, ':', "after a key") != 0) return -1;
            if (!e.name_cut && strcmp(e.name, "__metadata__") == 0) {
                if (h->has_meta++) return ltf__json_fail(&j, "duplicate key '__metadata__'");
                if (ltf__json_metadata(&j, h) != 0) return -1;
            } else {
                if (ltf__json_tensor(&j, &e) != 0) return -1;
                if (h->n_e == LTF__MAX_ENTRIES) return ltf__json_fail(&j, "more than %d tensors", LTF__MAX_ENTRIES);
                void *grown = ltf__grow(h->e, &h->cap_e, (size_t)h->n_e + 1, sizeof e);
                if (!grown) return ltf__fail(err, "out of memory reading the header");
                h->e = (ltf__entry *)grown;
                h->e[h->n_e++] = e;
            }
            int r = ltf__json_next(&j, '}', "the header object");
            if (r < 0) return -1;
            if (r == 0) break;
        }
    if (ltf__json_peek(&j) >= 0) return ltf__json_fail(&j, "characters after the header object");
    return 0;
}

/* ---- reading: metadata values ---- */

static const ltf__meta_kv *ltf__meta_find(const ltf__header *h, const char *key) {
    for (int q = 0; q < h->n_meta; q++)
        if (!h->meta[q].key_cut && strcmp(h->meta[q].key, key) == 0) return &h->meta[q];
    return NULL;
}

/* The value of a required key, or NULL with the reason in err. */
static const char *ltf__meta_need(const ltf__header *h, const char *key, char *err) {
    const ltf__meta_kv *kv = ltf__meta_find(h, key);
    char show[72];
    if (!kv) ltf__fail(err, "__metadata__ has no \"%s\"", key);
    else if (kv->value_cut)
        ltf__fail(err, "__metadata__ \"%s\" = \"%s\": longer than %d bytes", key,
                  ltf__show(kv->value, show, sizeof show), (int)sizeof kv->value - 1);
    return kv && !kv->value_cut ? kv->value : NULL;
}

/* Decimal integer in lo..hi: optional '-', 1..18 digits, nothing else. */
static int ltf__parse_int(const char *s, long long lo, long long hi, long long *out) {
    int neg = *s == '-', nd = 0;
    long long v = 0;
    for (s += neg; *s >= '0' && *s <= '9'; s++)
        if (++nd > 18) return -1;                 /* 18 digits fit a long long */
        else v = v * 10 + (*s - '0');
    if (nd == 0 || *s) return -1;
    v = neg ? -v : v;
    if (v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int ltf__parse_u64(const char *s, uint64_t *out) {
    uint64_t v = 0;
    if (!*s) return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* A finite float written by %.9g: strtod must take the whole string. */
static int ltf__parse_float(const char *s, float *out) {
    char *end;
    if (!*s || *s == ' ' || *s == '\t' || *s == '\n') return -1;
    double v = strtod(s, &end);
    if (*end || !isfinite(v) || fabs(v) > 3.4028234663852886e38) return -1;
    *out = (float)v;
    return 0;
}

static int ltf__meta_int(const ltf__header *h, const char *key, long long lo, long long hi, long long *v, char *err) {
    char show[72];
    const char *s = ltf__meta_need(h, key, err);
    if (!s) return -1;
    if (ltf__parse_int(s, lo, hi, v) != 0)
        return ltf__fail(err, "__metadata__ \"%s\" = \"%s\": must be an integer in %lld..%lld",
                         key, ltf__show(s, show, sizeof show), lo, hi);
    return 0;
}

static int ltf__meta_config(const ltf__header *h, ltf_config *c, char *err) {
    ltf__iref r[LTF__CONFIG_INTS];
    memset(c, 0, sizeof *c);
    ltf__config_refs(c, r);
    for (int i = 0; i < LTF__CONFIG_INTS; i++) {
        long long v;
        if (i >= LTF__CONFIG_REQUIRED && !ltf__meta_find(h, r[i].name)) continue;   /* 0: written before §12 */
        if (ltf__meta_int(h, r[i].name, -2147483647 - 1, 2147483647, &v, err) != 0) return -1;
        *r[i].p = (int)v;
    }
    return 0;
}

static int ltf__meta_state(const ltf__header *h, ltf_train_state *s, long *adam_t, char *err) {
    ltf__iref ir[LTF__STATE_INTS];
    ltf__fref fr[LTF__STATE_FLOATS];
    char show[72];
    long long v;
    const char *str;
    memset(s, 0, sizeof *s);
    if (ltf__meta_int(h, "step", 0, LTF__LONG_MAX, &v, err) != 0) return -1;
    s->step = (long)v;
    if (ltf__meta_int(h, "adam_t", 0, LTF__LONG_MAX, &v, err) != 0) return -1;
    *adam_t = (long)v;
    static const char *const rng_keys[2] = {"data_rng_state", "data_rng_inc"};
    uint64_t *rng[2] = {&s->data_rng.state, &s->data_rng.inc};
    for (int k = 0; k < 2; k++) {
        if (!(str = ltf__meta_need(h, rng_keys[k], err))) return -1;
        if (ltf__parse_u64(str, rng[k]) != 0)
            return ltf__fail(err, "__metadata__ \"%s\" = \"%s\": must be a decimal uint64", rng_keys[k], ltf__show(str, show, sizeof show));
    }
    if (!(str = ltf__meta_need(h, "task", err))) return -1;
    if ((s->task_kind = ltf_task_kind_from_name(str)) < 0)
        return ltf__fail(err, "__metadata__ \"task\" = \"%s\": not a known task (e.g. %s)", ltf__show(str, show, sizeof show), ltf_task_kind_name(0));
    ltf__state_int_refs(s, ir);
    ltf__state_float_refs(s, fr);
    for (int i = 0; i < LTF__STATE_INTS; i++) {
        if (ltf__meta_int(h, ir[i].name, -2147483647 - 1, 2147483647, &v, err) != 0) return -1;
        *ir[i].p = (int)v;
    }
    for (int i = 0; i < LTF__STATE_FLOATS; i++) {
        if (!(str = ltf__meta_need(h, fr[i].name, err))) return -1;
        if (ltf__parse_float(str, fr[i].p) != 0)
            return ltf__fail(err, "__metadata__ \"%s\" = \"%s\": must be a finite float", fr[i].name, ltf__show(str, show, sizeof show));
    }
    return 0;
}

/* ---- reading: tensors against the model ---- */

typedef struct { uint64_t begin, end; int idx; } ltf__span;
static int ltf__span_cmp(const void *a, const void *b) {
    const ltf__span *x = (const ltf__span *)a, *y = (const ltf__span *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : x->end < y->end ? -1 : x->end > y->end;
}

/* Matches every entry to a tensor of m (kind 0 parameter, 1 Adam m, 2 Adam v) and checks its
 * dtype, shape and offsets; then that none is missing and that they tile the data block. */
static int ltf__match_tensors(ltf_model *m, ltf__header *h, int has_state, size_t data_len, char *err) {
    static const char *const prefix[3] = {"", "optim.exp_avg.", "optim.exp_avg_sq."};
    ptrdiff_t nt = shlen(m->tensors);
    int n_kinds = has_state ? 3 : 1, rc = -1;
    int *seen = (int *)LTF_MALLOC(sizeof(int) * (size_t)(3 * nt) + 1);
    ltf__span *sp = (ltf__span *)LTF_MALLOC(sizeof(ltf__span) * (size_t)h->n_e + 1);
    char show[72], got[96], want[96];
    uint64_t at = 0;
    if (!seen || !sp) { ltf__fail(err, "out of memory"); goto done; }
    for (ptrdiff_t k = 0; k < 3 * nt; k++) seen[k] = -1;
    for (int q = 0; q < h->n_e; q++) {
        ltf__entry *e = &h->e[q];
        ltf__show(e->name, show, sizeof show);
        ptrdiff_t k = -1;
        e->kind = 0;
        for (int kind = n_kinds - 1; kind >= 0 && k < 0 && !e->name_cut; kind--) {
            size_t pl = strlen(prefix[kind]);
            if (strncmp(e->name, prefix[kind], pl) == 0 && (k = shgeti(m->tensors, e->name + pl)) >= 0) e->kind = kind;
        }
        if (k < 0) {
            ltf__fail(err, "unknown tensor '%s': not in the model of this config%s", show,
                      strncmp(e->name, "optim.", 6) == 0 && !has_state ? " (and the file has no train state)" : "");
            goto done;
        }
        e->t = &m->tensors[k];
        if (seen[e->kind * nt + k] >= 0) { ltf__fail(err, "duplicate tensor '%s'", show); goto done; }
        seen[e->kind * nt + k] = q;
        if (strcmp(e->dtype, "F32") != 0) {
            ltf__fail(err, "tensor '%s' has dtype \"%s\": only F32 is supported", show, ltf__show(e->dtype, got, sizeof got));
            goto done;
        }
        uint64_t ws[2] = {(uint64_t)e->t->shape[0], (uint64_t)e->t->shape[1]};
        int same = e->ndim == e->t->ndim;
        for (int d = 0; same && d < e->ndim; d++) same = e->shape[d] == ws[d];
        if (!same) {
            ltf__fmt_shape(got, sizeof got, e->shape, e->ndim);
            ltf__fmt_shape(want, sizeof want, ws, e->t->ndim);
            ltf__fail(err, "tensor '%s' has shape %s, expected %s", show, got, want);
            goto done;
        }
        if (e->begin > e->end) {
            ltf__fail(err, "tensor '%s': data_offsets [%llu, %llu] end before they begin", show,
                      (unsigned long long)e->begin, (unsigned long long)e->end);
            goto done;
        }
        if (e->end > data_len) {
            ltf__fail(err, "tensor '%s': data_offsets [%llu, %llu] run past the end of the data (%zu bytes): "
                      "data shorter than declared, the file is truncated", show, (unsigned long long)e->begin,
                      (unsigned long long)e->end, data_len);
            goto done;
        }
        if (e->end - e->begin != 4 * (uint64_t)e->t->size) {
            ltf__fail(err, "tensor '%s': data_offsets [%llu, %llu] span %llu bytes, shape needs %llu (F32)", show,
                      (unsigned long long)e->begin, (unsigned long long)e->end, (unsigned long long)(e->end - e->begin),
                      4ull * (unsigned long long)e->t->size);
            goto done;
        }
        sp[q].begin = e->begin; sp[q].end = e->end; sp[q].idx = q;
    }
    for (int kind = 0; kind < n_kinds; kind++)
        for (ptrdiff_t k = 0; k < nt; k++)
            if (seen[kind * nt + k] < 0) {
                ltf__fail(err, "missing tensor '%s%s'", prefix[kind], m->tensors[k].key);
                goto done;
            }
    /* every name matched once and none is missing, so n_e = n_kinds * nt; now the spans */
    qsort(sp, (size_t)h->n_e, sizeof *sp, ltf__span_cmp);
    for (int q = 0; q < h->n_e; q++) {
        if (sp[q].begin < at) {
            ltf__fail(err, "tensors '%s' and '%s' overlap: data_offsets [%llu, %llu] and [%llu, %llu]",
                      ltf__show(h->e[sp[q - 1].idx].name, got, 48), ltf__show(h->e[sp[q].idx].name, want, 48),
                      (unsigned long long)sp[q - 1].begin, (unsigned long long)sp[q - 1].end,
                      (unsigned long long)sp[q].begin, (unsigned long long)sp[q].end);
            goto done;
        }
        if (sp[q].begin > at) {
            ltf__fail(err, "gap in the data block: bytes %llu..%llu belong to no tensor (before '%s')",
                      (unsigned long long)at, (unsigned long long)sp[q].begin, ltf__show(h->e[sp[q].idx].name, show, sizeof show));
            goto done;
        }
        at = sp[q].end;
    }
    if (at != data_len) {
        ltf__fail(err, "%llu bytes after the last tensor: the data block has %zu bytes, the tensors %llu",
                  (unsigned long long)(data_len - at), data_len, (unsigned long long)at);
        goto done;
    }
    rc = 0;
done:
    LTF_FREE(seen); LTF_FREE(sp);
    return rc;
}

/* Copies the floats of every matched entry into m (Adam state only when wanted), finite only. */
static int ltf__read_tensors(ltf_model *m, const ltf__header *h, const unsigned char *data, int want_adam, char *err) {
    static const char *const what[3] = {"", "optim.exp_avg.", "optim.exp_avg_sq."};
    float *bufs[3] = {m->params, m->adam_m, m->adam_v};
    for (int q = 0; q < h->n_e; q++) {
        const ltf__entry *e = &h->e[q];
        if (e->kind > 0 && !want_adam) continue;
        float *dst = bufs[e->kind] + e->t->offset;
        const unsigned char *src = data + e->begin;
        for (size_t i = 0; i < e->t->size; i++) {
            float v = ltf__get_f32le(src + 4 * i);
            if (!isfinite(v))
                return ltf__fail(err, "tensor '%s%s' holds %g at index %zu: the weights must be finite (NaN/Inf)",
                                 what[e->kind], e->t->key, (double)v, i);
            dst[i] = v;
        }
    }
    return 0;
}

int ltf_checkpoint_load_mem(ltf_model *m, ltf_train_state *st, const void *buf, size_t len,
                            const ltf_config *expect, char err[LTF_ERR_LEN]) {
    const unsigned char *b = (const unsigned char *)buf;
    ltf__header h;
    ltf_config cfg;
    ltf_train_state s;
    long adam_t = 0;
    char e[LTF_ERR_LEN], show[72];
    const unsigned char *data;
    const char *v;
    size_t data_len, need;
    int rc = -1, has_state;
    memset(m, 0, sizeof *m);
    memset(&h, 0, sizeof h);
    if (len < 8 || !b)
        return ltf__fail(err, "%zu bytes: shorter than the 8-byte header length that starts a safetensors file", b ? len : 0);
    uint64_t N = ltf__get_u64le(b);
    if (N > LTF__MAX_HEADER)
        return ltf__fail(err, "header length %llu is absurd (over the 100 MB limit): not a safetensors file?", (unsigned long long)N);
    if (N > len - 8)
        return ltf__fail(err, "header length %llu is larger than the file (%zu bytes after the length): truncated?",
                         (unsigned long long)N, len - 8);
    size_t bad = ltf__utf8_bad(b + 8, (size_t)N);
    if (bad < N) return ltf__fail(err, "invalid JSON header at byte %zu: not UTF-8 (byte 0x%02x)", 8 + bad, b[8 + bad]);
    if (ltf__json_header((const char *)b + 8, (size_t)N, &h, err) != 0) goto done;
    data = b + 8 + N;
    data_len = len - 8 - (size_t)N;
    if (!h.has_meta) { ltf__fail(err, "no \"__metadata__\" in the header: not a looped-tf checkpoint"); goto done; }
    if (!(v = ltf__meta_need(&h, "format", err))) goto done;
    if (strcmp(v, "looped-tf") != 0) {
        ltf__fail(err, "__metadata__ \"format\" = \"%s\": not a looped-tf checkpoint (want \"looped-tf\")", ltf__show(v, show, sizeof show));
        goto done;
    }
    if (!(v = ltf__meta_need(&h, "format_version", err))) goto done;
    if (strcmp(v, "1") != 0) {
        ltf__fail(err, "__metadata__ \"format_version\" = \"%s\": this build reads version 1", ltf__show(v, show, sizeof show));
        goto done;
    }
    if (ltf__meta_config(&h, &cfg, err) != 0) goto done;
    if (ltf_config_check(&cfg, e) != 0) { ltf__fail(err, "config in the checkpoint: %s", e); goto done; }
    if (expect) {
        ltf_config want = *expect;
        ltf__iref a[LTF__CONFIG_INTS], w[LTF__CONFIG_INTS];
        ltf__config_refs(&cfg, a);
        ltf__config_refs(&want, w);
        for (int i = 0; i < LTF__CONFIG_INTS; i++)
            if (*a[i].p != *w[i].p) {
                ltf__fail(err, "config differs from the expected one: %s = %d in the checkpoint, expected %d",
                          a[i].name, *a[i].p, *w[i].p);
                goto done;
            }
    }
    has_state = ltf__meta_find(&h, "step") != NULL;
    if (st && !has_state) { ltf__fail(err, "the checkpoint has no training state (saved weights-only)"); goto done; }
    if (st) {
        if (ltf__meta_state(&h, &s, &adam_t, err) != 0) goto done;
        if (ltf_train_config_check(&s.train, &cfg, e) != 0) { ltf__fail(err, "train config in the checkpoint: %s", e); goto done; }
    }
    /* the data must hold the model before we allocate it: a tiny file cannot demand gigabytes */
    need = 4 * ltf__layout(NULL, &cfg, NULL, NULL) * (has_state ? 3 : 1);
    if (data_len < need) {
        ltf__fail(err, "the data block has %zu bytes, the config needs %zu: the file is truncated (data shorter than declared)",
                  data_len, need);
        goto done;
    }
    if (ltf_model_create(m, &cfg, 0, e) != 0) { ltf__fail(err, "%s", e); goto done; }
    if (ltf__match_tensors(m, &h, has_state, data_len, err) != 0) goto done;
    if (ltf__read_tensors(m, &h, data, st != NULL, err) != 0) goto done;
    if (st) { m->adam_t = adam_t; *st = s; }
    rc = 0;
done:
    ltf__header_free(&h);
    if (rc != 0) ltf_model_free(m);
    return rc;
}

int ltf_checkpoint_load(ltf_model *m, ltf_train_state *st, const char *path, const ltf_config *expect,
                        char err[LTF_ERR_LEN]) {
    char e[LTF_ERR_LEN];
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    memset(m, 0, sizeof *m);
    FILE *f = fopen(path, "rb");
    if (!f) return ltf__fail(err, "cannot read %s: %s", path, strerror(errno));
    for (;;) {   /* read to EOF in growing chunks: no trust in a size from ftell (pipes, dirs) */
        if (len == cap) {
            unsigned char *b2 = (unsigned char *)ltf__grow(buf, &cap, len + (1u << 16), 1);
            if (!b2) {
                fclose(f);
                LTF_FREE(buf);
                return ltf__fail(err, "cannot read %s: out of memory after %zu bytes", path, len);
            }
            buf = b2;
        }
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap) break;   /* a short read: end of file or an error */
    }
    if (ferror(f)) {
        int saved = errno;
        fclose(f);
        LTF_FREE(buf);
        return ltf__fail(err, "cannot read %s: %s", path, saved ? strerror(saved) : "read error");
    }
    fclose(f);
    int rc = ltf_checkpoint_load_mem(m, st, buf, len, expect, e);
    LTF_FREE(buf);
    if (rc != 0) return ltf__fail(err, "%s: %s", path, e);
    return 0;
}

/* ============================== [14] GPU ==============================
 * The CUDA backend is looped_tf_cuda.cu, included below with LOOPED_TF_CUDA (after the C
 * linkage block closes: it has C++ templates). It fills an ltf_backend ([6]) with kernels and
 * defines ltf_gpu_available and ltf_model_to_gpu. Syncing and moving back are the same for any
 * backend, here. */
int ltf_model_sync_host(const ltf_model *m, char err[LTF_ERR_LEN]) {
    const ltf_store *store = &m->run;
    float *host[4] = {m->params, m->grads, m->adam_m, m->adam_v};
    const float *kept[4] = {store->params, store->grads, store->adam_m, store->adam_v};
    if (!m->backend || m->backend->host_memory) return 0;
    for (int i = 0; i < 4; i++)
        if (m->backend->get(host[i], kept[i], m->n_params * sizeof(float), err, "ltf_model_sync_host") != 0) return -1;
    return 0;
}

int ltf_model_to_cpu(ltf_model *m, char err[LTF_ERR_LEN]) {
    char why[LTF_ERR_LEN];
    if (!m->backend || m->backend->host_memory) return 0;
    int rc = ltf_model_sync_host(m, err);
    if (rc != 0) snprintf(why, sizeof why, "%s", err);
    if (ltf__use_backend(m, ltf__cpu(), err) != 0) return -1;
    if (rc != 0) return ltf__fail(err, "%s; the model is back on the CPU with its state as of the last sync", why);
    return 0;
}

#ifndef LOOPED_TF_CUDA
static int ltf__no_cuda(char *err) {
    return ltf__fail(err, "this build has no GPU support: compile the implementation with nvcc -x cu "
                          "-DLOOPED_TF_CUDA (./build.sh cuda)");
}
int ltf_gpu_available(char msg[LTF_ERR_LEN]) { return ltf__no_cuda(msg); }
int ltf_model_to_gpu(ltf_model *m, char err[LTF_ERR_LEN]) { (void)m; return ltf__no_cuda(err); }
int ltf_gpu_set_precision(const char *mode, char err[LTF_ERR_LEN]) {
    if (mode && strcmp(mode, "fp32") == 0) return 0;   /* what the CPU computes in anyway */
    return ltf__no_cuda(err);
}
int ltf_gpu_profile(int on, char err[LTF_ERR_LEN]) { (void)on; return ltf__no_cuda(err); }
int ltf_gpu_profile_read(ltf_gpu_phase *phases, int cap, char err[LTF_ERR_LEN]) {
    (void)phases; (void)cap;
    return ltf__no_cuda(err);
}
long ltf_gpu_launches(void) { return 0; }
#endif

#ifdef __cplusplus
}
#endif
#ifdef LOOPED_TF_CUDA
#include "looped_tf_cuda.cu"
#endif
#endif /* LOOPED_TF_IMPLEMENTATION_DONE */
#endif /* LOOPED_TF_IMPLEMENTATION */

/*
 * ---------------------------------------------------------------------------------------------
 * MIT License
 *
 * Copyright (c) 2026 the looped-tf authors
 *
 * Permission is hereby granted, free of charge, to any person obtaining a copy of this software
 * and associated documentation files (the "Software"), to deal in the Software without
 * restriction, including without limitation the rights to use, copy, modify, merge, publish,
 * distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
 * Software is furnished to do so, subject to the following conditions:
 *
 * The above copyright notice and this permission notice shall be included in all copies or
 * substantial portions of the Software.
 *
 * THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING
 * BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
 * NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
 * DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
 * OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
 * ---------------------------------------------------------------------------------------------
 */

/* demo.c - the looped-tf workbench: train, evaluate and run the paper's and the report's
 * experiments from the command line.
 *
 *   ./demo                          train the default small looped model (train command)
 *   ./demo COMMAND [flags]          train | eval | mask-sweep | compare | bench | sweep
 *   ./demo --help                   every command and flag
 *   ./demo_cuda --gpu on ...        the same on the GPU (./build.sh cuda builds demo_cuda)
 *
 * Every command prints a table on stdout and writes CSV + SVG figures (and checkpoints), its
 * record run.json and the page index.html into the --out folder; progress goes to stderr.
 * The workbench files it uses are included below, after the header; each says what it is for.
 */
#define _POSIX_C_SOURCE 200809L
#define LOOPED_TF_IMPLEMENTATION
#include "looped_tf.h"
/* the workbench: what the experiments need beside the model (README "Layout") */
#include "workbench/baselines.h"   /* zero, least squares, averaging, 3-NN, Lasso, tree, ReLU net */
#include "workbench/bands.h"       /* bootstrap bands of the mean error over prompts             */
#include "workbench/plot.h"        /* SVG line plots                                             */
#include "workbench/speed.h"       /* FLOPs of a step, this machine's multiply-add peak          */
#include "workbench/sweep.h"       /* grids of runs: points, folders, heatmaps                   */
#include "workbench/probe.h"       /* probes of a frozen model's states: w_ols, X^T y / n         */
#include "workbench/tabular.h"     /* CSV folders of real datasets, prompts for classification     */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ options */

enum { CMD_TRAIN, CMD_EVAL, CMD_MASK_SWEEP, CMD_COMPARE, CMD_BENCH, CMD_GRID, CMD_PROBE, CMD_COUNT };
static const char *const cmd_names[CMD_COUNT] = {"train", "eval", "mask-sweep", "compare", "bench", "sweep", "probe"};
/* the words of the choice flags, indexed by the value they set */
static const char *const kinds[] = {"standard", "looped", "tied"};    /* --model: ltf_config.kind */
static const char *const loop_funcs[] = {"add", "mul"};               /* --loop-func: loop_func   */
static const char *const masks[] = {"none", "last", "first"};         /* --mask: mask_mode        */
static const char *const whens[] = {"", "train", "eval", "both"};     /* --mask-when: mask_when   */
static const char *const onoff[] = {"off", "on"};
static const char *const precisions[] = {"fp32", "tf32", "bf16"};
static const char *const emits[] = {"none", "slurm", "parallel"};
static char g_gpu_name[LTF_ERR_LEN];   /* --gpu on: the device, as ltf_gpu_available names it */

/* Every flag and the commands it applies to: a flag given to another command is refused, so a
 * typo'd command line never runs with a flag silently ignored. The order is --help's. */
enum { F_TRAIN = 1 << CMD_TRAIN, F_EVAL = 1 << CMD_EVAL, F_SWEEP = 1 << CMD_MASK_SWEEP,
       F_COMPARE = 1 << CMD_COMPARE, F_BENCH = 1 << CMD_BENCH, F_GRID = 1 << CMD_GRID,   /* sweep takes train's flags too */
       F_PROBE = 1 << CMD_PROBE };
typedef struct { const char *name; unsigned commands; } flag_info;
static const flag_info flag_table[] = {
    {"--preset", F_TRAIN | F_COMPARE | F_BENCH},
    {"--task", F_TRAIN | F_EVAL | F_SWEEP | F_COMPARE},
    {"--model", F_TRAIN | F_BENCH},
    {"--d", F_TRAIN | F_COMPARE | F_BENCH},
    {"--n", F_TRAIN | F_EVAL | F_SWEEP | F_COMPARE | F_BENCH | F_PROBE},
    {"--positions", F_TRAIN | F_COMPARE | F_BENCH},
    {"--C", F_TRAIN | F_COMPARE | F_BENCH},
    {"--H", F_TRAIN | F_COMPARE | F_BENCH},
    {"--L", F_TRAIN | F_BENCH},
    {"--b", F_TRAIN | F_BENCH},
    {"--T", F_TRAIN | F_COMPARE | F_BENCH},
    {"--mask", F_TRAIN | F_SWEEP | F_COMPARE | F_BENCH},
    {"--mask-n", F_TRAIN | F_COMPARE | F_BENCH},
    {"--mask-when", F_TRAIN | F_COMPARE | F_BENCH},
    {"--loop-func", F_TRAIN | F_COMPARE | F_BENCH},
    {"--inject-every-block", F_TRAIN | F_BENCH},
    {"--no-pos-emb", F_TRAIN | F_COMPARE | F_BENCH},
    {"--models", F_COMPARE},
    {"--data", F_TRAIN},
    {"--holdout", F_TRAIN},
    {"--steps", F_TRAIN | F_COMPARE},
    {"--batch", F_TRAIN | F_COMPARE | F_BENCH},
    {"--lr", F_TRAIN | F_COMPARE | F_BENCH},
    {"--wd", F_TRAIN | F_COMPARE | F_BENCH},
    {"--seed", F_TRAIN | F_EVAL | F_SWEEP | F_COMPARE | F_PROBE},
    {"--curriculum", F_TRAIN | F_COMPARE},
    {"--cur-interval", F_TRAIN | F_COMPARE},
    {"--ckpt-every", F_TRAIN | F_COMPARE},
    {"--resume", F_TRAIN},
    {"--keep-every", F_TRAIN | F_COMPARE},
    {"--force", F_TRAIN | F_COMPARE},
    {"--ckpt", F_EVAL | F_SWEEP | F_PROBE},
    {"--eval-prompts", F_TRAIN | F_EVAL | F_SWEEP | F_COMPARE | F_PROBE},
    {"--eval-loops", F_TRAIN | F_EVAL | F_PROBE},
    {"--fixed-point", F_TRAIN | F_EVAL | F_COMPARE},
    {"--baseline-prompts", F_TRAIN | F_EVAL},
    {"--out", F_TRAIN | F_EVAL | F_SWEEP | F_COMPARE | F_PROBE},
    {"--configs", F_BENCH},
    {"--runs", F_BENCH},
    {"--rounds", F_BENCH},
    {"--compare", F_BENCH},
    {"--gpu", F_TRAIN | F_EVAL | F_SWEEP | F_COMPARE | F_BENCH | F_PROBE},
    {"--precision", F_TRAIN | F_EVAL | F_SWEEP | F_COMPARE | F_BENCH},
    {"--profile", F_BENCH},
    {"--gpu-model", F_BENCH},
    {"--grid", F_GRID},
    {"--seeds", F_GRID},
    {"--jobs", F_GRID},
    {"--emit", F_GRID},
    {"--point", F_GRID},
};
enum { N_FLAGS = sizeof flag_table / sizeof flag_table[0] };

/* compare's models (--models KIND:N,...): N is the layers of a standard model (standard-every:
 * E added before every block too), the iterations b of a looped one (L = 1), the applications b
 * of a tied one (one block). */
enum { MAX_COMPARE = 8 };
typedef struct { int kind, n, every; } compare_item;
static const char *const compare_default = "standard:12,looped:5,looped:10,looped:20,looped:25";

typedef struct {
    int command;
    ltf_config cfg;
    ltf_train_config tc;
    int task;                 /* LTF_TASK_*                                                */
    long steps;
    uint64_t seed;
    int curriculum;           /* 1: the paper's curriculum (docs/MATH.md §6), 0: fixed d, n, b       */
    long cur_interval;        /* >0: dims/points step every this many steps, loops every /10 */
    int eval_prompts, eval_loops, fixed_point, baseline_prompts;
    long ckpt_every, keep_every;  /* checkpoint every N steps; also keep a snapshot every N (0: no) */
    int force;                /* 1: write over another run's checkpoint in --out              */
    const char *out, *ckpt, *resume;
    int sweep_mode;           /* mask-sweep: LTF_MASK_KEEP_LAST or KEEP_FIRST               */
    int model_flags;          /* bench: a model flag was given, so time that config too      */
    int bench_runs, bench_rounds, bench_compare;
    const char *bench_configs;
    const char *given[N_FLAGS];   /* the value of each flag on the command line, or NULL      */
    int gpu;                  /* 1: train and evaluate the model on the GPU (--gpu on)       */
    int precision;            /* the GPU's matrix multiplies: 0 fp32, 1 tf32, 2 bf16          */
    int profile;              /* bench: time per op (CPU) or per kernel (--gpu on)           */
    int gpu_model;            /* bench: print the GPU performance model, run nothing         */
    const char *grid;         /* sweep: "key=v1,v2 key=..."                                  */
    int seeds, jobs, emit, point;   /* sweep: seeds per point, workers, 0/1/2 = none/slurm/parallel, one point or -1 */
    compare_item models[MAX_COMPARE];   /* compare: its models (--models)                   */
    int n_models;
    int tabular;              /* --task tabular: classification of the rows of --data's files  */
    const char *data, *holdout;
} options;

static void usage(FILE *f) {
    fprintf(f,
        "usage: demo [COMMAND] [flags]        (the command, if any, comes first; every flag takes one value)\n"
        "commands\n"
        "  train        (default) train a model, evaluate it, write figures and a checkpoint\n"
        "  eval         evaluate a checkpoint (--ckpt): error by examples k with 90%% bootstrap\n"
        "               bands and the task's baselines, error by loop iteration up to --fixed-point\n"
        "  mask-sweep   evaluate a checkpoint keeping only the last/first N token pairs of the\n"
        "               loop state (--mask last|first), N = 1..n: how error grows as N shrinks\n"
        "  compare      the report's experiment: looped L=1 with b = 5, 10, 20, 25 against\n"
        "               standard L=12, same data; training loss, error by k, error by iteration\n"
        "  sweep        train a grid of runs (--grid \"b=4,8 T=2,4\" --seeds 3; linked flags:\n"
        "               --grid \"model:L=looped:1,standard:12\"), each in its own folder\n"
        "               under --out, --jobs at a time; a stopped sweep resumes; then sweep.csv,\n"
        "               sweep_summary.csv (mean and 90%% band over seeds) and figures. Takes every\n"
        "               flag of train (but --resume) for all its runs\n"
        "  probe        freeze a checkpoint's model (--ckpt) and fit linear probes to its state after\n"
        "               each loop iteration (each layer: standard model) that read w_ols and X^T y / n\n"
        "               of the first i points; error by iteration, and a control fit with w fixed\n"
        "               (--eval-prompts prompts, 512 unless given; --eval-loops iterations, b unless given)\n"
        "  bench        time the training step (median of --runs after 2 warm-up steps) of the\n"
        "               small, report and paper settings (and the model flags' setting, if any):\n"
        "               ms/step, GFLOP/s, memory; --compare also times PyTorch's step (reference/)\n"
        "presets (train, compare, bench; applied first, later flags override them)\n"
        "  --preset small           looped, linear regression d=5 n=11 C=64 H=4 b=10 T=5, 3000 steps\n"
        "  --preset linear|sparse|tree|relu   the paper's four tasks at its settings (docs/MATH.md §6):\n"
        "                           d=20 C=256 H=8 L=1, lr 1e-4, 500k steps; n=41 b=20 T=15 (linear),\n"
        "                           n=41 b=20 T=10 (sparse), n=101 b=70 T=15 (tree), n=101 b=12 T=5 (relu)\n"
        "  --preset report          the report's setting: d=10 n=31 C=256 H=4 L=1 b=20 T=15, lr 1e-4\n"
        "task and model (train, bench; compare takes all but --model, --L, --b; eval and mask-sweep\n"
        "take --task and --n, which then win over the checkpoint's; mask-sweep takes --mask)\n"
        "  --task NAME              linear_regression noisy_linear_regression sparse_linear_regression\n"
        "                           decision_tree relu_2nn_regression           (linear_regression)\n"
        "                           tabular (train: classify rows of the CSV files in --data in context)\n"
        "  --data DIR               tabular: a folder of NAME.csv (reference/export_tabular.py writes one)\n"
        "  --holdout A,B            tabular: the datasets to evaluate on, left out of training\n"
        "                           (none: train on every dataset's training rows, evaluate on their test rows)\n"
        "  --model looped|standard|tied  kind of model (tied: the --L blocks applied --b times, no\n"
        "                           injection, loss after the last; the paper's ablation)  (looped)\n"
        "  --d N                    task dimension n_dims, 1..%d             (5)\n"
        "  --n N                    points per prompt, 1..100000               (11)\n"
        "  --positions N            max points the model takes (wpe 2N+1 rows), >= --n  (= --n)\n"
        "  --C N                    n_embd, 1..65536                           (64)\n"
        "  --H N                    heads, must divide C                       (4)\n"
        "  --L N                    layers in the loop body / the stack, 1..%d (1)\n"
        "  --b N                    loop iterations in training (looped only)  (10)\n"
        "  --T N                    loss window: last T iterations, 1..b (looped only)  (5)\n"
        "  --mask none|last|first   keep only the last/first N pairs of the state (none; mask-sweep: last)\n"
        "  --mask-n N               N for --mask last|first, 1..--positions    (none)\n"
        "  --mask-when train|eval|both  where the mask applies (with --mask)   (both)\n"
        "  --loop-func add|mul      looped: Y = f(Y + E) from Y = 0, or Y = f(Y * E) from Y = 1  (add)\n"
        "  --inject-every-block on|off  standard: E added to the input of every block (off)\n"
        "  --no-pos-emb on|off      no position embedding added (wpe stays, unused)  (off)\n"
        "  --models LIST            compare: the models, KIND:N comma-separated, KIND standard (N layers),\n"
        "                           standard-every (E before every block), looped (b, L=1), tied (b\n"
        "                           applications of one block), at most 8  (%s)\n"
        "training (train, compare; --batch, --lr, --wd also bench)\n"
        "  --steps N                training steps in all (with --resume: the step to reach) (3000)\n"
        "  --batch N                prompts per step                           (64)\n"
        "  --lr X                   Adam learning rate, 1e-12..10              (1e-3)\n"
        "  --wd X                   decoupled weight decay, [0, 1000]          (0)\n"
        "  --seed N                 seed of weights, data and test prompts, 0..2^31-1 (42)\n"
        "  --curriculum on|off      the paper's curriculum of dims, points and loops (on)\n"
        "  --cur-interval N         curriculum: dims/points grow every N steps, loops every N/10\n"
        "                           (the paper: 5000; default: steps/4, so a short run sees it all)\n"
        "  --ckpt-every N           also write the checkpoint every N steps    (1000)\n"
        "  --keep-every N           also keep a snapshot OUT/checkpoint_stepS.safetensors every N steps (off)\n"
        "  --force on|off           write into an --out folder that holds another run's checkpoint,\n"
        "                           replacing it (off: such a folder is refused, exit 2)\n"
        "  --resume FILE            continue training from a checkpoint, bit-identical to no stop (train);\n"
        "                           writes next to FILE unless --out is given.\n"
        "                           The checkpoint decides model, task and training: a flag for them\n"
        "                           must equal the checkpoint's value or is refused; --preset is refused;\n"
        "                           --seed then picks only the test prompts\n"
        "evaluation and output (not bench)\n"
        "  --ckpt FILE              checkpoint to evaluate (eval, mask-sweep, probe: required); mask-sweep\n"
        "                           and probe take A,B,C too (the seeds of one setting): mean and 90%% band\n"
        "  --eval-prompts N         test prompts                               (1280)\n"
        "  --eval-loops N           loop iterations for the error-by-k table (train, eval) (= --b)\n"
        "  --fixed-point N          error by loop iteration up to N (0: off) (train, eval, compare) (500)\n"
        "  --baseline-prompts N     prompts for every baseline (train, eval)  (= --eval-prompts, but at\n"
        "                           most 256 for the ReLU net, which trains a net per prompt and k)\n"
        "  --out DIR                output folder, made with its parents (out; compare: out/compare;\n"
        "                           train --resume FILE: the folder of FILE)\n"
        "bench\n"
        "  --configs LIST           comma-separated: small,report,paper         (all three)\n"
        "  --runs N                 timed steps per config, median reported    (10)\n"
        "  --rounds N               time each config N times, ours then PyTorch, and report the\n"
        "                           medians: of the times and of the N ratios (1; 1..20)\n"
        "  --compare on|off         also time reference/bench_step.py (PyTorch; with --gpu on, on the GPU) (off)\n"
        "sweep\n"
        "  --grid \"K=V,V K=V,V\"     the flags to vary (up to 3; K is a train flag without --)\n"
        "  --seeds N                runs per grid point: seeds --seed .. --seed + N - 1 (1)\n"
        "  --jobs N                 runs at a time on this machine (1)\n"
        "  --emit slurm|parallel    write sweep.slurm (a Slurm job array) or jobs.txt (GNU parallel)\n"
        "                           under --out instead of running; afterwards run the same sweep\n"
        "                           command to gather the folders (none)\n"
        "  --point I                run grid point I only (0-based; what the emitted jobs run)\n"
        "GPU\n"
        "  --gpu on|off             train, evaluate and bench the model on the GPU (off); needs the\n"
        "                           CUDA build (./build.sh cuda: ./demo_cuda). The prompts of a GPU\n"
        "                           run come from the device's own RNG: other prompts than a CPU run.\n"
        "                           Baselines stay on the CPU. The device: CUDA_VISIBLE_DEVICES.\n"
        "  --precision fp32|tf32|bf16  the Linear layers' matrix multiplies: float32, or operands rounded\n"
        "                           to TF32 (GPU only) or bfloat16 with float32 sums (fp32). bench on the\n"
        "                           CPU without it: both fp32 and bf16\n"
        "  --profile on|off         bench: also time the ops of --runs more steps (at least 5; CPU:\n"
        "                           ltf_cpu_profile, medians per step) and list them by time, with the\n"
        "                           multiplies' GFLOP/s and %% of peak; with --gpu on every kernel over\n"
        "                           3 steps (CUDA events) (off)\n"
        "  --gpu-model on|off       bench: print the GPU performance model of each config (launches,\n"
        "                           GFLOP, GB, expected ms/step on an H100 and an H200 in fp32, tf32\n"
        "                           and bf16; workbench/speed.h) and run nothing; with --gpu on the\n"
        "                           model's line follows each measured one (off)\n"
        "  --help, -h               this text\n"
        "Faults: a NaN or Inf in the loss or the gradients stops training at that step (exit 1) and\n"
        "keeps the last good checkpoint, named in the message; so does a failed checkpoint write.\n"
        "SIGINT (Ctrl-C) or SIGTERM during training writes the checkpoint of the last finished step,\n"
        "says where, and exits 130 (SIGINT) or 143 (SIGTERM); a second one stops at once (the\n"
        "checkpoint on disk is always whole: written to FILE.tmp, then renamed).\n"
        "Exit status: 0 done, 1 failed (I/O, memory, NaN), 2 bad command line (one line names the\n"
        "flag, its value and what is allowed), 130/143 stopped by a signal after saving.\n"
        "Threads: OMP_NUM_THREADS=N fixes them. Without it, training times 4 steps on all cores and 4 on one\n"
        "at the start and every 60 s, and runs on whichever was faster: on a machine where another process\n"
        "holds a core, one thread beats two that wait for each other. The results are the same bits either way.\n",
        LTF_MAX_DIMS, LTF_MAX_LAYERS, compare_default);
}

static int flag_index(const char *f) {
    for (int i = 0; i < N_FLAGS; i++) if (strcmp(f, flag_table[i].name) == 0) return i;
    return -1;
}

static const char *given(const options *o, const char *flag) {
    int i = flag_index(flag);
    return i >= 0 ? o->given[i] : NULL;
}

static int missing(const char *flag, const char *s) {
    if (s && !(s[0] == '-' && s[1] == '-' && s[2])) return 0;
    if (s) fprintf(stderr, "demo: %s needs a value, got the flag '%s' (see demo --help)\n", flag, s);
    else fprintf(stderr, "demo: %s needs a value (see demo --help)\n", flag);
    return 1;
}

static int parse_long(const char *flag, const char *s, long lo, long hi, long *out) {
    char *end;
    if (missing(flag, s)) return -1;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno || v < lo || v > hi) {
        fprintf(stderr, "demo: %s '%s' is not allowed: need an integer in %ld..%ld\n", flag, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_int(const char *flag, const char *s, long lo, long hi, int *out) {
    long v;
    if (parse_long(flag, s, lo, hi, &v) != 0) return -1;
    *out = (int)v;
    return 0;
}

static int parse_float(const char *flag, const char *s, double lo, double hi, float *out) {
    char *end;
    if (missing(flag, s)) return -1;
    errno = 0;
    double v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || errno || !(v >= lo && v <= hi)) {
        fprintf(stderr, "demo: %s '%s' is not allowed: need a number in [%g, %g]\n", flag, s, lo, hi);
        return -1;
    }
    *out = (float)v;
    return 0;
}

static int parse_choice(const char *flag, const char *s, const char *const *names, int count, int *out) {
    if (missing(flag, s)) return -1;
    for (int i = 0; i < count; i++)
        if (names[i][0] && strcmp(s, names[i]) == 0) { *out = i; return 0; }
    fprintf(stderr, "demo: %s '%s' is not allowed: choose one of", flag, s);
    for (int i = 0; i < count; i++) if (names[i][0]) fprintf(stderr, " %s", names[i]);
    fprintf(stderr, "\n");
    return -1;
}

static void set_model(options *o, int d, int n, int C, int H, int b, int T) {
    o->cfg.n_dims = d; o->tc.n_points = n; o->cfg.n_embd = C; o->cfg.n_head = H;
    o->cfg.n_loops = b; o->cfg.loop_window = T;
}

/* Presets: docs/MATH.md §6 for the paper's four tasks, docs/MATH.md §10 for the report. */
static int apply_preset(options *o, const char *name) {
    static const char *const names[] = {"small", "linear", "sparse", "tree", "relu", "report"};
    int p;
    if (parse_choice("--preset", name, names, 6, &p) != 0) return -1;
    if (p == 0) return 0;                                  /* the defaults are the small preset */
    o->tc.lr = 1e-4f; o->steps = 500000; o->cur_interval = 5000;
    if (p == 1) { o->task = LTF_TASK_LINEAR;         set_model(o, 20, 41, 256, 8, 20, 15); }
    if (p == 2) { o->task = LTF_TASK_SPARSE_LINEAR;  set_model(o, 20, 41, 256, 8, 20, 10); }
    if (p == 3) { o->task = LTF_TASK_DECISION_TREE;  set_model(o, 20, 101, 256, 8, 70, 15); }
    if (p == 4) { o->task = LTF_TASK_RELU_2NN;       set_model(o, 20, 101, 256, 8, 12, 5); }
    if (p == 5) { o->task = LTF_TASK_LINEAR;         set_model(o, 10, 31, 256, 4, 20, 15); }
    return 0;
}

static void defaults(options *o) {
    memset(o, 0, sizeof *o);
    ltf_config_default(&o->cfg);
    ltf_train_config_default(&o->tc);
    o->command = CMD_TRAIN; o->task = LTF_TASK_LINEAR;
    o->steps = 3000; o->seed = 42; o->curriculum = 1; o->cur_interval = -1;
    o->eval_prompts = 1280; o->eval_loops = -1; o->fixed_point = 500; o->baseline_prompts = -1;
    o->ckpt_every = 1000; o->out = "out"; o->sweep_mode = LTF_MASK_KEEP_LAST;
    o->bench_runs = 10; o->bench_rounds = 1; o->bench_configs = "small,report,paper";
    o->seeds = 1; o->jobs = 1; o->point = -1;
}

/* --configs: a comma-separated list of known settings, checked before anything runs. */
static int check_configs(const char *list) {
    char buf[256], *save = NULL;
    size_t n = strlen(list);
    int count = 0;
    if (n == 0 || n >= sizeof buf || list[0] == ',' || list[n - 1] == ',' || strstr(list, ",,")) {
        fprintf(stderr, "demo: --configs '%s' is not allowed: need a comma-separated list of small, report, paper\n", list);
        return -1;
    }
    memcpy(buf, list, n + 1);
    for (char *s = strtok_r(buf, ",", &save); s; s = strtok_r(NULL, ",", &save), count++)
        if (strcmp(s, "small") != 0 && strcmp(s, "report") != 0 && strcmp(s, "paper") != 0) {
            fprintf(stderr, "demo: --configs '%s' is not allowed: '%s' is none of small, report, paper\n", list, s);
            return -1;
        }
    return 0;
}

/* --models: KIND:N items (compare_item); every refusal names the item and what is allowed. */
static int parse_models(const char *f, const char *a, options *o) {
    static const char *const words[] = {"standard", "standard-every", "looped", "tied"};
    static const int kind_of[] = {LTF_STANDARD, LTF_STANDARD, LTF_LOOPED, LTF_TIED};
    char buf[512], *save = NULL;
    if (strlen(a) >= sizeof buf) { fprintf(stderr, "demo: %s is too long (%zu characters; at most 511)\n", f, strlen(a)); return -1; }
    memcpy(buf, a, strlen(a) + 1);
    o->n_models = 0;
    for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(item, ':'), *end = NULL;
        int w = -1;
        for (int i = 0; colon && i < 4; i++) if ((size_t)(colon - item) == strlen(words[i]) && strncmp(item, words[i], strlen(words[i])) == 0) w = i;
        long n = colon ? strtol(colon + 1, &end, 10) : 0;
        int hi = kind_of[w < 0 ? 0 : w] == LTF_STANDARD ? LTF_MAX_LAYERS : 1000;
        if (w < 0 || !end || *end || end == colon + 1 || n < 1 || n > hi) {
            fprintf(stderr, "demo: %s '%s' is not allowed: '%s' is none of standard:L, standard-every:L (L in 1..%d), "
                    "looped:b, tied:b (b in 1..1000)\n", f, a, item, LTF_MAX_LAYERS);
            return -1;
        }
        if (o->n_models == MAX_COMPARE) { fprintf(stderr, "demo: %s '%s' is not allowed: at most %d models\n", f, a, MAX_COMPARE); return -1; }
        compare_item it = {kind_of[w], (int)n, w == 1};
        for (int i = 0; i < o->n_models; i++)
            if (memcmp(&o->models[i], &it, sizeof it) == 0) {
                fprintf(stderr, "demo: %s '%s' is not allowed: '%s' is there twice\n", f, a, item);
                return -1;
            }
        o->models[o->n_models++] = it;
    }
    if (o->n_models == 0) { fprintf(stderr, "demo: %s '%s' is not allowed: no model in it\n", f, a); return -1; }
    return 0;
}

static int parse_flag(options *o, const char *f, const char *a, long *positions) {
    static const char *tasks[LTF_TASK_COUNT + 1];   /* and "tabular", which is the demo's */
    for (int i = 0; i < LTF_TASK_COUNT; i++) tasks[i] = ltf_task_kind_name(i);
    tasks[LTF_TASK_COUNT] = "tabular";
    ltf_config *c = &o->cfg;
    static const char *const model_flags[] = {"--preset", "--model", "--d", "--n", "--positions", "--C", "--H", "--L",
                                              "--b", "--T", "--batch", "--mask", "--mask-n", "--mask-when",
                                              "--loop-func", "--inject-every-block", "--no-pos-emb"};
    for (size_t i = 0; i < sizeof model_flags / sizeof model_flags[0]; i++) o->model_flags |= strcmp(f, model_flags[i]) == 0;
    if (strcmp(f, "--preset") == 0) return missing(f, a) ? -1 : 0;   /* applied before the rest */
    if (strcmp(f, "--task") == 0) {
        if (parse_choice(f, a, tasks, LTF_TASK_COUNT + 1, &o->task) != 0) return -1;
        if (o->task == LTF_TASK_COUNT) { o->tabular = 1; o->task = LTF_TASK_LINEAR; }
        return 0;
    }
    if (strcmp(f, "--data") == 0) { o->data = a; return missing(f, a) ? -1 : 0; }
    if (strcmp(f, "--holdout") == 0) { o->holdout = a; return missing(f, a) ? -1 : 0; }
    if (strcmp(f, "--model") == 0) return parse_choice(f, a, kinds, 3, &c->kind);
    if (strcmp(f, "--loop-func") == 0) return parse_choice(f, a, loop_funcs, 2, &c->loop_func);
    if (strcmp(f, "--inject-every-block") == 0) return parse_choice(f, a, onoff, 2, &c->inject_every_block);
    if (strcmp(f, "--no-pos-emb") == 0) return parse_choice(f, a, onoff, 2, &c->no_pos_emb);
    if (strcmp(f, "--d") == 0) return parse_int(f, a, 1, LTF_MAX_DIMS, &c->n_dims);
    if (strcmp(f, "--n") == 0) return parse_int(f, a, 1, 100000, &o->tc.n_points);
    if (strcmp(f, "--positions") == 0) return parse_long(f, a, 1, 100000, positions);
    if (strcmp(f, "--C") == 0) return parse_int(f, a, 1, 65536, &c->n_embd);
    if (strcmp(f, "--H") == 0) return parse_int(f, a, 1, 65536, &c->n_head);
    if (strcmp(f, "--L") == 0) return parse_int(f, a, 1, LTF_MAX_LAYERS, &c->n_layer);
    if (strcmp(f, "--b") == 0) return parse_int(f, a, 1, 100000, &c->n_loops);
    if (strcmp(f, "--T") == 0) return parse_int(f, a, 1, 100000, &c->loop_window);
    if (strcmp(f, "--mask") == 0) {
        if (parse_choice(f, a, masks, 3, &c->mask_mode) != 0) return -1;
        if (c->mask_mode != LTF_MASK_NONE) o->sweep_mode = c->mask_mode;
        return 0;
    }
    if (strcmp(f, "--mask-n") == 0) return parse_int(f, a, 1, 100000, &c->mask_pairs);
    if (strcmp(f, "--mask-when") == 0) return parse_choice(f, a, whens, 4, &c->mask_when);
    if (strcmp(f, "--steps") == 0) return parse_long(f, a, 0, 100000000, &o->steps);
    if (strcmp(f, "--models") == 0) return parse_models(f, a, o);
    if (strcmp(f, "--batch") == 0) return parse_int(f, a, 1, 1000000, &o->tc.batch_size);
    if (strcmp(f, "--lr") == 0) return parse_float(f, a, 1e-12, 10, &o->tc.lr);
    if (strcmp(f, "--wd") == 0) return parse_float(f, a, 0, 1e3, &o->tc.weight_decay);
    if (strcmp(f, "--seed") == 0) { long v; int rc = parse_long(f, a, 0, 0x7fffffffL, &v); o->seed = (uint64_t)v; return rc; }
    if (strcmp(f, "--curriculum") == 0) return parse_choice(f, a, onoff, 2, &o->curriculum);
    if (strcmp(f, "--cur-interval") == 0) return parse_long(f, a, 1, 100000000, &o->cur_interval);
    if (strcmp(f, "--ckpt-every") == 0) return parse_long(f, a, 1, 100000000, &o->ckpt_every);
    if (strcmp(f, "--keep-every") == 0) return parse_long(f, a, 1, 100000000, &o->keep_every);
    if (strcmp(f, "--force") == 0) return parse_choice(f, a, onoff, 2, &o->force);
    if (strcmp(f, "--eval-prompts") == 0) return parse_int(f, a, 1, 10000000, &o->eval_prompts);
    if (strcmp(f, "--eval-loops") == 0) return parse_int(f, a, 1, 1000000, &o->eval_loops);
    if (strcmp(f, "--fixed-point") == 0) return parse_int(f, a, 0, 1000000, &o->fixed_point);
    if (strcmp(f, "--runs") == 0) return parse_int(f, a, 1, 100000, &o->bench_runs);
    if (strcmp(f, "--rounds") == 0) return parse_int(f, a, 1, 20, &o->bench_rounds);
    if (strcmp(f, "--compare") == 0) return parse_choice(f, a, onoff, 2, &o->bench_compare);
    if (strcmp(f, "--gpu") == 0) return parse_choice(f, a, onoff, 2, &o->gpu);
    if (strcmp(f, "--precision") == 0) return parse_choice(f, a, precisions, 3, &o->precision);
    if (strcmp(f, "--profile") == 0) return parse_choice(f, a, onoff, 2, &o->profile);
    if (strcmp(f, "--gpu-model") == 0) return parse_choice(f, a, onoff, 2, &o->gpu_model);
    if (strcmp(f, "--grid") == 0) { if (missing(f, a)) return -1; o->grid = a; return 0; }
    if (strcmp(f, "--seeds") == 0) return parse_int(f, a, 1, 100, &o->seeds);
    if (strcmp(f, "--jobs") == 0) return parse_int(f, a, 1, 256, &o->jobs);
    if (strcmp(f, "--emit") == 0) return parse_choice(f, a, emits, 3, &o->emit);
    if (strcmp(f, "--point") == 0) return parse_int(f, a, 0, 1000000, &o->point);
    if (strcmp(f, "--configs") == 0) { if (missing(f, a) || check_configs(a) != 0) return -1; o->bench_configs = a; return 0; }
    if (strcmp(f, "--baseline-prompts") == 0) return parse_int(f, a, 1, 10000000, &o->baseline_prompts);
    const char **path = strcmp(f, "--out") == 0 ? &o->out : strcmp(f, "--ckpt") == 0 ? &o->ckpt
                      : strcmp(f, "--resume") == 0 ? &o->resume : NULL;
    if (path) {
        if (missing(f, a)) return -1;
        if (!*a) { fprintf(stderr, "demo: %s '' is not allowed: need a file or folder name\n", f); return -1; }
        *path = a;
        return 0;
    }
    fprintf(stderr, "demo: unknown flag '%s' (see demo --help)\n", f);
    return -1;
}

/* Edits (insert, delete, replace, swap of two neighbours) from a to b; at most 31 characters
 * count, enough for every flag name. */
static int edit_distance(const char *a, const char *b) {
    int la = (int)strlen(a), lb = (int)strlen(b), d[33][33];
    if (la > 31 || lb > 31) return 99;
    for (int i = 0; i <= la; i++) d[i][0] = i;
    for (int j = 0; j <= lb; j++) d[0][j] = j;
    for (int i = 1; i <= la; i++)
        for (int j = 1; j <= lb; j++) {
            int v = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < v) v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v) v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[la][lb];
}

/* An argument that is not a flag: say what it looks like (a command out of place, a typo). */
static int unknown_flag(const char *f) {
    int best = -1;
    size_t fl = strlen(f);
    for (int i = 0; i < CMD_COUNT; i++)
        if (strcmp(f, cmd_names[i]) == 0) {
            fprintf(stderr, "demo: '%s' is not allowed here: the command goes first (demo %s [flags])\n", f, f);
            return -1;
        }
    for (int i = 0; i < N_FLAGS && best < 0; i++) if (strcasecmp(f, flag_table[i].name) == 0) best = i;   /* --c */
    for (int i = 0; i < N_FLAGS && fl > 3 && best < 0; i++)   /* a prefix either way: --step, --ckpt-ever, --seeds */
        if (strncmp(f, flag_table[i].name, fl) == 0 || strncmp(f, flag_table[i].name, strlen(flag_table[i].name)) == 0) {
            best = i;
            break;
        }
    for (int i = 0, bestd = 3; i < N_FLAGS && best < 0 && strncmp(f, "--", 2) == 0; i++) {   /* a typo: --stesp */
        int dist = edit_distance(f, flag_table[i].name);
        if (dist < bestd) { bestd = dist; best = i; }
    }
    if (strncmp(f, "--", 2) != 0)
        fprintf(stderr, "demo: '%s' is not allowed: expected a flag (--name value; see demo --help)\n", f);
    else if (best >= 0)
        fprintf(stderr, "demo: unknown flag '%s' (did you mean %s? see demo --help)\n", f, flag_table[best].name);
    else
        fprintf(stderr, "demo: unknown flag '%s' (see demo --help)\n", f);
    return -1;
}

/* The name of every command a flag applies to, for the refusal. */
static void applies_to(unsigned commands, char *out, size_t cap) {
    out[0] = 0;
    for (int i = 0; i < CMD_COUNT; i++)
        if (commands & (1u << i)) snprintf(out + strlen(out), cap - strlen(out), "%s%s", out[0] ? ", " : "", cmd_names[i]);
}

/* Constraints between flags, checked with the flags' names before anything runs (the library's
 * checks, which name config fields, stay as the backstop). */
static int check_flags(const options *o) {
    const ltf_config *c = &o->cfg;
    const char *v;
    int cmd = o->command, builds_model = cmd == CMD_TRAIN || cmd == CMD_COMPARE || (cmd == CMD_BENCH && o->model_flags);
    int looped = c->kind == LTF_LOOPED || cmd == CMD_COMPARE;
    if (cmd == CMD_TRAIN && o->resume) {
        if ((v = given(o, "--preset"))) {
            fprintf(stderr, "demo: --preset '%s' is not allowed with --resume: the checkpoint decides model, task and training\n", v);
            return -1;
        }
        builds_model = 0;   /* the rest is compared with the checkpoint once it is loaded */
    }
    if (o->tabular && cmd != CMD_TRAIN && cmd != CMD_GRID) {
        fprintf(stderr, "demo: --task 'tabular' is not allowed for %s: only train (and sweep, its runs) runs it\n", cmd_names[cmd]);
        return -1;
    }
    if (o->tabular && !o->data) {
        fprintf(stderr, "demo: --task 'tabular' needs --data DIR (a folder of NAME.csv: python3 reference/export_tabular.py DIR)\n");
        return -1;
    }
    if (!o->tabular && (v = given(o, "--data") ? given(o, "--data") : given(o, "--holdout"))) {
        fprintf(stderr, "demo: %s '%s' is not allowed without --task tabular\n", given(o, "--data") ? "--data" : "--holdout", v);
        return -1;
    }
    if (o->tabular && (v = given(o, "--resume"))) {
        fprintf(stderr, "demo: --resume '%s' is not allowed with --task tabular: its runs keep weights only\n", v);
        return -1;
    }
    if (cmd == CMD_MASK_SWEEP && (v = given(o, "--mask")) && c->mask_mode == LTF_MASK_NONE) {
        fprintf(stderr, "demo: --mask 'none' is not allowed for mask-sweep: choose last or first\n");
        return -1;
    }
    if (o->precision == 1 && !o->gpu) {
        fprintf(stderr, "demo: --precision 'tf32' is not allowed without --gpu on: the CPU has fp32 and bf16\n");
        return -1;
    }
    if (cmd == CMD_GRID) {
        if (!o->grid) { fprintf(stderr, "demo: sweep needs --grid \"K=V,V ...\" (e.g. --grid \"b=4,8 T=2,4\")\n"); return -1; }
        return 0;   /* each grid point's flags are checked when the sweep starts */
    }
    if ((cmd == CMD_EVAL || cmd == CMD_MASK_SWEEP || cmd == CMD_PROBE) && !o->ckpt) {
        fprintf(stderr, "demo: %s needs --ckpt FILE (a checkpoint written by demo train)\n", cmd_names[cmd]);
        return -1;
    }
    if (!builds_model) return 0;
    if (c->n_embd % c->n_head != 0) {
        if ((v = given(o, "--H"))) fprintf(stderr, "demo: --H '%s' is not allowed: it must divide --C (%d)\n", v, c->n_embd);
        else fprintf(stderr, "demo: --C '%d' is not allowed: it must be a multiple of --H (%d)\n", c->n_embd, c->n_head);
        return -1;
    }
    if (c->n_positions < o->tc.n_points) {
        fprintf(stderr, "demo: --positions '%d' is not allowed: need at least --n (%d)\n", c->n_positions, o->tc.n_points);
        return -1;
    }
    if (!looped) {
        const char *loop_flags[] = {"--b", "--T", "--mask", "--mask-n", "--mask-when", "--loop-func"};
        int tied = c->kind == LTF_TIED;   /* --b: its applications; T = b */
        for (int i = tied; i < 6; i++)
            if ((v = given(o, loop_flags[i]))) {
                if (tied) fprintf(stderr, "demo: %s '%s' is not allowed with --model tied: it applies its block --b times "
                                  "without injection, a mask or a window (T = b)\n", loop_flags[i], v);
                else fprintf(stderr, "demo: %s '%s' is not allowed with --model standard: only the looped model has loops and a state\n",
                             loop_flags[i], v);
                return -1;
            }
    }
    if (c->kind != LTF_STANDARD && cmd != CMD_COMPARE && (v = given(o, "--inject-every-block"))) {
        fprintf(stderr, "demo: --inject-every-block '%s' is not allowed with --model %s: it is the standard model's "
                "variant (the looped model injects E every iteration already)\n", v, kinds[c->kind]);
        return -1;
    }
    if (c->loop_func == LTF_LOOP_MUL && c->mask_mode != LTF_MASK_NONE) {
        fprintf(stderr, "demo: --mask '%s' is not allowed with --loop-func mul: the mask is defined for Y + E only\n",
                masks[c->mask_mode]);
        return -1;
    }
    if (looped && cmd != CMD_COMPARE && c->loop_window > c->n_loops) {
        if ((v = given(o, "--T"))) fprintf(stderr, "demo: --T '%s' is not allowed: need 1..%d (at most --b)\n", v, c->n_loops);
        else fprintf(stderr, "demo: --b '%d' is not allowed: need at least --T (%d)\n", c->n_loops, c->loop_window);
        return -1;
    }
    if (c->mask_mode == LTF_MASK_NONE) {
        const char *mask_flags[] = {"--mask-n", "--mask-when"};
        for (int i = 0; i < 2; i++)
            if ((v = given(o, mask_flags[i]))) {
                fprintf(stderr, "demo: %s '%s' is not allowed without --mask last|first\n", mask_flags[i], v);
                return -1;
            }
    } else if (c->mask_pairs < 1 || c->mask_pairs > c->n_positions) {
        if ((v = given(o, "--mask-n")))
            fprintf(stderr, "demo: --mask-n '%s' is not allowed: need 1..%d (--positions)\n", v, c->n_positions);
        else fprintf(stderr, "demo: --mask '%s' needs --mask-n N, N in 1..%d (--positions)\n", given(o, "--mask"), c->n_positions);
        return -1;
    }
    if (!o->curriculum && (v = given(o, "--cur-interval"))) {
        fprintf(stderr, "demo: --cur-interval '%s' is not allowed with --curriculum off\n", v);
        return -1;
    }
    return 0;
}

static int parse_args(int argc, char **argv, options *o) {
    long positions = -1;
    int first = 1;
    defaults(o);
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) { usage(stdout); exit(0); }
    if (argc > 1 && strncmp(argv[1], "-", 1) != 0) {
        if (parse_choice("command", argv[1], cmd_names, CMD_COUNT, &o->command) != 0) return -1;
        first = 2;
    }
    for (int i = first; i < argc; i += 2) {   /* every flag takes one value */
        const char *f = argv[i], *a = i + 1 < argc ? argv[i + 1] : NULL;
        int k = flag_index(f);
        char cmds[64];
        if (k < 0) return unknown_flag(f);
        if (missing(f, a)) return -1;
        unsigned commands = flag_table[k].commands;
        if ((commands & F_TRAIN) && strcmp(f, "--resume") != 0) commands |= F_GRID;   /* sweep passes them on */
        if (!(commands & (1u << o->command))) {
            applies_to(commands, cmds, sizeof cmds);
            fprintf(stderr, "demo: %s '%s' does not apply to %s: only to %s\n", f, a, cmd_names[o->command], cmds);
            return -1;
        }
        if (o->given[k]) {
            fprintf(stderr, "demo: %s '%s' is not allowed: %s was already given ('%s'); give it once\n", f, a, f, o->given[k]);
            return -1;
        }
        o->given[k] = a;
    }
    if (o->given[flag_index("--preset")] && apply_preset(o, o->given[flag_index("--preset")]) != 0) return -1;
    for (int k = 0; k < N_FLAGS; k++)
        if (o->given[k] && parse_flag(o, flag_table[k].name, o->given[k], &positions) != 0) return -1;
    if (o->cfg.mask_when == 0) o->cfg.mask_when = LTF_AT_BOTH;
    if (!given(o, "--out") && o->command == CMD_COMPARE) o->out = "out/compare";
    if (!given(o, "--out") && o->resume) {   /* continue next to the checkpoint */
        static char dir[4096];
        const char *slash = strrchr(o->resume, '/');
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - o->resume) : 1, slash ? o->resume : ".");
        if (slash == o->resume) snprintf(dir, sizeof dir, "/");
        o->out = dir;
    }
    o->cfg.n_positions = positions > 0 ? (int)positions : o->tc.n_points;
    if (o->cfg.kind == LTF_TIED && !given(o, "--T")) o->cfg.loop_window = o->cfg.n_loops;   /* through all b */
    if (o->n_models == 0 && parse_models("--models", compare_default, o) != 0) return -1;
    if (o->cur_interval < 0) o->cur_interval = o->steps / 4 > 10 ? o->steps / 4 : 10;
    if (check_flags(o) != 0) return -1;
    char err[LTF_ERR_LEN];
    int from_file = o->resume || o->command == CMD_EVAL || o->command == CMD_MASK_SWEEP || o->command == CMD_PROBE
                 || o->command == CMD_GRID;                                                   /* each point's, later */
    if (!from_file && (ltf_config_check(&o->cfg, err) != 0 || ltf_train_config_check(&o->tc, &o->cfg, err) != 0)) {
        fprintf(stderr, "demo: %s\n", err);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ output helpers */

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void fmt_time(char *buf, size_t n, double s) {
    if (s < 0 || !isfinite(s)) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}

/* A progress line: redrawn in place on a terminal, a plain line every 5 s otherwise. */
typedef struct { int tty; double start, last_draw; const char *label; int threads; } progress;

static void progress_draw(progress *p, long step, long steps, long first, double loss, int final) {
    double t = now_s(), el = t - p->start;
    if (!final && t - p->last_draw < (p->tty ? 0.2 : 5.0)) return;
    p->last_draw = t;
    double rate = el > 0 ? (step - first) / el : 0;
    char eta[32], elapsed[32];
    fmt_time(eta, sizeof eta, rate > 0 ? (steps - step) / rate : 0);
    fmt_time(elapsed, sizeof elapsed, el);
    fprintf(stderr, "%s%sstep %ld/%ld  loss %.4f  %.1f steps/s  %d thread%s  elapsed %s  ETA %s%s", p->tty ? "\r" : "",
            p->label ? p->label : "", step, steps, loss, rate, p->threads, p->threads == 1 ? "" : "s", elapsed, eta,
            p->tty ? "\033[K" : "\n");
    if (final && p->tty) fprintf(stderr, "\n");
    fflush(stderr);
}

static void sb_printf(char **sb, const char *fmt, ...) {   /* append to a stb_ds char array */
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n > 0) {
        size_t len = arrlenu(*sb);
        if (len > 0) len--;                                   /* drop the previous '\0' */
        arrsetlen(*sb, len + (size_t)n + 1);
        vsnprintf(*sb + len, (size_t)n + 1, fmt, ap2);
    }
    va_end(ap2);
}

static int make_dir(const char *path) {   /* mkdir -p */
    char buf[4096];
    size_t n = strlen(path);
    if (n >= sizeof buf) { fprintf(stderr, "demo: output folder name too long (%zu bytes)\n", n); return -1; }
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != 0) continue;
        char c = buf[i];
        buf[i] = 0;
        struct stat st;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "demo: cannot create output folder '%s': %s\n", buf, strerror(errno));
            return -1;
        }
        if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) {
            fprintf(stderr, "demo: cannot create output folder '%s': a file has that name\n", buf);
            return -1;
        }
        buf[i] = c;
    }
    return 0;
}

static const char *out_path(const options *o, const char *name) {   /* OUT/name; static buffer */
    static char buf[8][4096];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", o->out, name);
    return p;
}

static int g_quiet;   /* 1: no "wrote FILE" lines (the records redrawn during training) */

static int write_text(const char *path, char *text) {   /* text: stb_ds char array or NULL */
    char err[LTF_ERR_LEN];
    if (ltf_write_atomic(path, text ? text : "", text ? strlen(text) : 0, err) != 0) {
        fprintf(stderr, "demo: %s\n", err);
        return -1;
    }
    if (!g_quiet) printf("wrote %s\n", path);
    return 0;
}

/* The run's settings in one line: the subtitle of every figure, a comment atop every CSV
 * (set_meta fills it once the model is known). */
static char g_meta[512];

static int write_plot(const char *path, const ltf_plot *p) {
    char err[LTF_ERR_LEN];
    ltf_plot q = *p;
    if (!q.subtitle && g_meta[0]) q.subtitle = g_meta;
    if (ltf_plot_svg(&q, path, err) != 0) { fprintf(stderr, "demo: plot %s: %s\n", path, err); return -1; }
    if (!g_quiet) printf("wrote %s\n", path);
    return 0;
}

/* OUT/<stem>.csv from the stb_ds text (freed here) and OUT/<stem>.svg from the plot. */
static int write_figure(const options *o, const char *stem, char **csv, const ltf_plot *p) {
    char name[256];
    int rc = 0;
    snprintf(name, sizeof name, "%s.csv", stem);
    if (g_meta[0]) {   /* "# settings" first: read it with pandas.read_csv(path, comment="#") */
        char *with = NULL;
        sb_printf(&with, "# %s\n%s", g_meta, *csv ? *csv : "");
        arrfree(*csv);
        *csv = with;
    }
    rc |= write_text(out_path(o, name), *csv);
    arrfree(*csv);
    if (p) {
        snprintf(name, sizeof name, "%s.svg", stem);
        rc |= write_plot(out_path(o, name), p);
    }
    return rc;
}

static double *iota(int n, int from) {   /* stb_ds array from, from+1, ... */
    double *x = NULL;
    for (int i = 0; i < n; i++) arrput(x, (double)(from + i));
    return x;
}

/* ------------------------------------------------------------------ run.json */

/* What a run was and what it gave, for OUT/run.json (README "run.json" has its schema):
 * written when the command starts (status "running") and again when it ends. */
typedef struct {
    int argc;
    char **argv;
    time_t started;
    double t0;                     /* now_s() at the start                                */
    int have_model;                /* cfg, task, tc and backend below are set             */
    ltf_config cfg;
    int task;
    ltf_train_config tc;
    const char *backend;
    long steps_target, first_step, last_step;   /* training: -1 when the command trains nothing */
    double train_s, final_loss;    /* NAN: not measured                                   */
    double err_2d;                 /* normalized error at k = 2d (or the last k when n <= 2d) */
    int k_2d;
    double loop_err_b, loop_err_last;           /* error over all k at b and at the last iteration */
    int loop_last;
} run_record;
static run_record g_run;

static void run_record_start(int argc, char **argv) {
    memset(&g_run, 0, sizeof g_run);
    g_run.argc = argc; g_run.argv = argv;
    g_run.started = time(NULL); g_run.t0 = now_s();
    g_run.steps_target = g_run.first_step = g_run.last_step = -1;
    g_run.train_s = g_run.final_loss = g_run.err_2d = g_run.loop_err_b = g_run.loop_err_last = NAN;
}

/* The variants of a config (docs/MATH.md §12) as words after the model's settings: "" for none. */
static const char *variant_words(const ltf_config *c) {
    static char buf[64];
    snprintf(buf, sizeof buf, "%s%s%s", c->loop_func == LTF_LOOP_MUL ? " loop_func=mul" : "",
             c->inject_every_block ? " inject_every_block" : "", c->no_pos_emb ? " no_pos_emb" : "");
    return buf;
}

/* The model is known: the run record and the one-line settings of figures and CSVs. */
static void set_meta(const options *o, const ltf_model *m, const char *what) {
    const ltf_config *c = &m->cfg;
    char model[200];
    if (c->kind != LTF_STANDARD) snprintf(model, sizeof model, "%s d=%d C=%d H=%d L=%d b=%d T=%d%s%s%s", kinds[c->kind],
                                          c->n_dims, c->n_embd, c->n_head, c->n_layer, c->n_loops, c->loop_window,
                                          c->mask_mode ? " mask=" : "", c->mask_mode ? masks[c->mask_mode] : "", variant_words(c));
    else snprintf(model, sizeof model, "standard d=%d C=%d H=%d L=%d%s", c->n_dims, c->n_embd, c->n_head, c->n_layer,
                  variant_words(c));
    snprintf(g_meta, sizeof g_meta, "looped-tf %s | %s | %s, %s | batch %d, lr %g, seed %llu | %s", LTF_VERSION,
             cmd_names[o->command], o->tabular ? "tabular" : ltf_task_kind_name(o->task), what ? what : model, o->tc.batch_size, (double)o->tc.lr,
             (unsigned long long)o->seed, ltf_model_backend(m));
    g_run.have_model = 1;
    g_run.cfg = *c; g_run.task = o->task; g_run.tc = o->tc; g_run.backend = ltf_model_backend(m);
}

static void json_str(char **sb, const char *s) {
    sb_printf(sb, "\"");
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') sb_printf(sb, "\\%c", c);
        else if (c < 0x20) sb_printf(sb, "\\u%04x", c);
        else sb_printf(sb, "%c", c);
    }
    sb_printf(sb, "\"");
}
static void json_num(char **sb, double v) { if (isfinite(v)) sb_printf(sb, "%.9g", v); else sb_printf(sb, "null"); }

static int write_run_json(const options *o, const char *status) {
    char *j = NULL, when[32];
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    const run_record *r = &g_run;
    sb_printf(&j, "{\n  \"format\": \"looped-tf run\",\n  \"format_version\": 1,\n  \"looped_tf_version\": ");
    json_str(&j, LTF_VERSION);
    sb_printf(&j, ",\n  \"command\": ");
    json_str(&j, cmd_names[o->command]);
    sb_printf(&j, ",\n  \"argv\": [");
    for (int i = 0; i < r->argc; i++) { if (i) sb_printf(&j, ", "); json_str(&j, r->argv[i]); }
    sb_printf(&j, "],\n  \"status\": ");
    json_str(&j, status);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&r->started));
    sb_printf(&j, ",\n  \"started\": \"%s\",\n  \"finished\": ", when);
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    if (strcmp(status, "running") == 0) sb_printf(&j, "null"); else sb_printf(&j, "\"%s\"", when);
    sb_printf(&j, ",\n  \"wall_s\": ");
    json_num(&j, now_s() - r->t0);
    sb_printf(&j, ",\n  \"out\": ");
    json_str(&j, o->out);
    sb_printf(&j, ",\n  \"threads\": %d,\n  \"seed\": %llu,\n  \"task\": ", threads, (unsigned long long)o->seed);
    json_str(&j, o->tabular ? "tabular" : ltf_task_kind_name(r->have_model ? r->task : o->task));
    sb_printf(&j, ",\n  \"model\": ");
    if (!r->have_model) sb_printf(&j, "null");
    else {
        const ltf_config *c = &r->cfg;
        sb_printf(&j, "{\"backend\": \"%s\", \"kind\": \"%s\", \"n_dims\": %d, \"n_positions\": %d, \"n_embd\": %d, \"n_head\": %d, "
                  "\"n_layer\": %d, \"n_loops\": %d, \"loop_window\": %d, \"mask\": \"%s\", \"mask_pairs\": %d, \"mask_when\": \"%s\", "
                  "\"loop_func\": \"%s\", \"inject_every_block\": %s, \"no_pos_emb\": %s}",
                  r->backend, kinds[c->kind], c->n_dims, c->n_positions, c->n_embd, c->n_head, c->n_layer, c->n_loops,
                  c->loop_window, masks[c->mask_mode], c->mask_pairs, whens[c->mask_when], loop_funcs[c->loop_func],
                  c->inject_every_block ? "true" : "false", c->no_pos_emb ? "true" : "false");
    }
    sb_printf(&j, ",\n  \"training\": ");
    if (r->last_step < 0) sb_printf(&j, "null");
    else {
        double steps = (double)(r->last_step - r->first_step);
        sb_printf(&j, "{\"batch_size\": %d, \"lr\": %.7g, \"beta1\": %.7g, \"beta2\": %.7g, \"eps\": %.7g, \"weight_decay\": %.7g, "
                  "\"steps_target\": %ld, \"first_step\": %ld, \"last_step\": %ld, \"train_s\": ", r->tc.batch_size,
                  (double)r->tc.lr, (double)r->tc.beta1, (double)r->tc.beta2, (double)r->tc.eps, (double)r->tc.weight_decay,
                  r->steps_target, r->first_step, r->last_step);
        json_num(&j, r->train_s);
        sb_printf(&j, ", \"steps_per_s\": ");
        json_num(&j, r->train_s > 0 ? steps / r->train_s : NAN);
        sb_printf(&j, ", \"final_loss\": ");
        json_num(&j, r->final_loss);
        sb_printf(&j, "}");
    }
    sb_printf(&j, ",\n  \"metrics\": {\"k_2d\": ");
    if (isfinite(r->err_2d)) sb_printf(&j, "%d", r->k_2d); else sb_printf(&j, "null");
    sb_printf(&j, ", \"error_at_k_2d\": ");
    json_num(&j, r->err_2d);
    sb_printf(&j, ", \"loop_error_at_b\": ");
    json_num(&j, r->loop_err_b);
    sb_printf(&j, ", \"last_iteration\": ");
    if (isfinite(r->loop_err_last)) sb_printf(&j, "%d", r->loop_last); else sb_printf(&j, "null");
    sb_printf(&j, ", \"loop_error_at_last_iteration\": ");
    json_num(&j, r->loop_err_last);
    sb_printf(&j, "}\n}\n");
    char err[LTF_ERR_LEN];
    int rc = ltf_write_atomic(out_path(o, "run.json"), j, strlen(j), err);
    if (rc != 0) fprintf(stderr, "demo: %s\n", err);
    arrfree(j);
    return rc;
}

/* ------------------------------------------------------------------ index.html */

static void html_text(char **sb, const char *s) {   /* s as HTML character data */
    for (; s && *s; s++) {
        if (*s == '<') sb_printf(sb, "&lt;");
        else if (*s == '>') sb_printf(sb, "&gt;");
        else if (*s == '&') sb_printf(sb, "&amp;");
        else sb_printf(sb, "%c", *s);
    }
}

/* A CSV of OUT as an HTML table: its comment line as a caption, at most max_rows rows. */
static void html_csv_table(char **sb, const options *o, const char *name, int max_rows) {
    FILE *f = fopen(out_path(o, name), "r");
    char line[8192];
    int row = 0, rows_left = 0;
    if (!f) return;
    sb_printf(sb, "<h2>%s</h2>\n<table>\n", name);
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (line[0] == '#') continue;
        if (row > max_rows) { rows_left++; continue; }
        sb_printf(sb, "<tr>");
        for (char *cell = line, *next; cell; cell = next) {
            next = strchr(cell, ',');
            if (next) *next++ = 0;
            sb_printf(sb, row ? "<td>" : "<th>");
            html_text(sb, cell);
            sb_printf(sb, row ? "</td>" : "</th>");
        }
        sb_printf(sb, "</tr>\n");
        row++;
    }
    fclose(f);
    sb_printf(sb, "</table>\n");
    if (rows_left) sb_printf(sb, "<p class=\"note\">%d more rows in <a href=\"%s\">%s</a></p>\n", rows_left, name, name);
}

/* OUT/index.html: the run on one page (its figures, tables and run.json). While the command
 * runs the page reloads itself every 10 s; the demo rewrites it at every checkpoint and at the
 * end. Written from the files in OUT, so it shows what exists. */
static int write_index_html(const options *o, const char *status) {
    static const char *const figures[] = {"train_loss.svg", "eval.svg", "loop_error.svg", "mask_sweep.svg"};
    static const char *const tables[] = {"eval.csv", "mask_sweep.csv", "loop_error.csv"};
    char *h = NULL;
    size_t len = 0;
    sb_printf(&h, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    if (strcmp(status, "running") == 0) sb_printf(&h, "<meta http-equiv=\"refresh\" content=\"10\">\n");
    sb_printf(&h, "<title>looped-tf: %s</title>\n<style>body{font-family:sans-serif;margin:24px;max-width:1100px}"
                  "img{display:block;width:800px;max-width:100%%;border:1px solid #ddd;margin:8px 0 24px}"
                  "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
                  "pre{background:#f6f6f6;padding:8px;font-size:12px;overflow-x:auto}.note{color:#666;font-size:12px}"
                  "</style>\n</head>\n<body>\n<h1>looped-tf %s: ", cmd_names[o->command], cmd_names[o->command]);
    html_text(&h, o->out);
    sb_printf(&h, "</h1>\n<p class=\"note\">");
    html_text(&h, g_meta);
    sb_printf(&h, "<br>status: <b>%s</b>%s</p>\n", status, strcmp(status, "running") == 0 ? " (this page reloads every 10 s)" : "");
    for (size_t i = 0; i < sizeof figures / sizeof figures[0]; i++)
        if (access(out_path(o, figures[i]), R_OK) == 0) sb_printf(&h, "<img src=\"%s\" alt=\"%s\">\n", figures[i], figures[i]);
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) html_csv_table(&h, o, tables[i], i == 2 ? 20 : 200);
    unsigned char *json = NULL;
    FILE *f = fopen(out_path(o, "run.json"), "rb");
    if (f) {
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        json = n > 0 ? (unsigned char *)malloc((size_t)n + 1) : NULL;
        if (json) { len = fread(json, 1, (size_t)n, f); json[len] = 0; }
        fclose(f);
    }
    sb_printf(&h, "<h2>run.json</h2>\n<pre>");
    html_text(&h, json ? (const char *)json : "(none)");
    sb_printf(&h, "</pre>\n</body>\n</html>\n");
    free(json);
    char err[LTF_ERR_LEN];
    int rc = ltf_write_atomic(out_path(o, "index.html"), h, strlen(h), err);
    if (rc != 0) fprintf(stderr, "demo: %s\n", err);
    arrfree(h);
    return rc;
}

/* ------------------------------------------------------------------ training */

static void describe(const ltf_model *m, const options *o, const char *what) {
    const ltf_config *c = &m->cfg;
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    fprintf(stderr, "demo: %s %s model on %s, d=%d n=%d C=%d H=%d L=%d", what, kinds[c->kind],
            ltf_task_kind_name(o->task), c->n_dims, o->tc.n_points, c->n_embd, c->n_head, c->n_layer);
    if (c->kind == LTF_LOOPED) fprintf(stderr, " b=%d T=%d", c->n_loops, c->loop_window);
    if (c->kind == LTF_TIED) fprintf(stderr, " applied b=%d times", c->n_loops);
    fprintf(stderr, "%s", variant_words(c));
    char where[32];
    snprintf(where, sizeof where, strcmp(ltf_model_backend(m), "cpu") != 0 ? "on the GPU" : "%d thread%s", threads, threads == 1 ? "" : "s");
    fprintf(stderr, ", %zu params, batch %d, lr %g, %s, %.2f GFLOP/step at full size\n", ltf_model_num_params(m),
            o->tc.batch_size, (double)o->tc.lr, where, ltf_flops_per_step(c, o->tc.batch_size, o->tc.n_points) / 1e9);
}

/* --gpu on: moves the model to the GPU (ltf_gpu_available was checked in main). */
static int to_device(const options *o, ltf_model *m) {
    char err[LTF_ERR_LEN];
    if (!o->gpu || ltf_model_to_gpu(m, err) == 0) return 0;
    fprintf(stderr, "demo: --gpu on: %s\n", err);
    return -1;
}

static void make_curriculum(const options *o, const ltf_config *c, ltf_curriculum *cur) {
    if (!o->curriculum) { ltf_curriculum_off(cur, c, o->tc.n_points); return; }
    ltf_curriculum_default(cur, o->task, c, o->tc.n_points);
    long iv = o->cur_interval;
    cur->dims.interval = cur->points.interval = (int)iv;
    cur->loops.interval = (int)(iv / 10 > 0 ? iv / 10 : 1);
}

/* SIGINT / SIGTERM during training: the handler only records the signal (async-signal-safe);
 * the training loop sees it after the step in flight, writes the checkpoint and returns
 * TRAIN_STOPPED, and the command exits 128 + signal (130, 143) as a shell reports a kill.
 * SA_RESETHAND: a second Ctrl-C during the save kills at once (the file on disk stays whole,
 * ltf_write_atomic renames a finished .tmp). Outside the training loop the defaults apply; a
 * signal the process was started ignoring stays ignored. */
static volatile sig_atomic_t g_signal;
static void on_signal(int sig) { g_signal = sig; }

static void catch_signals(int on) {
    static const int sigs[2] = {SIGINT, SIGTERM};
    for (int i = 0; i < 2; i++) {
        struct sigaction sa, old;
        sigaction(sigs[i], NULL, &old);
        if (old.sa_handler == SIG_IGN) continue;   /* started ignoring it (nohup, cmd &): keep that */
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on ? on_signal : SIG_DFL;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = on ? SA_RESETHAND | SA_RESTART : 0;
        sigaction(sigs[i], &sa, NULL);
    }
}

enum { TRAIN_STOPPED = 1 };   /* train(): 0 done, -1 failed, TRAIN_STOPPED by a signal */

/* The newest checkpoint on disk that holds good (finite, whole) weights, for the messages. */
static void kept_checkpoint(char *out, size_t cap, const char *path, long step) {
    if (path) snprintf(out, cap, "the last good checkpoint stays: %s (step %ld)", path, step);
    else snprintf(out, cap, "no checkpoint was written yet");
}

/* The live loss record OUT/train_loss.csv. A comment header (what was trained: config, task,
 * training settings, all fixed for the run), the column names, then one row per step, written
 * as training goes and flushed every 2 s, at every checkpoint and at the end: a long run can be
 * watched (tail -f) and an interrupted one keeps its record. A resumed run cuts the file back
 * to the checkpoint's step (rows past it are for steps trained again) and appends from there,
 * so its file is byte-identical to an uninterrupted run's. */
typedef struct { FILE *f; double last_flush; } loss_log;

static void loss_log_header(FILE *f, const ltf_model *m, const ltf_train_state *st) {
    const ltf_config *c = &m->cfg;
    const ltf_curriculum *cu = &st->curriculum;
    fprintf(f, "# looped-tf %s train_loss: task %s, %s model d=%d positions=%d C=%d H=%d L=%d", LTF_VERSION,
            ltf_task_kind_name(st->task_kind), kinds[c->kind], c->n_dims, c->n_positions, c->n_embd, c->n_head, c->n_layer);
    if (c->kind != LTF_STANDARD) fprintf(f, " b=%d T=%d", c->n_loops, c->loop_window);
    if (c->mask_mode != LTF_MASK_NONE) fprintf(f, " mask=%s:%d:%s", masks[c->mask_mode], c->mask_pairs, whens[c->mask_when]);
    fprintf(f, "%s", variant_words(c));
    fprintf(f, "\n# batch %d, Adam lr %g betas %g %g eps %g wd %g; curriculum dims %d->%d points %d->%d loops %d->%d "
            "(every %d/%d/%d steps)\n", st->train.batch_size, (double)st->train.lr, (double)st->train.beta1,
            (double)st->train.beta2, (double)st->train.eps, (double)st->train.weight_decay, cu->dims.start, cu->dims.end,
            cu->points.start, cu->points.end, cu->loops.start, cu->loops.end, cu->dims.interval, cu->points.interval,
            cu->loops.interval);
    fprintf(f, "# columns: training step, loss (mean squared error of the window, not divided by d), the\n"
               "# curriculum's loop count b, points n and active dimensions d at that step\n");
    fprintf(f, "step,loss,b,n,d\n");
}

/* Cuts path back to the rows of steps <= step (header kept). 0, or -1 when path has no such
 * record (the caller starts a new one). */
static int loss_log_truncate(const char *path, long step) {
    FILE *f = fopen(path, "r+");
    if (!f) return -1;
    char line[512];
    long keep = 0, at = 0;
    int header = 0;
    while (fgets(line, sizeof line, f)) {
        long s;
        at = ftell(f);
        if (line[0] == '#' || strncmp(line, "step,", 5) == 0) { header = 1; keep = at; continue; }
        if (sscanf(line, "%ld,", &s) != 1 || s > step) break;
        keep = at;
    }
    int rc = header && ftruncate(fileno(f), (off_t)keep) == 0 ? 0 : -1;
    fclose(f);
    return rc;
}

static int loss_log_open(loss_log *lg, const char *path, const ltf_model *m, const ltf_train_state *st, int resumed) {
    lg->last_flush = now_s();
    if (resumed && loss_log_truncate(path, st->step) == 0) {
        lg->f = fopen(path, "a");
    } else {
        lg->f = fopen(path, "w");
        if (lg->f) {
            loss_log_header(lg->f, m, st);
            if (resumed) fprintf(lg->f, "# resumed at step %ld: the rows before it were not in this folder\n", st->step);
        }
    }
    if (!lg->f) { fprintf(stderr, "demo: cannot write %s: %s\n", path, strerror(errno)); return -1; }
    return 0;
}

static void loss_log_row(loss_log *lg, const ltf_train_state *st, float loss, int b, int n, int d, int force_flush) {
    if (!lg || !lg->f) return;
    fprintf(lg->f, "%ld,%.6g,%d,%d,%d\n", st->step, (double)loss, b, n, d);
    if (force_flush || now_s() - lg->last_flush > 2.0) { fflush(lg->f); lg->last_flush = now_s(); }
}

static int loss_log_close(loss_log *lg, const char *path) {
    if (!lg->f) return 0;
    int bad = ferror(lg->f) | fclose(lg->f);
    lg->f = NULL;
    if (bad) { fprintf(stderr, "demo: writing %s failed\n", path); return -1; }
    return 0;
}

/* Reads a train_loss.csv back (for its figure): steps and losses as stb_ds arrays. */
static int loss_log_read(const char *path, double **steps, float **losses) {
    FILE *f = fopen(path, "r");
    char line[512];
    if (!f) return -1;
    while (fgets(line, sizeof line, f)) {
        long s;
        double l;
        if (line[0] == '#' || sscanf(line, "%ld,%lf", &s, &l) != 2) continue;
        arrput(*steps, (double)s);
        arrput(*losses, (float)l);
    }
    fclose(f);
    return 0;
}

/* Threads (OMP_NUM_THREADS not set): every op splits its work evenly between the threads, so a
 * step is as slow as its slowest thread, and a thread that shares its core with another process
 * gets half of it. On a machine with a busy core one thread can then beat two (measured: 67 vs
 * 236 ms a step). So training probes: 4 steps on all cores, 4 on one, at the start and every
 * 60 s, and keeps the faster. Every op gives the same bits on any number of threads (test
 * threads_same_bits), so the choice changes the speed only. */
typedef struct {
    int on, max, cur;         /* probing at all; the machine's threads; the ones in use now   */
    int phase;                /* 0 running; 1, 2: timing steps on max threads, then on one     */
    int left;                 /* steps left in this phase                                     */
    double t_phase, t_max, next_probe;
} thread_probe;

static void probe_init(thread_probe *tp) {
    memset(tp, 0, sizeof *tp);
    tp->max = tp->cur = 1;
#ifdef _OPENMP
    tp->max = tp->cur = omp_get_max_threads();
    tp->on = tp->max > 1 && !getenv("OMP_NUM_THREADS");
#endif
    tp->next_probe = now_s();
}

static void probe_set(thread_probe *tp, int n) {
    tp->cur = n;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
}

/* Called before each step. */
static void probe_before(thread_probe *tp) {
    if (!tp->on || tp->phase || now_s() < tp->next_probe) return;
    tp->phase = 1; tp->left = 4; tp->t_phase = now_s();
    probe_set(tp, tp->max);
}

/* Called after each step. */
static void probe_after(thread_probe *tp) {
    if (!tp->on || !tp->phase || --tp->left > 0) return;
    double t = now_s() - tp->t_phase;
    if (tp->phase == 1) { tp->t_max = t; tp->phase = 2; tp->left = 4; tp->t_phase = now_s(); probe_set(tp, 1); return; }
    probe_set(tp, t < tp->t_max ? 1 : tp->max);
    tp->phase = 0;
    tp->next_probe = now_s() + 60.0;
}

static int report_loss(const options *o, const char *stem, const char *title, const char **names, float **losses,
                       int count, long first_step, double scale, int csv_too);

/* train_loss.svg from the live record train_loss.csv (the whole run, resumed parts included);
 * the figure shows loss / d, as compare's does (the CSV keeps the loss). */
static int train_loss_figure(const options *o, int d, long first) {
    const char *names[1] = {"loss"};
    char title[256];
    double *steps = NULL;
    float *all = NULL;
    snprintf(title, sizeof title, "%s, d=%d: training loss / d", ltf_task_kind_name(o->task), d);
    loss_log_read(out_path(o, "train_loss.csv"), &steps, &all);
    int rc = report_loss(o, "train_loss", title, names, &all, 1, arrlen(steps) ? (long)steps[0] - 1 : first, d, 0);
    arrfree(steps); arrfree(all);
    return rc;
}

/* After each checkpoint of `demo train`: the records a watcher reads (figure, run.json, page). */
static void refresh_records(const options *o, const ltf_model *m, const ltf_train_state *st) {
    g_run.last_step = st->step;
    g_run.train_s = now_s() - g_run.t0;
    g_quiet = 1;   /* no "wrote ..." lines in the middle of training */
    train_loss_figure(o, m->cfg.n_dims, 0);
    g_quiet = 0;
    write_run_json(o, "running");
    write_index_html(o, "running");
}

/* Trains m from st->step to o->steps; checkpoints to ckpt every o->ckpt_every steps and at the
 * end. losses (stb_ds array) gets the loss of each step taken. A step with a NaN/Inf loss or
 * gradient, or a failed checkpoint write, stops training: the message names the step and the
 * checkpoint that stays (files already written are never touched). Returns 0, -1 or
 * TRAIN_STOPPED after a signal (checkpoint written). */
static int train(const options *o, ltf_model *m, ltf_train_state *st, const char *ckpt, const char *label, float **losses,
                 loss_log *lg) {
    int B = o->tc.batch_size, n = o->tc.n_points, d = m->cfg.n_dims;
    float *xs = (float *)malloc(sizeof(float) * (size_t)B * n * d), *ys = (float *)malloc(sizeof(float) * (size_t)B * n);
    char err[LTF_ERR_LEN], kept[1024];
    const char *good = o->resume;    /* the newest good checkpoint: the one resumed from, then ours */
    long good_step = st->step;
    int rc = 0;
    if (!xs || !ys) { fprintf(stderr, "demo: out of memory for a batch of %d x %d points\n", B, n); rc = -1; }
    progress p = {isatty(2), now_s(), 0, label, 1};
    thread_probe tp;
    probe_init(&tp);
    long first = st->step;
    double shown = 0;
    g_signal = 0;
    catch_signals(1);
    while (rc == 0 && st->step < o->steps && !g_signal) {
        float loss;
        int b = ltf_schedule_value(&st->curriculum.loops, st->step), n_now = 0;
        int d_now = ltf_schedule_value(&st->curriculum.dims, st->step);
        if (m->cfg.kind == LTF_STANDARD) b = 1;
        if (strcmp(ltf_model_backend(m), "cpu") == 0) probe_before(&tp);
        if (ltf_train_next(m, st, xs, ys, &loss, &n_now) != 0) {
            kept_checkpoint(kept, sizeof kept, good, good_step);
            fprintf(stderr, "%sdemo: %straining stopped at step %ld: %s; %s\n", p.tty ? "\n" : "", label ? label : "", st->step + 1, m->err, kept);
            rc = -1;
            break;
        }
        arrput(*losses, loss);
        int saving = ckpt && (st->step % o->ckpt_every == 0 || st->step == o->steps);
        loss_log_row(lg, st, loss, b, n_now, d_now, saving || g_signal);   /* on disk before the checkpoint */
        probe_after(&tp);
        p.threads = tp.cur;
        shown = st->step == first + 1 ? loss : 0.98 * shown + 0.02 * loss;   /* smoothed for reading */
        progress_draw(&p, st->step, o->steps, first, shown, st->step == o->steps);
        if (ckpt && o->keep_every && st->step % o->keep_every == 0) {   /* a snapshot that stays */
            char snap[4200];
            const char *slash = strrchr(ckpt, '/');
            snprintf(snap, sizeof snap, "%.*s%scheckpoint_step%ld.safetensors", slash ? (int)(slash - ckpt) : 0, ckpt,
                     slash ? "/" : "", st->step);
            if (ltf_checkpoint_save(m, st, snap, err) != 0) fprintf(stderr, "%sdemo: snapshot not saved: %s\n", p.tty ? "\n" : "", err);
        }
        if (saving) {
            if (ltf_checkpoint_save(m, st, ckpt, err) != 0) {
                kept_checkpoint(kept, sizeof kept, good, good_step);
                fprintf(stderr, "%sdemo: %straining stopped at step %ld: checkpoint not saved: %s; %s\n", p.tty ? "\n" : "", label ? label : "",
                        st->step, err, kept);
                rc = -1;
            } else {
                good = ckpt; good_step = st->step;
                if (lg && st->step < o->steps) refresh_records(o, m, st);
            }
        }
    }
    if (rc == 0 && g_signal) {
        const char *name = g_signal == SIGINT ? "SIGINT" : "SIGTERM";
        if (ckpt && good_step != st->step && ltf_checkpoint_save(m, st, ckpt, err) != 0) {
            kept_checkpoint(kept, sizeof kept, good, good_step);
            fprintf(stderr, "%sdemo: %s%s at step %ld: checkpoint not saved: %s; %s\n", p.tty ? "\n" : "", label ? label : "", name, st->step, err, kept);
            rc = -1;
        } else {
            if (ckpt) { good = ckpt; good_step = st->step; }
            fprintf(stderr, "%sdemo: %s%s: stopped after step %ld; checkpoint %s (step %ld); continue with --resume %s\n",
                    p.tty ? "\n" : "", label ? label : "", name, st->step, good ? good : "(none)", good_step, good ? good : "FILE");
            rc = TRAIN_STOPPED;
        }
    }
    catch_signals(0);
    probe_set(&tp, tp.max);   /* evaluation and the next model start from all threads */
    free(xs); free(ys);
    return rc;
}

/* ------------------------------------------------------------------ evaluation */

/* docs/MATH.md §8 and the paper's plots: which baselines each task is compared with. */
static int task_baselines(int task, int *kinds) {
    int n = 0;
    if (task != LTF_TASK_DECISION_TREE) kinds[n++] = LTF_BASE_LSQ;
    if (task == LTF_TASK_SPARSE_LINEAR) kinds[n++] = LTF_BASE_LASSO;
    if (task == LTF_TASK_DECISION_TREE) kinds[n++] = LTF_BASE_TREE;
    if (task == LTF_TASK_RELU_2NN || task == LTF_TASK_DECISION_TREE) kinds[n++] = LTF_BASE_RELU_NET;
    if (task != LTF_TASK_RELU_2NN) kinds[n++] = LTF_BASE_AVERAGING;
    kinds[n++] = LTF_BASE_KNN3;
    kinds[n++] = LTF_BASE_ZERO;
    return n;
}

typedef struct {          /* normalized error by k of one predictor, with its 90% band */
    const char *name;
    double *err, *lo, *hi;   /* [n] each                                               */
} curve;

static void curve_free(curve *c) { free(c->err); free(c->lo); free(c->hi); }

static int curve_alloc(curve *c, const char *name, int n) {
    c->name = name;
    c->err = (double *)malloc(sizeof(double) * n); c->lo = (double *)malloc(sizeof(double) * n);
    c->hi = (double *)malloc(sizeof(double) * n);
    return c->err && c->lo && c->hi ? 0 : -1;
}

static int band(curve *c, const float *per_prompt, int P, int n, uint64_t seed) {
    if (ltf_bootstrap_band(per_prompt, P, n, 1000, 0.9, seed, c->lo, c->hi) != 0) {
        fprintf(stderr, "demo: out of memory for the bootstrap band\n");
        return -1;
    }
    return 0;
}

/* The model (at eval_loops iterations) on P test prompts: error by k with its band, and the
 * error by loop iteration up to `iters` (looped models, iters > 0) into *by_iter. */
static int eval_model(const options *o, ltf_model *m, const ltf_task *task, int eval_loops, int iters,
                      curve *out, double **by_iter) {
    int n = o->tc.n_points, P = o->eval_prompts;
    float *pp = (float *)malloc(sizeof(float) * (size_t)P * n);
    if (!pp || curve_alloc(out, "model", n) != 0) { fprintf(stderr, "demo: out of memory for evaluation\n"); free(pp); return -1; }
    ltf_rng r;
    ltf_rng_seed(&r, o->seed + 2);                   /* the same test prompts for every predictor */
    int rc = ltf_evaluate(m, task, &r, P, n, eval_loops, out->err, NULL, pp);
    if (rc == 0) rc = band(out, pp, P, n, o->seed + 3);
    free(pp);
    if (rc == 0 && by_iter && iters > 0 && m->cfg.kind == LTF_LOOPED) {
        double *ek = (double *)malloc(sizeof(double) * n);
        *by_iter = (double *)malloc(sizeof(double) * iters);
        ltf_rng_seed(&r, o->seed + 2);
        int P2 = P < 256 ? P : 256;                  /* 256 prompts: 500 iterations stay cheap */
        rc = ek && *by_iter ? ltf_evaluate(m, task, &r, P2, n, iters, ek, *by_iter, NULL) : -1;
        free(ek);
    }
    if (rc != 0) fprintf(stderr, "demo: evaluation: %s\n", m->err);
    return rc;
}

/* Prompts for a baseline: --baseline-prompts when given; else all test prompts, except for the
 * ReLU net, which fits 100 Adam steps per prompt and k (5 ms at d=20, k=100): at most 256. */
static int baseline_prompts(const options *o, int kind) {
    if (o->baseline_prompts > 0) return o->baseline_prompts;
    if (kind == LTF_BASE_RELU_NET && o->eval_prompts > 256) return 256;
    return o->eval_prompts;
}

static int eval_baselines(const options *o, const ltf_task *task, curve *cs, int *count) {
    int kinds[8], nb = task_baselines(task->kind, kinds), n = o->tc.n_points;
    int Pmax = o->eval_prompts > o->baseline_prompts ? o->eval_prompts : o->baseline_prompts;
    float *pp = (float *)malloc(sizeof(float) * (size_t)Pmax * n);
    if (!pp) { fprintf(stderr, "demo: out of memory for the baselines\n"); return -1; }
    for (int i = 0; i < nb; i++) {
        int P = baseline_prompts(o, kinds[i]);
        ltf_rng r;
        ltf_rng_seed(&r, o->seed + 2);
        double t0 = now_s();
        if (curve_alloc(&cs[i], ltf_baseline_name(kinds[i]), n) != 0 ||
            ltf_baseline_evaluate(kinds[i], task, &r, P, n, cs[i].err, pp) != 0 || band(&cs[i], pp, P, n, o->seed + 3) != 0) {
            fprintf(stderr, "demo: out of memory for baseline %s\n", ltf_baseline_name(kinds[i]));
            free(pp);
            *count = i + 1;
            return -1;
        }
        if (now_s() - t0 > 5) fprintf(stderr, "demo: baseline %s took %.0f s\n", cs[i].name, now_s() - t0);
    }
    *count = nb;
    free(pp);
    return 0;
}

/* Table on stdout, OUT/<stem>.csv and OUT/<stem>.svg: error by k for every curve. */
/* ylabel NULL: the regression's normalized squared error with the zero estimator at 1;
 * otherwise that label and a reference line at ref named ref_label (classification, §13). */
static int report_by_k_as(const options *o, const char *stem, const char *title, curve *cs, int nc, int d,
                          const char *ylabel, double ref, const char *ref_label) {
    int n = o->tc.n_points, rc = 0;
    char *csv = NULL;
    printf("%4s", "k");
    for (int i = 0; i < nc; i++) printf(" %14s", cs[i].name);
    printf("\n");
    sb_printf(&csv, "k");
    for (int i = 0; i < nc; i++) sb_printf(&csv, ",%s,%s_lo90,%s_hi90", cs[i].name, cs[i].name, cs[i].name);
    sb_printf(&csv, "\n");
    for (int k = 0; k < n; k++) {
        printf("%4d", k);
        for (int i = 0; i < nc; i++) printf(" %14.4f", cs[i].err[k]);
        printf("%s\n", k == 2 * d ? "   <- k = 2d" : "");
        sb_printf(&csv, "%d", k);
        for (int i = 0; i < nc; i++) sb_printf(&csv, ",%.6g,%.6g,%.6g", cs[i].err[k], cs[i].lo[k], cs[i].hi[k]);
        sb_printf(&csv, "\n");
    }
    double *x = iota(n, 0);
    ltf_series *ser = NULL;
    for (int i = 0; i < nc; i++) {
        ltf_series s = {cs[i].name, x, cs[i].err, n, cs[i].lo, cs[i].hi, 0};
        if (strcmp(cs[i].name, "zero") == 0) continue;   /* drawn as the reference line */
        arrput(ser, s);
    }
    double top = 1.0, bottom = 1.0;   /* y range: the data, but least squares' 1e-15 floors at 1e-4 */
    for (int i = 0; i < (int)arrlen(ser); i++)
        for (int k = 0; k < n; k++) {
            double v = ser[i].hi[k], e = ser[i].y[k];
            if (isfinite(v) && v > top) top = v;
            if (isfinite(e) && e > 0 && e < bottom) bottom = e;
        }
    bottom = bottom / 1.5 > 1e-4 ? bottom / 1.5 : 1e-4;
    ltf_plot p = {title, "in-context examples k", ylabel ? ylabel : "normalized squared error", 0, 1, ser, (int)arrlen(ser),
                  bottom, top * 1.2, ylabel ? ref : 1.0, ylabel ? ref_label : "zero estimator", NULL, NULL, NULL, NULL, 0};
    double kd = d;                                       /* the mark at k = d: least squares exact */
    const char *kd_label[1] = {"k = d"};
    if (d < n) { p.vline = &kd; p.vline_label = kd_label; p.n_vline = 1; }
    rc |= write_figure(o, stem, &csv, &p);
    arrfree(ser); arrfree(x);
    return rc;
}
static int report_by_k(const options *o, const char *stem, const char *title, curve *cs, int nc, int d) {
    return report_by_k_as(o, stem, title, cs, nc, d, NULL, 0, NULL);
}

/* marks: the b each model was trained with (a dotted line each); colours: palette index per model */
static int report_by_iter(const options *o, const char *stem, const char *title, const char **names, double **by_iter,
                          int count, int iters, const int *marks, const int *colours) {
    char *csv = NULL;
    int rc = 0;
    sb_printf(&csv, "iteration");
    for (int i = 0; i < count; i++) sb_printf(&csv, ",%s", names[i]);
    sb_printf(&csv, "\n");
    for (int t = 0; t < iters; t++) {
        sb_printf(&csv, "%d", t + 1);
        for (int i = 0; i < count; i++) sb_printf(&csv, ",%.6g", by_iter[i][t]);
        sb_printf(&csv, "\n");
    }
    double *x = iota(iters, 1);
    ltf_series *ser = NULL;
    for (int i = 0; i < count; i++) {
        ltf_series s = {names[i], x, by_iter[i], iters, NULL, NULL, 0};
        arrput(ser, s);
    }
    ltf_plot p = {title, "loop iteration", "normalized squared error (all k)", 1, 1, ser, count, 0, 0, 0, NULL, NULL,
                  colours, NULL, NULL, 0};
    double mx[8];
    char mtext[8][32];
    const char *mlabel[8];
    for (int i = 0; i < count && i < 8; i++) {
        mx[i] = marks[i];
        snprintf(mtext[i], sizeof mtext[i], count == 1 ? "trained b = %d" : "b = %d", marks[i]);
        mlabel[i] = mtext[i];
    }
    p.vline = mx; p.vline_label = mlabel; p.n_vline = count < 8 ? count : 8;
    rc |= write_figure(o, stem, &csv, &p);
    arrfree(ser); arrfree(x);
    return rc;
}

/* Training loss: every step in OUT/<stem>.csv; the figure shows a trailing moving average over
 * W = len/50 steps (at least 1), which reads better than the raw, noisy per-batch loss. */
static int report_loss(const options *o, const char *stem, const char *title, const char **names, float **losses,
                       int count, long first_step, double scale, int csv_too) {
    char *csv = NULL, ylabel[128];
    int rc = 0;
    long len = 0;
    for (int i = 0; i < count; i++) if ((long)arrlen(losses[i]) > len) len = (long)arrlen(losses[i]);
    long W = len / 50 > 1 ? len / 50 : 1;
    sb_printf(&csv, "step");
    for (int i = 0; i < count; i++) sb_printf(&csv, ",%s", names[i]);
    sb_printf(&csv, "\n");
    size_t ns = count > 0 ? (size_t)count : 1;   /* count >= 1 from every caller */
    double **y = (double **)calloc(ns, sizeof(double *)), *x = NULL, *sum = (double *)calloc(ns, sizeof(double));
    if (!y || !sum) { free(y); free(sum); arrfree(csv); fprintf(stderr, "demo: out of memory for the loss figure\n"); return -1; }
    for (long s = 0; s < len; s++) {
        sb_printf(&csv, "%ld", first_step + s + 1);
        arrput(x, (double)(first_step + s + 1));
        for (int i = 0; i < count; i++) {
            long li = (long)arrlen(losses[i]);
            double v = s < li ? losses[i][s] / scale : NAN;
            sb_printf(&csv, ",%.6g", v);
            if (s < li) sum[i] += v;
            if (s - W >= 0 && s - W < li) sum[i] -= losses[i][s - W] / scale;
            long in = (s < li ? s + 1 : li) - (s - W + 1 > 0 ? s - W + 1 : 0);
            arrput(y[i], s < li && in > 0 ? sum[i] / in : NAN);
        }
        sb_printf(&csv, "\n");
    }
    ltf_series *ser = NULL;
    for (int i = 0; i < count; i++) {
        ltf_series s = {names[i], x, y[i], (int)len, NULL, NULL, 0};
        arrput(ser, s);
    }
    snprintf(ylabel, sizeof ylabel, "%s, mean of %ld steps", scale == 1.0 ? "training loss (MSE)" : "training loss / d", W);
    ltf_plot p = {title, "training step", ylabel, 0, 1, ser, count, 0, 0, 0, NULL, NULL, NULL, NULL, NULL, 0};
    if (csv_too) rc |= write_figure(o, stem, &csv, &p);
    else {   /* the CSV is the live record train() wrote */
        char name[256];
        snprintf(name, sizeof name, "%s.svg", stem);
        rc |= write_plot(out_path(o, name), &p);
        arrfree(csv);
    }
    for (int i = 0; i < count; i++) arrfree(y[i]);
    free(y); free(sum); arrfree(ser); arrfree(x);
    return rc;
}

/* Evaluate a model and its task's baselines: table, eval.csv/svg, loop_error.csv/svg. */
static int evaluate_all(const options *o, ltf_model *m) {
    int nb = 0, rc;
    ltf_task task = ltf_task_make(o->task, m->cfg.n_dims, m->cfg.n_dims);
    curve cs[9];
    double *by_iter = NULL;
    memset(cs, 0, sizeof cs);
    rc = eval_model(o, m, &task, o->eval_loops, o->fixed_point, &cs[0], &by_iter);
    if (rc == 0) rc = eval_baselines(o, &task, cs + 1, &nb);
    if (rc == 0) {
        printf("normalized error by in-context examples k (%s; squared error / %g), %d test prompts",
               task.name, (double)task.error_scale, o->eval_prompts);
        int bk[8], nbk = task_baselines(task.kind, bk);
        for (int i = 0; i < nbk; i++)
            if (baseline_prompts(o, bk[i]) != o->eval_prompts)
                printf(", %d for %s", baseline_prompts(o, bk[i]), ltf_baseline_name(bk[i]));
        if (m->cfg.kind == LTF_LOOPED) printf(", model at %d loop iterations", o->eval_loops);
        printf("\n");
        char title[256];
        snprintf(title, sizeof title, "%s, d=%d: %s model vs baselines (90%% bootstrap bands)", task.name, m->cfg.n_dims,
                 kinds[m->cfg.kind]);
        rc = report_by_k(o, "eval", title, cs, 1 + nb, m->cfg.n_dims);
        int n = o->tc.n_points;
        g_run.k_2d = 2 * m->cfg.n_dims < n ? 2 * m->cfg.n_dims : n - 1;
        g_run.err_2d = cs[0].err[g_run.k_2d];
    }
    if (rc == 0 && by_iter) {
        const char *names[1] = {"model"};
        printf("error by loop iteration (all k): 1: %.4f", by_iter[0]);
        if (m->cfg.n_loops < o->fixed_point) printf("  b=%d: %.4f", m->cfg.n_loops, by_iter[m->cfg.n_loops - 1]);
        printf("  %d: %.4f\n", o->fixed_point, by_iter[o->fixed_point - 1]);
        if (m->cfg.n_loops <= o->fixed_point) g_run.loop_err_b = by_iter[m->cfg.n_loops - 1];
        g_run.loop_last = o->fixed_point; g_run.loop_err_last = by_iter[o->fixed_point - 1];
        char title[256];
        snprintf(title, sizeof title, "%s: error by loop iteration (trained with b=%d, T=%d)", task.name, m->cfg.n_loops,
                 m->cfg.loop_window);
        rc = report_by_iter(o, "loop_error", title, names, &by_iter, 1, o->fixed_point, &m->cfg.n_loops, NULL);
    }
    for (int i = 0; i <= nb; i++) curve_free(&cs[i]);
    free(by_iter);
    return rc;
}

/* ------------------------------------------------------------------ no silent overwrite */

/* a compare model's name in tables and figures: "standard L=12", "looped b=10", "tied b=12" */
static void compare_item_name(const compare_item *it, char *out, size_t cap) {
    if (it->kind == LTF_STANDARD) snprintf(out, cap, "standard%s L=%d", it->every ? "-every" : "", it->n);
    else snprintf(out, cap, "%s b=%d", kinds[it->kind], it->n);
}

static void compare_ckpt_name(char *out, size_t cap, const char *dir, const compare_item *it) {
    if (it->kind == LTF_STANDARD && it->n == 12 && !it->every) snprintf(out, cap, "%s/standard.safetensors", dir);
    else if (it->kind == LTF_STANDARD) snprintf(out, cap, "%s/standard%s_L%d.safetensors", dir, it->every ? "_every" : "", it->n);
    else snprintf(out, cap, "%s/%s_b%d.safetensors", dir, kinds[it->kind], it->n);
}

static int same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* train and compare write checkpoints into --out: a folder that already holds another run's
 * checkpoint is refused (exit 2, nothing written) unless --force on, or --resume of that very
 * checkpoint. */
static int guard_out(const options *o) {
    char path[4200];
    const char *found = NULL;
    if (o->force || (o->command != CMD_TRAIN && o->command != CMD_COMPARE)) return 0;
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", o->out);
    if (access(path, F_OK) == 0 && !(o->command == CMD_TRAIN && o->resume && same_file(path, o->resume))) found = path;
    for (int i = 0; i < o->n_models && !found && o->command == CMD_COMPARE; i++) {
        compare_ckpt_name(path, sizeof path, o->out, &o->models[i]);
        if (access(path, F_OK) == 0) found = path;
    }
    if (!found) return 0;
    fprintf(stderr, "demo: --out '%s' holds another run's checkpoint (%s): not overwriting it; choose another --out, "
            "continue that run with --resume %s, or replace it with --force on\n", o->out, found, found);
    return -1;
}

/* ------------------------------------------------------------------ commands */

/* --resume: the checkpoint decides model, task and training. A flag for one of them must say
 * what the checkpoint says, or the run is refused (exit 2): no silent winner. --steps is the
 * step to reach and must not be behind the checkpoint. */
static int check_resume_flags(const options *o, const ltf_model *m, const ltf_train_state *st) {
    const ltf_config *c = &m->cfg;
    ltf_curriculum off;
    ltf_curriculum_off(&off, c, st->curriculum.points.end);
    int cur_on = memcmp(&off, &st->curriculum, sizeof off) != 0;
    if (o->steps < st->step) {
        fprintf(stderr, "demo: --steps '%ld' is not allowed with --resume: the checkpoint is at step %ld; need --steps >= %ld\n",
                o->steps, st->step, st->step);
        return -1;
    }
    for (int k = 0; k < N_FLAGS; k++) {
        const char *f = flag_table[k].name;
        char have[64] = "";
        int same = 1;
#define INT_FLAG(name, mine, theirs) \
        if (strcmp(f, name) == 0) { same = (mine) == (theirs); snprintf(have, sizeof have, "%d", (int)(theirs)); }
#define NAME_FLAG(name, mine, theirs, names) \
        if (strcmp(f, name) == 0) { same = (mine) == (theirs); snprintf(have, sizeof have, "%s", names[theirs]); }
        if (!o->given[k]) continue;
        if (strcmp(f, "--task") == 0) { same = o->task == st->task_kind; snprintf(have, sizeof have, "%s", ltf_task_kind_name(st->task_kind)); }
        NAME_FLAG("--model", o->cfg.kind, c->kind, kinds)
        INT_FLAG("--d", o->cfg.n_dims, c->n_dims)
        INT_FLAG("--n", o->tc.n_points, st->curriculum.points.end)
        INT_FLAG("--positions", o->cfg.n_positions, c->n_positions)
        INT_FLAG("--C", o->cfg.n_embd, c->n_embd)
        INT_FLAG("--H", o->cfg.n_head, c->n_head)
        INT_FLAG("--L", o->cfg.n_layer, c->n_layer)
        INT_FLAG("--b", o->cfg.n_loops, c->n_loops)
        INT_FLAG("--T", o->cfg.loop_window, c->loop_window)
        NAME_FLAG("--mask", o->cfg.mask_mode, c->mask_mode, masks)
        INT_FLAG("--mask-n", o->cfg.mask_pairs, c->mask_pairs)
        NAME_FLAG("--mask-when", o->cfg.mask_when, c->mask_when, whens)
        NAME_FLAG("--loop-func", o->cfg.loop_func, c->loop_func, loop_funcs)
        NAME_FLAG("--inject-every-block", o->cfg.inject_every_block, c->inject_every_block, onoff)
        NAME_FLAG("--no-pos-emb", o->cfg.no_pos_emb, c->no_pos_emb, onoff)
        INT_FLAG("--batch", o->tc.batch_size, st->train.batch_size)
        NAME_FLAG("--curriculum", o->curriculum, cur_on, onoff)
        if (strcmp(f, "--lr") == 0 || strcmp(f, "--wd") == 0) {
            float mine = f[2] == 'l' ? o->tc.lr : o->tc.weight_decay, theirs = f[2] == 'l' ? st->train.lr : st->train.weight_decay;
            same = mine == theirs;
            snprintf(have, sizeof have, "%g", (double)theirs);
        }
        if (strcmp(f, "--cur-interval") == 0) {
            same = cur_on && o->cur_interval == st->curriculum.dims.interval;
            if (cur_on) snprintf(have, sizeof have, "%d", st->curriculum.dims.interval);
            else snprintf(have, sizeof have, "no curriculum");
        }
#undef INT_FLAG
#undef NAME_FLAG
        if (!same) {
            fprintf(stderr, "demo: %s '%s' conflicts with --resume: the checkpoint has %s (drop the flag; the checkpoint "
                    "decides model, task and training)\n", f, o->given[k], have);
            return -1;
        }
    }
    return 0;
}

/* A new model and its step-0 train state for options o (train, and each model of compare):
 * the curriculum checked, the model created and, with --gpu on, moved to the GPU. 0, or the
 * exit status after a message (2: a bad curriculum, 1: anything else). */
static int start_fresh(const options *o, ltf_model *m, ltf_train_state *st, const char *who) {
    char err[LTF_ERR_LEN];
    ltf_curriculum cur;
    make_curriculum(o, &o->cfg, &cur);
    if (ltf_curriculum_check(&cur, &o->cfg, err) != 0) { fprintf(stderr, "demo: %s%s\n", who, err); return 2; }
    if (ltf_config_check(&o->cfg, err) != 0 || ltf_model_create(m, &o->cfg, o->seed, err) != 0) {
        fprintf(stderr, "demo: %s%s\n", who, err);
        return 1;
    }
    if (to_device(o, m) != 0) { ltf_model_free(m); return 1; }
    ltf_train_state_init(st, o->task, &o->tc, &cur, o->seed + 1);
    return 0;
}

/* The loader leaves a checkpoint's curriculum to ltf_train_next; the demo refuses a bad one at
 * once. On failure: a message, m freed, 1. */
static int check_state(const char *path, ltf_model *m, const ltf_train_state *st) {
    char err[LTF_ERR_LEN];
    if (ltf_curriculum_check(&st->curriculum, &m->cfg, err) == 0) return 0;
    fprintf(stderr, "demo: %s: train state: %s\n", path, err);
    ltf_model_free(m);
    return 1;
}

/* ------------------------------------------------------------------ train --task tabular
 * docs/MATH.md §13, README "Tabular data": a classification model (K = the most classes of a
 * dataset) trained with ltf_train_step on prompts of the training rows of the --data datasets
 * not held out, then its error rate by k on prompts of the test rows of the held-out datasets
 * (all of them without --holdout), against the classification baselines on the same prompts. */

/* train: the datasets not in --holdout; eval: those in it (every one without it). 0, or 2 and a
 * message naming an unknown dataset. */
static int tab_sets(const options *o, const ltf_tabular *t, int *train, int *n_train, int *eval, int *n_eval) {
    char buf[4096], *save = NULL;
    int *held = (int *)calloc((size_t)t->n_sets, sizeof(int));
    *n_train = *n_eval = 0;
    if (!held) { fprintf(stderr, "demo: out of memory\n"); return 1; }
    snprintf(buf, sizeof buf, "%s", o->holdout ? o->holdout : "");
    for (char *nm = strtok_r(buf, ",", &save); nm; nm = strtok_r(NULL, ",", &save)) {
        int found = -1;
        for (int i = 0; i < t->n_sets; i++) if (strcmp(t->sets[i].name, nm) == 0) found = i;
        if (found < 0) {
            fprintf(stderr, "demo: --holdout '%s' is not allowed: '%s' is none of --data's datasets:", o->holdout, nm);
            for (int i = 0; i < t->n_sets; i++) fprintf(stderr, " %s", t->sets[i].name);
            fprintf(stderr, "\n");
            free(held);
            return 2;
        }
        held[found] = 1;
    }
    for (int i = 0; i < t->n_sets; i++) {
        if (!held[i]) train[(*n_train)++] = i;
        if (held[i] || !o->holdout) eval[(*n_eval)++] = i;
    }
    free(held);
    if (*n_train == 0) { fprintf(stderr, "demo: --holdout '%s' is not allowed: it leaves no dataset to train on\n", o->holdout); return 2; }
    return 0;
}

/* The error rates by k of the model and the baselines on P prompts of the eval datasets' test
 * rows (each prompt's 0/1 errors kept for the bootstrap band); cs[0] the model. */
static int tab_evaluate(const options *o, ltf_model *m, const ltf_tabular *t, const int *eval, int n_eval, curve *cs, int *nc) {
    static const int kinds[4] = {LTF_CLS_LOGREG, LTF_CLS_KNN3, LTF_CLS_TREE, LTF_CLS_MAJORITY};
    static const char *names[5] = {"model", "logistic_regression", "3nn", "decision_tree", "majority"};
    int used[5] = {1, 0, 0, 0, 0};   /* (everything before the first goto: demo.c compiles as C++ too) */
    int n = o->tc.n_points, d = m->cfg.n_dims, K = m->cfg.n_classes, P = o->eval_prompts, rc = 0;
    int loops = o->eval_loops > 0 ? o->eval_loops : m->cfg.n_loops;
    size_t pn = (size_t)P * n;
    float *xs = (float *)malloc(sizeof(float) * pn * d), *ys = (float *)malloc(sizeof(float) * pn);
    float *logits = (float *)malloc(sizeof(float) * pn * K), *wrong = (float *)malloc(sizeof(float) * pn * 5);
    char err[LTF_ERR_LEN];
    ltf_rng r;
    ltf_rng_seed(&r, o->seed + 2);
    *nc = 0;
    if (!xs || !ys || !logits || !wrong) { fprintf(stderr, "demo: out of memory for %d test prompts\n", P); rc = 1; goto done; }
    if (ltf_tab_sample(t, eval, n_eval, 1, &r, P, n, d, xs, ys, err) != 0) { fprintf(stderr, "demo: %s\n", err); rc = 2; goto done; }
    for (int p0 = 0; p0 < P; p0 += 64) {
        int B = P - p0 < 64 ? P - p0 : 64;
        size_t at = (size_t)p0 * n;
        if (ltf_predict(m, xs + at * d, ys + at, B, n, loops, logits + at * K, NULL) != 0) {
            fprintf(stderr, "demo: evaluation: %s\n", m->err); rc = 1; goto done;
        }
    }
    for (size_t i = 0; i < pn; i++) wrong[i] = (float)ltf__point_error(m, logits + i * K, ys[i]);   /* the header's rule */
    for (int b = 0; b < 4; b++) {
        if ((kinds[b] == LTF_CLS_LOGREG || kinds[b] == LTF_CLS_TREE) && K != 2) continue;   /* binary ones */
        float *w = wrong + (size_t)(b + 1) * pn;
        int bad = 0;
        #pragma omp parallel for schedule(dynamic, 1) reduction(+ : bad)
        for (int p = 0; p < P; p++)
            for (int k = 0; k < n; k++) {
                const float *px = xs + (size_t)p * n * d, *py = ys + (size_t)p * n;
                int c = ltf_cls_baseline_predict(kinds[b], k, d, K, px, py, px + (size_t)k * d);
                bad += c < 0;
                w[(size_t)p * n + k] = c != (int)py[k];
            }
        if (bad) { fprintf(stderr, "demo: %s failed on %d points\n", names[b + 1], bad); rc = 1; goto done; }
        used[b + 1] = 1;
    }
    for (int i = 0; i < 5; i++) {
        if (!used[i]) continue;
        curve *c = &cs[*nc];
        if (curve_alloc(c, names[i], n) != 0) { fprintf(stderr, "demo: out of memory\n"); rc = 1; goto done; }
        (*nc)++;
        for (int k = 0; k < n; k++) {
            double e = 0;
            for (int p = 0; p < P; p++) e += wrong[(size_t)i * pn + (size_t)p * n + k];
            c->err[k] = e / P;
        }
        if (band(c, wrong + (size_t)i * pn, P, n, o->seed + 3) != 0) { rc = 1; goto done; }
    }
done:
    free(xs); free(ys); free(logits); free(wrong);
    return rc;
}

static int cmd_train_tabular(options *o) {
    ltf_tabular t;
    ltf_model m;
    char err[LTF_ERR_LEN], ckpt[4200], title[300];
    int n = o->tc.n_points, B = o->tc.batch_size, rc = 0, n_train = 0, n_eval = 0, nc = 0, feats = 0, K = 2, have_model = 0, d;
    long step = 0;
    double t0, shown = 0;
    ltf_rng r;
    const char *lname[1] = {"model"};
    char chance[48];   /* (everything before the first goto: demo.c compiles as C++ too) */
    if (ltf_tab_load_dir(o->data, o->seed, n, &t, err) != 0) { fprintf(stderr, "demo: --data '%s': %s\n", o->data, err); return 2; }
    int *train = (int *)malloc(sizeof(int) * 2 * (size_t)t.n_sets), *eval = train ? train + t.n_sets : NULL;
    float *xs = NULL, *ys = NULL, *losses = NULL;
    curve cs[5];
    memset(cs, 0, sizeof cs);
    memset(&m, 0, sizeof m);
    if (!train) { fprintf(stderr, "demo: out of memory\n"); ltf_tab_free(&t); return 1; }
    if ((rc = tab_sets(o, &t, train, &n_train, eval, &n_eval)) != 0) goto done;
    for (int i = 0; i < t.n_sets; i++) {
        feats = t.sets[i].features > feats ? t.sets[i].features : feats;
        K = t.sets[i].classes > K ? t.sets[i].classes : K;
    }
    if (given(o, "--d") && o->cfg.n_dims < feats) {
        fprintf(stderr, "demo: --d '%d' is not allowed: the datasets of --data have up to %d features (they are padded to d)\n",
                o->cfg.n_dims, feats);
        rc = 2; goto done;
    }
    if (!given(o, "--d")) o->cfg.n_dims = feats;
    o->cfg.n_classes = K;
    d = o->cfg.n_dims;
    xs = (float *)malloc(sizeof(float) * (size_t)B * n * d); ys = (float *)malloc(sizeof(float) * (size_t)B * n);
    if (!xs || !ys) { fprintf(stderr, "demo: out of memory for a batch\n"); rc = 1; goto done; }
    ltf_rng_seed(&r, o->seed + 2);   /* the evaluation's prompts must be there before an hour of training */
    if (ltf_tab_sample(&t, eval, n_eval, 1, &r, 1, n, d, xs, ys, err) != 0) {
        fprintf(stderr, "demo: evaluation datasets: %s (a smaller --n, or other --holdout datasets)\n", err);
        rc = 2; goto done;
    }
    if (ltf_config_check(&o->cfg, err) != 0 || ltf_model_create(&m, &o->cfg, o->seed, err) != 0) {
        fprintf(stderr, "demo: %s\n", err); rc = 1; goto done;
    }
    have_model = 1;
    if (to_device(o, &m) != 0) { rc = 1; goto done; }
    describe(&m, o, "training");
    fprintf(stderr, "demo: tabular: %d classes, %d features padded to d = %d; training on %d dataset(s), evaluating on %d\n",
            K, feats, d, n_train, n_eval);
    set_meta(o, &m, NULL);
    g_run.steps_target = o->steps; g_run.first_step = g_run.last_step = 0;
    ltf_rng_seed(&r, o->seed + 1);
    t0 = now_s();
    g_signal = 0;
    catch_signals(1);
    for (; step < o->steps && !g_signal && rc == 0; step++) {
        float loss;
        if (ltf_tab_sample(&t, train, n_train, 0, &r, B, n, d, xs, ys, err) != 0) { fprintf(stderr, "demo: %s\n", err); rc = 2; break; }
        if (ltf_train_step(&m, &o->tc, xs, ys, B, n, &loss) != 0) {
            fprintf(stderr, "\ndemo: training stopped at step %ld: %s\n", step + 1, m.err); rc = 1; break;
        }
        arrput(losses, loss);
        if (now_s() - shown > 2.0 || step + 1 == o->steps) {
            fprintf(stderr, "\rstep %ld/%ld  loss %.4f  %.1f steps/s", step + 1, o->steps, loss, (step + 1) / (now_s() - t0));
            shown = now_s();
        }
    }
    catch_signals(0);
    fprintf(stderr, "\n");
    g_run.last_step = step; g_run.train_s = now_s() - t0;
    if (arrlen(losses)) g_run.final_loss = losses[arrlen(losses) - 1];
    snprintf(ckpt, sizeof ckpt, "%s", out_path(o, "checkpoint.safetensors"));
    if (ltf_checkpoint_save(&m, NULL, ckpt, err) != 0) { fprintf(stderr, "demo: %s\n", err); rc = 1; }
    if (g_signal) { fprintf(stderr, "demo: stopped by signal %d after step %ld; weights in %s\n", g_signal, step, ckpt); rc = 128 + g_signal; goto done; }
    if (rc != 0) goto done;
    printf("trained %ld steps in %.1f s; weights %s\n", step, g_run.train_s, ckpt);
    snprintf(title, sizeof title, "tabular (%s): training loss (cross-entropy)", o->data);
    rc |= report_loss(o, "train_loss", title, lname, &losses, 1, 0, 1.0, 1);
    if ((rc |= tab_evaluate(o, &m, &t, eval, n_eval, cs, &nc)) != 0) goto done;
    printf("error rate by in-context examples k (1 - accuracy), %d test prompts from the test rows of", o->eval_prompts);
    for (int i = 0; i < n_eval; i++) printf(" %s", t.sets[eval[i]].name);
    printf("\n");
    snprintf(chance, sizeof chance, "%d classes at random", K);
    snprintf(title, sizeof title, "tabular: error rate by k, model vs baselines (90%% bootstrap bands)");
    rc |= report_by_k_as(o, "eval", title, cs, nc, n, "error rate (1 - accuracy)", 1.0 - 1.0 / K, chance);
    printf("accuracy at k = %d:", n - 1);
    for (int i = 0; i < nc; i++) printf("  %s %.3f [%.3f, %.3f]", cs[i].name, 1.0 - cs[i].err[n - 1], 1.0 - cs[i].hi[n - 1], 1.0 - cs[i].lo[n - 1]);
    printf("\n");
    g_run.k_2d = n - 1; g_run.err_2d = cs[0].err[n - 1];
done:
    for (int i = 0; i < 5; i++) curve_free(&cs[i]);
    arrfree(losses);
    free(xs); free(ys); free(train);
    if (have_model) ltf_model_free(&m);
    ltf_tab_free(&t);
    return rc > 128 ? rc : rc == 2 ? 2 : rc ? 1 : 0;
}

static int cmd_train(options *o) {
    if (o->tabular) return cmd_train_tabular(o);
    ltf_model m;
    ltf_train_state st;
    char err[LTF_ERR_LEN];
    char ckpt[4200], log_path[4200];   /* copies: out_path's buffers are reused by every later call */
    snprintf(ckpt, sizeof ckpt, "%s", out_path(o, "checkpoint.safetensors"));
    snprintf(log_path, sizeof log_path, "%s", out_path(o, "train_loss.csv"));
    if (o->resume) {
        if (ltf_checkpoint_load(&m, &st, o->resume, NULL, err) != 0) { fprintf(stderr, "demo: %s\n", err); return 1; }
        if (check_state(o->resume, &m, &st) != 0) return 1;
        if (check_resume_flags(o, &m, &st) != 0) { ltf_model_free(&m); return 2; }
        o->cfg = m.cfg;                    /* the checkpoint decides the model, task and schedule */
        o->task = st.task_kind;
        long steps = o->steps;
        o->tc = st.train;
        o->tc.n_points = st.curriculum.points.end;
        o->steps = steps;
        fprintf(stderr, "demo: resuming %s at step %ld\n", o->resume, st.step);
        if (to_device(o, &m) != 0) { ltf_model_free(&m); return 1; }
    } else {
        int rc = start_fresh(o, &m, &st, "");
        if (rc != 0) return rc;
    }
    if (o->eval_loops < 0) o->eval_loops = m.cfg.n_loops;
    describe(&m, o, "training");
    set_meta(o, &m, NULL);
    float *losses = NULL;
    long first = st.step;
    g_run.steps_target = o->steps; g_run.first_step = g_run.last_step = first;
    write_run_json(o, "running");
    loss_log lg;
    if (loss_log_open(&lg, log_path, &m, &st, o->resume != NULL) != 0) { ltf_model_free(&m); return 1; }
    double t0 = now_s();
    int rc = train(o, &m, &st, ckpt, NULL, &losses, &lg);
    double train_s = now_s() - t0;
    if (loss_log_close(&lg, log_path) != 0 && rc == 0) rc = -1;
    g_run.last_step = st.step; g_run.train_s = train_s;
    if (arrlen(losses)) g_run.final_loss = losses[arrlen(losses) - 1];
    if (rc == TRAIN_STOPPED) {   /* the checkpoint is written; no evaluation after a Ctrl-C */
        arrfree(losses);
        ltf_model_free(&m);
        return 128 + g_signal;
    }
    if (rc == 0) {
        printf("trained %ld steps in %.1f s (%.1f ms/step); checkpoint %s\n", st.step - first, train_s,
               1e3 * train_s / (st.step > first ? st.step - first : 1), ckpt);
        printf("wrote %s\n", log_path);
        rc = train_loss_figure(o, m.cfg.n_dims, first);
        rc |= evaluate_all(o, &m);
    }
    arrfree(losses);
    ltf_model_free(&m);
    return rc ? 1 : 0;
}

/* The checkpoint to evaluate. Task and points: --task and --n when given, else the train state's
 * (a full checkpoint), else the defaults. Returns 0, 1 (cannot load) or 2 (--n too large). */
/* Mean and 90% bootstrap band of m values (the seeds of one setting; NAN ones left out):
 * lo = hi = mean for one value, all NAN for none. 0, or -1 when out of memory. */
static int seed_band(const double *vals, int m, double *mean, double *lo, double *hi) {
    float v[256];
    int k = 0;
    double sum = 0;
    for (int i = 0; i < m && k < 256; i++)
        if (isfinite(vals[i])) { v[k++] = (float)vals[i]; sum += vals[i]; }
    *mean = *lo = *hi = k ? sum / k : NAN;
    return k > 1 ? ltf_bootstrap_band(v, k, 1, 1000, 0.9, 7, lo, hi) : 0;
}

/* --ckpt A,B,C (probe, mask-sweep): the checkpoints of one setting's seeds, measured one by one
 * and summarised by mean and band. Splits the list in place; returns how many (at most cap). */
#define MAX_CKPTS 64
static int ckpt_list(char *list, char *paths[], int cap) {
    int n = 0;
    for (char *p = list; p && n < cap; ) {
        char *comma = strchr(p, ',');
        if (comma) *comma = 0;
        if (*p) paths[n++] = p;
        p = comma ? comma + 1 : NULL;
    }
    return n;
}

static int load_for_eval(options *o, ltf_model *m) {
    char err[LTF_ERR_LEN];
    ltf_train_state st;
    if (ltf_checkpoint_load(m, &st, o->ckpt, NULL, err) == 0) {
        if (check_state(o->ckpt, m, &st) != 0) return 1;
        if (!given(o, "--task")) o->task = st.task_kind;
        if (!given(o, "--n")) o->tc.n_points = st.curriculum.points.end;
    } else if (ltf_checkpoint_load(m, NULL, o->ckpt, NULL, err) != 0) {   /* weights only: --task, --n */
        fprintf(stderr, "demo: %s\n", err);
        return 1;
    }
    if (o->tc.n_points > m->cfg.n_positions) {
        if (given(o, "--n")) {
            fprintf(stderr, "demo: --n '%s' is not allowed: the checkpoint's model takes 1..%d points (n_positions)\n",
                    given(o, "--n"), m->cfg.n_positions);
            ltf_model_free(m);
            return 2;
        }
        o->tc.n_points = m->cfg.n_positions;
    }
    if (to_device(o, m) != 0) { ltf_model_free(m); return -1; }
    return 0;
}

static int cmd_eval(options *o) {
    ltf_model m;
    int lrc = load_for_eval(o, &m);
    if (lrc != 0) return lrc;
    if (o->eval_loops < 0) o->eval_loops = m.cfg.n_loops;   /* default: the b it was trained with */
    describe(&m, o, "evaluating");
    set_meta(o, &m, NULL);
    int rc = evaluate_all(o, &m);
    ltf_model_free(&m);
    return rc ? 1 : 0;
}

/* Probing (workbench/probe.h): probe.csv and probe.svg, the probes' error by iteration (layer). */
/* demo probe: the probes of one checkpoint, or with --ckpt A,B,C of several (the seeds of one
 * setting), then the mean and 90% band over them; probe_runs.csv keeps each one's numbers. */
static int cmd_probe(options *o) {
    enum { K = 4 };   /* w_ols, grad, and their controls */
    static const char *const cols[K] = {"w_ols", "grad", "w_ols_control", "grad_control"};
    static const char *const names[K] = {"w_ols (least squares of points 1..i)", "X^T y / n (points 1..i)",
                                         "w_ols, control (fit with w fixed)", "X^T y / n, control"};
    char err[LTF_ERR_LEN], list[4096], *paths[MAX_CKPTS];
    const char *ckpt_arg = o->ckpt;   /* restored at the end: run.json records it */
    snprintf(list, sizeof list, "%s", o->ckpt);
    int n_ck = ckpt_list(list, paths, MAX_CKPTS), states = 0, looped = 1, rc = 0;
    if (n_ck == 0) { fprintf(stderr, "demo: --ckpt '%s' is not allowed: name a checkpoint (or A,B,C)\n", o->ckpt); return 2; }
    int prompts = given(o, "--eval-prompts") ? o->eval_prompts : 512, loops_given = o->eval_loops >= 0;
    double *val[K] = {0};   /* val[k][c * states + s]: checkpoint c, state s */
    char *runs = NULL;
    double t0 = now_s();
    for (int c = 0; c < n_ck && rc == 0; c++) {
        ltf_model m;
        ltf_probe_result r;
        o->ckpt = paths[c];
        int lrc = load_for_eval(o, &m);
        if (lrc != 0) { rc = lrc; break; }
        looped = m.cfg.kind != LTF_STANDARD;   /* states by pass of f, not by layer */
        if (!loops_given) o->eval_loops = m.cfg.kind == LTF_STANDARD ? 1 : m.cfg.n_loops;
        describe(&m, o, "probing");
        if (c == 0) set_meta(o, &m, NULL);
        if (ltf_probe_run(&m, o->tc.n_points, o->eval_loops, prompts, o->seed, &r, err) != 0) {
            fprintf(stderr, "demo: %s\n", err);
            ltf_model_free(&m);
            rc = 1;
            break;
        }
        if (c == 0) {
            states = r.states;
            for (int k = 0; k < K; k++) val[k] = (double *)calloc((size_t)n_ck * states, sizeof(double));
            sb_printf(&runs, "checkpoint,%s,w_ols,grad,w_ols_control,grad_control\n", looped ? "iteration" : "layer");
        }
        if (r.states != states) {
            fprintf(stderr, "demo: --ckpt %s: its model has %d states to probe, %s has %d: list checkpoints of one setting\n",
                    paths[c], r.states, paths[0], states);
            rc = 2;
        }
        for (int s2 = 0; rc == 0 && s2 < states; s2++) {
            const double got[K] = {r.ols[s2], r.grad[s2], r.ols_control[s2], r.grad_control[s2]};
            for (int k = 0; k < K; k++) if (val[k]) val[k][(size_t)c * states + s2] = got[k];
            sb_printf(&runs, "%s,%d,%.6g,%.6g,%.6g,%.6g\n", paths[c], s2, got[0], got[1], got[2], got[3]);
        }
        ltf_probe_free(&r);
        ltf_model_free(&m);
    }
    for (int k = 0; k < K && rc == 0; k++) if (!val[k]) { fprintf(stderr, "demo: out of memory\n"); rc = 1; }
    const char *what = looped ? "iteration" : "layer";
    double *x = NULL, *y = NULL;
    char *csv = NULL;
    if (rc == 0) {
        x = iota(states, 0);
        y = (double *)calloc((size_t)K * 3 * states + 1, sizeof(double));   /* mean, lo, hi of each kind */
        if (!y) rc = 1;
    }
    if (rc == 0) {
        sb_printf(&csv, "# %d prompts (half fit, half scored), n = %d, ridge probes at the y token of point i; %d checkpoint(s)%s\n",
                  prompts, o->tc.n_points, n_ck, n_ck > 1 ? ": mean and 90% band over them" : "");
        sb_printf(&csv, "%s", what);
        for (int k = 0; k < K; k++) sb_printf(&csv, n_ck > 1 ? ",%s,%s_lo90,%s_hi90" : ",%s", cols[k], cols[k], cols[k]);
        sb_printf(&csv, "\n");
        printf("probe error (0: read off exactly, 1: no better than the mean) by %s; control: probes fit with w fixed%s\n", what,
               n_ck > 1 ? "; mean over the checkpoints" : "");
        printf("%9s %8s %8s %14s %14s\n", what, "w_ols", "X^T y/n", "w_ols control", "grad control");
        for (int s2 = 0; s2 < states; s2++) {
            sb_printf(&csv, "%d", s2);
            for (int k = 0; k < K; k++) {
                double col[MAX_CKPTS], *m3 = y + (size_t)k * 3 * states;
                for (int c = 0; c < n_ck; c++) col[c] = val[k][(size_t)c * states + s2];
                if (seed_band(col, n_ck, &m3[s2], &m3[states + s2], &m3[2 * states + s2]) != 0) rc = 1;
                if (n_ck > 1) sb_printf(&csv, ",%.6g,%.6g,%.6g", m3[s2], m3[states + s2], m3[2 * states + s2]);
                else sb_printf(&csv, ",%.6g", m3[s2]);
            }
            sb_printf(&csv, "\n");
            printf("%9d %8.4f %8.4f %14.4f %14.4f\n", s2, y[s2], y[3 * states + s2], y[6 * states + s2], y[9 * states + s2]);
        }
        printf("probes: %.1f s\n", now_s() - t0);
    }
    if (rc == 0) {
        ltf_series ser[K];
        ltf_plot pl;
        char title[160], xlabel[64];
        memset(ser, 0, sizeof ser);
        memset(&pl, 0, sizeof pl);
        for (int k = 0; k < K; k++) {
            ser[k].label = names[k]; ser[k].x = x; ser[k].n = states; ser[k].dashed = k >= 2;
            ser[k].y = y + (size_t)k * 3 * states;
            if (n_ck > 1) { ser[k].lo = ser[k].y + states; ser[k].hi = ser[k].y + 2 * states; }
        }
        if (n_ck > 1) snprintf(title, sizeof title, "probe error by %s (linear probes; 90%% band over %d checkpoints)", what, n_ck);
        else snprintf(title, sizeof title, "probe error by %s (linear probes, frozen model)", what);
        snprintf(xlabel, sizeof xlabel, looped ? "loop iteration (0: the input E)" : "layer (0: the input)");
        pl.title = title; pl.xlabel = xlabel; pl.ylabel = "normalized probe error"; pl.series = ser; pl.n_series = K;
        rc = write_figure(o, "probe", &csv, &pl) ? 1 : 0;
        if (rc == 0 && n_ck > 1 && write_text(out_path(o, "probe_runs.csv"), runs) != 0) rc = 1;
    }
    arrfree(x); free(y); arrfree(runs); arrfree(csv);
    for (int k = 0; k < K; k++) free(val[k]);
    o->ckpt = ckpt_arg;
    return rc;
}

/* One checkpoint's mask sweep: last[i], mean[i] for N = n - i kept pairs (N = n keeps all). */
static int mask_sweep_one(options *o, ltf_model *m, double *last, double *mean) {
    int n = o->tc.n_points, rc = 0;
    ltf_task task = ltf_task_make(o->task, m->cfg.n_dims, m->cfg.n_dims);
    double *ek = (double *)malloc(sizeof(double) * n);
    if (!ek) { fprintf(stderr, "demo: out of memory\n"); return 1; }
    ltf_config orig = m->cfg;
    for (int N = n; N >= 1 && rc == 0; N--) {
        m->cfg.mask_mode = N == n ? LTF_MASK_NONE : o->sweep_mode;
        m->cfg.mask_pairs = N; m->cfg.mask_when = LTF_AT_EVAL;
        ltf_rng r;
        ltf_rng_seed(&r, o->seed + 2);
        if ((rc = ltf_evaluate(m, &task, &r, o->eval_prompts, n, m->cfg.n_loops, ek, NULL, NULL)) != 0) break;
        double s = 0;
        for (int k = 0; k < n; k++) s += ek[k] / n;
        last[n - N] = ek[n - 1]; mean[n - N] = s;
    }
    m->cfg = orig;
    if (rc != 0) fprintf(stderr, "demo: %s\n", m->err);
    free(ek);
    return rc ? 1 : 0;
}

/* The report's mask experiment: keep only the last (or first) N token pairs of the loop state
 * at evaluation, N = n down to 1; error at the last k and averaged over all k. With --ckpt A,B,C
 * (the seeds of one setting): the mean and 90% band over them, each one's in mask_sweep_runs.csv. */
static int cmd_mask_sweep(options *o) {
    char list[4096], *paths[MAX_CKPTS], *runs = NULL, *csv = NULL, task_name[64] = "";
    const char *ckpt_arg = o->ckpt;
    snprintf(list, sizeof list, "%s", o->ckpt);
    int n_ck = ckpt_list(list, paths, MAX_CKPTS), n = 0, rc = 0, loops = 0;
    if (n_ck == 0) { fprintf(stderr, "demo: --ckpt '%s' is not allowed: name a checkpoint (or A,B,C)\n", o->ckpt); return 2; }
    double *last = NULL, *mean = NULL;   /* [c * n + i] */
    for (int c = 0; c < n_ck && rc == 0; c++) {
        ltf_model m;
        o->ckpt = paths[c];
        int lrc = load_for_eval(o, &m);
        if (lrc != 0) { rc = lrc; break; }
        if (m.cfg.kind != LTF_LOOPED) {
            fprintf(stderr, "demo: mask-sweep needs a looped model; %s is %s\n", paths[c], kinds[m.cfg.kind]);
            ltf_model_free(&m);
            rc = 2;
            break;
        }
        if (c == 0) {
            n = o->tc.n_points; loops = m.cfg.n_loops;
            last = (double *)calloc((size_t)n_ck * n, sizeof(double));
            mean = (double *)calloc((size_t)n_ck * n, sizeof(double));
            snprintf(task_name, sizeof task_name, "%s", ltf_task_make(o->task, m.cfg.n_dims, m.cfg.n_dims).name);
            set_meta(o, &m, NULL);
            sb_printf(&runs, "checkpoint,kept_pairs,error_last_k,error_mean_k\n");
            printf("keep the %s N pairs of the loop state at evaluation (%d iterations)%s\n",
                   o->sweep_mode == LTF_MASK_KEEP_LAST ? "last" : "first", loops, n_ck > 1 ? "; mean over the checkpoints" : "");
        }
        o->eval_loops = m.cfg.n_loops;
        describe(&m, o, "mask sweep of");
        if (!last || !mean) { fprintf(stderr, "demo: out of memory\n"); rc = 1; }
        else if (o->tc.n_points != n) {
            fprintf(stderr, "demo: --ckpt %s: its prompts have %d points, %s's %d: list checkpoints of one setting\n", paths[c],
                    o->tc.n_points, paths[0], n);
            rc = 2;
        } else rc = mask_sweep_one(o, &m, last + (size_t)c * n, mean + (size_t)c * n);
        for (int i = 0; rc == 0 && i < n; i++)
            sb_printf(&runs, "%s,%d,%.6g,%.6g\n", paths[c], n - i, last[(size_t)c * n + i], mean[(size_t)c * n + i]);
        ltf_model_free(&m);
    }
    double *xs = NULL, *band = rc == 0 ? (double *)calloc((size_t)6 * n + 1, sizeof(double)) : NULL;
    if (rc == 0 && !band) { fprintf(stderr, "demo: out of memory\n"); rc = 1; }
    if (rc == 0) {   /* band: last mean, lo, hi; then mean's */
        sb_printf(&csv, n_ck > 1 ? "kept_pairs,error_last_k,error_last_k_lo90,error_last_k_hi90,error_mean_k,error_mean_k_lo90,"
                                   "error_mean_k_hi90\n" : "kept_pairs,error_last_k,error_mean_k\n");
        printf("%6s %14s %14s\n", "N", "error k=n-1", "mean over k");
        for (int i = 0; i < n; i++) {
            double a[MAX_CKPTS], b[MAX_CKPTS];
            for (int c = 0; c < n_ck; c++) { a[c] = last[(size_t)c * n + i]; b[c] = mean[(size_t)c * n + i]; }
            if (seed_band(a, n_ck, &band[i], &band[n + i], &band[2 * n + i]) != 0 ||
                seed_band(b, n_ck, &band[3 * n + i], &band[4 * n + i], &band[5 * n + i]) != 0) rc = 1;
            arrput(xs, n - i);
            printf("%6d %14.4f %14.4f\n", n - i, band[i], band[3 * n + i]);
            if (n_ck > 1) sb_printf(&csv, "%d,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g\n", n - i, band[i], band[n + i], band[2 * n + i],
                                    band[3 * n + i], band[4 * n + i], band[5 * n + i]);
            else sb_printf(&csv, "%d,%.6g,%.6g\n", n - i, band[i], band[3 * n + i]);
        }
    }
    if (rc == 0) {
        ltf_series ser[2];
        memset(ser, 0, sizeof ser);
        ser[0].label = "error at the last k"; ser[1].label = "error averaged over k"; ser[1].dashed = 1;
        for (int j = 0; j < 2; j++) {
            ser[j].x = xs; ser[j].n = n; ser[j].y = band + (size_t)j * 3 * n;
            if (n_ck > 1) { ser[j].lo = ser[j].y + n; ser[j].hi = ser[j].y + 2 * n; }
        }
        char title[256];
        snprintf(title, sizeof title, "%s: keeping only the %s N pairs of the loop state%s", task_name,
                 o->sweep_mode == LTF_MASK_KEEP_LAST ? "last" : "first", n_ck > 1 ? " (band over checkpoints)" : "");
        ltf_plot p = {title, "kept token pairs N", "normalized squared error", 0, 1, ser, 2, 0, 0, 1.0, "zero estimator", NULL,
                      NULL, NULL, NULL, 0};
        rc |= write_figure(o, "mask_sweep", &csv, &p);
        if (rc == 0 && n_ck > 1 && write_text(out_path(o, "mask_sweep_runs.csv"), runs) != 0) rc = 1;
    }
    arrfree(csv); arrfree(runs); arrfree(xs); free(band); free(last); free(mean);
    o->ckpt = ckpt_arg;
    return rc ? (rc == 2 ? 2 : 1) : 0;
}

/* The report's experiment (docs/MATH.md §10) by default: looped L=1 with b in {5, 10, 20, 25}
 * against standard L=12, same data seed and settings otherwise; T = min(b, --T). --models picks
 * others, e.g. the paper's ablation looped vs tied vs standard (docs/MATH.md §12). */
static int cmd_compare(options *o) {
    int NM = o->n_models, n_iter = 0;   /* n_iter: the looped models, which have an error by iteration */
    char names_buf[MAX_COMPARE][40], list[400] = "";
    const char *names[MAX_COMPARE], *iter_names[MAX_COMPARE];
    int marks[MAX_COMPARE], colours[MAX_COMPARE];
    float *losses[MAX_COMPARE] = {0};
    double *by_iter[MAX_COMPARE] = {0};
    curve cs[MAX_COMPARE];
    int rc = 0, n = o->tc.n_points;
    memset(cs, 0, sizeof cs);
    for (int i = 0; i < NM; i++) {
        compare_item_name(&o->models[i], names_buf[i], sizeof names_buf[i]);
        names[i] = names_buf[i];
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", names[i]);
    }
    int is_default = strcmp(list, "standard L=12, looped b=5, looped b=10, looped b=20, looped b=25") == 0;
    ltf_task task = ltf_task_make(o->task, o->cfg.n_dims, o->cfg.n_dims);
    for (int i = 0; i < NM && rc == 0; i++) {
        const compare_item *it = &o->models[i];
        options oi = *o;
        ltf_config *c = &oi.cfg;
        int looped = it->kind == LTF_LOOPED;
        c->kind = it->kind;
        c->inject_every_block = it->every;
        if (!looped) { c->mask_mode = LTF_MASK_NONE; c->loop_func = LTF_LOOP_ADD; }   /* the looped models' flags */
        c->n_layer = it->kind == LTF_STANDARD ? it->n : 1;
        c->n_loops = it->kind == LTF_STANDARD ? 1 : it->n;
        c->loop_window = looped ? (o->cfg.loop_window < it->n ? o->cfg.loop_window : it->n) : c->n_loops;
        oi.eval_loops = c->n_loops;
        char label[64], ckpt[600], who[64];
        snprintf(who, sizeof who, "%s: ", names[i]);
        ltf_model m;
        ltf_train_state st;
        if (start_fresh(&oi, &m, &st, who) != 0) { rc = -1; break; }
        describe(&m, &oi, "training");
        if (i == 0) {
            char what[440];
            snprintf(what, sizeof what, "%s", is_default ? "looped L=1 b=5,10,20,25 vs standard L=12" : list);
            set_meta(o, &m, what);
            g_run.steps_target = o->steps; g_run.first_step = 0;
        }
        snprintf(label, sizeof label, "[%s] ", names[i]);
        compare_ckpt_name(ckpt, sizeof ckpt, o->out, it);
        double t0 = now_s();
        rc = train(&oi, &m, &st, ckpt, label, &losses[i], NULL);
        if (rc == TRAIN_STOPPED) rc = 128 + g_signal;
        else if (rc == 0) {
            printf("%-14s trained %ld steps in %.1f s, %zu params\n", names[i], o->steps, now_s() - t0, ltf_model_num_params(&m));
            g_run.last_step = o->steps;
            g_run.train_s = (isfinite(g_run.train_s) ? g_run.train_s : 0) + now_s() - t0;
            rc = eval_model(&oi, &m, &task, c->n_loops, looped ? o->fixed_point : 0, &cs[i], looped ? &by_iter[n_iter] : NULL);
            cs[i].name = names[i];
            if (looped) { iter_names[n_iter] = names[i]; marks[n_iter] = it->n; colours[n_iter] = i; n_iter++; }
        }
        ltf_model_free(&m);
    }
    if (rc == 0) {
        char title[512];
        if (is_default) snprintf(title, sizeof title, "%s, d=%d n=%d: looped L=1 vs standard L=12", task.name, o->cfg.n_dims, n);
        else snprintf(title, sizeof title, "%s, d=%d n=%d: %s", task.name, o->cfg.n_dims, n, list);
        printf("normalized error by in-context examples k, %d test prompts\n", o->eval_prompts);
        rc |= report_by_k(o, "eval", title, cs, NM, o->cfg.n_dims);
        snprintf(title, sizeof title, "%s, d=%d: training loss / d", task.name, o->cfg.n_dims);
        rc |= report_loss(o, "train_loss", title, names, losses, NM, 0, o->cfg.n_dims, 1);
        if (o->fixed_point > 0 && n_iter > 0) {
            char bs[200] = "";
            for (int i = 0; i < n_iter; i++) snprintf(bs + strlen(bs), sizeof bs - strlen(bs), "%s%d", i ? ", " : "", marks[i]);
            snprintf(title, sizeof title, "%s: error by loop iteration, models trained with b = %s", task.name, bs);
            rc |= report_by_iter(o, "loop_error", title, iter_names, by_iter, n_iter, o->fixed_point, marks, colours);
            printf("error by loop iteration (all k):");
            for (int i = 0; i < n_iter; i++) {   /* "at b" only when the table reaches b (--fixed-point >= b) */
                printf("  %s:", iter_names[i]);
                if (marks[i] <= o->fixed_point) printf(" %.4f at b,", by_iter[i][marks[i] - 1]);
                printf(" %.4f at %d", by_iter[i][o->fixed_point - 1], o->fixed_point);
            }
            printf("\n");
        }
    }
    for (int i = 0; i < NM; i++) { arrfree(losses[i]); curve_free(&cs[i]); }
    for (int i = 0; i < MAX_COMPARE; i++) free(by_iter[i]);
    return rc > 128 ? rc : rc ? 1 : 0;   /* 130/143: stopped by a signal, checkpoint written */
}

/* ------------------------------------------------------------------ bench */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* PyTorch's step for the same setting (reference/bench_step.py); NAN when it cannot run. */
static char g_torch_version[64];   /* printed under the table, not in the middle of a row */

static double pytorch_ms(const ltf_config *c, int n, int B, int runs, int threads, int precision, int gpu) {
    char cmd[512], line[512];
    if (c->kind == LTF_TIED || variant_words(c)[0]) return NAN;   /* bench_step.py times the plain models only */
    snprintf(cmd, sizeof cmd, "python3 reference/bench_step.py %d %d %d %d %d %d %d %d %d 2 %d %s %s 2>&1", c->n_dims, n,
             c->n_embd, c->n_head, c->n_layer, c->kind == LTF_LOOPED ? c->n_loops : 0, c->kind == LTF_LOOPED ? c->loop_window : 0,
             B, runs, threads, precisions[precision], gpu ? "cuda" : "cpu");
    FILE *p = popen(cmd, "r");
    double ms = NAN;
    if (!p) return NAN;
    while (fgets(line, sizeof line, p)) {
        char ver[64];
        if (sscanf(line, "pytorch %63s median_ms %lf", ver, &ms) == 2) snprintf(g_torch_version, sizeof g_torch_version, "%s", ver);
        else fprintf(stderr, "demo: bench_step.py: %s", line);
    }
    int rc = pclose(p);
    return rc == 0 ? ms : NAN;
}

/* The median of v[0..n) (sorts v) */
static double median_of(double *v, int n) {
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The bench's one fixed batch (linear regression, seed 1); NULL + message when out of memory */
static float *bench_batch(const ltf_model *m, const ltf_train_config *tc, float **ys) {
    int B = tc->batch_size, n = tc->n_points, d = m->cfg.n_dims;
    float *xs = (float *)malloc(sizeof(float) * (size_t)B * n * d);
    *ys = (float *)malloc(sizeof(float) * (size_t)B * n);
    if (!xs || !*ys) { free(xs); free(*ys); fprintf(stderr, "demo: out of memory\n"); return NULL; }
    ltf_task task = ltf_task_make(LTF_TASK_LINEAR, d, d);
    ltf_rng r;
    ltf_rng_seed(&r, 1);
    ltf_task_sample(&task, &r, B, n, xs, *ys);
    return xs;
}

/* Median ms of `runs` training steps (Adam included) on one fixed batch, after 2 warm-up steps. */
static int time_steps(ltf_model *m, const ltf_train_config *tc, int runs, double *median, double *best) {
    int B = tc->batch_size, n = tc->n_points, rc = 0;
    float *ys, *xs = bench_batch(m, tc, &ys);
    if (!xs) return -1;
    double *t = (double *)malloc(sizeof(double) * (size_t)runs);
    if (!t) { free(xs); free(ys); fprintf(stderr, "demo: out of memory\n"); return -1; }
    for (int i = 0; i < 2 + runs && rc == 0; i++) {
        float loss;
        double t0 = now_s();
        rc = ltf_train_step(m, tc, xs, ys, B, n, &loss);
        if (i >= 2) t[i - 2] = 1e3 * (now_s() - t0);
    }
    if (rc != 0) fprintf(stderr, "demo: bench step: %s\n", m->err);
    else {
        *median = median_of(t, runs);
        *best = t[0];
    }
    free(xs); free(ys); free(t);
    return rc;
}

/* --gpu on: steps of ltf_train_next with the prompts drawn on the device, as a GPU training run
 * takes them (the first step of the shape is recorded as a CUDA graph, the others replay it). */
static int time_steps_gpu(ltf_model *m, const ltf_train_config *tc, int runs, double *median, double *best) {
    ltf_curriculum cur;
    ltf_train_state st;
    double *t = (double *)malloc(sizeof(double) * (size_t)runs);
    int rc = 0;
    if (!t) { fprintf(stderr, "demo: out of memory\n"); return -1; }
    ltf_curriculum_off(&cur, &m->cfg, tc->n_points);
    ltf_train_state_init(&st, LTF_TASK_LINEAR, tc, &cur, 1);
    for (int i = 0; i < 2 + runs && rc == 0; i++) {
        float loss;
        double t0 = now_s();
        rc = ltf_train_next(m, &st, NULL, NULL, &loss, NULL);
        if (i >= 2) t[i - 2] = 1e3 * (now_s() - t0);
    }
    if (rc != 0) fprintf(stderr, "demo: bench step: %s\n", m->err);
    else {
        *median = median_of(t, runs);
        *best = t[0];
    }
    free(t);
    return rc;
}

/* --profile on: 3 more steps with a CUDA event pair around every kernel (no graph: each launch
 * is timed), then the kernels by time, per step */
static int profile_steps(ltf_model *m, const ltf_train_config *tc) {
    enum { STEPS = 3 };
    ltf_gpu_phase ph[64];
    char err[LTF_ERR_LEN];
    double med, best, total = 0;
    long launches = 0;
    memset(ph, 0, sizeof ph);
    if (ltf_gpu_profile(1, err) != 0) { fprintf(stderr, "demo: --profile: %s\n", err); return -1; }
    int rc = time_steps_gpu(m, tc, STEPS - 2, &med, &best), n = rc == 0 ? ltf_gpu_profile_read(ph, 64, err) : -1;
    ltf_gpu_profile(0, err);
    if (n < 0) { if (rc == 0) fprintf(stderr, "demo: --profile: %s\n", err); return -1; }
    for (int i = 0; i < n; i++) { total += ph[i].ms; launches += ph[i].launches; }
    printf("  per step (%d steps, CUDA events, no graph): %.0f launches, %.3f ms in kernels\n", STEPS,
           (double)launches / STEPS, total / STEPS);
    printf("  %-34s %9s %10s %7s\n", "kernel", "launches", "ms", "%time");
    for (int i = 0; i < n; i++)
        printf("  %-34s %9.0f %10.3f %7.1f\n", ph[i].name ? ph[i].name : "?", (double)ph[i].launches / STEPS, ph[i].ms / STEPS,
               total > 0 ? 100.0 * ph[i].ms / total : 0.0);
    return 0;
}

/* --profile on, CPU: `steps` more steps (5..64), each with its ops timed (ltf_cpu_profile),
 * then per op the median over the steps of its time per step, against the median step; the
 * multiplies' GFLOP/s and share of the peak from those medians. Medians, so that a burst of
 * another process on a shared machine moves a row less. "rest" is the median step's time
 * outside the ops timed (read-out, loss, injection, residual adds, the loop's bookkeeping). */
static int cpu_profile_steps(ltf_model *m, const ltf_train_config *tc, int steps, double peak) {
    enum { MAX_STEPS = 64, MAX_OPS = 32 };
    static double ms[MAX_OPS][MAX_STEPS], step_ms[MAX_STEPS];
    const char *name[MAX_OPS];
    double gflop[MAX_OPS], col[MAX_STEPS], in_ops = 0;
    long calls[MAX_OPS];
    int n_ops = 0, rc = 0, B = tc->batch_size, n = tc->n_points;
    steps = steps < 5 ? 5 : steps > MAX_STEPS ? MAX_STEPS : steps;
    float *ys, *xs = bench_batch(m, tc, &ys);
    if (!xs) return -1;
    for (int s = 0; s < steps && rc == 0; s++) {
        ltf_op_time ops[MAX_OPS];
        float loss;
        ltf_cpu_profile(1);
        double t0 = now_s();
        rc = ltf_train_step(m, tc, xs, ys, B, n, &loss);
        step_ms[s] = 1e3 * (now_s() - t0);
        ltf_cpu_profile(0);
        int k = ltf_cpu_profile_read(ops, MAX_OPS);
        for (int i = 0; i < k; i++) {   /* a column per op, in the order first seen */
            int j = 0;
            while (j < n_ops && strcmp(name[j], ops[i].name) != 0) j++;
            if (j == n_ops) {
                if (n_ops == MAX_OPS) continue;
                name[j] = ops[i].name; calls[j] = ops[i].calls; gflop[j] = ops[i].gflop;
                memset(ms[j], 0, sizeof ms[j]);   /* an op missing from an earlier step took 0 there */
                n_ops++;
            }
            ms[j][s] = ops[i].ms;
        }
    }
    free(xs); free(ys);
    if (rc != 0) { fprintf(stderr, "demo: bench step: %s\n", m->err); return -1; }
    double med_ms[MAX_OPS], step = median_of(step_ms, steps);
    int order[MAX_OPS];
    for (int j = 0; j < n_ops; j++) {
        memcpy(col, ms[j], sizeof(double) * (size_t)steps);
        med_ms[j] = median_of(col, steps);
        in_ops += med_ms[j];
        order[j] = j;
    }
    for (int a = 1; a < n_ops; a++)   /* most time first (insertion sort of the indices) */
        for (int b = a; b > 0 && med_ms[order[b]] > med_ms[order[b - 1]]; b--) {
            int t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
    printf("  ops of %d more steps (ltf_cpu_profile, wall clock), medians per step; median step %.2f ms\n", steps, step);
    printf("  %-32s %8s %10s %7s %9s %6s\n", "op", "calls", "ms", "%step", "GFLOP/s", "%peak");
    for (int a = 0; a < n_ops; a++) {
        int j = order[a];
        printf("  %-32s %8ld %10.2f %7.1f", name[j], calls[j], med_ms[j], 100.0 * med_ms[j] / step);
        if (gflop[j] > 0 && med_ms[j] > 0) {
            double rate = gflop[j] / (med_ms[j] / 1e3);
            printf(" %9.1f %6.0f", rate, peak > 0 ? 100.0 * rate / peak : 0.0);
        }
        printf("\n");
    }
    printf("  %-32s %8s %10.2f %7.1f\n", "rest", "", step - in_ops, 100.0 * (step - in_ops) / step);
    return 0;
}

/* The settings of issue 4's anchor table (batch 64, L = 1, looped). */
static int bench_config(const char *name, const options *o, ltf_config *c, ltf_train_config *tc) {
    static const struct { const char *name; int d, n, C, H, b, T; } known[] = {
        {"small", 5, 11, 64, 4, 10, 5}, {"report", 10, 31, 256, 4, 20, 15}, {"paper", 20, 41, 256, 8, 20, 15}};
    *tc = o->tc;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(name, known[i].name) == 0) {
            ltf_config_default(c);
            c->n_dims = known[i].d; c->n_positions = known[i].n; c->n_embd = known[i].C; c->n_head = known[i].H;
            c->n_layer = 1; c->kind = LTF_LOOPED; c->n_loops = known[i].b; c->loop_window = known[i].T;
            tc->n_points = known[i].n; tc->batch_size = 64;
            return 0;
        }
    if (strcmp(name, "flags") == 0) { *c = o->cfg; return 0; }
    fprintf(stderr, "demo: --configs: '%s' is not allowed: choose from small, report, paper\n", name);
    return -1;
}

/* the performance model's line for one config, device and precision (workbench/speed.h) */
static void print_gpu_model(const char *name, const ltf_config *c, const ltf_train_config *tc, int precision,
                            const ltf_gpu_spec *dev) {
    ltf_gpu_model g = ltf_gpu_step_model(c, tc->batch_size, tc->n_points, precision, dev);
    printf("%-7s %-9s %-5s %9ld %9.1f %9.2f %9.2f %9.2f %9.2f %9.2f %10.2f\n", name, dev->name, precisions[precision],
           g.launches, g.gemm_gflop, g.bytes_gb, g.ms_gemm, g.ms_attn, g.ms_mem, g.ms_launch, g.ms);
}
static const char *const gpu_model_header = "%-7s %-9s %-5s %9s %9s %9s %9s %9s %9s %9s %10s\n";

/* bench --gpu-model on: the model alone, for every config, device and precision */
static int cmd_gpu_model(options *o) {
    char list[256], *save = NULL;
    const ltf_gpu_spec *devs[2] = {&ltf_gpu_h100, &ltf_gpu_h200};
    snprintf(list, sizeof list, "%s%s", o->bench_configs, o->model_flags ? ",flags" : "");
    printf("GPU performance model of a training step (workbench/speed.h): matrix multiplies at 30%% of the fp32 peak\n"
           "or 25%% of the tensor-core peak, attention at 10%% of the fp32 peak, the other kernels' bytes at 60%% of HBM\n"
           "bandwidth, 1 us per launch (graph replay); a prediction for the first GPU run to confirm or refute\n");
    printf(gpu_model_header, "config", "device", "mm", "launches", "GFLOP", "GB", "ms mm", "ms attn", "ms mem", "ms launch", "ms/step");
    for (char *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        ltf_config c;
        ltf_train_config tc;
        if (bench_config(name, o, &c, &tc) != 0) return 2;
        for (int d = 0; d < 2; d++)
            for (int p = 0; p < 3; p++) print_gpu_model(name, &c, &tc, p, devs[d]);
    }
    return 0;
}

static int cmd_bench(options *o) {
    char list[256], *save = NULL;
    int threads = 1, rc = 0;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    snprintf(list, sizeof list, "%s%s", o->bench_configs, o->model_flags ? ",flags" : "");
    if (o->gpu) printf("training step on the GPU (prompts drawn there; forward over b loops, backward over the last T, Adam;\n"
                       "recorded once as a CUDA graph, then replayed), median of %d after 2 warm-up, matrix multiplies in %s\n",
                       o->bench_runs, precisions[o->precision]);
    else printf("training step (forward over b loops, backward over the last T, Adam), median of %d after 2 warm-up, %d thread%s\n",
                o->bench_runs, threads, threads == 1 ? "" : "s");
    if (o->bench_rounds > 1)
        printf("%d rounds per config (ours, then PyTorch if --compare on): ms/step and PyTorch ms are the medians of the\n"
               "rounds' medians, ours/PT the median of the rounds' ratios (each listed after it)\n", o->bench_rounds);
    double peak = o->gpu ? 0 : ltf_fma_peak_gflops(0.5);
    if (!o->gpu)
        printf("multiply-add peak of this machine: %.1f GFLOP/s on %d thread%s (ltf_fma_peak_gflops: 12 independent\n"
               "vector FMA chains per thread, no memory traffic)\n", peak, threads, threads == 1 ? "" : "s");
    /* the matrix multiplies' precisions to time: the one --precision gives, else on the CPU both */
    int precs[2] = {o->precision, 2}, n_precs = !o->gpu && !given(o, "--precision") ? 2 : 1;
    printf("%-7s %3s %4s %4s %2s %2s %3s %3s %4s %4s %10s %10s %9s %6s %9s", "config", "d", "n", "C", "H", "L", "b", "T", "B",
           "mm", "ms/step", "best ms", "GFLOP/s", "%peak", "model MB");
    if (o->bench_compare) printf(" %12s %8s", "PyTorch ms", "ours/PT");
    printf("\n");
    for (char *name = strtok_r(list, ",", &save); name && rc == 0; name = strtok_r(NULL, ",", &save)) {
        ltf_config c;
        ltf_train_config tc;
        char err[LTF_ERR_LEN];
        ltf_model m;
        double med = 0, best = 0;
        if (bench_config(name, o, &c, &tc) != 0) return 2;
        if (ltf_model_create(&m, &c, 42, err) != 0) { fprintf(stderr, "demo: %s: %s\n", name, err); return 1; }
        if (to_device(o, &m) != 0) { ltf_model_free(&m); return 1; }
        for (int pi = 0; pi < n_precs && rc == 0; pi++) {
            int prec = precs[pi];
            best = 0;
            if (!o->gpu && ltf_cpu_set_precision(precisions[prec], err) != 0) { fprintf(stderr, "demo: %s\n", err); rc = 2; break; }
            /* rounds: ours, then PyTorch, R times; each round's ratio is taken within the round */
            double meds[20], pts[20], ratios[20];
            int R = o->bench_rounds;
            for (int r = 0; r < R && rc == 0; r++) {
                double b_r = 0;
                rc = o->gpu ? time_steps_gpu(&m, &tc, o->bench_runs, &meds[r], &b_r) : time_steps(&m, &tc, o->bench_runs, &meds[r], &b_r);
                if (rc == 0 && (r == 0 || b_r < best)) best = b_r;
                if (rc == 0 && o->bench_compare) {
                    pts[r] = pytorch_ms(&c, tc.n_points, tc.batch_size, o->bench_runs, threads, prec, o->gpu);
                    ratios[r] = meds[r] / pts[r];
                }
            }
            if (rc == 0) {
                char rounds[200] = "";
                for (int r = 0; R > 1 && o->bench_compare && r < R; r++)
                    snprintf(rounds + strlen(rounds), sizeof rounds - strlen(rounds), "%s%.3f", r ? " " : "  rounds: ", ratios[r]);
                med = median_of(meds, R);
                double gf = ltf_flops_per_step(&c, tc.batch_size, tc.n_points) / 1e9;
                char pct[16] = "-";
                if (peak > 0) snprintf(pct, sizeof pct, "%.0f", 100.0 * gf / (med / 1e3) / peak);
                printf("%-7s %3d %4d %4d %2d %2d %3d %3d %4d %4s %10.2f %10.2f %9.1f %6s %9.1f", name, c.n_dims, tc.n_points, c.n_embd,
                       c.n_head, c.n_layer, c.kind == LTF_LOOPED ? c.n_loops : 1, c.kind == LTF_LOOPED ? c.loop_window : 1,
                       tc.batch_size, precisions[prec], med, best, gf / (med / 1e3), pct, ltf_model_bytes(&m) / 1e6);
                if (o->bench_compare) printf(" %12.2f %8.3f%s", median_of(pts, R), median_of(ratios, R), rounds);
                printf("\n");
                fflush(stdout);
                if (o->gpu) {
                    printf("  model: ");
                    printf(gpu_model_header, "config", "device", "mm", "launches", "GFLOP", "GB", "ms mm", "ms attn", "ms mem",
                           "ms launch", "ms/step");
                    printf("  model: ");
                    print_gpu_model(name, &c, &tc, o->precision, strstr(g_gpu_name, "H100") ? &ltf_gpu_h100 : &ltf_gpu_h200);
                }
                if (o->profile && (o->gpu ? profile_steps(&m, &tc) : cpu_profile_steps(&m, &tc, o->bench_runs, peak)) != 0) rc = 1;
            }
        }
        ltf_model_free(&m);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("GFLOP/s by ltf_flops_per_step (workbench/speed.h); %%peak: of the fp32 multiply-add peak (bf16 rows too);\n"
           "model MB = ltf_model_bytes (parameters, gradients, Adam, activations, work buffers%s); peak RSS of this\n"
           "process %.1f MB\n", o->gpu ? "; host and GPU" : "", ru.ru_maxrss / 1e3);
    if (g_torch_version[0])
        printf("PyTorch %s (reference/bench_step.py: the reference model with SDPA attention and fused GELU; bf16: its\n"
               "forward under torch.autocast bfloat16%s), %s\n", g_torch_version, o->gpu ? "; tf32: allow_tf32" : "",
               o->gpu ? "eager on the same GPU, each step between two synchronizes" : "same threads");
    char err[LTF_ERR_LEN];
    if (!o->gpu) ltf_cpu_set_precision(precisions[o->precision], err);   /* back to the run's mode */
    return rc ? 1 : 0;
}

/* ------------------------------------------------------------------ sweep
 * demo sweep: every point of the grid (workbench/sweep.h) is its own `demo train`, in its own
 * process and folder, --jobs at a time. A point whose run.json says "done" is skipped; one with
 * a checkpoint resumes from it (bit for bit the run that never stopped); so a stopped sweep, or
 * one whose points ran under GNU parallel or Slurm (--emit), is finished or gathered by running
 * the same command again. */

#define SWEEP_ARGS 256
typedef struct { char *arg[SWEEP_ARGS]; int n; char buf[32768]; size_t used; } argv_list;

static int argv_add(argv_list *a, const char *s) {
    size_t len = strlen(s) + 1;
    if (a->n + 1 >= SWEEP_ARGS || a->used + len > sizeof a->buf) { fprintf(stderr, "demo: sweep: command line too long\n"); return -1; }
    a->arg[a->n++] = (char *)memcpy(a->buf + a->used, s, len);
    a->used += len;
    a->arg[a->n] = NULL;
    return 0;
}

static int sweep_only(const char *flag) {   /* flags of the sweep itself, not passed to its runs */
    return strcmp(flag, "--grid") == 0 || strcmp(flag, "--seeds") == 0 || strcmp(flag, "--jobs") == 0 ||
           strcmp(flag, "--emit") == 0 || strcmp(flag, "--point") == 0 || strcmp(flag, "--out") == 0 ||
           strcmp(flag, "--seed") == 0;
}

/* The command line of point p: demo train, the sweep's train flags, the point's grid values and
 * seed, its folder; --resume when its folder holds a checkpoint (resume != 0). */
static int sweep_argv(const options *o, const ltf_sweep *sw, int p, const char *exe, int resume, argv_list *a) {
    char folder[1024], path[1400], num[32];
    ltf_sweep_folder(sw, p, folder, sizeof folder);
    memset(a, 0, sizeof *a);
    if (argv_add(a, exe) || argv_add(a, "train")) return -1;
    for (int k = 0; k < N_FLAGS; k++) {
        const char *f = flag_table[k].name;
        if (!o->given[k] || sweep_only(f) || (resume && strcmp(f, "--preset") == 0)) continue;
        if (argv_add(a, f) || argv_add(a, o->given[k])) return -1;
    }
    for (int k = 0; k < sw->n_keys; k++)   /* a linked key's parts, each with its part of the value */
        for (int i = 0; i < ltf_sweep_parts(sw->key[k]); i++) {
            char key[32], value[32];
            ltf_sweep_part(sw->key[k], i, key, sizeof key);
            ltf_sweep_part(ltf_sweep_value(sw, p, k), i, value, sizeof value);
            snprintf(path, sizeof path, "--%s", key);
            if ((resume && strcmp(path, "--preset") == 0)) continue;
            if (argv_add(a, path) || argv_add(a, value)) return -1;
        }
    snprintf(num, sizeof num, "%ld", ltf_sweep_seed(sw, p));
    snprintf(path, sizeof path, "%s/%s", o->out, folder);
    if (argv_add(a, "--seed") || argv_add(a, num) || argv_add(a, "--out") || argv_add(a, path)) return -1;
    if (resume) {
        snprintf(path, sizeof path, "%s/%s/checkpoint.safetensors", o->out, folder);
        if (argv_add(a, "--resume") || argv_add(a, path)) return -1;
    }
    return 0;
}

static void sweep_path(const options *o, const ltf_sweep *sw, int p, const char *file, char *out, size_t cap) {
    char folder[1024];
    ltf_sweep_folder(sw, p, folder, sizeof folder);
    snprintf(out, cap, "%s/%s/%s", o->out, folder, file);
}

/* The grid's keys are train flags, not given otherwise; every combination parses as a run. */
static int sweep_check(const options *o, const ltf_sweep *sw, const char *exe) {
    static const char *const fixed[] = {"seed", "out", "resume", "force"};
    int seen[N_FLAGS] = {0};
    for (int k = 0; k < sw->n_keys; k++)
        for (int part = 0; part < ltf_sweep_parts(sw->key[k]); part++) {
            char key[32], flag[40];
            ltf_sweep_part(sw->key[k], part, key, sizeof key);
            snprintf(flag, sizeof flag, "--%s", key);
            int i = flag_index(flag);
            for (size_t j = 0; j < sizeof fixed / sizeof fixed[0]; j++)
                if (strcmp(key, fixed[j]) == 0) i = -2;
            if (i < 0 || !(flag_table[i].commands & F_TRAIN)) {
                fprintf(stderr, "demo: --grid key '%s' is not allowed: it must be a flag of demo train other than seed, out, "
                                "resume, force (--seeds sets the seeds)\n", key);
                return -1;
            }
            if (o->given[i]) {
                fprintf(stderr, "demo: --grid key '%s' is not allowed: %s '%s' is given too; give it in one place\n",
                        key, flag, o->given[i]);
                return -1;
            }
            if (seen[i]++) {
                fprintf(stderr, "demo: --grid key '%s' is not allowed: it is in the grid twice\n", key);
                return -1;
            }
        }
    for (int p = 0; p < ltf_sweep_points(sw); p += sw->seeds) {   /* one seed per combination */
        argv_list a;
        options probe;
        char folder[1024];
        if (sweep_argv(o, sw, p, exe, 0, &a) != 0) return -1;
        ltf_sweep_folder(sw, p, folder, sizeof folder);
        /* its message, caught and said once, with the grid point in front */
        FILE *caught = tmpfile();
        int saved = dup(2), rc;
        fflush(stderr);
        if (caught && saved >= 0) dup2(fileno(caught), 2);
        rc = parse_args(a.n, a.arg, &probe);
        fflush(stderr);
        if (saved >= 0) { dup2(saved, 2); close(saved); }
        if (rc != 0) {
            char msg[1024] = "";
            if (caught) { rewind(caught); msg[fread(msg, 1, sizeof msg - 1, caught)] = 0; }
            msg[strcspn(msg, "\n")] = 0;
            const char *text = strstr(msg, "demo: ") == msg ? msg + 6 : msg;
            fprintf(stderr, "demo: sweep point %.*s: %s\n", (int)strcspn(folder, "/"), folder, text);
        }
        if (caught) fclose(caught);
        if (rc != 0) return -1;
    }
    return 0;
}

/* a shell word: 'text' with every ' written as '\'' */
static void shell_word(FILE *f, const char *s) {
    fputc('\'', f);
    for (; *s; s++) { if (*s == '\'') fputs("'\\''", f); else fputc(*s, f); }
    fputc('\'', f);
}

/* --emit: the sweep's points as jobs for Slurm or GNU parallel; each job is this sweep with
 * --point I, which runs (or resumes, or skips) one point. */
static int sweep_emit(const options *o, const ltf_sweep *sw, const char *exe, int argc, char **argv) {
    char path[4096], cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) { fprintf(stderr, "demo: sweep --emit: cannot read the current folder: %s\n", strerror(errno)); return 1; }
    if (make_dir(o->out) != 0) return 1;
    int slurm = o->emit == 1, P = ltf_sweep_points(sw);
    snprintf(path, sizeof path, "%s/%s", o->out, slurm ? "sweep.slurm" : "jobs.txt");
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) { fprintf(stderr, "demo: sweep --emit: cannot write %s: %s\n", tmp, strerror(errno)); return 1; }
    for (int j = 0; j < (slurm ? 1 : P); j++) {
        if (slurm) {
            fprintf(f, "#!/bin/bash\n# looped-tf sweep: %d runs, one array task each; resubmit after a stop: finished runs are\n"
                       "# skipped, stopped ones resume from their checkpoint. Then run the same demo sweep command\n"
                       "# without --emit to gather sweep.csv and the figures.\n", P);
            fprintf(f, "#SBATCH --job-name=looped-tf-sweep\n#SBATCH --array=0-%d%%%d\n#SBATCH --ntasks=1\n#SBATCH --cpus-per-task=1\n",
                    P - 1, o->jobs);
            if (o->out[0] == '/') fprintf(f, "#SBATCH --output=%s/slurm-%%A_%%a.out\n", o->out);   /* the folder exists */
            else fprintf(f, "#SBATCH --output=%s/%s/slurm-%%A_%%a.out\n", cwd, o->out);
            fprintf(f, "# each run's threads: the CPUs Slurm gives the task (raise --cpus-per-task to give it more)\n"
                       "export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}\n");
            fprintf(f, "cd ");
            shell_word(f, cwd);
            fprintf(f, " || exit 1\nexec ");
        } else {
            fprintf(f, "cd ");
            shell_word(f, cwd);
            fprintf(f, " && ");
        }
        shell_word(f, exe);
        for (int i = 1; i < argc; i++) {
            if (strcmp(argv[i], "--emit") == 0 || strcmp(argv[i], "--point") == 0) { i++; continue; }
            fputc(' ', f);
            shell_word(f, argv[i]);
        }
        if (slurm) fprintf(f, " --point \"$SLURM_ARRAY_TASK_ID\"\n");
        else fprintf(f, " --point %d\n", j);
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0) { fprintf(stderr, "demo: sweep --emit: cannot write %s\n", path); remove(tmp); return 1; }
    if (slurm) chmod(path, 0755);
    printf("wrote %s: %d runs\n", path, P);
    if (slurm) printf("submit:  sbatch %s   (then run this sweep command without --emit to gather the results)\n", path);
    else printf("run:     parallel -j %d < %s   (then run this sweep command without --emit to gather the results)\n", o->jobs, path);
    return 0;
}

/* A run's eval.csv: k, the model's error and least squares' (NAN where absent), as stb_ds arrays. */
static int eval_csv_read(const char *path, double **k, double **model, double **ls) {
    FILE *f = fopen(path, "r");
    char line[8192];
    if (!f) return -1;
    int ls_col = -1;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        if (strncmp(line, "k,", 2) == 0) {   /* the header: where least squares is */
            int col = 0;
            for (char *c = line; c; c = strchr(c, ','), c = c ? c + 1 : c, col++)
                if (strncmp(c, "least_squares,", 14) == 0) ls_col = col;
            continue;
        }
        double v[64];
        int n = 0;
        for (char *c = line; c && n < 64; n++) {
            char *end;
            v[n] = strtod(c, &end);
            if (end == c) v[n] = NAN;
            c = strchr(c, ',');
            if (c) c++;
        }
        if (n < 2 || !isfinite(v[0])) continue;
        arrput(*k, v[0]);
        arrput(*model, v[1]);
        arrput(*ls, ls_col > 0 && ls_col < n ? v[ls_col] : NAN);
    }
    fclose(f);
    return 0;
}

/* The label of grid combination c: "b=5 T=2" */
static void sweep_combo_label(const ltf_sweep *sw, int c, char *out, size_t cap) {
    out[0] = 0;
    for (int k = 0; k < sw->n_keys; k++)
        snprintf(out + strlen(out), cap - strlen(out), "%s%s=%s", k ? " " : "", sw->key[k], ltf_sweep_value(sw, c * sw->seeds, k));
}

/* A grid point's curve over its seeds: mean and 90% bootstrap band at each x. rows[s][i] is
 * seed s's value at x[i]; rows[s] NULL (or a NAN) leaves seed s out there. */
typedef struct { double *x, *y, *lo, *hi; int n; } sweep_curve;

static int sweep_curve_band(double **rows, int seeds, const double *x, int n, sweep_curve *out) {
    memset(out, 0, sizeof *out);
    out->x = (double *)calloc((size_t)n * 4 + 1, sizeof(double));
    if (!out->x) return -1;
    out->y = out->x + n; out->lo = out->y + n; out->hi = out->lo + n; out->n = n;
    for (int i = 0; i < n; i++) {
        double v[100];
        for (int s = 0; s < seeds && s < 100; s++) v[s] = rows[s] ? rows[s][i] : NAN;
        out->x[i] = x[i];
        if (seed_band(v, seeds < 100 ? seeds : 100, &out->y[i], &out->lo[i], &out->hi[i]) != 0) return -1;
    }
    return 0;
}

/* The curves a sweep gathers from its runs' files, per grid point over its finished seeds. */
typedef struct {
    const char *file, *stem;        /* the run's CSV; sweep_STEM.csv/.svg                     */
    const char *x_col, *y_col;      /* columns of sweep_STEM.csv                              */
    const char *title, *xlabel, *ylabel;
    int windows;                    /* > 0: the run's rows averaged over this many windows    */
    int log_x;
} sweep_curve_kind;

static const sweep_curve_kind sweep_kinds[3] = {
    {"train_loss.csv", "loss", "step", "loss", "training loss by step", "training step", "loss (mean over a window of steps)", 100, 0},
    {"eval.csv", "eval", "k", "error", "error by in-context examples k", "in-context examples k", "normalized squared error", 0, 0},
    {"loop_error.csv", "loop", "iteration", "error", "error (mean over k) by loop iteration", "loop iteration",
     "normalized squared error", 0, 1},
};

/* One run's curve of kind K: x and y as stb_ds arrays (eval.csv: also least squares' y). */
static void sweep_curve_read(const char *path, const sweep_curve_kind *K, double **x, double **y, double **ls) {
    if (strcmp(K->file, "eval.csv") == 0) { eval_csv_read(path, x, y, ls); return; }
    float *v = NULL;
    double *xs = NULL;
    loss_log_read(path, &xs, &v);   /* "x,y,..." rows */
    int n = (int)arrlen(xs), W = K->windows > 0 && n / K->windows > 0 ? n / K->windows : 1;
    for (int b = 0; b < n / W; b++) {
        double sum = 0;
        for (int j = b * W; j < (b + 1) * W; j++) sum += v[j];
        arrput(*x, xs[b * W + W / 2]);
        arrput(*y, sum / W);
    }
    arrfree(xs); arrfree(v);
}

/* sweep_loss, sweep_eval, sweep_loop (.csv and .svg): training loss by step (each run's mean
 * over 100 windows of steps), error by k, error by loop iteration (up to --fixed-point), each
 * per grid point with its mean and 90% band over the seeds; least squares (from the first
 * finished run) as the reference of the error by k. Runs without the file are left out. */
static int sweep_curves(const options *o, const ltf_sweep *sw, const ltf_sweep_result *res, const char *grid_meta) {
    int combos = ltf_sweep_points(sw) / sw->seeds, rc = 0, S = sw->seeds < 100 ? sw->seeds : 100;
    char path[4096], title[256];
    char (*labels)[128] = (char (*)[128])calloc((size_t)combos + 1, 128);
    sweep_curve *cv = (sweep_curve *)calloc((size_t)combos, sizeof *cv);
    ltf_series *ser = (ltf_series *)calloc((size_t)combos + 1, sizeof *ser);
    if (!labels || !cv || !ser) { free(labels); free(cv); free(ser); return -1; }
    for (int c = 0; c < combos; c++) sweep_combo_label(sw, c, labels[c], sizeof labels[c]);
    for (int kind = 0; kind < 3 && rc == 0; kind++) {
        const sweep_curve_kind *K = &sweep_kinds[kind];
        char *csv = NULL;
        double *ls_x = NULL, *ls_y = NULL;
        sb_printf(&csv, "# %s\n", grid_meta);
        for (int k = 0; k < sw->n_keys; k++) sb_printf(&csv, "%s,", sw->key[k]);
        sb_printf(&csv, "%s,%s_mean,%s_lo90,%s_hi90,seeds\n", K->x_col, K->y_col, K->y_col, K->y_col);
        memset(cv, 0, sizeof *cv * (size_t)combos);
        for (int c = 0; rc == 0 && c < combos; c++) {
            double *rows[100] = {0}, *x0 = NULL;
            int n = 0, used = 0;
            for (int s = 0; s < S; s++) {
                int p = c * sw->seeds + s;
                if (strcmp(res[p].status, "done") != 0) continue;
                double *x = NULL, *y = NULL, *ls = NULL;
                sweep_path(o, sw, p, K->file, path, sizeof path);
                sweep_curve_read(path, K, &x, &y, &ls);
                int m = (int)arrlen(x);
                if (m > 0 && (n == 0 || m == n)) {   /* the seeds of a grid point ran the same steps, k, iterations */
                    rows[s] = y; y = NULL;            /* kept: the band reads it */
                    if (!x0) { x0 = x; x = NULL; }
                    if (ls && !ls_x) { for (int i = 0; i < m; i++) arrput(ls_x, x0[i]); ls_y = ls; ls = NULL; }
                    n = m; used++;
                }
                arrfree(x); arrfree(y); arrfree(ls);
            }
            if (rc == 0 && n && sweep_curve_band(rows, S, x0, n, &cv[c]) != 0) rc = -1;
            for (int i = 0; rc == 0 && i < cv[c].n; i++) {
                for (int k = 0; k < sw->n_keys; k++) sb_printf(&csv, "%s,", ltf_sweep_value(sw, c * sw->seeds, k));
                sb_printf(&csv, "%.0f,%.6g,%.6g,%.6g,%d\n", cv[c].x[i], cv[c].y[i], cv[c].lo[i], cv[c].hi[i], used);
            }
            for (int s = 0; s < 100; s++) arrfree(rows[s]);
            arrfree(x0);
        }
        int ns = 0;
        double lowest = INFINITY, highest = 0;   /* the models' range: least squares' 1e-15 would flatten them */
        memset(ser, 0, sizeof *ser * ((size_t)combos + 1));
        for (int c = 0; rc == 0 && c < combos; c++) {
            if (!cv[c].n) continue;
            ser[ns].label = labels[c]; ser[ns].x = cv[c].x; ser[ns].y = cv[c].y; ser[ns].n = cv[c].n;
            ser[ns].lo = cv[c].lo; ser[ns].hi = cv[c].hi;
            for (int j = 0; j < cv[c].n; j++)
                if (cv[c].lo[j] > 0) { lowest = fmin(lowest, cv[c].lo[j]); highest = fmax(highest, cv[c].hi[j]); }
            ns++;
        }
        if (ns && ls_x) {
            ser[ns].label = "least squares"; ser[ns].x = ls_x; ser[ns].y = ls_y; ser[ns].n = (int)arrlen(ls_x);
            ser[ns].dashed = 1;
            ns++;
        }
        if (rc == 0 && ns) {
            ltf_plot pl;
            memset(&pl, 0, sizeof pl);
            snprintf(title, sizeof title, "%s (90%% band over %d seeds)", K->title, sw->seeds);
            pl.title = title; pl.subtitle = grid_meta; pl.log_y = 1; pl.log_x = K->log_x; pl.series = ser; pl.n_series = ns;
            pl.xlabel = K->xlabel; pl.ylabel = K->ylabel;
            if (ls_x && isfinite(lowest) && highest > lowest) { pl.y_min = lowest / 2; pl.y_max = highest * 1.5; }
            snprintf(path, sizeof path, "%s/sweep_%s.svg", o->out, K->stem);
            if (write_plot(path, &pl) != 0) rc = -1;
        }
        snprintf(path, sizeof path, "%s/sweep_%s.csv", o->out, K->stem);
        if (rc == 0 && write_text(path, csv) != 0) rc = -1;
        for (int c = 0; c < combos; c++) free(cv[c].x);
        memset(cv, 0, sizeof *cv * (size_t)combos);
        arrfree(csv); arrfree(ls_x); arrfree(ls_y);
    }
    free(labels); free(cv); free(ser);
    return rc;
}

/* sweep.csv (every run), sweep_summary.csv (mean and 90% band over seeds per grid point) and
 * the figures: error at k = 2d against the first key, a line per value of the others; a
 * heatmap of it over two keys. Only finished runs count. */
static int sweep_gather(const options *o, const ltf_sweep *sw) {
    int P = ltf_sweep_points(sw), combos = P / sw->seeds, rc = 0;
    char *csv = NULL, *sum = NULL, path[4096], err[LTF_ERR_LEN], title[256], grid_meta[400];
    ltf_sweep_result *res = (ltf_sweep_result *)calloc((size_t)P, sizeof *res);
    double *mean = (double *)calloc((size_t)combos * 3, sizeof(double));
    if (!res || !mean) { free(res); free(mean); fprintf(stderr, "demo: out of memory\n"); return -1; }
    snprintf(grid_meta, sizeof grid_meta, "looped-tf %s | sweep --grid \"%s\" | %d seeds from %llu", LTF_VERSION, o->grid,
             sw->seeds, (unsigned long long)o->seed);
    sb_printf(&csv, "# %s\n", grid_meta);
    sb_printf(&sum, "# %s\n", grid_meta);
    for (int k = 0; k < sw->n_keys; k++) { sb_printf(&csv, "%s,", sw->key[k]); sb_printf(&sum, "%s,", sw->key[k]); }
    sb_printf(&csv, "seed,status,final_loss,error_at_k_2d,loop_error_at_b,loop_error_at_last_iteration\n");
    sb_printf(&sum, "runs_done,error_at_k_2d_mean,error_at_k_2d_lo90,error_at_k_2d_hi90,loop_error_at_last_iteration_mean\n");
    for (int p = 0; p < P; p++) {
        sweep_path(o, sw, p, "run.json", path, sizeof path);
        ltf_sweep_read(path, &res[p]);
        for (int k = 0; k < sw->n_keys; k++) sb_printf(&csv, "%s,", ltf_sweep_value(sw, p, k));
        sb_printf(&csv, "%ld,%s,%.6g,%.6g,%.6g,%.6g\n", ltf_sweep_seed(sw, p), res[p].status[0] ? res[p].status : "not started",
                  res[p].final_loss, res[p].err_2d, res[p].loop_err_b, res[p].loop_err_last);
    }
    for (int c = 0; c < combos; c++) {   /* over the seeds of each grid point */
        double vals[100], last = 0, lo, hi, m;
        int done = 0;
        for (int s = 0; s < sw->seeds; s++) {
            const ltf_sweep_result *r = &res[c * sw->seeds + s];
            int ok = strcmp(r->status, "done") == 0 && isfinite(r->err_2d);
            vals[s] = ok ? r->err_2d : NAN;
            if (ok) { done++; last += r->loop_err_last; }
        }
        last = done ? last / done : NAN;
        if (seed_band(vals, sw->seeds, &m, &lo, &hi) != 0) rc = -1;
        mean[3 * c] = m; mean[3 * c + 1] = lo; mean[3 * c + 2] = hi;
        for (int k = 0; k < sw->n_keys; k++) sb_printf(&sum, "%s,", ltf_sweep_value(sw, c * sw->seeds, k));
        sb_printf(&sum, "%d,%.6g,%.6g,%.6g,%.6g\n", done, m, lo, hi, last);
    }
    g_quiet = 0;
    snprintf(path, sizeof path, "%s/sweep.csv", o->out);
    if (write_text(path, csv) != 0) rc = -1;
    snprintf(path, sizeof path, "%s/sweep_summary.csv", o->out);
    if (write_text(path, sum) != 0) rc = -1;
    /* error against the first key: x its values where all are numbers, else their index */
    int nx = sw->n_values[0], lines = combos / nx, numeric = 1;
    double *x = (double *)calloc((size_t)nx, sizeof(double));
    ltf_series *ser = (ltf_series *)calloc((size_t)lines, sizeof *ser);
    double *ys = (double *)calloc((size_t)combos * 3, sizeof(double));
    char (*labels)[96] = (char (*)[96])calloc((size_t)lines, 96);
    if (!x || !ser || !ys || !labels) rc = -1;
    for (int i = 0; rc == 0 && i < nx; i++) {
        char *end;
        x[i] = strtod(sw->value[0][i], &end);
        if (*end) numeric = 0;
    }
    for (int i = 0; rc == 0 && !numeric && i < nx; i++) x[i] = i;
    for (int l = 0; rc == 0 && l < lines; l++) {   /* combination c = i * lines + l: key 0 is the slowest */
        labels[l][0] = 0;
        for (int k = 1; k < sw->n_keys; k++)
            snprintf(labels[l] + strlen(labels[l]), 96 - strlen(labels[l]), "%s%s=%s", k > 1 ? " " : "", sw->key[k],
                     ltf_sweep_value(sw, l * sw->seeds, k));
        for (int i = 0; i < nx; i++) {
            int c = i * lines + l;
            ys[(size_t)l * nx * 3 + i] = mean[3 * c];
            ys[(size_t)l * nx * 3 + nx + i] = mean[3 * c + 1];
            ys[(size_t)l * nx * 3 + 2 * nx + i] = mean[3 * c + 2];
        }
        ser[l].label = sw->n_keys > 1 ? labels[l] : "mean over seeds";
        ser[l].x = x; ser[l].n = nx;
        ser[l].y = ys + (size_t)l * nx * 3; ser[l].lo = ser[l].y + nx; ser[l].hi = ser[l].y + 2 * nx;
    }
    if (rc == 0) {
        ltf_plot pl;
        char xlabel[128];
        memset(&pl, 0, sizeof pl);
        snprintf(title, sizeof title, "error at k = 2d by %s (90%% band over %d seeds)", sw->key[0], sw->seeds);
        snprintf(xlabel, sizeof xlabel, numeric ? "%s" : "%s (index of its values)", sw->key[0]);
        pl.title = title; pl.xlabel = xlabel; pl.ylabel = "normalized squared error"; pl.log_y = 1;
        pl.series = ser; pl.n_series = lines; pl.subtitle = grid_meta;
        snprintf(path, sizeof path, "%s/sweep.svg", o->out);
        if (write_plot(path, &pl) != 0) rc = -1;
    }
    if (rc == 0 && sw->n_keys == 2) {
        double *cells = (double *)calloc((size_t)combos, sizeof(double));
        if (!cells) rc = -1;
        for (int c = 0; rc == 0 && c < combos; c++) cells[c] = mean[3 * c];
        snprintf(path, sizeof path, "%s/sweep_heatmap.svg", o->out);
        snprintf(title, sizeof title, "error at k = 2d, mean over %d seeds", sw->seeds);
        if (rc == 0 && ltf_sweep_heatmap_svg(path, title, grid_meta, sw->key[0], (const char (*)[32])sw->value[0], sw->n_values[0],
                                             sw->key[1], (const char (*)[32])sw->value[1], sw->n_values[1], cells, err) != 0) {
            fprintf(stderr, "demo: %s\n", err);
            rc = -1;
        } else if (rc == 0) printf("wrote %s\n", path);
        free(cells);
    }
    if (rc == 0 && sweep_curves(o, sw, res, grid_meta) != 0) rc = -1;
    free(x); free(ser); free(ys); free(labels); free(res); free(mean);
    arrfree(csv); arrfree(sum);
    return rc;
}

static int cmd_sweep(options *o, int argc, char **argv) {
    ltf_sweep sw;
    char err[LTF_ERR_LEN], exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) { fprintf(stderr, "demo: sweep: cannot find this program (/proc/self/exe): %s\n", strerror(errno)); return 1; }
    exe[len] = 0;
    if (ltf_sweep_parse(&sw, o->grid, o->seeds, (long)o->seed, err) != 0) { fprintf(stderr, "demo: %s\n", err); return 2; }
    int P = ltf_sweep_points(&sw);
    if (o->point >= P) { fprintf(stderr, "demo: --point '%d' is not allowed: the grid has points 0..%d\n", o->point, P - 1); return 2; }
    if (sweep_check(o, &sw, exe) != 0) return 2;
    if (o->emit) return sweep_emit(o, &sw, exe, argc, argv);
    if (make_dir(o->out) != 0) return 1;
    int first = o->point >= 0 ? o->point : 0, last = o->point >= 0 ? o->point + 1 : P;
    int next = first, running = 0, done = 0, failed = 0, skipped = 0;
    pid_t pids[256];
    int point_of[256];
    double started[256], spent = 0, t0 = now_s();
    int finished_here = 0;
    catch_signals(1);
    for (;;) {
        while (!g_signal && running < o->jobs && next < last) {   /* start what the workers can take */
            int p = next++;
            char path[4096], logp[4096];
            ltf_sweep_result r;
            sweep_path(o, &sw, p, "run.json", path, sizeof path);
            if (ltf_sweep_read(path, &r) == 0 && strcmp(r.status, "done") == 0) { skipped++; done++; continue; }
            sweep_path(o, &sw, p, "checkpoint.safetensors", path, sizeof path);
            argv_list a;
            if (sweep_argv(o, &sw, p, exe, access(path, F_OK) == 0, &a) != 0) return 1;
            sweep_path(o, &sw, p, "", path, sizeof path);
            if (make_dir(path) != 0) return 1;
            sweep_path(o, &sw, p, "log.txt", logp, sizeof logp);
            fflush(stdout); fflush(stderr);
            pid_t pid = fork();
            if (pid < 0) { fprintf(stderr, "demo: sweep: fork failed: %s\n", strerror(errno)); return 1; }
            if (pid == 0) {   /* the run: its own process group (Ctrl-C goes to the sweep, which passes it on once) */
                setpgid(0, 0);
                if (!getenv("OMP_NUM_THREADS")) {   /* the cores shared by the runs at a time (same bits either way) */
                    long cores = sysconf(_SC_NPROCESSORS_ONLN), each = cores / o->jobs;
                    char n[24];
                    snprintf(n, sizeof n, "%ld", each > 0 ? each : 1);
                    setenv("OMP_NUM_THREADS", n, 1);
                }
                int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0644);
                if (fd >= 0) { dup2(fd, 1); dup2(fd, 2); close(fd); }
                execv(exe, a.arg);
                fprintf(stderr, "demo: sweep: cannot run %s: %s\n", exe, strerror(errno));
                _exit(127);
            }
            pids[running] = pid; point_of[running] = p; started[running] = now_s(); running++;
        }
        if (running == 0 && (next >= last || g_signal)) break;
        int status;
        pid_t got = waitpid(-1, &status, WNOHANG);
        if (got == 0 || (got < 0 && errno == EINTR)) {
            static int passed;
            if (g_signal && !passed) {   /* pass the signal on once: the runs write their checkpoints */
                for (int i = 0; i < running; i++) kill(pids[i], g_signal);
                passed = 1;
            }
            struct timespec nap = {0, 20000000};   /* 20 ms */
            nanosleep(&nap, NULL);
            continue;
        }
        if (got < 0) { fprintf(stderr, "demo: sweep: waitpid: %s\n", strerror(errno)); return 1; }
        for (int i = 0; i < running; i++) {
            if (pids[i] != got) continue;
            char folder[1024];
            ltf_sweep_folder(&sw, point_of[i], folder, sizeof folder);
            int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
            if (ok) { done++; spent += now_s() - started[i]; finished_here++; }
            else if (!g_signal) { failed++; fprintf(stderr, "demo: sweep: %s failed (exit %d): see %s/%s/log.txt\n", folder,
                                                    WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), o->out, folder); }
            pids[i] = pids[running - 1]; point_of[i] = point_of[running - 1]; started[i] = started[running - 1];
            running--;
            break;
        }
        int left = last - next;
        char eta[32] = "-";
        if (finished_here) fmt_time(eta, sizeof eta, spent / finished_here * ((left + running + o->jobs - 1) / o->jobs));
        fprintf(stderr, "sweep: %d of %d done (%d skipped as done before, %d failed), %d running, %d left, elapsed %.0f s, ETA %s\n",
                done, last - first, skipped, failed, running, left, now_s() - t0, eta);
    }
    catch_signals(0);
    if (g_signal) {
        fprintf(stderr, "demo: sweep stopped by signal %d: %d of %d runs done; run the same command to go on\n", g_signal, done,
                last - first);
        return 128 + g_signal;
    }
    if (o->point >= 0) return failed ? 1 : 0;   /* one point of an emitted sweep: no gathering */
    if (sweep_gather(o, &sw) != 0) return 1;
    printf("sweep: %d of %d runs done%s\n", done, P, failed ? "; some failed (their log.txt says why)" : "");
    return failed ? 1 : 0;
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv) {
    options o;
    if (parse_args(argc, argv, &o) != 0) return 2;
    if (o.gpu) {
        char msg[LTF_ERR_LEN];
        if (ltf_gpu_available(msg) != 0) { fprintf(stderr, "demo: --gpu on: %s\n", msg); return 1; }
        fprintf(stderr, "demo: %s\n", msg);
        snprintf(g_gpu_name, sizeof g_gpu_name, "%s", msg);
        if (ltf_gpu_set_precision(precisions[o.precision], msg) != 0) { fprintf(stderr, "demo: %s\n", msg); return 2; }
    } else {
        char msg[LTF_ERR_LEN];
        if (ltf_cpu_set_precision(precisions[o.precision], msg) != 0) { fprintf(stderr, "demo: %s\n", msg); return 2; }
    }
    if (guard_out(&o) != 0) return 2;
    if (o.command == CMD_BENCH) return o.gpu_model ? cmd_gpu_model(&o) : cmd_bench(&o);   /* bench writes no output folder */
    if (o.command == CMD_GRID) return cmd_sweep(&o, argc, argv);   /* its runs write theirs */
    if (make_dir(o.out) != 0) return 1;
    run_record_start(argc, argv);
    if (write_run_json(&o, "running") != 0 || write_index_html(&o, "running") != 0) return 1;
    int rc = o.command == CMD_EVAL ? cmd_eval(&o) : o.command == CMD_MASK_SWEEP ? cmd_mask_sweep(&o)
           : o.command == CMD_PROBE ? cmd_probe(&o)
           : o.command == CMD_COMPARE ? cmd_compare(&o) : cmd_train(&o);
    const char *status = rc == 0 ? "done" : rc >= 128 ? "stopped" : "failed";
    if ((write_run_json(&o, status) != 0 || write_index_html(&o, status) != 0) && rc == 0) rc = 1;
    return rc;
}

/* workbench/bands.h - bootstrap bands: how far the mean error over test prompts could move
 * with another draw of prompts (the shaded 90% bands of the paper's figures).
 *
 * Part of the looped-tf workbench (the demo's side of the tree, README "Layout"): include it
 * after looped_tf.h in the one file that defines LOOPED_TF_IMPLEMENTATION (demo.c, test.c); it
 * uses the header's private helpers (ltf__fail, LTF_MALLOC/LTF_FREE). MIT licence, as the header.
 */
#ifndef LTF_WORKBENCH_BANDS_H
#define LTF_WORKBENCH_BANDS_H

/* 90% (level) bootstrap band of the mean over prompts: resample the prompts with replacement
 * n_boot times; lo/hi [n] get the (1-level)/2 and (1+level)/2 quantiles of the resampled means. */
int ltf_bootstrap_band(const float *err_by_prompt, int n_prompts, int n, int n_boot, double level,
                       uint64_t seed, double *lo, double *hi);

/* Bootstrap band (as the paper's plots): draw n_prompts prompts with replacement, average their
 * errors per k; repeat n_boot times; lo/hi are the (1-level)/2 and (1+level)/2 quantiles of
 * those means (nearest rank). Deterministic for a given seed. */
static int ltf__cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int ltf_bootstrap_band(const float *err_by_prompt, int n_prompts, int n, int n_boot, double level,
                       uint64_t seed, double *lo, double *hi) {
    if (n_prompts < 1 || n < 1 || n_boot < 1 || !(level > 0.0 && level < 1.0)) return -1;
    double *means = (double *)LTF_MALLOC(sizeof(double) * (size_t)n_boot * n);
    if (!means) return -1;
    ltf_rng r;
    ltf_rng_seed(&r, seed);
    for (int t = 0; t < n_boot; t++) {
        double *mt = means + (size_t)t * n;
        for (int k = 0; k < n; k++) mt[k] = 0.0;
        for (int p = 0; p < n_prompts; p++) {
            const float *e = err_by_prompt + (size_t)((uint64_t)ltf_rng_u32(&r) % (uint32_t)n_prompts) * n;
            for (int k = 0; k < n; k++) mt[k] += e[k];
        }
        for (int k = 0; k < n; k++) mt[k] /= n_prompts;
    }
    double *col = (double *)LTF_MALLOC(sizeof(double) * (size_t)n_boot);
    if (!col) { LTF_FREE(means); return -1; }
    int ilo = (int)floor((1.0 - level) / 2.0 * (n_boot - 1) + 0.5);
    int ihi = (int)floor((1.0 + level) / 2.0 * (n_boot - 1) + 0.5);
    for (int k = 0; k < n; k++) {
        for (int t = 0; t < n_boot; t++) col[t] = means[(size_t)t * n + k];
        qsort(col, (size_t)n_boot, sizeof(double), ltf__cmp_double);
        lo[k] = col[ilo]; hi[k] = col[ihi];
    }
    LTF_FREE(col); LTF_FREE(means);
    return 0;
}

#endif /* LTF_WORKBENCH_BANDS_H */

/* Multi-head self-attention of packed texts, fp32, for seal-audit's CPU forward (packed.py).
 *
 * Why a kernel of our own: at MiniLM's head size (32) and the texts people score (20-256 tokens),
 * torch's CPU flash attention spends most of its time on per-(text, head) overhead and on
 * memory it does not keep in cache; seal-audit also had to copy every group's output into one
 * buffer. This kernel reads Q, K and V straight from the packed QKV projection (tokens x 3 hidden)
 * and writes each head's output into its columns of the context matrix (tokens x hidden), one
 * call per layer for the whole batch, texts of any lengths. Measured numbers are in the README.
 *
 * Per (text, head): K^T and V are packed into a thread's scratch (L1/L2 resident), the scores of
 * R query rows x 32 keys are accumulated in registers, the softmax subtracts each row's maximum,
 * and the output rows are accumulated over V, then divided by the row's sum. exp is a Cephes-style
 * polynomial (about 1 ulp on the range a softmax sees). Built by seal_audit.backends.embed.native
 * with the host's own compiler (-O3 -march=native); GNU vector extensions, no intrinsics.
 *
 * Threads: a small persistent pool (the caller is worker 0); calls are serialised, and a forked
 * child starts a pool of its own (the parent's threads do not exist there).
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));
typedef int32_t i16v __attribute__((vector_size(64)));

#define R 8          /* query rows per register block */
#define MAX_THREADS 256

#if defined(__clang__)
#define SHUF(m, ...) __builtin_shufflevector(m, m, __VA_ARGS__)
#else
#define SHUF(m, ...) __builtin_shuffle(m, (i16v){__VA_ARGS__})
#endif

static inline v16 ld(const float *p) { return *(const v16u *)p; }
static inline void st(float *p, v16 x) { *(v16u *)p = x; }
static inline v16 bc(float x) { return (v16){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x}; }
static inline v16 vsel(i16v m, v16 a, v16 b) { return (v16)(((i16v)a & m) | ((i16v)b & ~m)); }
static inline v16 vmax(v16 a, v16 b) { return vsel(a > b, a, b); }

static inline float hmax(v16 m) {
    m = vmax(m, SHUF(m, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7));
    m = vmax(m, SHUF(m, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11));
    m = vmax(m, SHUF(m, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13));
    m = vmax(m, SHUF(m, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14));
    return m[0];
}

static inline float hsum(v16 m) {
    m = m + SHUF(m, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
    m = m + SHUF(m, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11);
    m = m + SHUF(m, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
    m = m + SHUF(m, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
    return m[0];
}

/* exp(x) for x <= 0; below -87 it returns exp(-87) (about 1.6e-38), never a denormal */
static inline v16 vexp(v16 x) {
    x = vmax(x, bc(-87.0f));
    v16 n = x * bc(1.44269504088896341f) + bc(12582912.0f); /* round to nearest: 1.5 * 2^23 */
    n = n - bc(12582912.0f);
    v16 r = x - n * bc(0.693359375f);
    r = r - n * bc(-2.12194440e-4f);
    v16 p = bc(1.9875691500e-4f);
    p = p * r + bc(1.3981999507e-3f);
    p = p * r + bc(8.3334519073e-3f);
    p = p * r + bc(4.1665795894e-2f);
    p = p * r + bc(1.6666665459e-1f);
    p = p * r + bc(5.0000001201e-1f);
    p = p * (r * r) + r + bc(1.0f);
    i16v e = (__builtin_convertvector(n, i16v) + 127) << 23;
    return p * (v16)e;
}

static const i16v LANES = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

static inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

/* floats of scratch one (text, head) of up to max_len tokens needs */
static size_t scratch_floats(int64_t max_len, int64_t d) {
    int64_t lp = round_up(max_len, 32), lr = round_up(max_len, R);
    return (size_t)(2 * d * lp + lr * lp + lr + 16);
}

/* scores of R query rows against J*16 keys starting at j0, masked past L, stored to s; row maxima */
static inline __attribute__((always_inline)) void scores(const float *const q[R], const float *kt,
                                                         int64_t lp, int64_t d, int64_t j0, int J,
                                                         int64_t L, float *s, v16 m[R]) {
    v16 a0[R], a1[R];
    for (int r = 0; r < R; r++) a0[r] = a1[r] = bc(0.0f);
    for (int64_t c = 0; c < d; c++) {
        v16 k0 = ld(kt + c * lp + j0), k1 = J == 2 ? ld(kt + c * lp + j0 + 16) : bc(0.0f);
        for (int r = 0; r < R; r++) {
            v16 qb = bc(q[r][c]);
            a0[r] += qb * k0;
            if (J == 2) a1[r] += qb * k1;
        }
    }
    if (j0 + 16 * J > L) {
        i16v in0 = LANES + (int32_t)j0 < (int32_t)L, in1 = LANES + (int32_t)(j0 + 16) < (int32_t)L;
        for (int r = 0; r < R; r++) {
            a0[r] = vsel(in0, a0[r], bc(-INFINITY));
            a1[r] = vsel(in1, a1[r], bc(-INFINITY));
        }
    }
    for (int r = 0; r < R; r++) {
        st(s + r * lp + j0, a0[r]);
        m[r] = vmax(m[r], a0[r]);
        if (J == 2) {
            st(s + r * lp + j0 + 16, a1[r]);
            m[r] = vmax(m[r], a1[r]);
        }
    }
}

static void one_head(const float *qkv, float *out, int64_t r0, int64_t L, int64_t h, int64_t d,
                     int64_t hidden, float scale, float *scratch) {
    const int64_t S = 3 * hidden;
    const int64_t lp = round_up(L, 16), lr = round_up(L, R);
    float *kt = scratch, *vp = kt + d * round_up(L, 32), *s = vp + round_up(L, 32) * d, *inv = s + lr * lp;
    const float *K = qkv + r0 * S + hidden + h * d, *V = qkv + r0 * S + 2 * hidden + h * d;
    for (int64_t j = 0; j < L; j++) {
        const float *kr = K + j * S;
        for (int64_t c = 0; c < d; c++) kt[c * lp + j] = kr[c] * scale;
        for (int64_t c = 0; c < d; c += 16) st(vp + j * d + c, ld(V + j * S + c));
    }
    for (int64_t c = 0; c < d; c++)
        for (int64_t j = L; j < lp; j++) kt[c * lp + j] = 0.0f;
    for (int64_t i0 = 0; i0 < L; i0 += R) {
        const float *q[R];
        v16 m[R];
        for (int r = 0; r < R; r++) {
            q[r] = qkv + (r0 + (i0 + r < L ? i0 + r : L - 1)) * S + h * d; /* past L: repeat the last */
            m[r] = bc(-INFINITY);
        }
        float *si = s + i0 * lp;
        int64_t j0 = 0;
        for (; j0 + 32 <= lp; j0 += 32) scores(q, kt, lp, d, j0, 2, L, si, m);
        if (j0 < lp) scores(q, kt, lp, d, j0, 1, L, si, m);
        for (int r = 0; r < R; r++) {
            float *sr = si + r * lp;
            v16 sum = bc(0.0f), mb = bc(hmax(m[r]));
            for (int64_t j = 0; j < lp; j += 16) {
                v16 e = vexp(ld(sr + j) - mb);
                if (j + 16 > L) e = vsel(LANES + (int32_t)j < (int32_t)L, e, bc(0.0f));
                st(sr + j, e);
                sum += e;
            }
            inv[i0 + r] = 1.0f / hsum(sum);
        }
    }
    for (int64_t i0 = 0; i0 < L; i0 += R) {
        const float *si = s + i0 * lp;
        for (int64_t c0 = 0; c0 < d; c0 += 32) {
            const int two = d - c0 >= 32;
            v16 o0[R], o1[R];
            for (int r = 0; r < R; r++) o0[r] = o1[r] = bc(0.0f);
            for (int64_t j = 0; j < L; j++) {
                const float *vr = vp + j * d + c0;
                v16 v0 = ld(vr), v1 = two ? ld(vr + 16) : bc(0.0f);
                for (int r = 0; r < R; r++) {
                    v16 p = bc(si[r * lp + j]);
                    o0[r] += p * v0;
                    o1[r] += p * v1;
                }
            }
            for (int r = 0; r < R && i0 + r < L; r++) {
                float *dst = out + (r0 + i0 + r) * hidden + h * d + c0;
                st(dst, o0[r] * bc(inv[i0 + r]));
                if (two) st(dst + 16, o1[r] * bc(inv[i0 + r]));
            }
        }
    }
}

typedef struct {
    const float *qkv;
    float *out;
    const int64_t *starts, *lens;
    int64_t heads, d, hidden, max_len;
    int64_t bounds[MAX_THREADS + 1]; /* worker k does items [bounds[k], bounds[k+1]); item = text*heads+head */
    int threads;
    int failed;
} call_t;

static void work(call_t *cl, int k) {
    size_t bytes = round_up((int64_t)(scratch_floats(cl->max_len, cl->d) * sizeof(float)), 64);
    float *scratch = aligned_alloc(64, bytes);
    if (scratch == NULL) {
        __atomic_store_n(&cl->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    const float scale = 1.0f / sqrtf((float)cl->d);
    for (int64_t w = cl->bounds[k]; w < cl->bounds[k + 1]; w++) {
        int64_t t = w / cl->heads, h = w % cl->heads;
        if (cl->lens[t] > 0)
            one_head(cl->qkv, cl->out, cl->starts[t], cl->lens[t], h, cl->d, cl->hidden, scale, scratch);
    }
    free(scratch);
}

/* the pool (a forked child resets it: the parent's threads do not exist there) */
static pthread_mutex_t call_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t go = PTHREAD_COND_INITIALIZER, done = PTHREAD_COND_INITIALIZER;
static int pool_size = 1, pending = 0;
static long generation = 0;
static call_t *current = NULL;
static long born[MAX_THREADS]; /* generation when worker k was started */

static void *worker(void *arg) {
    int k = (int)(intptr_t)arg;
    pthread_mutex_lock(&mu);
    long seen = born[k];
    pthread_mutex_unlock(&mu);
    for (;;) {
        pthread_mutex_lock(&mu);
        while (generation == seen) pthread_cond_wait(&go, &mu);
        seen = generation;
        call_t *cl = current;
        pthread_mutex_unlock(&mu);
        if (k < cl->threads) work(cl, k);
        pthread_mutex_lock(&mu);
        if (--pending == 0) pthread_cond_signal(&done);
        pthread_mutex_unlock(&mu);
    }
    return NULL;
}

static void child_after_fork(void) {
    pthread_mutex_init(&call_mu, NULL);
    pthread_mutex_init(&mu, NULL);
    pthread_cond_init(&go, NULL);
    pthread_cond_init(&done, NULL);
    pool_size = 1;
    pending = 0;
    current = NULL;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static void init_once(void) { pthread_atfork(NULL, NULL, child_after_fork); }

/* 0 on success; 1 bad arguments; 2 out of memory (out is then incomplete) */
int seal_attention(const float *qkv, float *out, const int64_t *starts, const int64_t *lens, int64_t n,
                   int64_t heads, int64_t d, int64_t hidden, int threads) {
    if (d <= 0 || d % 16 || heads * d != hidden || n < 0 || threads < 1) return 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    pthread_once(&once, init_once);
    static call_t cl; /* one call at a time (call_mu), so the workers may point at it */
    pthread_mutex_lock(&call_mu);
    while (pool_size < threads) {
        pthread_t t;
        pthread_mutex_lock(&mu);
        born[pool_size] = generation;
        pthread_mutex_unlock(&mu);
        if (pthread_create(&t, NULL, worker, (void *)(intptr_t)pool_size)) break;
        pthread_detach(t);
        pool_size++;
    }
    if (threads > pool_size) threads = pool_size;
    double total = 0;
    int64_t max_len = 0;
    for (int64_t t = 0; t < n; t++) {
        total += (double)lens[t] * (double)(lens[t] + 16);
        if (lens[t] > max_len) max_len = lens[t];
    }
    total *= (double)heads;
    cl = (call_t){.qkv = qkv, .out = out, .starts = starts, .lens = lens, .heads = heads, .d = d,
                  .hidden = hidden, .max_len = max_len, .threads = threads, .failed = 0};
    int64_t w = 0;
    double acc = 0;
    for (int k = 0; k < threads; k++) { /* contiguous shares of about equal cost (L^2 + 16 L) */
        double goal = total * (k + 1) / threads;
        while (w < n * heads && (acc < goal || k == threads - 1)) {
            int64_t L = lens[w / heads];
            acc += (double)L * (double)(L + 16);
            w++;
        }
        cl.bounds[k + 1] = w;
    }
    if (threads > 1) {
        pthread_mutex_lock(&mu);
        current = &cl;
        pending = pool_size - 1;
        generation++;
        pthread_cond_broadcast(&go);
        pthread_mutex_unlock(&mu);
    }
    work(&cl, 0);
    if (threads > 1) {
        pthread_mutex_lock(&mu);
        while (pending > 0) pthread_cond_wait(&done, &mu);
        pthread_mutex_unlock(&mu);
    }
    int rc = cl.failed ? 2 : 0;
    pthread_mutex_unlock(&call_mu);
    return rc;
}

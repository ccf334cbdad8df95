// The loops around a register tile, shared by the AVX-512 and AVX2 paths
// (included once by each, after it defines ISA, MR, NR, VEC, the vector
// operations and `tile_masks`). Not a header to include elsewhere.
//
// Order of work: k is cut into pieces that never reorder a chain: pieces of at most
// KC, about equal, for a single chain (each later piece continues the chain from C's
// stored value, exact in fp32), or the segments themselves (each a chain of
// its own, added to C). Per piece: panels of B, each meeting every tile of
// rows of A (see `piece`).

#define KC 256

enum { START_ZERO = 0, START_FROM_C = 1, ADD_TO_C = 2 };

// Loops over a tile's rows and vectors unroll completely whatever the
// optimisation level SwiftPM compiles C with, so that the accumulators live
// in registers (a loop left rolled keeps them on the stack: 2× slower).
#define UNROLL _Pragma("clang loop unroll(full)")

// One tile of mr rows × (WIDTH·nv) columns over kc values of k: A(i, p) at
// a[p·astep + i·istride], B(p, j) at b[p·ldb + j], C at c (row stride ldc);
// the last vector's lanes masked by `last`. mr, nv and istride are
// constants at every call site, so the accumulators live in registers.
ISA __attribute__((always_inline)) static inline void
tile(const float *a, long astep, const long istride, const float *b, long ldb, float *c, long ldc,
     long kc, int mode, const int mr, const int nv, const int partial, const MASK last) {
    VEC acc[NV][MR];
    MASK mask[NV];
    UNROLL for (int v = 0; v < nv; v++) mask[v] = v == nv - 1 && partial ? last : FULL_MASK;
    UNROLL for (int i = 0; i < mr; i++)
        UNROLL for (int v = 0; v < nv; v++)
            acc[v][i] = mode == START_FROM_C ? LOAD(c + i * ldc + v * WIDTH, mask[v], v == nv - 1 && partial) : ZERO();
    for (long p = 0; p < kc; p++, a += astep, b += ldb) {
        VEC bv[NV];
        UNROLL for (int v = 0; v < nv; v++) bv[v] = LOAD(b + v * WIDTH, mask[v], v == nv - 1 && partial);
        UNROLL for (int i = 0; i < mr; i++) {
            const VEC ai = BROADCAST(a + i * istride);
            UNROLL for (int v = 0; v < nv; v++) acc[v][i] = FMA(ai, bv[v], acc[v][i]);
        }
    }
    UNROLL for (int i = 0; i < mr; i++) {
        UNROLL for (int v = 0; v < nv; v++) {
            float *cv = c + i * ldc + v * WIDTH;
            const int masked = v == nv - 1 && partial;
            STORE(cv, mode == ADD_TO_C ? ADD(LOAD(cv, mask[v], masked), acc[v][i]) : acc[v][i], mask[v], masked);
        }
    }
}

// The row count and vector count as constants.
#define TILE_NV(rows, istride, partial)                                                                 \
    if (nv == 2) tile(at, astep, istride, b, ldb, c, ldc, kc, mode, rows, 2, partial, last);           \
    else tile(at, astep, istride, b, ldb, c, ldc, kc, mode, rows, 1, partial, last);
#define TILE_CASE(rows, istride)                                                                       \
    case rows:                                                                                         \
        if (partial) { TILE_NV(rows, istride, 1) } else { TILE_NV(rows, istride, 0) }                  \
        break;

// Rows of the tile that starts with `remaining` rows left: MR while at least
// two tiles' worth remain, else the rest in one tile or two about equal
// ones (16 rows as 8 + 8 rather than 12 + 4).
static inline int tile_rows(long remaining) {
    if (remaining >= 2 * MR || remaining <= MR) return remaining < MR ? (int)remaining : MR;
    return (int)((remaining + 1) / 2);
}

// Every tile of C for one piece of k (kc values from k0): panels of NR
// columns outside, tiles of rows inside, A read where it lies (packing it,
// a transposing copy, cost more than it saved). When more than one tile
// meets a panel of B, the panel is packed contiguous first, so that it
// stays in L1 (B's own rows may lie a power of two apart and fall into a few
// cache sets).
ISA static void piece(const backprop_gemm *g, float *panel, long k0, long kc, int mode) {
    const long ldc = g->ldc, astep = g->a_column_stride, istride = g->a_row_stride;
    // (Panels stored [k][ldb] are contiguous enough already.)
    const int pack_b = g->m > MR && panel && !g->b_panel_width;
    for (long j0 = 0; j0 < g->n; j0 += NR) {
        const long width = g->n - j0 < NR ? g->n - j0 : NR;
        const int nv = (int)((width + WIDTH - 1) / WIDTH);
        const int partial = width % WIDTH != 0;
        const MASK last = tail_mask((int)(width - WIDTH * (nv - 1)));
        const float *b = g->b_panel_width ? g->b + (j0 / g->b_panel_width) * g->b_panel_stride + j0 % g->b_panel_width
                                          : g->b + j0;
        b += k0 * g->ldb;
        long ldb = g->ldb;
        if (pack_b) {
            for (long p = 0; p < kc; p++)
                for (long j = 0; j < width; j++) panel[p * NR + j] = b[p * ldb + j];
            b = panel;
            ldb = NR;
        }
        for (long i0 = 0, mr; i0 < g->m; i0 += mr) {
            mr = tile_rows(g->m - i0);
            const float *at = g->a + i0 * istride + k0 * astep;
            float *c = g->c + i0 * ldc + j0;
            if (istride == 1) {
                switch (mr) { ROW_CASES(1) }
            } else {
                switch (mr) { ROW_CASES(istride) }
            }
        }
    }
}

ISA static void drive(const backprop_gemm *g) {
    if (g->m <= 0 || g->n <= 0) return;
    if (g->k <= 0) {
        // No products: C is 0, or stays as it is.
        if (!g->accumulate)
            for (long i = 0; i < g->m; i++)
                for (long j = 0; j < g->n; j++) g->c[i * g->ldc + j] = 0;
        return;
    }
    const int single = g->segment >= g->k;
    // Pieces of a single chain about equal (784 as 4 × 196, not 3 × 256 + 16).
    const long length = single ? (g->k + (g->k + KC - 1) / KC - 1) / ((g->k + KC - 1) / KC) : g->segment;
    // One panel of B, packed [k][NR]; out of memory, B is read where it
    // lies (slower, the same bits).
    float *panel = backprop_thread_buffer((size_t)(NR * length));
    for (long k0 = 0; k0 < g->k; k0 += length) {
        const long kc = g->k - k0 < length ? g->k - k0 : length;
        const int mode = k0 == 0 ? (g->accumulate ? START_FROM_C : START_ZERO) : (single ? START_FROM_C : ADD_TO_C);
        piece(g, panel, k0, kc, mode);
    }
}

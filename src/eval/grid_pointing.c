/* Grid pointing game: composite selection and the scores of one map. */
#include "eval/grid_pointing.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/argsort.h"
#include "core/error.h"
#include "explain/saliency.h"

static int in_tile(int i, int h, int w, int tile)
{
    int th = h / 2, tw = w / 2, y = i / w, x = i % w, y0 = (tile / 2) * th, x0 = (tile % 2) * tw;
    return y >= y0 && y < y0 + th && x >= x0 && x < x0 + tw;
}

nm_status nm_grid_score_map(const float *map, int h, int w, int tile, nm_grid_score *out, nm_error *err)
{
    if (tile < 0 || tile >= NM_GRID_TILES || h < 2 || w < 2)
        return nm_fail(err, NM_ERR_ARG, "grid pointing: tile %d of a %d x %d map", tile, h, w);
    int n = h * w, top = n / 4, *order = malloc(sizeof(int) * (size_t)n);
    if (!order || !nm_argsort(map, n, 1, order)) {
        free(order);
        return nm_fail(err, NM_ERR_MEMORY, "grid pointing: out of memory");
    }
    int inside = 0;
    for (int j = 0; j < top; j++) inside += in_tile(order[j], h, w, tile);
    out->top_share = (double)inside / top;
    out->hit = in_tile(order[0], h, w, tile);   /* argsort keeps index order among ties: the first maximum */
    double pos = 0, pos_tile = 0;
    for (int i = 0; i < n; i++)
        if (map[i] > 0) pos += map[i], pos_tile += in_tile(i, h, w, tile) ? map[i] : 0;
    out->positive_share = pos > 0 ? pos_tile / pos : NAN;
    free(order);
    return NM_OK;
}

int nm_grid_pick(const int *cls, int n, int want, uint64_t seed, int *out)
{
    int *pool = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1)), made = 0;
    if (!pool) return 0;
    for (int i = 0; i < n; i++) pool[i] = i;
    uint64_t state = seed;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(sal_splitmix64(&state) % (uint64_t)(i + 1));
        int t = pool[i];
        pool[i] = pool[j], pool[j] = t;
    }
    int left = n;   /* pool[0..left) are unused, in shuffled order */
    while (made < want) {
        int pick[NM_GRID_TILES], k = 0;
        for (int j = 0; j < left && k < NM_GRID_TILES; j++) {
            int dup = 0;
            for (int q = 0; q < k; q++) dup |= cls[pool[pick[q]]] == cls[pool[j]];
            if (!dup) pick[k++] = j;
        }
        if (k < NM_GRID_TILES) break;
        for (int t = 0; t < NM_GRID_TILES; t++) out[made * NM_GRID_TILES + t] = pool[pick[t]];
        for (int t = NM_GRID_TILES - 1; t >= 0; t--)   /* remove, keeping the order of the rest */
            memmove(pool + pick[t], pool + pick[t] + 1, sizeof(int) * (size_t)(left - pick[t] - 1)), left--;
        made++;
    }
    free(pool);
    return made;
}

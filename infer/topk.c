/* topk.c -- partial selection of the K best scores (no full sort). */
#include "topk.h"

/* Whether score a at index ia ranks before b at ib (higher first, then lower index). */
static int better(float a, int32_t ia, float b, int32_t ib) {
    return a > b || (a == b && ia < ib);
}

int tr_topk(const float *score, const int32_t *idx, int n, int k, int32_t *out) {
    int m = 0;
    for (int i = 0; i < n; i++) {
        int32_t p = idx ? idx[i] : i;
        float v = score[p];
        if (m == k && !better(v, p, score[out[m - 1]], out[m - 1])) continue;
        int j = m < k ? m++ : m - 1;   /* insertion into the sorted prefix */
        while (j > 0 && better(v, p, score[out[j - 1]], out[j - 1])) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = p;
    }
    return m;
}


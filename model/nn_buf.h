/* nn_buf.h -- growable scratch buffers for the model's activations (private to model/).
 *
 * A buf is reused across calls: need() grows it when a batch is larger than any before and
 * otherwise hands back the same memory, so steady-state training and serving allocate
 * nothing. Contents are not preserved across growth: every user rewrites its buffer.
 */
#ifndef NN_BUF_H
#define NN_BUF_H

#include "nb_err.h"

#include <stddef.h>
#include <stdlib.h>

typedef struct {
    void *p;
    size_t cap;
} buf;

/* Returns b's memory grown to at least `bytes` (contents not preserved). Aborts on
 * allocation failure (nb_xmalloc). b keeps owning the memory (free(b->p) releases it). */
static inline void *need(buf *b, size_t bytes) {
    if (bytes > b->cap) {
        free(b->p);
        b->p = nb_xmalloc(bytes ? bytes : 1);
        b->cap = bytes;
    }
    return b->p;
}

#endif

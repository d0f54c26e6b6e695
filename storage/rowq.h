/* rowq.h -- a bounded queue of row batches between two threads: the import's parser (CSV
 * reading and validation) and its SQLite writer, so that the two halves of the work run on
 * two cores. A fixed pool of batches circulates: the producer takes a free one, fills it and
 * pushes it; the consumer pops it in FIFO order, inserts it and releases it. */
#ifndef ST_ROWQ_H
#define ST_ROWQ_H

#include "nb_err.h"

#include <stdint.h>

#define ST_ROWQ_BATCH 8192

enum { ST_ROW_ORDER = 1, ST_ROW_ITEM = 2, ST_ROW_END = 3 };

typedef struct {
    int kind;                      /* ST_ROW_* */
    int file;                      /* which input file (the importer's index) */
    int n;                         /* rows in v / line */
    int32_t v[ST_ROWQ_BATCH][8];   /* the row's values, meaning fixed by kind */
    long long line[ST_ROWQ_BATCH]; /* CSV line of each row, for messages */
    int rc;                        /* ST_ROW_END: the producer's result */
    char err[NB_ERRLEN];           /* ST_ROW_END: its message when rc != NB_OK */
} st_rowbatch;

typedef struct st_rowq st_rowq;

/* A queue with a pool of nbatches batches (>= 2). Owned by the caller; st_rowq_free. */
st_rowq *st_rowq_new(int nbatches);
/* Producer: a free batch (n = 0), waiting if none; NULL once the consumer called stop. */
st_rowbatch *st_rowq_get_free(st_rowq *q);
/* Producer: hands a filled batch to the consumer. */
void st_rowq_push(st_rowq *q, st_rowbatch *b);
/* Consumer: the oldest pushed batch, waiting if none. */
st_rowbatch *st_rowq_pop(st_rowq *q);
/* Consumer: returns a batch to the pool. */
void st_rowq_release(st_rowq *q, st_rowbatch *b);
/* Consumer: gives up; a producer waiting in (or later calling) st_rowq_get_free gets NULL. */
void st_rowq_stop(st_rowq *q);
/* Frees the queue and all its batches (no thread may be using it). */
void st_rowq_free(st_rowq *q);

#endif

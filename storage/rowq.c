/* rowq.c -- see rowq.h. One mutex, two condition variables, two rings of pointers. */
#include "rowq.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>

/* A ring of up to cap batch pointers: n of them, the oldest at slot[head]. */
typedef struct {
    st_rowbatch **slot;
    int n, head;
} ring;

struct st_rowq {
    pthread_mutex_t mu;
    pthread_cond_t has_free, has_full;
    int cap;
    ring free_, full;
    int stopped;
    st_rowbatch *pool;
};

/* Removes and returns the oldest pointer of a non-empty ring of capacity cap. */
static st_rowbatch *ring_take(ring *r, int cap) {
    assert(r->n > 0);
    st_rowbatch *b = r->slot[r->head];
    r->head = (r->head + 1) % cap;
    r->n--;
    return b;
}

/* Appends b to a ring of capacity cap that is not full. */
static void ring_put(ring *r, int cap, st_rowbatch *b) {
    assert(r->n < cap);
    r->slot[(r->head + r->n) % cap] = b;
    r->n++;
}

/* See rowq.h: all batches start on the free ring. */
st_rowq *st_rowq_new(int nbatches) {
    assert(nbatches >= 2);
    st_rowq *q = nb_xcalloc(1, sizeof *q);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->has_free, NULL);
    pthread_cond_init(&q->has_full, NULL);
    q->cap = nbatches;
    /* Not zeroed: every field is written before it is read (get_free sets n, the producer
     * kind and file), and the ~320 KiB batches are only touched as far as they are filled. */
    q->pool = nb_xmalloc((size_t)nbatches * sizeof *q->pool);
    q->free_.slot = nb_xmalloc((size_t)nbatches * sizeof *q->free_.slot);
    q->full.slot = nb_xmalloc((size_t)nbatches * sizeof *q->full.slot);
    for (int i = 0; i < nbatches; i++) q->free_.slot[i] = &q->pool[i];
    q->free_.n = nbatches;
    return q;
}

/* See rowq.h: waits for a free batch unless stopped. */
st_rowbatch *st_rowq_get_free(st_rowq *q) {
    pthread_mutex_lock(&q->mu);
    while (!q->stopped && q->free_.n == 0) pthread_cond_wait(&q->has_free, &q->mu);
    st_rowbatch *b = NULL;
    if (!q->stopped) {
        b = ring_take(&q->free_, q->cap);
        b->n = 0;
    }
    pthread_mutex_unlock(&q->mu);
    return b;
}

/* See rowq.h: appends b to the full ring and wakes the consumer. */
void st_rowq_push(st_rowq *q, st_rowbatch *b) {
    pthread_mutex_lock(&q->mu);
    ring_put(&q->full, q->cap, b);
    pthread_cond_signal(&q->has_full);
    pthread_mutex_unlock(&q->mu);
}

/* See rowq.h: waits for and removes the oldest full batch. */
st_rowbatch *st_rowq_pop(st_rowq *q) {
    pthread_mutex_lock(&q->mu);
    while (q->full.n == 0) pthread_cond_wait(&q->has_full, &q->mu);
    st_rowbatch *b = ring_take(&q->full, q->cap);
    pthread_mutex_unlock(&q->mu);
    return b;
}

/* See rowq.h: returns b to the free ring and wakes the producer. */
void st_rowq_release(st_rowq *q, st_rowbatch *b) {
    pthread_mutex_lock(&q->mu);
    ring_put(&q->free_, q->cap, b);
    pthread_cond_signal(&q->has_free);
    pthread_mutex_unlock(&q->mu);
}

/* See rowq.h: wakes a waiting producer, which then gets NULL. */
void st_rowq_stop(st_rowq *q) {
    pthread_mutex_lock(&q->mu);
    q->stopped = 1;
    pthread_cond_broadcast(&q->has_free);
    pthread_mutex_unlock(&q->mu);
}

/* See rowq.h: destroys the synchronisation objects and frees the pool. Safe on NULL. */
void st_rowq_free(st_rowq *q) {
    if (!q) return;
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->has_free);
    pthread_cond_destroy(&q->has_full);
    free(q->pool);
    free(q->free_.slot);
    free(q->full.slot);
    free(q);
}

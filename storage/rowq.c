/* rowq.c -- see rowq.h. One mutex, two condition variables, two rings of pointers. */
#include "rowq.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>

struct st_rowq {
    pthread_mutex_t mu;
    pthread_cond_t has_free, has_full;
    int cap;
    st_rowbatch **free_, **full;  /* rings of cap pointers */
    int nfree, free_head;
    int nfull, full_head;
    int stopped;
    st_rowbatch *pool;
};

/* See rowq.h: all batches start on the free ring. */
st_rowq *st_rowq_new(int nbatches) {
    assert(nbatches >= 2);
    st_rowq *q = nb_xcalloc(1, sizeof *q);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->has_free, NULL);
    pthread_cond_init(&q->has_full, NULL);
    q->cap = nbatches;
    q->pool = nb_xcalloc((size_t)nbatches, sizeof *q->pool);
    q->free_ = nb_xmalloc((size_t)nbatches * sizeof *q->free_);
    q->full = nb_xmalloc((size_t)nbatches * sizeof *q->full);
    for (int i = 0; i < nbatches; i++) q->free_[i] = &q->pool[i];
    q->nfree = nbatches;
    return q;
}

/* See rowq.h: waits for a free batch unless stopped. */
st_rowbatch *st_rowq_get_free(st_rowq *q) {
    pthread_mutex_lock(&q->mu);
    while (!q->stopped && q->nfree == 0) pthread_cond_wait(&q->has_free, &q->mu);
    st_rowbatch *b = NULL;
    if (!q->stopped) {
        b = q->free_[q->free_head];
        q->free_head = (q->free_head + 1) % q->cap;
        q->nfree--;
        b->n = 0;
    }
    pthread_mutex_unlock(&q->mu);
    return b;
}

/* See rowq.h: appends b to the full ring and wakes the consumer. */
void st_rowq_push(st_rowq *q, st_rowbatch *b) {
    pthread_mutex_lock(&q->mu);
    assert(q->nfull < q->cap);
    q->full[(q->full_head + q->nfull) % q->cap] = b;
    q->nfull++;
    pthread_cond_signal(&q->has_full);
    pthread_mutex_unlock(&q->mu);
}

/* See rowq.h: waits for and removes the oldest full batch. */
st_rowbatch *st_rowq_pop(st_rowq *q) {
    pthread_mutex_lock(&q->mu);
    while (q->nfull == 0) pthread_cond_wait(&q->has_full, &q->mu);
    st_rowbatch *b = q->full[q->full_head];
    q->full_head = (q->full_head + 1) % q->cap;
    q->nfull--;
    pthread_mutex_unlock(&q->mu);
    return b;
}

/* See rowq.h: returns b to the free ring and wakes the producer. */
void st_rowq_release(st_rowq *q, st_rowbatch *b) {
    pthread_mutex_lock(&q->mu);
    assert(q->nfree < q->cap);
    q->free_[(q->free_head + q->nfree) % q->cap] = b;
    q->nfree++;
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
    free(q->free_);
    free(q->full);
    free(q);
}

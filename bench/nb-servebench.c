/* nb-servebench -- CPU cost of one /recommend, without HTTP or a load generator.
 *
 *   nb-servebench --db FILE --model FILE [--requests N] [--seed S] [--basket threshold|expected-f1]
 *
 * Opens the engine exactly as nb-serve does (srv_engine_open: start-up time reported), then
 * calls srv_engine_recommend on this one thread for N users drawn (nb_rng, seed S) from the
 * users with history, and prints the thread CPU time per request and the wall time. CPU time
 * of one thread is far less sensitive to the other processes on a shared machine than
 * requests/s from wrk; for load-independent figures run it under
 * valgrind --tool=callgrind (instructions per request). A non-200 answer is an error.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crc32.h"
#include "nb_err.h"
#include "nb_flags.h"
#include "rng.h"
#include "srv_engine.h"
#include "store.h"

/* Seconds on the given clock. */
static double now(clockid_t clk) {
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Reads the ids of the users with at least one order with items into *ids (caller frees).
 * Returns the count, or -1 with a message on stderr. */
static int load_users(const char *db_path, int32_t **ids) {
    sqlite3 *db = NULL;
    char err[NB_ERRLEN];
    int n = 0;
    *ids = NULL;
    int rc = st_open(&db, db_path, 1, err, sizeof err);
    if (rc == NB_OK) rc = st_user_ids(db, 1, ids, &n, err, sizeof err);
    st_close(db);
    if (rc) {
        fprintf(stderr, "nb-servebench: %s\n", err);
        return -1;
    }
    if (n == 0) {
        fprintf(stderr, "nb-servebench: %s: no user has history\n", db_path);
        return -1;
    }
    return n;
}

typedef struct {
    const char *db, *model;
    int requests, basket;
    unsigned long long seed;
} servebench_flags;

static const char *const baskets[] = {"threshold", "expected-f1", NULL}; /* SRV_BASKET_* */

#define O(field) offsetof(servebench_flags, field)
static const nb_flag FLAGS[] = {
    {"db", NB_F_STR, O(db), 0, 0, "FILE", "", "the store", NB_F_REQUIRED, NULL, NULL},
    {"model", NB_F_STR, O(model), 0, 0, "FILE", "", "the weight file", NB_F_REQUIRED, NULL, NULL},
    {"requests", NB_F_INT, O(requests), 1, 1e9, "N", "2000", "requests timed", 0, NULL, NULL},
    {"seed", NB_F_U64, O(seed), 0, 0, "S", "1", "random seed of the user draw", 0, NULL, NULL},
    {"basket", NB_F_CHOICE, O(basket), 0, 0, "MODE", "threshold", "threshold | expected-f1", 0,
     baskets, NULL},
};
#undef O

int main(int argc, char **argv) {
    servebench_flags f = {.requests = 2000, .seed = 1, .basket = SRV_BASKET_THRESHOLD};
    int ex = nb_flags_main("nb-servebench",
                           "usage: nb-servebench --db FILE --model FILE "
                           "[--requests N] [--seed S] [--basket threshold|expected-f1]\n",
                           FLAGS, NB_FLAGS_N(FLAGS), &f, argc, argv);
    if (ex >= 0) return ex;
    const char *db = f.db, *model = f.model;
    int nreq = f.requests, mode = f.basket;
    unsigned long long seed = f.seed;

    int32_t *users = NULL;
    int nu = load_users(db, &users);
    if (nu < 0) return 1;
    char err[NB_ERRLEN];
    srv_engine *e = NULL;
    double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_THREAD_CPUTIME_ID);
    if (srv_engine_open(&e, db, model, err, sizeof err)) {
        fprintf(stderr, "nb-servebench: %s\n", err);
        free(users);
        return 1;
    }
    double w1 = now(CLOCK_MONOTONIC), c1 = now(CLOCK_THREAD_CPUTIME_ID);
    printf("start-up (srv_engine_open): %.1f ms wall, %.1f ms CPU\n", (w1 - w0) * 1e3,
           (c1 - c0) * 1e3);

    /* one warm-up request creates the thread context (connection, statements, clone) */
    nb_rng r;
    nb_rng_seed(&r, seed);
    int status = 0, bad = 0;
    size_t bytes = 0;
    uint32_t digest = 0; /* CRC-32 of every response body: equal digests, equal answers */
    for (int i = -1; i < nreq; i++) {
        if (i == 0) {
            w0 = now(CLOCK_MONOTONIC);
            c0 = now(CLOCK_THREAD_CPUTIME_ID);
        }
        srv_request rq = {users[nb_rng_below(&r, (uint64_t)nu)], SRV_K_DEFAULT, mode};
        char *body = NULL;
        size_t len = 0;
        status = srv_engine_recommend(e, &rq, &body, &len);
        if (status != 200) {
            fprintf(stderr, "nb-servebench: user %d: HTTP %d: %.*s\n", rq.user_id, status, (int)len,
                    body ? body : "");
            bad++;
        }
        bytes += len;
        if (body) digest = nb_crc32(digest, body, len);
        free(body);
    }
    w1 = now(CLOCK_MONOTONIC);
    c1 = now(CLOCK_THREAD_CPUTIME_ID);
    printf("%d requests over %d users (%s basket): %.3f ms CPU/request, %.3f ms wall/request, "
           "%.0f bytes/response, %d errors, responses digest %08x\n",
           nreq, nu, mode ? "expected-f1" : "threshold", (c1 - c0) * 1e3 / nreq,
           (w1 - w0) * 1e3 / nreq, (double)bytes / (nreq + 1), bad, digest);
    long calls, cands, surv, fb;
    srv_engine_prune_stats(e, &calls, &cands, &surv, &fb);
    printf("candidate pruning: %ld requests scored, mean %.1f candidates, %.1f scored exactly "
           "(%.1f%%), %ld fell back to all\n",
           calls, calls ? (double)cands / calls : 0, calls ? (double)surv / calls : 0,
           cands ? 100.0 * surv / cands : 0, fb);
    srv_engine_free(e);
    free(users);
    return bad ? 1 : 0;
}

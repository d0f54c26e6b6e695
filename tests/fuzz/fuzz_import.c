/* fuzz_import.c -- libFuzzer harness for the importer's row validation (storage/import.c:
 * st_import end to end into a store under /dev/shm). The input holds up to four files
 * separated by lines "@@": orders.csv, order_products__prior.csv, order_products__train.csv
 * (absent when the input has fewer parts) and products.csv; aisles.csv and departments.csv
 * are fixed (aisles 1-3, departments 1-2). Checked beyond memory safety: the result is one
 * of st_import's documented codes, a failed import leaves no store and no temporary file. */
#include <stdint.h>

#include "fuzz_util.h"
#include "import.h"
#include "nb_err.h"

static const char *const files[] = {"orders.csv", "order_products__prior.csv",
                                    "order_products__train.csv", "products.csv"};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    char path[300];
    snprintf(path, sizeof path, "%s/aisles.csv", fuzz_dir());
    const char *a = "aisle_id,aisle\n1,fresh fruits\n2,tea\n3,\"soup, broth\"\n";
    fuzz_write(path, a, strlen(a));
    snprintf(path, sizeof path, "%s/departments.csv", fuzz_dir());
    const char *d = "department_id,department\n1,produce\n2,beverages\n";
    fuzz_write(path, d, strlen(d));
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[300], db[300], err[NB_ERRLEN];
    const char *p = (const char *)data, *end = p + size;
    for (int f = 0; f < 4; f++) {
        snprintf(path, sizeof path, "%s/%s", fuzz_dir(), files[f]);
        const char *sep = p ? memmem(p, (size_t)(end - p), "\n@@\n", 4) : NULL;
        const char *stop = sep ? sep + 1 : end;
        if (p)
            fuzz_write(path, p, (size_t)(stop - p));
        else if (f == 2)
            unlink(path); /* the optional train file absent */
        else
            fuzz_write(path, "", 0);
        p = sep ? sep + 4 : NULL;
    }
    snprintf(db, sizeof db, "%s/store.db", fuzz_dir());
    st_import_stats st;
    int rc = st_import(fuzz_dir(), NULL, db, 0, &st, err, sizeof err);
    if (rc != NB_OK && rc != NB_EFORMAT && rc != NB_ENOTFOUND && rc != NB_ENOMEM && rc != NB_EDB)
        abort();
    if (rc != NB_OK && access(db, F_OK) == 0) abort(); /* nothing left by a failure */
    unlink(db);
    return 0;
}

/* import.h -- load Instacart-layout CSV files into a new store, all or nothing.
 *
 * Files read from csv_dir: orders.csv, order_products__prior.csv, order_products__train.csv
 * (optional); from catalog_dir (csv_dir when NULL): products.csv, aisles.csv,
 * departments.csv. The store is built under a temporary name next to db_path and renamed
 * over it only when everything loaded and validated, so a failed import leaves a previous
 * store untouched and no stray files.
 *
 * Validation (each error names file, line and field): header names and column counts,
 * integer ids, unknown aisle/department of a product, unknown order or product of an item,
 * an item of an order with another eval_set than its file (prior / train), duplicate ids,
 * two orders of one user with the same order_number, duplicate (order_id,
 * add_to_cart_order), eval_set not prior/train/test, order_dow 0..6, order_hour_of_day 0..23,
 * days_since_prior_order 0..30 ("15.0" and "15" both accepted; empty is NULL), reordered 0/1.
 * The Instacart layout's rules: a product at most once per order (a duplicate row would
 * count twice in every repeat feature); per user at most one 'train' or 'test' order (not
 * both), and it is the user's last by order_number; rows may come in any order (a file not
 * grouped by order is checked too, at the cost of reading its scattered orders back).
 * Names (product_name, aisle, department) must be valid UTF-8 of at most ST_IMPORT_MAX_NAME
 * bytes without control characters (an embedded NUL included): they are rejected, not
 * repaired, so that what is served is exactly what the file says. Lines are bounded by
 * ST_CSV_MAX_RECORD (csv.h).
 */
#ifndef ST_IMPORT_H
#define ST_IMPORT_H

#include <stddef.h>

/* The longest name accepted, in bytes: the longest Instacart product name has 159. */
#define ST_IMPORT_MAX_NAME 1024

typedef struct {
    long long departments, aisles, products;
    long long users;
    long long orders, orders_prior, orders_train, orders_test;
    long long items, items_prior, items_train;
    double seconds;       /* wall time of the whole import, of which: */
    double seconds_rows;  /*   reading, validating and inserting every row */
    double seconds_index; /*   creating the secondary indexes */
    double seconds_fsync; /*   flushing the new file to disk and renaming it */
} st_import_stats;

/* Imports csv_dir (catalogue from catalog_dir, or csv_dir when NULL) into a new store that
 * replaces db_path, keeping db_path's permission bits (a first store gets 0666 & ~umask).
 * Temporary stores "<db_path>.tmp.<pid>" of processes that no longer exist (a kill -9) are
 * removed first (nb_tmp_sweep). progress != 0 prints rows and rows/s to stderr a few times a
 * second. Returns NB_OK and fills *out (may be NULL); or NB_ENOTFOUND (missing file),
 * NB_EFORMAT (bad input: "<file>:<line>: field <name>: ..."), NB_ENOMEM (the input is too
 * large for the memory: "<file>:<line>: out of memory ..."), NB_EDB, NB_EIO; on error db_path
 * is unchanged and no temporary file is left. */
int st_import(const char *csv_dir, const char *catalog_dir, const char *db_path, int progress,
              st_import_stats *out, char *err, size_t errlen);

#endif

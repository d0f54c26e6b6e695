-- schema.sql -- the nextbasket store. One SQLite database; every key is an integer.
-- Version 1 (PRAGMA user_version, checked on open by st_open: a mismatch is an error that
-- tells you to re-import). WAL journal mode is set when the store is created, so that a
-- reader (nb-serve) is never blocked by a writer (nb-train replacing the candidate table).

PRAGMA user_version = 1;

-- ---- catalogue --------------------------------------------------------------------------
CREATE TABLE departments (
    department_id INTEGER PRIMARY KEY,
    name          TEXT NOT NULL
);

CREATE TABLE aisles (
    aisle_id INTEGER PRIMARY KEY,
    name     TEXT NOT NULL
);

CREATE TABLE products (
    product_id    INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    aisle_id      INTEGER NOT NULL REFERENCES aisles(aisle_id),
    department_id INTEGER NOT NULL REFERENCES departments(department_id)
);

-- ---- users and their orders --------------------------------------------------------------
CREATE TABLE users (
    user_id INTEGER PRIMARY KEY
);

-- eval_set: 0 = prior (history), 1 = train (the next order, a target), 2 = test (a next
-- order whose items are withheld). days_since_prior_order is NULL for a first order.
CREATE TABLE orders (
    order_id               INTEGER PRIMARY KEY,
    user_id                INTEGER NOT NULL REFERENCES users(user_id),
    eval_set               INTEGER NOT NULL CHECK (eval_set IN (0, 1, 2)),
    order_number           INTEGER NOT NULL,
    order_dow              INTEGER NOT NULL CHECK (order_dow BETWEEN 0 AND 6),
    order_hour_of_day      INTEGER NOT NULL CHECK (order_hour_of_day BETWEEN 0 AND 23),
    days_since_prior_order INTEGER CHECK (days_since_prior_order BETWEEN 0 AND 30)
);
-- Hot query 1, "the last N orders of user U": a descending range scan of this index. It also
-- carries every other column, so a user's orders come from one contiguous range of it
-- without a lookup into the table per order (order ids are scattered over the table).
CREATE UNIQUE INDEX orders_by_user ON orders(user_id, order_number, order_id, eval_set, order_dow,
                                             order_hour_of_day, days_since_prior_order);

-- One row per product in an order. Clustered by (order_id, add_to_cart_order), so "the
-- items of order O in cart order" is one contiguous range (WITHOUT ROWID: no second b-tree).
CREATE TABLE order_items (
    order_id          INTEGER NOT NULL REFERENCES orders(order_id),
    add_to_cart_order INTEGER NOT NULL,
    product_id        INTEGER NOT NULL REFERENCES products(product_id),
    reordered         INTEGER NOT NULL CHECK (reordered IN (0, 1)),
    PRIMARY KEY (order_id, add_to_cart_order)
) WITHOUT ROWID;
-- Hot query 2, "all prior items of U", is orders_by_user joined to this primary key: the
-- user's orders come from the index, each order's items from one range of the table.

-- ---- what nb-train writes --------------------------------------------------------------
-- A registered weight file. hyper_params and metrics are JSON texts (the --report content).
-- AUTOINCREMENT: an id is never given twice, so a server still holding a retired model's
-- weights can never read a newer model's rows under its id (train/publish.h). nb-train
-- keeps the newest --keep-models models and deletes the others with all their rows.
CREATE TABLE models (
    model_id     INTEGER PRIMARY KEY AUTOINCREMENT,
    path         TEXT NOT NULL,          -- the weight file, named by its checksum
    checksum     TEXT NOT NULL,          -- the weight file's CRC-32, 8 hex digits
    hyper_params TEXT NOT NULL,
    metrics      TEXT NOT NULL,
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

-- Each user's candidate set for a model: product indices (positions in ascending
-- product_id order) encoded as in storage/candidates.h, n_candidates of them.
CREATE TABLE candidates (
    model_id     INTEGER NOT NULL REFERENCES models(model_id),
    user_id      INTEGER NOT NULL REFERENCES users(user_id),
    n_candidates INTEGER NOT NULL,
    encoded      BLOB NOT NULL,
    PRIMARY KEY (model_id, user_id)
);  -- a rowid table on purpose: rows of ~3 KB are too large for a WITHOUT ROWID b-tree

-- Global product statistics behind the repeat features TR_F_PROD_REORDER / TR_F_PROD_POP
-- (train/repfeat.h), counted once over the ST_PRIOR orders of the training history and
-- written with the model (same transaction as its models row) so that nb-serve uses the
-- exact numbers the model was trained with.
CREATE TABLE product_stats (
    model_id    INTEGER NOT NULL REFERENCES models(model_id),
    product_id  INTEGER NOT NULL REFERENCES products(product_id),
    n_items     INTEGER NOT NULL,        -- items of the product in prior orders
    n_reordered INTEGER NOT NULL,        -- of which flagged reordered
    PRIMARY KEY (model_id, product_id)
) WITHOUT ROWID;

-- ---- the ranking stage (issue 10; storage/rkstore.h) -----------------------------------
-- nb-train also creates these on an older store (CREATE TABLE IF NOT EXISTS), so stores
-- imported before them keep working; without a ranker_models row nb-serve serves the model.
-- storage/rkstore.c runs this file from the ranker_models statement below to its end
-- on such stores: keep everything below that line IF NOT EXISTS, and the section last.
-- The ranker file (<model>.xgb, infer/ranker.h) registered with its model in the same
-- transaction, and what ships: 'ranker', or the baseline that won on validation.
CREATE TABLE IF NOT EXISTS ranker_models (
    model_id INTEGER PRIMARY KEY REFERENCES models(model_id),
    path     TEXT NOT NULL,
    checksum TEXT NOT NULL,             -- the ranker file's CRC-32, 8 hex digits
    shipped  TEXT NOT NULL,
    -- TIFU-KNN's parameters behind the tifu_own / tifu_nbr features (tuned on validation
    -- users; infer/rkfeat.h tr_rk_tifu). NULL in rows written before they were stored:
    -- those rankers' features used the defaults (m 3, k 300, r_b 0.9, r_g 0.7, alpha 0.9).
    tifu_m     INTEGER,
    tifu_k     INTEGER,
    tifu_r_b   REAL,
    tifu_r_g   REAL,
    tifu_alpha REAL,
    -- When a baseline ships: its served score is 1 / (1 + exp(-(bl_cal_a + bl_cal_b * s)))
    -- of its raw score s (a logistic regression of the label on s over the ranker's training
    -- rows, infer/rkscore.h tr_rk_calibrate), so that the basket reads probabilities. NULL:
    -- the trees ship, or a row written before the calibration (raw scores).
    bl_cal_a   REAL,
    bl_cal_b   REAL
);
-- Product statistics of the ranker's features (infer/rkfeat.h tr_rk_pstats) over all
-- training users.
CREATE TABLE IF NOT EXISTS ranker_product_stats (
    model_id   INTEGER NOT NULL REFERENCES models(model_id),
    product_id INTEGER NOT NULL REFERENCES products(product_id),
    pop        REAL NOT NULL,
    reorder    REAL NOT NULL,
    rebuy      REAL NOT NULL,
    PRIMARY KEY (model_id, product_id)
) WITHOUT ROWID;
-- Each user's TIFU-KNN neighbour part, precomputed by nb-train so that nobody searches
-- neighbours per request: the user's own products and the top unseen ones. products is n
-- little-endian int32 product_ids, scores n little-endian float32.
CREATE TABLE IF NOT EXISTS neighbour_cands (
    model_id INTEGER NOT NULL REFERENCES models(model_id),
    user_id  INTEGER NOT NULL REFERENCES users(user_id),
    n        INTEGER NOT NULL,
    products BLOB NOT NULL,
    scores   BLOB NOT NULL,
    PRIMARY KEY (model_id, user_id)
);
-- Each user's ranking precomputed by nb-train with the functions nb-serve uses
-- (infer/prerank.h encodes ranking), so that /recommend reads one row instead of running the
-- ranking stage. Written only while the user's orders are those it was computed from;
-- POST /orders deletes the user's rows in the transaction that adds the order.
CREATE TABLE IF NOT EXISTS user_rankings (
    model_id INTEGER NOT NULL REFERENCES models(model_id),
    user_id  INTEGER NOT NULL REFERENCES users(user_id),
    ranking  BLOB NOT NULL,
    PRIMARY KEY (model_id, user_id)
);  -- a rowid table: rows of ~3 KB, as candidates

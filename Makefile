# nextbasket -- build, test, run.
#   make            build everything into bin/
#   make test       build and run the whole test suite (prints "N passed, N failed")
#   make asan       the same build and tests under AddressSanitizer + UBSan
#   make run        the main job on the built-in synthetic data set
#   make train      synthetic data -> import -> train -> model-vs-baselines table
#   make torch-fixtures   regenerate the committed PyTorch parity fixture (needs python3-torch)
#   make bench      the benchmark scripts under bench/
#   make fuzz       the libFuzzer harnesses (tests/fuzz/) under ASan + UBSan, each for
#                   FUZZ_SECONDS (default 60) or FUZZ_RUNS executions
#   make deps       install the missing Debian packages (deploy/install-deps.sh, apt-get as root)
# A plain make stops at once, naming the packages pkg-config cannot find; test, asan, run,
# train and bench install what is missing themselves first. Parallel (one job per core).
#   make MPI=1|0    force nb-train's data-parallel path (mpirun -np N bin/nb-train, train/dist.h)
#                   on or off; by default on when pkg-config finds ompi-c (make deps installs
#                   OpenMPI with the test packages). docs/SCALING.md.

CC      := gcc
PKGS    := libmicrohttpd libcjson sqlite3 openblas xgboost
PKG_CONFIG ?= pkg-config
BUILD   ?= build
BIN     ?= bin
SAN     ?=
WARN    := -std=c11 -Wall -Wextra -Werror
OPT     := -O2 -g
ifeq ($(SAN),1)
OPT     := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif

# Parallel by default (one job per core); an explicit -j on the command line wins. Only the
# top-level make sets it: recursive makes share its job server.
ifeq ($(MAKELEVEL),0)
MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 2)
endif
# Whole compiler messages per target, except under goals that run something in the
# foreground (their output must not wait for the end).
ifeq ($(filter run train bench test asan torch-fixtures fuzz,$(MAKECMDGOALS)),)
MAKEFLAGS += --output-sync=target
endif

# Goals that install the Debian packages themselves before building (deploy/install-deps.sh,
# then a recursive make), or need no compiler flags at all: the pkg-config check below is
# not made while parsing them, so that a fresh machine gets its packages installed first.
SELF_INSTALL_GOALS := deps test asan run train bench torch-fixtures clean
INSTALL_DEPS = deploy/install-deps.sh $(1) || { echo "make: deploy/install-deps.sh$(if $(1), $(1)) failed (message above): install those Debian packages as root, then retry" >&2; exit 1; }
ifneq ($(filter-out $(SELF_INSTALL_GOALS),$(or $(MAKECMDGOALS),all)),)
MISSING_PKGS := $(strip $(foreach p,$(PKGS),$(if $(shell $(PKG_CONFIG) --exists $(p) 2>/dev/null && echo y),,$(p))))
ifneq ($(MISSING_PKGS),)
$(error missing build dependencies (pkg-config cannot find: $(MISSING_PKGS)); run `make deps` to install them (deploy/install-deps.sh))
endif
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS))
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS))
endif

# The layers and what each may include: a header from a layer not listed fails to compile.
#   common <- model <- infer -> storage <- common;  train = infer + train;  server = infer +
#   server (never train/);  synth stands alone on common.  Tests, benchmarks and tools see
#   everything.
INC_common  := -Icommon
INC_model   := -Icommon -Imodel
INC_storage := -Icommon -Istorage
INC_synth   := -Icommon -Isynth
INC_infer   := -Icommon -Imodel -Istorage -Iinfer
INC_train   := $(INC_infer) -Itrain
INC_server  := $(INC_infer) -Iserver
INC_ALL     := -Icommon -Imodel -Istorage -Iinfer -Itrain -Iserver -Isynth -Itests
# model/ passes GCC vector types (common/nb_simd.h) between static inline helpers only,
# never between files, so GCC's -Wpsabi note on how such arguments are passed across
# compiler versions does not concern it (the note cannot be silenced by a pragma).
XFLAGS_model := -Wno-psabi
# The include path (and extra flags) of the source file whose path is $(1).
inc_of = $(or $(INC_$(firstword $(subst /, ,$(1)))),$(INC_ALL)) $(XFLAGS_$(firstword $(subst /, ,$(1))))
CPPFLAGS := -D_GNU_SOURCE $(PKG_CFLAGS)
CFLAGS   := $(WARN) $(OPT) -MMD -MP
LDLIBS   := $(PKG_LIBS) -lm -lpthread

# MPI: only train/dist.c includes mpi.h (-DNB_MPI); programs that never reach it do not get
# libmpi (--as-needed). A change of MPI rebuilds dist.o through the flag file. Decided only
# when building (not while parsing deps/test/clean: they install first, then make again).
ifneq ($(filter-out $(SELF_INSTALL_GOALS),$(or $(MAKECMDGOALS),all)),)
MPI ?= $(shell $(PKG_CONFIG) --exists ompi-c 2>/dev/null && echo 1 || echo 0)
ifeq ($(MPI),1)
ifneq ($(shell $(PKG_CONFIG) --exists ompi-c 2>/dev/null && echo y),y)
$(error MPI=1 but pkg-config cannot find ompi-c; run `make deps` (libopenmpi-dev openmpi-bin))
endif
$(BUILD)/train/dist.o: CPPFLAGS += -DNB_MPI $(shell $(PKG_CONFIG) --cflags ompi-c)
LDLIBS   += -Wl,--as-needed $(shell $(PKG_CONFIG) --libs ompi-c) -Wl,--no-as-needed
endif
MPI_FLAG := $(BUILD)/gen/mpi.flag
$(shell mkdir -p $(BUILD)/gen && { echo $(MPI) | cmp -s - $(MPI_FLAG) || echo $(MPI) > $(MPI_FLAG); })
$(BUILD)/train/dist.o: $(MPI_FLAG)
endif
.DEFAULT_GOAL := all

LIBDIRS  := common storage model infer train server synth
TOOLDIRS := bench tools
ALLSRC   := $(foreach d,$(LIBDIRS),$(wildcard $(d)/*.c))
MAINSRC  := $(foreach d,$(LIBDIRS) $(TOOLDIRS),$(wildcard $(d)/nb-*.c))
LIBSRC   := $(filter-out $(MAINSRC),$(ALLSRC))
LIBOBJ   := $(LIBSRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/schema_sql.o $(BUILD)/gen/openapi_json.o
PROGS    := $(patsubst %.c,$(BIN)/%,$(notdir $(MAINSRC)))
LIBNB    := $(BUILD)/libnb.a

# Tests: tests/test_X.c -> $(BUILD)/tests/test_X (float build).
# tests/dtest_X.c -> $(BUILD)/tests/test_X linked against model/nn_*.c compiled with
# -DNN_DOUBLE, for finite-difference gradient checks in double precision.
TESTSRC  := $(wildcard tests/test_*.c)
DTESTSRC := $(wildcard tests/dtest_*.c)
TESTS    := $(TESTSRC:tests/%.c=$(BUILD)/tests/%) $(DTESTSRC:tests/dtest_%.c=$(BUILD)/tests/test_%)
NNSRC    := $(wildcard model/nn_*.c)
DBLOBJ   := $(NNSRC:%.c=$(BUILD)/dbl/%.o) $(patsubst %.c,$(BUILD)/%.o,$(wildcard common/*.c))
HARNESS  := $(BUILD)/tests/harness.o
TESTPROGS := $(BUILD)/tests/nb-train-test   # see HOOKSRC below

.PHONY: all deps test asan run train torch-fixtures bench clean fuzz fuzz-build
# Keep the test objects that pattern chains would otherwise delete as intermediates.
.SECONDARY:
all: $(PROGS) $(TESTS) $(TESTPROGS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(call inc_of,$*) $(CFLAGS) -c $< -o $@

$(BUILD)/dbl/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(call inc_of,$*) -DNN_DOUBLE $(CFLAGS) -c $< -o $@

# A file compiled in as the NUL-terminated byte array named $(1) (the recipe of $@ from $<).
embed = @mkdir -p $(dir $@); { echo 'const char $(1)[] = {'; od -An -v -tx1 $< | sed 's/ \([0-9a-f][0-9a-f]\)/0x\1,/g'; echo '0x00};'; } > $@
# schema.sql (storage/store.c: st_schema_sql()) and docs/openapi.json (server/srv_openapi.c:
# GET /openapi.json serves it).
$(BUILD)/gen/schema_sql.c: schema.sql
	$(call embed,st_schema_text)
$(BUILD)/gen/openapi_json.c: docs/openapi.json
	$(call embed,srv_openapi_text)

$(LIBNB): $(LIBOBJ)
	@rm -f $@
	ar rcs $@ $^

define prog_rule
$(BIN)/$(basename $(notdir $(1))): $(BUILD)/$(1:.c=.o) $(LIBNB)
	@mkdir -p $(BIN)
	$(CC) $(CFLAGS) $(OPT) $$^ -o $$@ $(LDLIBS)
endef
$(foreach m,$(MAINSRC),$(eval $(call prog_rule,$(m))))

# nb-train with its test hooks (--stop-after, NB_TEST_NAN_BATCH), for tests/train.sh only:
# the files that hold the hooks compiled again with -DNB_TEST_HOOKS; the production
# bin/nb-train has none of them.
HOOKSRC  := train/nb-train.c train/flags.c
HOOKOBJ  := $(HOOKSRC:%.c=$(BUILD)/hooks/%.o)
$(BUILD)/hooks/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(call inc_of,$*) -DNB_TEST_HOOKS $(CFLAGS) -c $< -o $@

$(BUILD)/tests/nb-train-test: $(HOOKOBJ) $(LIBNB)
	@mkdir -p $(dir $@)
	$(CC) $(OPT) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/test_%: $(BUILD)/tests/test_%.o $(HARNESS) $(LIBNB)
	$(CC) $(OPT) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/test_%: $(BUILD)/dbl/tests/dtest_%.o $(HARNESS) $(DBLOBJ)
	$(CC) $(OPT) $^ -o $@ $(LDLIBS)

# The real data lives beside the checkout (../shared/data). A clone made elsewhere (CI's
# clean clone, /tmp/x) finds it beside the repository it was cloned from.
NB_DATA ?= $(firstword $(wildcard ../shared/data) \
             $(wildcard $(shell git config --get remote.origin.url 2>/dev/null)/../shared/data))

# make deps installs the missing Debian packages (build, test); test, asan, run, train and
# bench do it themselves first (install-deps.sh is a quick no-op when everything is there;
# it also covers the tools the tests call: curl, sqlite3, python3-sklearn), then build
# with a recursive make, which checks the packages again.
deps:
	@$(call INSTALL_DEPS,)

# The normal test run also builds the fuzz harnesses and tests/fuzz.sh runs them briefly,
# side by side (FUZZ_TEST_SECONDS: 60 s under CI=true, else 15 s); the asan run does not
# repeat that (the harnesses are always built with both sanitizers).
test:
	@$(call INSTALL_DEPS,)
	@$(MAKE) --no-print-directory all $(if $(SAN),,fuzz-build)
	@NB_BIN=$(BIN) NB_TESTBIN=$(BUILD)/tests NB_DATA=$(NB_DATA) $(if $(SAN),,NB_FUZZBIN=$(FUZZ_BUILD)) tests/run.sh $(BUILD)/tests

asan:
	@$(MAKE) --no-print-directory SAN=1 BUILD=build-asan BIN=build-asan/bin test

# ---- the main job on the built-in data set ---------------------------------------------
VAR        := var
SYNTH_USERS ?= 3000
SYNTH_SEED  ?= 1
$(VAR)/synth/orders.csv: | $(BIN)/nb-synth
	@mkdir -p $(VAR)
	$(BIN)/nb-synth --users $(SYNTH_USERS) --seed $(SYNTH_SEED) --out $(VAR)/synth

$(VAR)/nb.db: $(VAR)/synth/orders.csv | $(BIN)/nb-import
	$(BIN)/nb-import --csv $(VAR)/synth --db $@

# make train always (re)trains on the store (data reused if present) and prints the
# model-vs-baselines table; the model registers itself and its candidates in var/nb.db.
MODEL       := $(VAR)/model.nbw
TRAIN_FLAGS ?= --epochs 6
SERVE_PORT  ?= 8080
train:
	@$(call INSTALL_DEPS,)
	@$(MAKE) --no-print-directory all $(VAR)/nb.db
	$(BIN)/nb-train --db $(VAR)/nb.db --model $(MODEL) --report $(VAR)/report.json $(TRAIN_FLAGS)

# Order-only: nb-train itself writes into nb.db, which must not make the model look stale.
$(MODEL): | $(VAR)/nb.db
	@$(MAKE) --no-print-directory train

run:
	@$(call INSTALL_DEPS,)
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory $(MODEL)
	@echo "store: $(VAR)/nb.db (built-in synthetic data, $(SYNTH_USERS) users); model: $(MODEL), report: $(VAR)/report.json"
	@echo "nb-serve on http://localhost:$(SERVE_PORT) -- Ctrl-C stops it. Try:"
	@echo "  curl -s localhost:$(SERVE_PORT)/health"
	@echo "  curl -s -X POST -H 'Content-Type: application/json' -d '{\"user_id\": 1, \"k\": 5}' localhost:$(SERVE_PORT)/recommend"
	@echo "  curl -s -X POST -H 'Content-Type: application/json' -d '{\"user_id\": 1, \"basket_mode\": \"expected-f1\"}' localhost:$(SERVE_PORT)/recommend"
	$(BIN)/nb-serve --db $(VAR)/nb.db --model $(MODEL) --port $(SERVE_PORT)

torch-fixtures:
	@$(call INSTALL_DEPS,--bench)
	/usr/bin/python3 tests/gen_torch_fixture.py tests/fixtures

bench:
	@$(call INSTALL_DEPS,--bench)
	@$(MAKE) --no-print-directory all
	@# soak.sh runs 10 minutes by default, grid.sh needs a grid file: by hand (each says how);
	@# sets.sh is a library the quality scripts source
	@for b in bench/*.sh; do case $$b in bench/soak.sh|bench/grid.sh|bench/sets.sh) continue;; esac; echo "== $$b"; bash $$b || exit 1; done

# ---- fuzzing (clang's libFuzzer, Debian's clang + libclang-rt-14-dev) ---------------------
# The library compiled again with clang, coverage instrumentation and ASan + UBSan into
# build-fuzz/; each tests/fuzz/fuzz_X.c becomes build-fuzz/fuzz_X. make fuzz runs each on
# a working corpus in build-fuzz/corpus/X seeded from tests/fuzz/X (the committed seeds are
# only read); a crash leaves build-fuzz/crash-X-* and fails the target.
FUZZ_BUILD   ?= build-fuzz
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_RUNS    ?=
# Volume runs may leave ASan out (3-10x more executions, e.g. the importer's): make fuzz
# FUZZ_BUILD=build-fuzz-ub FUZZ_SAN='-fsanitize=undefined -fno-sanitize-recover=undefined'.
FUZZ_SAN     ?= -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS  := -std=c11 -Wall -Wextra -Werror -Wno-unknown-warning-option -g -O1 \
                -fno-omit-frame-pointer $(FUZZ_SAN) -fsanitize=fuzzer-no-link
FUZZ_NAMES   := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS    := $(FUZZ_NAMES:%=$(FUZZ_BUILD)/fuzz_%)
# model/'s compute kernels use GCC vector built-ins (__builtin_shuffle) that clang lacks:
# the harnesses link the normal build's objects of those files, uninstrumented (no input
# reaches them: the weight-file loader only fills the tensors they compute with).
FUZZ_GCCSRC  := model/nn_act.c model/nn_gru.c model/nn_head.c model/nn_layers.c model/nn_optim.c
FUZZ_LIBOBJ  := $(patsubst %.c,$(FUZZ_BUILD)/%.o,$(filter-out $(FUZZ_GCCSRC),$(LIBSRC))) \
                $(FUZZ_GCCSRC:%.c=$(BUILD)/%.o) $(FUZZ_BUILD)/gen/schema_sql.o \
                $(FUZZ_BUILD)/gen/openapi_json.o

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(call inc_of,$*) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_BUILD)/libnb.a: $(FUZZ_LIBOBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_util.h $(FUZZ_BUILD)/libnb.a
	$(FUZZ_CC) $(CPPFLAGS) $(INC_ALL) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< $(FUZZ_BUILD)/libnb.a \
	    -o $@ $(LDLIBS)

fuzz-build: $(FUZZ_BINS)

fuzz:
	@$(call INSTALL_DEPS,)
	@$(MAKE) --no-print-directory fuzz-build
	@for n in $(FUZZ_NAMES); do \
	    mkdir -p $(FUZZ_BUILD)/corpus/$$n; \
	    echo "== fuzz_$$n: $(if $(FUZZ_RUNS),$(FUZZ_RUNS) runs,$(FUZZ_SECONDS) s)"; \
	    $(FUZZ_BUILD)/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) $(if $(FUZZ_RUNS),-runs=$(FUZZ_RUNS)) \
	        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/crash-$$n- \
	        $(FUZZ_BUILD)/corpus/$$n tests/fuzz/$$n 2>$(FUZZ_BUILD)/fuzz_$$n.log; rc=$$?; \
	    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)|^#[0-9]+[[:space:]]+DONE|ERROR|SUMMARY' $(FUZZ_BUILD)/fuzz_$$n.log; \
	    if [ $$rc -ne 0 ]; then echo "fuzz_$$n failed (exit $$rc): $(FUZZ_BUILD)/fuzz_$$n.log"; exit 1; fi; \
	done

clean:
	rm -rf build build-asan bin $(FUZZ_BUILD)

-include $(shell find $(BUILD) $(FUZZ_BUILD) -name '*.d' 2>/dev/null)

# SPDX-License-Identifier: MIT
# The libFuzzer harnesses (docs/internals.md, "Fuzzing").  GNU make; run
# from the build directory by the top Makefile's `make fuzz`,
# `make fuzz-smoke` and `make fuzz-run`, which pass:
#   srcdir      the source tree (absolute)
#   LIB_SRCS    src/libagent.a's sources (its .c files are used)
#   DEP_CFLAGS  DEP_LIBS  the libraries' flags, as configure found them
# Everything is built with clang under ASan + UBSan + libFuzzer into
# fuzz-build/ (objects apart from the normal build's: other compiler,
# other flags).
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 20
FUZZ_RUNS ?= -1
# The harnesses' private files (configuration, key, store) go to TMPDIR:
# tmpfs when there is one, where the store's fsyncs cost nothing.
FUZZ_TMPDIR ?= $(shell test -d /dev/shm -a -w /dev/shm && echo /dev/shm || \
	echo /tmp)
FUZZ_FLAGS = -g -O1 -fno-omit-frame-pointer \
	-fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS = $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -pthread \
	-I. -I$(srcdir)/src -I$(srcdir)/fuzz $(DEP_CFLAGS) \
	-DSYSCONFDIR='"/etc"' -DLOCALSTATEDIR='"/var"' -Wall -Wextra \
	-Wno-unused-parameter -Werror -MMD -MP
HARNESSES = jwt json params a2a envelope runpod instag config remote
OUT = fuzz-build
LIB_OBJS = $(patsubst %.c,$(OUT)/obj/%.o,$(filter %.c,$(LIB_SRCS)))
UTIL_OBJS = $(OUT)/obj/fuzz/fuzzutil.o
BINS = $(patsubst %,$(OUT)/fuzz_%,$(HARNESSES))

all: $(BINS)

$(OUT)/obj/%.o: $(srcdir)/%.c
	@mkdir -p $(dir $@)
	@echo "  CC(fuzz) $<"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

# Harnesses that reach the push URL check also get noresolve.o.
$(OUT)/fuzz_a2a $(OUT)/fuzz_envelope: EXTRA_OBJS = $(OUT)/obj/fuzz/noresolve.o
$(OUT)/fuzz_a2a $(OUT)/fuzz_envelope: $(OUT)/obj/fuzz/noresolve.o

$(OUT)/fuzz_%: $(OUT)/obj/fuzz/fuzz_%.o $(UTIL_OBJS) $(LIB_OBJS)
	@echo "  LINK(fuzz) $@"
	@$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -pthread -o $@ $< \
	    $(EXTRA_OBJS) $(UTIL_OBJS) $(LIB_OBJS) $(DEP_LIBS) -ldl

# Each harness for FUZZ_SECONDS (or FUZZ_RUNS executions), one after the
# other, from its seed corpus; new inputs go to fuzz-build/corpus/<name>,
# a finding to fuzz-build/crash-* (and the run fails).
run: $(BINS)
	@set -e; for h in $(HARNESSES); do \
	  mkdir -p $(OUT)/corpus/$$h; \
	  echo "fuzz_$$h: $(FUZZ_SECONDS) s"; \
	  TMPDIR=$(FUZZ_TMPDIR) ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(OUT)/fuzz_$$h -max_total_time=$(FUZZ_SECONDS) \
	    -runs=$(FUZZ_RUNS) -timeout=10 -rss_limit_mb=2048 \
	    -print_final_stats=1 -artifact_prefix=$(OUT)/crash-$$h- \
	    $(OUT)/corpus/$$h $(srcdir)/fuzz/corpus/$$h \
	    >$(OUT)/fuzz_$$h.log 2>&1 || { \
	    tail -n 60 $(OUT)/fuzz_$$h.log; \
	    echo "fuzz_$$h: FINDING (log: $(OUT)/fuzz_$$h.log)" >&2; \
	    exit 1; }; \
	  grep -E '^stat::number_of_executed_units' $(OUT)/fuzz_$$h.log; \
	done

# Header dependencies (-MMD).
-include $(LIB_OBJS:.o=.d) $(UTIL_OBJS:.o=.d) $(OUT)/obj/fuzz/noresolve.d \
	$(patsubst %,$(OUT)/obj/fuzz/fuzz_%.d,$(HARNESSES))

# The harnesses' objects are not intermediate files to delete.
.SECONDARY:
.PHONY: all run

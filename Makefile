# layerc - build, test and install what the build needs.
#   make          builds ./layerc
#   make test     installs missing packages (as root), builds, runs every test suite
#                 (also under AddressSanitizer + UndefinedBehaviorSanitizer)
#   make demo     builds, then compiles and runs the digits demo (examples/digits)
#   make test-export  the PyTorch exporter against live PyTorch (needs python3-torch)
#   make test-cross  every golden case for aarch64 under qemu-aarch64 and for AVX2 (.ci/run runs it too)
#   make deps     installs the Debian packages the build and tests need (and numpy for the python3 on PATH)
LLVM_CONFIG ?= llvm-config-19
CC ?= cc
BUILD := build

# Recursive (=): llvm-config-19 may only exist once `make deps` has run.
LLVM_INCLUDE = $(shell $(LLVM_CONFIG) --includedir 2>/dev/null)
LLVM_LIBS = -L$(shell $(LLVM_CONFIG) --libdir 2>/dev/null) -lLLVM-19
CFLAGS_COMMON = -std=gnu11 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Icompiler -Iruntime -I$(BUILD) -isystem $(LLVM_INCLUDE)
CFLAGS = $(CFLAGS_COMMON) -O2
SAN_FLAGS := -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDLIBS = -lcjson -lm -lpthread $(LLVM_LIBS)

SRCS := $(wildcard compiler/*.c)
GEN_SRCS := $(BUILD)/parser.c $(BUILD)/lexer.c
HDRS := $(wildcard compiler/*.h) $(wildcard runtime/*.h) compiler/layers.def compiler/cpu_features.def runtime/cpu_check.def $(BUILD)/parser.h $(BUILD)/lexer.h

# Debian packages: build tools, libraries, and what the test scripts use.
DEB_PACKAGES := gcc make flex bison libcjson-dev llvm-19-dev clang-19 lld libclang-rt-19-dev python3 python3-numpy valgrind \
                gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user

.PHONY: all test test-cross test-export deps clean unit-tests bench fuzz fuzz-models demo
all: layerc $(BUILD)/liblayerc_rt.a

# The runtime linked into every generated library: position-independent, symbols hidden; with it
# the program of --emit exe (layerc_main.o).  Built for this machine, for each cross target whose
# Debian cross compiler is installed (build/TRIPLE/), and instrumented for `layerc test --sanitize`.
RUNTIME_SRCS := runtime/runtime.c runtime/cpu_check.c
RUNTIME_DEPS := $(RUNTIME_SRCS) runtime/exe_main.c $(wildcard runtime/*.h) runtime/cpu_check.def
RT_FLAGS := -std=gnu11 -g -Wall -Wextra -Werror -fPIC -fvisibility=hidden
CROSS_TARGETS := aarch64-linux-gnu
CROSS_RUNTIMES = $(foreach t,$(CROSS_TARGETS),$(if $(shell command -v $(t)-gcc 2>/dev/null),$(BUILD)/$(t)/liblayerc_rt.a))
# runtime CC FLAGS DIR: the archive and the exe's main object in DIR.
define runtime
	@mkdir -p $(3)
	$(1) $(RT_FLAGS) $(2) -c -o $(3)/runtime.o runtime/runtime.c
	$(1) $(RT_FLAGS) $(2) -c -o $(3)/cpu_check.o runtime/cpu_check.c
	$(1) $(RT_FLAGS) $(2) -c -o $(3)/layerc_main.o runtime/exe_main.c
	rm -f $(3)/liblayerc_rt.a && ar rcs $(3)/liblayerc_rt.a $(3)/runtime.o $(3)/cpu_check.o
endef
all: $(CROSS_RUNTIMES)
$(BUILD)/liblayerc_rt.a: $(RUNTIME_DEPS) | $(BUILD)
	$(call runtime,$(CC),-O2,$(BUILD)/rt)
	cp $(BUILD)/rt/liblayerc_rt.a $@ && cp $(BUILD)/rt/layerc_main.o $(BUILD)/layerc_main.o
$(BUILD)/%/liblayerc_rt.a: $(RUNTIME_DEPS) | $(BUILD)
	$(call runtime,$*-gcc,-O2,$(BUILD)/$*)

$(BUILD)/san/liblayerc_rt.a: $(RUNTIME_DEPS) | $(BUILD)
	$(call runtime,$(CC),$(SAN_FLAGS),$(BUILD)/san)

$(BUILD):
	mkdir -p $(BUILD) $(BUILD)/san

$(BUILD)/parser.c $(BUILD)/parser.h: grammar/parser.y | $(BUILD)
	bison -Wall -Werror --defines=$(BUILD)/parser.h -o $(BUILD)/parser.c $<

$(BUILD)/lexer.c $(BUILD)/lexer.h: grammar/lexer.l $(BUILD)/parser.h | $(BUILD)
	flex --header-file=$(BUILD)/lexer.h -o $(BUILD)/lexer.c $<

PATH_DEFINES = -DLAYERC_RUNTIME_DIR='"$(abspath $(BUILD))"' -DLAYERC_INCLUDE_DIR='"$(abspath runtime)"' \
               -DLAYERC_LLVM_BINDIR='"$(shell $(LLVM_CONFIG) --bindir 2>/dev/null)"'
OBJS := $(SRCS:compiler/%.c=$(BUILD)/%.o) $(BUILD)/parser.o $(BUILD)/lexer.o
SAN_OBJS := $(OBJS:$(BUILD)/%.o=$(BUILD)/san/%.o)
# flex's generated code is not ours to fix: it alone is built without the unused-code warnings.
GEN_CFLAGS := -Wno-unused-function -Wno-sign-compare -Wno-unused-parameter

$(BUILD)/%.o: compiler/%.c $(HDRS) | $(BUILD)
	$(CC) $(CFLAGS) $(PATH_DEFINES) -c -o $@ $<
$(BUILD)/san/%.o: compiler/%.c $(HDRS) | $(BUILD)
	$(CC) $(CFLAGS_COMMON) $(SAN_FLAGS) $(PATH_DEFINES) -c -o $@ $<
$(BUILD)/%.o: $(BUILD)/%.c $(HDRS)
	$(CC) $(CFLAGS) $(GEN_CFLAGS) -c -o $@ $<
$(BUILD)/san/%.o: $(BUILD)/%.c $(HDRS)
	$(CC) $(CFLAGS_COMMON) $(SAN_FLAGS) $(GEN_CFLAGS) -c -o $@ $<

layerc: $(OBJS)
	$(CC) $(CFLAGS) -o $@ $(OBJS) $(LDLIBS)

$(BUILD)/san/layerc: $(SAN_OBJS)
	$(CC) $(SAN_FLAGS) -o $@ $(SAN_OBJS) $(LDLIBS)

# Unit-test programs over the compiler's objects (everything but main.o), plain and sanitized.
LIB_OBJS = $(filter-out $(BUILD)/main.o,$(OBJS))
SAN_LIB_OBJS = $(filter-out $(BUILD)/san/main.o,$(SAN_OBJS))
UNIT_TESTS := io/test_io reference/test_reference emit/test_emit_weights
$(BUILD)/unit/%: tests/%.c tests/unit_check.h $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB_OBJS) $(LDLIBS)
$(BUILD)/san/unit/%: tests/%.c tests/unit_check.h $(SAN_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(SAN_FLAGS) -o $@ $< $(SAN_LIB_OBJS) $(LDLIBS)
# The runtime's thread pool on its own (tests/runtime/test_pool.c with runtime/runtime.c): plain, ASan + UBSan,
# and ThreadSanitizer.
POOL_TEST_SRCS := tests/runtime/test_pool.c runtime/runtime.c runtime/cpu_check.c
POOL_TEST_DEPS := $(POOL_TEST_SRCS) $(wildcard runtime/*.h) tests/unit_check.h
$(BUILD)/unit/runtime/test_pool: $(POOL_TEST_DEPS)
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -Iruntime -pthread -o $@ $(POOL_TEST_SRCS)
$(BUILD)/san/unit/runtime/test_pool: $(POOL_TEST_DEPS)
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -g -Wall -Wextra -Werror -Iruntime -pthread $(SAN_FLAGS) -o $@ $(POOL_TEST_SRCS)
$(BUILD)/tsan/unit/runtime/test_pool: $(POOL_TEST_DEPS)
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O1 -g -Wall -Wextra -Werror -Iruntime -pthread -fsanitize=thread -o $@ $(POOL_TEST_SRCS)
POOL_TESTS := $(BUILD)/unit/runtime/test_pool $(BUILD)/san/unit/runtime/test_pool $(BUILD)/tsan/unit/runtime/test_pool
unit-tests: $(UNIT_TESTS:%=$(BUILD)/unit/%) $(UNIT_TESTS:%=$(BUILD)/san/unit/%) $(POOL_TESTS)

# The random-model differential tester (fuzz/models/, docs/fuzzing.md): a fixed-seed set runs in
# `make test`; `make fuzz-models SECONDS=N` runs it for N seconds and saves every failing model, minimised,
# in tests/models/ (replayed by `make test`).
FUZZ_MODELS_SRCS := fuzz/models/fuzz_models.c fuzz/models/model_generator.c
$(BUILD)/fuzz_models: $(FUZZ_MODELS_SRCS) fuzz/models/model_generator.h $(LIB_OBJS)
	$(CC) $(CFLAGS) -Ifuzz/models -o $@ $(FUZZ_MODELS_SRCS) $(LIB_OBJS) $(LDLIBS)
SECONDS ?= 600
fuzz-models: all $(BUILD)/fuzz_models
	$(BUILD)/fuzz_models --seconds $(SECONDS) --jobs $(shell nproc) --seed $$(date +%s) --save tests/models

# The README's main demo (examples/digits/run.sh): a CNN trained with PyTorch on handwritten digits,
# compiled and run on its held-out test split: accuracy, agreement with PyTorch, time per image.
demo: all
	@bash examples/digits/run.sh

# The benchmarks, not part of `make test`: the direct convolution against the FMA peak of its build's
# extension and the 2-thread speed-up per example (bench/kernels.sh), compile time (bench/compile_time.sh) and fusion (bench/fusion.sh,
# docs/benchmarks.md), Winograd against direct (bench/winograd.sh), then layerc against
# PyTorch, ONNX Runtime and oneDNN with the measured FMA peak (bench/run_all.sh, docs/peers.md; peers that are
# not installed are skipped with a message).
bench: all
	@bash bench/kernels.sh
	@bash bench/compile_time.sh
	@bash bench/fusion.sh
	@bash bench/winograd.sh
	@bash bench/run_all.sh

# libFuzzer targets (fuzz/): each runs FUZZ_SECONDS; findings go to fuzz/crashes/ (docs/fuzzing.md).
FUZZ_SECONDS ?= 180
fuzz: $(BUILD)/parser.c $(BUILD)/lexer.c
	@bash fuzz/run.sh $(FUZZ_SECONDS)

deps:
	@sh tools/install-deps.sh $(DEB_PACKAGES)
	@sh tools/install-numpy.sh

test: deps
	$(MAKE) all $(BUILD)/san/layerc $(BUILD)/san/liblayerc_rt.a unit-tests $(BUILD)/fuzz_models
	@bash tests/run.sh

# Every golden case built for aarch64 and run under qemu-aarch64 and for AVX2 (about two minutes; make test runs a few).
test-cross: deps
	$(MAKE) all
	@SUITES=cross-all bash tests/run.sh

# The PyTorch exporter (tools/torch2nn.py) against live PyTorch: Debian's python3-torch, torchvision; not part of
# `make test` (which checks the committed exports, tests/export, without torch).  A few minutes.
test-export: all
	/usr/bin/python3 tools/test_torch2nn.py

clean:
	rm -rf $(BUILD) layerc

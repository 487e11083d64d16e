# herd — build, test, demo, bench.  `make help` lists the targets.
#
# One static library (build/libherd.a) holds everything but main.c; the binary
# `herd`, the unit tests and the benchmarks link against it. Sources are found
# by wildcard, so adding a file to a folder of src/, kernels/cpu/, monitoring/, checkpoint/
# or topology/ needs no Makefile edit.

CC        ?= gcc
NVCC      ?= $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
ARCHFLAGS ?= -march=native
OPT       ?= -O3
CFLAGS    += -std=c11 $(OPT) $(ARCHFLAGS) -fopenmp -Wall -Wextra -Werror \
             -Wno-unused-parameter -D_GNU_SOURCE -g
# OpenBLAS built on OpenMP (Debian's openblas-openmp variant): BLAS calls and
# our own OpenMP loops share one thread pool. The pthread variant's threads and
# libgomp's spinning workers fight over the cores (measured: 0.5 of sgemm peak
# instead of 0.84 on the 100m model).
BLAS_DIR  ?= /usr/lib/x86_64-linux-gnu/openblas-openmp
# Open MPI, parallel HDF5 (the openmpi flavour), hwloc and PMIx, all from Debian
# (scripts/deps.sh). pkg-config names the include and library directories.
PKGS      := yaml-0.1 ompi-c hdf5-openmpi hwloc pmix
CPPFLAGS  += -I. -I/usr/include/x86_64-linux-gnu/openblas-openmp $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
comma     := ,
PKG_RPATH := $(patsubst -L%,-Wl$(comma)-rpath$(comma)%,$(shell pkg-config --libs-only-L $(PKGS) 2>/dev/null))
LDLIBS    += $(shell pkg-config --libs $(PKGS) 2>/dev/null) $(PKG_RPATH) \
             -L$(BLAS_DIR) -Wl,-rpath,$(BLAS_DIR) -lopenblas -lm -lpthread

# SANITIZE=1: the whole build with AddressSanitizer and UBSan (gcc) in its own
# directory, build-san/, so that it never mixes with the normal build's objects;
# `make test SANITIZE=1` runs the suite on it (see `test:` below).
ifeq ($(SANITIZE),1)
BUILD     := build-san
# the CPU build: the CUDA runtime and ASan's shadow memory do not mix (tests
# that need a GPU skip without it)
NVCC      :=
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer
# warnings stay, but not as errors: gcc's value ranges under ASan give false
# ones (alloc-size-larger-than on a calloc of a checked count)
CFLAGS    += $(SAN_FLAGS) -Wno-error
EMU_SAN   := $(SAN_FLAGS)
else
BUILD     := build
endif
LIB_SRC   := $(filter-out src/cli/main.c,$(wildcard src/*/*.c)) $(wildcard kernels/*.c kernels/cpu/*.c \
             monitoring/*.c checkpoint/*.c topology/*.c)
LIB_OBJ   := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRC))
TEST_SRC  := $(wildcard tests/unit/test_*.c)
TEST_BIN  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(TEST_SRC))
BENCH_SRC := $(wildcard benchmarks/*.c benchmarks/mfu/*.c)
BENCH_BIN := $(patsubst benchmarks/%.c,$(BUILD)/benchmarks/%,$(BENCH_SRC))
TOOL_SRC  := $(wildcard tests/golden/*.c)
TOOL_BIN  := $(patsubst tests/golden/%.c,$(BUILD)/tests/%,$(TOOL_SRC))

# CUDA backend: built whenever nvcc is found (it only needs to compile and link
# on a machine without a GPU; tests that need a device skip at run time).
CU_SRC      := $(wildcard kernels/cuda/*.cu)
ifneq ($(strip $(NVCC)),)
ifneq ($(strip $(CU_SRC)),)
HAVE_CUDA   := 1
endif
endif
ifdef HAVE_CUDA
CUDA_HOME   ?= $(patsubst %/bin/nvcc,%,$(NVCC))
CU_OBJ      := $(patsubst %.cu,$(BUILD)/%.o,$(CU_SRC))
# sm_90 machine code (H100/H200) plus compute_80 PTX, the generic target that the
# driver compiles for any GPU from A100 on
NVCC_ARCH   ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_80,code=compute_80
NVCCFLAGS   ?= -O3 -std=c++17 $(NVCC_ARCH) -Xcompiler -fPIC -I. $(shell pkg-config --cflags-only-I ompi-c 2>/dev/null)
CPPFLAGS    += -DHERD_HAVE_CUDA
LDLIBS      += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublas -lcublasLt -lnccl -lcudart -lstdc++
CUDA_STATUS := yes ($(NVCC))
else
CU_OBJ      :=
CUDA_STATUS := no (nvcc or kernels/cuda/*.cu not found)
endif

.PHONY: emu all deps fuzz fuzz-build test test-fault demo demo-stop demo-data post-seeds bench bench-layouts clean help summary \
        device-bundle
# `make`: herd, its unit tests, golden tools and benchmarks. The CUDA emulator's
# targets (slow to compile, test tooling only) are built by `make test` and
# `make emu`, not by every `make`.
all: $(BUILD)/herd $(TEST_BIN) $(TOOL_BIN) $(BENCH_BIN) summary

summary: $(BUILD)/herd
	@echo "== herd build summary =="
	@echo "  herd binary:   $(BUILD)/herd"
	@echo "  CPU backend:   yes (OpenBLAS, OpenMP)"
	@echo "  CUDA backend:  $(CUDA_STATUS)"
	@echo "  unit tests:    $(words $(TEST_BIN)), benchmarks: $(words $(BENCH_BIN))"

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -DHERD_HAVE_CUDA -MMD -MP -c $< -o $@

$(BUILD)/libherd.a: $(LIB_OBJ) $(CU_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/herd: $(BUILD)/src/cli/main.o $(BUILD)/libherd.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libherd.a tests/unit/test.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $< $(BUILD)/libherd.a -o $@ $(LDLIBS)

$(BUILD)/tests/%: tests/golden/%.c $(BUILD)/libherd.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $< $(BUILD)/libherd.a -o $@ $(LDLIBS)

$(BUILD)/benchmarks/%: benchmarks/%.c $(BUILD)/libherd.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $< $(BUILD)/libherd.a -o $@ $(LDLIBS)

# ---- CUDA kernels on the CPU (test tooling: tests/cuda_emu, docs/cuda.md) -------
# Every kernels/cuda/*.cu, rewritten by tests/cuda_emu/launch.pl (<<< >>>
# launches) and compiled by g++ against the emulated runtime, cuBLAS, cuBLASLt,
# WMMA and NCCL (over MPI) of tests/cuda_emu. Separate objects
# under build/emu/: the nvcc build above is untouched, and nvcc is not needed.
EMU_DIR      := $(BUILD)/emu
EMU_CXX      ?= g++
EMU_CXXFLAGS ?= -std=c++17 -O2 -g -Wall -Wno-unknown-pragmas -Wno-unused-parameter \
                -Wno-unused-function -Wno-unused-variable -Wno-sign-compare $(EMU_SAN)
EMU_CPPFLAGS := -I. -Itests/cuda_emu/include -I/usr/include/x86_64-linux-gnu/openblas-openmp $(shell pkg-config --cflags-only-I ompi-c 2>/dev/null) \
                -DHERD_HAVE_CUDA -DHERD_CUDA_EMU
EMU_CU_SRC   := $(wildcard kernels/cuda/*.cu)
EMU_OBJ      := $(patsubst %.cu,$(EMU_DIR)/%.o,$(EMU_CU_SRC)) \
                $(EMU_DIR)/tests/cuda_emu/emu.o $(EMU_DIR)/tests/cuda_emu/cublas.o \
                $(EMU_DIR)/tests/cuda_emu/nccl.o
# libherd's objects, but backend.c with the CUDA table on and comm_nccl_none.c
# empty, as with nvcc (comm_nccl.cu runs on the emulated NCCL)
EMU_C_OBJ    := $(filter-out $(BUILD)/kernels/backend.o $(BUILD)/kernels/comm_nccl_none.o,$(LIB_OBJ)) \
                $(EMU_DIR)/kernels/backend.o $(EMU_DIR)/kernels/comm_nccl_none.o
EMU_DEPS     := $(wildcard tests/cuda_emu/*.h tests/cuda_emu/include/*.h) tests/cuda_emu/launch.pl \
                $(wildcard kernels/cuda/*.h)

$(EMU_DIR)/kernels/cuda/%.o: kernels/cuda/%.cu $(EMU_DEPS)
	@mkdir -p $(dir $@)
	perl tests/cuda_emu/launch.pl $< <$< >$(EMU_DIR)/kernels/cuda/$*.cpp
	$(EMU_CXX) $(EMU_CPPFLAGS) $(EMU_CXXFLAGS) -MMD -MP -c $(EMU_DIR)/kernels/cuda/$*.cpp -o $@

$(EMU_DIR)/tests/cuda_emu/%.o: tests/cuda_emu/%.cpp $(EMU_DEPS)
	@mkdir -p $(dir $@)
	$(EMU_CXX) $(EMU_CPPFLAGS) $(EMU_CXXFLAGS) -MMD -MP -c $< -o $@

$(EMU_DIR)/kernels/backend.o: kernels/backend.c kernels/backend.h
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -DHERD_HAVE_CUDA,$(CPPFLAGS)) $(CFLAGS) -DHERD_HAVE_CUDA -c $< -o $@

$(EMU_DIR)/kernels/comm_nccl_none.o: kernels/comm_nccl_none.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -DHERD_HAVE_CUDA,$(CPPFLAGS)) $(CFLAGS) -DHERD_HAVE_CUDA -c $< -o $@

$(EMU_DIR)/libherd_emu.a: $(EMU_C_OBJ) $(EMU_OBJ)
	@rm -f $@
	ar rcs $@ $^

# the unit tests with CUDA cases (they skip "no CUDA device" in the nvcc build here)
$(EMU_DIR)/test_%: tests/unit/test_%.c $(EMU_DIR)/libherd_emu.a tests/unit/test.h
	$(CC) $(filter-out -DHERD_HAVE_CUDA,$(CPPFLAGS)) $(CFLAGS) -DHERD_HAVE_CUDA $< $(EMU_DIR)/libherd_emu.a \
	    -o $@ $(filter-out -lcublas -lcublasLt -lnccl -lcudart,$(LDLIBS)) -lstdc++

$(EMU_DIR)/tests/cuda_emu/selftest.o: tests/cuda_emu/selftest.cu $(EMU_DEPS)
	@mkdir -p $(dir $@)
	perl tests/cuda_emu/launch.pl $< <$< >$(EMU_DIR)/tests/cuda_emu/selftest.cpp
	$(EMU_CXX) $(EMU_CPPFLAGS) $(EMU_CXXFLAGS) -c $(EMU_DIR)/tests/cuda_emu/selftest.cpp -o $@

$(EMU_DIR)/emu_selftest: $(EMU_DIR)/tests/cuda_emu/selftest.o $(EMU_DIR)/tests/cuda_emu/emu.o \
                         $(EMU_DIR)/tests/cuda_emu/cublas.o
	$(EMU_CXX) $(EMU_SAN) $^ -o $@ -L$(BLAS_DIR) -Wl,-rpath,$(BLAS_DIR) -lopenblas

# the whole herd on the emulated backend (`herd train` with backend cuda, on the CPU)
$(EMU_DIR)/herd: $(BUILD)/src/cli/main.o $(EMU_DIR)/libherd_emu.a
	$(CC) $(CFLAGS) $^ -o $@ $(filter-out -lcublas -lcublasLt -lnccl -lcudart,$(LDLIBS)) -lstdc++

# `make emu`: the emulated CUDA backend, test_cuda_ops on it and the emulator's
# self-test, test_ckpt's CUDA case, test_nccl on the emulated NCCL and herd on
# it (tests/cli/cuda_emu.sh runs them)
emu: $(EMU_DIR)/test_cuda_ops $(EMU_DIR)/test_ckpt $(EMU_DIR)/test_nccl $(EMU_DIR)/emu_selftest $(EMU_DIR)/herd

deps:
	@sh scripts/deps.sh

# ---- fuzzing (tests/fuzz, README "Fuzzing") ------------------------------------
# libFuzzer targets built by clang with AddressSanitizer and UBSan, against the
# parsers' own sources compiled the same way (build/fuzz/libherd_fuzz.a; the
# archive gives each target only what it links). `make fuzz` runs each one for
# FUZZ_SECONDS on a scratch copy of its seeds; tests/cli/fuzz.sh (in `make
# test`) replays tests/fuzz/regress and runs each briefly.
FUZZ_CC      ?= clang
FUZZ_DIR     := build/fuzz
FUZZ_SECONDS ?= 120
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS  := -std=c11 -O1 -g -Wall -Wextra -Wno-unused-parameter -Wno-unknown-pragmas \
                -Wno-unused-function -D_GNU_SOURCE $(FUZZ_SAN)
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN     := $(patsubst %,$(FUZZ_DIR)/fuzz_%,$(FUZZ_TARGETS))
FUZZ_LIB_SRC := src/config/config.c src/config/config_presets.c src/data/curate.c src/data/minhash.c src/data/data.c src/data/loader.c src/data/tokenizer.c \
                src/data/unicode_tab.c src/data/bpe_train.c src/data/chat.c src/data/tokenizer_specials.c src/model/hf_config.c \
                monitoring/clock.c $(wildcard src/base/*.c checkpoint/*.c topology/*.c)
FUZZ_LIB_OBJ := $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(FUZZ_LIB_SRC))

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(filter-out -DHERD_HAVE_CUDA,$(CPPFLAGS)) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_DIR)/libherd_fuzz.a: $(FUZZ_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_DIR)/libherd_fuzz.a
	$(FUZZ_CC) $(filter-out -DHERD_HAVE_CUDA,$(CPPFLAGS)) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< $(FUZZ_DIR)/libherd_fuzz.a -o $@ \
	    $(shell pkg-config --libs $(PKGS) 2>/dev/null) $(PKG_RPATH) -lm -lpthread

fuzz-build: $(FUZZ_BIN)

# FUZZ_SECONDS per target, or FUZZ_RUNS inputs if reached first (FUZZ_TARGETS="config
# data" for some); crashes in build/fuzz/crashes/, the corpus grows in
# build/fuzz/corpus/, never in git. 10^6 inputs each:
#     make fuzz FUZZ_RUNS=1000000 FUZZ_SECONDS=1800
fuzz:
	@sh scripts/deps.sh
	@$(MAKE) --no-print-directory fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_RUNS=$(FUZZ_RUNS) sh tests/fuzz/run.sh $(FUZZ_TARGETS)

# `make test` sets itself up on a fresh machine: missing packages, build, run.
# With SANITIZE=1 the suite runs on build-san/ through a tree of links to this
# one whose build/ is build-san/ (the tests name build/herd and build/tests/).
# Leak checking is off: Open MPI and PMIx keep their allocations to exit by
# design, so LeakSanitizer would fail every MPI program; the fuzz targets
# (tests/fuzz, tests/cli/fuzz.sh) check leaks of the parsers instead.
SAN_ENV := ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:$(ASAN_OPTIONS) \
           UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:$(UBSAN_OPTIONS)
test:
	@sh scripts/deps.sh
	@$(MAKE) --no-print-directory all emu
ifeq ($(SANITIZE),1)
	@sh scripts/san_tree.sh $(BUILD)
	@$(SAN_ENV) sh $(BUILD)/tree/tests/run.sh
else
	@sh tests/run.sh
endif

# fault injection on the local Slurm cluster (tests/fault, several minutes; not in `make test`)
test-fault:
	@sh scripts/deps.sh
	@$(MAKE) --no-print-directory all
	@sh tests/fault/run.sh

demo:
	@sh scripts/deps.sh
	@$(MAKE) --no-print-directory all
	@sh scripts/demo.sh

# stop the demo's Slurm cluster (make demo stops it itself unless interrupted hard)
demo-stop:
	@HERD_SLURM_DIR=$${HERD_SLURM_DIR:-/tmp/herd-demo-slurm} sh slurm/local/cluster.sh stop

# data/demo-mix/: the four-source demo mix (general, math, code, multilingual),
# cleaned, BPE-tokenized, with validation shards (scripts/make_demo_mix.sh)
demo-data:
	@sh scripts/deps.sh
	@$(MAKE) --no-print-directory $(BUILD)/herd
	@sh scripts/make_demo_mix.sh

# the demo's post-training table over 3 seeds (scripts/post_seeds.sh: each seed
# round 0, one round and its control; MODEL=the pretrained weights of `make demo`)
post-seeds:
	@sh scripts/deps.sh
	@$(MAKE) --no-print-directory $(BUILD)/herd
	@sh scripts/post_seeds.sh

bench:
	@sh scripts/deps.sh
	@$(MAKE) --no-print-directory all
	@sh benchmarks/run.sh

# every TP x CP x PP x DP layout of 8 ranks on the local Slurm cluster, measured
# MFU beside herd plan's prediction (benchmarks/layouts.sh; a few minutes)
bench-layouts:
	@sh scripts/deps.sh
	@$(MAKE) --no-print-directory $(BUILD)/herd
	@sh benchmarks/layouts.sh

# build/bundle/: the CUDA binaries and the libraries a GPU machine without
# herd's build deps lacks (scripts/device_bundle.sh; docs/cuda.md)
device-bundle:
	@sh scripts/device_bundle.sh

clean:
	rm -rf $(BUILD) build-san

help:
	@echo "make deps | make | make test [SANITIZE=1] | make fuzz [FUZZ_SECONDS=N] | make test-fault | make demo | make demo-data | make post-seeds | make bench | make bench-layouts | make clean"

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# the CUDA switch is a compile flag of backend.c: rebuild it when .cu files come or go
$(BUILD)/kernels/backend.o: $(CU_SRC) Makefile

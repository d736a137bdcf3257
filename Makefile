# csft: `make` builds ./csft, `make test` builds and runs every test, `make bench` the benchmarks.
CC ?= gcc
OPT ?= -O2 -march=native
CFLAGS ?= $(OPT) -g
MPI_CFLAGS := $(shell pkg-config --cflags ompi-c)
MPI_LIBS := $(shell pkg-config --libs ompi-c)
CFLAGS += -std=c11 -Wall -Wextra -Werror -fopenmp -D_GNU_SOURCE -Isrc $(MPI_CFLAGS)
LDLIBS := -lcjson -lsqlite3 -lyaml -ldnnl -lutf8proc -lpcre2-8 -lsnappy -lzstd -lz -llz4 -lbrotlidec -lm $(MPI_LIBS)
# CUDA=1 adds the CUDA backend (src/kernels/cuda/*.cu through nvcc) in its own build folder; the
# default build never needs nvcc. CUDA_ARCH picks the GPU (90: Hopper H100/H200; 80: A100).
ifeq ($(CUDA),1)
BUILD ?= build-cuda
endif
BUILD ?= build

LIB_SRC := $(sort $(shell find src -name '*.c' -not -path 'src/cli/*'))
CLI_SRC := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)

ifeq ($(CUDA),1)
CUDA_HOME ?= /usr/local/cuda
NVCC ?= $(CUDA_HOME)/bin/nvcc
CUDA_ARCH ?= 90
NVCCFLAGS ?= -O2 -g -lineinfo
NVCCFLAGS += -std=c++20 -gencode arch=compute_$(CUDA_ARCH),code=[sm_$(CUDA_ARCH),compute_$(CUDA_ARCH)] \
	-Werror all-warnings -Xcompiler -Wall,-Wextra,-Werror -DCSFT_CUDA -Isrc
CFLAGS += -DCSFT_CUDA
LDLIBS += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublas -lcudart -lstdc++
CUDA_SRC := $(sort $(wildcard src/kernels/cuda/*.cu))
LIB_OBJ += $(CUDA_SRC:%.cu=$(BUILD)/%.o)

$(BUILD)/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -MMD -MP -c $< -o $@
endif

all: csft

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libcsft.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

csft: $(CLI_OBJ) $(BUILD)/libcsft.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libcsft.a $(LDLIBS)

$(BUILD)/tests/%: tests/%.c tests/test.h $(BUILD)/libcsft.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(BUILD)/libcsft.a $(LDLIBS) -lbrotlienc

test: csft $(TEST_BIN)
	@bash tests/run.sh $(BUILD)/tests

# Every CUDA kernel against the CPU backend, then reference-check --device cuda on the fixtures;
# skips with a message (exit 0) when no GPU is present. Builds with CUDA=1 itself.
ifeq ($(CUDA),1)
test-cuda: csft $(BUILD)/tests/cuda/test_cuda_parity
	@bash tests/cuda/run.sh $(BUILD)/tests/cuda/test_cuda_parity
else
test-cuda:
	@$(MAKE) --no-print-directory CUDA=1 test-cuda
endif

# The whole suite under AddressSanitizer + UBSan, in its own build folder.
# (./csft is rebuilt with the sanitizers for the run, then removed so the next make relinks it.)
test-asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -fsanitize=address,undefined -fno-omit-frame-pointer" test; \
	rc=$$?; rm -f csft; exit $$rc

demo:
	bash scripts/demo.sh

bench: csft
	@bash bench/run.sh

format:
	clang-format -i $(shell find src tests bench -name '*.[ch]')

clean:
	rm -rf build build-asan build-cuda csft


.PHONY: demo
.PHONY: all test test-cuda test-asan bench format clean
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

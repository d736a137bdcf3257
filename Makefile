# csft: `make` builds ./csft, `make test` builds and runs every test, `make bench` the benchmarks.
CC ?= gcc
OPT ?= -O2 -march=native
CFLAGS ?= $(OPT) -g
MPI_CFLAGS := $(shell pkg-config --cflags ompi-c)
MPI_LIBS := $(shell pkg-config --libs ompi-c)
CFLAGS += -std=c11 -Wall -Wextra -Werror -fopenmp -D_GNU_SOURCE -Isrc $(MPI_CFLAGS)
LDLIBS := -lcjson -lyaml -ldnnl -lutf8proc -lpcre2-8 -lsnappy -lzstd -lz -lm $(MPI_LIBS)
BUILD ?= build

LIB_SRC := $(sort $(shell find src -name '*.c' -not -path 'src/cli/*'))
CLI_SRC := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)

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
	$(CC) $(CFLAGS) -Itests -o $@ $< $(BUILD)/libcsft.a $(LDLIBS)

test: csft $(TEST_BIN)
	@bash tests/run.sh $(BUILD)/tests

# The whole suite under AddressSanitizer + UBSan, in its own build folder.
test-asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -fsanitize=address,undefined -fno-omit-frame-pointer" test

bench: csft
	@bash bench/run.sh

format:
	clang-format -i $(shell find src tests bench -name '*.[ch]')

clean:
	rm -rf build build-asan csft

.PHONY: all test test-asan bench format clean
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

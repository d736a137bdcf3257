/* libFuzzer entry point for one target of fuzz/targets.c, chosen at build time with
 * -DFUZZ_TARGET=<name> (make fuzz builds build-fuzz/fuzz_<name> for every target). */
#include "../fuzz/targets.c"

#define FZ_CAT(a, b) a##b
#define FZ_FN(name) FZ_CAT(fuzz_, name)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    (void)fuzz_targets;
    err_clear();
    return FZ_FN(FUZZ_TARGET)(data, size);
}

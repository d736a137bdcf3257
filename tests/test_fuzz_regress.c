/* Every kept fuzzer crash input (tests/fuzz/regress/<target>/<file>) replayed through its fuzz
 * target (fuzz/targets.c) in the ordinary build: each must return without crashing (make
 * test-asan runs this under the sanitizers, fuzz/run.sh under the libFuzzer build). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../fuzz/targets.c"
#include "test.h"

static int n_inputs;

static void replay_dir(const struct fuzz_target *t) {
    char dir[256];
    snprintf(dir, sizeof dir, "tests/fuzz/regress/%s", t->name);
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char *p = path_join(dir, e->d_name);
        size_t n = 0;
        char *data = file_read_all(p, &n);
        EXPECT(data != NULL, "read %s", p);
        if (data) {
            fprintf(stderr, "  %s\n", p);
            EXPECT(t->fn((const uint8_t *)data, n) == 0, "%s", p);
            n_inputs++;
        }
        free(data), free(p);
    }
    closedir(d);
}

static void test_regress(void) {
    for (size_t i = 0; i < sizeof fuzz_targets / sizeof fuzz_targets[0]; i++) replay_dir(&fuzz_targets[i]);
    EXPECT(n_inputs > 0, "no kept inputs found under tests/fuzz/regress/");
}

int main(void) {
    RUN(test_regress);
    printf("  %d kept fuzz inputs replayed\n", n_inputs);
    return TEST_SUMMARY("fuzz_regress");
}

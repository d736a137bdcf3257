/* Hostile inputs found by review and fuzzing (issue 15): each case is a file a user could be
 * handed, built here by hand, and must give one clear error (or a correct result), never a
 * crash, a hang or a huge allocation. Past fuzzer crash inputs under tests/fuzz/regress/ are
 * replayed by fuzz/run.sh; the cheap ones are also checked here through the same entry points. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"
#include "test.h"
#include "train/checkpoint.h"

/* trainer_state.json: a negative next_row once read rows before the plan (batch_fill). */
static void test_state_counts(void) {
    struct train_state st;
    int64_t os = -1;
    EXPECT(checkpoint_parse_state("{\"step\": 4, \"epoch\": 1, \"next_row\": 12, \"optimizer_step\": 4, "
                                  "\"seed\": \"42\", \"tokens_seen\": \"123456789012345\"}",
                                  "ts.json", &st, &os) == 0,
           "%s", err_msg());
    EXPECT(st.step == 4 && st.epoch == 1 && st.next_row == 12 && os == 4 && st.seed == 42 &&
               st.tokens_seen == 123456789012345ll,
           "fields %lld %lld %lld", (long long)st.step, (long long)st.next_row, (long long)st.tokens_seen);
    static const struct {
        const char *json, *err;
    } bad[] = {
        {"{\"next_row\": -5}", "ts.json: \"next_row\" must be a whole number"},
        {"{\"step\": 1.5}", "\"step\""},
        {"{\"epoch\": 1e300}", "\"epoch\""},
        {"{\"next_row\": \"-1\"}", "\"next_row\""},
        {"{\"skipped_steps\": \"12x\"}", "\"skipped_steps\""},
        {"{\"optimizer_step\": true}", "\"optimizer_step\""},
        {"[1, 2]", "ts.json: not a JSON object"},
        {"{\"step\": ", "not a JSON object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err_clear();
        EXPECT(checkpoint_parse_state(bad[i].json, "ts.json", &st, &os) == -1, "%s accepted", bad[i].json);
        EXPECT_ERR(bad[i].err);
    }
}

int main(void) {
    RUN(test_state_counts);
    return TEST_SUMMARY("hostile");
}

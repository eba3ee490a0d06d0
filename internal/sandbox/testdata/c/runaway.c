// A reactor that misbehaves on request, for the preemption tests: body
// "spin" loops forever, "tree" makes an exponential tree of calls without
// any loop, "recurse" recurses without end, "sum N" adds 1..N (a loop that
// ends), anything else answers "ok".
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aegis.h"

static volatile uint64_t sink;

__attribute__((noinline)) static uint64_t tree(uint32_t depth) {
    if (depth == 0) return 1;
    // Two calls that depend on state the compiler cannot see through, so
    // neither becomes a loop.
    uint64_t a = tree(depth - 1 - (sink & 1));
    uint64_t b = tree(depth - 1 - ((sink >> 1) & 1));
    return a + b;
}

__attribute__((noinline)) static uint64_t recurse(uint64_t n) {
    // A frame that must outlive the call, so the recursion cannot become
    // a loop.
    volatile uint8_t frame[64];
    frame[n & 63] = (uint8_t)n;
    if (n == UINT64_MAX) return 0; // never: the compiler only needs a way out
    return recurse(n + 1) + frame[(n + 1) & 63];
}

static int respond(const char *body) {
    const char meta[] = "{\"status\":200}";
    return aegis_response_set(meta, sizeof meta - 1, body, (uint32_t)strlen(body)) == 0 ? 0 : 1;
}

AEGIS_HANDLER int aegis_handle(void) {
    int32_t len = 0;
    char *body = aegis_read_body(&len);
    if (body == NULL) return 1;
    char out[32];
    if (strcmp(body, "spin") == 0) {
        for (;;) sink++;
    } else if (strcmp(body, "tree") == 0) {
        sink = tree(64);
    } else if (strcmp(body, "recurse") == 0) {
        sink = recurse(0);
    } else if (strncmp(body, "sum ", 4) == 0) {
        uint64_t n = strtoull(body + 4, NULL, 10), s = 0;
        for (uint64_t i = 1; i <= n; i++) {
            s += i;
            sink = s;
        }
        int k = 0;
        char tmp[24];
        do { tmp[k++] = (char)('0' + s % 10); s /= 10; } while (s > 0);
        for (int i = 0; i < k; i++) out[i] = tmp[k - 1 - i];
        out[k] = 0;
        free(body);
        return respond(out);
    }
    free(body);
    return respond("ok");
}

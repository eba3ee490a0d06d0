// A minimal echo reactor: answers 200 with the request body, using only the
// host calls every real handler needs (body length, body, response). The
// buffer is static so no malloc runs per request.
// Included by path: the harness compiles C fixtures without -I flags.
#include "../../../sdk/c/aegis.h"

static char body[64 << 10];

AEGIS_HANDLER int aegis_handle(void) {
    int32_t n = aegis_request_body_len();
    if (n < 0 || n > (int32_t)sizeof body) return 1;
    if (n > 0 && aegis_request_body_read(body, (uint32_t)n) != n) return 1;
    return aegis_response_set("", 0, body, (uint32_t)n) == 0 ? 0 : 1;
}

__attribute__((export_name("bench_noop"))) int bench_noop(void) { return 0; }

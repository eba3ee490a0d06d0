// hello-c: an Aegis function in C. It stores the request body in the kv
// table "greetings" under the key "last" and answers
// {"message":"hello from C","stored":N} as JSON.
//
// Build (see README.md):
//   clang --target=wasm32-wasi -O2 -mexec-model=reactor \
//         -Wl,--export=aegis_handle -I ../../sdk/c -o hello.wasm hello.c
#include <stdio.h>
#include <string.h>

#include "aegis.h"

#define TABLE "greetings"

static int respond(int status, const char *json) {
    char meta[96];
    int n = snprintf(meta, sizeof meta,
                     "{\"status\":%d,\"headers\":{\"Content-Type\":\"application/json\"}}", status);
    return aegis_response_set(meta, (uint32_t)n, json, (uint32_t)strlen(json)) == 0 ? 0 : 1;
}

// log_result logs a failed call with the host's message.
static void log_result(const char *what, int32_t code) {
    char msg[256];
    int32_t n = aegis_result_len();
    char detail[128] = "";
    if (n > 0) {
        if (n > (int32_t)sizeof detail - 1) n = (int32_t)sizeof detail - 1;
        aegis_result_read(detail, (uint32_t)n);
        detail[n] = '\0';
    }
    int len = snprintf(msg, sizeof msg, "%s failed (%d): %s", what, (int)code, detail);
    aegis_log(AEGIS_LOG_ERROR, msg, (uint32_t)len);
}

AEGIS_HANDLER int aegis_handle(void) {
    int32_t len = 0;
    char *body = aegis_read_body(&len);
    if (body == NULL) return respond(500, "{\"error\":\"cannot read body\"}");

    int32_t rc = aegis_kv_put(TABLE, sizeof TABLE - 1, "last", 4, body, (uint32_t)len);
    free(body);
    if (rc == AEGIS_EPERM) return respond(403, "{\"error\":\"kv write not granted\"}");
    if (rc < 0) {
        log_result("kv_put", rc);
        return respond(502, "{\"error\":\"cannot store greeting\"}");
    }

    char out[96];
    snprintf(out, sizeof out, "{\"message\":\"hello from C\",\"stored\":%d}", (int)len);
    return respond(200, out);
}

// A reactor that passes host functions whatever pointers and lengths its
// request body holds, for the host-call fuzz target: the body is a list of
// little-endian u32 triples (op, a, b); each op calls one host function
// with a and b as every pointer and length. Answers the results, one
// decimal per call.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aegis.h"

static int32_t call(uint32_t op, uint32_t a, uint32_t b) {
    const char *p = (const char *)(uintptr_t)a;
    switch (op % 17) {
    case 0: return aegis_kv_get(p, b, p, b);
    case 1: return aegis_kv_put(p, b, p, b, p, b);
    case 2: return aegis_kv_delete(p, b, p, b);
    case 3: return aegis_kv_list(p, b, p, b);
    case 4: return aegis_object_get(p, b);
    case 5: return aegis_object_put(p, b, p, b);
    case 6: return aegis_object_list(p, b);
    case 7: return aegis_publish(p, b, p, b);
    case 8: return aegis_fetch(p, b);
    case 9: return aegis_invoke(p, b);
    case 10: aegis_log((int32_t)b, p, b); return 0;
    case 11: return aegis_result_read((void *)(uintptr_t)a, b);
    case 12: return aegis_request_body_read((void *)(uintptr_t)a, b);
    case 13: return aegis_request_meta_read((void *)(uintptr_t)a, b);
    case 14: return aegis_result_len();
    case 16: return aegis_secret(p, b);
    default: return aegis_response_set(p, b, p, b);
    }
}

AEGIS_HANDLER int aegis_handle(void) {
    int32_t len = 0;
    char *body = aegis_read_body(&len);
    if (body == NULL) return 1;
    char out[1024];
    size_t n = 0;
    for (int32_t i = 0; i + 12 <= len && n + 16 < sizeof out; i += 12) {
        uint32_t w[3];
        memcpy(w, body + i, sizeof w);
        n += (size_t)snprintf(out + n, sizeof out - n, "%d ", (int)call(w[0], w[1], w[2]));
    }
    free(body);
    const char meta[] = "{\"status\":200}";
    return aegis_response_set(meta, sizeof meta - 1, out, (uint32_t)n) == 0 ? 0 : 1;
}

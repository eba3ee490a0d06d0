// A reactor written against sdk/c/aegis.h: stores the body in kv table
// "greetings" and answers {"stored":N}. Body "oob" instead passes pointers
// outside memory to check the host refuses them with AEGIS_EINVAL.
#include <stdio.h>
#include <string.h>

#include "aegis.h"

static int respond(int status, const char *body) {
    char meta[64];
    int n = snprintf(meta, sizeof meta, "{\"status\":%d,\"headers\":{\"Content-Type\":\"application/json\"}}", status);
    return aegis_response_set(meta, (uint32_t)n, body, (uint32_t)strlen(body)) == 0 ? 0 : 1;
}

AEGIS_HANDLER int aegis_handle(void) {
    int32_t len = 0;
    char *body = aegis_read_body(&len);
    if (body == NULL) return 1;
    char out[128];
    if (strcmp(body, "oob") == 0) {
        int32_t a = aegis_kv_put("greetings", 9, "k", 1, (const void *)0xFFFFFF00u, 4096);
        int32_t b = aegis_kv_get((const char *)0x7FFFFFF0u, 100, "k", 1);
        int32_t c = aegis_response_set("{}", 2, (const void *)0xFFFFFFF0u, 64);
        snprintf(out, sizeof out, "{\"put\":%d,\"get\":%d,\"resp\":%d}", (int)a, (int)b, (int)c);
        free(body);
        return respond(200, out);
    }
    int32_t rc = aegis_kv_put("greetings", 9, "last", 4, body, (uint32_t)len);
    free(body);
    if (rc < 0) {
        snprintf(out, sizeof out, "{\"error\":%d}", (int)rc);
        return respond(500, out);
    }
    snprintf(out, sizeof out, "{\"stored\":%d}", (int)len);
    return respond(200, out);
}

/*
 * aegis.h — the Aegis guest ABI for C (and anything that can include a C
 * header), as specified in docs/abi.md.
 *
 * Build a reactor function (one warm instance serves many invocations):
 *
 *   clang --target=wasm32-wasi -O2 -mexec-model=reactor \
 *         -Wl,--export=aegis_handle -I sdk/c -o fn.wasm fn.c
 *
 * and define the entry point with AEGIS_HANDLER:
 *
 *   AEGIS_HANDLER int aegis_handle(void) { ...; return 0; }
 *
 * Conventions: every buffer is a (pointer, length) pair in this module's
 * memory; the host copies what it needs during the call and keeps no
 * pointer. A negative result is an error code (AEGIS_E*), and the host's
 * message is then in the result buffer (aegis_result_len/read). A
 * non-negative result of kv_get, kv_list, object_get, object_list, fetch
 * and invoke is the length of the result waiting in the result buffer.
 */
#ifndef AEGIS_H
#define AEGIS_H

#include <stdint.h>
#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AEGIS_IMPORT(name) __attribute__((import_module("aegis"), import_name(name)))
#define AEGIS_HANDLER __attribute__((export_name("aegis_handle")))

/* Result codes. */
#define AEGIS_EPERM (-1)    /* not granted in aegis.yaml */
#define AEGIS_ENOTFOUND (-2) /* no such key, object or route */
#define AEGIS_EINVAL (-3)   /* malformed argument or pointer out of range */
#define AEGIS_ELIMIT (-4)   /* a size or rate limit was hit */
#define AEGIS_EUNAVAIL (-5) /* the platform cannot serve this now */
#define AEGIS_EINTERNAL (-6)

/* Log levels for aegis_log. The last line logged at AEGIS_LOG_ERROR before
 * an invocation fails (aegis_handle returns non-zero, exit code, trap) is
 * the function's own error message, shown by `aegis invoke` and the
 * dead-letter list, never by the gateway (docs/abi.md, "Logs"). */
#define AEGIS_LOG_DEBUG 0
#define AEGIS_LOG_INFO 1
#define AEGIS_LOG_WARN 2
#define AEGIS_LOG_ERROR 3

/* The invocation: request meta is JSON (kind, request_id, method, path,
 * params, query, headers, topic, key, operation, attempt, hop); the body
 * is raw.
 * The *_read calls copy at most len bytes and return how many they copied. */
AEGIS_IMPORT("request_meta_len") int32_t aegis_request_meta_len(void);
AEGIS_IMPORT("request_meta_read") int32_t aegis_request_meta_read(void *buf, uint32_t len);
AEGIS_IMPORT("request_body_len") int32_t aegis_request_body_len(void);
AEGIS_IMPORT("request_body_read") int32_t aegis_request_body_read(void *buf, uint32_t len);

/* Sets the response: meta is JSON {"status":200,"headers":{"k":"v"}}
 * (empty meta means 200, no headers; a header sent several times is one
 * value with its lines separated by \n, e.g. "a=1\nb=2" in the JSON).
 * A body over the function's max_response returns AEGIS_ELIMIT and fails
 * the invocation. */
AEGIS_IMPORT("response_set")
int32_t aegis_response_set(const void *meta, uint32_t meta_len, const void *body, uint32_t body_len);

/* The result buffer: the value, list or error message of the last call. */
AEGIS_IMPORT("result_len") int32_t aegis_result_len(void);
AEGIS_IMPORT("result_read") int32_t aegis_result_read(void *buf, uint32_t len);

/* Key-value tables. kv_list leaves a JSON array of keys. */
AEGIS_IMPORT("kv_get")
int32_t aegis_kv_get(const char *table, uint32_t table_len, const char *key, uint32_t key_len);
AEGIS_IMPORT("kv_put")
int32_t aegis_kv_put(const char *table, uint32_t table_len, const char *key, uint32_t key_len,
                     const void *value, uint32_t value_len);
AEGIS_IMPORT("kv_delete")
int32_t aegis_kv_delete(const char *table, uint32_t table_len, const char *key, uint32_t key_len);
AEGIS_IMPORT("kv_list")
int32_t aegis_kv_list(const char *table, uint32_t table_len, const char *prefix, uint32_t prefix_len);

/* Objects. object_list leaves a JSON array of keys. */
AEGIS_IMPORT("object_get") int32_t aegis_object_get(const char *key, uint32_t key_len);
AEGIS_IMPORT("object_put")
int32_t aegis_object_put(const char *key, uint32_t key_len, const void *data, uint32_t data_len);
AEGIS_IMPORT("object_delete") int32_t aegis_object_delete(const char *key, uint32_t key_len);
AEGIS_IMPORT("object_list") int32_t aegis_object_list(const char *prefix, uint32_t prefix_len);

/* Events. */
AEGIS_IMPORT("publish")
int32_t aegis_publish(const char *topic, uint32_t topic_len, const void *data, uint32_t data_len);

/* Outbound HTTP: request JSON {"method","url","headers","body"(base64)};
 * leaves response JSON {"status","headers","body"(base64)}. */
AEGIS_IMPORT("fetch") int32_t aegis_fetch(const char *request_json, uint32_t len);

/* Calls a route of another function of the same app, private routes
 * included; that function must be named in grants.invoke. Request JSON
 * {"method","path" (may end in ?query),"headers","body"(base64)}; leaves
 * response JSON {"status","headers","body"(base64)}. Any status the
 * function answers is a success; AEGIS_EPERM: not granted,
 * AEGIS_ENOTFOUND: no such route, AEGIS_ELIMIT: max_body, max_response,
 * busy, timed out or hop limit, AEGIS_EUNAVAIL: the function failed. */
AEGIS_IMPORT("invoke") int32_t aegis_invoke(const char *request_json, uint32_t len);

/* Reads the current value of the app's secret `name` (granted in
 * grants.secrets) into the pending result; returns its length.
 * AEGIS_EPERM: not granted, AEGIS_ENOTFOUND: no such secret, AEGIS_EINVAL:
 * malformed name, AEGIS_EUNAVAIL: no vault. The values an invocation read
 * are scrubbed from its log lines and error message, not from anything
 * else it sends. */
AEGIS_IMPORT("secret") int32_t aegis_secret(const char *name, uint32_t name_len);

/* Logs one line. stdout and stderr are logged too (as info and warn). */
AEGIS_IMPORT("log") void aegis_log(int32_t level, const char *msg, uint32_t len);

/* Helpers. */

/* Copies the pending result into a new NUL-terminated malloc'd buffer of
 * n bytes (n from the call that produced it). Returns NULL on failure. */
static inline char *aegis_take_result(int32_t n) {
    if (n < 0) return NULL;
    char *buf = (char *)malloc((size_t)n + 1);
    if (buf == NULL) return NULL;
    if (aegis_result_read(buf, (uint32_t)n) != n) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

/* Reads the request body into a new NUL-terminated malloc'd buffer and
 * stores its length in *len. Returns NULL on failure. */
static inline char *aegis_read_body(int32_t *len) {
    int32_t n = aegis_request_body_len();
    if (n < 0) return NULL;
    char *buf = (char *)malloc((size_t)n + 1);
    if (buf == NULL) return NULL;
    if (n > 0 && aegis_request_body_read(buf, (uint32_t)n) != n) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    if (len != NULL) *len = n;
    return buf;
}

#ifdef __cplusplus
}
#endif

#endif /* AEGIS_H */

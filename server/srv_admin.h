/* srv_admin.h -- POST /admin/reload: the HTTP face of srv_engine_reload (SIGHUP does the
 * same from the signal loop). Token-protected like POST /orders (srv_http.h).
 *
 * Request: an empty body, or {"checksum": "%08x"} to name a registered model instead of
 * the newest one. Responses (docs/openapi.json): 200 {"model", "previous", "loaded_at"};
 * 400 bad_json / duplicate_field / unknown_field / bad_checksum; 404 unknown_model; 409
 * reload_in_progress; 422 reload_failed (the message says which check; the old model keeps
 * serving). Every outcome but 409 is logged on stderr.
 */
#ifndef SRV_ADMIN_H
#define SRV_ADMIN_H

#include <stddef.h>

/* A handlers.reload callback: ctx is the srv_engine. Returns the HTTP status and a
 * malloc'd JSON body in *out (caller frees). */
int srv_admin_reload(void *ctx, const char *body, size_t len, char **out, size_t *outlen);

#endif

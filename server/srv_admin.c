/* srv_admin.c -- POST /admin/reload (see srv_admin.h). */
#include "srv_admin.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "nb_err.h"
#include "srv_engine.h"
#include "srv_json.h"

/* 1 when s is exactly 8 hexadecimal digits (a checksum as /health prints it, any case). */
static int is_checksum(const char *s) {
    if (strlen(s) != 8) return 0;
    for (int i = 0; i < 8; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
              (s[i] >= 'A' && s[i] <= 'F')))
            return 0;
    return 1;
}

/* See srv_admin.h. */
int srv_admin_reload(void *ctx, const char *body, size_t len, char **out, size_t *outlen) {
    static const char *const fields[] = {"checksum"};
    srv_engine *e = ctx;
    cJSON *root = NULL;
    const char *code = NULL, *checksum = NULL;
    char err[NB_ERRLEN], want[9] = "";
    if (len > 0) {
        if (srv_json_object(body, len, fields, 1, &root, &code, err, sizeof err) != NB_OK) {
            *out = srv_error_json(code, err, outlen);
            return 400;
        }
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(root, "checksum");
        if (c && !(cJSON_IsString(c) && is_checksum(c->valuestring))) {
            cJSON_Delete(root);
            *out = srv_error_json("bad_checksum",
                                  "checksum must be the 8 hexadecimal digits of a registered "
                                  "model (as /health's \"model\")",
                                  outlen);
            return 400;
        }
        if (c) snprintf(want, sizeof want, "%s", c->valuestring);
        cJSON_Delete(root);
        if (want[0]) checksum = want;
    }
    srv_reload_result r;
    int rc = srv_engine_reload(e, checksum, 0, &r, err, sizeof err);
    if (rc == NB_EBUSY) {
        *out = srv_error_json("reload_in_progress", err, outlen);
        return 409;
    }
    if (rc) {
        fprintf(stderr, "nb-serve: POST /admin/reload refused, the previous model keeps serving: %s\n",
                err);
        *out = srv_error_json(r.unknown ? "unknown_model" : "reload_failed", err, outlen);
        return r.unknown ? 404 : 422;
    }
    fprintf(stderr, "nb-serve: POST /admin/reload: now serving model %s (was %s)\n", r.model,
            r.previous);
    srv_buf b = {0};
    srv_buf_printf(&b, "{\"model\": \"%s\", \"previous\": \"%s\", \"loaded_at\": \"%s\"}\n",
                   r.model, r.previous, r.loaded_at);
    *out = srv_buf_take(&b, outlen);
    return 200;
}

/* srv_openapi.c -- the embedded OpenAPI document (see srv_openapi.h). */
#include "srv_openapi.h"

#include <string.h>

/* build/gen/openapi_json.c, generated from docs/openapi.json (Makefile) */
extern const char srv_openapi_text[];

const char *srv_openapi_json(size_t *len) {
    *len = strlen(srv_openapi_text);
    return srv_openapi_text;
}

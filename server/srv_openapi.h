/* srv_openapi.h -- the OpenAPI 3 document of nb-serve's HTTP API (docs/openapi.json),
 * compiled into the binary and served at GET /openapi.json.
 *
 * Embedded at build time (the Makefile turns docs/openapi.json into a byte array, as it does
 * schema.sql) rather than read from a path: the document served is always the one this
 * binary was built with, and a server under systemd's ProtectSystem=strict, or started from
 * another directory, needs no extra file or flag to find it.
 */
#ifndef SRV_OPENAPI_H
#define SRV_OPENAPI_H

#include <stddef.h>

/* The document (static, NUL-terminated: never freed) and its length in *len. */
const char *srv_openapi_json(size_t *len);

#endif

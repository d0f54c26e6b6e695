/* srv_auth.h -- the admin token behind nb-serve's writing endpoints (POST /orders, and the
 * other token-protected routes): loaded once from --admin-token-file, checked per request
 * against the "Authorization: Bearer <token>" header.
 *
 * The token file holds one token: RFC 6750 b64token characters (letters, digits and
 * - . _ ~ + /, then optional trailing =), at most SRV_TOKEN_MAX bytes, optionally followed
 * by one line end (\n or \r\n). The token itself is never written anywhere: messages name
 * the file and the byte offset, never the content; srv_auth_free wipes it.
 */
#ifndef SRV_AUTH_H
#define SRV_AUTH_H

#include <stddef.h>

#define SRV_TOKEN_MAX 4096
#define SRV_TOKEN_MIN_ADVISED 16 /* shorter tokens load, with a warning */

typedef struct srv_auth srv_auth;

/* Reads the token from path. Returns NB_OK and *a (free with srv_auth_free), or NB_EIO
 * (cannot open or read; not a regular file) / NB_EFORMAT (empty, too long, a character
 * outside the b64token set: the message names the file and the offset). Advice that does
 * not stop the server -- the file is readable by its group or by others, the token is
 * shorter than SRV_TOKEN_MIN_ADVISED -- goes into warn[warnlen] (empty string: none). */
int srv_auth_load(srv_auth **a, const char *path, char *warn, size_t warnlen, char *err,
                  size_t errlen);
void srv_auth_free(srv_auth *a); /* safe on NULL */

/* Checks one request's Authorization header value (NULL: no such header). Returns 0 when
 * it is "Bearer <the token>" (scheme in any case), 401 when it is absent or not a bearer
 * credential, 403 when it carries a bearer token that is not the token. The comparison
 * takes the same time whatever the presented token's bytes are (it depends only on the
 * two lengths). a NULL: every request is 403 (no token is configured). */
int srv_auth_check(const srv_auth *a, const char *authorization);

#endif

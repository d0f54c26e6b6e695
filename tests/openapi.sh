#!/usr/bin/env bash
# openapi.sh -- docs/openapi.json against the server: (1) every response that tests/smoke.sh
# receives (recorded by tools/record_curl.sh standing in for curl) has a status the document
# lists for its operation and a body that validates against that response's schema (Debian's
# python3-jsonschema, Draft 2020-12: tests/openapi_check.py), and a wrong body is caught;
# (2) GET /openapi.json serves the document byte for byte; (3) every route the server
# answers is in the document and every documented operation is answered: the paths the
# router compares the URL with (server/*.c) and the document's paths are each sent every
# method, and an answer other than 404 not_found / 405 means "answered".
set -uo pipefail
source tests/lib.sh
PY=/usr/bin/python3
DOC=docs/openapi.json
if ! $PY -c 'import jsonschema' 2>/dev/null; then
    t_skip openapi "python3-jsonschema is not installed (deploy/install-deps.sh)"; t_exit
fi
for p in nb-synth nb-import nb-train nb-serve; do
    if [[ ! -x $NB_BIN/$p ]]; then t_skip openapi "$NB_BIN/$p not built"; t_exit; fi
done
t_eq doc_version "$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["openapi"][:4])' $DOC 2>&1)" 3.1.

# Parts 1 and 2 of issue 13 (POST /orders, POST /admin/reload) are built on other branches:
# documented here already, not answered yet. Once a route is answered this test fails until
# it is taken off the list.
PENDING=" "

# ---- (1) every response of the smoke test ------------------------------------------------
REC=$T_TMP/rec; mkdir -p "$REC" "$T_TMP/path"
ln -s "$PWD/tools/record_curl.sh" "$T_TMP/path/curl"
if PATH=$T_TMP/path:$PATH NB_CURL_RECORD=$REC bash tests/smoke.sh >"$T_TMP/smoke.log" 2>&1; then
    t_ok smoke_recorded
else
    t_fail smoke_recorded "tests/smoke.sh failed under the recording curl: $(grep '^not ok' "$T_TMP/smoke.log" | head -3)"
fi
out=$($PY tests/openapi_check.py responses $DOC "$REC" 2>&1); rc=$?
n=$(sed -n 's/^checked \([0-9]*\) responses.*/\1/p' <<<"$out")
if [[ $rc -eq 0 && ${n:-0} -ge 40 ]]; then t_ok "smoke_responses_valid ($n responses)"
else t_fail smoke_responses_valid "$(head -c 1500 <<<"$out")"; fi
# the check can fail: a 200 from /recommend without "top_k", and an undocumented status
BAD=$T_TMP/bad; mkdir -p "$BAD"
echo "POST http://127.0.0.1:1/recommend" >"$BAD/a.req"
printf 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n' >"$BAD/a.hdr"
echo '{"user_id": 1, "model": "0badcafe", "threshold": 0.5, "basket_mode": "threshold", "cold_start": false, "basket": []}' >"$BAD/a.body"
t_contains check_catches_missing_field "$($PY tests/openapi_check.py responses $DOC "$BAD" 2>&1)" "'top_k' is a required property"
rm "$BAD"/a.*
echo "GET http://127.0.0.1:1/health" >"$BAD/b.req"
printf 'HTTP/1.1 418 Teapot\r\nContent-Type: application/json\r\n\r\n' >"$BAD/b.hdr"
echo '{}' >"$BAD/b.body"
t_contains check_catches_status "$($PY tests/openapi_check.py responses $DOC "$BAD" 2>&1)" "status 418 is not documented"

# ---- a server of our own -------------------------------------------------------------------
D=$T_TMP/m
if ! tools/small_model.sh "$D" 2>"$T_TMP/model.err"; then t_fail model "$(cat "$T_TMP/model.err")"; t_exit; fi
ARGS=() AUTH=()
if $NB_BIN/nb-serve --help 2>&1 | grep -q -- --admin-token-file; then  # part 1 merged
    echo "openapi-test-token" >"$T_TMP/token"; ARGS+=(--admin-token-file "$T_TMP/token")
    AUTH=(-H "Authorization: Bearer openapi-test-token")  # past the token check to the method's
fi
LOG=$T_TMP/serve.log
$NB_BIN/nb-serve --db "$D/nb.db" --model "$D/m.nbw" --port 0 --threads 1 --quiet "${ARGS[@]}" 2>"$LOG" &
PID=$!
trap 'kill $PID 2>/dev/null; rm -rf "$T_TMP"' EXIT
PORT=$(tools/serve_port.sh "$LOG" $PID 300)
if [[ -z $PORT ]]; then t_fail start "$(tail -3 "$LOG")"; t_exit; fi
URL=http://127.0.0.1:$PORT

# ---- (2) the served document ---------------------------------------------------------------
curl -s -D "$T_TMP/doc.hdr" -o "$T_TMP/served.json" "$URL/openapi.json"
t_check served_doc_identical cmp "$T_TMP/served.json" $DOC
t_contains served_doc_type "$(tr -d '\r' <"$T_TMP/doc.hdr")" "Content-Type: application/json"

# ---- (3) routes ----------------------------------------------------------------------------
mapfile -t DOC_OPS < <($PY tests/openapi_check.py operations $DOC)
mapfile -t SRC_PATHS < <(grep -ho 'strcmp(url, "/[^"]*")' server/*.c | sed 's/.*"\(.*\)".*/\1/' | sort -u)
t_check router_paths_found test "${#SRC_PATHS[@]}" -ge 4
mapfile -t PATHS < <(printf '%s\n' "${SRC_PATHS[@]}" "${DOC_OPS[@]#* }" | sort -u)
answered() {  # METHOD PATH -> 0 when the server has the route
    local st code
    st=$(curl -s -o "$T_TMP/r" -w '%{http_code}' -X "$1" -H 'Content-Type: application/json' "${AUTH[@]}" \
         $([[ $1 == HEAD ]] && echo -I) "$URL$2")
    code=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["error"]["code"])' "$T_TMP/r" 2>/dev/null)
    [[ $st == 405 || ($st == 404 && $code == not_found) || ($st == 404 && $1 == HEAD && -z $code) ]] && return 1
    return 0
}
for p in "${PATHS[@]}"; do
    for m in GET HEAD POST PUT DELETE PATCH; do
        in_doc=0; printf '%s\n' "${DOC_OPS[@]}" | grep -qx "$m $p" && in_doc=1
        if answered "$m" "$p"; then
            if [[ $PENDING == *" $m $p "* ]]; then
                t_fail "route_pending_$m$p" "$m $p is answered now: take it off PENDING in tests/openapi.sh"
            elif [[ $in_doc == 1 ]]; then t_ok "route_documented_$m$p"
            else t_fail "route_documented_$m$p" "the server answers $m $p but docs/openapi.json has no such operation"; fi
        elif [[ $in_doc == 1 ]]; then
            if [[ $PENDING == *" $m $p "* ]]; then echo "skip route_answered_$m$p: pending (built on another branch)"
            else t_fail "route_answered_$m$p" "docs/openapi.json has $m $p but the server answers 404/405"; fi
        fi
    done
done
kill -TERM $PID; wait $PID
t_exit

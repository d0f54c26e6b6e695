#!/usr/bin/env bash
# record_curl.sh -- a stand-in for curl that records every exchange: put a link named curl
# to it first on PATH and set NB_CURL_RECORD to a directory. Each call runs the real curl
# (NB_REAL_CURL, default /usr/bin/curl) with the caller's arguments unchanged in effect and
# leaves in the directory N.req ("METHOD URL"), N.hdr (response headers) and N.body (the
# response body), so that tests/openapi.sh can check every response a test received against
# docs/openapi.json. The caller's own -o/-D files and stdout are kept as they would be.
real=${NB_REAL_CURL:-/usr/bin/curl}
rec=${NB_CURL_RECORD:?NB_CURL_RECORD must name a directory}
method= url= out= hdr= data=0 incl=0
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    a=${args[i]}
    case $a in
        -X|--request) method=${args[i + 1]}; ((i++)) ;;
        -o|--output) out=${args[i + 1]}; ((i++)) ;;
        -D|--dump-header) hdr=${args[i + 1]}; ((i++)) ;;
        -d|--data|--data-binary|--data-raw) data=1; ((i++)) ;;
        -H|--header|-w|--write-out|-m|--max-time|-u|--user|--connect-timeout) ((i++)) ;;
        -I|--head) method=HEAD ;;
        -i|--include) incl=1 ;;
        http://*|https://*) url=$a ;;
    esac
done
# with -i the headers are in the body output: not recorded (no test here uses it)
[[ -z $url || $incl == 1 ]] && exec "$real" "$@"
[[ -z $method ]] && { [[ $data == 1 ]] && method=POST || method=GET; }
n=$(mktemp "$rec/XXXXXXXX")
extra=()
[[ -z $hdr ]] && extra+=(-D "$n.hdr")
[[ -z $out ]] && extra+=(-o "$n.body")
"$real" "$@" "${extra[@]}"
rc=$?
[[ -n $hdr && -f $hdr ]] && cp "$hdr" "$n.hdr"
[[ -n $out && -f $out && $out != /dev/null ]] && cp "$out" "$n.body"
[[ -z $out && -f $n.body ]] && cat "$n.body"
[[ $out == /dev/null ]] && rm -f "$n.body" && touch "$n.nobody"
printf '%s %s\n' "$method" "$url" >"$n.req"
rm -f "$n"
exit $rc

#!/usr/bin/env bash
# reload.sh -- nb-serve swaps models without dropping a request (issue 13 item 2;
# srv_engine_reload). A serves; B is trained on the same store; SIGHUP under load from
# keep-alive clients that record every response's model: 0 failures, each client sees A
# then B (never back), wrk run across a second reload reports 0 errors; a corrupt newer
# model C is refused with a log line and B keeps serving; /health reports the model, when it
# was loaded and the reload counts; POST /admin/reload does the same behind the admin token.
source "$(dirname "$0")/lib.sh"
for p in nb-synth nb-import nb-train nb-serve; do
    [[ -x $NB_BIN/$p ]] || { t_fail build "$NB_BIN/$p not built"; t_exit; }
done
command -v wrk >/dev/null || { t_fail wrk "wrk is not installed (deploy/install-deps.sh)"; t_exit; }
D=$T_TMP
J() { /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); $1" "${@:2}"; }
SMALL=(--epochs 1 --emb 8 --cnn-out 16 --gru-hidden 16 --gru-layers 1 --head 16 --candidates 300
    --threads 1 --quiet --db "$D/nb.db" --model "$D/m.nbw")
$NB_BIN/nb-synth --users 200 --seed 12 --out "$D/csv" >/dev/null 2>&1 &&
    $NB_BIN/nb-import --csv "$D/csv" --db "$D/nb.db" --quiet >/dev/null 2>&1 &&
    $NB_BIN/nb-train "${SMALL[@]}" --seed 1 >/dev/null 2>&1 ||
    { t_fail setup "synth, import or training failed"; t_exit; }
newest() { sqlite3 "$D/nb.db" "SELECT checksum FROM models ORDER BY model_id DESC LIMIT 1"; }
A=$(newest)

$NB_BIN/nb-serve --db "$D/nb.db" --model "$D/m.nbw" --port 0 --threads 2 >/dev/null 2>"$D/s.log" &
PID=$!
trap 'kill $PID 2>/dev/null; rm -rf "$T_TMP"' EXIT
PORT=$("$(dirname "$0")"/../tools/serve_port.sh "$D/s.log" $PID 300)
[[ -n $PORT ]] || { t_fail start "$(tail -3 "$D/s.log")"; t_exit; }
URL=http://127.0.0.1:$PORT
health() { curl -s -o "$D/h.json" "$URL/health"; J "print($1)" "$D/h.json"; }
t_eq health_a "$(health 'd["model"], d["reloads"], d["failed_reloads"], d["model_loaded_at"][-1]')" "$A 0 0 Z"

$NB_BIN/nb-train "${SMALL[@]}" --seed 2 >/dev/null 2>&1 || { t_fail train_b "exit $?"; t_exit; }
B=$(newest)
sqlite3 "$D/nb.db" "SELECT user_id FROM candidates GROUP BY user_id" >"$D/users.txt"

# ---- SIGHUP under load: 4 keep-alive clients record (status, model) of every response ----
/usr/bin/python3 - "$PORT" "$D/users.txt" "$D/stop" >"$D/clients.txt" <<'PYEOF' &
import http.client, json, random, sys, threading, os, time
port, users, stop = int(sys.argv[1]), [int(l) for l in open(sys.argv[2])], sys.argv[3]
out, lock = [], threading.Lock()
def client(i):
    rnd, c, seq = random.Random(i), http.client.HTTPConnection("127.0.0.1", port), []
    t_end = time.time() + 120
    while not os.path.exists(stop) and time.time() < t_end:
        body = json.dumps({"user_id": rnd.choice(users), "k": 10})
        try:
            c.request("POST", "/recommend", body, {"Content-Type": "application/json"})
            r = c.getresponse(); data = r.read()
            seq.append((r.status, json.loads(data).get("model", "-") if r.status == 200 else "-"))
        except Exception as e:
            seq.append((0, type(e).__name__)); c = http.client.HTTPConnection("127.0.0.1", port)
    with lock: out.append(seq)
ts = [threading.Thread(target=client, args=(i,)) for i in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
for seq in out:  # one line per client: requests, failures, the models in order of change
    models = [m for _, m in seq]
    changes = [m for j, m in enumerate(models) if j == 0 or m != models[j - 1]]
    print(len(seq), sum(1 for s, _ in seq if s != 200), " ".join(changes))
PYEOF
LOAD=$!
sleep 1
kill -HUP $PID
for _ in $(seq 600); do grep -q "now serving model\|reload refused" "$D/s.log" && break; sleep 0.1; done
sleep 1
touch "$D/stop"
wait $LOAD
t_contains reload_logged "$(cat "$D/s.log")" "now serving model $B"
t_eq clients_reported "$(wc -l <"$D/clients.txt")" 4
t_eq clients_no_failure "$(awk '{f += $2} END {print f + 0}' "$D/clients.txt")" 0
t_eq clients_old_then_new "$(awk -v a="$A" -v b="$B" '{print ($0 ~ (" " b "$") && ($3 == a || $3 == b)) ? "yes" : $0}' \
    "$D/clients.txt" | sort -u)" yes
t_eq clients_saw_old "$(grep -c " $A $B\$" "$D/clients.txt" | awk '{print ($1 > 0)}')" 1
t_eq health_b "$(health 'd["model"], d["reloads"], d["failed_reloads"]')" "$B 1 0"

# ---- wrk across a reload of the same model: no error of any kind --------------------------
{
    echo "local path = \"$D/users.txt\""
    cat <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local users, n = {}, 0
function init(args) for line in io.lines(path) do n = n + 1; users[n] = tonumber(line) end end
function request()
  return wrk.format(nil, "/recommend", nil, string.format('{"user_id": %d}', users[math.random(n)]))
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d\n", summary.requests,
           e.connect + e.read + e.write + e.timeout + e.status))
end
LUA
} >"$D/rec.lua"
wrk -t2 -c8 -d4s -s "$D/rec.lua" "$URL" >"$D/wrk.txt" 2>&1 &
WRK=$!
sleep 1.5
kill -HUP $PID
wait $WRK
read -r _ n_req n_err < <(grep '^RESULT' "$D/wrk.txt")
t_eq wrk_no_errors "$([[ ${n_req:-0} -gt 0 ]] && echo "${n_err:-x}")" 0
for _ in $(seq 300); do [[ $(grep -c "now serving model" "$D/s.log") -ge 2 ]] && break; sleep 0.1; done
t_eq health_reloaded_twice "$(health 'd["model"], d["reloads"]')" "$B 2"

# ---- a corrupt newer model is refused; B keeps serving --------------------------------------
$NB_BIN/nb-train "${SMALL[@]}" --seed 3 >/dev/null 2>&1 || { t_fail train_c "exit $?"; t_exit; }
C_FILE=$(sqlite3 "$D/nb.db" "SELECT path FROM models ORDER BY model_id DESC LIMIT 1")
B_FILE=$(sqlite3 "$D/nb.db" "SELECT path FROM models WHERE checksum = '$B'")
# a corrupt copy replaces the registered file (m.nbw, a link to the original, stays intact)
cp "$C_FILE" "$D/c.tmp"
printf '\xff' | dd of="$D/c.tmp" bs=1 seek=5000 conv=notrunc status=none
mv "$D/c.tmp" "$C_FILE"
kill -HUP $PID
for _ in $(seq 300); do grep -q "reload refused" "$D/s.log" && break; sleep 0.1; done
t_contains corrupt_refused "$(grep 'reload refused' "$D/s.log")" "checksum mismatch"
t_eq corrupt_b_serves "$(health 'd["status"], d["model"], d["reloads"], d["failed_reloads"]')" "ok $B 2 1"
st=$(curl -s -o "$D/r.json" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    --data-binary "{\"user_id\": $(head -1 "$D/users.txt")}" "$URL/recommend")
t_eq corrupt_recommend_b "$st $(J 'print(d["model"])' "$D/r.json")" "200 $B"

# ---- POST /admin/reload: off without a token file, then 401/403/400/404/200/422 -------------
admin() { # admin PORT BODY [CURL ARGS...] -> "status code-or-model"
    local port=$1 body=$2; shift 2
    local st
    st=$(curl -s -o "$D/a.json" -w '%{http_code}' -X POST "$@" ${body:+-H 'Content-Type: application/json' --data-binary "$body"} \
        "http://127.0.0.1:$port/admin/reload")
    echo "$st $(J 'print(d["error"]["code"] if "error" in d else d["model"] + " " + d["previous"])' "$D/a.json" 2>/dev/null)"
}
t_eq admin_off_404 "$(admin "$PORT" "")" "404 not_found"
kill -TERM $PID
wait $PID
t_eq stop_exit $? 0
printf 'reload-test-token-0123456789\n' >"$D/token"
chmod 600 "$D/token"
$NB_BIN/nb-serve --db "$D/nb.db" --model "$B_FILE" --port 0 --threads 2 --admin-token-file "$D/token" \
    >/dev/null 2>"$D/s2.log" &
PID=$!
PORT=$("$(dirname "$0")"/../tools/serve_port.sh "$D/s2.log" $PID 300)
[[ -n $PORT ]] || { t_fail start_token "$(tail -3 "$D/s2.log")"; t_exit; }
URL=http://127.0.0.1:$PORT
TOK=(-H "Authorization: Bearer reload-test-token-0123456789")
t_eq admin_401 "$(admin "$PORT" "")" "401 unauthorized"
t_eq admin_403 "$(admin "$PORT" "" -H "Authorization: Bearer wrong")" "403 forbidden"
t_eq admin_bad_checksum "$(admin "$PORT" '{"checksum": "xyz"}' "${TOK[@]}")" "400 bad_checksum"
t_eq admin_unknown_field "$(admin "$PORT" '{"model": "x"}' "${TOK[@]}")" "400 unknown_field"
t_eq admin_unknown_model "$(admin "$PORT" '{"checksum": "00000000"}' "${TOK[@]}")" "404 unknown_model"
# the newest (corrupt C) is refused; B named by its checksum reloads; A was retired by C
t_eq admin_corrupt_422 "$(admin "$PORT" "" "${TOK[@]}")" "422 reload_failed"
t_eq admin_by_checksum "$(admin "$PORT" "{\"checksum\": \"$B\"}" "${TOK[@]}")" "200 $B $B"
t_eq admin_retired_404 "$(admin "$PORT" "{\"checksum\": \"$A\"}" "${TOK[@]}")" "404 unknown_model"
t_eq admin_health "$(health 'd["model"], d["reloads"], d["failed_reloads"]')" "$B 1 3"
t_eq admin_get_405 "$(curl -s -o /dev/null -w '%{http_code}' "${TOK[@]}" "$URL/admin/reload")" 405
t_contains admin_logged "$(cat "$D/s2.log")" "POST /admin/reload: now serving model $B"
t_eq token_never_logged "$(grep -c 'reload-test-token' "$D/s2.log" "$D/s.log" | awk -F: '{s += $2} END {print s}')" 0

# ---- a clean stop frees every model (the ASan build's leak check sees it) --------------------
kill -TERM $PID
wait $PID
t_eq stop_exit_token $? 0
t_exit

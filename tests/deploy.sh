#!/usr/bin/env bash
# deploy.sh -- deploy/ checked: (1) systemd-analyze verify on the unit files (the binary paths
# pointed at this build), silent when they are right, and it does object to a broken copy;
# skipped with a message where systemd-analyze is missing; (2) deploy/replicas.sh, short:
# two replicas behind nginx, the smoke test through nginx, a replica killed under load and 0
# failed requests.
set -uo pipefail
source tests/lib.sh

# ---- (1) the unit files -------------------------------------------------------------------
if ! command -v systemd-analyze >/dev/null; then
    echo "skip systemd_verify: systemd-analyze is not installed (no systemd here)"
else
    U=$T_TMP/units; mkdir -p "$U"
    for f in deploy/systemd/*; do
        sed "s#/usr/local/bin/#$PWD/$NB_BIN/#g" "$f" >"$U/$(basename "$f")"
    done
    # a template is verified as an instance of it
    mv "$U/nb-serve@.service" "$U/nb-serve@8081.service"
    units=("$U"/*)
    out=$(cd "$U" && systemd-analyze verify "${units[@]}" 2>&1); rc=$?
    t_eq systemd_verify "$rc ${out:0:600}" "0 "
    sed 's/^Restart=on-failure/Restart=sometimes/; s/^ProtectSystem=strict/ProtectSystem=tight/' \
        "$U/nb-serve@8081.service" >"$U/broken@8081.service"
    out=$(cd "$U" && systemd-analyze verify "$U/broken@8081.service" 2>&1)
    t_contains systemd_verify_catches "$out" "Failed to parse protect system value"
    t_eq unit_settings "$(grep -hcE '^(User=nextbasket|ProtectSystem=strict|ReadWritePaths=/var/lib/nextbasket|Restart=on-failure|LoadCredential=admin-token:|ExecReload=/bin/kill -HUP \$MAINPID)' deploy/systemd/nb-serve@.service)" 6
    t_contains timer_unit "$(cat deploy/systemd/nb-retrain.timer)" "OnCalendar="
    t_contains retrain_reloads "$(cat deploy/systemd/nb-retrain.service)" "systemctl reload --no-block nb-serve@*.service"
fi

# ---- install-service.sh into a directory ----------------------------------------------------
if [[ -x $NB_BIN/nb-serve && $NB_BIN == bin ]]; then
    R=$T_TMP/root
    DESTDIR=$R deploy/install-service.sh >"$T_TMP/install.log" 2>&1
    tok=$(cat "$R/etc/nextbasket/admin-token" 2>/dev/null)
    t_eq install_tree "$(cd "$R" 2>/dev/null && find . -type f | sort | tr '\n' ' ')" \
        "./etc/nextbasket/admin-token ./etc/nginx/conf.d/nextbasket.conf ./etc/systemd/system/nb-retrain.service ./etc/systemd/system/nb-retrain.timer ./etc/systemd/system/nb-serve@.service ./usr/local/bin/nb-serve ./usr/local/bin/nb-train ./usr/local/share/doc/nextbasket/API.md ./usr/local/share/doc/nextbasket/openapi.json "
    t_eq install_token "$(stat -c %a "$R/etc/nextbasket/admin-token" 2>&1) $(grep -cE '^[0-9a-f]{64}$' <<<"$tok")" "600 1"
    DESTDIR=$R deploy/install-service.sh >/dev/null 2>&1
    t_eq install_token_kept "$(cat "$R/etc/nextbasket/admin-token")" "$tok"
fi

# ---- (2) replicas behind nginx ------------------------------------------------------------
if ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]]; then
    t_skip replicas "nginx is not installed (deploy/install-deps.sh)"; t_exit
fi
if [[ ! -x $NB_BIN/nb-serve ]]; then t_skip replicas "$NB_BIN/nb-serve not built"; t_exit; fi
out=$(TMPDIR=$T_TMP LOAD_SECONDS=${REPLICAS_LOAD_SECONDS:-4} NB_BIN=$NB_BIN deploy/replicas.sh 2>&1); rc=$?
last=$(tail -1 <<<"$out")
if [[ $rc -eq 0 && $last == *", 0 errors, "*"; PASS" ]]; then t_ok "replicas ($last)"
else t_fail replicas "exit $rc: $(grep -E '^(not ok|replicas.sh)' <<<"$out" | head -5) ${out: -400}"; fi
t_contains replicas_killed "$out" "killed (SIGKILL)"
t_exit

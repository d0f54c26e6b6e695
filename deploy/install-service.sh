#!/usr/bin/env bash
# install-service.sh -- installs nb-serve as systemd services behind nginx (as root):
#   make && deploy/install-service.sh [--store DIR_WITH_nb.db_AND_model.nbw]
# Puts bin/nb-serve and bin/nb-train in /usr/local/bin, the unit files in /etc/systemd/system
# (nb-serve@.service, nb-retrain.service, nb-retrain.timer), the nginx site in
# /etc/nginx/conf.d/nextbasket.conf, the API document in /usr/local/share/doc/nextbasket;
# creates the system user nextbasket, /var/lib/nextbasket (the store's folder, copied from
# --store when given and empty) and a random admin token in /etc/nextbasket/admin-token
# (root, 0600) unless one is there. Then, on a machine running systemd:
#   systemctl daemon-reload
#   systemctl enable --now nb-serve@8081 nb-serve@8082 nb-retrain.timer
#   systemctl reload nginx
# DESTDIR=DIR installs into DIR instead of / and skips creating the user (packaging, tests).
set -euo pipefail
cd "$(dirname "$0")/.."
D=${DESTDIR:-}
STORE=
[[ ${1:-} == --store ]] && STORE=$2
for p in bin/nb-serve bin/nb-train; do [[ -x $p ]] || { echo "install-service.sh: $p not built (make)" >&2; exit 1; }; done
if [[ -z $D ]] && ! id nextbasket >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/nextbasket --shell /usr/sbin/nologin nextbasket
fi
OWNER=$([[ -z $D ]] && echo nextbasket || id -un)
install -d -m 0755 "$D/usr/local/bin" "$D/etc/systemd/system" "$D/etc/nginx/conf.d" \
    "$D/usr/local/share/doc/nextbasket"
install -m 0755 bin/nb-serve bin/nb-train "$D/usr/local/bin/"
install -m 0644 deploy/systemd/nb-serve@.service deploy/systemd/nb-retrain.service \
    deploy/systemd/nb-retrain.timer "$D/etc/systemd/system/"
install -m 0644 deploy/nginx/nextbasket.conf "$D/etc/nginx/conf.d/"
install -m 0644 docs/API.md docs/openapi.json "$D/usr/local/share/doc/nextbasket/"
install -d -m 0750 -o "$OWNER" -g "$(id -gn "$OWNER")" "$D/var/lib/nextbasket"
if [[ -n $STORE && ! -e $D/var/lib/nextbasket/nb.db ]]; then
    # the store, model.nbw, and the files the store's registry names (checksum-named weights
    # and trees, train/publish.h), whose paths are then rewritten to their new place
    LIB=$D/var/lib/nextbasket
    install -m 0640 -o "$OWNER" -g "$(id -gn "$OWNER")" "$STORE/nb.db" "$STORE/model.nbw" "$LIB/"
    for t in models ranker_models; do
        sqlite3 "$LIB/nb.db" "SELECT path FROM $t" 2>/dev/null | while read -r f; do
            [[ -e $f ]] && install -m 0640 -o "$OWNER" -g "$(id -gn "$OWNER")" "$f" "$LIB/"
        done
        sqlite3 "$LIB/nb.db" "UPDATE $t SET path = '/var/lib/nextbasket/' ||
            replace(path, rtrim(path, replace(path, '/', '')), '')" 2>/dev/null || true
    done
fi
install -d -m 0755 "$D/etc/nextbasket"
if [[ ! -e $D/etc/nextbasket/admin-token ]]; then
    (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$D/etc/nextbasket/admin-token")
fi
echo "install-service.sh: installed under ${D:-/}; next: systemctl daemon-reload && systemctl enable --now nb-serve@8081 nb-serve@8082 nb-retrain.timer && systemctl reload nginx"

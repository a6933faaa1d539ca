#!/bin/sh
# Writes the secret files docker-compose.yml mounts at /run/secrets/ (docs/deployment.md "Secrets"):
#
#   sh deploy/make-secrets.sh            # into ./.secrets/
#   sh deploy/make-secrets.sh DIR        # into DIR (tests/test_compose.py does this)
#
# A file that already exists is kept: the vault and payload keys decrypt what the ledger and every workflow
# history hold, so losing them loses that data. Rotate keys by editing the file (new key first).
# Set REFUND_DESK_SMTP_URL before running to write it into smtp_url (then also set
# REFUND_DESK_SMTP_URL_FILE=/run/secrets/smtp_url for compose, docs/deployment.md); left empty, the file is
# only there for compose to mount, and emails wait in the outbox.
#
# The folder is 0700 so no other user of this machine can read a file in it. The files themselves are
# 0644: compose mounts each one into its containers as it is (file-based secrets keep the host's owner and
# mode; `uid`/`mode` in compose's long syntax apply to swarm only), and the containers run as users of
# their own (postgres, temporal, refunddesk 10001, grafana 472) that must read them. Each container mounts
# only the secrets it needs.
set -eu

dir=${1:-.secrets}
umask 077
mkdir -p "$dir"
chmod 700 "$dir"
[ -e "$dir/.gitignore" ] || printf '*\n' > "$dir/.gitignore"

hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
key() { printf '%s:%s' "$1" "$(head -c 32 /dev/urandom | base64 | tr -d '\n')"; }

write() {  # write NAME VALUE: only when NAME is missing
    if [ -e "$dir/$1" ]; then
        echo "kept    $dir/$1"
    else
        printf '%s\n' "$2" > "$dir/$1"
        chmod 644 "$dir/$1"
        echo "wrote   $dir/$1"
    fi
}

write postgres_password "$(hex 24)"
write temporal_db_password "$(hex 24)"
write refund_desk_db_password "$(hex 24)"
# The ledger's URL carries refund_desk's password: written from the file, so the two always agree.
write database_url "postgresql+asyncpg://refund_desk:$(cat "$dir/refund_desk_db_password")@postgresql:5432/refund_desk"
write jwt_secret "$(hex 32)"
write vault_keys "$(key k1)"
write payload_keys "$(key p1)"
write smtp_url "${REFUND_DESK_SMTP_URL:-}"
write grafana_admin_password "$(hex 16)"

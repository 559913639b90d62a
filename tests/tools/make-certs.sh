#!/bin/bash
# make-certs.sh - a throwaway test PKI for the TLS tests (certtool)
#
# Usage: eval "$(tests/tools/make-certs.sh DIR)"
# Writes into DIR: ca.pem/ca-key.pem (test CA), server.pem/server-key.pem
# (localhost, 127.0.0.1, ::1), server2.pem/server2-key.pem (a second
# localhost pair from the same CA, for reload tests), client.pem/
# client-key.pem (a client certificate from the CA), and other-ca.pem +
# other.pem/other-key.pem (a localhost pair from another CA). Prints
# NAME=path lines. Package: gnutls-bin.
set -euo pipefail
dir=$1
mkdir -p "$dir"
cd "$dir"
umask 077
since=$(date -u -d '1 day ago' '+%Y-%m-%d %H:%M:%S')
tmpl() { # file, cn, extra lines
    { echo "cn = \"$2\""; echo "organization = \"smtpipe tests\""; echo "serial = $RANDOM$RANDOM"
      echo "activation_date = \"$since\""; echo "expiration_days = 30"; shift 2; printf '%s\n' "$@"
    } >"$1"
}
cert() { certtool --no-text "$@" >/dev/null 2>certtool.log || { cat certtool.log >&2; exit 1; }; }
server_ext=('dns_name = "localhost"' 'ip_address = "127.0.0.1"' 'ip_address = "::1"'
            tls_www_server signing_key encryption_key)
for ca in ca other-ca; do
    tmpl "$ca.tmpl" "smtpipe $ca" ca cert_signing_key
    cert --generate-privkey --key-type=rsa --bits=2048 --outfile "$ca-key.pem"
    cert --generate-self-signed --load-privkey "$ca-key.pem" --template "$ca.tmpl" --outfile "$ca.pem"
done
issue() { # name, ca, cn, extensions...
    local name=$1 ca=$2 cn=$3
    shift 3
    tmpl "$name.tmpl" "$cn" "$@"
    cert --generate-privkey --key-type=rsa --bits=2048 --outfile "$name-key.pem"
    cert --generate-certificate --load-privkey "$name-key.pem" --load-ca-certificate "$ca.pem" \
        --load-ca-privkey "$ca-key.pem" --template "$name.tmpl" --outfile "$name.pem"
}
issue server ca localhost "${server_ext[@]}"
issue server2 ca localhost "${server_ext[@]}"
issue other other-ca localhost "${server_ext[@]}"
issue client ca "smtpipe test client" tls_www_client signing_key
rm -f ./*.tmpl certtool.log
chmod 644 ./*.pem
for v in ca server server-key server2 server2-key client client-key other-ca other other-key; do
    printf '%s=%s\n' "$(echo "$v" | tr a-z- A-Z_)" "$PWD/$v.pem"
done

#!/usr/bin/env bash
# Makes a throwaway certificate authority and the certificates to try backflow-server's TLS and
# mutual TLS with (docs/security.md, docs/deploy.md). FOR TRYING THINGS OUT,
# NOT A PRODUCTION PKI: the CA's private key sits in a plain file next to the certificates, and
# nothing here revokes, rotates or audits anything. In production use your organisation's CA
# (or cert-manager, Vault, ...), and hand the server only its own certificate and key.
#
# Usage: deploy/gen-certs.sh [DIR] [--days N] [--hosts "localhost,127.0.0.1,backflow"] [--force]
#
# Writes into DIR (default ./backflow-certs), with the openssl command line:
#   ca.pem, ca.key          a self-signed CA (EC P-256), the root clients trust (--tls-ca)
#   server.pem, server.key  the server's certificate, signed by the CA: subjectAltName holds every
#                           name of --hosts (IP addresses as IP entries, the rest as DNS),
#                           extendedKeyUsage serverAuth (--tls-cert, --tls-key)
#   client.pem, client.key  a client certificate, CN=backflow-client, extendedKeyUsage
#                           clientAuth, for a server started with --tls-client-ca DIR/ca.pem
# Keys are EC P-256 (PKCS#8 PEM), mode 0600; certificates 0644. Every certificate is valid for
# --days (default 365). An existing CA in DIR is never replaced without --force (the
# certificates it signed would stop being trusted); with --force all six files are made anew.
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}

die() {
  echo "gen-certs: $*" >&2
  exit 2
}

dir=""
days=365
hosts="localhost,127.0.0.1,backflow"
force=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --days) [[ $# -ge 2 ]] || die "--days needs a value"; days=$2; shift 2 ;;
    --days=*) days=${1#--days=}; shift ;;
    --hosts) [[ $# -ge 2 ]] || die "--hosts needs a value"; hosts=$2; shift 2 ;;
    --hosts=*) hosts=${1#--hosts=}; shift ;;
    --force) force=1; shift ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) [[ -z "$dir" ]] || die "one DIR only (got '$dir' and '$1')"; dir=$1; shift ;;
  esac
done
dir=${dir:-./backflow-certs}

[[ "$days" =~ ^[1-9][0-9]*$ ]] || die "--days must be a positive whole number of days, not '$days'"
command -v openssl >/dev/null || die "openssl is not installed (Debian: apt-get install openssl)"

# subjectAltName: IPv4 and IPv6 addresses as IP entries, everything else as DNS names.
san=()
IFS=',' read -r -a names <<< "$hosts"
for raw in "${names[@]}"; do
  name=${raw//[[:space:]]/}
  [[ -n "$name" ]] || continue
  if [[ "$name" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ || "$name" == *:* ]]; then
    san+=("IP:$name")
  elif [[ "$name" =~ ^(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ]]; then
    san+=("DNS:$name")
  else
    die "--hosts: '$raw' is neither an IP address nor a DNS name"
  fi
done
[[ ${#san[@]} -gt 0 ]] || die "--hosts names no host"
san_line=$(IFS=','; echo "${san[*]}")
first_host=${san[0]#*:}

if [[ -e "$dir/ca.pem" || -e "$dir/ca.key" ]] && [[ $force -eq 0 ]]; then
  die "$dir already holds a CA (ca.pem/ca.key): not replacing it, since every certificate it" \
      "signed would stop being trusted. Pass --force to make a new CA and new certificates," \
      "or choose another DIR."
fi

mkdir -p "$dir"
# Everything is made in a temporary directory inside DIR and moved into place at the end, so an
# error leaves DIR as it was.
work=$(mktemp -d "$dir/.gen-certs.XXXXXX")
trap 'rm -rf "$work"' EXIT
umask 077

new_key() {  # EC P-256, PKCS#8 PEM
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

serial() {  # a random positive 127-bit serial number
  echo "0x$(openssl rand -hex 16 | sed 's/^./7/')"
}

# The CA: self-signed, allowed to sign certificates and nothing below it to be a CA.
new_key "$work/ca.key"
cat > "$work/ca.ext" <<'EOF'
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
openssl req -new -key "$work/ca.key" -subj "/O=backflow (for testing)/CN=backflow test CA" \
  -out "$work/ca.csr"
openssl x509 -req -in "$work/ca.csr" -signkey "$work/ca.key" -days "$days" -sha256 \
  -set_serial "$(serial)" -extfile "$work/ca.ext" -out "$work/ca.pem" 2>/dev/null

sign() {  # sign NAME SUBJECT EXTENSIONS: NAME.key, NAME.pem signed by the CA
  local name=$1 subject=$2 extensions=$3
  new_key "$work/$name.key"
  openssl req -new -key "$work/$name.key" -subj "$subject" -out "$work/$name.csr"
  printf '%s\n' "$extensions" > "$work/$name.ext"
  openssl x509 -req -in "$work/$name.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
    -days "$days" -sha256 -set_serial "$(serial)" -extfile "$work/$name.ext" \
    -out "$work/$name.pem" 2>/dev/null
  openssl verify -CAfile "$work/ca.pem" "$work/$name.pem" >/dev/null
}

sign server "/O=backflow (for testing)/CN=$first_host" "basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = $san_line
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid"

sign client "/O=backflow (for testing)/CN=backflow-client" "basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid"

chmod 0600 "$work"/*.key
chmod 0644 "$work"/*.pem
for file in ca.pem ca.key server.pem server.key client.pem client.key; do
  mv -f "$work/$file" "$dir/$file"
done

not_after=$(openssl x509 -in "$dir/ca.pem" -noout -enddate | cut -d= -f2)
cat <<EOF
gen-certs: made in $dir (FOR TRYING THINGS OUT, NOT A PRODUCTION PKI; valid until $not_after):
  ca.pem, ca.key          test CA (EC P-256); keep ca.key private, hand out ca.pem
  server.pem, server.key  server certificate for $san_line (serverAuth)
  client.pem, client.key  client certificate CN=backflow-client (clientAuth)

Server (TLS; add --tls-client-ca to require client certificates signed by this CA):
  backflow-server --tls-cert=$dir/server.pem --tls-key=$dir/server.key
  backflow-server --tls-cert=$dir/server.pem --tls-key=$dir/server.key --tls-client-ca=$dir/ca.pem

Clients (the address must be one of the names above):
  backflow --server $first_host:50051 --tls-ca $dir/ca.pem health
  backflow --server $first_host:50051 --tls-ca $dir/ca.pem --tls-cert $dir/client.pem --tls-key $dir/client.key health
  Python: Client("$first_host:50051", root_certificates="$dir/ca.pem",
                 certificate_chain="$dir/client.pem", private_key="$dir/client.key")
         (or BACKFLOW_TLS_CA, BACKFLOW_TLS_CERT, BACKFLOW_TLS_KEY in the environment)
EOF

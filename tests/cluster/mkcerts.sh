#!/bin/sh
# mkcerts.sh DIR NAME...: a test CA (DIR/ca.crt, DIR/ca.key, made once) and for each NAME a key
# and a certificate with CN=NAME signed by it (DIR/NAME.key, DIR/NAME.crt); P-256, 10 years.
# Certificates a first DIR's CA does not know: run it again into another DIR.
set -eu
dir=$1; shift
mkdir -p "$dir" && cd "$dir"
ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
[ -e ca.crt ] || openssl req -x509 $ec -days 3650 -subj "/CN=pstor test CA $(basename "$PWD")" \
	-keyout ca.key -out ca.crt 2>/dev/null
for n; do
	openssl req $ec -subj "/CN=$n" -keyout "$n.key" -out "$n.csr" 2>/dev/null
	openssl x509 -req -in "$n.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
		-out "$n.crt" 2>/dev/null
	rm "$n.csr"
done

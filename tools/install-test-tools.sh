#!/usr/bin/env bash
# Installs the system tools some tests drive for real, from Debian's packages:
# Go + protoc plugins (the seed's Go client is built against proto/whatsapp.proto)
# and promtool (alert rules). Python tools come from uv.lock, not from here.
# Without apt-get or root this prints what is missing and leaves it to the tests,
# which then say which tool they could not find.
set -euo pipefail

packages=(golang-go golang-google-grpc-dev golang-github-golang-protobuf-1-5-dev
          protoc-gen-go protoc-gen-go-grpc protobuf-compiler prometheus)
commands=(go protoc protoc-gen-go protoc-gen-go-grpc promtool)

missing=()
for c in "${commands[@]}"; do command -v "$c" >/dev/null || missing+=("$c"); done
[ -d /usr/share/gocode/src/google.golang.org/grpc ] || missing+=("grpc-go sources")
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo -n"
if ! command -v apt-get >/dev/null || { [ -n "$sudo" ] && ! sudo -n true 2>/dev/null; }; then
    echo "install-test-tools: cannot install ${missing[*]} (needs apt-get and root);" \
         "the tests that use them will say so" >&2
    exit 0
fi
echo "install-test-tools: installing ${packages[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y -q --no-install-recommends "${packages[@]}" >/dev/null 2>&1 || {
    $sudo apt-get update -q >/dev/null 2>&1
    $sudo apt-get install -y -q --no-install-recommends "${packages[@]}" >/dev/null
}

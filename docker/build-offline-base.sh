#!/usr/bin/env bash
# Builds the base image (default tag node:24-slim) without pulling anything from a registry, for
# machines that cannot reach Docker Hub: a Debian bookworm root filesystem from debootstrap, the
# Node.js binary and npm from the npm registry, and optionally an extra CA bundle (a corporate
# proxy's root) that Node, npm and the Claude Code binary then trust. `FROM node:24-slim` in
# docker/Dockerfile builds unchanged on top of it.
#
#   docker/build-offline-base.sh                       # node:24-slim, host arch
#   docker/build-offline-base.sh --tag node:24-slim --ca /etc/ssl/certs/ca-certificates.crt
#
# Needs root, debootstrap, npm, and a Docker engine; reaches the Debian mirror this machine's apt
# uses (or --mirror URL) and the npm registry npm is configured with.
set -euo pipefail

tag=node:24-slim
node_major=24
npm_version=11.21.2
ca=
mirror=
while (($#)); do
  case "$1" in
    --tag) tag=$2; shift 2 ;;
    --node) node_major=$2; shift 2 ;;
    --ca) ca=$2; shift 2 ;;
    --mirror) mirror=$2; shift 2 ;;
    -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
for tool in debootstrap npm docker tar; do
  command -v "$tool" >/dev/null || { echo "error: $tool is needed to build the base image" >&2; exit 2; }
done
[[ -z "$ca" || -r "$ca" ]] || { echo "error: cannot read CA bundle $ca" >&2; exit 2; }

# The bookworm mirror of this machine's apt sources (deb822 .sources, then one-line lists).
apt_mirror() {
  local file
  for file in /etc/apt/sources.list.d/*.sources; do
    [[ -r "$file" ]] && awk 'BEGIN { RS = "" }
      /Suites:[^\n]*[ \t]bookworm([ \t\n]|$)/ && match($0, /URIs:[ \t]*[^ \t\n]+/) {
        uri = substr($0, RSTART, RLENGTH); sub(/URIs:[ \t]*/, "", uri); print uri; exit
      }' "$file"
  done
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -r "$file" ]] && awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' "$file"
  done
  true
}
[[ -n "$mirror" ]] || mirror=$(apt_mirror | head -n 1)
[[ -n "$mirror" ]] || { echo "error: no bookworm mirror in /etc/apt/sources.list*: pass --mirror URL" >&2; exit 2; }

case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "error: unsupported architecture $(uname -m)" >&2; exit 2 ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs

echo "debootstrap bookworm (minbase) from $mirror"
debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
  { tail -20 "$work/debootstrap.log" >&2; exit 1; }
# Keep the image small, as the official slim images do: no downloaded packages, apt lists,
# documentation or translations.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*

echo "Node.js $node_major ($arch) and npm $npm_version from the npm registry"
(cd "$work" && npm pack --silent "node-linux-$arch@$node_major" "npm@$npm_version" >/dev/null)
mkdir -p "$work/node" "$rootfs/usr/local/lib/node_modules/npm"
tar -xzf "$work"/node-linux-"$arch"-*.tgz -C "$work/node"
install -m 0755 "$work/node/package/bin/node" "$rootfs/usr/local/bin/node"
# The npm package ships the binary with its symbols; the official images strip them.
if command -v strip >/dev/null && [[ "$arch" == "$(uname -m | sed 's/x86_64/x64/;s/aarch64/arm64/')" ]]; then
  strip "$rootfs/usr/local/bin/node"
fi
tar -xzf "$work"/npm-"$npm_version".tgz -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"

changes=(--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --change 'CMD ["node"]')
if [[ -n "$ca" ]]; then
  # Node adds it to its own roots; tools that read the system bundle find it there too.
  install -D -m 0644 "$ca" "$rootfs/usr/local/share/ca-certificates/extra-ca.crt"
  mkdir -p "$rootfs/etc/ssl/certs"
  cat "$ca" >>"$rootfs/etc/ssl/certs/ca-certificates.crt"
  changes+=(--change 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/ca-certificates/extra-ca.crt')
fi

echo "importing as $tag"
tar -C "$rootfs" -c . | docker import "${changes[@]}" - "$tag" >/dev/null
docker run --rm "$tag" node --version

#!/usr/bin/env bash
# Builds the base image (default tag node:24-slim) without pulling anything from a registry, for
# machines that cannot reach Docker Hub: a Debian bookworm root filesystem from debootstrap, the
# Node.js binary and npm from the npm registry, and optionally an extra CA bundle (a corporate
# proxy's root) that Node, npm and the Claude Code binary then trust. `FROM node:24-slim` in
# docker/Dockerfile builds unchanged on top of it.
#
#   docker/build-offline-base.sh                          # node:24-slim, this machine's platform
#   docker/build-offline-base.sh --platform linux/arm64   # node:24-slim-arm64, under emulation
#   docker/build-offline-base.sh --tag node:24-slim --ca /etc/ssl/certs/ca-certificates.crt
#
# Needs root, debootstrap, npm, and a Docker engine; reaches the Debian mirror this machine's apt
# uses (or --mirror URL) and the npm registry npm is configured with. Another platform's root
# filesystem is finished under emulation (qemu-user-static and binfmt_misc; about 5 minutes), and
# the image is labelled with that platform when dockerd runs with --experimental.
set -euo pipefail

tag=
node_version=24.21.0
npm_version=11.21.2
ca=
mirror=
platform=
while (($#)); do
  case "$1" in
    --tag) tag=$2; shift 2 ;;
    --node) node_version=$2; shift 2 ;;
    --ca) ca=$2; shift 2 ;;
    --mirror) mirror=$2; shift 2 ;;
    --platform) platform=$2; shift 2 ;;
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
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

# Debian and Node.js name architectures differently.
case "$(uname -m)" in
  x86_64) native=linux/amd64 ;;
  aarch64 | arm64) native=linux/arm64 ;;
  *) echo "error: unsupported architecture $(uname -m)" >&2; exit 2 ;;
esac
platform=${platform:-$native}
case "$platform" in
  linux/amd64) deb_arch=amd64 arch=x64 triplet=x86_64-linux-gnu qemu=qemu-x86_64 ;;
  linux/arm64) deb_arch=arm64 arch=arm64 triplet=aarch64-linux-gnu qemu=qemu-aarch64 ;;
  *) echo "error: unsupported platform $platform (linux/amd64 or linux/arm64)" >&2; exit 2 ;;
esac
foreign=
if [[ "$platform" != "$native" ]]; then
  foreign=1
  [[ -e /proc/sys/fs/binfmt_misc/$qemu ]] || {
    echo "error: building $platform on $native needs emulation: apt-get install qemu-user-static binfmt-support, and mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc" >&2
    exit 2
  }
fi
tag=${tag:-node:${node_version%%.*}-slim${foreign:+-$deb_arch}}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs

echo "debootstrap bookworm (minbase, $deb_arch) from $mirror"
debootstrap --variant=minbase --arch="$deb_arch" bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
  { tail -20 "$work/debootstrap.log" >&2; exit 1; }
# Keep the image small, as the official slim images do: no downloaded packages, apt lists,
# documentation or translations.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*

echo "Node.js $node_version ($arch) and npm $npm_version from the npm registry"
(cd "$work" && npm pack --silent "node-linux-$arch@$node_version" "npm@$npm_version" >/dev/null)
mkdir -p "$work/node" "$rootfs/usr/local/lib/node_modules/npm"
tar -xzf "$work"/node-linux-"$arch"-*.tgz -C "$work/node"
install -m 0755 "$work/node/package/bin/node" "$rootfs/usr/local/bin/node"
# The npm package ships the binary with its symbols (18 MB of them); the official images strip
# them. Another platform's binary needs that platform's strip (binutils-<triplet>).
strip=strip
[[ -z "$foreign" ]] || strip=$triplet-strip
if command -v "$strip" >/dev/null; then
  "$strip" "$rootfs/usr/local/bin/node"
else
  echo "note: no $strip (binutils-$triplet): Node.js keeps its symbols" >&2
fi
tar -xzf "$work"/npm-"$npm_version".tgz -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"

# Made from scratch with the classic builder rather than `docker import`, which labels the image
# with the machine's platform whatever it is told; `build --platform` labels it right.
cat >"$work/Dockerfile" <<DOCKERFILE
FROM scratch
ADD rootfs.tar /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["node"]
DOCKERFILE
if [[ -n "$ca" ]]; then
  # Node adds it to its own roots; tools that read the system bundle find it there too.
  install -D -m 0644 "$ca" "$rootfs/usr/local/share/ca-certificates/extra-ca.crt"
  mkdir -p "$rootfs/etc/ssl/certs"
  cat "$ca" >>"$rootfs/etc/ssl/certs/ca-certificates.crt"
  echo 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/ca-certificates/extra-ca.crt' >>"$work/Dockerfile"
fi
tar -C "$rootfs" -cf "$work/rootfs.tar" .
printf 'rootfs\n*.log\n' >"$work/.dockerignore"

echo "building $tag ($platform)"
build=(build --quiet --tag "$tag")
# Another platform: the classic builder labels it only when dockerd runs with --experimental.
[[ -z "$foreign" ]] || build+=(--platform "$platform")
DOCKER_BUILDKIT=0 docker "${build[@]}" "$work" >/dev/null
docker run --rm ${foreign:+--platform "$platform"} "$tag" sh -c 'echo "$(uname -m), Node.js $(node --version)"'

#!/usr/bin/env bash
# Builds the image from anywhere: the context is the repository root.
#   docker/build.sh                                   parallel-orchestrator:latest, this machine
#   docker/build.sh --platform linux/arm64            parallel-orchestrator:latest-arm64
#   docker/build.sh --tag my/repo:1.2 --platform linux/amd64,linux/arm64 --push    (needs buildx)
#   docker/build.sh --if-changed ...                  nothing to do when the image exists and was
#                                                     built from the same inputs
# Other arguments go to the builder (e.g. --build-arg CLAUDE_CODE_VERSION=2.1.332). Without
# buildx, another platform is built with the classic builder: the build stage on this machine's
# base, only the runtime stage on that platform's base (docker/build-offline-base.sh --platform),
# which needs emulation and dockerd --experimental.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tag=
platform=
push=
if_changed=
extra=()
while (($#)); do
  case "$1" in
    --tag | -t) tag=$2; shift 2 ;;
    --platform) platform=$2; shift 2 ;;
    --push) push=1; shift ;;
    --if-changed) if_changed=1; shift ;;
    -h | --help) sed -n '2,11p' "$0"; exit 0 ;;
    *) extra+=("$1"); shift ;;
  esac
done

case "$(uname -m)" in
  x86_64) native=linux/amd64 ;;
  aarch64 | arm64) native=linux/arm64 ;;
  *) native=linux/$(uname -m) ;;
esac
foreign=
[[ -z "$platform" || "$platform" == "$native" || "$platform" == *,* ]] || foreign=${platform#linux/}
tag=${tag:-parallel-orchestrator:latest${foreign:+-$foreign}}

# What the image is made of: the Dockerfile, the lockfile, the manifests and sources of the runtime
# and the contracts, the build arguments and the base image. Equal inputs make an equal image.
node_image=$(sed -n 's/^ARG NODE_IMAGE=//p' "$root/docker/Dockerfile")
base=${node_image}${foreign:+-$foreign}
inputs=$(
  cd "$root" && {
    cat docker/Dockerfile pnpm-lock.yaml packages/{contracts,runtime}/{package.json,tsconfig.json}
    find packages/contracts/src packages/runtime/src -type f | LC_ALL=C sort | xargs cat
    printf '%s\n' "$platform" "${extra[@]+"${extra[@]}"}"
    docker image inspect --format '{{.Id}}' "$base" 2>/dev/null || true
  } | sha256sum | cut -c1-16
)
label=org.parallel-orchestrator.inputs
if [[ -n "$if_changed" ]] &&
  [[ "$(docker image inspect --format "{{index .Config.Labels \"$label\"}}" "$tag" 2>/dev/null)" == "$inputs" ]]; then
  echo "$tag is up to date (inputs $inputs)"
  exit 0
fi
extra+=(--label "$label=$inputs")

if docker buildx version >/dev/null 2>&1; then
  args=(buildx build --file "$root/docker/Dockerfile" --tag "$tag")
  [[ -n "$platform" ]] && args+=(--platform "$platform")
  if [[ -n "$push" ]]; then args+=(--push); else args+=(--load); fi
  exec docker "${args[@]}" "${extra[@]}" "$root"
fi
if [[ "$platform" == *,* || -n "$push" && -n "$platform" ]]; then
  echo "error: multi-platform builds and --push with --platform need docker buildx" >&2
  exit 2
fi
# Without buildx: the classic builder, one platform at a time.
if [[ -n "$foreign" ]]; then
  docker image inspect "$base" >/dev/null 2>&1 ||
    { echo "error: no $base: build it with docker/build-offline-base.sh --platform $platform" >&2; exit 2; }
  # The build stage on this machine, with the target's Claude Code; then the target's image from it
  # (its runtime stage alone runs under emulation).
  app="parallel-orchestrator-build:$foreign"
  cross=(--build-arg "BUILD_IMAGE=$node_image" --build-arg "TARGETARCH=$foreign")
  DOCKER_BUILDKIT=0 docker build --file "$root/docker/Dockerfile" --target build --tag "$app" \
    --build-arg "NODE_IMAGE=$node_image" "${cross[@]}" "${extra[@]}" "$root"
  extra+=(--platform "$platform" --build-arg "NODE_IMAGE=$base" --build-arg "APP_IMAGE=$app" "${cross[@]}")
fi
DOCKER_BUILDKIT=0 docker build --file "$root/docker/Dockerfile" --tag "$tag" "${extra[@]}" "$root"
if [[ -n "$push" ]]; then docker push "$tag"; fi

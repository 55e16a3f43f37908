#!/usr/bin/env bash
# Builds the image from anywhere: the context is the repository root.
#   docker/build.sh                                   parallel-orchestrator:latest, this machine
#   docker/build.sh --tag my/repo:1.2 --platform linux/amd64,linux/arm64 --push    (needs buildx)
# Other arguments go to the builder (e.g. --build-arg CLAUDE_CODE_VERSION=2.1.332).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tag=parallel-orchestrator:latest
platform=
push=
extra=()
while (($#)); do
  case "$1" in
    --tag | -t) tag=$2; shift 2 ;;
    --platform) platform=$2; shift 2 ;;
    --push) push=1; shift ;;
    -h | --help) sed -n '2,5p' "$0"; exit 0 ;;
    *) extra+=("$1"); shift ;;
  esac
done

if docker buildx version >/dev/null 2>&1; then
  args=(buildx build --file "$root/docker/Dockerfile" --tag "$tag")
  [[ -n "$platform" ]] && args+=(--platform "$platform")
  if [[ -n "$push" ]]; then args+=(--push); else args+=(--load); fi
  exec docker "${args[@]}" "${extra[@]}" "$root"
fi
if [[ -n "$platform" && "$platform" == *,* || -n "$push" && -n "$platform" ]]; then
  echo "error: multi-platform builds and --push with --platform need docker buildx" >&2
  exit 2
fi
# Without buildx: the classic builder, for this machine's platform.
DOCKER_BUILDKIT=0 docker build --file "$root/docker/Dockerfile" --tag "$tag" "${extra[@]}" "$root"
if [[ -n "$push" ]]; then docker push "$tag"; fi

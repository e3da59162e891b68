#!/usr/bin/env bash
# Builds the kit that bench/gpu/run.sh needs on the device machine (an H200 with a Vulkan driver
# and PyTorch, but no Node and no network), into .gpukit/ (git-ignored):
#   node            this machine's Node binary
#   app/ours.mjs    bench/ours.ts bundled by esbuild with jax-js and our code (sharp stubbed out:
#                   the benchmark reads no image; onnxruntime-node left out: it runs with --no-ort)
#   app/node_modules/webgpu   Dawn for Linux x64 only (index.js, package.json, dawn.node)
# all in one tar.xz, cut into parts of at most $PART_MB MiB (default 9): a call to the device
# machine carries the working tree and its carried paths within 64 MiB, and the tracked tree
# takes about 54, so the kit travels a part per call (see bench/gpu/README.md).
# Also the Vulkan loader packages the device README names, into .gl/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/../.."
PART_MB=${PART_MB:-9}
rm -rf .gpukit && mkdir -p .gpukit/app/node_modules/webgpu/dist/linux-x64 .gpukit/parts
npx esbuild bench/ours.ts --bundle --platform=node --format=esm --target=node20 \
  --outfile=.gpukit/app/ours.mjs --external:onnxruntime-node --external:webgpu \
  --alias:sharp=./bench/gpu/sharp-stub.mjs --log-level=warning \
  --banner:js="import { createRequire as __anrRequire } from 'node:module'; const require = __anrRequire(import.meta.url);"
cp node_modules/webgpu/index.js node_modules/webgpu/package.json .gpukit/app/node_modules/webgpu/
cp node_modules/webgpu/dist/linux-x64/dawn.node .gpukit/app/node_modules/webgpu/dist/linux-x64/
cp "$(readlink -f "$(command -v node)")" .gpukit/node
tar -C .gpukit -cf - node app | xz -T"${XZ_THREADS:-0}" -9 > .gpukit/kit.tar.xz
split -b "${PART_MB}M" -d -a 2 .gpukit/kit.tar.xz .gpukit/parts/part-
rm -rf .gpukit/node .gpukit/app
# The Vulkan loader for the device machine (its README: bring libvulkan1 if ldconfig lacks it).
if [ ! -d .gl ]; then
  mkdir -p .gl /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  apt-get $o update -qq && (cd .gl && apt-get $o download libvulkan1)
fi
grep -qxF '/.gpukit/' .git/info/exclude 2>/dev/null || echo '/.gpukit/' >> .git/info/exclude
grep -qxF '/.gl/' .git/info/exclude 2>/dev/null || echo '/.gl/' >> .git/info/exclude
ls -l .gpukit/parts .gl
echo "kit: $(ls .gpukit/parts | wc -l) part(s) of at most ${PART_MB} MiB in .gpukit/parts; see bench/gpu/README.md"

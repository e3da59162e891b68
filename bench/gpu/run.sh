#!/usr/bin/env bash
# The GPU benchmark, on the device machine (an H200, NVIDIA's Vulkan driver, PyTorch with CUDA; no
# Node, no network): our training step and a large decode on WebGPU (jax-js on Dawn on Vulkan),
# against PyTorch on CUDA on the same GPU, interleaved: ours, PyTorch, ours, PyTorch, … each in a
# process of its own. Needs the kit of bench/gpu/make-kit.sh in .gpukit/parts (or already unpacked
# in $KIT by an earlier call) and the Vulkan loader packages in .gl/ where the machine lacks one.
#
# Settings (environment): CONFIG (paper: celeba128-anr-d5, batch 6, 128²), DECODE (512: the decode's
# side), ROUNDS (3), TORCH_DEVICE (cuda), OUT (where the JSON and the table go; the device tool
# sets it), KIT (/tmp/anr-gpukit). On a machine without a GPU, Chromium's SwiftShader lets the
# whole script run for a check (slowly): CONFIG=small DECODE=64 ROUNDS=1 TORCH_DEVICE=cpu
# LD_LIBRARY_PATH=/usr/lib/chromium VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
CONFIG=${CONFIG:-paper}
DECODE=${DECODE:-512}
ROUNDS=${ROUNDS:-3}
TORCH_DEVICE=${TORCH_DEVICE:-cuda}
OUT=${OUT:-/tmp/anr-gpu-out}
KIT=${KIT:-/tmp/anr-gpukit}
mkdir -p "$OUT" "$KIT"

if [ ! -x "$KIT/node" ]; then
  [ -d .gpukit/parts ] || { echo "no kit: run bench/gpu/make-kit.sh here first"; exit 2; }
  cat .gpukit/parts/part-* | xz -dc | tar -x -C "$KIT"
fi
# The Vulkan loader, where a GPU machine has none (the device README's steps; it unpacks into /,
# so only where an NVIDIA driver says this is the device machine).
if command -v nvidia-smi >/dev/null && ! ldconfig -p | grep -q 'libvulkan.so.1 ' && [ -d .gl ]; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] && [ -z "${VK_ICD_FILENAMES:-}" ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
NODE="$KIT/node"
APP="$KIT/app/ours.mjs"
PY=${PY:-python3}
"$NODE" --version
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'

INIT="$OUT/init"
# The weights, images and noise both sides start from (and our first two steps' losses).
ANR_THREADS=1 "$NODE" "$APP" --config "$CONFIG" --device webgpu --dump "$INIT" --dump-only
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round: ours (webgpu)"
  ANR_THREADS=1 "$NODE" "$APP" --config "$CONFIG" --device webgpu --decode-size "$DECODE" --decode-reps 3 \
    --no-ort > "$OUT/ours-$round.json"
  echo "round $round: PyTorch ($TORCH_DEVICE)"
  "$PY" bench/torch_step.py --init "$INIT" --device "$TORCH_DEVICE" --decode-size "$DECODE" --decode-reps 3 \
    --steps 5 --warmup 2 --json > "$OUT/torch-$round.json"
done
"$PY" - "$OUT" "$ROUNDS" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
rows = []
for r in range(1, rounds + 1):
    o = json.load(open(f'{out}/ours-{r}.json'))
    t = json.loads(open(f'{out}/torch-{r}.json').read().strip().splitlines()[-1])
    rows.append((r, o, t))
print(f"\n{rows[0][1]['backend']} vs PyTorch {rows[0][2]['torch']} on {rows[0][2]['device']}, config {rows[0][1]['config']}")
print('| round | ours step ms | PyTorch step ms | step ratio (ours/PyTorch) | ours decode px/s | PyTorch decode px/s | decode ratio | first 2 losses ours / PyTorch |')
print('|---|---|---|---|---|---|---|---|')
sr, dr = [], []
for r, o, t in rows:
    s = o['step_ms_median'] / t['step_ms_median']
    d = o['decode_pixels_per_s'] / t['decode_pixels_per_s']
    sr.append(s); dr.append(d)
    print(f"| {r} | {o['step_ms_median']:.1f} | {t['step_ms_median']:.1f} | {s:.2f}× | {o['decode_pixels_per_s']/1e6:.2f} M | {t['decode_pixels_per_s']/1e6:.2f} M | {d:.2f}× | {o['losses']} / {t['losses']} |")
print(f"\nstep ratio median {statistics.median(sr):.2f}× [{min(sr):.2f}–{max(sr):.2f}]; decode ratio median {statistics.median(dr):.2f}× [{min(dr):.2f}–{max(dr):.2f}]")
json.dump({'rounds': [{'round': r, 'ours': o, 'torch': {k: v for k, v in t.items() if k != 'blas'}} for r, o, t in rows]}, open(f'{out}/gpu.json', 'w'), indent=1)
PY

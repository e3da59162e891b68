#!/usr/bin/env bash
# Render data/multiview (learnit layout, category "objects") from 3-D models shipped in Debian:
#   apt-get install blender assimp-utils assimp-testmodels glmark2-data
#   scripts/render_multiview.sh            # from the repository root; THREADS=2 to use more cores
# Models, versions and licences: data/multiview/SOURCES.md. Everything below is deterministic
# (fixed per-object camera seeds; Cycles' own seed is fixed).
set -euo pipefail
cd "$(dirname "$0")/.."

A=/usr/share/assimp/models         # assimp-testmodels
G=/usr/share/glmark2/models        # glmark2-data
OUT=data/multiview/objects
THREADS=${THREADS:-1}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# Formats Blender 3.4 cannot import (.3ds), or a .dae it cannot parse (teapots.DAE writes decimal
# commas, "0,588235"), are converted to .obj by assimp first.
assimp export "$G/horse.3ds" "$TMP/horse.obj" >/dev/null
assimp export "$G/cat.3ds" "$TMP/cat.obj" >/dev/null
assimp export "$A/Collada/teapots.DAE" "$TMP/teapots.obj" >/dev/null

rm -rf "$OUT"
mkdir -p "$OUT"
render() {
  blender -b --factory-startup -t "$THREADS" --python-exit-code 1 -P scripts/render_multiview.py -- --out "$OUT" "$@" \
    | grep -E '^\[render_multiview\]|Error'
}
# --color: models without their own material/texture (or assimp's default grey) get a solid sRGB
# colour; --rot: Euler XYZ degrees that make +z the model's up.
render --id duck    --model "$A/Collada/duck.dae"
render --id spider  --model "$A/OBJ/spider.obj"
render --id teapots --model "$TMP/teapots.obj" --texture-dir "$A/LWO/LWO2/MappingModes"
render --id wuson   --model "$A/OBJ/WusonOBJ.obj" --color 0.30,0.50,0.85
render --id bunny   --model "$G/bunny.obj"        --color 0.85,0.55,0.35
render --id horse   --model "$TMP/horse.obj"      --color 0.55,0.33,0.18 --rot 0,90,0
render --id cat     --model "$TMP/cat.obj"        --color 0.75,0.75,0.70 --rot 90,0,0

cat > data/multiview/objects_splits.json <<'EOF'
{
 "train": ["duck", "spider", "wuson", "bunny", "horse"],
 "test": ["cat", "teapots"]
}
EOF
du -sh data/multiview

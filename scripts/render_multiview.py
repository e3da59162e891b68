"""Render one 3-D model into a learnit-style multi-view object folder (Blender Python, headless).

    blender -b --factory-startup -t 1 --python-exit-code 1 -P scripts/render_multiview.py -- \
        --model MODEL --id ID --out data/multiview/objects [--color R,G,B] [--rot RX,RY,RZ] [--seed N]

Writes OUT/ID/r_0.png … r_{n-1}.png (RGBA, transparent background) and OUT/ID/transforms.json
({"camera_angle_x", "frames": [{"file_path": "./r_i", "transform_matrix": camera-to-world 4×4}]},
Blender's camera convention: the camera looks along −z, x right, y up).

The model is normalised: its world bounding box is centred at the origin and it is scaled so the
farthest vertex lies at distance 1 (inside the unit sphere); world up is +z. Cameras sit on the
upper hemisphere at radius 4 looking at the origin, azimuth uniform in [0, 2π) and elevation uniform
in [10°, 60°], drawn from random.Random(seed ^ crc32(id)), so the views are the same on every run.
"""

import argparse
import json
import math
import os
import random
import struct
import sys
import time
import zlib

import bpy
from mathutils import Euler, Matrix, Vector

CAMERA_ANGLE_X = 0.6911112070083618  # learnit's (ShapeNet NeRF renders)
RADIUS = 4.0
ELEV_RANGE = (math.radians(10.0), math.radians(60.0))


def parse_args():
    argv = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else []
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help=".obj/.dae/.ply/.stl/.fbx/.gltf/.glb file")
    p.add_argument("--id", required=True, help="object id (folder name)")
    p.add_argument("--out", required=True, help="category folder, e.g. data/multiview/objects")
    p.add_argument("--views", type=int, default=24)
    p.add_argument("--res", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--samples", type=int, default=32, help="Cycles samples per pixel")
    p.add_argument("--color", default=None, help="R,G,B in [0,1] (sRGB): replace every material by this solid colour")
    p.add_argument("--rot", default="0,0,0", help="RX,RY,RZ: XYZ Euler rotation (degrees) applied before normalising, to make +z up")
    p.add_argument("--texture-dir", action="append", default=[], help="extra folder to look for missing textures in")
    p.add_argument("--axis-views", action="store_true", help="check orientation: 5 views from +x, +y, -x, -y, +z (not learnit data)")
    return p.parse_args(argv)


def import_model(path):
    ext = os.path.splitext(path)[1].lower()
    if ext == ".obj":
        bpy.ops.wm.obj_import(filepath=path)  # Y-up files → Blender Z-up (importer default)
    elif ext == ".dae":
        bpy.ops.wm.collada_import(filepath=path)  # honours <up_axis>
    elif ext == ".ply":
        bpy.ops.import_mesh.ply(filepath=path)
    elif ext == ".stl":
        bpy.ops.import_mesh.stl(filepath=path)
    elif ext == ".fbx":
        bpy.ops.import_scene.fbx(filepath=path)
    elif ext in (".gltf", ".glb"):
        bpy.ops.import_scene.gltf(filepath=path)
    else:
        raise SystemExit(f"{path}: unsupported format {ext} (convert it first, e.g. `assimp export in out.obj`)")


def fix_missing_images(dirs):
    """Texture paths written on Windows (`.\\tex.jpg`) or pointing elsewhere: look in dirs by file name."""
    for img in bpy.data.images:
        if img.source != "FILE" or not img.filepath:
            continue
        path = bpy.path.abspath(img.filepath)
        if os.path.isfile(path):
            continue
        name = img.filepath.replace("\\", "/").split("/")[-1]
        found = [os.path.join(d, name) for d in dirs if os.path.isfile(os.path.join(d, name))]
        if found:
            img.filepath = found[0]
            img.reload()
            print(f"[render_multiview] texture resolved: {found[0]}")
        else:
            print(f"[render_multiview] warning: texture not found: {img.filepath!r}")


def srgb_to_linear(c):
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def solid_material(rgb):
    rgb = tuple(srgb_to_linear(c) for c in rgb)
    mat = bpy.data.materials.new("solid")
    mat.use_nodes = True
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (*rgb, 1.0)
    bsdf.inputs["Roughness"].default_value = 0.6
    bsdf.inputs["Specular"].default_value = 0.3
    return mat


def tame_materials(meshes):
    """Imported materials keep their colours/textures; cap specular/metal so the sun does not blow out."""
    seen = set()
    for ob in meshes:
        for slot in ob.material_slots:
            mat = slot.material
            if mat is None or mat.name in seen or not mat.use_nodes:
                continue
            seen.add(mat.name)
            for node in mat.node_tree.nodes:
                if node.type == "BSDF_PRINCIPLED":
                    node.inputs["Metallic"].default_value = 0.0
                    node.inputs["Specular"].default_value = min(node.inputs["Specular"].default_value, 0.3)
                    node.inputs["Roughness"].default_value = max(node.inputs["Roughness"].default_value, 0.5)
                    a = node.inputs["Alpha"]
                    if not a.is_linked:
                        a.default_value = 1.0


def normalise(meshes, rot_deg):
    """Parent every top-level object to an empty whose transform centres the bbox and scales to radius 1."""
    rot = Euler([math.radians(a) for a in rot_deg], "XYZ").to_matrix().to_4x4()
    deps = bpy.context.evaluated_depsgraph_get()
    pts = []
    for ob in meshes:
        ev = ob.evaluated_get(deps)
        mw = rot @ ob.matrix_world
        pts.extend(mw @ v.co for v in ev.data.vertices)
    if not pts:
        raise SystemExit("model has no vertices")
    lo = Vector((min(p.x for p in pts), min(p.y for p in pts), min(p.z for p in pts)))
    hi = Vector((max(p.x for p in pts), max(p.y for p in pts), max(p.z for p in pts)))
    c = (lo + hi) / 2
    r = max((p - c).length for p in pts)
    m = Matrix.Scale(1.0 / r, 4) @ Matrix.Translation(-c) @ rot
    root = bpy.data.objects.new("normalise", None)
    bpy.context.scene.collection.objects.link(root)
    root.matrix_world = m
    for ob in list(bpy.context.scene.objects):
        if ob is not root and ob.parent is None:
            ob.parent = root
            ob.matrix_parent_inverse = Matrix.Identity(4)
    bpy.context.view_layer.update()
    print(f"[render_multiview] {len(pts)} vertices, bbox {tuple(lo)}..{tuple(hi)}, radius {r:.4g} → 1")


def look_at(loc):
    """Camera-to-world with the camera at loc looking at the origin, world up +z (−z forward, y up)."""
    fwd = (-loc).normalized()
    right = fwd.cross(Vector((0, 0, 1))).normalized()
    up = right.cross(fwd)
    m = Matrix.Identity(4)
    for i in range(3):
        m[i][0], m[i][1], m[i][2], m[i][3] = right[i], up[i], -fwd[i], loc[i]
    return m


def strip_png_text(path):
    """Drop tEXt chunks (Cycles writes its render times there) so a rerun gives byte-identical files."""
    with open(path, "rb") as f:
        data = f.read()
    out, pos = [data[:8]], 8
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        chunk = data[pos : pos + 12 + n]
        if chunk[4:8] != b"tEXt":
            out.append(chunk)
        pos += 12 + n
    with open(path, "wb") as f:
        f.write(b"".join(out))


def setup_scene(args):
    scene = bpy.context.scene
    scene.frame_set(1)
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = args.samples
    scene.cycles.use_adaptive_sampling = True
    scene.cycles.use_denoising = False
    scene.cycles.max_bounces = 4
    scene.cycles.pixel_filter_type = "BLACKMAN_HARRIS"
    scene.render.resolution_x = args.res
    scene.render.resolution_y = args.res
    scene.render.resolution_percentage = 100
    scene.render.film_transparent = True
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    scene.render.image_settings.color_depth = "8"
    scene.render.image_settings.compression = 100
    scene.render.use_file_extension = True
    scene.view_settings.view_transform = "Standard"  # keep the materials' own colours (no Filmic curve)
    scene.view_settings.look = "None"

    # Neutral light: a sun from above/side plus a uniform grey world for ambient fill.
    world = bpy.data.worlds.new("world")
    world.use_nodes = True
    bg = world.node_tree.nodes["Background"]
    bg.inputs["Color"].default_value = (1.0, 1.0, 1.0, 1.0)
    bg.inputs["Strength"].default_value = 0.45
    scene.world = world
    sun = bpy.data.lights.new("sun", type="SUN")
    sun.energy = 3.0
    sun.angle = math.radians(10.0)
    sun_ob = bpy.data.objects.new("sun", sun)
    scene.collection.objects.link(sun_ob)
    sun_ob.rotation_euler = (math.radians(40.0), math.radians(15.0), math.radians(30.0))

    cam = bpy.data.cameras.new("camera")
    cam.sensor_fit = "HORIZONTAL"
    cam.angle_x = CAMERA_ANGLE_X
    cam.clip_start = 0.1
    cam.clip_end = 100.0
    cam_ob = bpy.data.objects.new("camera", cam)
    scene.collection.objects.link(cam_ob)
    scene.camera = cam_ob
    return cam_ob


def main():
    args = parse_args()
    model = os.path.abspath(args.model)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    import_model(model)
    fix_missing_images([os.path.dirname(model), *args.texture_dir])

    # Keep geometry only: imported cameras/lights would change the framing or the lighting.
    for ob in list(bpy.data.objects):
        if ob.type in ("CAMERA", "LIGHT"):
            bpy.data.objects.remove(ob, do_unlink=True)
    meshes = [ob for ob in bpy.context.scene.objects if ob.type == "MESH"]
    if not meshes:
        raise SystemExit(f"{model}: no mesh objects")
    if args.color:
        mat = solid_material(tuple(float(x) for x in args.color.split(",")))
        for ob in meshes:
            ob.data.materials.clear()
            ob.data.materials.append(mat)
    else:
        for ob in meshes:
            if len(ob.material_slots) == 0:
                raise SystemExit(f"{ob.name}: no material; pass --color")
        tame_materials(meshes)
    normalise(meshes, [float(a) for a in args.rot.split(",")])
    cam_ob = setup_scene(args)

    out_dir = os.path.abspath(os.path.join(args.out, args.id))
    os.makedirs(out_dir, exist_ok=True)
    rng = random.Random(args.seed ^ zlib.crc32(args.id.encode()))
    frames = []
    t0 = time.time()
    axis = [(0.0, 0.1), (90.0, 0.1), (180.0, 0.1), (270.0, 0.1), (0.0, 89.0)]
    for i in range(len(axis) if args.axis_views else args.views):
        az = rng.uniform(0.0, 2.0 * math.pi)
        el = rng.uniform(*ELEV_RANGE)
        if args.axis_views:
            az, el = (math.radians(a) for a in axis[i])
        loc = Vector((math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el))) * RADIUS
        cam_ob.matrix_world = look_at(loc)
        bpy.context.view_layer.update()
        bpy.context.scene.render.filepath = os.path.join(out_dir, f"r_{i}")
        bpy.ops.render.render(write_still=True)
        strip_png_text(os.path.join(out_dir, f"r_{i}.png"))
        mw = cam_ob.matrix_world
        frames.append({
            "file_path": f"./r_{i}",
            "transform_matrix": [[round(mw[r][c], 8) for c in range(4)] for r in range(4)],
        })
    with open(os.path.join(out_dir, "transforms.json"), "w") as f:
        json.dump({"camera_angle_x": CAMERA_ANGLE_X, "frames": frames}, f, indent=1)
        f.write("\n")
    print(f"[render_multiview] {args.id}: {len(frames)} views in {time.time() - t0:.1f}s → {out_dir}")


main()

/**
 * Camera rays (docs/conventions.md §9.1): OpenGL/Blender cameras (x right, y up, looking along −z),
 * pixel-centre offsets, directions NOT normalised (so depth z is along the camera axis).
 */
import { numpy as np } from "../backend/jax.js";

/**
 * poses (…, 3, 4) camera-to-world, focals (…, 2) = [f_x, f_y] in pixels →
 * [origins, directions], each (…, H, W, 3), row-major over pixels.
 *   dir_cam(i, j) = ((j + 0.5 − W/2)/f_x, −(i + 0.5 − H/2)/f_y, −1);  d = R · dir_cam;  o = pose[:, 3]
 */
export function posesToRays(poses: np.Array, focals: np.Array, h: number, w: number): [np.Array, np.Array] {
  const lead = poses.shape.slice(0, -2);
  const u = new Float32Array(h * w);
  const v = new Float32Array(h * w);
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) {
      u[i * w + j] = j + 0.5 - w / 2;
      v[i * w + j] = -(i + 0.5 - h / 2);
    }
  }
  const [fx, fy] = np.split(focals, 2, -1) as [np.Array, np.Array]; // (…, 1)
  const dx = np.array(u).div(fx); // (…, HW)
  const dy = np.array(v).div(fy);
  const dz = np.full(dx.shape, -1);
  const dirs = np.stack([dx, dy, dz], -1); // (…, HW, 3)
  const [rot, origin] = np.split(poses, [3], -1) as [np.Array, np.Array]; // (…, 3, 3), (…, 3, 1)
  const ndim = rot.ndim;
  const perm = [...Array(ndim).keys()];
  [perm[ndim - 2], perm[ndim - 1]] = [perm[ndim - 1]!, perm[ndim - 2]!];
  const d = np.matmul(dirs, rot.transpose(perm)).reshape([...lead, h, w, 3]);
  const o = np.broadcastTo(origin.reshape([...lead, 1, 1, 3]), [...lead, h, w, 3]);
  return [o, d];
}

/** Camera-to-world (3 × 4, row-major) at `eye` looking at the origin, world up +z (Blender). */
export function lookAtPose(eye: [number, number, number]): Float32Array {
  const norm = (v: number[]) => v.map((x) => x / Math.hypot(...v));
  const cross = (a: number[], b: number[]) => [
    a[1]! * b[2]! - a[2]! * b[1]!,
    a[2]! * b[0]! - a[0]! * b[2]!,
    a[0]! * b[1]! - a[1]! * b[0]!,
  ];
  const z = norm(eye);
  const x = norm(cross([0, 0, 1], z));
  const y = cross(z, x);
  return Float32Array.from([0, 1, 2].flatMap((r) => [x[r]!, y[r]!, z[r]!, eye[r]!]));
}

/**
 * `frames` cameras evenly around the z axis, looking at the origin, at the mean distance and
 * elevation of the `support` cameras (3 × 4 camera-to-world poses): a turntable of the object.
 */
export function orbitPoses(support: Float32Array[], frames: number): Float32Array[] {
  const eyes = support.map((p) => [p[3]!, p[7]!, p[11]!]);
  const r = eyes.reduce((s, e) => s + Math.hypot(...e), 0) / eyes.length;
  const el = eyes.reduce((s, e) => s + Math.asin(e[2]! / Math.hypot(...e)), 0) / eyes.length;
  return [...Array(frames).keys()].map((i) => {
    const az = (2 * Math.PI * i) / frames;
    return lookAtPose([r * Math.cos(el) * Math.cos(az), r * Math.cos(el) * Math.sin(az), r * Math.sin(el)]);
  });
}

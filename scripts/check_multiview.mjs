// Check a learnit-layout render set (default data/multiview, category "objects"):
//   node scripts/check_multiview.mjs [root] [category]
// For every view: the world origin, projected with the pose and focal (camera looks along −z), must
// land on the image centre; the alpha mask must not touch the border (no clipping) and its bounding
// box centre / centroid are reported (the normalised object's bbox centre is the origin, so they
// should sit near the image centre, up to the object's shape and perspective).
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import sharp from "sharp";

const root = process.argv[2] ?? "data/multiview";
const cat = process.argv[3] ?? "objects";
const splits = JSON.parse(await readFile(join(root, `${cat}_splits.json`), "utf8"));
const ids = [...splits.train, ...splits.test];
let bad = 0;
for (const id of ids) {
  const dir = join(root, cat, id);
  const t = JSON.parse(await readFile(join(dir, "transforms.json"), "utf8"));
  let maxProj = 0,
    maxBorder = 0,
    sumBox = 0,
    maxBox = 0,
    sumCen = 0,
    minCov = 1,
    maxCov = 0,
    w = 0,
    h = 0;
  for (const fr of t.frames) {
    const { data, info } = await sharp(join(dir, `${fr.file_path}.png`))
      .ensureAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    w = info.width;
    h = info.height;
    const f = (0.5 * w) / Math.tan(0.5 * t.camera_angle_x);
    // world → camera for the origin: x_c = Rᵀ(0 − c) with camera-to-world [R | c]
    const M = fr.transform_matrix,
      c = [M[0][3], M[1][3], M[2][3]];
    const xc = [0, 1, 2].map((j) => -(M[0][j] * c[0] + M[1][j] * c[1] + M[2][j] * c[2]));
    const u = w / 2 + (f * xc[0]) / -xc[2],
      v = h / 2 - (f * xc[1]) / -xc[2];
    maxProj = Math.max(maxProj, Math.hypot(u - w / 2, v - h / 2));
    let x0 = w,
      x1 = -1,
      y0 = h,
      y1 = -1,
      sa = 0,
      sx = 0,
      sy = 0,
      border = 0;
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const a = data[(y * w + x) * 4 + 3] / 255;
        if (a > 0.5) {
          x0 = Math.min(x0, x);
          x1 = Math.max(x1, x);
          y0 = Math.min(y0, y);
          y1 = Math.max(y1, y);
        }
        sa += a;
        sx += a * (x + 0.5);
        sy += a * (y + 0.5);
        if (x === 0 || y === 0 || x === w - 1 || y === h - 1) border = Math.max(border, a);
      }
    maxBorder = Math.max(maxBorder, border);
    const box = Math.hypot((x0 + x1 + 1) / 2 - w / 2, (y0 + y1 + 1) / 2 - h / 2);
    sumBox += box;
    maxBox = Math.max(maxBox, box);
    sumCen += Math.hypot(sx / sa - w / 2, sy / sa - h / 2);
    const cov = sa / (w * h);
    minCov = Math.min(minCov, cov);
    maxCov = Math.max(maxCov, cov);
  }
  const n = t.frames.length,
    ok = maxProj < 1e-3 && maxBorder === 0 && minCov > 0.01;
  if (!ok) bad++;
  console.log(
    `${ok ? "ok " : "BAD"} ${id.padEnd(8)} ${n} views ${w}×${h}  origin→centre max ${maxProj.toExponential(1)} px` +
      `  mask bbox-centre offset mean ${(sumBox / n).toFixed(2)} max ${maxBox.toFixed(2)} px, centroid offset mean ${(sumCen / n).toFixed(2)} px` +
      `  border alpha max ${maxBorder.toFixed(2)}  coverage ${(100 * minCov).toFixed(0)}–${(100 * maxCov).toFixed(0)}%`,
  );
}
process.exit(bad ? 1 : 0);

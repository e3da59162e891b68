import { test } from "node:test";
import assert from "node:assert/strict";
import { skipWithoutData } from "./fixtures.js";
import { spawnSync } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import sharp from "sharp";
import { FONT_FAMILY, svgLinePlot, svgPanelPlot, textWidth, writeLinePlot } from "../src/util/plot.js";
import { Progress, formatBar, formatDuration, formatNumber } from "../src/util/progress.js";
import { ssim, ssimWindowSize } from "../src/eval/ssim.js";

// ---------------------------------------------------------------- plot

test("plot: SVG has a path per series, names in legend, skips non-finite points", () => {
  const svg = svgLinePlot({
    title: "loss <train>",
    xLabel: "step",
    yLabel: "MSE",
    series: [
      {
        name: "ANR & co",
        points: Array.from({ length: 100 }, (_, i) => [i, 1 / (i + 1)] as [number, number]),
      },
      {
        name: "TransINR",
        points: [
          [0, 0.5],
          [1, NaN],
          [2, 0.3],
          [3, Infinity],
          [4, 0.2],
        ],
      },
      { name: "empty", points: [] },
    ],
  });
  assert.match(svg, /^<svg /);
  assert.match(svg, /<\/svg>$/);
  assert.equal((svg.match(/<path class="series"/g) ?? []).length, 3);
  // Names are XML-escaped.
  assert.ok(svg.includes("ANR &amp; co"));
  assert.ok(svg.includes(">TransINR<"));
  assert.ok(svg.includes(">empty<"));
  assert.ok(svg.includes("loss &lt;train&gt;"));
  assert.ok(!svg.includes("NaN"));
  assert.ok(!svg.includes("Infinity"));
  // 100-point series gets no markers; the 3 finite TransINR points do; NaN breaks the line.
  assert.equal((svg.match(/<circle /g) ?? []).length, 3);
  const trans = /data-series="TransINR" d="([^"]*)"/.exec(svg)![1]!;
  assert.equal((trans.match(/M/g) ?? []).length, 3);
  // Distinct colours per series.
  const colours = [...svg.matchAll(/<path class="series"[^>]* stroke="(#[0-9A-F]{6})"/g)].map((m) => m[1]);
  assert.equal(new Set(colours).size, 3);
});

test("plot: single point, flat series and no data still give a sane axis", () => {
  for (const series of [
    [{ name: "one", points: [[5, 2]] as [number, number][] }],
    [
      {
        name: "flat",
        points: [
          [0, 3],
          [1, 3],
          [2, 3],
        ] as [number, number][],
      },
    ],
    [
      {
        name: "zero",
        points: [
          [0, 0],
          [1, 0],
        ] as [number, number][],
      },
    ],
    [{ name: "none", points: [] as [number, number][] }],
    [],
  ]) {
    const svg = svgLinePlot({ title: "t", xLabel: "x", yLabel: "y", series });
    assert.ok(!/NaN|Infinity/.test(svg), `non-finite coordinate for ${JSON.stringify(series)}`);
    // At least 3 horizontal grid lines means the y range was padded, not collapsed.
    const grid = svg.slice(svg.indexOf('<g stroke="#e0e0e0"'), svg.indexOf("</g>"));
    assert.ok((grid.match(/<line /g) ?? []).length >= 6);
  }
  // A single point sits inside the plot, not on its border.
  const svg = svgLinePlot({
    title: "t",
    xLabel: "x",
    yLabel: "y",
    series: [{ name: "one", points: [[5, 2]] }],
  });
  const [, cx, cy] = /<circle cx="([\d.]+)" cy="([\d.]+)"/.exec(svg)!;
  const [, rx, ry, rw, rh] =
    /<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)" fill="none"/.exec(svg)!;
  assert.ok(Number(cx) > Number(rx) && Number(cx) < Number(rx) + Number(rw));
  assert.ok(Number(cy) > Number(ry) && Number(cy) < Number(ry) + Number(rh));
});

test("plot: writeLinePlot writes a PNG of the requested size atomically", async () => {
  const dir = await mkdtemp(join(tmpdir(), "anr-plot-"));
  try {
    const path = join(dir, "sub", "curve.png");
    const spec = {
      title: "PSNR",
      xLabel: "step",
      yLabel: "dB",
      width: 640,
      height: 360,
      series: [
        {
          name: "a",
          points: Array.from({ length: 50 }, (_, i) => [i * 10, 20 + Math.log1p(i)] as [number, number]),
        },
        {
          name: "b",
          points: [
            [0, 18],
            [250, 22],
            [490, 24],
          ] as [number, number][],
        },
      ],
    };
    await writeLinePlot(path, spec);
    const meta = await sharp(path).metadata();
    assert.equal(meta.format, "png");
    assert.equal(meta.width, 640);
    assert.equal(meta.height, 360);
    // Overwriting works (rename over an existing file) and defaults give 800×500.
    await writeLinePlot(path, { ...spec, width: undefined, height: undefined });
    const meta2 = await sharp(path).metadata();
    assert.equal(meta2.width, 800);
    assert.equal(meta2.height, 500);
    assert.deepEqual(await readdir(join(dir, "sub")), ["curve.png"]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** A PNG's pixels as RGB bytes (HWC), with its size. */
async function rgb(png: Buffer | string): Promise<{ w: number; h: number; px: Buffer }> {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { w: info.width, h: info.height, px: data };
}

/** Whether DejaVu Sans, whose widths textWidth carries, is installed (fontconfig). */
const HAS_DEJAVU = /DejaVu Sans/.test(
  spawnSync("fc-list", [":", "family"], { encoding: "utf8" }).stdout ?? "",
);

test("plot: textWidth is the drawn width of DejaVu Sans, never less", async (t) => {
  if (skipWithoutData(t, HAS_DEJAVU, "the DejaVu Sans font (Debian fonts-dejavu-core)")) return;
  for (const text of ["test (photos:test)", "WWW mmm iii", "input 32² | bicubic ×4", "0.0001"]) {
    const size = 24;
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="800" height="40"><rect width="800" height="40" fill="#fff"/><text x="10" y="30" font-family="${FONT_FAMILY}" font-size="${size}">${text}</text></svg>`;
    const { w, h, px } = await rgb(await sharp(Buffer.from(svg), { density: 72 }).png().toBuffer());
    let [x0, x1] = [w, -1];
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        if (px[(y * w + x) * 3]! < 128) [x0, x1] = [Math.min(x0, x), Math.max(x1, x)];
    // Ink lies within the advance widths (side bearings make it a little narrower).
    const ink = x1 - x0 + 1;
    const measured = textWidth(text, size);
    assert.ok(x0 >= 10 && ink <= measured + 1, `${text}: ink ${ink} px, measured ${measured}`);
    assert.ok(
      ink >= 0.85 * measured,
      `${text}: ink ${ink} px, measured ${measured}: the table is not this font's`,
    );
  }
});

test("plot: legends stay inside the picture however long the names are", async () => {
  const points = Array.from({ length: 20 }, (_, i) => [i, 20 + Math.log1p(i)] as [number, number]);
  for (const long of ["anr", "anr-small-with-a-rather-long-name", "transinr-".repeat(30)]) {
    const spec = {
      title: "PSNR",
      xLabel: "step",
      yLabel: "dB",
      width: 640,
      height: 360,
      series: [
        { name: long, points },
        { name: "b", points: points.map(([x, y]) => [x, y - 1] as [number, number]) },
      ],
    };
    const svg = svgLinePlot(spec);
    const [, lx, ly, lw, lh] =
      /<rect class="legend" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"/
        .exec(svg)!
        .map(Number);
    assert.ok(
      lx! >= 0 && lx! + lw! <= 640 && ly! >= 0 && ly! + lh! <= 360,
      `legend box of ${long.length}-char name`,
    );
    // Every legend name, as drawn, ends inside its box (a name too long for the width is cut with "…").
    const texts = [...svg.slice(svg.indexOf('class="legend"')).matchAll(/<text x="([\d.]+)"[^>]*>([^<]*)</g)];
    assert.equal(texts.length, 2);
    for (const [, x, text] of texts) assert.ok(Number(x) + textWidth(text!, 12) <= lx! + lw!, text);
    assert.equal(
      texts[0]![2]!.endsWith("…"),
      long.length > 100,
      "only a name too long for any legend is cut",
    );
    // The rendered picture: nothing reaches its right or bottom edge.
    const path = join(tmpdir(), `legend-${long.length}.png`);
    await writeLinePlot(path, spec);
    const { w, h, px } = await rgb(path);
    for (let y = 0; y < h; y++)
      for (const x of [w - 3, w - 2, w - 1])
        assert.ok(
          px[(y * w + x) * 3]! > 250,
          `${long.length}-char name: a mark at (${x}, ${y}), on the right edge`,
        );
    for (let x = 0; x < w; x++)
      assert.ok(px[((h - 1) * w + x) * 3]! > 250, `a mark on the bottom edge at ${x}`);
    await rm(path);
  }
});

test("plot: panels share the x axis, loss on a log scale over PSNR, both curves drawn", async () => {
  const steps = Array.from({ length: 40 }, (_, i) => (i + 1) * 10);
  const spec = {
    title: "run: loss and PSNR",
    xLabel: "step",
    width: 800,
    height: 560,
    panels: [
      {
        yLabel: "loss",
        logY: true,
        series: [
          {
            name: "loss",
            points: [[0, 0] as [number, number], ...steps.map((s) => [s, 1 / s] as [number, number])],
          },
        ],
      },
      {
        yLabel: "PSNR (dB)",
        series: [
          { name: "train", points: steps.map((s) => [s, 10 + Math.log10(s)] as [number, number]) },
          {
            name: "test",
            points: steps.filter((s) => s % 100 === 0).map((s) => [s, 9 + Math.log10(s)] as [number, number]),
          },
        ],
      },
    ],
  };
  const svg = svgPanelPlot(spec);
  const frames = [
    ...svg.matchAll(/<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)" fill="none"/g),
  ].map((m) => m.slice(1).map(Number));
  assert.equal(frames.length, 2);
  const [top, bottom] = frames as [number[], number[]];
  assert.deepEqual([top[0], top[2]], [bottom[0], bottom[2]], "the panels line up");
  assert.ok(top[1]! + top[3]! < bottom[1]!, "loss above PSNR");
  const ys = (name: string) =>
    [...new RegExp(`data-series="${name}" d="([^"]*)"`).exec(svg)![1]!.matchAll(/[ML][\d.]+ ([\d.]+)/g)].map(
      (m) => Number(m[1]),
    );
  const inside = (v: number[], f: number[]) => v.every((y) => y >= f[1]! - 0.01 && y <= f[1]! + f[3]! + 0.01);
  // The loss's 0 cannot be shown on a log axis: left out, the other 40 points drawn in the top panel.
  assert.equal(ys("loss").length, 40);
  assert.ok(inside(ys("loss"), top));
  assert.ok(inside(ys("train"), bottom) && inside(ys("test"), bottom));
  // A log axis: 1/s falls by a decade from step 10 to 100 and from 100 to 1000: equal heights.
  assert.ok(/>0\.01</.test(svg) && />0\.1</.test(svg), "decade labels on the loss axis");
  // Rendered: the top panel holds the first colour only, the bottom one both.
  const path = join(tmpdir(), "panels.png");
  await writeLinePlot(path, spec);
  const { w, px } = await rgb(path);
  const count = (f: number[], [r, g, b]: number[]) => {
    let n = 0;
    for (let y = Math.ceil(f[1]!); y < f[1]! + f[3]!; y++)
      for (let x = Math.ceil(f[0]!); x < f[0]! + f[2]!; x++) {
        const i = (y * w + x) * 3;
        if (Math.abs(px[i]! - r!) + Math.abs(px[i + 1]! - g!) + Math.abs(px[i + 2]! - b!) < 30) n++;
      }
    return n;
  };
  const [blue, orange] = [
    [0x00, 0x72, 0xb2],
    [0xd5, 0x5e, 0x00],
  ];
  assert.ok(count(top, blue!) > 300 && count(top, orange!) === 0, "the loss curve, alone in its panel");
  assert.ok(count(bottom, blue!) > 300 && count(bottom, orange!) > 300, "both PSNR curves");
  await rm(path);
});

// ---------------------------------------------------------------- progress

class Capture extends Writable {
  chunks: string[] = [];
  constructor(readonly isTTY: boolean) {
    super();
  }
  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: () => void): void {
    this.chunks.push(chunk.toString());
    cb();
  }
  get text(): string {
    return this.chunks.join("");
  }
}

test("progress: formatting helpers", () => {
  assert.equal(formatDuration(3725), "1:02:05");
  assert.equal(formatDuration(0), "0:00:00");
  assert.equal(formatDuration(59.6), "0:01:00");
  assert.equal(formatDuration(27 * 3600), "27:00:00");
  assert.equal(formatDuration(NaN), "-:--:--");
  assert.equal(formatDuration(Infinity), "-:--:--");
  assert.equal(formatBar(0.5, 10), "[#####.....]");
  assert.equal(formatBar(0, 4), "[....]");
  assert.equal(formatBar(0.999, 10), "[#########.]");
  assert.equal(formatBar(1.5, 4), "[####]");
  assert.equal(formatBar(NaN, 3), "[...]");
  assert.equal(formatNumber(0.123456), "0.1235");
  assert.equal(formatNumber(23.456789), "23.46");
  assert.equal(formatNumber(1500), "1500");
  assert.equal(formatNumber(1.23456e-5), "1.235e-5");
  assert.equal(formatNumber(NaN), "NaN");
});

test("progress: on a TTY it redraws one line with \\r, throttled", () => {
  const out = new Capture(true);
  let t = 0;
  const p = new Progress({ total: 100, label: "train", stream: out, intervalMs: 200, now: () => t });
  for (let i = 1; i <= 100; i++) {
    t += 50; // 20 it/s
    p.update(i, { loss: 1 / i, lr: "cos" });
  }
  p.done({ loss: 0.001 });
  const writes = out.chunks;
  // 5 s of updates at one draw per 200 ms, plus the final one.
  assert.ok(writes.length >= 20 && writes.length <= 27, `${writes.length} writes`);
  assert.ok(writes.every((w) => w.startsWith("\r")));
  assert.ok(writes.slice(0, -1).every((w) => !w.includes("\n")));
  assert.ok(writes.at(-1)!.endsWith("\n"));
  assert.equal((out.text.match(/\n/g) ?? []).length, 1);
  const first = writes[0]!;
  assert.match(first, /^\rtrain \[\.{20}\] 1\/100 \| loss=1 lr=cos \| 20 it\/s \| ETA 0:00:05/);
  const mid = writes[10]!;
  assert.match(mid, /\[#+\.+\] \d+\/100/);
  assert.match(mid, /20 it\/s \| ETA 0:00:0\d/);
  assert.match(writes.at(-1)!, /\[#{20}\] 100\/100 \| loss=0\.001 \| 20 it\/s \| elapsed 0:00:05/);
  // Calls after done() are ignored.
  p.update(5, {});
  p.done();
  assert.equal(out.chunks.length, writes.length);
});

test("progress: off a TTY it prints plain lines at most every 10 s and at the end", () => {
  const out = new Capture(false);
  let t = 0;
  const p = new Progress({ total: 1000, stream: out, now: () => t });
  for (let i = 1; i <= 1000; i++) {
    t += 100; // 10 it/s, 100 s total
    p.update(i, { psnr: 25.123456 });
  }
  p.done();
  const lines = out.text.split("\n");
  assert.equal(lines.pop(), "");
  assert.ok(!out.text.includes("\r"));
  // First update, then one per 10 s of the 100 s run, then the final line.
  assert.ok(lines.length >= 10 && lines.length <= 12, `${lines.length} lines`);
  assert.match(lines[0]!, /^1\/1000 \(0\.1%\) \| psnr=25\.12 \| 10 it\/s \| ETA 0:01:40$/);
  assert.match(lines.at(-1)!, /^1000\/1000 \(100\.0%\) \| psnr=25\.12 \| 10 it\/s \| elapsed 0:01:40$/);
});

test("progress: rate follows a speed change via the moving window", () => {
  const out = new Capture(false);
  let t = 0;
  const p = new Progress({ total: 10_000, stream: out, now: () => t });
  let i = 0;
  // 30 s at 1 it/s, then 60 s at 100 it/s: the windowed rate must report ~100, not the mean.
  for (; i < 30; i++) {
    t += 1000;
    p.update(i + 1, {});
  }
  for (let k = 0; k < 6000; k++, i++) {
    t += 10;
    p.update(i + 1, {});
  }
  const last = out.text.trim().split("\n").at(-1)!;
  const rate = Number(/\| ([\d.]+) it\/s/.exec(last)![1]);
  assert.ok(rate > 90 && rate <= 100, last);
});

// ---------------------------------------------------------------- ssim

/** Deterministic uniform [0, 1) generator (mulberry32), independent of library code. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let z = a;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
  };
}

function gaussians(seed: number, n: number): Float32Array {
  const u = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const r = Math.sqrt(-2 * Math.log(1 - u()));
    out[i] = r * Math.cos(2 * Math.PI * u());
  }
  return out;
}

/** A smooth-ish test image with structure at several scales, values in [0.05, 0.85]. */
function testImage(c: number, h: number, w: number, seed: number): Float32Array {
  const u = mulberry32(seed);
  const out = new Float32Array(c * h * w);
  for (let ch = 0; ch < c; ch++) {
    const fx = 0.2 + u() * 0.5;
    const fy = 0.15 + u() * 0.5;
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) {
        const v = 0.45 + 0.25 * Math.sin(fx * j + ch) * Math.cos(fy * i) + 0.15 * (u() - 0.5);
        out[ch * h * w + i * w + j] = v;
      }
    }
  }
  return out;
}

test("ssim: identical images give exactly 1", () => {
  const x = testImage(3, 32, 32, 1);
  assert.equal(ssim(x, x, 3, 32, 32), 1);
  const y = testImage(1, 7, 9, 2); // below the 11-px window
  assert.equal(ssim(y, y, 1, 7, 9), 1);
});

test("ssim: a brightness-shifted copy scores < 1, symmetrically", () => {
  const x = testImage(3, 24, 40, 3);
  const y = x.map((v) => v + 0.1);
  const s1 = ssim(x, y, 3, 24, 40);
  const s2 = ssim(y, x, 3, 24, 40);
  assert.ok(s1 < 1 && s1 > 0.8, `${s1}`);
  assert.ok(Math.abs(s1 - s2) < 1e-12);
});

test("ssim: decreases monotonically with growing Gaussian noise", () => {
  const [c, h, w] = [3, 32, 32];
  const x = testImage(c, h, w, 4);
  const noise = gaussians(5, c * h * w);
  let prev = 1;
  for (const sigma of [0.01, 0.02, 0.05, 0.1, 0.2, 0.4]) {
    const y = x.map((v, i) => v + sigma * noise[i]!);
    const s = ssim(x, y, c, h, w);
    assert.ok(s < prev, `sigma=${sigma}: ${s} !< ${prev}`);
    prev = s;
  }
  assert.ok(prev < 0.3);
});

test("ssim: small images use the largest odd window that fits; bad shapes throw", () => {
  assert.equal(ssimWindowSize(32, 32), 11);
  assert.equal(ssimWindowSize(11, 50), 11);
  assert.equal(ssimWindowSize(10, 50), 9);
  assert.equal(ssimWindowSize(8, 7), 7);
  assert.equal(ssimWindowSize(1, 1), 1);
  const x = testImage(2, 5, 6, 6);
  const y = x.map((v) => 1 - v);
  const s = ssim(x, y, 2, 5, 6);
  assert.ok(Number.isFinite(s) && s < 0.5);
  assert.throws(() => ssim(x, y, 2, 5, 5), RangeError);
  assert.throws(() => ssim(x, y, 0, 5, 6), RangeError);
});

const PY = "/usr/bin/python3";
const haveSkimage = spawnSync(PY, ["-c", "import skimage.metrics, numpy"], { stdio: "ignore" }).status === 0;

test("ssim: matches skimage structural_similarity(gaussian_weights=True, sigma=1.5, ...) to 1e-14", (t) => {
  if (skipWithoutData(t, haveSkimage, "python3-skimage for /usr/bin/python3 (apt install python3-skimage)"))
    return;
  const cases: { a: Float32Array; b: Float32Array; shape: [number, number, number] }[] = [];
  const u = mulberry32(7);
  const rand = (n: number) => Float32Array.from({ length: n }, () => u());
  const n = 3 * 32 * 32;
  // Independent uniform noise, an image vs. a noisy clipped copy, and a structured pair.
  cases.push({ a: rand(n), b: rand(n), shape: [3, 32, 32] });
  const a2 = rand(n);
  const g = gaussians(8, n);
  cases.push({ a: a2, b: a2.map((v, i) => Math.min(1, Math.max(0, v + 0.1 * g[i]!))), shape: [3, 32, 32] });
  const a3 = testImage(3, 32, 32, 9);
  cases.push({ a: a3, b: a3.map((v, i) => 0.9 * v + 0.05 + 0.03 * g[i]!), shape: [3, 32, 32] });
  // Non-square, to catch any h/w mix-up.
  const a4 = testImage(3, 20, 27, 10);
  cases.push({ a: a4, b: testImage(3, 20, 27, 11), shape: [3, 20, 27] });

  const script = [
    "import json, sys, numpy as np",
    "from skimage.metrics import structural_similarity as ssim",
    "out = []",
    "for c in json.load(sys.stdin):",
    "    a = np.asarray(c['a'], dtype=np.float64).reshape(c['shape'])",
    "    b = np.asarray(c['b'], dtype=np.float64).reshape(c['shape'])",
    "    out.append(float(ssim(a, b, channel_axis=0, gaussian_weights=True, sigma=1.5,",
    "                          use_sample_covariance=False, data_range=1)))",
    "print(json.dumps(out))",
  ].join("\n");
  const input = JSON.stringify(
    cases.map((c) => ({ a: Array.from(c.a), b: Array.from(c.b), shape: c.shape })),
  );
  const r = spawnSync(PY, ["-c", script], { input, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const ref = JSON.parse(r.stdout) as number[];
  let maxDiff = 0;
  cases.forEach((c, i) => {
    const ours = ssim(c.a, c.b, ...c.shape);
    const d = Math.abs(ours - ref[i]!);
    maxDiff = Math.max(maxDiff, d);
    // Both sides compute in float64; measured max |Δ| = 8e-16 over these cases (scikit-image 0.19).
    assert.ok(d < 1e-14, `case ${i}: ours ${ours} vs skimage ${ref[i]} (|Δ| = ${d})`);
  });
  console.log(`ssim vs skimage: ${cases.length} cases, max |Δ| = ${maxDiff.toExponential(2)}`);
});

test("ssim: each bad size is refused on its own, by name: zero, negative or fractional dims, either input's length", () => {
  const x = testImage(2, 5, 6, 7);
  const y = x.map((v) => 1 - v);
  const empty = new Float32Array(0);
  // Sizes whose product still matches the data (or is 0 with empty data), so that only the
  // positive-integer check can refuse them.
  for (const [c, h, w, a, b, name, got] of [
    [0, 5, 6, empty, empty, "c", "0"],
    [2, 0, 6, empty, empty, "h", "0"],
    [2, 5, 0, empty, empty, "w", "0"],
    [-2, -5, 6, x, y, "c", "-2"],
    [2, 7.5, 4, x, y, "h", "7.5"],
  ] as const)
    assert.throws(
      () => ssim(a, b, c, h, w),
      (e: unknown) =>
        e instanceof RangeError && e.message === `ssim: ${name} must be a positive integer, got ${got}`,
      `${c}×${h}×${w}`,
    );
  // One input of the wrong length is enough, whichever it is.
  const short = x.subarray(0, 59);
  for (const [a, b, la, lb] of [
    [short, y, 59, 60],
    [x, short, 60, 59],
  ] as const)
    assert.throws(
      () => ssim(a, b, 2, 5, 6),
      (e: unknown) =>
        e instanceof RangeError && e.message === `ssim: expected 2×5×6 = 60 values, got ${la} and ${lb}`,
    );
});

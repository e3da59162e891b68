/**
 * The run report (report.html): self-contained, built from the run folder's files, escaping what
 * it shows, and tolerant of a torn metrics line.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, writeFile, readFile } from "node:fs/promises";
import { join } from "node:path";
import sharp from "sharp";
import { writeRunLogs, writeRunReport, PLOT_FILE, REPORT_FILE } from "../src/training/report.js";
import { tempDir } from "./cli-helpers.js";

async function png(path: string, colour: [number, number, number]): Promise<Buffer> {
  const bytes = await sharp({
    create: { width: 4, height: 2, channels: 3, background: { r: colour[0], g: colour[1], b: colour[2] } },
  })
    .png()
    .toBuffer();
  await writeFile(path, bytes);
  return bytes;
}

test("report: curves, final evaluation, latest samples and the config, in one escaped HTML file", async (t) => {
  const out = await tempDir(t, "report");
  await writeFile(
    join(out, "config.json"),
    JSON.stringify({ name: "winds <b>&</b>", train: { lr: 3e-4 } }, null, 2),
  );
  const lines = [
    { step: 0, test_psnr: 8, test_ssim: 0.1, test_rmse_u: 3 },
    { step: 10, loss: 0.4, train_psnr: 9, grad_norm: 1, seconds: 5 },
    {
      step: 20,
      loss: 0.3,
      train_psnr: 10,
      seconds: 10,
      images_per_s: 4,
      test_psnr: 11,
      test_ssim: 0.2,
      test_rmse_u: 2,
    },
  ];
  await writeFile(
    join(out, "metrics.jsonl"),
    lines.map((l) => JSON.stringify(l)).join("\n") + '\n{"step": 30, "loss"',
  );
  await writeFile(
    join(out, "eval.json"),
    JSON.stringify({
      split: "test",
      images: 7,
      psnr: 11.123456789,
      physical: [{ name: "u", rmse: 2.00049, units: "m/s" }],
    }),
  );
  await mkdir(join(out, "samples"));
  const grids = new Map<string, Buffer>();
  for (const [name, c] of [
    ["step-5.png", [255, 0, 0]],
    ["step-10.png", [0, 255, 0]],
    ["step-20.png", [0, 0, 255]],
    ["final.png", [9, 9, 9]],
    ["notes.txt", [0, 0, 0]],
  ] as const)
    if (name.endsWith(".png")) grids.set(name, await png(join(out, "samples", name), [...c]));
    else await writeFile(join(out, "samples", name), "x");

  const path = await writeRunReport(out);
  assert.equal(path, join(out, REPORT_FILE));
  const html = await readFile(path, "utf8");
  assert.ok(
    html.includes("<title>anr run: winds &lt;b&gt;&amp;&lt;/b&gt;</title>"),
    "the run's name, escaped",
  );
  assert.ok(!html.includes("<b>&</b>"), "nothing from the run folder is injected as markup");
  // Charts: loss over PSNR in one, then each other test metric (rmse_u, ssim), then the speed.
  assert.equal((html.match(/<svg/g) ?? []).length, 4);
  for (const title of [
    "winds &lt;b&gt;&amp;&lt;/b&gt;: loss and PSNR by step",
    "test rmse_u",
    "test ssim",
    "Speed (mean since the start)",
  ])
    assert.ok(html.includes(`>${title}<`), title);
  for (const series of ['data-series="loss"', 'data-series="train"', 'data-series="test (test)"'])
    assert.ok(html.includes(series), series);
  // The latest numbers; one logged before the last step says when.
  assert.ok(html.includes("<tr><th>test PSNR</th><td>11.00 dB</td></tr>"));
  assert.ok(html.includes("<tr><th>speed</th><td>4.00 images/s</td></tr>"));
  assert.ok(
    html.includes("<tr><th>gradient norm</th><td>1.00 (at step 10)</td></tr>"),
    "an older value says when",
  );
  assert.ok(html.includes("<tr><th>learning rate</th><td>0.0003</td></tr>"), "the run's settings");
  // The three latest grids, newest (final) first, each inlined byte for byte; not the oldest.
  const shown = [...html.matchAll(/<img src="data:image\/png;base64,([^"]+)" alt="([^"]+)">/g)];
  assert.deepEqual(
    shown.map((m) => m[2]),
    ["final.png", "step-20.png", "step-10.png"],
  );
  for (const m of shown) assert.ok(Buffer.from(m[1]!, "base64").equals(grids.get(m[2]!)!), m[2]);
  // The final evaluation, numbers rounded for reading, per-channel RMSE with units.
  assert.ok(html.includes("<tr><th>psnr</th><td>11.1235</td></tr>"));
  assert.ok(html.includes("<tr><th>RMSE u</th><td>2 m/s</td></tr>"));
  assert.ok(html.includes("step 20 · 10 s of training"), "the torn last line is left out");
  assert.ok(html.includes("<figcaption>final, after the last step</figcaption>"));
  assert.ok(html.includes("&quot;lr&quot;: 0.0003"), "the full config");
});

test("report: a run folder with nothing yet still gives a page", async (t) => {
  const out = await tempDir(t, "report-empty");
  const html = await readFile(await writeRunReport(out), "utf8");
  assert.ok(
    html.includes("no steps logged yet") &&
      html.includes("No sample grids yet.") &&
      html.includes("(no config.json)"),
  );
});

test("report: writeRunLogs draws psnr.png, loss over PSNR", async (t) => {
  const out = await tempDir(t, "report-plot");
  await writeFile(join(out, "config.json"), JSON.stringify({ name: "demo" }));
  const lines = Array.from({ length: 20 }, (_, i) => ({
    step: (i + 1) * 10,
    loss: 0.3 / (i + 1),
    train_psnr: 10 + i / 2,
    seconds: i,
    time: 1764672000 + i,
    ...(i % 5 === 4 ? { test_psnr: 9 + i / 2 } : {}),
  }));
  await writeFile(join(out, "metrics.jsonl"), lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
  await writeRunLogs(out, 0);
  const { data, info } = await sharp(join(out, PLOT_FILE))
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  assert.deepEqual([info.width, info.height], [800, 560]);
  // The loss panel lies in the top half, PSNR (train in blue, test in orange) in the bottom half.
  const count = (y0: number, y1: number, [r, g, b]: number[]) => {
    let n = 0;
    for (let y = y0; y < y1; y++)
      for (let x = 0; x < info.width; x++) {
        const i = (y * info.width + x) * 3;
        if (Math.abs(data[i]! - r!) + Math.abs(data[i + 1]! - g!) + Math.abs(data[i + 2]! - b!) < 30) n++;
      }
    return n;
  };
  const [blue, orange] = [
    [0x00, 0x72, 0xb2],
    [0xd5, 0x5e, 0x00],
  ];
  assert.ok(count(0, 280, blue!) > 300, "the loss curve (a legend swatch alone is about 60 pixels)");
  assert.ok(count(280, 560, blue!) > 300 && count(280, 560, orange!) > 300, "the train and test PSNR curves");
});

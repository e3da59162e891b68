/**
 * The package as npm users get it: `npm pack`, then the tarball installed into an empty project
 * from the npm cache (offline), and used there: the bin (`npx anr --version` or `help`, a 5-step
 * `anr demo`), the facade from "anr/node" (a zoo model resolved inside the installed package), the
 * presets' embedded data, the README's relative links, source maps that carry their sources, and
 * the portable entries' declarations compiled by a browser project with no @types at all.
 *
 * Slow (a build, an install, a short training): it runs under `npm run test:pack` (CI, after
 * `npm test`), which sets ANR_PACK_TEST=1, and is skipped in `npm test`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const REPO = resolve(fileURLToPath(import.meta.url), "..", "..");

interface Ran {
  code: number | null;
  out: string;
  err: string;
  seconds: number;
}

function sh(cmd: string, args: string[], cwd: string): Promise<Ran> {
  const t0 = performance.now();
  return new Promise((ok, fail) => {
    const p = spawn(cmd, args, { cwd, env: { ...process.env, NO_COLOR: "1" } });
    let out = "";
    let err = "";
    p.stdout.on("data", (d: Buffer) => (out += d));
    p.stderr.on("data", (d: Buffer) => (err += d));
    p.on("error", fail);
    p.on("close", (code) => ok({ code, out, err, seconds: (performance.now() - t0) / 1000 }));
  });
}

/** One line per step with its time, printed at the end: what CI spends where. */
const timings: string[] = [];
function timed(what: string, r: Ran): Ran {
  timings.push(`${what}: ${r.seconds.toFixed(1)} s`);
  assert.equal(r.code, 0, `${what} failed (exit ${r.code}):\n${r.out}\n${r.err}`);
  return r;
}

test("pack: the tarball installs offline into an empty project, and its bin, facade, data, links, maps and types work there", async (t) => {
  if (process.env.ANR_PACK_TEST !== "1") {
    t.skip("runs under npm run test:pack (ANR_PACK_TEST=1): a build, an install and a short training");
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), "anr-pack-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  t.after(() => console.log(`pack test timings:\n  ${timings.join("\n  ")}`));

  // The package, built from this tree (dist/ is what ships).
  timed("npm run build", await sh("npm", ["run", "build"], REPO));
  const pack = timed(
    "npm pack",
    await sh("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", dir], REPO),
  );
  const [info] = JSON.parse(pack.out) as { filename: string; size: number; files: { path: string }[] }[];
  const files = new Set(info!.files.map((f) => f.path));
  timings.push(`tarball: ${(info!.size / 1e6).toFixed(1)} MB, ${files.size} files`);
  for (const f of [
    "LICENSE",
    "README.md",
    "bin/anr.js",
    "dist/index.js",
    "dist/index.d.ts",
    "dist/node.js",
    "dist/lowlevel.d.ts",
    "dist/cli/run.js",
    "models/zoo.json",
    "models/demo-photos-anr.safetensors",
    "models/training/twemoji32-anr/metrics.jsonl",
    "data/photos/SOURCES.md",
    "data/multiview/SOURCES.md",
  ])
    assert.ok(files.has(f), `the tarball lacks ${f}`);
  // Of the zoo's trainings, only the logged curve anr demo draws against, and the folder's README
  // (npm always packs a folder's README once it packs a file of that folder): no checkpoints.
  for (const f of files)
    assert.ok(
      !/^(src|test|web\/src|runs)\//.test(f) &&
        !/^models\/training\/(?!twemoji32-anr\/metrics\.jsonl$|README\.md$)/.test(f),
      `the tarball holds ${f}`,
    );
  // Every relative link and picture of the README is in the package (npm shows the README).
  const readme = await readFile(join(REPO, "README.md"), "utf8");
  const links = [...readme.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)].map((m) => m[1]!);
  const relative = links.filter((l) => !/^[a-z]+:/i.test(l));
  assert.ok(relative.length > 5, relative.join(", "));
  assert.deepEqual(
    relative.filter((l) => !files.has(l.replace(/^\.\//, ""))),
    [],
    "README links to files the package lacks",
  );
  // Source maps ship with their sources (src/ is not in the package).
  const maps = [...files].filter((f) => f.endsWith(".js.map"));
  assert.ok(maps.length > 40, `${maps.length} maps`);
  const tar = join(dir, "unpacked");
  await mkdir(tar);
  timed("tar", await sh("tar", ["-xzf", join(dir, info!.filename), "-C", tar], dir));
  for (const m of maps) {
    const map = JSON.parse(await readFile(join(tar, "package", m), "utf8")) as {
      sources: string[];
      sourcesContent?: (string | null)[];
    };
    assert.ok(
      map.sourcesContent?.length === map.sources.length && map.sourcesContent.every((s) => !!s),
      `${m} does not carry its sources`,
    );
  }

  // An empty project installs it from the npm cache, as a user would from the registry.
  const app = join(dir, "app");
  await mkdir(app);
  await writeFile(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
  // As the repository's .npmrc: onnxruntime-node's GPU extras would be fetched from nuget.org.
  await writeFile(join(app, ".npmrc"), "onnxruntime-node-install=skip\n");
  const tarball = join(dir, info!.filename);
  let install = await sh("npm", ["install", "--offline", "--no-audit", "--no-fund", tarball], app);
  if (install.code !== 0) {
    timings.push(`npm install --offline failed (${install.err.trim().split("\n").pop()}); --prefer-offline`);
    install = await sh("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", tarball], app);
  }
  timed("npm install", install);

  // The bin: --version once the CLI has it, else help; then a short demo (4 emoji, 10 steps).
  const version = await sh("npx", ["anr", "--version"], app);
  if (version.code === 0) {
    timed("npx anr --version", version);
    const pkg = JSON.parse(await readFile(join(REPO, "package.json"), "utf8")) as { version: string };
    assert.match(version.out, new RegExp(pkg.version.replace(/\./g, "\\.")));
  } else {
    const help = timed("npx anr help", await sh("npx", ["anr", "help"], app));
    assert.match(help.out + help.err, /demo/);
  }
  const demo = timed(
    "npx anr demo --steps 10 --items 4",
    await sh("npx", ["anr", "demo", "--steps", "10", "--items", "4"], app),
  );
  const runs = await readdir(join(app, "runs"));
  assert.equal(runs.length, 1, runs.join(", "));
  assert.ok((await stat(join(app, "runs", runs[0]!, "model.safetensors"))).isFile(), demo.out);
  // Part 2 drew its curve over the zoo model's training, whose metrics the package ships.
  assert.match(
    demo.out,
    /train PSNR at the \d+ logged steps?: at most \d\.\d{4} dB from twemoji32-anr's training/,
  );

  // The facade and the presets' data, from the installed package.
  await writeFile(
    join(app, "use.mjs"),
    `import { existsSync } from "node:fs";
import { Anr, runPreset } from "anr/node";
const m = await Anr.load("demo-photos-anr");
const img = await m.decode(await m.encode({ data: new Uint8Array(40 * 30 * 3).fill(128), width: 40, height: 30 }), { scale: 2 });
m.dispose();
const roots = ["demo", "multiview-demo"].map((p) => runPreset(p).data.root);
console.log(JSON.stringify({ size: [img.h, img.w], source: m.source, roots: roots.map((r) => [r, existsSync(r)]) }));
`,
  );
  const used = timed("anr/node from the package", await sh("node", ["use.mjs"], app));
  const r = JSON.parse(used.out.trim().split("\n").pop()!) as {
    size: number[];
    source: string;
    roots: [string, boolean][];
  };
  assert.deepEqual(r.size, [64, 64]);
  assert.ok(r.source.startsWith(join(app, "node_modules", "anr", "models")), r.source);
  for (const [root, exists] of r.roots) {
    assert.ok(root.startsWith(join(app, "node_modules", "anr")), root);
    assert.ok(exists, `${root} is missing from the installed package`);
  }

  // The portable entries' declarations, in a browser project with no @types (no @types/node).
  const consumer = async (code: string) => {
    await writeFile(join(app, "main.ts"), code);
    const program = ts.createProgram([join(app, "main.ts")], {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      strict: true,
      noEmit: true,
      lib: ["lib.es2022.d.ts", "lib.dom.d.ts", "lib.dom.iterable.d.ts", "lib.esnext.disposable.d.ts"],
      types: [],
    });
    return (
      ts
        .getPreEmitDiagnostics(program)
        // jax-js's own declarations name WebGPU and Float16Array types (skipLibCheck hides them).
        .filter((d) => !d.file?.fileName.includes("/@jax-js/"))
        .map(
          (d) =>
            `${d.file?.fileName.slice(app.length) ?? ""}: ${ts.flattenDiagnosticMessageText(d.messageText, " ")}`,
        )
    );
  };
  const t0 = performance.now();
  const core = await consumer(`import { Anr, toPixels, tokensToBytes, type HostImage } from "anr";
import { coordGrid } from "anr/lowlevel";
export async function superResolve(model: ArrayBuffer, image: ImageData): Promise<ImageData> {
  using m = await Anr.load(model);
  const tokens = await m.encode(image);
  const img: HostImage = await m.decode(tokens, { size: [256, 256] });
  tokensToBytes(tokens);
  coordGrid(2, 2);
  const p = toPixels(img);
  return new ImageData(p.data, p.width, p.height);
}
`);
  assert.deepEqual(core, []);
  // The control: Node's types are absent there (so `types: []` bites).
  const control = await consumer(`export const b = Buffer.from("x");\n`);
  assert.equal(control.length, 1, control.join("\n"));
  assert.match(control[0]!, /Cannot find name 'Buffer'/);
  timings.push(`declarations compiled: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
});

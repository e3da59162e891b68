/**
 * The command grammar (issue 11): generated help for every command, --version, --json, "did you
 * mean", validated numbers and choices, --quiet, NO_COLOR, shell completion and the presets'
 * sections. The process-level behaviour (what lands on stdout, from which folder) through the
 * real executable; the rest through `main`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Progress } from "../src/util/progress.js";
import { closest, editDistance } from "../src/util/edit-distance.js";
import { golden } from "./fixtures.js";
import { REPO, runCli as run, spawnAnr, tempDir, writePhoto } from "./cli-helpers.js";

/** The escape character that starts a terminal colour sequence. */
const ESC = String.fromCharCode(27);

const COMMANDS = [
  "demo",
  "train",
  "eval",
  "encode",
  "decode",
  "export",
  "compare",
  "render",
  "presets",
  "models",
  "info",
  "init",
  "golden",
  "completion",
] as const;

/**
 * Options each command must list in its help: among them the ones the hand-written usage texts
 * had lost (--weights on encode/decode, --data-root on eval).
 */
const MUST_LIST: Record<string, string[]> = {
  train: ["--preset", "--data-root", "--steps", "--set", "--out", "--resume", "--overwrite"],
  eval: ["--model", "--data-root", "--images", "--weights", "--split", "--size", "--scale", "--max-images"],
  encode: ["--model", "--out", "--weights", "--preprocess", "--index"],
  decode: ["--model", "--size", "--scale", "--weights", "--format", "--force", "--engine"],
  export: ["--format", "--out", "--weights"],
  render: ["--model", "--views", "--size", "--scale", "--poses", "--near", "--far"],
  init: ["--out", "--seed"],
  golden: ["--all", "--tolerances"],
};

test("help: every command, as `anr CMD --help` and `anr help CMD`, lists its options and the global ones", async () => {
  for (const c of COMMANDS) {
    const a = await run([c, "--help"]);
    assert.equal(a.code, 0, `${c} --help: ${a.err}`);
    assert.match(a.out, new RegExp(`^Usage: anr ${c} `), c);
    for (const flag of [...(MUST_LIST[c] ?? []), "--device", "--quiet", "--json"])
      assert.match(a.out, new RegExp(`^ +${flag}\\b`, "m"), `${c} --help lists ${flag}`);
    const b = await run(["help", c]);
    assert.equal(b.code, 0);
    assert.equal(b.out, a.out, `anr help ${c} is anr ${c} --help`);
  }
  const top = await run(["--help"]);
  assert.equal(top.code, 0);
  for (const c of COMMANDS) assert.match(top.out, new RegExp(`^  ${c}\\b`, "m"), `anr --help lists ${c}`);
  // Choices and defaults come from the declarations.
  assert.match(
    (await run(["decode", "--help"])).out,
    /--format <format> .*\(choices: "npy", "nc", default: "npy"\)/s,
  );
  // `anr` alone: the help on stderr, a usage error.
  const bare = await run([]);
  assert.equal(bare.code, 2);
  assert.match(bare.err, /^Usage: anr /);
});

test("--version: package.json's version, read beside the module whatever the working folder", async (t) => {
  const { version } = JSON.parse(await readFile(join(REPO, "package.json"), "utf8")) as { version: string };
  const elsewhere = await tempDir(t, "version");
  for (const flag of ["--version", "-V"]) {
    const r = await spawnAnr([flag], { cwd: elsewhere });
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, `${version}\n`);
  }
});

test("--json: exactly one JSON object on stdout, the logs on stderr; errors too", async (t) => {
  const dir = await tempDir(t, "json");
  const model = join(dir, "m.safetensors");
  let r = await spawnAnr([
    "init",
    join(golden, "anr", "config.json"),
    "--out",
    model,
    "--seed",
    "3",
    "--json",
  ]);
  assert.equal(r.code, 0, r.err);
  const lines = r.out.trim().split("\n");
  assert.equal(lines.length, 1, r.out);
  const result = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.deepEqual(
    { ...result, floats_per_instance: undefined },
    {
      command: "init",
      ok: true,
      exit_code: 0,
      out: model,
      hyponet: "ANR",
      parameters: result.parameters,
      seed: 3,
      floats_per_instance: undefined,
    },
  );
  assert.equal(result.floats_per_instance, 1024, "the golden ANR: 16 R-tokens of 64");
  assert.match(r.err, /wrote .*m\.safetensors: ANR model/, "the human line went to stderr");
  // The global option may come first; an error is a JSON object too, with its exit code.
  r = await spawnAnr(["--json", "info", join(dir, "missing.safetensors")]);
  assert.equal(r.code, 2);
  const failure = JSON.parse(r.out) as { ok: boolean; exit_code: number; error: string };
  assert.deepEqual([failure.ok, failure.exit_code], [false, 2]);
  assert.match(failure.error, /missing\.safetensors: no such file or folder/);
  assert.match(r.err, /^anr: .*missing\.safetensors/m);
});

test("did you mean: commands, options, choices, presets and config keys (--set and files)", async (t) => {
  let r = await run(["trian"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /unknown command 'trian'\n\(Did you mean train\?\)/);
  r = await run(["decode", "t.safetensors", "--model", "m", "--forse"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /unknown option '--forse'\n\(Did you mean --force\?\)/);
  r = await run(["eval", "run", "--weights", "eam"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /--weights must be online or ema, not eam \(did you mean "ema"\?\)/);
  r = await run(["train", "--preset", "dmeo"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /preset "dmeo": unknown run preset \(known: .*\); did you mean "demo"\?/);
  r = await run(["train", "--preset", "demo", "--set", "train.lrr=1", "--set", "data.preprocess.sise=8"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /train: Unrecognized key: "lrr" \(did you mean "lr"\?\)/);
  assert.match(r.err, /data\.preprocess: Unrecognized key: "sise" \(did you mean "size"\?\)/);
  // A key far from every field gets no guess.
  r = await run(["train", "--preset", "demo", "--set", "train.zzzzzz=1"]);
  assert.match(r.err, /train: Unrecognized key: "zzzzzz"\n/);
  // The same in a config file, and in a model config given to init.
  const dir = await tempDir(t, "dym");
  const cfg = JSON.parse(await readFile(join(golden, "anr", "config.json"), "utf8")) as {
    hn: Record<string, unknown>;
  };
  await writeFile(join(dir, "model.json"), JSON.stringify({ ...cfg.hn, n_grups: 4 }));
  r = await run(["init", join(dir, "model.json"), "--out", join(dir, "m.safetensors")]);
  assert.equal(r.code, 2);
  assert.match(
    r.err,
    /model\.json: invalid model config:\n {2}\(root\): Unrecognized key: "n_grups" \(did you mean "n_groups"\?\)/,
  );
  assert.ok(!existsSync(join(dir, "m.safetensors")));
});

test("numbers and choices are validated, naming the option", async () => {
  for (const [args, message] of [
    [["init", "x.json", "--seed", "abc"], /--seed abc: expected a whole number/],
    [["init", "x.json", "--seed", "1.5"], /--seed 1\.5: expected a whole number/],
    [["demo", "--items", "0"], /--items 0: expected a whole number above 0/],
    [["demo", "--steps", "-1"], /--steps -1: expected a whole number/],
    [["eval", "r", "--max-images", "two"], /--max-images two: expected a whole number above 0/],
    [["render", "--model", "m", "--views", "v", "--near", "far"], /--near far: expected a number/],
    [["decode", "t", "--model", "m", "--scale", "0"], /--scale 0: expected a factor above 0/],
    [["decode", "t", "--model", "m", "--size", "8by8"], /--size 8by8: expected HxW or S/],
    [["decode", "t", "--model", "m", "--format", "png"], /--format must be npy or nc, not png/],
    [
      ["render", "--model", "m", "--views", "v", "--poses", "spiral"],
      /--poses must be orbit or views, not spiral/,
    ],
    [["completion", "fish"], /shell must be bash or zsh, not fish/],
    [["encode", "a.png"], /required option '--model <model>' not specified/],
    [["info", "a", "b"], /too many arguments for 'info'/],
  ] as const) {
    const r = await run([...args]);
    assert.equal(r.code, 2, args.join(" "));
    assert.match(r.err, message, args.join(" "));
  }
});

test("--quiet prints nothing but results; NO_COLOR and non-terminals get no colour in the help", async (t) => {
  const dir = await tempDir(t, "quiet");
  const model = join(dir, "m.safetensors");
  let r = await run(["init", join(golden, "anr", "config.json"), "--out", model, "--quiet"]);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual([r.out, r.err], ["", ""]);
  assert.ok(existsSync(model));
  r = await run(["presets", "--quiet", "--json"]);
  assert.equal(r.out.trim().split("\n").length, 1, "--quiet --json: only the JSON");
  const env = { FORCE_COLOR: process.env.FORCE_COLOR, NO_COLOR: process.env.NO_COLOR };
  try {
    process.env.FORCE_COLOR = "1";
    delete process.env.NO_COLOR;
    assert.ok((await run(["--help"])).out.includes(`${ESC}[1mUsage:`), "bold titles where colour is forced");
    process.env.NO_COLOR = "1";
    assert.ok(!(await run(["--help"])).out.includes(ESC), "NO_COLOR wins");
  } finally {
    for (const [k, v] of Object.entries(env)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
  // Not a terminal, nothing forced: plain text.
  r = await spawnAnr(["--help"], { env: { FORCE_COLOR: undefined, NO_COLOR: undefined } });
  assert.ok(!r.out.includes(ESC));
});

/** COMPREPLY of the bash completion `script` for the words of a command line (the last one being completed). */
function complete(script: string, words: string[]): string[] {
  const r = spawnSync(
    "bash",
    [
      "-c",
      `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _anr; printf '%s\\n' "\${COMPREPLY[@]}"`,
      "complete",
      script,
      ...words,
    ],
    { encoding: "utf8" },
  );
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split("\n").filter(Boolean).sort();
}

test("completion bash: made from the command tree, completes commands, options and choices", async (t) => {
  const dir = await tempDir(t, "completion");
  const r = await run(["completion", "bash"]);
  assert.equal(r.code, 0, r.err);
  const script = join(dir, "anr.bash");
  await writeFile(script, r.out);
  assert.deepEqual(complete(script, ["anr", "tr"]), ["train"]);
  assert.deepEqual(complete(script, ["anr", "de"]), ["decode", "demo"]);
  assert.deepEqual(
    complete(script, ["anr", "--device", "cpu", "ev"]),
    ["eval"],
    "an option's value is no command",
  );
  assert.deepEqual(complete(script, ["anr", "decode", "t", "--sc"]), ["--scale"]);
  assert.deepEqual(complete(script, ["anr", "decode", "t", "--format", ""]), ["nc", "npy"]);
  assert.deepEqual(complete(script, ["anr", "eval", "--weights", "e"]), ["ema"]);
  assert.deepEqual(complete(script, ["anr", "train", "--preset", "fmnist-"]), [
    "fmnist-anr",
    "fmnist-ipc",
    "fmnist-mlp",
  ]);
  assert.deepEqual(
    complete(script, ["anr", "compare", "--preset", ""]),
    ["demo", "fmnist", "twemoji32", "twemoji64", "winds"],
    "per command",
  );
  assert.deepEqual(complete(script, ["anr", "help", "comp"]), ["compare", "completion"]);
  assert.deepEqual(complete(script, ["anr", "--dev"]), ["--device"]);
  const zsh = await run(["completion", "zsh"]);
  assert.equal(zsh.code, 0);
  assert.match(zsh.out, /^#compdef anr\n/);
  assert.match(zsh.out, /'--format\[field models: the array file format\]:value:\(npy nc\)'/);
  const hasZsh = spawnSync("zsh", ["-c", "true"]).status === 0;
  if (!hasZsh) t.diagnostic("zsh is not installed: the zsh script's syntax is not checked");
  else {
    await writeFile(join(dir, "_anr"), zsh.out);
    assert.equal(spawnSync("zsh", ["-n", join(dir, "_anr")]).status, 0);
  }
});

test("presets: runs and models in two sections; each run says whether it runs out of the box", async () => {
  const r = await run(["presets"]);
  assert.equal(r.code, 0, r.err);
  const [runs, models] = r.out.split(/\n\nModels /);
  assert.match(runs!, /^Runs \(anr train --preset NAME\):/);
  assert.match(models!, /^\(model: \{ preset: NAME \} in a run config\):/);
  assert.match(runs!, /^ {2}demo +the main job.*\n +runs out of the box$/m);
  assert.match(runs!, /^ {2}celeba128-anr-d5 .*\n +needs DATA: CelebA: .*--data-root DIR$/m);
  assert.match(models!, /^ {2}tiny32-anr /m);
  assert.doesNotMatch(models!, /^ {2}demo /m);
  const j = JSON.parse((await run(["presets", "--json"])).out) as {
    runs: { name: string; ready: boolean; needs?: string }[];
    models: { name: string }[];
  };
  const byName = new Map(j.runs.map((x) => [x.name, x]));
  assert.equal(byName.get("demo")!.ready, true);
  assert.equal(byName.get("multiview-demo")!.ready, true);
  assert.equal(byName.get("twemoji32-anr")!.ready, true, "the @twemoji/svg package installs with anr");
  assert.equal(byName.get("celeba128-anr-d5")!.ready, false);
  // Fashion-MNIST runs out of the box exactly where Debian's package is installed.
  const fmnist = existsSync("/usr/share/datasets/fashion-mnist");
  assert.equal(byName.get("fmnist-anr")!.ready, fmnist);
  if (!fmnist) assert.match(byName.get("fmnist-anr")!.needs!, /apt-get install dataset-fashion-mnist/);
  assert.ok(j.models.some((m) => m.name === "tiny32-anr"));
});

test("progress: one rate, in the unit given (training: images/s)", () => {
  let now = 0;
  let text = "";
  const p = new Progress({
    total: 10,
    label: "train",
    stream: { write: (s: string) => ((text += s), true) },
    now: () => now,
    rate: { unit: "images", per: 16 },
  });
  p.update(1);
  now = 2000;
  p.done();
  // 1 step in 2 s of 16 images: 8 images/s; no it/s beside it.
  assert.match(text, /\| 8 images\/s \|/);
  assert.doesNotMatch(text, /it\/s/);
});

test("edit distance: insertions, deletions, substitutions and swaps cost 1; closest keeps to likely typos", () => {
  assert.equal(editDistance("lr", "lrr"), 1);
  assert.equal(editDistance("modle", "model"), 1);
  assert.equal(editDistance("", "abc"), 3);
  assert.equal(editDistance("kitten", "sitting"), 3);
  assert.equal(closest("lrr", ["steps", "lr", "betas"]), "lr");
  assert.equal(closest("zzzzzz", ["steps", "lr", "betas"]), undefined);
});

test("encode without --out writes out/encode-<input>/tokens.safetensors and says so", async (t) => {
  const dir = await tempDir(t, "default-out");
  await writePhoto(join(dir, "my photo.png"), 40, 32, 2);
  const r = await spawnAnr(["encode", "my photo.png", "--model", "demo-photos-anr", "--json"], { cwd: dir });
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out) as { out: string; folder: string };
  assert.equal(j.out, join("out", "encode-my-photo", "tokens.safetensors"));
  assert.ok(existsSync(join(dir, j.out)));
  assert.match(r.err, /wrote out\/encode-my-photo\/tokens\.safetensors/);
});

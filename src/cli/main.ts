/**
 * The `anr` command line: one grammar, declared here once with commander. Every command, argument
 * and option has its type (a parser), choices, default and help text in one place; the help, the
 * shell completion and the "did you mean" suggestions are made from these declarations.
 *
 * Global options, on every command: --device, --quiet (results and warnings only), --json (one
 * JSON result object on stdout; everything else on stderr). Exit codes: 0 success, 1 a check
 * failed, 2 bad usage or input, 70 a bug in anr.
 */
import { readFileSync } from "node:fs";
import {
  Argument,
  Command,
  CommanderError,
  Option,
  type CommandUnknownOpts,
  type OptionValues,
} from "@commander-js/extra-typings";
import { DEVICES, initBackend } from "../backend/index.js";
import { AnrError, UsageError, isFileSystemError } from "../util/errors.js";
import { RUN_PRESETS } from "../training/run-presets.js";
import { setDefaultProgressStream } from "../util/progress.js";
import {
  parseChoice,
  parseReal,
  parseScale,
  parseRegion,
  parseScales,
  parseSize,
  parseWhole,
  WEIGHTS,
  type Outcome,
  type PreparationFlags,
} from "./common.js";
import { cmdBatchResume, cmdBatchRun, cmdBatchStatus, cmdWorker } from "./batch.js";
import { BATCH_COMMANDS } from "../batch/spec.js";
import { cmdCompare, COMPARISONS } from "./compare.js";
import { cmdCompletion, SHELLS, type CompletionOption, type CompletionTree } from "./completion.js";
import { cmdDecode, DECODE_ENGINES } from "./decode.js";
import { runDemo } from "./demo.js";
import { cmdEncode } from "./encode.js";
import { cmdEval, parseFactors } from "./eval.js";
import { cmdExport, EXPORT_FORMATS } from "./export.js";
import { cmdGolden } from "./golden.js";
import { cmdInfo } from "./info.js";
import { cmdInit } from "./init.js";
import { cmdModels } from "./models.js";
import { cmdPresets } from "./presets.js";
import { cmdRender } from "./render.js";
import { cmdTrain } from "./train.js";

/** anr's version, from its package.json (beside src/ and dist/ alike, also in an installed package). */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

/** An option taking one of `values`, listed in the help, refused otherwise with the nearest one. */
function choice<const F extends string, const V extends string>(
  flags: F,
  description: string,
  values: readonly V[],
) {
  const flag = /--[\w-]+/.exec(flags)![0];
  return new Option(flags, description).choices(values).argParser(parseChoice(flag, values));
}

/** `--size HxW|S`: one parser for every command. */
const sizeOption = (what: string) =>
  new Option("--size <HxW|S>", `${what}: H×W pixels, or S for S×S`).argParser(parseSize);
/** `--scale K`: K × the native size. */
const scaleOption = (what: string) => new Option("--scale <K>", what).argParser(parseScale);
const weightsOption = () =>
  choice(
    "--weights <set>",
    "the run's weights: online, or the EMA copy (model-ema.safetensors)",
    WEIGHTS,
  ).default("online" as const);
/** `--set KEY=VALUE`, repeatable. */
const setOption = () =>
  new Option("--set <key=value>", "set any config field, e.g. train.lr=1e-4 (repeatable)").argParser(
    (v: string, previous: string[] | undefined) => [...(previous ?? []), v],
  );

/**
 * `--preset NAME`: a run preset, listed in the help and completed by the shell; an unknown name is
 * refused by the command, naming the nearest preset.
 */
const presetOption = (description: string) =>
  new Option("--preset <name>", description).choices(Object.keys(RUN_PRESETS)).argParser((v: string) => v);

/** The preparation flags of encode and eval, by their flag names. */
function preparationFlags(o: {
  preprocess?: string;
  resize?: string;
  select?: string;
  fillMissing?: string;
  background?: string;
}): PreparationFlags {
  return {
    preprocess: o.preprocess,
    resize: o.resize,
    select: o.select,
    "fill-missing": o.fillMissing,
    background: o.background,
  };
}

/** What the preparation flags change and what the model fixes, in encode's and eval's help. */
const PREPARATION_HELP = `
Preparation: the model file records how its training data was prepared (images: the crop mode,
size, resize and the SVG background; fields: variables, select, preprocessing, fill_missing, the
north-up flip, latitudes), inputs are prepared that way, and the command prints what it used.
--preprocess, --resize, --background, --select and --fill-missing each override one part. The
rest has no flag, as the model fixes it: the input size and, for fields, the variables (they are
the model's channels, with their normalisation); the antialiasing of the resampling (part of
what the model learned from); the north-up flip (applied to each NetCDF file whose latitudes run
south to north, so every file comes out north up); the latitudes of .npy fields (they only
weight eval's RMSE by cos(latitude)).`;

/** Add the options that override how inputs are prepared (encode, eval), and their help. */
function withPreparation<A extends unknown[], O extends OptionValues, G extends OptionValues>(
  cmd: Command<A, O, G>,
) {
  return cmd
    .addHelpText("after", PREPARATION_HELP)
    .option("--preprocess <mode>", "images: resize-crop|crop-resize; fields: resize-crop|resize|none")
    .option("--resize <n>", "resize-crop: the shorter side before the centre crop")
    .option("--background <#rrggbb>", "the background SVG files are rendered on")
    .option("--select <dim=i,dim=j>", "NetCDF fields: the index of each extra dimension")
    .option("--fill-missing <value|none>", "fields: the value that fills missing points, or none");
}

const ENVIRONMENT = `
Environment:
  ANR_DEVICE     the device when --device is not given (default wasm)
  ANR_THREADS    kernel threads (default: all cores)
  ANR_DEBUG=1    print the stack of an internal error
  NO_COLOR       no colour in the help

Exit codes: 0 ok, 1 a check failed, 2 bad usage or input, 70 a bug in anr.
Output: training writes runs/<name>/, every other command out/<command>-<input>/ (or --out);
each prints where its results are.`;

/** Examples for a command's help, one `$ anr …` line each. */
const examples = (...lines: string[]) => `\nExamples:\n${lines.map((l) => `  $ ${l}`).join("\n")}`;

interface Context {
  /** The whole command line, for a training's resume command. */
  argv: string[];
  /** Called with what the command returned and its name. */
  report(name: string, o: Outcome): void;
  /** Where the help goes (stdout) and where errors go (stderr). */
  out(s: string): void;
  err(s: string): void;
}

/** The command tree. A fresh one per run: commander keeps the parsed values in it. */
export function buildProgram(ctx: Context) {
  const program = new Command("anr")
    .description(
      "anr — attention-based implicit neural representations (ANR, ECCV 2024): a transformer hyper-network turns an image into R-tokens, decoded at any resolution.",
    )
    .version(packageVersion(), "-V, --version", "print anr's version")
    .addOption(choice("--device <name>", "where the model runs (default: ANR_DEVICE, else wasm)", DEVICES))
    .option("--quiet", "print only results and warnings (no progress, no logs)")
    .option("--json", "print one JSON result object on stdout (logs and progress go to stderr)")
    .helpOption("-h, --help", "show this help")
    .helpCommand("help [command]", "show the help of a command")
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.out(s.replace(/\n$/, "")),
      writeErr: (s) => ctx.err(s.replace(/\n$/, "")),
      // Errors are reported by reportError, as every other error is.
      outputError: () => undefined,
    })
    .configureHelp({
      showGlobalOptions: true,
      helpWidth: Math.min(100, process.stdout.columns || 100),
      // Commander strips the colour where the output is no terminal or NO_COLOR is set.
      styleTitle: (s) => `\x1b[1m${s}\x1b[22m`,
    })
    .addHelpText(
      "after",
      `${examples(
        "npm start                                       (= anr demo)",
        "anr train --preset fmnist-anr",
        "anr eval runs/fmnist-anr --weights ema",
        "anr encode photo.jpg --model demo-photos-anr",
        "anr decode out/encode-photo/tokens.safetensors --model demo-photos-anr --scale 4",
        "anr help train",
      )}\n${ENVIRONMENT}`,
    );
  const act =
    <A extends unknown[]>(name: string, fn: (...a: A) => Promise<Outcome> | Outcome) =>
    async (...a: A) =>
      ctx.report(name, await fn(...a));

  program
    .command("demo")
    .summary(
      "the main job: the zoo's Twemoji model at ×4 and ×8 against the truth, then its recipe trained live",
    )
    .description(
      `The main job (npm start), in two parts. 1: the zoo model twemoji32-anr encodes held-out emoji
at 32² and decodes them at ×4 and ×8; each is measured against the emoji rendered at that size,
beside bicubic and Lanczos-3 upsampling (a table and a picture per factor). 2: a fresh model trains
with the same recipe (about 5 minutes on 2 cores), and its PSNR curve is drawn over the zoo model's
training curve (training-vs-zoo.png). The photo demo is the "demo" run preset.`,
    )
    .option("--steps <n>", "training steps of part 2 (default 500; 0: part 1 only)", parseWhole("--steps", 0))
    .option(
      "--items <n>",
      "held-out emoji of part 1 (default 24; 199 is the whole test split)",
      parseWhole("--items"),
    )
    .option("--out <dir>", "the run folder (default runs/demo)")
    .option("--resume", "continue the run in --out from its checkpoint")
    .option("--overwrite", "replace the run in --out")
    .addHelpText(
      "after",
      examples("anr demo --steps 1000", "anr demo --overwrite", "anr demo --items 199 --steps 0"),
    )
    .action(act("demo", (o) => runDemo(o, ctx.argv)));

  program
    .command("train")
    .summary("train a model from a run config or a preset")
    .description(
      `Trains a run into its folder (default runs/<name>): config.json, metrics.jsonl, checkpoints,
model.safetensors / model-ema.safetensors, samples/, psnr.png, eval.json, report.html and
TensorBoard events. A folder holding a run is refused unless --resume or --overwrite.
Ctrl-C (SIGINT) or SIGTERM stops after the current step with a checkpoint (exit 130); --resume
continues it.`,
    )
    .argument("[config]", "a run config, YAML or JSON")
    .addOption(presetOption("start from a run preset (anr presets says which run out of the box)"))
    .option("--data-root <path>", "set data.root (a folder, or a .npy/.nc file for field data)")
    .option("--steps <n>", "set train.steps", parseWhole("--steps"))
    .addOption(setOption())
    .option("--out <dir>", "the run folder (default runs/<name>)")
    .option(
      "--resume",
      "continue the run in --out exactly where it stopped (only train.steps and the cadences may change)",
    )
    .option(
      "--overwrite",
      "replace the run in --out (deleted once the new run's first checkpoint is written)",
    )
    .option(
      "--budget-seconds <s>",
      "end the run once its training time (the steps alone) reaches this many seconds; train.steps is then an upper bound",
      parseReal("--budget-seconds"),
    )
    .addHelpText(
      "after",
      examples(
        "anr train --preset fmnist-anr",
        "anr train --preset celeba128-anr-d5 --data-root /data/celeba",
        "anr train my-run.yaml --set train.lr=1e-4 --steps 5000",
        "anr train --preset fmnist-anr --resume",
        "anr train --preset twemoji32-anr --steps 100000 --budget-seconds 900",
      ),
    )
    .action(act("train", (config, o) => cmdTrain(config, o, ctx.argv)));

  withPreparation(
    program
      .command("eval")
      .summary("PSNR/SSIM of a model: on its run's split, on a folder of images, or super-resolution")
      .description(
        `PSNR per image (in [0,1], averaged: the TransINR/IPC protocol) and SSIM, with a JSON report and a
grid picture (inputs over reconstructions).
  anr eval RUN                       the run's test split; reports go into RUN
  anr eval --model M --config RUN.yaml|--preset NAME   a model on a run's data (out/eval-<model>)
  anr eval --model ZOO_NAME          a zoo model on the data of its run preset (anr models)
  anr eval RUN --images DIR          every image under DIR, prepared as encode prepares it
                                     (no config needed; out/eval-<DIR>)
The data is prepared as the model was trained (its file records how; the command prints it).
Field runs report PSNR in normalised units and per channel the RMSE in physical units; their
preparation can be overridden (--preprocess, --resize, --select, --fill-missing). An image run's
dataset keeps the crop the model was trained with; to prepare image files otherwise, evaluate
them with --images DIR and the flags.
Super-resolution: field runs: --size HxW or --scale K, each field encoded at the model's size,
decoded larger and compared with the same field prepared at that size (beside bilinear); runs on
SVG data (svg, twemoji): --scale 4,8 (or --sr 4,8), compared with the SVG rendered at that size
(beside bicubic and Lanczos-3).`,
      )
      .argument("[run]", "a run folder (or a model file, a zoo name, with --images)")
      .option("--model <model>", "a model file, run folder or zoo name (default: the run's own)")
      .option("--config <file>", "the run config whose data to evaluate on")
      .addOption(presetOption("the run preset whose data to evaluate on"))
      .option("--images <dir>", "evaluate on every image under this folder instead")
      .addOption(choice("--split <split>", "the split", ["test", "val"] as const).default("test" as const))
      .addOption(weightsOption())
      .option("--max-images <n>", "only the first n images", parseWhole("--max-images"))
      .option("--data-root <path>", "evaluate on the data at this root instead")
      .option("--out <dir>", "where the reports go")
      .addOption(sizeOption("super-resolution of fields"))
      .addOption(
        new Option("--scale <K[,K]>", "super-resolution at K × the model's size").argParser(parseScales),
      )
      .addOption(new Option("--sr <factors>", "SVG runs: the same as --scale").argParser(parseFactors)),
  )
    .addHelpText(
      "after",
      examples(
        "anr eval runs/fmnist-anr --weights ema",
        "anr eval demo-photos-anr --images my-photos/",
        "anr eval --model demo-photos-anr",
        "anr eval runs/twemoji32-anr --scale 4,8",
      ),
    )
    .action(
      act("eval", (run, o) =>
        cmdEval(run, {
          ...o,
          preparation: preparationFlags(o),
        }),
      ),
    );

  withPreparation(
    program
      .command("encode")
      .summary("the compact representation (R-tokens) of images or fields")
      .description(
        `The compact representation of each image or field: its R-tokens (ANR) or generated weights
(baselines), in one token file. Inputs are prepared as the model's training data was (the model
file records it; each flag overrides one part; the command prints what it used). A model file
that records no preparation resizes the shorter side and centre-crops to the model's input size.
Fields (.npy (H, W) or (C, H, W), or NetCDF with the model's channel names as variables) are read
in physical units and normalised by the model; where fill_missing filled a gap, the token file
keeps a mask and decode writes NaN there. The token file records a fingerprint of the weights,
which decode checks.`,
      )
      .argument("<inputs...>", "image files (JPEG, PNG, WebP, SVG) or field files (.npy, .nc)")
      .requiredOption("--model <model>", "a model file, run folder or zoo name (anr models)")
      .option("--out <file>", "the token file (default out/encode-<first input>/tokens.safetensors)")
      .addOption(weightsOption())
      .option("--index <i,j>", "NetCDF: only these time steps"),
  )
    .addHelpText(
      "after",
      examples(
        "anr encode photo.jpg --model demo-photos-anr",
        "anr encode a.png b.png --model runs/celeba-anr --weights ema --out tokens.safetensors",
        "anr encode era5.nc --index 0,5 --model runs/era5",
      ),
    )
    .action(act("encode", (inputs, o) => cmdEncode(inputs, { ...o, ...preparationFlags(o) })));

  program
    .command("decode")
    .summary("images (or fields) at any resolution from their tokens")
    .description(
      `Decodes each encoded instance at any resolution (super-resolution beyond the training size):
PNGs <name>.<H>x<W>.png. Field models: <name>.<H>x<W>.npy in physical units (or --format nc, a
NetCDF-3 file with a variable per channel) and a false-colour preview per channel; NaN where the
input was missing. Tokens encoded by other weights are refused unless --force. Sizes are checked
before any work (at most 268,402,689 pixels an image: the PNG writer's limit).

--attention (ANR models) shows locality, as the web page does for a hovered pixel: for each R-token,
the weight every decoded pixel gives it after the attention threshold, averaged over the heads (so
each pixel's weights sum to 1 over the tokens). <name>.<H>x<W>.attention.npy holds them (float32,
shape (tokens, H, W)); <name>.<H>x<W>.attention.png shows the decoded picture over one panel per
R-token ("token k", one colour scale), with the share of weights the threshold zeroed. They are
computed on our engine whatever --engine decodes the pictures.`,
    )
    .argument("<tokens>", "a token file (anr encode)")
    .requiredOption("--model <model>", "the model that encoded them: a file, run folder or zoo name")
    .addOption(sizeOption("the decoded size (default: the encoded size)"))
    .addOption(scaleOption("decode at K × the encoded size, e.g. 4"))
    .option(
      "--region <t,l,b,r>",
      "only this part of the image: top, left, bottom, right as fractions (e.g. 0.25,0.25,0.75,0.75); --scale and the default size take its share",
      parseRegion,
    )
    .option("--out <dir>", "the output folder (default out/decode-<tokens>)")
    .addOption(weightsOption())
    .addOption(
      choice("--format <format>", "field models: the array file format", ["npy", "nc"] as const).default(
        "npy" as const,
      ),
    )
    .option("--force", "decode even if the tokens were encoded by other weights")
    .addOption(
      choice(
        "--engine <engine>",
        "image models: our engine (wasm: the --device backend) or ONNX Runtime's CPU engine (ort: the exported graphs, on onnxruntime-node)",
        DECODE_ENGINES,
      ).default("wasm" as const),
    )
    .option(
      "--attention",
      "ANR models: also write each R-token's attention map (per pixel, after the threshold, mean over heads) as <name>.<H>x<W>.attention.png and .npy",
    )
    .addHelpText(
      "after",
      examples(
        "anr decode out/encode-photo/tokens.safetensors --model demo-photos-anr --scale 4",
        "anr decode tokens.safetensors --model runs/celeba-anr --size 512x512 --out sr/",
        "anr decode tokens.safetensors --model demo-photos-anr --scale 8 --engine ort",
        "anr decode tokens.safetensors --model twemoji32-anr --scale 16 --region 0.25,0.25,0.75,0.75",
        "anr decode out/encode-photo/tokens.safetensors --model demo-photos-anr --scale 2 --attention",
      ),
    )
    .action(act("decode", (tokens, o) => cmdDecode(tokens, o)));

  program
    .command("export")
    .summary("a model as ONNX graphs (encoder.onnx, decoder.onnx) for other engines")
    .description(
      `Exports a model as two ONNX graphs that any ONNX runtime runs (ONNX Runtime in Python, C++, the
browser…): encoder.onnx (images → the compact representation) and decoder.onnx (representation +
coordinates → signal), opset 17, float32, with the model config in their metadata (docs/onnx.md).`,
    )
    .argument("<model>", "a model file, run folder or zoo name (anr models)")
    .addOption(choice("--format <format>", "the export format", EXPORT_FORMATS).default("onnx" as const))
    .option("--out <dir>", "the output folder (default out/export-<model>)")
    .addOption(weightsOption())
    .addHelpText(
      "after",
      examples(
        "anr export demo-photos-anr --format onnx",
        "anr export runs/celeba-anr --weights ema --out onnx/",
      ),
    )
    .action(act("export", (model, o) => cmdExport(model, o)));

  program
    .command("compare")
    .summary("ANR vs TransINR-style MLP vs IPC, same everything else")
    .description(
      `Trains ANR, the TransINR-style MLP and IPC with the same data, steps, seeds and hyper-network,
then writes compare.md / compare.json (final test PSNR and SSIM, as mean ± sample standard
deviation over the seeds and per seed; physical RMSE per channel for fields; steps, training time,
sizes) and three plots: compare.png (test PSNR vs step), compare-time.png (test PSNR vs training
time, the steps alone without evaluations) and compare-size.png (final test PSNR vs floats per
instance, ± std over seeds). "winds" is the winds-demo field run (ferret-datasets); "twemoji32"
and "twemoji64" are the zoo's Twemoji recipes (twemoji32-anr, twemoji64-anr) with tiny32-* and
tiny64-* models.

--seeds N trains each contender N times, with seeds train.seed, train.seed + 1, …, into
<out>/<model>/seed-<seed> (one seed: <out>/<model>). --budget-seconds S ends each run once its
training time reaches S seconds (train.steps is then an upper bound), with the final evaluation
and model as at its last step; each run's eval.json records its steps, training time and what
stopped it. The data is looked for before anything is trained. A run folder that holds a run
finished with the same config and budget is reused, so a stopped study continues where it ended
(the same command again); one that holds anything else is refused unless --overwrite. --jobs N
trains N runs at once, each in its own process with 1/N of the kernel threads (ANR_THREADS, default
all cores), so that every run gets the same share of the machine.

--models anr trains some contenders only; --vary KEY=V1,V2 adds, for each value, a variant of each
contender with that model setting changed (KEY inside the model config, one setting at a time;
folder <model>-<field>-<value>), for sweeps of e.g. the PE bandwidth, τ or the number of R-tokens.`,
    )
    .addOption(
      choice("--preset <name>", "the comparison", Object.keys(COMPARISONS) as [string, ...string[]]).default(
        "fmnist",
      ),
    )
    .option("--steps <n>", "set train.steps", parseWhole("--steps"))
    .option("--seeds <n>", "runs per contender, seeds train.seed and up (default 1)", parseWhole("--seeds"))
    .option(
      "--budget-seconds <s>",
      "end each run at this much training time (train.steps is then an upper bound)",
      parseReal("--budget-seconds"),
    )
    .option("--models <names>", "train only these contenders, comma-separated (anr, mlp, ipc)", (v: string) =>
      v.split(",").filter(Boolean),
    )
    .option(
      "--vary <key=v1,v2>",
      "sweep a model setting one value at a time, e.g. hyponet.args.pe_sigma=16,128 (repeatable)",
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .addOption(setOption())
    .option(
      "--jobs <n>",
      "runs trained at once, each an anr train process with its share of the kernel threads (default 1)",
      parseWhole("--jobs"),
    )
    .option("--out <dir>", "the folder of the runs and the table (default runs/compare-<preset>)")
    .option("--overwrite", "replace runs already there (else finished runs with the same config are reused)")
    .addHelpText(
      "after",
      examples(
        "anr compare --preset demo --steps 600",
        "anr compare --preset fmnist --steps 500",
        "anr compare --preset twemoji32 --steps 100000 --budget-seconds 1800 --seeds 3",
        "anr compare --preset twemoji32 --steps 100000 --budget-seconds 900 --seeds 3 --jobs 2",
        "anr compare --preset twemoji32 --models anr --vary hyponet.args.token_len=16,64 --budget-seconds 900",
      ),
    )
    .action(act("compare", (o) => cmdCompare(o)));

  const queueOption = () =>
    new Option("--queue <url>", "a Redis queue, redis://HOST:PORT/DB: workers (anr worker) do the shards");
  const batch = program
    .command("batch")
    .summary("encode, evaluate, decode or render many files in shards, here or by workers on a Redis queue")
    .description(
      `A command over many files (a dataset into R-tokens, a large evaluation), cut into shards of
--shard-size files. Without --queue the shards are done here, one after the other; with --queue
they become jobs on a Redis queue (BullMQ), done by any number of \`anr worker\` processes on any
machines that see the same paths. Either way the batch folder gets the same bytes: batch.json, per
shard a token file (encode; decode writes decoded/<token file>/<instance>.png, render
rendered/<object>/frame-NNN.png) and a record of each input's checksum and outcome, and
manifest.json.
An input that cannot be read is recorded as failed with its error; the rest go on. A shard whose
worker dies is taken over by another; a failed shard is retried twice. \`anr batch resume\` does
whatever is missing; the same command again does nothing that is done.`,
    );
  for (const command of BATCH_COMMANDS)
    batch
      .command(command)
      .summary(
        {
          encode: "the R-tokens of every input, one token file per shard",
          eval: "PSNR/SSIM of every input's reconstruction at the model's size",
          decode: "every instance of every token file as an image (or .npy field), at any size",
          render: "an orbit of every object from its support views (view-synthesis models)",
        }[command],
      )
      .argument(
        "<inputs...>",
        {
          encode: "image files (JPEG, PNG, WebP, SVG) or .npy fields, or folders of them",
          eval: "image files (JPEG, PNG, WebP, SVG), or folders of them",
          decode: "token files (.safetensors: anr encode's, or batch encode's shards), or folders of them",
          render: "object folders (transforms.json and r_*.png, the learnit layout), or folders of them",
        }[command],
      )
      .requiredOption("--model <model>", "a model file, run folder or zoo name (anr models)")
      .addOption(weightsOption())
      .option("--out <dir>", `the batch folder (default out/batch-${command}-<first input>)`)
      .option("--shard-size <n>", "inputs per shard (default 64)", parseWhole("--shard-size"))
      .addOption(queueOption())
      .option("--detach", "with --queue: return once the jobs are queued")
      .addOption(sizeOption("decode, render: the output size (default the input size)"))
      .addOption(scaleOption("decode, render: K × the input size"))
      .option("--support <i,j>", "render: the views encoded (default 0,1,2)", (v) =>
        v.split(",").map((x) => parseWhole("--support", 0)(x.trim())),
      )
      .option("--frames <n>", "render: frames of the orbit (default 8)", parseWhole("--frames"))
      .option("--samples <n>", "render: samples per ray (default 64)", parseWhole("--samples"))
      .addHelpText(
        "after",
        examples(
          `anr batch ${command} photos/ --model demo-photos-anr --out out/photos`,
          `anr batch ${command} photos/ --model demo-photos-anr --out /shared/photos --queue redis://127.0.0.1:6379/0`,
        ),
      )
      .action(act(`batch ${command}`, (inputs, o) => cmdBatchRun(command, inputs, o)));
  batch
    .command("status")
    .summary("shards done, queued, retrying and failed; inputs that failed")
    .argument("<batch>", "a batch folder, or a batch id (with --queue)")
    .addOption(queueOption())
    .action(act("batch status", (which, o) => cmdBatchStatus(which, o)));
  batch
    .command("resume")
    .summary("do what a batch has not done: here, or queued again with --queue")
    .argument("<batch>", "a batch folder, or a batch id (with --queue)")
    .addOption(queueOption())
    .option("--detach", "with --queue: return once the jobs are queued")
    .action(act("batch resume", (which, o) => cmdBatchResume(which, o)));

  program
    .command("worker")
    .summary("do batch shard jobs from a Redis queue until stopped")
    .description(
      `Takes shard jobs of any batch from the queue and does them, loading each model once. A job is
acknowledged only once its outputs are written and flushed to disk. Ctrl-C or SIGTERM stops it
after the jobs in hand; a worker killed outright loses its job to another after --lock-seconds.`,
    )
    .requiredOption("--queue <url>", "the Redis queue, redis://HOST:PORT/DB")
    .option("--concurrency <k>", "jobs at once in this process (default 1)", parseWhole("--concurrency"))
    .option(
      "--lock-seconds <s>",
      "how long a job stays with a worker that stops answering (default 30)",
      parseReal("--lock-seconds"),
    )
    .addHelpText("after", examples("anr worker --queue redis://127.0.0.1:6379/0"))
    .action(act("worker", (o) => cmdWorker(o)));

  program
    .command("render")
    .summary("novel views of an object from posed support views (frames + animated GIF)")
    .description(
      `R-tokens from an object's support views, then its radiance field rendered from an orbit or from
the object's other views (beside their truth): frame-NNN.png, orbit.gif and support.png.
OBJECT_DIR holds transforms.json and r_*.png (the learnit layout).`,
    )
    .requiredOption("--model <model>", "a view-synthesis model: file, run folder or zoo name")
    .requiredOption("--views <dir>", "the object's folder")
    .option("--support <i,j>", "support view indices (default 0,1,2)", (v) =>
      v.split(",").map((x) => parseWhole("--support", 0)(x.trim())),
    )
    .addOption(
      choice("--poses <poses>", "an orbit around the object, or its other views", [
        "orbit",
        "views",
      ] as const).default("orbit" as const),
    )
    .option("--frames <n>", "orbit frames", parseWhole("--frames"), 24)
    .addOption(sizeOption("the rendered size (default: the model's input size)"))
    .addOption(scaleOption("render at K × the model's input size"))
    .option("--samples <n>", "samples per ray", parseWhole("--samples"), 64)
    .option("--near <depth>", "nearest depth sampled", parseReal("--near"), 2)
    .option("--far <depth>", "farthest depth sampled", parseReal("--far"), 6)
    .option("--out <dir>", "the output folder (default out/render-<object>)")
    .addHelpText(
      "after",
      examples("anr render --model runs/multiview-demo --views data/multiview/objects/cat --scale 4"),
    )
    .action(act("render", (o) => cmdRender(o)));

  program
    .command("presets")
    .summary("the run presets (each says whether its data is here) and the model presets")
    .description(
      `The run presets (anr train --preset NAME), each marked "runs out of the box" or "needs DATA"
with how to get it, and the model presets (model: { preset: NAME } in a run config).`,
    )
    .action(act("presets", () => cmdPresets()));

  program
    .command("models")
    .summary("the model zoo: trained models shipped with anr, usable by name")
    .description(
      `The model zoo: trained models shipped in the package's models/ folder (models/zoo.json, each
with a model card). Their names work anywhere a model path does.`,
    )
    .addHelpText(
      "after",
      examples("anr encode photo.jpg --model demo-photos-anr", "anr eval --model demo-photos-anr"),
    )
    .action(act("models", () => cmdModels()));

  program
    .command("info")
    .summary("what a run folder, model, checkpoint, token or any safetensors file holds")
    .description(
      `A run folder: its config, steps done, last metrics and files. A safetensors file: what anr made
it for (model, checkpoint, tokens), its metadata, and a table of its tensors (name, dtype, shape,
numel). --json gives the same as one object.`,
    )
    .argument("<path>", "a run folder, a .safetensors file or a zoo name")
    .addHelpText(
      "after",
      examples("anr info runs/demo", "anr info demo-photos-anr", "anr info runs/demo/checkpoint.safetensors"),
    )
    .action(act("info", (path) => cmdInfo(path)));

  program
    .command("init")
    .summary("a freshly initialised model from a model config")
    .description(
      `A freshly initialised model from a model config (JSON/YAML), the "hn" block of a golden
config.json, an authors' YAML config ("hyper_network") or a run config ("model").`,
    )
    .argument("<config>", "the config file")
    .option("--out <file>", "the model file (default out/init-<config>/model.safetensors)")
    .option("--seed <n>", "the seed of the initial weights", parseWhole("--seed", 0), 0)
    .addHelpText("after", examples("anr init test/golden/anr/config.json --out anr.safetensors --seed 1"))
    .action(act("init", (config, o) => cmdInit(config, o)));

  program
    .command("golden")
    .summary("compare with golden data made by the reference PyTorch code")
    .description(
      `Rebuilds the model from DIR/config.json and DIR/weights.safetensors, recomputes every key of
DIR/io.safetensors it knows (intermediates, predictions, loss, PSNR, gradients, one Adam step),
prints max errors against the tolerances and exits 1 on any failure. The tolerances are the
measured per-key bounds of --tolerances FILE, or of a tolerances.json beside DIR; without one,
the uniform bounds of the golden notes.`,
    )
    .argument("<dirs...>", "golden folders")
    .option("--all", "list every check, not only the worst of each metric")
    .option("--tolerances <file>", "per-key bounds")
    .addHelpText("after", examples("anr golden test/golden/*"))
    .action(act("golden", (dirs, o) => cmdGolden(dirs, o)));

  program
    .command("completion")
    .summary("a shell completion script (bash or zsh), made from this command tree")
    .description(
      `Prints a completion script for bash or zsh: commands, options and their choices.
  bash: source <(anr completion bash)     zsh: source <(anr completion zsh)`,
    )
    .addArgument(
      new Argument("<shell>", "bash or zsh").choices(SHELLS).argParser(parseChoice("shell", SHELLS)),
    )
    .action(act("completion", (shell) => cmdCompletion(shell, completionTree(program))));

  return program;
}

/** What completion needs of the command tree. */
function completionTree(program: CommandUnknownOpts): CompletionTree {
  const option = (o: {
    long?: string;
    short?: string;
    required: boolean;
    optional: boolean;
    argChoices?: string[];
    description: string;
    hidden: boolean;
  }): CompletionOption => ({
    names: [o.long, o.short].filter((n): n is string => n !== undefined),
    takesValue: o.required || o.optional,
    ...(o.argChoices ? { choices: o.argChoices } : {}),
    description: o.description,
  });
  const help: CompletionOption = { names: ["--help", "-h"], takesValue: false, description: "show the help" };
  const commands = program.commands.map((c) => ({
    name: c.name(),
    description: c.summary() || c.description(),
    options: c.options.filter((o) => !o.hidden).map(option),
    ...(c.registeredArguments[0]?.argChoices ? { choices: c.registeredArguments[0].argChoices } : {}),
    ...(c.commands.length ? { choices: c.commands.map((sub) => sub.name()) } : {}),
  }));
  commands.push({
    name: "help",
    description: "show the help of a command",
    options: [],
    choices: program.commands.map((c) => c.name()),
  });
  return { name: program.name(), options: [...program.options.map(option), help], commands };
}

/** The global options, as parsed. */
interface Globals {
  device?: (typeof DEVICES)[number];
  quiet?: boolean;
  json?: boolean;
}

export async function main(argv: string[]): Promise<number> {
  // The console as the caller set it: results go to its log, errors to its error.
  const [stdout, stderr] = [console.log, console.error];
  let result: { name: string; outcome: Outcome } | undefined;
  const program = buildProgram({
    argv,
    report: (name, outcome) => (result = { name, outcome }),
    out: (s) => stdout(s),
    err: (s) => stderr(s),
  });
  let json = argv.includes("--json");
  program.hook("preAction", async (_program, action) => {
    const g = action.optsWithGlobals() as Globals;
    json = g.json === true;
    // --json keeps stdout for the result: the commands' lines go to stderr, or nowhere (--quiet).
    if (g.quiet) {
      console.log = () => undefined;
      setDefaultProgressStream(null);
    } else if (json) console.log = (...a: unknown[]) => stderr(...a);
    refuseEmptyValues(action);
    await startDevice(g.device);
  });
  let code: number;
  let error: string | undefined;
  try {
    await program.parseAsync(argv, { from: "user" });
    code = result?.outcome.exitCode ?? 0;
  } catch (thrown) {
    let e = thrown;
    if (e instanceof CommanderError) {
      // Help and --version end with a CommanderError too, of exit code 0; `anr` alone printed the
      // help on stderr and exits 2.
      if (e.exitCode === 0) return 0;
      if (e.code === "commander.help") return 2;
      e = new UsageError(e.message.replace(/^error: /, ""));
    }
    code = reportError(e);
    error = e instanceof Error ? e.message : String(e);
  } finally {
    console.log = stdout;
    setDefaultProgressStream(undefined);
  }
  if (json) {
    const head = {
      command: result?.name ?? argv.find((a) => !a.startsWith("-")),
      ok: code === 0,
      exit_code: code,
    };
    stdout(JSON.stringify(error === undefined ? { ...head, ...result?.outcome.result } : { ...head, error }));
  }
  return code;
}

/** What an empty value was given in place of, from the placeholder of its declaration. */
function expected(placeholder: string): string {
  const name = /[<[]([^>\]]*)[>\]]/.exec(placeholder)?.[1] ?? placeholder;
  return ["path", "dir", "file", "model", "run", "token", "config", "input"].some((w) =>
    name.toLowerCase().includes(w),
  )
    ? "a path"
    : `a value (${name})`;
}

/**
 * Refuse an empty option value or argument (`--out ""`, often an unset shell variable): taken as
 * given, it would mean "not given" (a default folder, the run's own data) or the current folder.
 */
function refuseEmptyValues(action: CommandUnknownOpts): void {
  for (const o of action.options)
    if (action.getOptionValue(o.attributeName()) === "")
      throw new UsageError(`${o.long ?? o.flags}: expected ${expected(o.flags)}, got an empty string`);
  for (const [i, a] of action.registeredArguments.entries()) {
    const v: unknown = action.processedArgs[i];
    if (v === "" || (Array.isArray(v) && v.includes("")))
      throw new UsageError(
        `anr ${action.name()}: argument ${a.name().toUpperCase()}: expected ${expected(a.name())}, got an empty string`,
      );
  }
}

/**
 * Start the backend on the device of --device, else ANR_DEVICE, before the command: every command
 * then runs on it. Without either, commands start the default device when they need one.
 */
async function startDevice(flag: (typeof DEVICES)[number] | undefined): Promise<void> {
  const env = process.env.ANR_DEVICE || undefined;
  const from = flag !== undefined ? "--device" : "ANR_DEVICE";
  const device = flag ?? (env === undefined ? undefined : parseChoice("ANR_DEVICE", DEVICES)(env));
  if (device === undefined) return;
  try {
    await initBackend({ device });
  } catch (e) {
    throw new UsageError(`${from} ${device}: ${(e as Error).message}`);
  }
}

/**
 * Print an error the way its kind asks for and return the exit code: an `AnrError` by its own
 * message and code, a file-system error (a missing file, a read-only folder) as an input error,
 * and anything else as a bug, in one line, with the stack only under ANR_DEBUG=1.
 */
export function reportError(e: unknown): number {
  if (e instanceof UsageError && e.exitCode === 0) {
    console.log(e.message);
    return 0;
  }
  if (e instanceof AnrError) {
    console.error(`anr: ${e.message}`);
    if (e instanceof UsageError) console.error(`(anr help for usage)`);
    return e.exitCode;
  }
  if (isFileSystemError(e)) {
    console.error(`anr: ${e.message}`);
    return 2;
  }
  const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  console.error(`anr: internal error (a bug in anr, please report it): ${what}`);
  if (process.env.ANR_DEBUG === "1" && e instanceof Error) console.error(e.stack);
  else console.error(`(run with ANR_DEBUG=1 for the stack trace)`);
  return 70;
}

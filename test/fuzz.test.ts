/**
 * Property-based fuzzing of the file parsers (fast-check): thousands of random mutations of valid
 * files. Whatever the bytes, a parser either returns a value or raises an input error (exit code 2)
 * whose message starts with the file's name; never a RangeError or TypeError, never a hang (each
 * test has a time limit), and never an allocation out of proportion to the file.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import fc from "fast-check";
import { stringify as toYaml } from "yaml";
import { withSafetensorsHeader } from "./fixtures.js";
import { concatBytes } from "../src/util/bytes.js";
import { AnrError } from "../src/util/errors.js";
import { parseHyperNetworkConfig } from "../src/model/config.js";
import { MODEL_PRESETS } from "../src/model/presets.js";
import { initHostParams } from "../src/model/params.js";
import { parseSafetensors, serializeSafetensors } from "../src/io/safetensors.js";
import { CONFIG_METADATA_KEY, modelFromBytes, modelToBytes } from "../src/io/weights.js";
import { parseConfigText } from "../src/io/config-file.js";
import { encodeNpy, parseNpy } from "../src/io/npy.js";
import { encodeIdx, parseIdx } from "../src/io/idx.js";
import { bytesSource } from "../src/io/netcdf.js";
import { openNetcdf3 } from "../src/io/netcdf3-reader.js";
import { encodeNetcdf3 } from "../src/io/netcdf3-writer.js";
import { TOKENS_METADATA_KEY, tokensFromBytes, tokensToBytes } from "../src/io/tokens.js";
import { generatedParams } from "../src/model/model.js";
import { RUN_PRESETS } from "../src/training/run-presets.js";
import { resolveRunConfig } from "../src/training/run-config.js";

const FIXTURES = join(import.meta.dirname, "fixtures");

/** Seeded, so a failure is reproducible; the seed is in the failure message. */
const RUNS = { seed: 20261202, numRuns: 1500 };

/** Assert that `e` is an input error about `source`, rethrowing anything else (a bug). */
function expectInputError(e: unknown, source: string): void {
  if (!(e instanceof AnrError) || e.exitCode !== 2 || !e.message.startsWith(`${source}: `)) throw e;
}

/** A random edit of a byte string: flips, overwrites, truncation, insertion, duplication. */
const byteEdit = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ kind: fc.constant("set" as const), at: fc.nat(), value: fc.nat(255) }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), bytes: fc.uint8Array({ maxLength: 16 }) }),
  fc.record({ kind: fc.constant("repeat" as const), at: fc.nat(), length: fc.nat(64) }),
);
type ByteEdit = typeof byteEdit extends fc.Arbitrary<infer T> ? T : never;

function applyEdits(bytes: Uint8Array, edits: ByteEdit[], focus: number): Uint8Array {
  let out: Uint8Array = bytes.slice();
  for (const e of edits) {
    // Half the edits land in the first `focus` bytes (the length and header), where parsing decides.
    const at = e.at % (e.at % 2 ? Math.max(1, out.length) : Math.max(1, Math.min(focus, out.length)));
    if (e.kind === "flip") out[at] = out[at]! ^ (1 << e.bit);
    else if (e.kind === "set") out[at] = e.value;
    else if (e.kind === "truncate") out = out.slice(0, at);
    else if (e.kind === "insert") out = concatBytes([out.subarray(0, at), e.bytes, out.subarray(at)]);
    else out = concatBytes([out.subarray(0, at), out.subarray(at, at + e.length), out.subarray(at)]);
  }
  return out;
}

/** Values a hostile header could hold in any field. */
const jsonJunk = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(
    -1,
    2 ** 53,
    1e308,
    -0,
    0.5,
    "F32",
    "F16",
    "I64",
    [],
    [0, 2 ** 40],
    [2 ** 31, 2 ** 31],
    null,
  ),
);

const config = parseHyperNetworkConfig(MODEL_PRESETS["tiny32-mlp"]!.config, "tiny32-mlp");

test("fuzz: safetensors and model files, byte edits and header edits", { timeout: 300_000 }, () => {
  const small = serializeSafetensors(
    [
      ["a", { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }],
      ["b", { shape: [3], data: Float32Array.from([7, 8, 9]) }],
    ],
    { note: "x" },
  );
  const model = modelToBytes(config, initHostParams(config, 3));
  const headerLength = (b: Uint8Array) =>
    8 + Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true));
  const check = (bytes: Uint8Array) => {
    try {
      const f = parseSafetensors(bytes, "f.safetensors");
      // The values handed back never outgrow the file (F16 data doubles as F32).
      let floats = 0;
      for (const t of f.tensors.values()) floats += t.data.length;
      assert.ok(4 * floats <= 2 * bytes.length, `${floats} floats from ${bytes.length} bytes`);
    } catch (e) {
      expectInputError(e, "f.safetensors");
    }
    try {
      modelFromBytes(bytes, "m.safetensors");
    } catch (e) {
      expectInputError(e, "m.safetensors");
    }
  };
  // The small file gets most runs; the model file (1.7 MB, ~30 ms a parse) is where the checksum,
  // the config metadata and the weight validation are exercised.
  for (const [file, runs] of [
    [small, RUNS],
    [model, { ...RUNS, numRuns: 150 }],
  ] as const) {
    fc.assert(
      fc.property(fc.constant(file), fc.array(byteEdit, { minLength: 1, maxLength: 4 }), (_, edits) =>
        check(applyEdits(file, edits, headerLength(file))),
      ),
      runs,
    );
    // Structured edits: any header field set to junk, a field removed, a tensor entry duplicated.
    fc.assert(
      fc.property(
        fc.constant(file),
        fc.nat(),
        fc.constantFrom("dtype", "shape", "data_offsets", "(entry)", "(metadata)", "(delete)"),
        jsonJunk,
        (_, pick, field, junk) => {
          const edited = withSafetensorsHeader(file, (h) => {
            const keys = Object.keys(h);
            const key = keys[pick % keys.length]!;
            if (field === "(delete)") delete h[key];
            else if (field === "(entry)") h[key] = junk;
            else if (field === "(metadata)")
              h.__metadata__ = { ...(h.__metadata__ as object), [`k${pick % 3}`]: junk };
            else if (typeof h[key] === "object" && h[key] !== null)
              (h[key] as Record<string, unknown>)[field] = junk;
          });
          check(edited);
        },
      ),
      runs,
    );
  }
});

test("fuzz: run config text, YAML and JSON, from every run preset", { timeout: 300_000 }, () => {
  const texts = Object.values(RUN_PRESETS).flatMap((p) => [
    { source: "run.yaml", text: toYaml(p.config) },
    { source: "run.json", text: JSON.stringify(p.config, null, 1) },
  ]);
  const parse = (source: string, text: string) => {
    try {
      resolveRunConfig(parseConfigText(text, source, "run config"), source);
    } catch (e) {
      expectInputError(e, source);
    }
  };
  // Character edits of the text.
  fc.assert(
    fc.property(
      fc.constantFrom(...texts),
      fc.array(fc.record({ at: fc.nat(), cut: fc.nat(8), insert: fc.string({ maxLength: 6 }) }), {
        minLength: 1,
        maxLength: 4,
      }),
      ({ source, text }, edits) => {
        let t = text;
        for (const e of edits) {
          const at = e.at % (t.length + 1);
          t = t.slice(0, at) + e.insert + t.slice(at + e.cut);
        }
        parse(source, t);
      },
    ),
    RUNS,
  );
  // Value edits: any field at any depth set to junk or removed.
  fc.assert(
    fc.property(
      fc.constantFrom(...Object.values(RUN_PRESETS)),
      fc.nat(),
      jsonJunk,
      fc.boolean(),
      (preset, pick, junk, remove) => {
        const config = structuredClone(preset.config) as Record<string, unknown>;
        const paths: [Record<string, unknown>, string][] = [];
        const walk = (o: Record<string, unknown>) => {
          for (const [k, v] of Object.entries(o)) {
            paths.push([o, k]);
            if (v && typeof v === "object" && !Array.isArray(v)) walk(v as Record<string, unknown>);
          }
        };
        walk(config);
        const [parent, key] = paths[pick % paths.length]!;
        if (remove) delete parent[key];
        else parent[key] = junk;
        parse("run.yaml", toYaml(config));
        parse("run.json", JSON.stringify(config));
      },
    ),
    RUNS,
  );
});

/** Byte edits of each valid file, and the parse that must either succeed or raise an input error. */
async function fuzzBytes(
  files: Uint8Array[],
  focus: number,
  parse: (bytes: Uint8Array) => Promise<unknown> | unknown,
  source: string,
  runs = RUNS,
): Promise<{ accepted: number; refused: number }> {
  const counts = { accepted: 0, refused: 0 };
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...files),
      fc.array(byteEdit, { minLength: 1, maxLength: 4 }),
      async (file, edits) => {
        const bytes = applyEdits(file, edits, focus);
        try {
          await parse(bytes);
          counts.accepted++;
        } catch (e) {
          expectInputError(e, source);
          counts.refused++;
        }
      },
    ),
    runs,
  );
  // Both outcomes occur, so the edits reach the parser's decisions rather than only its data.
  assert.ok(counts.accepted > 0 && counts.refused > 0, JSON.stringify(counts));
  return counts;
}

test("fuzz: npy and idx arrays", { timeout: 300_000 }, async () => {
  const npys = [
    encodeNpy({ shape: [3, 4], data: Float32Array.from({ length: 12 }, (_, i) => i / 3) }),
    encodeNpy({ shape: [], data: Float32Array.from([2.5]) }),
    encodeNpy({ shape: [2, 0, 5], data: new Float32Array(0) }),
    // Files numpy wrote: big-endian float64, float16, int64, Fortran order.
    ...(await Promise.all(
      ["f8_be_c_3d.npy", "f2.npy", "i8.npy", "f8_fortran_2d.npy"].map(
        async (n) => new Uint8Array(await readFile(join(FIXTURES, "npy", n))),
      ),
    )),
  ];
  await fuzzBytes(
    npys,
    128,
    (b) => {
      const a = parseNpy(b, "a.npy");
      assert.ok(4 * a.data.length <= 8 * b.length + 4, `${a.data.length} values from ${b.length} bytes`);
    },
    "a.npy",
  );
  const idxs = [
    encodeIdx(
      [4, 3, 3],
      Uint8Array.from({ length: 36 }, (_, i) => i),
    ),
    encodeIdx([5], Uint8Array.from([1, 2, 3, 4, 5])),
  ];
  await fuzzBytes(
    idxs,
    24,
    (b) => {
      const f = parseIdx(b, "t10k-images-idx3-ubyte", { ndim: 3, what: "images" });
      assert.ok(f.data.length <= b.length);
    },
    "t10k-images-idx3-ubyte",
  );
});

test("fuzz: NetCDF-3 files, header and data", { timeout: 300_000 }, async () => {
  const spec = (unlimited: boolean) => ({
    dims: [
      { name: "time", size: 2, unlimited },
      { name: "lat", size: 3 },
      { name: "lon", size: 4 },
    ],
    variables: [
      { name: "lat", dims: ["lat"], dtype: "f8" as const, data: [-30, 0, 30] },
      {
        name: "t2m",
        dims: ["time", "lat", "lon"],
        dtype: "i2" as const,
        data: Array.from({ length: 24 }, (_, i) => i * 7 - 50),
        attrs: {
          scale_factor: 0.5,
          add_offset: 273,
          _FillValue: { dtype: "i2" as const, value: -32767 },
          units: "K",
        },
      },
    ],
    attrs: { title: "fuzz" },
  });
  const files = [
    encodeNetcdf3(spec(false), "f.nc"),
    encodeNetcdf3(spec(true), "f.nc"),
    // Files netCDF-C wrote (through netCDF4-python): ERA5-like, 4-D, a single record.
    ...(await Promise.all(
      ["era5_old_cds.nc", "nc3_classic_4d.nc", "nc3_single_record.nc"].map(
        async (n) => new Uint8Array(await readFile(join(FIXTURES, "netcdf", n))),
      ),
    )),
  ];
  await fuzzBytes(
    files,
    400,
    async (b) => {
      const nc = await openNetcdf3(bytesSource(b, "f.nc"));
      try {
        for (const v of nc.variables) {
          if (v.dims.length >= 2) {
            const lead = v.dims.slice(0, -2).map(() => 0);
            const slice = await nc.readSlice(v.name, lead);
            assert.ok(slice.length <= b.length * 4);
          } else {
            const all = await nc.readAll(v.name);
            assert.ok(all.length <= b.length * 8);
          }
        }
      } finally {
        nc.close();
      }
    },
    "f.nc",
    { ...RUNS, numRuns: 1000 },
  );
});

test("fuzz: token files", { timeout: 300_000 }, async (t) => {
  const tensors = new Map(
    generatedParams(config).map((g, i) => {
      const shape = [2, ...g.shape];
      const data = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, k) => Math.sin(k + i));
      return [g.name, { shape, data }] as const;
    }),
  );
  const tokens = tokensToBytes({ names: ["a.png", "b.png"], inputSize: [32, 32], config, tensors });
  const headerLength = 8 + Number(new DataView(tokens.buffer, tokens.byteOffset).getBigUint64(0, true));
  await fuzzBytes([tokens], headerLength, (b) => tokensFromBytes(b, "t.safetensors"), "t.safetensors", {
    ...RUNS,
    numRuns: 500,
  });
  // Byte edits rarely get past the header and the checksum. The checksum covers the tensors only,
  // so structured edits of the metadata reach the token checks: a field at any depth of the token
  // metadata or of the encoding model's config set to junk or removed, a number nudged (so that the
  // config stays valid but asks for other tensors), or a whole entry replaced.
  const counts = { accepted: 0, refused: 0 };
  fc.assert(
    fc.property(
      fc.constantFrom(TOKENS_METADATA_KEY, CONFIG_METADATA_KEY),
      fc.array(fc.nat(), { minLength: 1, maxLength: 4 }),
      fc.constantFrom("set" as const, "nudge" as const, "delete" as const, "entry" as const),
      jsonJunk,
      (key, picks, op, junk) => {
        const edited = withSafetensorsHeader(tokens, (h) => {
          const meta = h.__metadata__ as Record<string, string>;
          meta[key] =
            op === "entry"
              ? typeof junk === "string"
                ? junk
                : JSON.stringify(junk)
              : JSON.stringify(editJson(JSON.parse(meta[key]!), picks, op, junk));
        });
        try {
          tokensFromBytes(edited, "t.safetensors");
          counts.accepted++;
        } catch (e) {
          expectInputError(e, "t.safetensors");
          counts.refused++;
        }
      },
    ),
    { ...RUNS, numRuns: 1500 },
  );
  // Many edits get through (a name changed, a config value another valid one): the checks run.
  assert.ok(counts.accepted > 100 && counts.refused > 100, JSON.stringify(counts));
  t.diagnostic(`metadata edits: ${counts.accepted} accepted, ${counts.refused} refused`);
});

/**
 * `value` (a parsed JSON object, changed in place) with one field changed, chosen by `picks`:
 * "set" and "delete" go down the keys (one pick per level, while there is an object) and set the
 * field reached to `junk` or remove it; "nudge" takes one of the numbers at any depth to a near
 * one (plus one, or doubled), so that a config stays valid but describes another model.
 */
function editJson(value: unknown, picks: number[], op: "set" | "nudge" | "delete", junk: unknown): unknown {
  if (typeof value !== "object" || value === null) return op === "delete" ? value : junk;
  if (op === "nudge") {
    const numbers: [Record<string, unknown>, string][] = [];
    const walk = (node: Record<string, unknown>) => {
      for (const [k, v] of Object.entries(node))
        if (typeof v === "number") numbers.push([node, k]);
        else if (typeof v === "object" && v !== null) walk(v as Record<string, unknown>);
    };
    walk(value as Record<string, unknown>);
    if (numbers.length === 0) return value;
    const [node, key] = numbers[picks[0]! % numbers.length]!;
    node[key] = picks.length % 2 ? (node[key] as number) + 1 : 2 * (node[key] as number);
    return value;
  }
  let node = value as Record<string, unknown>;
  for (let depth = 0; ; depth++) {
    const keys = Object.keys(node);
    if (keys.length === 0) {
      if (op === "set") node.added = junk;
      return value;
    }
    const key = keys[picks[depth]! % keys.length]!;
    const child = node[key];
    if (depth + 1 < picks.length && typeof child === "object" && child !== null) {
      node = child as Record<string, unknown>;
      continue;
    }
    if (op === "set") node[key] = junk;
    else if (Array.isArray(node)) node.splice(Number(key), 1);
    else delete node[key];
    return value;
  }
}

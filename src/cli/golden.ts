/** `anr golden`: compare with golden data made by the reference PyTorch code. */
import { existsSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { initBackend } from "../backend/index.js";
import { formatReport, readToleranceTable, runGolden } from "../golden/golden.js";
import { UsageError } from "../util/errors.js";
import type { Outcome } from "./common.js";

/** `anr golden`'s options. */
export interface GoldenOptions {
  all?: boolean;
  tolerances?: string;
}

/** Check each golden folder; exit code 1 when any check fails. */
export async function cmdGolden(dirs: string[], values: GoldenOptions): Promise<Outcome> {
  await initBackend();
  let ok = true;
  const results: Record<string, unknown>[] = [];
  for (const dir of dirs) {
    // Measured per-key bounds: --tolerances FILE, else a tolerances.json beside the variant
    // folders (test/golden has one); the uniform bounds otherwise.
    const file = values.tolerances ?? join(dirname(resolve(dir)), "tolerances.json");
    const table = values.tolerances || existsSync(file) ? await readToleranceTable(file) : undefined;
    const tolerances = table?.get(basename(resolve(dir)));
    if (values.tolerances && !tolerances)
      throw new UsageError(`--tolerances ${file}: no bounds for "${basename(resolve(dir))}"`);
    console.log(tolerances ? `(per-key bounds from ${file})` : "(uniform bounds)");
    const r = await runGolden(dir, { tolerances });
    console.log(formatReport(r, values.all));
    ok &&= r.ok;
    results.push({ ...r, bounds: tolerances ? file : "uniform" });
  }
  console.log(ok ? "all golden checks passed" : "GOLDEN CHECKS FAILED");
  return { result: { ok, results }, exitCode: ok ? 0 : 1 };
}

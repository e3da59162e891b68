/**
 * A field model (trained with `task: field`, e.g. `anr train --preset era5-small`) turns a gridded
 * physical field into tokens and back, at any resolution, in the field's own units: the model
 * file lists each channel's name, units and normalisation, and decode undoes the normalisation.
 *
 *   npx tsx examples/field-units.ts MODEL FIELD.npy [OUT.npy]
 *
 * FIELD.npy is (H, W) or (C, H, W) in physical units (e.g. 2 m temperature in kelvin), any size:
 * it is prepared as the model's training prepared its fields (resized, centre-cropped, gaps
 * filled). OUT.npy gets the field decoded at 4× the model's size, in the same units.
 */
import { Anr, writeNpy } from "anr/node";

const [model, field, out = "field-x4.npy"] = process.argv.slice(2);
if (!model || !field) throw new Error("usage: field-units.ts MODEL FIELD.npy [OUT.npy]");

using m = await Anr.load(model);
if (!m.channels) throw new Error(`${model} is a ${m.task} model, not a field model`);
const x4 = await m.decode(await m.encode(field), { scale: 4 }); // physical units, NaN where missing
await writeNpy(out, { shape: [x4.c, x4.h, x4.w], data: x4.data });
m.channels.forEach((ch, k) => {
  const v = x4.data.subarray(k * x4.h * x4.w, (k + 1) * x4.h * x4.w).filter(Number.isFinite);
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  console.log(
    `${ch.name}: ${Math.min(...v).toFixed(2)} to ${Math.max(...v).toFixed(2)} ${ch.units}, mean ${mean.toFixed(2)} ${ch.units} (${x4.h}×${x4.w})`,
  );
});
console.log(`→ ${out}`);

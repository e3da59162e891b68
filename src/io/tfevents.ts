/**
 * TensorBoard event files, written from scratch: a run's scalars (loss, PSNR, learning rate…) as
 * `events.out.tfevents.*`, so that `tensorboard --logdir runs/` shows every run.
 *
 * There is no maintained event-file writer on npm, and the format is small: a sequence of records,
 * each `uint64 length | uint32 masked CRC-32C of length | data | uint32 masked CRC-32C of data`
 * (little-endian), whose data is a protobuf `Event`. We write only the fields a scalar needs, by
 * hand, rather than depend on a protobuf library for five field tags:
 *
 *   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
 *   Summary { repeated Value value = 1; }
 *   Value   { string tag = 1; float simple_value = 2; }
 *
 * Portable: bytes out. A test reads the bytes back with Python's protobuf and crc32c packages.
 */
import { crc32c } from "../util/crc32.js";
import { concatBytes } from "../util/bytes.js";

/** Scalars logged at one step. */
export interface ScalarRecord {
  step: number;
  /** Seconds since the Unix epoch. */
  wallTime: number;
  /** Tag → value; tags group in TensorBoard by their prefix before "/" (e.g. "train/loss"). */
  values: Record<string, number>;
}

/** Protobuf wire types. */
const VARINT = 0;
const FIXED64 = 1;
const BYTES = 2;
const FIXED32 = 5;

/** A growable protobuf encoder of the few field kinds an Event needs. */
class ProtoWriter {
  private parts: Uint8Array[] = [];

  private key(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  varint(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0)
      throw new RangeError(`varint ${v}: not a safe non-negative integer`);
    const out: number[] = [];
    // Division, not shifts: steps may exceed 2³¹.
    while (v >= 0x80) {
      out.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    out.push(v);
    this.parts.push(Uint8Array.from(out));
  }

  double(field: number, v: number): void {
    this.key(field, FIXED64);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    this.parts.push(b);
  }

  float(field: number, v: number): void {
    this.key(field, FIXED32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.parts.push(b);
  }

  int(field: number, v: number): void {
    this.key(field, VARINT);
    this.varint(v);
  }

  bytes(field: number, b: Uint8Array): void {
    this.key(field, BYTES);
    this.varint(b.length);
    this.parts.push(b);
  }

  string(field: number, s: string): void {
    this.bytes(field, new TextEncoder().encode(s));
  }

  finish(): Uint8Array {
    return concatBytes(this.parts);
  }
}

/** TensorBoard's masking of a CRC stored beside the data it covers. */
function maskedCrc(bytes: Uint8Array): number {
  const c = crc32c(bytes);
  return ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/** One framed record around `data`. */
function record(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + 4 + data.length + 4);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskedCrc(out.subarray(0, 8)), true);
  out.set(data, 12);
  view.setUint32(12 + data.length, maskedCrc(data), true);
  return out;
}

function scalarEvent(r: ScalarRecord): Uint8Array {
  const summary = new ProtoWriter();
  for (const [tag, v] of Object.entries(r.values)) {
    const value = new ProtoWriter();
    value.string(1, tag);
    value.float(2, v);
    summary.bytes(1, value.finish());
  }
  const event = new ProtoWriter();
  event.double(1, r.wallTime);
  event.int(2, r.step);
  event.bytes(5, summary.finish());
  return event.finish();
}

/**
 * A whole event file: the version record, then one event per record in order. `startTime`
 * (seconds since the epoch) stamps the version record.
 */
export function encodeTfEvents(records: readonly ScalarRecord[], startTime: number): Uint8Array {
  const version = new ProtoWriter();
  version.double(1, startTime);
  version.string(3, "brain.Event:2");
  return concatBytes([record(version.finish()), ...records.map((r) => record(scalarEvent(r)))]);
}

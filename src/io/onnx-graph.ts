/**
 * A small builder of ONNX graphs (opset 17): named float32/int64 constants, nodes with
 * attributes, and the graph's typed inputs and outputs. Each node gets a fresh output name, so
 * graph code reads as expressions: `g.op("MatMul", [x, w])`.
 */
import { HOST_LITTLE_ENDIAN } from "../util/host.js";
import {
  type AttributeProto,
  AttributeType,
  DataType,
  type Dim,
  type GraphProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from "./onnx-proto.js";

/** The ONNX operator set the graphs use (LayerNormalization is in it; Gelu is not, until 20). */
export const OPSET = 17;
/** The IR version of opset 17 (ONNX 1.12). */
export const IR_VERSION = 8;

/** An attribute value: an integer, a float (written `{ f }`), integers, or a string. */
export type Attr = number | { f: number } | number[] | string;

function attribute(name: string, v: Attr): AttributeProto {
  if (typeof v === "string") return { name, type: AttributeType.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: AttributeType.INTS, ints: v };
  if (typeof v === "number") {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}: ${v} is not an integer; write { f: ${v} }`);
    return { name, type: AttributeType.INT, i: v };
  }
  return { name, type: AttributeType.FLOAT, f: v.f };
}

function float32Bytes(data: Float32Array): Uint8Array {
  if (HOST_LITTLE_ENDIAN)
    return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  const out = new Uint8Array(4 * data.length);
  const view = new DataView(out.buffer);
  data.forEach((x, i) => view.setFloat32(4 * i, x, true));
  return out;
}

function int64Bytes(data: readonly number[]): Uint8Array {
  const out = new Uint8Array(8 * data.length);
  const view = new DataView(out.buffer);
  data.forEach((x, i) => view.setBigInt64(8 * i, BigInt(x), true));
  return out;
}

function valueInfo(name: string, dims: Dim[], elem: DataType = DataType.FLOAT, doc?: string): ValueInfoProto {
  return {
    name,
    type: {
      tensor_type: {
        elem_type: elem,
        shape: { dim: dims.map((d) => (typeof d === "number" ? { dim_value: d } : { dim_param: d })) },
      },
    },
    ...(doc ? { doc_string: doc } : {}),
  };
}

export class GraphBuilder {
  private readonly nodes: NodeProto[] = [];
  private readonly inits: TensorProto[] = [];
  private readonly inputs: ValueInfoProto[] = [];
  private readonly outputs: ValueInfoProto[] = [];
  private readonly names = new Set<string>();
  private readonly ints = new Map<string, string>();
  private readonly scalars = new Map<number, string>();
  private counter = 0;

  /** `name` exactly, which must not be taken (graph inputs and outputs keep their names). */
  private claim(name: string): string {
    if (this.names.has(name)) throw new Error(`ONNX graph: the name "${name}" is taken`);
    this.names.add(name);
    return name;
  }

  private fresh(hint: string): string {
    let name = hint;
    while (this.names.has(name)) name = `${hint}_${++this.counter}`;
    this.names.add(name);
    return name;
  }

  /** A float32 graph input with its dims (strings name dynamic ones); returns its name. */
  input(name: string, dims: Dim[], doc?: string): string {
    this.inputs.push(valueInfo(this.claim(name), dims, DataType.FLOAT, doc));
    return name;
  }

  /** Make `value` the graph output `name` with `dims`. */
  output(value: string, name: string, dims: Dim[], doc?: string): void {
    this.nodes.push({
      input: [value],
      output: [this.claim(name)],
      name: this.fresh(`out_${name}`),
      op_type: "Identity",
      attribute: [],
    });
    this.outputs.push(valueInfo(name, dims, DataType.FLOAT, doc));
  }

  /** A float32 initialiser of shape `dims` (row-major `data`). */
  constant(hint: string, data: Float32Array, dims: number[]): string {
    const n = dims.reduce((a, b) => a * b, 1);
    if (n !== data.length) throw new Error(`constant ${hint}: ${data.length} values for shape [${dims}]`);
    const name = this.fresh(hint);
    this.inits.push({ name, dims, data_type: DataType.FLOAT, raw_data: float32Bytes(data) });
    return name;
  }

  /** A float32 scalar (shared by every use of the same value). */
  scalar(x: number): string {
    const f = Math.fround(x);
    let name = this.scalars.get(f);
    if (!name) {
      name = this.constant(`c${this.scalars.size}`, Float32Array.of(f), []);
      this.scalars.set(f, name);
    }
    return name;
  }

  /** A 1-D int64 initialiser (shapes, axes, pads), shared by every use of the same values. */
  int64(values: readonly number[]): string {
    const key = values.join(",");
    let name = this.ints.get(key);
    if (!name) {
      name = this.fresh(`i64_${this.ints.size}`);
      this.inits.push({
        name,
        dims: [values.length],
        data_type: DataType.INT64,
        raw_data: int64Bytes(values),
      });
      this.ints.set(key, name);
    }
    return name;
  }

  /** One node with one output; returns the output's name. */
  op(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, hint = opType): string {
    const out = this.fresh(`${hint}_out`);
    this.nodes.push({
      input: inputs,
      output: [out],
      name: this.fresh(hint),
      op_type: opType,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return out;
  }

  add(a: string, b: string): string {
    return this.op("Add", [a, b]);
  }
  mul(a: string, b: string): string {
    return this.op("Mul", [a, b]);
  }
  matmul(a: string, b: string): string {
    return this.op("MatMul", [a, b]);
  }
  reshape(x: string, shape: number[]): string {
    return this.op("Reshape", [x, this.int64(shape)]);
  }
  transpose(x: string, perm: number[]): string {
    return this.op("Transpose", [x], { perm });
  }
  /** x[start:end] along `axis`. */
  slice(x: string, axis: number, start: number, end: number): string {
    return this.op("Slice", [x, this.int64([start]), this.int64([end]), this.int64([axis])]);
  }
  concat(xs: string[], axis: number): string {
    return this.op("Concat", xs, { axis });
  }

  graph(name: string, doc: string): GraphProto {
    return {
      node: this.nodes,
      name,
      initializer: this.inits,
      doc_string: doc,
      input: this.inputs,
      output: this.outputs,
    };
  }
}

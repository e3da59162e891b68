/**
 * The part of ONNX's protobuf schema (onnx/onnx.proto3, IR version 8) that anr writes and reads:
 * a model holding one graph of nodes, float32/int64 initialisers and tensor-typed inputs and
 * outputs. Field names and numbers are the schema's; messages and fields anr never uses are left
 * out, which protobuf readers accept (an ONNX reader skips nothing it needs, and unknown fields
 * would be skipped anyway). Encoded with protobufjs from this descriptor, so no .proto file is
 * read at run time and the module stays portable.
 */
import protobuf from "protobufjs/light.js";

/** ONNX TensorProto.DataType values anr uses. */
export const DataType = { FLOAT: 1, INT64: 7 } as const;
export type DataType = (typeof DataType)[keyof typeof DataType];

/** ONNX AttributeProto.AttributeType values anr uses. */
export const AttributeType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;

export interface TensorProto {
  dims: number[];
  data_type: DataType;
  name: string;
  /** Little-endian element bytes. */
  raw_data: Uint8Array;
}

export interface AttributeProto {
  name: string;
  type: (typeof AttributeType)[keyof typeof AttributeType];
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: TensorProto;
  floats?: number[];
  ints?: number[];
}

export interface NodeProto {
  input: string[];
  output: string[];
  name: string;
  op_type: string;
  attribute: AttributeProto[];
}

/** A dimension: a fixed size, or a symbolic name for a size given at run time. */
export type Dim = number | string;

export interface ValueInfoProto {
  name: string;
  type: {
    tensor_type: {
      elem_type: DataType;
      shape: { dim: ({ dim_value: number } | { dim_param: string })[] };
    };
  };
  doc_string?: string;
}

export interface GraphProto {
  node: NodeProto[];
  name: string;
  initializer: TensorProto[];
  doc_string?: string;
  input: ValueInfoProto[];
  output: ValueInfoProto[];
}

export interface ModelProto {
  ir_version: number;
  opset_import: { domain: string; version: number }[];
  producer_name: string;
  producer_version: string;
  doc_string?: string;
  graph: GraphProto;
  metadata_props: { key: string; value: string }[];
}

const rep = (type: string, id: number) => ({ rule: "repeated", type, id });

/** onnx.proto3's messages, the fields anr uses, with the schema's numbers. */
const DESCRIPTOR = {
  nested: {
    onnx: {
      nested: {
        ModelProto: {
          fields: {
            ir_version: { type: "int64", id: 1 },
            opset_import: rep("OperatorSetIdProto", 8),
            producer_name: { type: "string", id: 2 },
            producer_version: { type: "string", id: 3 },
            domain: { type: "string", id: 4 },
            model_version: { type: "int64", id: 5 },
            doc_string: { type: "string", id: 6 },
            graph: { type: "GraphProto", id: 7 },
            metadata_props: rep("StringStringEntryProto", 14),
          },
        },
        OperatorSetIdProto: {
          fields: { domain: { type: "string", id: 1 }, version: { type: "int64", id: 2 } },
        },
        StringStringEntryProto: {
          fields: { key: { type: "string", id: 1 }, value: { type: "string", id: 2 } },
        },
        GraphProto: {
          fields: {
            node: rep("NodeProto", 1),
            name: { type: "string", id: 2 },
            initializer: rep("TensorProto", 5),
            doc_string: { type: "string", id: 10 },
            input: rep("ValueInfoProto", 11),
            output: rep("ValueInfoProto", 12),
            value_info: rep("ValueInfoProto", 13),
          },
        },
        NodeProto: {
          fields: {
            input: rep("string", 1),
            output: rep("string", 2),
            name: { type: "string", id: 3 },
            op_type: { type: "string", id: 4 },
            attribute: rep("AttributeProto", 5),
            doc_string: { type: "string", id: 6 },
            domain: { type: "string", id: 7 },
          },
        },
        AttributeProto: {
          fields: {
            name: { type: "string", id: 1 },
            f: { type: "float", id: 2 },
            i: { type: "int64", id: 3 },
            s: { type: "bytes", id: 4 },
            t: { type: "TensorProto", id: 5 },
            floats: rep("float", 7),
            ints: rep("int64", 8),
            doc_string: { type: "string", id: 13 },
            type: { type: "int32", id: 20 },
          },
        },
        TensorProto: {
          fields: {
            dims: rep("int64", 1),
            data_type: { type: "int32", id: 2 },
            name: { type: "string", id: 8 },
            raw_data: { type: "bytes", id: 9 },
            doc_string: { type: "string", id: 12 },
          },
        },
        ValueInfoProto: {
          fields: {
            name: { type: "string", id: 1 },
            type: { type: "TypeProto", id: 2 },
            doc_string: { type: "string", id: 3 },
          },
        },
        TypeProto: {
          fields: { tensor_type: { type: "TypeProtoTensor", id: 1 }, denotation: { type: "string", id: 6 } },
        },
        // TypeProto.Tensor in the schema; nesting is only a name here, the wire format is the same.
        TypeProtoTensor: {
          fields: { elem_type: { type: "int32", id: 1 }, shape: { type: "TensorShapeProto", id: 2 } },
        },
        TensorShapeProto: { fields: { dim: rep("Dimension", 1) } },
        // TensorShapeProto.Dimension; dim_value and dim_param are a oneof, of which anr sets one.
        Dimension: {
          fields: {
            dim_value: { type: "int64", id: 1 },
            dim_param: { type: "string", id: 2 },
            denotation: { type: "string", id: 3 },
          },
        },
      },
    },
  },
};

const root = protobuf.Root.fromJSON(DESCRIPTOR);
const Model = root.lookupType("onnx.ModelProto");

/** A ModelProto's bytes. */
export function encodeModel(m: ModelProto): Uint8Array {
  const err = Model.verify(m);
  // The builders produce these objects, so a verification failure is a bug in anr, not user input.
  if (err) throw new Error(`invalid ONNX model object: ${err}`);
  return Model.encode(Model.fromObject(m)).finish();
}

/** The parts of a ModelProto that anr reads back: its metadata, graph inputs and outputs. */
export interface ModelSummary {
  irVersion: number;
  opset: number;
  metadata: Record<string, string>;
  inputs: { name: string; dims: Dim[] }[];
  outputs: { name: string; dims: Dim[] }[];
  nodes: number;
  initializers: number;
}

/** Read the summary of ONNX model bytes (anr's own or any other ONNX file). */
export function decodeModelSummary(bytes: Uint8Array): ModelSummary {
  const m = Model.toObject(Model.decode(bytes), {
    longs: Number,
    arrays: true,
    defaults: true,
  }) as ModelProto;
  const dims = (v: ValueInfoProto) =>
    (v.type?.tensor_type?.shape?.dim ?? []).map((d) =>
      "dim_param" in d && d.dim_param ? d.dim_param : (d as { dim_value: number }).dim_value,
    );
  const io = (vs: ValueInfoProto[]) => vs.map((v) => ({ name: v.name, dims: dims(v) }));
  return {
    irVersion: m.ir_version,
    opset: m.opset_import.find((o) => o.domain === "")?.version ?? 0,
    metadata: Object.fromEntries(m.metadata_props.map((p) => [p.key, p.value])),
    inputs: io(m.graph.input),
    outputs: io(m.graph.output),
    nodes: m.graph.node.length,
    initializers: m.graph.initializer.length,
  };
}

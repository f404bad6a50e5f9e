// A minimal ONNX writer (protobuf wire format by hand) for single-op peer models in the benchmarks, e.g. one Conv
// with its weights as initializers. Field numbers are those of onnx/onnx.proto (ModelProto, GraphProto, ...).

/** Protobuf encoder: varints, length-delimited fields, nothing else needed for ONNX models. */
class Proto {
  private readonly parts: Uint8Array[] = [];

  private varint(v: number | bigint): void {
    let x = BigInt.asUintN(64, BigInt(v));
    const bytes: number[] = [];
    do {
      let b = Number(x & 0x7fn);
      x >>= 7n;
      if (x > 0n) b |= 0x80;
      bytes.push(b);
    } while (x > 0n);
    this.parts.push(Uint8Array.from(bytes));
  }

  /** varint field (int32, int64, enum) */
  int(field: number, v: number): this {
    this.varint(field << 3);
    this.varint(v);
    return this;
  }

  /** length-delimited field (bytes, string, message) */
  bytes(field: number, data: Uint8Array | string | Proto): this {
    const b =
      typeof data === "string"
        ? new TextEncoder().encode(data)
        : data instanceof Proto
          ? data.finish()
          : data;
    this.varint((field << 3) | 2);
    this.varint(b.length);
    this.parts.push(b);
    return this;
  }

  finish(): Uint8Array {
    const total = this.parts.reduce((n, p) => n + p.length, 0);
    const out = new Uint8Array(total);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

const FLOAT = 1; // TensorProto.DataType.FLOAT

/** A float32 tensor value (input/output description or initializer). */
export interface OnnxTensor {
  name: string;
  shape: readonly number[];
}

export interface OnnxInitializer extends OnnxTensor {
  data: Float32Array;
}

/** An attribute: an int or a list of ints. */
export type OnnxAttr = number | readonly number[];

export interface OnnxNode {
  op: string;
  inputs: readonly string[];
  outputs: readonly string[];
  attrs?: Record<string, OnnxAttr>;
}

function valueInfo(t: OnnxTensor): Proto {
  const shape = new Proto();
  for (const d of t.shape) shape.bytes(1, new Proto().int(1, d));
  const tensorType = new Proto().int(1, FLOAT).bytes(2, shape);
  return new Proto().bytes(1, t.name).bytes(2, new Proto().bytes(1, tensorType));
}

function attribute(name: string, v: OnnxAttr): Proto {
  const a = new Proto().bytes(1, name);
  if (typeof v === "number") return a.int(20, 2).int(3, v); // INT
  for (const x of v) a.int(8, x); // INTS, unpacked
  return a.int(20, 7);
}

/** Serialises a one-graph ONNX model (opset 17) with float32 inputs, outputs and initializers. */
export function onnxModel(opts: {
  nodes: readonly OnnxNode[];
  inputs: readonly OnnxTensor[];
  outputs: readonly OnnxTensor[];
  initializers: readonly OnnxInitializer[];
}): Uint8Array {
  const graph = new Proto();
  for (const n of opts.nodes) {
    const node = new Proto();
    for (const i of n.inputs) node.bytes(1, i);
    for (const o of n.outputs) node.bytes(2, o);
    node.bytes(4, n.op);
    for (const [k, v] of Object.entries(n.attrs ?? {})) node.bytes(5, attribute(k, v));
    graph.bytes(1, node);
  }
  graph.bytes(2, "bench");
  for (const t of opts.initializers) {
    const tp = new Proto();
    for (const d of t.shape) tp.int(1, d);
    tp.int(2, FLOAT).bytes(8, t.name);
    tp.bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    graph.bytes(5, tp);
  }
  for (const t of opts.inputs) graph.bytes(11, valueInfo(t));
  for (const t of opts.outputs) graph.bytes(12, valueInfo(t));
  return new Proto()
    .int(1, 8) // ir_version
    .bytes(2, "diffuse-bench")
    .bytes(7, graph)
    .bytes(8, new Proto().bytes(1, "").int(2, 17))
    .finish();
}

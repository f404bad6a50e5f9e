// Elementwise kernels without autograd: what the differentiable ops and the gradient rules are built from.
import type { BinaryOp, UnaryOp } from "../backend/index.js";
import { broadcastShapes, sizeOf } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";
import { allocOutput, backendOf, broadcastStrided, fromF32, stridedF32 } from "./core.js";

/** A tensor operand or a plain number (broadcast as a scalar). */
export type TensorLike = Tensor | number;

/** Wraps a number as a 0-d float32 CPU tensor (it joins ops on any device). */
export function scalar(v: number): Tensor {
  return Tensor.fromStorage(new Float32Array([v]), [], "float32");
}

/** A tensor operand as a tensor (numbers become 0-d CPU scalars). */
export function asTensor(v: TensorLike): Tensor {
  return typeof v === "number" ? scalar(v) : v;
}

/** Runs a unary kernel (no autograd). */
export function unaryRaw(op: UnaryOp, x: Tensor, p0?: number, p1?: number): Tensor {
  const be = backendOf(op, x);
  const out = allocOutput(be, x.size);
  be.unary(op, stridedF32(be, x), out, x.shape, p0, p1);
  return fromF32(be, out, x.shape);
}

/** Runs a broadcasting binary kernel (no autograd). */
export function binaryRaw(op: BinaryOp, a: TensorLike, b: TensorLike): Tensor {
  const ta = asTensor(a);
  const tb = asTensor(b);
  const shape = broadcastShapes(ta.shape, tb.shape);
  const be = backendOf(op, ta, tb);
  const out = allocOutput(be, sizeOf(shape));
  be.binary(op, broadcastStrided(be, ta, shape), broadcastStrided(be, tb, shape), out, shape);
  return fromF32(be, out, shape);
}

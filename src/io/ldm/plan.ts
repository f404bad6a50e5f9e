// Conversion plans: how each tensor of a diffusers / transformers state dict is obtained from a tensor of an
// original (LDM / CompVis / SGM / OpenCLIP) checkpoint. A plan is built from the header alone (names and shapes),
// so it can be checked against a model before any tensor data is read; the tensors are then read one at a time
// and transformed with applyTransform.
import { clone, narrow, reshape, transpose } from "../../ops/index.js";
import type { Tensor } from "../../tensor/tensor.js";
import { CheckpointError } from "../errors.js";

/** Tensor names and shapes of a checkpoint (what its safetensors header says). */
export type ShapeMap = ReadonlyMap<string, readonly number[]>;

/** How a source tensor becomes the target tensor. */
export type TensorTransform =
  /** as is */
  | { readonly kind: "copy" }
  /** a 1x1 conv kernel [out, in, 1, 1] (or a conv1d [out, in, 1]) as a linear weight [out, in] */
  | { readonly kind: "squeeze" }
  /** a 2-d matrix transposed (OpenCLIP's `text_projection` is applied as x @ P, transformers' as x @ W^T) */
  | { readonly kind: "transpose" }
  /** part `index` of `count` equal parts along dim 0 (OpenCLIP's fused q/k/v `in_proj`) */
  | { readonly kind: "chunk"; readonly index: number; readonly count: number };

/** Where one target tensor comes from. */
export interface KeyMapping {
  /** Name of the tensor in the checkpoint. */
  readonly source: string;
  /** Shape of the target tensor (after the transform). */
  readonly shape: readonly number[];
  readonly transform: TensorTransform;
}

/** A whole conversion: target key -> mapping, plus the source keys left out on purpose. */
export interface ConversionPlan {
  readonly tensors: ReadonlyMap<string, KeyMapping>;
  /** Source key -> why it is not converted (e.g. a buffer the target model computes itself). */
  readonly skipped: ReadonlyMap<string, string>;
}

const COPY: TensorTransform = { kind: "copy" };

/** The shape `transform` turns `shape` into; throws CheckpointError when it does not apply. */
export function transformedShape(
  shape: readonly number[],
  transform: TensorTransform,
  source = "tensor",
): number[] {
  const bad = (what: string): never => {
    throw new CheckpointError(`${source}: expected ${what}, found shape [${shape.join(", ")}]`);
  };
  switch (transform.kind) {
    case "copy":
      return [...shape];
    case "squeeze":
      if (shape.length === 2) return [...shape];
      if (shape.length < 2 || shape.slice(2).some((d) => d !== 1)) bad("a 1x1 conv kernel [out, in, 1, 1]");
      return shape.slice(0, 2);
    case "transpose":
      if (shape.length !== 2) bad("a matrix");
      return [shape[1]!, shape[0]!];
    case "chunk": {
      const n = shape[0];
      if (n === undefined || n % transform.count !== 0)
        bad(`a first dimension divisible into ${transform.count} equal parts`);
      return [n! / transform.count, ...shape.slice(1)];
    }
  }
}

/** Applies `transform` to a tensor read from the checkpoint; the result keeps its dtype and owns its storage. */
export function applyTransform(t: Tensor, transform: TensorTransform): Tensor {
  switch (transform.kind) {
    case "copy":
      return t;
    case "squeeze":
      return t.ndim === 2 ? t : reshape(t, t.shape.slice(0, 2));
    case "transpose":
      return clone(transpose(t, 0, 1));
    case "chunk": {
      const part = t.shape[0]! / transform.count;
      return clone(narrow(t, 0, transform.index * part, part));
    }
  }
}

/**
 * Collects mappings while a converter walks the source keys; `finish` throws one CheckpointError listing every
 * source key no rule understood (with the prefix of the component, so the message names the real key).
 */
export class PlanBuilder {
  private readonly tensors = new Map<string, KeyMapping>();
  private readonly skipped = new Map<string, string>();
  private readonly unknown: string[] = [];

  constructor(
    private readonly shapes: ShapeMap,
    /** e.g. "UNet (model.diffusion_model.*)": names the component in errors */
    private readonly what: string,
  ) {}

  /** Maps `source` to `target` with an optional transform. */
  map(source: string, target: string, transform: TensorTransform = COPY): void {
    const shape = this.shapes.get(source);
    if (!shape) throw new CheckpointError(`${this.what}: no tensor ${source} in the checkpoint`);
    const prev = this.tensors.get(target);
    if (prev) {
      throw new CheckpointError(`${this.what}: ${source} and ${prev.source} both convert to ${target}`);
    }
    this.tensors.set(target, { source, shape: transformedShape(shape, transform, source), transform });
  }

  skip(source: string, why: string): void {
    this.skipped.set(source, why);
  }

  /** Records a key no rule matched. */
  unmatched(source: string): void {
    this.unknown.push(source);
  }

  /** The plan; throws when some keys were not understood. `expected` describes the keys the converter reads. */
  finish(expected: string): ConversionPlan {
    if (this.unknown.length > 0) {
      const shown = this.unknown.slice(0, 8).join(", ");
      const more = this.unknown.length > 8 ? ` and ${this.unknown.length - 8} more` : "";
      throw new CheckpointError(
        `${this.what}: ${this.unknown.length} tensor name(s) not understood: ${shown}${more}; expected ${expected}`,
      );
    }
    return { tensors: this.tensors, skipped: this.skipped };
  }
}

/** The keys of `shapes` that start with `prefix`, with the prefix removed (in header order). */
export function keysUnder(shapes: ShapeMap, prefix: string): string[] {
  const out: string[] = [];
  for (const k of shapes.keys()) if (k.startsWith(prefix)) out.push(k.slice(prefix.length));
  return out;
}

/** Largest N + 1 over keys `<head>N.…` (0 when there are none). */
export function countIndexed(keys: readonly string[], head: string): number {
  let n = 0;
  for (const k of keys) {
    if (!k.startsWith(head)) continue;
    const m = /^(\d+)\./.exec(k.slice(head.length));
    if (m) n = Math.max(n, Number(m[1]) + 1);
  }
  return n;
}

import { contiguous } from "../ops/index.js";
import { Tensor } from "../tensor/tensor.js";

/**
 * A trainable tensor owned by a {@link Module} (PyTorch's `nn.Parameter`): a leaf that shares the storage of the
 * tensor it wraps (copied first if that tensor is not contiguous) and has `requiresGrad` set. Modules find their
 * parameters by walking their properties for `Parameter` instances.
 *
 * @example
 * this.weight = new Parameter(zeros([out, inF]));
 */
export class Parameter extends Tensor {
  constructor(data: Tensor, requiresGrad = true) {
    const src = data.isContiguous() ? data : contiguous(data);
    super(src.storage, src.shape, src.dtype, src.strides, src.offset);
    this.requiresGrad = requiresGrad;
  }
}

/** Parameters a module replaced when it moved to another device, with where it went. */
const moved = new WeakMap<Tensor, string>();

/** @internal records that `p` was replaced by a copy on `device` (Module.toDevice). */
export function markMoved(p: Tensor, device: string): void {
  moved.set(p, device);
}

/** The device a parameter's module moved to after `p` was replaced, or undefined while `p` is current. */
export function movedTo(p: Tensor): string | undefined {
  return moved.get(p);
}

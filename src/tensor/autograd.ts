import { keep, release } from "./scope.js";
import type { Tensor } from "./tensor.js";

/**
 * One recorded operation on the autograd tape: the inputs it read and the rule that maps the gradient of its
 * output to gradients of those inputs (null where an input needs none).
 */
export interface GradNode {
  readonly name: string;
  readonly inputs: readonly (Tensor | null)[];
  backward(gradOutput: Tensor): readonly (Tensor | null | undefined)[];
}

let gradEnabled = true;

/** Whether operations currently record themselves for backward(). */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Sets grad mode, returning the previous setting. Prefer {@link noGrad}. */
export function setGradEnabled(enabled: boolean): boolean {
  const previous = gradEnabled;
  gradEnabled = enabled;
  return previous;
}

/**
 * Runs `fn` without recording operations for autograd (PyTorch's `torch.no_grad()`).
 * Works for sync and async functions; grad mode is restored when `fn` returns or its promise settles.
 */
export function noGrad<T>(fn: () => T): T {
  const previous = setGradEnabled(false);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    setGradEnabled(previous);
    throw e;
  }
  if (result instanceof Promise) {
    return result.finally(() => setGradEnabled(previous)) as T;
  }
  setGradEnabled(previous);
  return result;
}

/**
 * Reverse-mode sweep from `root` (whose gradient is `seed`): visits recorded nodes in reverse topological order,
 * sums the gradients reaching each tensor with `add`, and accumulates into `.grad` of leaves that require grad.
 * Gradient rules run with grad mode off.
 */
export function runBackward(root: Tensor, seed: Tensor, add: (a: Tensor, b: Tensor) => Tensor): void {
  // Iterative DFS for a topological order (deep graphs would overflow a recursive one).
  const order: Tensor[] = [];
  const visited = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  visited.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const [t, i] = top;
    const inputs = t.gradFn?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const child = inputs[i];
      if (child?.requiresGrad && !visited.has(child)) {
        visited.add(child);
        stack.push([child, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  const grads = new Map<Tensor, Tensor>([[root, seed]]);
  const previous = setGradEnabled(false);
  try {
    for (let k = order.length - 1; k >= 0; k--) {
      const t = order[k]!;
      const g = grads.get(t);
      if (!g) continue;
      grads.delete(t);
      // a .grad outlives the memory scope backward() ran in (the optimizer step may come after it)
      if (!t.gradFn) {
        t.grad = accumulate(t.grad, g, add);
        continue;
      }
      if (t.retainsGrad) t.grad = accumulate(t.grad, g, add);
      const inputGrads = t.gradFn.backward(g);
      t.gradFn.inputs.forEach((input, j) => {
        const ig = inputGrads[j];
        if (!input || !ig || !input.requiresGrad) return;
        const existing = grads.get(input);
        grads.set(input, existing ? add(existing, ig) : ig);
      });
    }
  } finally {
    setGradEnabled(previous);
  }
}

/** How many leaves hold each gradient tensor (one gradient can reach leaves of equal shape unchanged). */
const gradHolders = new WeakMap<Tensor, number>();

/**
 * `.grad` plus `g`, kept past memory scopes; a replaced gradient in device memory is freed at once, unless another
 * leaf still holds it.
 */
function accumulate(old: Tensor | null, g: Tensor, add: (a: Tensor, b: Tensor) => Tensor): Tensor {
  if (!old) {
    gradHolders.set(g, (gradHolders.get(g) ?? 0) + 1);
    return keep(g);
  }
  const sum = keep(add(old, g));
  gradHolders.set(sum, 1);
  const left = (gradHolders.get(old) ?? 1) - 1;
  gradHolders.set(old, left);
  if (left <= 0) release(old);
  return sum;
}

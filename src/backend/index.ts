import { ArgumentError } from "../tensor/errors.js";
import type { Backend } from "./backend.js";
import { referenceBackend } from "./reference/index.js";

export type {
  AttentionParams,
  Backend,
  BinaryOp,
  Conv2dParams,
  GemmHalfBParams,
  GemmParams,
  HalfWeightKernels,
  HeadLayout,
  LinearGegluParams,
  ReduceOp,
  StridedAny,
  StridedF32,
  UnaryOp,
} from "./backend.js";
export { contiguousHeads } from "./backend.js";
export { referenceBackend } from "./reference/index.js";

// The native CPU backend is registered by the Node entry (src/platform-node.ts) when its addon is built; it then
// becomes the default. The browser entry never imports it.
const registry = new Map<string, Backend>([["reference", referenceBackend]]);
let current: Backend | undefined;
/** True while `current` is the automatic choice (no setBackend yet): registering may change it. */
let currentIsDefault = false;

/** Makes a backend selectable by name (`setBackend(name)`, `DIFFUSE_BACKEND=name`). */
export function registerBackend(backend: Backend): void {
  registry.set(backend.name, backend);
  if (currentIsDefault) current = undefined;
}

/** Names of the registered backends. */
export function listBackends(): string[] {
  return [...registry.keys()];
}

/** The backend that ops dispatch to. Chosen by `DIFFUSE_BACKEND` when set, else the fastest registered one. */
export function getBackend(): Backend {
  if (!current) {
    current = pickDefault();
    currentIsDefault = true;
  }
  return current;
}

/** Switches the backend for all following ops; returns the previous one. */
export function setBackend(backend: Backend | string): Backend {
  const previous = getBackend();
  if (typeof backend === "string") {
    const found = registry.get(backend);
    if (!found)
      throw new ArgumentError(`unknown backend "${backend}"; available: ${listBackends().join(", ")}`);
    current = found;
  } else {
    current = backend;
  }
  currentIsDefault = false;
  return previous;
}

/** Runs `fn` with `backend` selected, restoring the previous one afterwards. */
export function withBackend<T>(backend: Backend | string, fn: () => T): T {
  getBackend();
  const wasDefault = currentIsDefault;
  const previous = setBackend(backend);
  try {
    return fn();
  } finally {
    current = previous;
    currentIsDefault = wasDefault;
  }
}

function pickDefault(): Backend {
  const wanted = typeof process !== "undefined" ? process.env?.DIFFUSE_BACKEND : undefined;
  if (wanted) {
    const found = registry.get(wanted);
    if (!found)
      throw new ArgumentError(
        `DIFFUSE_BACKEND=${wanted} is not available; available: ${listBackends().join(", ")}`,
      );
    return found;
  }
  return registry.get("native") ?? referenceBackend;
}

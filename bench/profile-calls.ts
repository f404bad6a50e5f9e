// Times every call into a backend, keyed by kernel and (for the kernels whose cost depends on it) shape; shared by the
// profiles of bench/profile-down.ts and bench/profile-unet.ts.
import type { Backend } from "../src/backend/index.js";

/** Summed time and call count of one key. */
export interface CallTime {
  ms: number;
  calls: number;
}

/** A key per call: the kernel, and the shape for the ones whose cost depends on it. */
export function callKey(name: string, args: unknown[]): string {
  const p = args[0] as Record<string, number>;
  switch (name) {
    case "gemm":
    case "gemmHalfB": {
      // layout flags: A read down its columns (aT), B row-major (bN: not a [out, in] weight), bias, residual
      const flags = [
        p.aColStride !== 1 ? "aT" : "",
        p.bRowStride !== 1 ? "bN" : "",
        p.bias ? "+bias" : "",
        p.residual ? "+res" : "",
      ].filter(Boolean);
      return `${name} ${p.batch}x${p.m}x${p.n}x${p.k}${flags.length ? ` ${flags.join(" ")}` : ""}`;
    }
    case "attention":
      return `attention ${p.batch}x${p.lq}x${p.lk}x${p.d}`;
    case "linearGeglu":
      return `linearGeglu ${p.rows}x${p.inFeatures}->${p.half}`;
    case "conv2d":
    case "conv2dHalfW": {
      const c = args[4] as Record<string, number>;
      return `${name} ${c.inChannels}->${c.outChannels} ${c.kernelH}x${c.kernelW}/${c.strideH} ${c.inH}x${c.inW}`;
    }
    case "unary":
    case "binary":
      return `${name} ${String(args[0])}`;
    default:
      return name;
  }
}

/** `backend` with every function call timed into `times` (keyed by `callKey`); `clear()` starts a new count. */
export function timedBackend(backend: Backend): {
  backend: Backend;
  times: Map<string, CallTime>;
  clear(): void;
} {
  const times = new Map<string, CallTime>();
  // the functions of `obj`, and of the groups of functions it holds (the float16-weight kernels), timed
  const wrap = (obj: object): Record<string, unknown> => {
    const timed: Record<string, unknown> = { ...obj };
    for (const [name, fn] of Object.entries(obj)) {
      if (fn && typeof fn === "object" && Object.getPrototypeOf(fn) === Object.prototype)
        timed[name] = wrap(fn);
      if (typeof fn !== "function") continue;
      timed[name] = (...args: unknown[]) => {
        const t0 = performance.now();
        const r = (fn as (...a: unknown[]) => unknown).apply(obj, args);
        const key = callKey(name, args);
        const e = times.get(key) ?? { ms: 0, calls: 0 };
        e.ms += performance.now() - t0;
        e.calls++;
        times.set(key, e);
        return r;
      };
    }
    return timed;
  };
  return { backend: wrap(backend) as unknown as Backend, times, clear: () => times.clear() };
}

/** Rows of `times`, slowest first: "   12.3 ms   40x  key". */
export function callRows(times: Map<string, CallTime>, limit = Number.POSITIVE_INFINITY): string[] {
  return [...times.entries()]
    .sort((a, b) => b[1].ms - a[1].ms)
    .slice(0, limit)
    .map(([key, e]) => `${e.ms.toFixed(1).padStart(8)} ms ${String(e.calls).padStart(4)}x  ${key}`);
}

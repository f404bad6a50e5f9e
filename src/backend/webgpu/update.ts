// The in-place updates of training: AdamW, SGD and the EMA of weights, one thread per element.
import type { AdamWParams, Backend, BufferTypes } from "../backend.js";
import { gpuBuffer } from "./memory.js";
import { entry1d, type GpuRuntime, Params } from "./runtime.js";
import { declare } from "./wgsl.js";

type Bufs = BufferTypes & { f32: unknown };
const f32Offset = (data: unknown, offset: number): number => gpuBuffer(data).first(4) + offset;

/** adamw, sgd and lerpTo on `rt`. */
export function updateKernels(rt: GpuRuntime): Pick<Backend<Bufs>, "adamw" | "sgd" | "lerpTo"> {
  const adamwPipe = (amsgrad: boolean) =>
    rt.pipeline(`adamw:${amsgrad}`, () =>
      [
        declare(1, "x", "array<f32>", true),
        declare(2, "g", "array<f32>", false),
        declare(3, "m", "array<f32>", true),
        declare(4, "v", "array<f32>", true),
        amsgrad ? declare(5, "vmax", "array<f32>", true) : "",
        entry1d(`  if (gid >= pu(0u)) { return; }
  let ix = pu(1u) + gid; let ig = pu(2u) + gid; let im = pu(3u) + gid; let iv = pu(4u) + gid;
  let beta1 = pf(6u); let beta2 = pf(7u); let eps = pf(8u); let decay = pf(9u); let stepSize = pf(10u); let bc2 = pf(11u);
  let gi = g[ig];
  let mi = beta1 * m[im] + (1.0 - beta1) * gi;
  m[im] = mi;
  var vi = beta2 * v[iv] + (1.0 - beta2) * gi * gi;
  v[iv] = vi;
  ${amsgrad ? "let ia = pu(5u) + gid; vi = max(vmax[ia], vi); vmax[ia] = vi;" : ""}
  x[ix] = x[ix] * decay - (stepSize * mi) / (sqrt(vi) / bc2 + eps);`),
      ].join("\n"),
    );

  const sgdPipe = (momentum: boolean) =>
    rt.pipeline(`sgd:${momentum}`, () =>
      [
        declare(1, "x", "array<f32>", true),
        declare(2, "g", "array<f32>", false),
        momentum ? declare(3, "buf", "array<f32>", true) : "",
        entry1d(`  if (gid >= pu(0u)) { return; }
  let ix = pu(1u) + gid;
  let lr = pf(4u); let mom = pf(5u); let damp = pf(6u); let wd = pf(7u);
  let d = g[pu(2u) + gid] + wd * x[ix];
  ${
    momentum
      ? `let ib = pu(3u) + gid;
  let b = select(mom * buf[ib] + (1.0 - damp) * d, d, pu(8u) == 1u);
  buf[ib] = b;
  x[ix] = x[ix] - lr * select(b, d + mom * b, pu(9u) == 1u);`
      : "x[ix] = x[ix] - lr * d;"
  }`),
      ].join("\n"),
    );

  const lerpPipe = () =>
    rt.pipeline("lerpTo", () =>
      [
        declare(1, "avg", "array<f32>", true),
        declare(2, "x", "array<f32>", false),
        entry1d(`  if (gid >= pu(0u)) { return; }
  let ia = pu(1u) + gid;
  avg[ia] = avg[ia] - pf(3u) * (avg[ia] - x[pu(2u) + gid]);`),
      ].join("\n"),
    );

  return {
    adamw(q: AdamWParams<Bufs>): void {
      if (q.size === 0) return;
      const amsgrad = q.maxExpAvgSq !== null;
      const p = new Params()
        .u(q.size)
        .u(f32Offset(q.param, 0))
        .u(f32Offset(q.grad, 0))
        .u(f32Offset(q.expAvg, 0))
        .u(f32Offset(q.expAvgSq, 0))
        .u(amsgrad ? f32Offset(q.maxExpAvgSq, 0) : 0)
        .f(q.beta1)
        .f(q.beta2)
        .f(q.eps)
        .f(q.decay)
        .f(q.stepSize)
        .f(q.bc2Sqrt);
      const bindings = [
        { buffer: gpuBuffer(q.param).gpu, write: true },
        { buffer: gpuBuffer(q.grad).gpu },
        { buffer: gpuBuffer(q.expAvg).gpu, write: true },
        { buffer: gpuBuffer(q.expAvgSq).gpu, write: true },
      ];
      if (amsgrad) bindings.push({ buffer: gpuBuffer(q.maxExpAvgSq).gpu, write: true });
      rt.dispatch(adamwPipe(amsgrad), p, bindings, { threads: q.size });
    },

    sgd(q): void {
      if (q.size === 0) return;
      const momentum = q.momentumBuffer !== null;
      const p = new Params()
        .u(q.size)
        .u(f32Offset(q.param, 0))
        .u(f32Offset(q.grad, 0))
        .u(momentum ? f32Offset(q.momentumBuffer, 0) : 0)
        .f(q.lr)
        .f(q.momentum)
        .f(q.dampening)
        .f(q.weightDecay)
        .u(q.first ? 1 : 0)
        .u(q.nesterov ? 1 : 0);
      const bindings = [{ buffer: gpuBuffer(q.param).gpu, write: true }, { buffer: gpuBuffer(q.grad).gpu }];
      if (momentum) bindings.push({ buffer: gpuBuffer(q.momentumBuffer).gpu, write: true });
      rt.dispatch(sgdPipe(momentum), p, bindings, { threads: q.size });
    },

    lerpTo(avg: unknown, x: unknown, weight: number, size: number): void {
      if (size === 0) return;
      const p = new Params().u(size).u(f32Offset(avg, 0)).u(f32Offset(x, 0)).f(weight);
      rt.dispatch(
        lerpPipe(),
        p,
        [{ buffer: gpuBuffer(avg).gpu, write: true }, { buffer: gpuBuffer(x).gpu }],
        {
          threads: size,
        },
      );
    },
  };
}

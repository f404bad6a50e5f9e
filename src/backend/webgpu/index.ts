// The WebGPU backend: every kernel of the backend interface in WGSL, on buffers of one GPUDevice.

import type { Backend, BufferTypes } from "../backend.js";
import { registerDevice } from "../index.js";
import { type OpenOptions, openGpuDevice, type WebGpuAdapterInfo } from "./context.js";
import { elementwiseKernels } from "./elementwise.js";
import { matmulKernels } from "./matmul.js";
import { WebGpuMemory } from "./memory.js";
import { nnKernels } from "./nn.js";
import { GpuRuntime } from "./runtime.js";

export type { WebGpuAdapterInfo } from "./context.js";

/** A WebGPU backend and what it runs on. */
export interface WebGpuBackend extends Backend<BufferTypes> {
  readonly info: WebGpuAdapterInfo;
  readonly runtime: GpuRuntime;
  /** Submits the recorded work and waits for the GPU (for timing; reads wait by themselves). */
  sync(): Promise<void>;
}

/** Builds the backend on an open device. */
export function webgpuBackendOn(device: GPUDevice, info: WebGpuAdapterInfo): WebGpuBackend {
  const rt = new GpuRuntime(device, { adapterName: info.description });
  const memory = new WebGpuMemory(rt);
  const elementwise = elementwiseKernels(rt);
  memory.scatter = (src, _dtype, dst, dstElement, count) => {
    elementwise.copy(
      { data: src, offset: 0, strides: [1] },
      { data: dst, offset: dstElement - dst.first(dst.width), strides: [1] },
      [count],
    );
  };
  const backend: WebGpuBackend = {
    name: "webgpu",
    device: "webgpu",
    memory,
    info,
    runtime: rt,
    fusesResidual: true,
    pooledBytes: () => memory.pooledBytes,
    allocate: (size) => memory.allocUninit("float32", size),
    sync: () => rt.sync(),
    ...elementwise,
    ...nnKernels(rt),
    ...matmulKernels(rt),
  } as WebGpuBackend;
  return backend;
}

let active: Promise<WebGpuBackend> | null = null;

/**
 * Opens the WebGPU device once and registers it as device `"webgpu"`: tensors moved there with
 * `t.to("webgpu")` (and models with `model.toDevice("webgpu")`) then compute on the GPU. Resolves to the backend,
 * whose `info` says which adapter it found and whether it is a software one.
 */
export function initWebGpu(options: OpenOptions = {}): Promise<WebGpuBackend> {
  active ??= (async () => {
    const { device, info } = await openGpuDevice(options);
    const backend = webgpuBackendOn(device, info);
    registerDevice(backend);
    return backend;
  })();
  active.catch(() => {
    active = null;
  });
  return active;
}

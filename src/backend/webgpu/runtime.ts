// The WebGPU runtime: one GPUDevice, its pipeline cache, and the command stream. Kernels are recorded as
// dispatches into one compute pass of one command encoder and submitted together (at a readback, a CPU write,
// or every `maxBatch` dispatches), not one submit per op. Each dispatch's parameters go into a slot of a uniform
// arena that is written once per submit.
import { DeviceError } from "../../tensor/device.js";

/** GPUBufferUsage flags (the spec's numbers: the globals exist only once a GPU entry point is loaded). */
export const BufferUsage = {
  MAP_READ: 0x0001,
  COPY_SRC: 0x0004,
  COPY_DST: 0x0008,
  UNIFORM: 0x0040,
  STORAGE: 0x0080,
} as const;
/** GPUMapMode.READ */
export const MAP_MODE_READ = 0x0001;

/** Uniform bytes per dispatch (64 u32 words; the WGSL prelude reads them as `pu(i)` / `pi(i)` / `pf(i)`). */
export const PARAM_BYTES = 256;
export const PARAM_WORDS = PARAM_BYTES / 4;
/** Dispatches recorded before a submit. */
const MAX_BATCH = 256;

/** One binding of a dispatch: a GPU buffer bound whole, read-only or written. */
export interface Binding {
  readonly buffer: GPUBuffer;
  readonly write?: boolean;
}

/** The 32-bit words of one dispatch's uniform parameters. */
export class Params {
  readonly words = new Uint32Array(PARAM_WORDS);
  readonly #f32 = new Float32Array(this.words.buffer);
  readonly #i32 = new Int32Array(this.words.buffer);
  #n = 0;
  /** Appends an unsigned integer. */
  u(v: number): this {
    this.#check();
    this.words[this.#n++] = v >>> 0;
    return this;
  }
  /** Appends a signed integer. */
  i(v: number): this {
    this.#check();
    this.#i32[this.#n++] = v | 0;
    return this;
  }
  /** Appends a float32. */
  f(v: number): this {
    this.#check();
    this.#f32[this.#n++] = v;
    return this;
  }
  /** Pads with zeros up to word `index` (so that a WGSL kernel finds a field at a fixed slot). */
  at(index: number): this {
    if (index < this.#n)
      throw new Error(`webgpu params: slot ${index} is already written (${this.#n} words)`);
    this.#n = index;
    return this;
  }
  get length(): number {
    return this.#n;
  }
  #check(): void {
    if (this.#n >= PARAM_WORDS) throw new Error(`webgpu params: more than ${PARAM_WORDS} words`);
  }
}

/** The WGSL every kernel starts with: the parameter block and its accessors. */
export const PRELUDE = /* wgsl */ `
struct Params { v: array<vec4<u32>, ${PARAM_WORDS / 4}> }
@group(0) @binding(0) var<uniform> P: Params;
fn pu(i: u32) -> u32 { return P.v[i / 4u][i % 4u]; }
fn pi(i: u32) -> i32 { return bitcast<i32>(P.v[i / 4u][i % 4u]); }
fn pf(i: u32) -> f32 { return bitcast<f32>(P.v[i / 4u][i % 4u]); }
`;

/** Threads per workgroup of the 1-D kernels. */
export const WG = 256;

/** The WGSL entry of a 1-D kernel over `gid` (two-dimensional grids past 65535 workgroups). */
export function entry1d(body: string, wg = WG): string {
  return /* wgsl */ `
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let gid = (wid.y * nwg.x + wid.x) * ${wg}u + lid;
${body}
}`;
}

export interface RuntimeOptions {
  /** The label in error messages, e.g. the adapter's description. */
  readonly adapterName: string;
}

export class GpuRuntime {
  readonly device: GPUDevice;
  readonly adapterName: string;
  /** The device has `subgroups`: the segment reductions combine within subgroups first. */
  readonly subgroups: boolean;
  /**
   * The device has `shader-f16`. No kernel uses it: loading the GEMM's float16 operands as f16 measured no faster
   * on lavapipe than the exact bit unpack (halfToF32), and WGSL lets f16 flush subnormals.
   */
  readonly f16: boolean;
  readonly #pipelines = new Map<string, GPUComputePipeline>();
  readonly #layouts = new Map<GPUComputePipeline, GPUBindGroupLayout>();
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #arena: GPUBuffer | null = null;
  readonly #arenaData = new Uint32Array((MAX_BATCH * PARAM_BYTES) / 4);
  #dispatches = 0;
  /** Buffers to destroy once the current batch is submitted (they may be bound in it). */
  #destroyAfterSubmit: GPUBuffer[] = [];
  #lost: string | null = null;
  #error: string | null = null;

  constructor(device: GPUDevice, options: RuntimeOptions) {
    this.device = device;
    this.adapterName = options.adapterName;
    this.subgroups = device.features.has("subgroups");
    this.f16 = device.features.has("shader-f16");
    device.lost.then((info) => {
      this.#lost = `${info.reason}: ${info.message}`;
    });
    device.addEventListener?.("uncapturederror", (event) => {
      // a validation error is a bug in a kernel (or a limit passed): the next dispatch or read throws it
      this.#error ??= (event as GPUUncapturedErrorEvent).error.message;
    });
  }

  /**
   * The compute pipeline of a WGSL source (compiled once per key: a key names one source, variants included).
   * `enables` are WGSL extensions (`subgroups`, `f16`), whose directives must come first in the module.
   */
  pipeline(key: string, source: () => string, enables: readonly string[] = []): GPUComputePipeline {
    let p = this.#pipelines.get(key);
    if (!p) {
      const directives = enables.map((e) => `enable ${e};\n`).join("");
      const module = this.device.createShaderModule({ code: directives + PRELUDE + source(), label: key });
      p = this.device.createComputePipeline({
        layout: "auto",
        compute: { module, entryPoint: "main" },
        label: key,
      });
      this.#pipelines.set(key, p);
    }
    return p;
  }

  /** Throws the device's loss or its first error (errors arrive asynchronously, after the call that caused them). */
  check(): void {
    if (this.#lost) throw new DeviceError(`webgpu device lost (${this.#lost})`);
    if (this.#error) throw new DeviceError(`webgpu error on ${this.adapterName}: ${this.#error}`);
  }

  #computePass(): GPUComputePassEncoder {
    if (!this.#encoder) this.#encoder = this.device.createCommandEncoder();
    if (!this.#pass) this.#pass = this.#encoder.beginComputePass();
    return this.#pass;
  }

  /** The encoder outside a compute pass, for copies and clears recorded in order with the dispatches. */
  encoder(): GPUCommandEncoder {
    this.check();
    if (this.#pass) {
      this.#pass.end();
      this.#pass = null;
    }
    if (!this.#encoder) this.#encoder = this.device.createCommandEncoder();
    return this.#encoder;
  }

  /**
   * Records one dispatch of `pipeline` with `params` in binding 0 and `bindings` in 1, 2, ... over `threads`
   * threads of workgroups of `wg` (a 2-D grid where one dimension would pass the limit) or an explicit grid.
   */
  dispatch(
    pipeline: GPUComputePipeline,
    params: Params,
    bindings: readonly Binding[],
    grid: { threads: number; wg?: number } | { x: number; y?: number; z?: number },
  ): void {
    this.check();
    let x: number;
    let y = 1;
    let z = 1;
    if ("threads" in grid) {
      const groups = Math.ceil(grid.threads / (grid.wg ?? WG));
      if (groups === 0) return;
      x = Math.min(groups, 65535);
      y = Math.ceil(groups / x);
    } else {
      x = grid.x;
      y = grid.y ?? 1;
      z = grid.z ?? 1;
      if (x === 0 || y === 0 || z === 0) return;
    }
    const limit = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (x > limit || y > limit || z > limit) {
      throw new DeviceError(
        `webgpu: a dispatch of ${x}x${y}x${z} workgroups passes the device's limit of ${limit}`,
      );
    }
    const resolved = this.#resolveAliases(bindings);
    if (!this.#arena) {
      this.#arena = this.device.createBuffer({
        size: this.#arenaData.byteLength,
        usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST,
      });
    }
    const slot = this.#dispatches++;
    this.#arenaData.set(params.words, (slot * PARAM_BYTES) / 4);
    const entries: GPUBindGroupEntry[] = [
      { binding: 0, resource: { buffer: this.#arena, offset: slot * PARAM_BYTES, size: PARAM_BYTES } },
    ];
    for (let i = 0; i < resolved.length; i++)
      entries.push({ binding: i + 1, resource: { buffer: resolved[i]! } });
    let layout = this.#layouts.get(pipeline);
    if (!layout) {
      // asking the pipeline each time costs a native call and a new wrapper per dispatch
      layout = pipeline.getBindGroupLayout(0);
      this.#layouts.set(pipeline, layout);
    }
    const bindGroup = this.device.createBindGroup({ layout, entries });
    const pass = this.#computePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    if (this.#dispatches >= MAX_BATCH) this.flush();
  }

  /**
   * WebGPU forbids binding one buffer as written and also read in a dispatch: a read binding of the written
   * buffer (an in-place op on views of one storage) reads a copy taken just before.
   */
  #resolveAliases(bindings: readonly Binding[]): GPUBuffer[] {
    const written = new Set<GPUBuffer>();
    for (const b of bindings) if (b.write) written.add(b.buffer);
    const out: GPUBuffer[] = [];
    const writtenOnce = new Set<GPUBuffer>();
    for (const b of bindings) {
      if (b.write) {
        if (writtenOnce.has(b.buffer)) {
          throw new DeviceError("webgpu: a kernel writes two outputs in the same buffer (an internal error)");
        }
        writtenOnce.add(b.buffer);
        out.push(b.buffer);
      } else if (written.has(b.buffer)) {
        const copy = this.device.createBuffer({
          size: b.buffer.size,
          usage: BufferUsage.STORAGE | BufferUsage.COPY_DST,
        });
        this.encoder().copyBufferToBuffer(b.buffer, 0, copy, 0, b.buffer.size);
        this.#destroyAfterSubmit.push(copy);
        out.push(copy);
      } else {
        out.push(b.buffer);
      }
    }
    return out;
  }

  /** Destroys `buffer` after the recorded work that may use it is submitted. */
  destroyLater(buffer: GPUBuffer): void {
    this.#destroyAfterSubmit.push(buffer);
  }

  /** Submits the recorded work. */
  flush(): void {
    this.check();
    if (!this.#encoder) return;
    if (this.#pass) {
      this.#pass.end();
      this.#pass = null;
    }
    const commands = this.#encoder.finish();
    this.#encoder = null;
    if (this.#arena && this.#dispatches > 0) {
      this.device.queue.writeBuffer(this.#arena, 0, this.#arenaData, 0, (this.#dispatches * PARAM_BYTES) / 4);
    }
    this.device.queue.submit([commands]);
    // the arena is bound by the work just submitted: the next batch gets a fresh one
    if (this.#arena) this.#destroyAfterSubmit.push(this.#arena);
    this.#arena = null;
    this.#dispatches = 0;
    for (const b of this.#destroyAfterSubmit) b.destroy();
    this.#destroyAfterSubmit = [];
  }

  /** Submits the recorded work and waits until the GPU has done it. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.check();
  }
}

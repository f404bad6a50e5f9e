// Finding a WebGPU adapter and opening a device on it. The GPU entry point comes from the platform: the
// browser's `navigator.gpu`, or in Node the optional `webgpu` package (Dawn), installed by src/platform-node.ts.
import { DeviceError } from "../../tensor/device.js";

/** What was found: the adapter's description and what it can do. */
export interface WebGpuAdapterInfo {
  /** vendor / architecture / device as the adapter reports them */
  readonly description: string;
  /** A CPU implementation (lavapipe, SwiftShader, a fallback adapter): correct, but far slower than the CPU backend. */
  readonly software: boolean;
  /** The device's features: the kernels take their subgroup and float16 paths from these. */
  readonly features: readonly string[];
  /** Threads a subgroup has, where the adapter says (null without subgroups). */
  readonly subgroupSize: number | null;
}

export interface GpuProvider {
  /** The GPU entry point (navigator.gpu or Dawn's). */
  gpu(): Promise<GPU>;
  /** What to install or enable when there is none. */
  readonly hint: string;
}

const browserGpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
let provider: GpuProvider | null = browserGpu
  ? {
      gpu: async () => browserGpu,
      hint: "this browser has WebGPU, but it gave no adapter (is the GPU blocklisted?)",
    }
  : null;

/** Sets where the GPU entry point comes from (the Node platform installs Dawn from the `webgpu` package). */
export function setGpuProvider(p: GpuProvider): void {
  provider = p;
}

const SOFTWARE = /swiftshader|llvmpipe|lavapipe|softpipe|warp|basic render/i;

/** Options of {@link openGpuDevice}. */
export interface OpenOptions {
  readonly powerPreference?: GPUPowerPreference;
  /** Optional features not to request even where the adapter has them (to test the paths without them). */
  readonly disableFeatures?: readonly string[];
}

/** The optional features the kernels use where the device has them. */
export const OPTIONAL_FEATURES = ["shader-f16", "subgroups"] as const;

/**
 * `DIFFUSE_WEBGPU_FEATURES=-subgroups,-shader-f16` (Node only: browsers have no environment) turns features off,
 * so that the kernels' paths without them run on an adapter that has them.
 */
export function featuresDisabledByEnv(): string[] {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const spec = env?.DIFFUSE_WEBGPU_FEATURES?.trim();
  if (!spec) return [];
  return spec.split(",").map((entry) => {
    const e = entry.trim();
    const name = e.slice(1);
    if (!e.startsWith("-") || !(OPTIONAL_FEATURES as readonly string[]).includes(name)) {
      throw new DeviceError(
        `webgpu: DIFFUSE_WEBGPU_FEATURES takes -name entries, names among ${OPTIONAL_FEATURES.join(", ")}; got "${e}"`,
      );
    }
    return name;
  });
}

export async function openGpuDevice(
  options: OpenOptions = {},
): Promise<{ device: GPUDevice; info: WebGpuAdapterInfo }> {
  if (!provider) {
    throw new DeviceError(
      "webgpu: no WebGPU here (a browser without navigator.gpu, or Node without the platform set-up); use the CPU",
    );
  }
  const gpu = await provider.gpu();
  const adapter = await gpu.requestAdapter({
    powerPreference: options.powerPreference ?? "high-performance",
  });
  if (!adapter) {
    throw new DeviceError(
      `webgpu: no adapter found (${provider.hint}); run on the CPU instead (--device cpu)`,
    );
  }
  const i = adapter.info;
  const description =
    [i.vendor, i.architecture, i.device, i.description].filter((s) => s).join(" / ") || "unnamed adapter";
  const software =
    Boolean((i as { isFallbackAdapter?: boolean }).isFallbackAdapter) || SOFTWARE.test(description);
  const off = new Set([...(options.disableFeatures ?? []), ...featuresDisabledByEnv()]);
  const requiredFeatures = OPTIONAL_FEATURES.filter(
    (f) => adapter.features.has(f) && !off.has(f),
  ) as GPUFeatureName[];
  const l = adapter.limits;
  const device = await adapter.requestDevice({
    requiredFeatures,
    requiredLimits: {
      maxBufferSize: l.maxBufferSize,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupSizeY: l.maxComputeWorkgroupSizeY,
    },
  });
  const sg = (i as { subgroupMinSize?: number }).subgroupMinSize;
  return {
    device,
    info: {
      description,
      software,
      features: [...device.features] as string[],
      subgroupSize: requiredFeatures.includes("subgroups" as GPUFeatureName) && sg ? sg : null,
    },
  };
}

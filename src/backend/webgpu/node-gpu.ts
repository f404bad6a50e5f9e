// The Node side of WebGPU: Dawn from the optional `webgpu` package. Imported by src/platform-node.ts only.
import { existsSync } from "node:fs";
import { DeviceError } from "../../tensor/device.js";
import { type GpuProvider, setGpuProvider } from "./context.js";

// Dawn's instance must outlive every device made from it (collecting it crashes webgpu 0.6.2): kept here.
let instance: GPU | null = null;

const SWIFTSHADER_ICDS = ["/usr/lib/chromium/vk_swiftshader_icd.json"];

/**
 * `DIFFUSE_WEBGPU_ADAPTER`: `auto` (Dawn's Vulkan picks: the GPU, or Mesa's lavapipe without one), `swiftshader`
 * (Google's CPU Vulkan from Debian's chromium; `SWIFTSHADER_ICD` names another ICD json), or `null` (validation
 * only, computes nothing).
 */
const nodeProvider: GpuProvider = {
  hint: "no Vulkan driver found; on a machine without a GPU, Mesa's lavapipe (mesa-vulkan-drivers) or SwiftShader give a software adapter for tests",
  async gpu() {
    if (instance) return instance;
    let mod: { create(flags: string[]): GPU; globals: object };
    try {
      mod = (await import("webgpu")) as unknown as typeof mod;
    } catch (e) {
      throw new DeviceError(
        `webgpu: the optional package "webgpu" (Dawn for Node) is not installed (npm install webgpu): ${(e as Error).message}`,
      );
    }
    Object.assign(globalThis, mod.globals);
    process.env.XDG_RUNTIME_DIR ||= "/tmp";
    const kind = process.env.DIFFUSE_WEBGPU_ADAPTER ?? "auto";
    const flags: string[] = [];
    if (kind === "swiftshader") {
      const icd = [process.env.SWIFTSHADER_ICD, ...SWIFTSHADER_ICDS].find((p) => p && existsSync(p));
      if (!icd)
        throw new DeviceError(
          "webgpu: DIFFUSE_WEBGPU_ADAPTER=swiftshader but no SwiftShader ICD (set SWIFTSHADER_ICD)",
        );
      // the Vulkan loader reads this once, at the first instance in the process
      process.env.VK_ICD_FILENAMES = icd;
      flags.push("backend=vulkan");
    } else if (kind === "null") {
      flags.push("backend=null");
    } else if (kind !== "auto") {
      throw new DeviceError(
        `webgpu: DIFFUSE_WEBGPU_ADAPTER must be auto, swiftshader or null, got "${kind}"`,
      );
    } else {
      flags.push("backend=vulkan");
    }
    instance = mod.create(flags);
    return instance;
  },
};

setGpuProvider(nodeProvider);

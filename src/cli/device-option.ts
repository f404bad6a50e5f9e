// `--device` of generate, train and eval: where the models compute. "cpu" (the native backend, or the reference
// one) or "webgpu" (the GPU through Dawn; `DIFFUSE_DEVICE` sets the default).
import type { Command } from "commander";
import { initWebGpu } from "../backend/webgpu/index.js";
import type { Device } from "../tensor/device.js";
import { CliError } from "./errors.js";

export const DEVICES = ["cpu", "webgpu"] as const;

/** Adds `--device <name>` to a command. */
export function addDeviceOption(cmd: Command): Command {
  return cmd.option(
    "--device <name>",
    `where to compute: ${DEVICES.join(" or ")} (default: $DIFFUSE_DEVICE or cpu)`,
  );
}

/**
 * The device named by `--device` (or `DIFFUSE_DEVICE`), opened and registered. A software WebGPU adapter works but
 * is far slower than the CPU backend: `warn` is told so (unless `--json` quiets it).
 */
export async function resolveDevice(name: string | undefined, warn: (text: string) => void): Promise<Device> {
  const wanted = name ?? process.env.DIFFUSE_DEVICE ?? "cpu";
  if (!(DEVICES as readonly string[]).includes(wanted)) {
    throw new CliError(`--device must be ${DEVICES.join(" or ")}, got "${wanted}"`);
  }
  if (wanted === "cpu") return "cpu";
  const backend = await initWebGpu();
  if (backend.info.software) {
    warn(
      `webgpu: ${backend.info.description} is a software (CPU) adapter, for tests: it is far slower than --device cpu`,
    );
  }
  return "webgpu";
}

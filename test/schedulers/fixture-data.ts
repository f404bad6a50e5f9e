// Loading of fixtures/schedulers (see ../shared/fixtures/README.md, section "schedulers/").
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseSafetensors, type Tensor } from "../../src/index.js";
import { fixturesDir } from "../helpers.js";

/** The schedulers fixture folder (callers skip when fixtures are absent). */
export function schedulerFixturesDir(): string {
  return join(fixturesDir() ?? "", "schedulers");
}

/** A JSON fixture of the schedulers folder. */
// biome-ignore lint/suspicious/noExplicitAny: fixture records are free-form JSON
export function readFixtureJson(name: string): any {
  return JSON.parse(readFileSync(join(schedulerFixturesDir(), name), "utf8"));
}

let tensors: Map<string, Tensor> | null = null;

/** A tensor of trajectories.safetensors (the file is read once). */
export function fixtureTensor(name: string): Tensor {
  if (!tensors) {
    const bytes = readFileSync(join(schedulerFixturesDir(), "trajectories.safetensors"));
    tensors = parseSafetensors(bytes, "trajectories.safetensors").tensors;
  }
  const t = tensors.get(name);
  if (!t) throw new Error(`trajectories.safetensors has no tensor ${name}`);
  return t;
}

/** JSON numbers, with "Infinity" / "-Infinity" strings read as numbers. */
export function fixtureNumber(v: unknown): number {
  return typeof v === "string" ? Number(v) : (v as number);
}

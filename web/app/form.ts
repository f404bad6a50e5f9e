// The settings form: what a run asks for, read from the inputs, and written back from the A1111 parameters of a
// dropped PNG.
import { type GenerationSettings, parseParameters } from "../../src/pipelines/params.js";
import { SAMPLERS } from "../../src/schedulers/samplers.js";
import type { RunRequest } from "./protocol.js";

/** The element with `id` (throws when the page lacks it: a bug in index.html). */
export function byId<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html has no #${id}`);
  return el as T;
}

const input = (id: string) => byId<HTMLInputElement>(id);

function int(id: string, min: number, max: number): number {
  const el = input(id);
  const n = Number(el.value);
  if (el.value.trim() === "" || !Number.isInteger(n) || n < min || n > max) {
    const label = el.labels?.[0]?.textContent?.trim() ?? id;
    throw new RangeError(`${label} must be a whole number from ${min} to ${max}, got "${el.value}"`);
  }
  return n;
}

/** A whole number, or undefined when the field is left empty. */
function optionalInt(id: string, min: number, max: number): number | undefined {
  return input(id).value.trim() === "" ? undefined : int(id, min, max);
}

function num(id: string, min: number, max: number): number {
  const el = input(id);
  const n = Number(el.value);
  if (el.value.trim() === "" || !Number.isFinite(n) || n < min || n > max) {
    const label = el.labels?.[0]?.textContent?.trim() ?? id;
    throw new RangeError(`${label} must be a number from ${min} to ${max}, got "${el.value}"`);
  }
  return n;
}

/** Fills the sampler list: the model's own first, then every named sampler. */
export function fillSamplers(names: readonly string[] = SAMPLERS.map((s) => s.name)): void {
  const select = byId<HTMLSelectElement>("sampler");
  const current = select.value;
  const options = [new Option("default", "")];
  for (const name of names) {
    const spec = SAMPLERS.find((s) => s.name === name);
    options.push(new Option(spec ? `${name} (${spec.aka.split(" / ")[0]})` : name, name));
  }
  select.replaceChildren(...options);
  if (names.includes(current)) select.value = current;
}

/** The run the form asks for (without images and LoRAs, which their own controls hold). */
export function readForm(): RunRequest {
  const prompt = byId<HTMLTextAreaElement>("prompt").value.trim();
  if (!prompt) throw new RangeError("Write a prompt first.");
  return {
    prompt,
    negativePrompt: byId<HTMLTextAreaElement>("negative").value.trim(),
    sampler: byId<HTMLSelectElement>("sampler").value,
    steps: int("steps", 1, 150),
    guidance: num("guidance", 0, 30),
    seed: int("seed", -1, 2 ** 32 - 1),
    width: optionalInt("width", 8, 2048),
    height: optionalInt("height", 8, 2048),
    batch: int("batch", 1, 8),
    strength: num("strength", 0, 1),
    loras: [],
  };
}

/** Writes settings into the form (a field the settings lack keeps its value). */
export function writeForm(s: Partial<GenerationSettings>): void {
  if (s.prompt !== undefined) byId<HTMLTextAreaElement>("prompt").value = s.prompt;
  if (s.negativePrompt !== undefined) byId<HTMLTextAreaElement>("negative").value = s.negativePrompt;
  if (s.steps !== undefined) input("steps").value = String(s.steps);
  if (s.guidanceScale !== undefined) input("guidance").value = String(s.guidanceScale);
  if (s.seed !== undefined) input("seed").value = String(s.seed);
  if (s.width !== undefined) input("width").value = String(s.width);
  if (s.height !== undefined) input("height").value = String(s.height);
  if (s.batchSize !== undefined) input("batch").value = String(s.batchSize);
  if (s.strength !== undefined) input("strength").value = String(s.strength);
  if (s.sampler !== undefined) {
    const select = byId<HTMLSelectElement>("sampler");
    select.value = [...select.options].some((o) => o.value === s.sampler) ? s.sampler : "";
  }
}

/** Restores the form from an A1111 `parameters` text; returns the settings (throws PipelineError when invalid). */
export function restoreFromParameters(text: string): GenerationSettings {
  const settings = parseParameters(text);
  writeForm({ ...settings, batchSize: settings.batchSize ?? 1 });
  return settings;
}

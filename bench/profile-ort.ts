// Where onnxruntime-node spends one SD 1.5 UNet step (the exported graph of ../shared/bench/sd15_unet, batch 2,
// 64x64 latent, random weights): its own per-node profile of the last of a few steady runs, summed per operator and
// per operator and input shapes, to set beside bench/profile-unet.ts's table of ours. Profiling slows onnxruntime
// down (about 10-20% here), so these are shares, not the bench's times.
//   node --import tsx bench/profile-ort.ts [threads]
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { onnxGraph } from "./sd15.js";
import { lcgArray } from "./sd15-worker.js";

interface ProfileEvent {
  cat?: string;
  name: string;
  ts: number;
  dur: number;
  args?: { op_name?: string; input_type_shape?: Record<string, number[]>[] };
}

const threads = Number(process.argv[2] ?? 1);
if (!Number.isInteger(threads) || threads < 1)
  throw new Error(
    `usage: bench/profile-ort.ts [threads]; threads must be an integer >= 1, got ${process.argv[2]}`,
  );
const graph = onnxGraph("sd15_unet");
if ("error" in graph) throw new Error(`no UNet graph to profile: ${graph.error}`);
const ort = await import("onnxruntime-node");
const dir = mkdtempSync(join(tmpdir(), "diffuse-ort-profile-"));
const session = await ort.InferenceSession.create(graph.path, {
  executionProviders: ["cpu"],
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  executionMode: "sequential",
  graphOptimizationLevel: "all",
  enableProfiling: true,
  profileFilePrefix: join(dir, "unet"),
});
const feeds = {
  sample: new ort.Tensor("float32", lcgArray(2 * 4 * 64 * 64, 1), [2, 4, 64, 64]),
  timestep: new ort.Tensor("float32", new Float32Array([999, 999]), [2]),
  encoder_hidden_states: new ort.Tensor("float32", lcgArray(2 * 77 * 768, 2), [2, 77, 768]),
};
// onnxruntime needs two runs after its warm-up to settle (../shared/bench/sd15_unet/README.md)
for (let r = 0; r < 4; r++) {
  const t0 = performance.now();
  await session.run(feeds);
  process.stderr.write(`run ${r + 1}: ${((performance.now() - t0) / 1000).toFixed(2)} s\n`);
}
// the profile goes to a file named after the prefix and the session's start time
session.endProfiling();
const file = readdirSync(dir).find((f) => f.startsWith("unet") && f.endsWith(".json"));
if (!file) throw new Error(`onnxruntime wrote no profile into ${dir}`);
const events = JSON.parse(readFileSync(join(dir, file), "utf8")) as ProfileEvent[];
rmSync(dir, { recursive: true, force: true });

const last = events.filter((e) => e.name === "model_run").at(-1);
if (!last) throw new Error("the profile holds no model_run event");
const nodes = events.filter(
  (e) => e.cat === "Node" && e.name.endsWith("_kernel_time") && e.ts >= last.ts && e.ts <= last.ts + last.dur,
);
const sum = (keyOf: (e: ProfileEvent) => string) => {
  const m = new Map<string, { us: number; calls: number }>();
  for (const e of nodes) {
    const k = keyOf(e);
    const v = m.get(k) ?? { us: 0, calls: 0 };
    v.us += e.dur;
    v.calls++;
    m.set(k, v);
  }
  return [...m].sort((a, b) => b[1].us - a[1].us);
};
const opOf = (e: ProfileEvent) => e.args?.op_name ?? "?";
const shapes = (e: ProfileEvent) =>
  (e.args?.input_type_shape ?? [])
    .slice(0, 2)
    .map((s) => `[${Object.values(s)[0]?.join(",")}]`)
    .join(" ");
const total = nodes.reduce((s, e) => s + e.dur, 0);
const rows = (list: [string, { us: number; calls: number }][], limit: number) =>
  list
    .slice(0, limit)
    .map(([k, v]) => `${(v.us / 1000).toFixed(1).padStart(9)} ms ${String(v.calls).padStart(5)}x  ${k}`)
    .join("\n");
console.log(
  `onnxruntime UNet step on ${threads} thread(s), profiled: ${(last.dur / 1e6).toFixed(2)} s, in nodes ` +
    `${(total / 1e6).toFixed(2)} s\n\nper operator:\n${rows(sum(opOf), 30)}\n\nslowest 30 operator shapes:\n` +
    rows(
      sum((e) => `${opOf(e)} ${shapes(e)}`),
      30,
    ),
);

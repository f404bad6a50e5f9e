// Where the time of SD 1.5's down_blocks.0 goes on the native backend: every backend call is timed (kernel and
// shape), summed over one forward after a warm-up, next to the wall time and the output pool's hits and misses.
//   node --import tsx bench/profile-down.ts [threads]
import "../src/platform-node.js";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { nativeAddon, nativeBackend } from "../src/backend/native/index.js";
import { loadSafetensors, noGrad, setBackend } from "../src/index.js";
import { callRows, timedBackend } from "./profile-calls.js";
import { downBlock } from "./sd15-worker.js";

const dir = join(fileURLToPath(new URL("../../shared/bench/sd15_down_block_0", import.meta.url)));
if (!nativeBackend || !nativeAddon) throw new Error("the native addon is not built: npm run build:native");
const addon = nativeAddon;
addon.setNumThreads(Number(process.argv[2] ?? 2));

const { backend: timed, times, clear } = timedBackend(nativeBackend);
setBackend(timed);

const block = await downBlock(dir);
const io = (await loadSafetensors(join(dir, "io.safetensors"))).tensors;
const forward = () =>
  noGrad(() => block.call(io.get("hidden_states")!, io.get("temb")!, io.get("encoder_hidden_states")!));

forward(); // warm-up: scratch buffers, the pool
let best = Number.POSITIVE_INFINITY;
for (let r = 0; r < 3; r++) {
  clear();
  const pool0 = addon.poolStats();
  const t0 = performance.now();
  forward();
  const wall = performance.now() - t0;
  const pool1 = addon.poolStats();
  if (wall >= best) continue;
  best = wall;
  const kernels = [...times.values()].reduce((s, e) => s + e.ms, 0);
  console.log(
    `\nforward ${wall.toFixed(0)} ms on ${addon.info().threads} thread(s): kernels ${kernels.toFixed(0)} ms, ` +
      `outside ${(wall - kernels).toFixed(0)} ms; pool ${pool1.hits - pool0.hits} hits, ${pool1.misses - pool0.misses} misses`,
  );
  for (const row of callRows(times)) console.log(row);
}

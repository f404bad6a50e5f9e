#!/usr/bin/env bash
# The GPU bench, for a machine with a real GPU (no network needed; under 10 minutes):
#   1. the WebGPU adapter must not be a software or fallback one;
#   2. the WebGPU kernel tests, the fixture models / CFG pipeline and the MNIST training test on that GPU;
#   3. timings of bench/gpu/time.ts (webgpu) and bench/gpu/torch_peer.py (PyTorch CUDA, float16) in the same run.
# Usage: bench/gpu/run.sh [out-dir]   (DIFFUSERS_SRC=<diffusers>/src when diffusers is not installed)
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${1:-${OUT:-/tmp/diffuse-gpu-bench}}"
mkdir -p "$out"
export DIFFUSE_WEBGPU_ADAPTER=auto
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee "$out/gpu.txt"

node --import tsx --input-type=module -e '
  await import("./src/platform-node.ts");
  const { initWebGpu } = await import("./src/backend/webgpu/index.ts");
  const g = await initWebGpu();
  console.log(JSON.stringify(g.info));
  if (g.info.software) { console.error("bench/gpu: the adapter is a software one: no GPU reached through Vulkan"); process.exit(3); }
' 2>&1 | tee "$out/adapter.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || exit 3

timeout 240 node scripts/run-tests.js test/backend/webgpu- test/models/webgpu-fixtures test/train/webgpu-train \
  > "$out/tests.txt" 2>&1
echo "tests: exit $? ($(grep -E '^ℹ (pass|fail)' "$out/tests.txt" | tr '\n' ' '))"

timeout 200 node --import tsx --import ./src/platform-node.ts bench/gpu/time.ts > "$out/webgpu.json" 2> "$out/webgpu.err"
echo "webgpu timings: exit $?"
PYTHONPATH="${DIFFUSERS_SRC:-}${PYTHONPATH:+:$PYTHONPATH}" timeout 150 python3 bench/gpu/torch_peer.py \
  > "$out/torch.json" 2> "$out/torch.err"
echo "torch timings: exit $?"

node -e '
  const fs = require("fs");
  const read = (f) => { try { return JSON.parse(fs.readFileSync(f, "utf8")); } catch { return {}; } };
  const w = read(process.argv[1]), t = read(process.argv[2]);
  const s = (x) => (x === undefined ? "-" : x.toFixed(3) + " s");
  console.log(`| case | webgpu (${w.adapter ?? "?"}) | PyTorch ${t.torch ?? "?"} (${t.device ?? "?"}) | ratio |`);
  console.log("| --- | ---: | ---: | ---: |");
  for (const [k, name] of [["unetStep", "SD 1.5 UNet step, batch 2, 64x64, fp16"], ["vaeDecode512", "VAE decode 512x512, fp16"]]) {
    const a = w[k]?.best, b = t[k]?.best;
    console.log(`| ${name} | ${s(a)} | ${s(b)} | ${a && b ? (a / b).toFixed(2) : "-"} |`);
  }
  const a = w.mnistTrain?.imagesPerSecond, b = t.mnistTrain?.imagesPerSecond;
  console.log(`| MNIST training, batch 64, images/s | ${a?.toFixed(0) ?? "-"} | ${b?.toFixed(0) ?? "-"} | ${a && b ? (b / a).toFixed(2) : "-"} |`);
' "$out/webgpu.json" "$out/torch.json" | tee "$out/table.md"

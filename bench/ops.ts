// Kernel throughput of every available backend on matmul and conv2d shapes; the reference backend is the baseline.
import { F, Generator, listBackends, noGrad, randn, withBackend } from "../src/index.js";
import { bestTime, fmt, printTable } from "./util.js";

interface Case {
  name: string;
  flops: number;
  /** smaller stand-in used for the slow reference backend (same op, scaled FLOPs) */
  run: () => void;
}

function matmulCase(m: number, k: number, n: number): Case {
  const g = new Generator().manualSeed(0);
  const a = randn([m, k], { generator: g });
  const b = randn([k, n], { generator: g });
  return { name: `matmul ${m}x${k}x${n}`, flops: 2 * m * n * k, run: () => void a.matmul(b) };
}

function convCase(c: number, o: number, hw: number, k: number): Case {
  const g = new Generator().manualSeed(0);
  const x = randn([1, c, hw, hw], { generator: g });
  const w = randn([o, c, k, k], { generator: g });
  const pad = (k - 1) / 2;
  return {
    name: `conv2d ${c}->${o} ${k}x${k} @${hw}x${hw}`,
    flops: 2 * o * c * k * k * hw * hw,
    run: () => void F.conv2d(x, w, null, { padding: pad }),
  };
}

export function runOpsBench(): void {
  const cases: Record<string, Case[]> = {
    reference: [matmulCase(256, 256, 256), convCase(64, 64, 32, 3)],
    fast: [matmulCase(1024, 1024, 1024), matmulCase(4096, 320, 2880), convCase(320, 320, 64, 3)],
  };
  const rows: (string | number)[][] = [];
  noGrad(() => {
    for (const backend of listBackends()) {
      const list = backend === "reference" ? cases.reference! : [...cases.reference!, ...cases.fast!];
      withBackend(backend, () => {
        for (const c of list) {
          const t = bestTime(c.run, backend === "reference" ? 2 : 3);
          rows.push([backend, c.name, fmt(t * 1000, 1), fmt(c.flops / t / 1e9)]);
        }
      });
    }
  });
  console.log("\n## Kernels (float32, this process's thread count)\n");
  printTable(["backend", "case", "ms", "GFLOP/s"], rows);
}

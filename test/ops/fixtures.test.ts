// Every case of fixtures/ops (PyTorch 1.13 CPU float32): forward outputs and input gradients
// gradK = d sum(out * w_out) / d inK. index.json states no tolerance, so the max-normalized error bound is 1e-4.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { F, noGrad, parseSafetensors, type Tensor } from "../../src/index.js";
import { assertClose, fixturesDir, skipWithoutFixtures } from "../helpers.js";

const TOLERANCE = 1e-4;

interface OpCase {
  name: string;
  // biome-ignore lint/suspicious/noExplicitAny: fixture parameters are free-form JSON
  params: Record<string, any>;
  inputs: string[];
}

type Run = (inputs: Tensor[], params: OpCase["params"]) => Tensor;

// [name pattern, how PyTorch computed the case]
const RUNNERS: [RegExp, Run][] = [
  [
    /^conv2d_\d+$/,
    ([x, w, b], p) =>
      F.conv2d(x!, w!, b, { stride: p.stride, padding: p.padding, dilation: p.dilation, groups: p.groups }),
  ],
  [
    /^conv_transpose2d_\d+$/,
    ([x, w, b], p) =>
      F.conv_transpose2d(x!, w!, b, {
        stride: p.stride,
        padding: p.padding,
        outputPadding: p.output_padding,
      }),
  ],
  [/^group_norm_\d+$/, ([x, w, b], p) => F.group_norm(x!, p.num_groups, w, b, p.eps)],
  [/^layer_norm_\d+$/, ([x, w, b], p) => F.layer_norm(x!, p.normalized_shape, w, b, p.eps)],
  [
    /^attention_\d+$/,
    ([q, k, v], p) => {
      assert.equal(q!.shape[q!.ndim - 1], p.d);
      return F.scaled_dot_product_attention(q!, k!, v!);
    },
  ],
  [/^matmul_broadcast_\d+$/, ([a, b]) => F.matmul(a!, b!)],
  [/^gelu_(erf|tanh)$/, ([x], p) => F.gelu(x!, p.approximate)],
  [/^silu$/, ([x]) => F.silu(x!)],
  [/^interpolate_nearest_/, ([x], p) => F.interpolate(x!, { size: p.size, scaleFactor: p.scale_factor })],
  [/^avg_pool2d_\d+$/, ([x], p) => F.avg_pool2d(x!, p.kernel, p.stride)],
  [/^softmax_last$/, ([x], p) => F.softmax(x!, p.dim)],
  [/^log_softmax_last$/, ([x], p) => F.log_softmax(x!, p.dim)],
];

const dir = fixturesDir();
const cases: OpCase[] = dir ? JSON.parse(readFileSync(join(dir, "ops", "index.json"), "utf8")).ops : [];
const tensors = dir ? parseSafetensors(readFileSync(join(dir, "ops", "ops.safetensors"))).tensors : new Map();

function load(name: string): Tensor {
  const t = tensors.get(name);
  assert.ok(t, `ops.safetensors has no tensor ${name}`);
  return t as Tensor;
}

describe("PyTorch op fixtures", { skip: skipWithoutFixtures() }, () => {
  it("every case in index.json has a runner", () => {
    assert.ok(cases.length >= 21, `expected the 21+ cases of index.json, found ${cases.length}`);
    const missing = cases.filter((c) => !RUNNERS.some(([re]) => re.test(c.name))).map((c) => c.name);
    assert.deepEqual(missing, []);
  });

  for (const c of cases) {
    it(`${c.name}: forward and input gradients`, () => {
      const run = RUNNERS.find(([re]) => re.test(c.name))?.[1];
      assert.ok(run, `no runner for ${c.name}`);
      const want = load(`${c.name}.out`);
      // without grad (fused kernels where they exist)
      const plain = noGrad(() =>
        run(
          c.inputs.map((k) => load(`${c.name}.${k}`)),
          c.params,
        ),
      );
      assert.deepEqual(plain.shape, want.shape);
      assertClose(plain.toFloat32Array(), want.toFloat32Array(), TOLERANCE, `${c.name} forward (no grad)`);
      // with grad
      const inputs = c.inputs.map((k) => load(`${c.name}.${k}`).detach().requiresGrad_());
      const out = run(inputs, c.params);
      assertClose(out.toFloat32Array(), want.toFloat32Array(), TOLERANCE, `${c.name} forward`);
      out
        .mul(load(`${c.name}.w_out`))
        .sum()
        .backward();
      c.inputs.forEach((k, i) => {
        const g = inputs[i]!.grad;
        assert.ok(g, `${c.name}: no gradient for ${k}`);
        const wantGrad = load(`${c.name}.${k.replace(/^in/, "grad")}`);
        assert.deepEqual(g.shape, wantGrad.shape);
        assertClose(g.toFloat32Array(), wantGrad.toFloat32Array(), TOLERANCE, `${c.name} d/d${k}`);
      });
    });
  }
});

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { F, noGrad, ShapeError, type Tensor, tensor } from "../../src/index.js";
import { assertAllClose, gradcheck, randomTensor } from "../helpers.js";

/** sum(a * b) as a number. */
function dot(a: Tensor, b: Tensor): number {
  return Number(a.mul(b).sum().item());
}

describe("conv2d", () => {
  it("matches a hand-computed 2x2 convolution with bias, padding and stride", () => {
    const x = tensor([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 1, 3, 3]);
    const w = tensor([1, 0, 0, -1], [1, 1, 2, 2]);
    // out[i, j] = x[i, j] - x[i+1, j+1] + 10
    assert.deepEqual(F.conv2d(x, w, tensor([10])).tolist(), [
      [
        [
          [6, 6],
          [6, 6],
        ],
      ],
    ]);
    // padding 1, stride 2: output positions (0,0), (0,2), (2,0), (2,2) of the padded 4x4 result
    // padded result r[i][j] = xp[i][j] - xp[i+1][j+1] with xp = x zero-padded by 1
    assert.deepEqual(F.conv2d(x, w, null, { padding: 1, stride: 2 }).tolist(), [
      [
        [
          [-1, -3],
          [-7, -4],
        ],
      ],
    ]);
  });

  it("accepts an unbatched [C, H, W] input", () => {
    const x = randomTensor([2, 5, 4], 1);
    const w = randomTensor([3, 2, 3, 3], 2);
    const y = F.conv2d(x, w, null, { padding: 1 });
    assert.deepEqual(y.shape, [3, 5, 4]);
    assertAllClose(
      y.toFloat32Array(),
      F.conv2d(x.unsqueeze(0), w, null, { padding: 1 }).toFloat32Array(),
      0,
      0,
    );
  });

  it('padding "same" equals explicit (asymmetric for even kernels) zero padding, "valid" none', () => {
    const x = randomTensor([1, 2, 6, 5], 3);
    for (const [k, dil] of [
      [[2, 3], 1],
      [[3, 4], 2],
    ] as const) {
      const w = randomTensor([3, 2, k[0], k[1]], 4);
      const th = dil * (k[0] - 1);
      const tw = dil * (k[1] - 1);
      const manual = F.conv2d(
        F.pad(x, [Math.floor(tw / 2), Math.ceil(tw / 2), Math.floor(th / 2), Math.ceil(th / 2)]),
        w,
        null,
        { dilation: dil },
      );
      const same = F.conv2d(x, w, null, { padding: "same", dilation: dil });
      assert.deepEqual(same.shape, [1, 3, 6, 5]);
      assertAllClose(same.toFloat32Array(), manual.toFloat32Array(), 1e-6, 1e-5, `same k=${k}`);
    }
    const w = randomTensor([3, 2, 3, 3], 5);
    assert.deepEqual(F.conv2d(x, w, null, { padding: "valid" }).shape, [1, 3, 4, 3]);
    gradcheck((a, b) => F.conv2d(a, b, null, { padding: "same" }), [x, randomTensor([2, 2, 2, 2], 6)]);
  });

  it("gradients: odd sizes with bias", () => {
    gradcheck(
      (x, w, b) => F.conv2d(x, w, b, { padding: 1 }),
      [randomTensor([2, 3, 5, 7], 10), randomTensor([4, 3, 3, 2], 11), randomTensor([4], 12)],
    );
  });

  it("gradients: stride 2, asymmetric padding, odd input", () => {
    gradcheck(
      (x, w, b) => F.conv2d(x, w, b, { stride: 2, padding: [1, 0] }),
      [randomTensor([1, 2, 7, 6], 13), randomTensor([3, 2, 3, 3], 14), randomTensor([3], 15)],
    );
  });

  it("gradients: dilation 2 and stride [2, 1]", () => {
    gradcheck(
      (x, w) => F.conv2d(x, w, null, { dilation: 2, stride: [2, 1], padding: 2 }),
      [randomTensor([1, 2, 7, 8], 16), randomTensor([2, 2, 3, 3], 17)],
    );
  });

  it("gradients: groups (grouped and depthwise)", () => {
    gradcheck(
      (x, w, b) => F.conv2d(x, w, b, { groups: 2, padding: 1 }),
      [randomTensor([2, 4, 5, 5], 18), randomTensor([6, 2, 3, 3], 19), randomTensor([6], 20)],
    );
    gradcheck(
      (x, w) => F.conv2d(x, w, null, { groups: 3, stride: 2 }),
      [randomTensor([1, 3, 6, 5], 21), randomTensor([3, 1, 2, 2], 22)],
    );
  });

  it("gradients: non-contiguous input and weight", () => {
    const x = randomTensor([2, 5, 6, 3], 23).permute(0, 3, 1, 2); // [2, 3, 5, 6]
    const w = randomTensor([3, 3, 3, 4], 24).transpose(0, 1); // [3, 3, 3, 4] with swapped strides
    assert.equal(x.isContiguous(), false);
    assert.equal(w.isContiguous(), false);
    gradcheck((a, b) => F.conv2d(a, b, null, { padding: 1 }), [x, w]);
  });

  it("adds a residual: exactly conv + residual, inside the kernel or (strided, broadcast, cropped) after it", () => {
    const x = randomTensor([2, 32, 20, 20], 40); // a Winograd-sized 3x3
    const w = randomTensor([32, 32, 3, 3], 41);
    const b = randomTensor([32], 42);
    noGrad(() => {
      for (const [opts, r] of [
        [{ padding: 1 }, randomTensor([2, 32, 20, 20], 43)],
        [{ padding: 1 }, randomTensor([2, 32, 20, 20], 44).transpose(2, 3)],
        [{ padding: 1 }, randomTensor([32, 1, 1], 45)],
        [{ stride: 2, padding: 1 }, randomTensor([2, 32, 10, 10], 46)],
      ] as const) {
        const want = F.conv2d(x, w, b, opts).add(r).toFloat32Array();
        assert.deepEqual(F.conv2d(x, w, b, { ...opts, residual: r }).toFloat32Array(), want);
      }
      // "same" with an even kernel crops its output; an unbatched input
      const w2 = randomTensor([4, 32, 2, 2], 47);
      const r2 = randomTensor([2, 4, 20, 20], 48);
      assert.deepEqual(
        F.conv2d(x, w2, null, { padding: "same", residual: r2 }).toFloat32Array(),
        F.conv2d(x, w2, null, { padding: "same" }).add(r2).toFloat32Array(),
      );
      const x3 = randomTensor([32, 6, 6], 49);
      const r3 = randomTensor([32, 6, 6], 50);
      assert.deepEqual(
        F.conv2d(x3, w, b, { padding: 1, residual: r3 }).toFloat32Array(),
        F.conv2d(x3, w, b, { padding: 1 }).add(r3).toFloat32Array(),
      );
    });
    assert.throws(
      () => noGrad(() => F.conv2d(x, w, b, { padding: 1, residual: randomTensor([2, 16, 20, 20], 54) })),
      /conv2d: the residual \[2, 16, 20, 20\] does not broadcast to the output \[2, 32, 20, 20\]/,
    );
    // with gradients to record: a separate add, the residual gets its gradient
    gradcheck(
      (xi, wi, ri) => F.conv2d(xi, wi, null, { padding: 1, residual: ri }),
      [randomTensor([1, 2, 4, 5], 51), randomTensor([3, 2, 3, 3], 52), randomTensor([1, 3, 4, 5], 53)],
    );
  });

  it("rejects mismatched shapes with a ShapeError", () => {
    const x = randomTensor([1, 4, 5, 5], 25);
    assert.throws(() => F.conv2d(x, randomTensor([2, 3, 3, 3], 26)), ShapeError);
    assert.throws(() => F.conv2d(x, randomTensor([2, 2, 3, 3], 27), null, { groups: 3 }), ShapeError);
    assert.throws(() => F.conv2d(x, randomTensor([2, 4, 7, 7], 28)), ShapeError);
    assert.throws(() => F.conv2d(x, randomTensor([2, 4, 3, 3], 29), randomTensor([3], 30)), ShapeError);
  });
});

describe("conv_transpose2d", () => {
  it("is the adjoint of conv2d: <conv2d(x, w), y> = <x, conv_transpose2d(y, w)>", () => {
    const cases = [
      { stride: 1, padding: 0, dilation: 1, groups: 1, hw: [5, 6] },
      { stride: 2, padding: 1, dilation: 1, groups: 2, hw: [7, 8] },
      {
        stride: [2, 3] as [number, number],
        padding: [1, 2] as [number, number],
        dilation: 2,
        groups: 1,
        hw: [9, 10],
      },
    ];
    for (const c of cases) {
      const x = randomTensor([2, 4, c.hw[0]!, c.hw[1]!], 31);
      const w = randomTensor([6, 4 / c.groups, 3, 3], 32);
      const opts = { stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups };
      const y0 = F.conv2d(x, w, null, opts);
      const y = randomTensor([...y0.shape], 33);
      // output padding reproduces x's size exactly when the strided conv dropped trailing rows/columns
      const sh = typeof c.stride === "number" ? [c.stride, c.stride] : c.stride;
      const back0 = F.conv_transpose2d(y, w, null, opts);
      const outputPadding = [0, 1].map((i) => c.hw[i]! - back0.shape[2 + i]!) as [number, number];
      assert.ok(outputPadding.every((p, i) => p >= 0 && p < sh[i]!));
      const back = F.conv_transpose2d(y, w, null, { ...opts, outputPadding });
      assert.deepEqual(back.shape, x.shape);
      const lhs = dot(y0, y);
      const rhs = dot(x, back);
      assert.ok(Math.abs(lhs - rhs) <= 1e-4 * Math.max(1, Math.abs(lhs)), `${lhs} vs ${rhs}`);
    }
  });

  it("matches a hand-computed stride-2 upsampling", () => {
    const x = tensor([1, 2, 3, 4], [1, 1, 2, 2]);
    const w = tensor([1, 10, 100, 1000], [1, 1, 2, 2]);
    // each input value stamps the 2x2 kernel into its own block
    assert.deepEqual(F.conv_transpose2d(x, w, tensor([0.5]), { stride: 2 }).tolist(), [
      [
        [
          [1.5, 10.5, 2.5, 20.5],
          [100.5, 1000.5, 200.5, 2000.5],
          [3.5, 30.5, 4.5, 40.5],
          [300.5, 3000.5, 400.5, 4000.5],
        ],
      ],
    ]);
  });

  it("gradients: stride 2, padding, output padding, bias", () => {
    gradcheck(
      (x, w, b) => F.conv_transpose2d(x, w, b, { stride: 2, padding: 1, outputPadding: 1 }),
      [randomTensor([2, 3, 3, 4], 40), randomTensor([3, 2, 3, 3], 41), randomTensor([2], 42)],
    );
  });

  it("gradients: groups, dilation 2, non-contiguous input, unbatched", () => {
    const x = randomTensor([4, 5, 4], 43).permute(2, 0, 1); // [4, 4, 5]
    gradcheck(
      (a, w) => F.conv_transpose2d(a, w, null, { groups: 2, dilation: 2, stride: [1, 2] }),
      [x, randomTensor([4, 3, 2, 3], 44)],
    );
  });

  it("rejects a too large output padding", () => {
    const x = randomTensor([1, 2, 3, 3], 45);
    assert.throws(
      () => F.conv_transpose2d(x, randomTensor([2, 2, 3, 3], 46), null, { outputPadding: 1 }),
      /outputPadding/,
    );
  });

  it("gives the same values with and without grad mode", () => {
    const x = randomTensor([1, 2, 4, 4], 47);
    const w = randomTensor([2, 3, 3, 3], 48).requiresGrad_();
    const a = F.conv_transpose2d(x, w, null, { stride: 2 });
    const b = noGrad(() => F.conv_transpose2d(x, w, null, { stride: 2 }));
    assert.equal(a.requiresGrad, true);
    assert.equal(b.requiresGrad, false);
    assertAllClose(a.toFloat32Array(), b.toFloat32Array(), 0, 0);
  });
});

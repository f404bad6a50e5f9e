import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ArgumentError, F, tensor } from "../../src/index.js";
import { assertAllClose, gradcheck, randomTensor } from "../helpers.js";

describe("interpolate (nearest)", () => {
  it("doubles with scaleFactor 2 by repeating pixels", () => {
    const x = tensor([1, 2, 3, 4], [1, 1, 2, 2]);
    assert.deepEqual(F.interpolate(x, { scaleFactor: 2 }).tolist(), [
      [
        [
          [1, 1, 2, 2],
          [1, 1, 2, 2],
          [3, 3, 4, 4],
          [3, 3, 4, 4],
        ],
      ],
    ]);
  });

  it("resizes to a size with PyTorch's floor(dst * in / out) rule", () => {
    // rows 5 -> 3: src = floor(i * 5/3) = 0, 1, 3; cols 2 -> 5: floor(j * 0.4) = 0, 0, 0, 1, 1
    const x = tensor([0, 1, 10, 11, 20, 21, 30, 31, 40, 41], [1, 1, 5, 2]);
    assert.deepEqual(F.interpolate(x, { size: [3, 5] }).tolist(), [
      [
        [
          [0, 0, 0, 1, 1],
          [10, 10, 10, 11, 11],
          [30, 30, 30, 31, 31],
        ],
      ],
    ]);
  });

  it("gradients: upsampling and downsampling, non-contiguous input", () => {
    gradcheck((x) => F.interpolate(x, { scaleFactor: [2, 3] }), [randomTensor([1, 2, 3, 2], 1)]);
    gradcheck((x) => F.interpolate(x, { size: [4, 3] }), [randomTensor([2, 7, 5, 1], 2).permute(0, 3, 1, 2)]);
    gradcheck((x) => F.interpolate(x, { scaleFactor: 0.5 }), [randomTensor([1, 1, 6, 4], 3)]);
  });

  it("rejects unsupported modes and ambiguous sizes", () => {
    const x = randomTensor([1, 1, 5, 5], 4);
    assert.throws(() => F.interpolate(x, {}), ArgumentError);
    assert.throws(() => F.interpolate(x, { size: 3, scaleFactor: 2 }), ArgumentError);
    // PyTorch samples 5 -> 7 with 1/1.5, which differs from size=7's 5/7
    assert.throws(() => F.interpolate(x, { scaleFactor: 1.5 }), /pass size/);
    assert.throws(() => F.interpolate(x, { size: 3, mode: "bilinear" as "nearest" }), ArgumentError);
  });
});

describe("avg_pool2d", () => {
  it("averages 2x2 blocks (stride defaults to the kernel size, trailing rows dropped)", () => {
    const x = tensor([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15], [1, 1, 3, 5]);
    assert.deepEqual(F.avg_pool2d(x, 2).tolist(), [[[[4, 6]]]]);
  });

  it("counts zero padding in the average (count_include_pad)", () => {
    const x = tensor([4, 8, 12, 16], [1, 2, 2]); // unbatched [C=1, 2, 2]
    // padding 1, kernel 2, stride 2: each window holds one real value and three zeros
    assertAllClose(F.avg_pool2d(x, 2, 2, 1).toFloat32Array(), [1, 2, 3, 4], 0, 1e-7);
    // kernel 3, stride 1, padding 1: every window covers the 2x2 input; sum 40 / 9
    assertAllClose(F.avg_pool2d(x, 3, 1, 1).toFloat32Array(), [40 / 9, 40 / 9, 40 / 9, 40 / 9], 0, 1e-6);
  });

  it("gradients: odd sizes, stride differing from kernel, padding, non-contiguous", () => {
    gradcheck((x) => F.avg_pool2d(x, [3, 2], [2, 1], [1, 1]), [randomTensor([2, 3, 7, 5], 5)]);
    gradcheck((x) => F.avg_pool2d(x, 2), [randomTensor([5, 7, 3, 1], 6).permute(3, 2, 0, 1)]);
  });

  it("rejects padding above half the kernel", () => {
    assert.throws(() => F.avg_pool2d(randomTensor([1, 1, 4, 4], 7), 2, 1, 2), ArgumentError);
  });
});

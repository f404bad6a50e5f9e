// The device contract on the strict test device: opaque buffers, no synchronous reads, counted readbacks, ops that
// dispatch by device and give the CPU's answers, clear errors for mixed devices and disposed tensors.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { memoryReport, resetStrictCounters, strictCounters } from "../../src/backend/index.js";
import * as F from "../../src/ops/index.js";
import { arange, tensor, zeros } from "../../src/tensor/create.js";
import { DeviceError } from "../../src/tensor/device.js";
import type { Tensor } from "../../src/tensor/tensor.js";
import { assertAllClose, randomTensor } from "../helpers.js";

const strict = (t: Tensor): Tensor => F.toDevice(t, "strict");

/** Runs `op` on CPU inputs and on the same inputs moved to the strict device; the results must agree. */
async function sameOnStrict(op: (...xs: Tensor[]) => Tensor, inputs: Tensor[], tol = 1e-6): Promise<void> {
  const want = op(...inputs);
  const got = op(...inputs.map(strict));
  assert.equal(got.device, "strict");
  assert.deepEqual(got.shape, want.shape);
  assert.equal(got.dtype, want.dtype);
  assertAllClose(await got.toFloat32ArrayAsync(), want.toFloat32Array(), tol, tol);
}

describe("strict device", () => {
  it("holds data the CPU cannot read synchronously; await data() reads it and is counted", async () => {
    resetStrictCounters();
    const t = strict(tensor([1, 2, 3, 4], [2, 2]));
    assert.equal(t.device, "strict");
    assert.equal(strictCounters().uploads, 1);
    assert.throws(
      () => t.dataSync(),
      (e: Error) => e instanceof DeviceError && /await t\.data\(\)/.test(e.message),
    );
    assert.throws(() => F.sum(t).item(), DeviceError);
    assert.deepEqual(Array.from((await t.data()) as Float32Array), [1, 2, 3, 4]);
    assert.deepEqual(await t.tolistAsync(), [
      [1, 2],
      [3, 4],
    ]);
    // a strided view reads the elements it shows
    assert.deepEqual(Array.from(await F.transpose(t, 0, 1).toFloat32ArrayAsync()), [1, 3, 2, 4]);
    assert.equal(strictCounters().readbacks, 3);
    assert.match(String(t), /device strict/);
  });

  it("runs elementwise, reduction, shape and dtype ops with the CPU's results", async () => {
    const a = randomTensor([3, 4, 5], 1);
    const b = randomTensor([4, 1], 2);
    await sameOnStrict((x, y) => F.add(F.mul(x, y), 0.5), [a, b]);
    await sameOnStrict((x) => F.gelu(F.sigmoid(x)), [a]);
    await sameOnStrict((x) => F.sum(x, [0, 2]), [a]);
    await sameOnStrict((x) => F.mean(x, 1, { keepdim: true }), [a]);
    await sameOnStrict((x) => F.variance(x, [1, 2]), [a]);
    await sameOnStrict((x) => F.max(x, -1), [a]);
    await sameOnStrict((x) => F.argmax(x, 1), [a]);
    await sameOnStrict((x, y) => F.where(F.gt(x, 0), x, y), [a, b]);
    await sameOnStrict((x) => F.cat([x, F.mul(x, 2)], 1), [a]);
    await sameOnStrict((x) => F.pad(x, [1, 2], 3), [a]);
    await sameOnStrict((x) => F.to(F.to(x, "float16"), "float32"), [a]);
    await sameOnStrict((x) => F.softmax(x, 1), [a]);
    await sameOnStrict((x) => F.contiguous(F.permute(x, [2, 0, 1])), [a]);
  });

  it("runs matmul, linear, conv2d, norms, attention and interpolation with the CPU's results", async () => {
    const x = randomTensor([2, 4, 6, 6], 3);
    const w = randomTensor([5, 4, 3, 3], 4);
    const bias = randomTensor([5], 5);
    await sameOnStrict((p, q, r) => F.conv2d(p, q, r, { padding: 1 }), [x, w, bias], 1e-5);
    await sameOnStrict(
      (p, q) => F.conv_transpose2d(p, q, null, { stride: 2 }),
      [x, randomTensor([4, 3, 2, 2], 6)],
      1e-5,
    );
    await sameOnStrict((p) => F.group_norm(p, 2, null, null), [x], 1e-5);
    await sameOnStrict((p) => F.interpolate(p, { scaleFactor: 2 }), [x]);
    const tokens = randomTensor([2, 7, 8], 7);
    await sameOnStrict((t, wt) => F.linear(t, wt, null, t), [tokens, randomTensor([8, 8], 8)], 1e-5);
    await sameOnStrict((t) => F.layer_norm(t, [8]), [tokens], 1e-5);
    await sameOnStrict(
      (q, k, v) => F.scaled_dot_product_attention(q, k, v, { isCausal: true }),
      [tokens, randomTensor([2, 7, 8], 9), randomTensor([2, 7, 8], 10)],
      1e-5,
    );
    await sameOnStrict(
      (p, q) => F.matmul(p, q),
      [randomTensor([3, 2, 5], 11), randomTensor([5, 4], 12)],
      1e-5,
    );
  });

  it("computes gradients on the device", async () => {
    const w = strict(randomTensor([4, 3], 13)).requiresGrad_();
    const x = strict(randomTensor([5, 4], 14));
    F.mean(F.square(F.matmul(x, w))).backward();
    assert.equal(w.grad?.device, "strict");
    const wc = randomTensor([4, 3], 13).requiresGrad_();
    F.mean(F.square(F.matmul(randomTensor([5, 4], 14), wc))).backward();
    assertAllClose(await w.grad!.toFloat32ArrayAsync(), wc.grad!.toFloat32Array(), 1e-6, 1e-6);
  });

  it("indexes with ids on the CPU or on the device", async () => {
    const table = randomTensor([6, 3], 15);
    const ids = tensor([4, 0, 4], [3], { dtype: "int64" });
    const want = F.embedding(ids, table).toFloat32Array();
    assertAllClose(await F.embedding(ids, strict(table)).toFloat32ArrayAsync(), want, 0, 0);
    assertAllClose(await F.embedding(strict(ids), strict(table)).toFloat32ArrayAsync(), want, 0, 0);
    const g = F.gather(table, 1, tensor([[0], [2], [1], [0], [2], [1]], [6, 1], { dtype: "int64" }));
    const gs = F.gather(
      strict(table),
      1,
      strict(tensor([[0], [2], [1], [0], [2], [1]], [6, 1], { dtype: "int64" })),
    );
    assertAllClose(await gs.toFloat32ArrayAsync(), g.toFloat32Array(), 0, 0);
    // a device index out of range is caught by the kernel, not read as garbage
    await assert.rejects(
      async () => F.embedding(strict(tensor([7], [1], { dtype: "int64" })), strict(table)),
      /out of range/,
    );
    // cross-entropy with class ids on the device
    const logits = randomTensor([3, 6], 16);
    const target = tensor([5, 0, 2], [3], { dtype: "int64" });
    assertAllClose(
      await F.cross_entropy(strict(logits), strict(target)).toFloat32ArrayAsync(),
      F.cross_entropy(logits, target).toFloat32Array(),
      1e-6,
      1e-6,
    );
  });

  it("refuses inputs on two devices, naming both; CPU scalars join any device", () => {
    const s = strict(zeros([2, 2]));
    assert.throws(
      () => F.add(s, zeros([2, 2])),
      (e: Error) => e instanceof DeviceError && /add: .*strict and cpu|add: .*cpu and strict/.test(e.message),
    );
    assert.equal(F.add(s, tensor(1)).device, "strict");
    assert.equal(F.mul(s, 2).device, "strict");
    assert.throws(() => F.to(s, "nowhere" as "cpu"), /neither a dtype .* nor a registered device/);
  });

  it("moves tensors back with toDeviceAsync; a synchronous move off the device explains itself", async () => {
    const s = strict(arange(0, 4));
    assert.throws(() => F.toDevice(s, "cpu"), /await toDeviceAsync\(t, "cpu"\)/);
    const back = await F.toDeviceAsync(s, "cpu");
    assert.deepEqual(Array.from(back.toFloat32Array()), [0, 1, 2, 3]);
  });

  it("frees a disposed tensor's buffer, counts it in the memory report, and refuses later use", () => {
    const before = memoryReport().find((r) => r.device === "strict")!.bytesInUse!;
    const t = strict(zeros([256]));
    assert.equal(memoryReport().find((r) => r.device === "strict")!.bytesInUse!, before + 1024);
    const view = F.reshape(t, [16, 16]);
    t.dispose();
    // the view still holds the storage
    assert.equal(memoryReport().find((r) => r.device === "strict")!.bytesInUse!, before + 1024);
    view.dispose();
    assert.equal(memoryReport().find((r) => r.device === "strict")!.bytesInUse!, before);
    assert.throws(() => F.add(view, 1), /disposed/);
  });
});

describe("strict device: gradients, optimizers and moves", () => {
  it("a gradient shared by two leaves survives accumulation into both", async () => {
    const a = strict(tensor([1, 2], [2])).requiresGrad_(true);
    const b = strict(tensor([3, 4], [2])).requiresGrad_(true);
    for (let i = 0; i < 2; i++) F.sum(F.add(a, b)).backward();
    assert.deepEqual(Array.from(await a.grad!.toFloat32ArrayAsync()), [2, 2]);
    assert.deepEqual(Array.from(await b.grad!.toFloat32ArrayAsync()), [2, 2]);
  });

  it("an optimizer made before the model moved says so instead of training nothing", async () => {
    const { Linear } = await import("../../src/nn/index.js");
    const { AdamW } = await import("../../src/nn/optim/index.js");
    const layer = new Linear(2, 2);
    const opt = new AdamW(layer.parameters(), { lr: 0.1 });
    layer.toDevice("strict");
    F.sum(layer.call(strict(tensor([1, 2], [1, 2])))).backward();
    assert.throws(
      () => opt.step(),
      (e: unknown) => e instanceof DeviceError && /create the optimizer after/.test((e as Error).message),
    );
  });
});

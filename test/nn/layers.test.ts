import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ArgumentError, F, Generator, nn, rand, randn, tensor, zeros } from "../../src/index.js";
import { assertAllClose, randomTensor } from "../helpers.js";

const { Conv2d, Embedding, GELU, GroupNorm, Identity, LayerNorm, Linear, ReLU, Sequential, SiLU, init } = nn;

const seeded = (s: number) => new Generator().manualSeed(s);
const values = (t: { toFloat32Array(): Float32Array }) => Array.from(t.toFloat32Array());

/** What PyTorch's uniform_(-b, b) gives for draws u of torch.rand: u * (2b) - b in float32. */
function uniformFrom(u: Float32Array, bound: number): number[] {
  const lo = Math.fround(-bound);
  const range = Math.fround(Math.fround(bound) - lo);
  return Array.from(u, (x) => Math.fround(Math.fround(x * range) + lo));
}

describe("Linear", () => {
  it("initialises like torch.manual_seed(0); nn.Linear(2, 1)", () => {
    // PyTorch prints weight [[-0.0053, 0.3793]], bias [-0.5820]
    const lin = new Linear(2, 1, { generator: seeded(0) });
    assertAllClose(values(lin.weight), [-0.0053, 0.3793], 5e-5, 0, "weight");
    assertAllClose(values(lin.bias!), [-0.582], 5e-5, 0, "bias");
  });

  it("draws weight then bias from U(±1/sqrt(in)) in PyTorch's order", () => {
    const lin = new Linear(5, 3, { generator: seeded(7) });
    const u = rand([15 + 3], { generator: seeded(7) }).toFloat32Array();
    const bound = 1 / Math.sqrt(5);
    assert.deepEqual(values(lin.weight), uniformFrom(u.subarray(0, 15), bound));
    assert.deepEqual(values(lin.bias!), uniformFrom(u.subarray(15), bound));
    assert.deepEqual(lin.weight.shape, [3, 5]);
  });

  it("computes x Wᵀ + b; options bias, skipInit and dtype", () => {
    const lin = new Linear(3, 2, { generator: seeded(1) });
    const x = randomTensor([4, 3], 3);
    assertAllClose(values(lin.call(x)), values(F.linear(x, lin.weight, lin.bias)), 0, 0);
    assert.equal(new Linear(3, 2, { bias: false }).bias, null);
    assert.deepEqual(values(new Linear(2, 2, { skipInit: true }).weight), [0, 0, 0, 0]);
    const half = new Linear(3, 2, { dtype: "float16", generator: seeded(1) });
    assert.equal(half.weight.dtype, "float16");
    assertAllClose(values(half.weight), values(lin.weight), 1e-3, 1e-3);
    assert.throws(() => new Linear(0, 2), ArgumentError);
  });
});

describe("Conv2d", () => {
  it("initialises from U(±1/sqrt(fan_in)) with fan_in = in/groups·kh·kw", () => {
    const conv = new Conv2d(4, 6, [3, 2], { groups: 2, generator: seeded(3) });
    assert.deepEqual(conv.weight.shape, [6, 2, 3, 2]);
    const n = 6 * 2 * 3 * 2;
    const u = rand([n + 6], { generator: seeded(3) }).toFloat32Array();
    const bound = 1 / Math.sqrt(2 * 3 * 2);
    assert.deepEqual(values(conv.weight), uniformFrom(u.subarray(0, n), bound));
    assert.deepEqual(values(conv.bias!), uniformFrom(u.subarray(n), bound));
  });

  it("forwards stride, padding, dilation and groups to F.conv2d", () => {
    const conv = new Conv2d(4, 2, 3, {
      stride: [2, 1],
      padding: [1, 2],
      dilation: 2,
      groups: 2,
      generator: seeded(4),
    });
    const x = randomTensor([2, 4, 7, 6], 5);
    const want = F.conv2d(x, conv.weight, conv.bias, {
      stride: [2, 1],
      padding: [1, 2],
      dilation: 2,
      groups: 2,
    });
    const got = conv.call(x);
    assert.deepEqual(got.shape, want.shape);
    assertAllClose(values(got), values(want), 0, 0);
    const same = new Conv2d(2, 3, 3, { padding: "same", bias: false, generator: seeded(4) });
    assert.deepEqual(same.call(randomTensor([1, 2, 5, 4], 1)).shape, [1, 3, 5, 4]);
    assert.throws(() => new Conv2d(3, 4, 3, { groups: 2 }), /divisible by groups/);
  });
});

describe("normalisation and embedding layers", () => {
  it("GroupNorm starts at weight 1, bias 0 and matches F.group_norm", () => {
    const gn = new GroupNorm(2, 4, { eps: 1e-6 });
    assert.deepEqual(values(gn.weight!), [1, 1, 1, 1]);
    assert.deepEqual(values(gn.bias!), [0, 0, 0, 0]);
    (gn.weight!.dataSync() as Float32Array).set([1, 2, 3, 4]);
    const x = randomTensor([2, 4, 3, 3], 8);
    assertAllClose(values(gn.call(x)), values(F.group_norm(x, 2, gn.weight, gn.bias, 1e-6)), 0, 0);
    assert.equal(new GroupNorm(2, 4, { affine: false }).weight, null);
    assert.throws(() => new GroupNorm(3, 4), /divisible/);
  });

  it("LayerNorm over one or several trailing dims", () => {
    const ln = new LayerNorm(5);
    assert.deepEqual(ln.weight!.shape, [5]);
    const x = randomTensor([3, 5], 2);
    assertAllClose(values(ln.call(x)), values(F.layer_norm(x, [5], null, null)), 1e-6, 0);
    const ln2 = new LayerNorm([2, 5], { bias: false });
    assert.equal(ln2.bias, null);
    assert.deepEqual(ln2.call(randomTensor([4, 2, 5], 1)).shape, [4, 2, 5]);
    assert.deepEqual(new LayerNorm(5, { elementwiseAffine: false }).namedParameters(), []);
  });

  it("Embedding draws N(0, 1) as randn does and zeroes the padding row", () => {
    const emb = new Embedding(6, 3, { generator: seeded(11) });
    assert.deepEqual(values(emb.weight), values(randn([6, 3], { generator: seeded(11) })));
    const padded = new Embedding(4, 2, { paddingIdx: -1, generator: seeded(11) });
    assert.equal(padded.paddingIdx, 3);
    assert.deepEqual(values(padded.weight).slice(6), [0, 0]);
    const ids = tensor([[2, 0]], [1, 2], { dtype: "int64" });
    const out = emb.call(ids);
    assert.deepEqual(out.shape, [1, 2, 3]);
    assert.deepEqual(values(out), [...values(emb.weight).slice(6, 9), ...values(emb.weight).slice(0, 3)]);
  });
});

describe("activations and containers", () => {
  it("SiLU, GELU, ReLU and Identity apply their functions", () => {
    const x = randomTensor([2, 5], 4, -3, 3);
    assert.deepEqual(values(new SiLU().call(x)), values(F.silu(x)));
    assert.deepEqual(values(new ReLU().call(x)), values(F.relu(x)));
    assert.deepEqual(values(new GELU().call(x)), values(F.gelu(x)));
    assert.deepEqual(values(new GELU({ approximate: "tanh" }).call(x)), values(F.gelu(x, "tanh")));
    assert.equal(new Identity().call(x), x);
  });

  it("Sequential chains its children, named 0, 1, ...", () => {
    const seq = new Sequential(
      new Linear(3, 4, { generator: seeded(1) }),
      new ReLU(),
      new Linear(4, 2, { generator: seeded(2) }),
    );
    assert.deepEqual([...seq.stateDict().keys()], ["0.weight", "0.bias", "2.weight", "2.bias"]);
    assert.equal(seq.length, 3);
    const x = randomTensor([5, 3], 6);
    const l0 = seq[0] as nn.Linear;
    const l2 = seq[2] as nn.Linear;
    const want = F.linear(F.relu(F.linear(x, l0.weight, l0.bias)), l2.weight, l2.bias);
    assert.deepEqual(values(seq.call(x)), values(want));
    assert.throws(() => seq.at(3), /out of range/);
  });
});

describe("init", () => {
  it("gains and fans follow torch.nn.init", () => {
    assert.equal(init.calculateGain("relu"), Math.SQRT2);
    assert.equal(init.calculateGain("tanh"), 5 / 3);
    assert.equal(init.calculateGain("leaky_relu", Math.sqrt(5)), Math.sqrt(1 / 3));
    assert.deepEqual(init.fanInAndFanOut([8, 3, 5, 5]), { fanIn: 75, fanOut: 200 });
    assert.throws(() => init.fanInAndFanOut([4]), /at least 2 dims/);
  });

  it("uniform-based initialisers use their PyTorch bounds", () => {
    const shape = [6, 4, 3, 3];
    const u = rand([216], { generator: seeded(2) }).toFloat32Array();
    const k = init.kaimingUniform(zeros(shape), {
      mode: "fan_out",
      nonlinearity: "relu",
      generator: seeded(2),
    });
    assert.deepEqual(values(k), uniformFrom(u, Math.SQRT2 * Math.sqrt(3 / (6 * 9))));
    const xv = init.xavierUniform(zeros(shape), { gain: 2, generator: seeded(2) });
    assert.deepEqual(values(xv), uniformFrom(u, 2 * Math.sqrt(6 / (4 * 9 + 6 * 9))));
  });

  it("normal-based initialisers scale randn draws", () => {
    const z = randn([40], { generator: seeded(5) }).toFloat32Array();
    const t = init.normal(zeros([40]), 2, 3, seeded(5));
    assert.deepEqual(
      values(t),
      Array.from(z, (v) => Math.fround(Math.fround(v * 3) + 2)),
    );
    const kn = init.kaimingNormal(zeros([10, 4]), { generator: seeded(5) });
    assertAllClose(
      values(kn),
      Array.from(z.subarray(0, 40), (v) => (v * Math.SQRT2) / 2),
      1e-6,
      1e-6,
    );
    assert.deepEqual(values(init.constant(zeros([3]), 0.25)), [0.25, 0.25, 0.25]);
    assert.deepEqual(values(init.ones(zeros([2]).half())), [1, 1]);
  });
});

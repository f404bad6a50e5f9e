import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DiffuseError, Generator, nn, type Tensor, tensor, zeros } from "../../src/index.js";
import { assertAllClose } from "../helpers.js";

const { Conv2d, Dropout, GroupNorm, Linear, Module, ModuleList, Parameter, SiLU, StateDictError } = nn;

const gen = () => new Generator().manualSeed(0);

/** A miniature diffusers-style block tree: names must come out as PyTorch's. */
class Resnet extends Module<[Tensor], Tensor> {
  norm1: nn.GroupNorm;
  conv1: nn.Conv2d;
  nonlinearity = new SiLU();
  conv_shortcut: nn.Conv2d | null = null;

  constructor(ch: number, g: Generator) {
    super();
    this.norm1 = new GroupNorm(2, ch);
    this.conv1 = new Conv2d(ch, ch, 3, { padding: 1, generator: g });
  }

  override forward(x: Tensor): Tensor {
    return x.add(this.conv1.call(this.nonlinearity.call(this.norm1.call(x))));
  }
}

class DownBlock extends Module {
  resnets: nn.ModuleList<Resnet>;
  constructor(ch: number, g: Generator) {
    super();
    this.resnets = new ModuleList([new Resnet(ch, g), new Resnet(ch, g)]);
  }
}

class TinyNet extends Module<[Tensor], Tensor> {
  conv_in: nn.Conv2d;
  down_blocks: nn.ModuleList<DownBlock>;
  declare positionIds: Tensor;

  constructor(g = gen()) {
    super();
    this.conv_in = new Conv2d(1, 4, 3, { padding: 1, generator: g });
    this.down_blocks = new ModuleList([new DownBlock(4, g)]);
    this.registerBuffer("positionIds", tensor([0, 1, 2], [3], { dtype: "int32" }));
    this.registerBuffer("cache", zeros([2]), { persistent: false });
  }

  override forward(x: Tensor): Tensor {
    let h = this.conv_in.call(x);
    for (const block of this.down_blocks) for (const r of block.resnets) h = r.call(h);
    return h;
  }
}

const RESNET_KEYS = ["norm1.weight", "norm1.bias", "conv1.weight", "conv1.bias"];
const EXPECTED_KEYS = [
  "positionIds",
  "conv_in.weight",
  "conv_in.bias",
  ...RESNET_KEYS.map((k) => `down_blocks.0.resnets.0.${k}`),
  ...RESNET_KEYS.map((k) => `down_blocks.0.resnets.1.${k}`),
];

describe("Module naming", () => {
  it("names parameters and buffers with PyTorch-style dotted paths", () => {
    const net = new TinyNet();
    // own buffers come before the children's entries, as in PyTorch's state_dict
    assert.deepEqual([...net.stateDict().keys()], EXPECTED_KEYS);
    assert.deepEqual(
      net.namedParameters().map(([n]) => n),
      EXPECTED_KEYS.filter((k) => k !== "positionIds"),
    );
    assert.deepEqual(
      net.namedBuffers().map(([n]) => n),
      ["positionIds", "cache"],
    );
    assert.deepEqual(
      net.namedModules().map(([n]) => n),
      [
        "",
        "conv_in",
        "down_blocks",
        "down_blocks.0",
        "down_blocks.0.resnets",
        "down_blocks.0.resnets.0",
        "down_blocks.0.resnets.0.norm1",
        "down_blocks.0.resnets.0.conv1",
        "down_blocks.0.resnets.0.nonlinearity",
        "down_blocks.0.resnets.1",
        "down_blocks.0.resnets.1.norm1",
        "down_blocks.0.resnets.1.conv1",
        "down_blocks.0.resnets.1.nonlinearity",
      ],
    );
    const sd = net.stateDict();
    assert.deepEqual(sd.get("down_blocks.0.resnets.1.conv1.weight")!.shape, [4, 4, 3, 3]);
    assert.equal(net.numParameters(), 4 * 9 + 4 + 2 * (4 + 4 + 4 * 4 * 9 + 4));
    assert.equal(net.down_blocks.length, 1);
    assert.equal(net.down_blocks.at(-1), net.down_blocks[0]);
  });

  it("runs a typed forward through nested ModuleLists", () => {
    const net = new TinyNet();
    const y = net.call(zeros([1, 1, 5, 5]));
    assert.deepEqual(y.shape, [1, 4, 5, 5]);
  });

  it("lists a shared parameter once but keeps both state-dict names", () => {
    class Tied extends Module {
      a = new Linear(2, 2, { generator: gen() });
      b = new Linear(2, 2, { bias: false, generator: gen() });
      constructor() {
        super();
        this.b.weight = this.a.weight;
      }
    }
    const m = new Tied();
    assert.deepEqual(
      m.namedParameters().map(([n]) => n),
      ["a.weight", "a.bias"],
    );
    assert.deepEqual([...m.stateDict().keys()], ["a.weight", "a.bias", "b.weight"]);
  });

  it("a module without forward says so", () => {
    assert.throws(() => new Module().call(), /does not define forward/);
  });
});

describe("Module state dicts", () => {
  it("round-trips values into the same parameter objects", () => {
    const src = new TinyNet(new Generator().manualSeed(1));
    const dst = new TinyNet(new Generator().manualSeed(2));
    const weightBefore = dst.conv_in.weight;
    const result = dst.loadStateDict(src.stateDict());
    assert.deepEqual(result, { missingKeys: [], unexpectedKeys: [] });
    assert.equal(dst.conv_in.weight, weightBefore, "loaded in place");
    for (const [name, t] of src.stateDict()) {
      assert.deepEqual(
        Array.from(dst.stateDict().get(name)!.toFloat32Array()),
        Array.from(t.toFloat32Array()),
        name,
      );
    }
  });

  it("reports missing, unexpected and mismatched keys together and writes nothing", () => {
    const net = new TinyNet();
    const before = Array.from(net.conv_in.bias!.toFloat32Array());
    const sd = new Map(net.stateDict());
    sd.delete("down_blocks.0.resnets.1.norm1.bias");
    sd.set("down_blocks.0.resnets.0.conv1.weight", zeros([4, 4, 1, 1]));
    sd.set("conv_in.bias", zeros([4]));
    sd.set("mid_block.proj.weight", zeros([3]));
    let err: unknown;
    try {
      net.loadStateDict(sd);
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof StateDictError);
    assert.ok(err instanceof DiffuseError);
    assert.deepEqual(err.missingKeys, ["down_blocks.0.resnets.1.norm1.bias"]);
    assert.deepEqual(err.unexpectedKeys, ["mid_block.proj.weight"]);
    assert.deepEqual(err.mismatchedKeys, [
      { key: "down_blocks.0.resnets.0.conv1.weight", expected: [4, 4, 3, 3], found: [4, 4, 1, 1] },
    ]);
    assert.match(err.message, /1 missing, 1 unexpected, 1 with a different shape/);
    assert.match(err.message, /down_blocks\.0\.resnets\.1\.norm1\.bias/);
    assert.match(err.message, /mid_block\.proj\.weight/);
    assert.match(
      err.message,
      /down_blocks\.0\.resnets\.0\.conv1\.weight: expected \[4, 4, 3, 3\], found \[4, 4, 1, 1\]/,
    );
    assert.deepEqual(Array.from(net.conv_in.bias!.toFloat32Array()), before, "nothing written");
  });

  it("non-strict loads return the missing/unexpected keys; shape mismatches still throw", () => {
    const net = new TinyNet();
    const result = net.loadStateDict(
      { "conv_in.bias": tensor([1, 2, 3, 4]), extra: zeros([1]) },
      { strict: false },
    );
    assert.deepEqual(Array.from(net.conv_in.bias!.toFloat32Array()), [1, 2, 3, 4]);
    assert.equal(result.missingKeys.length, EXPECTED_KEYS.length - 1);
    assert.deepEqual(result.unexpectedKeys, ["extra"]);
    assert.throws(() => net.loadStateDict({ "conv_in.bias": zeros([5]) }, { strict: false }), StateDictError);
  });

  it("lists at most 20 keys of a kind and counts the rest", () => {
    class Wide extends Module {
      layers = new ModuleList(Array.from({ length: 30 }, () => new Linear(1, 1, { skipInit: true })));
    }
    const err = (() => {
      try {
        new Wide().loadStateDict({});
      } catch (e) {
        return e as Error;
      }
    })();
    assert.ok(err instanceof StateDictError);
    assert.equal(err.missingKeys.length, 60);
    assert.match(err.message, /missing keys .*\(60\)/);
    assert.match(err.message, /\.\.\. and 40 more/);
  });

  it("converts dtypes on load, or keeps float16 storage with keepDtype", () => {
    const lin = new Linear(2, 2, { generator: gen() });
    const w16 = tensor([1, 2, 3, 4], [2, 2]).half();
    const b16 = tensor([0.5, -0.5]).half();
    lin.loadStateDict({ weight: w16, bias: b16 });
    assert.equal(lin.weight.dtype, "float32");
    assert.deepEqual(Array.from(lin.weight.toFloat32Array()), [1, 2, 3, 4]);

    const half = new Linear(2, 2, { generator: gen() });
    half.loadStateDict({ weight: w16, bias: b16 }, { keepDtype: true });
    assert.equal(half.weight.dtype, "float16");
    assert.ok(half.weight instanceof Parameter);
    assert.deepEqual(half.stateDict().get("weight")!.shape, [2, 2]);
    // ops widen half weights: [1, 1] @ W^T + b
    assert.deepEqual(Array.from(half.call(tensor([[1, 1]])).toFloat32Array()), [3.5, 6.5]);
    // integer buffers are converted, never kept as float
    const net = new TinyNet();
    const sd = new Map(net.stateDict());
    sd.set("positionIds", tensor([5, 6, 7]));
    net.loadStateDict(sd, { keepDtype: true });
    const ids = net.namedBuffers().find(([n]) => n === "positionIds")![1];
    assert.equal(ids.dtype, "int32");
    assert.deepEqual(Array.from(ids.toFloat32Array()), [5, 6, 7]);
  });
});

describe("Module utilities", () => {
  it("train()/eval() propagate; dropout is the identity in eval mode", () => {
    class WithDropout extends Module<[Tensor], Tensor> {
      inner = new ModuleList([new Dropout(0.5, { generator: gen() })]);
      override forward(x: Tensor): Tensor {
        return this.inner[0]!.call(x) as Tensor;
      }
    }
    const m = new WithDropout();
    assert.ok(m.modules().every((x) => x.training));
    m.eval();
    assert.ok(m.modules().every((x) => !x.training));
    const x = tensor([1, 2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(Array.from(m.call(x).toFloat32Array()), [1, 2, 3, 4, 5, 6, 7, 8]);
    m.train();
    const y = Array.from(m.call(x).toFloat32Array());
    assert.ok(
      y.every((v, i) => v === 0 || v === 2 * (i + 1)),
      `dropout output ${y}`,
    );
    assert.ok(y.some((v) => v === 0));
  });

  it("zeroGrad, apply, numParameters and toDType", () => {
    const net = new TinyNet();
    const x = zeros([1, 1, 3, 3]);
    net.call(x).sum().backward();
    assert.ok(net.parameters().every((p) => p.grad !== null));
    net.zeroGrad();
    assert.ok(net.parameters().every((p) => p.grad === null));

    const visited: string[] = [];
    new Resnet(2, gen()).apply((m) => visited.push(m.constructor.name));
    assert.deepEqual(visited, ["GroupNorm", "Conv2d", "SiLU", "Resnet"]);

    net.conv_in.bias!.requiresGrad_(false);
    assert.equal(net.numParameters({ trainableOnly: true }), net.numParameters() - 4);

    const w = Array.from(net.conv_in.weight.toFloat32Array());
    net.toDType("float16");
    assert.ok(net.parameters().every((p) => p.dtype === "float16" && p instanceof Parameter));
    assert.equal(net.conv_in.bias!.requiresGrad, false, "requiresGrad kept");
    const ids = net.namedBuffers().find(([n]) => n === "positionIds")![1];
    assert.equal(ids.dtype, "int32", "integer buffers untouched");
    const back = Array.from(net.conv_in.weight.toFloat32Array());
    assertAllClose(back, w, 1e-7, 1e-3, "float16 round trip");
  });
});

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  accuracy,
  argmaxRows,
  frechetDistance,
  frechetDistanceOfFeatures,
  type GaussianStats,
  gaussianStats,
  perClassAccuracy,
  sqrtPsd,
  symmetricEigen,
} from "../../src/train/metrics.js";
import { testRng } from "../helpers.js";

function close(got: number, want: number, tol: number, what = ""): void {
  assert.ok(Math.abs(got - want) <= tol, `${what} got ${got}, want ${want} (tol ${tol})`);
}

function matmul(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) out[i * n + j]! += a[i * n + k]! * b[k * n + j]!;
  return out;
}

function transpose(a: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) out[j * n + i] = a[i * n + j]!;
  return out;
}

function diag(values: number[]): Float64Array {
  const n = values.length;
  const out = new Float64Array(n * n);
  values.forEach((v, i) => {
    out[i * n + i] = v;
  });
  return out;
}

/** A random rotation: a product of Givens rotations with angles from a seeded RNG. */
function randomRotation(n: number, seed: number): Float64Array {
  const rng = testRng(seed);
  let r = diag(new Array(n).fill(1));
  for (let p = 0; p < n; p++) {
    for (let q = p + 1; q < n; q++) {
      const phi = 2 * Math.PI * rng();
      const g = diag(new Array(n).fill(1));
      g[p * n + p] = Math.cos(phi);
      g[q * n + q] = Math.cos(phi);
      g[p * n + q] = Math.sin(phi);
      g[q * n + p] = -Math.sin(phi);
      r = matmul(r, g, n);
    }
  }
  return r;
}

function stats(mean: number[], cov: Float64Array): GaussianStats {
  return { dim: mean.length, count: 1000, mean: Float64Array.from(mean), cov };
}

describe("symmetricEigen (Jacobi)", () => {
  it("finds the eigenpairs of [[2, 1], [1, 2]]: 1 and 3 with (1, ∓1)/√2", () => {
    const { values, vectors } = symmetricEigen([2, 1, 1, 2], 2);
    const order = [...values].map((v, i) => [v, i] as const).sort((a, b) => a[0] - b[0]);
    close(order[0]![0], 1, 1e-12);
    close(order[1]![0], 3, 1e-12);
    const i3 = order[1]![1];
    close(Math.abs(vectors[0 * 2 + i3]!), Math.SQRT1_2, 1e-12);
    close(vectors[0 * 2 + i3]! * vectors[1 * 2 + i3]!, 0.5, 1e-12, "same sign for eigenvalue 3");
  });

  it("reconstructs a random 12x12 symmetric matrix with orthonormal eigenvectors and known spectrum", () => {
    const n = 12;
    const want = Array.from({ length: n }, (_, i) => (i - 4) * 0.75);
    const r = randomRotation(n, 7);
    const a = matmul(matmul(r, diag(want), n), transpose(r, n), n);
    const { values, vectors } = symmetricEigen(a, n);
    const sorted = [...values].sort((x, y) => x - y);
    sorted.forEach((v, i) => {
      close(v, want[i]!, 1e-10, `eigenvalue ${i}`);
    });
    const vtv = matmul(transpose(vectors, n), vectors, n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) close(vtv[i * n + j]!, i === j ? 1 : 0, 1e-12);
    const back = matmul(matmul(vectors, diag([...values]), n), transpose(vectors, n), n);
    for (let i = 0; i < n * n; i++) close(back[i]!, a[i]!, 1e-10);
  });

  it("rejects a non-symmetric matrix", () => {
    assert.throws(() => symmetricEigen([1, 2, 3, 4], 2), /not symmetric at \(0, 1\)/);
  });
});

describe("sqrtPsd", () => {
  it("squares back to the matrix", () => {
    const n = 6;
    const r = randomRotation(n, 3);
    const a = matmul(matmul(r, diag([4, 1, 0.25, 9, 2, 0]), n), transpose(r, n), n);
    const root = sqrtPsd(a, n);
    const sq = matmul(root, root, n);
    for (let i = 0; i < n * n; i++) close(sq[i]!, a[i]!, 1e-10);
  });
});

describe("gaussianStats", () => {
  it("gives the mean and the unbiased covariance of hand-made points", () => {
    // points (0,0), (2,0), (0,2), (2,4): mean (1, 1.5)
    const s = gaussianStats([0, 0, 2, 0, 0, 2, 2, 4], 2);
    assert.equal(s.count, 4);
    assert.deepEqual([...s.mean], [1, 1.5]);
    // var x = 4 / 3; var y = (2.25 + 2.25 + 0.25 + 6.25) / 3 = 11 / 3; cov = (1.5 + -1.5 + -0.5 + 2.5) / 3 = 2 / 3
    close(s.cov[0]!, 4 / 3, 1e-15);
    close(s.cov[3]!, 11 / 3, 1e-15);
    close(s.cov[1]!, 2 / 3, 1e-15);
    close(s.cov[2]!, 2 / 3, 1e-15);
  });

  it("rejects fewer than two vectors and ragged data", () => {
    assert.throws(() => gaussianStats([1, 2], 2), /at least 2 vectors/);
    assert.throws(() => gaussianStats([1, 2, 3], 2), /whole number of 2-dim vectors/);
  });
});

describe("frechetDistance", () => {
  it("is 0 for identical feature sets", () => {
    const rng = testRng(11);
    const feats = Float32Array.from({ length: 300 * 8 }, () => rng() * 2 - 1);
    close(frechetDistanceOfFeatures(feats, feats, 8), 0, 1e-9);
  });

  it("diagonal covariances: ‖μ1 − μ2‖² + Σ (√a − √b)²", () => {
    const a = [1, 4, 9, 0.25, 2];
    const b = [4, 1, 1, 1, 2];
    const m1 = [0, 1, 2, 3, 4];
    const m2 = [1, 1, 0, 3, 4.5];
    const want =
      1 + 0 + 4 + 0 + 0.25 + a.reduce((acc, ai, i) => acc + (Math.sqrt(ai) - Math.sqrt(b[i]!)) ** 2, 0);
    close(frechetDistance(stats(m1, diag(a)), stats(m2, diag(b))), want, 1e-10);
  });

  it("is unchanged when both Gaussians are rotated together", () => {
    const n = 7;
    const a = [1, 4, 9, 0.25, 2, 3, 0.5];
    const b = [4, 1, 1, 1, 2, 0.1, 5];
    const want = a.reduce((acc, ai, i) => acc + (Math.sqrt(ai) - Math.sqrt(b[i]!)) ** 2, 0);
    const r = randomRotation(n, 5);
    const rot = (d: number[]) => matmul(matmul(r, diag(d), n), transpose(r, n), n);
    const zero = new Array(n).fill(0);
    close(frechetDistance(stats(zero, rot(a)), stats(zero, rot(b))), want, 1e-9);
  });

  it("2x2 with non-commuting covariances: Tr Σ1 + Tr Σ2 − 2 √(Tr Σ1Σ2 + 2 √(det Σ1 det Σ2))", () => {
    // For 2x2 PSD M with eigenvalues l1, l2: (Tr √M)² = l1 + l2 + 2√(l1 l2) = Tr M + 2√det M, and
    // M = Σ1^½ Σ2 Σ1^½ has Tr M = Tr Σ1Σ2, det M = det Σ1 det Σ2.
    const s1 = Float64Array.from([2, 0, 0, 0.5]);
    const phi = 0.6;
    const [c, s] = [Math.cos(phi), Math.sin(phi)];
    const r = Float64Array.from([c, -s, s, c]);
    const s2 = matmul(matmul(r, Float64Array.from([3, 0, 0, 0.2]), 2), transpose(r, 2), 2);
    const trProd = s1[0]! * s2[0]! + s1[1]! * s2[2]! + s1[2]! * s2[1]! + s1[3]! * s2[3]!;
    const det1 = s1[0]! * s1[3]! - s1[1]! * s1[2]!;
    const det2 = s2[0]! * s2[3]! - s2[1]! * s2[2]!;
    const want = 2.5 + 3.2 - 2 * Math.sqrt(trProd + 2 * Math.sqrt(det1 * det2)) + 0.5 ** 2 + 1;
    close(frechetDistance(stats([0, 0], s1), stats([0.5, 1], s2)), want, 1e-12);
  });

  it("of samples approaches the distance of the Gaussians they are drawn from", () => {
    // x ~ N(0, I) and y = 2x' + 1 (x' ~ N(0, I)) in 3 dims: FD = 3·1² + 3·(1 − 2)² = 6
    const rng = testRng(21);
    const normal = () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
    const n = 20000;
    const x = Float64Array.from({ length: n * 3 }, normal);
    const y = Float64Array.from({ length: n * 3 }, () => 2 * normal() + 1);
    close(frechetDistanceOfFeatures(x, y, 3), 6, 0.15);
  });

  it("rejects Gaussians of different dimension", () => {
    assert.throws(() => frechetDistance(stats([0], diag([1])), stats([0, 0], diag([1, 1]))), /dims differ/);
  });
});

describe("accuracy helpers", () => {
  it("argmaxRows picks each row's largest score (first on ties)", () => {
    assert.deepEqual([...argmaxRows([0.1, 0.7, 0.2, 5, 5, -1, -3, -2, -1], 3)], [1, 0, 2]);
    assert.throws(() => argmaxRows([1, 2, 3], 2), /not rows of 2 classes/);
  });

  it("accuracy and perClassAccuracy count hits", () => {
    const pred = [0, 1, 1, 2, 2, 2];
    const labels = [0, 1, 2, 2, 2, 0];
    assert.equal(accuracy(pred, labels), 4 / 6);
    const per = perClassAccuracy(pred, labels, 4);
    assert.deepEqual(per.slice(0, 3), [0.5, 1, 2 / 3]);
    assert.ok(Number.isNaN(per[3]));
    assert.throws(() => accuracy([1], [1, 2]), /1 predictions but 2 labels/);
    assert.throws(() => perClassAccuracy([0], [7], 4), /label 7 at 0 is outside \[0, 4\)/);
  });
});

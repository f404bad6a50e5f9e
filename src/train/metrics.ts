// Evaluation metrics: the Fréchet distance between Gaussian fits of two feature sets (the FID formula of Heusel et al.
// 2017, on any feature extractor), computed in float64 with a symmetric eigen-decomposition (cyclic Jacobi), and
// classification accuracy helpers.
import { ArgumentError } from "../tensor/errors.js";

/** Mean and covariance of a set of feature vectors (float64). */
export interface GaussianStats {
  /** Feature dimension d. */
  readonly dim: number;
  /** Number of vectors the fit was made from. */
  readonly count: number;
  /** Mean [d]. */
  readonly mean: Float64Array;
  /** Unbiased covariance [d * d] (divided by count - 1, as numpy.cov), row-major and symmetric. */
  readonly cov: Float64Array;
}

/**
 * Fits a Gaussian to `count` feature vectors of length `dim`, stored row-major in `features` (length count * dim).
 * Needs at least two vectors.
 */
export function gaussianStats(features: ArrayLike<number>, dim: number): GaussianStats {
  if (!Number.isInteger(dim) || dim < 1)
    throw new ArgumentError(`gaussianStats: dim must be >= 1, got ${dim}`);
  if (features.length % dim !== 0) {
    throw new ArgumentError(
      `gaussianStats: ${features.length} values are not a whole number of ${dim}-dim vectors`,
    );
  }
  const count = features.length / dim;
  if (count < 2) throw new ArgumentError(`gaussianStats: need at least 2 vectors, got ${count}`);
  const mean = new Float64Array(dim);
  for (let i = 0; i < count; i++) for (let j = 0; j < dim; j++) mean[j]! += features[i * dim + j]!;
  for (let j = 0; j < dim; j++) mean[j]! /= count;
  const cov = new Float64Array(dim * dim);
  const centred = new Float64Array(dim);
  for (let i = 0; i < count; i++) {
    for (let j = 0; j < dim; j++) centred[j] = features[i * dim + j]! - mean[j]!;
    for (let a = 0; a < dim; a++) {
      const ca = centred[a]!;
      if (ca === 0) continue;
      const row = a * dim;
      for (let b = a; b < dim; b++) cov[row + b]! += ca * centred[b]!;
    }
  }
  for (let a = 0; a < dim; a++) {
    for (let b = a; b < dim; b++) {
      const v = cov[a * dim + b]! / (count - 1);
      cov[a * dim + b] = v;
      cov[b * dim + a] = v;
    }
  }
  return { dim, count, mean, cov };
}

/** Eigenvalues and eigenvectors of a symmetric matrix: A = V diag(values) Vᵀ. */
export interface SymmetricEigen {
  /** Eigenvalues, unsorted, in the order of the columns of `vectors`. */
  readonly values: Float64Array;
  /** Orthonormal eigenvectors as the columns of a row-major n x n matrix. */
  readonly vectors: Float64Array;
}

/**
 * Eigen-decomposition of the symmetric n x n matrix `a` (row-major; only read) by the cyclic Jacobi method: each
 * rotation J in the (p, q) plane zeroes a_pq of Jᵀ A J, with tan φ the smaller root of t² + 2θt − 1 = 0,
 * θ = (a_qq − a_pp) / (2 a_pq) (Golub & Van Loan, "Matrix Computations", §8.5). Sweeps repeat until the
 * off-diagonal mass is negligible against the whole matrix.
 */
export function symmetricEigen(a: ArrayLike<number>, n: number): SymmetricEigen {
  if (a.length !== n * n)
    throw new ArgumentError(`symmetricEigen: expected ${n * n} values, got ${a.length}`);
  const m = Float64Array.from(a);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const x = m[i * n + j]!;
      const y = m[j * n + i]!;
      if (Math.abs(x - y) > 1e-9 * Math.max(1, Math.abs(x), Math.abs(y))) {
        throw new ArgumentError(`symmetricEigen: matrix is not symmetric at (${i}, ${j}): ${x} vs ${y}`);
      }
      m[i * n + j] = m[j * n + i] = (x + y) / 2;
    }
  }
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  let total = 0;
  for (let i = 0; i < n * n; i++) total += m[i]! * m[i]!;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += m[p * n + q]! ** 2;
    if (off <= 1e-30 * total || off === 0) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = m[p * n + q]!;
        if (apq === 0) continue;
        const theta = (m[q * n + q]! - m[p * n + p]!) / (2 * apq);
        const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        // A <- A J (columns p, q), then A <- Jᵀ A (rows p, q), V <- V J, with J_pp = J_qq = c, J_pq = s = -J_qp
        for (let k = 0; k < n; k++) {
          const kp = m[k * n + p]!;
          const kq = m[k * n + q]!;
          m[k * n + p] = c * kp - s * kq;
          m[k * n + q] = s * kp + c * kq;
        }
        for (let k = 0; k < n; k++) {
          const pk = m[p * n + k]!;
          const qk = m[q * n + k]!;
          m[p * n + k] = c * pk - s * qk;
          m[q * n + k] = s * pk + c * qk;
        }
        m[p * n + q] = 0;
        m[q * n + p] = 0;
        for (let k = 0; k < n; k++) {
          const kp = v[k * n + p]!;
          const kq = v[k * n + q]!;
          v[k * n + p] = c * kp - s * kq;
          v[k * n + q] = s * kp + c * kq;
        }
      }
    }
  }
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = m[i * n + i]!;
  return { values, vectors: v };
}

/** Row-major n x n product a·b in float64. */
function matmul64(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      const aik = a[i * n + k]!;
      if (aik === 0) continue;
      for (let j = 0; j < n; j++) out[i * n + j]! += aik * b[k * n + j]!;
    }
  }
  return out;
}

/**
 * The principal square root of a symmetric positive semi-definite matrix, V diag(√λ) Vᵀ (eigenvalues below zero,
 * from rounding, are taken as zero).
 */
export function sqrtPsd(a: ArrayLike<number>, n: number): Float64Array {
  const { values, vectors } = symmetricEigen(a, n);
  const out = new Float64Array(n * n);
  for (let k = 0; k < n; k++) {
    const r = Math.sqrt(Math.max(0, values[k]!));
    if (r === 0) continue;
    for (let i = 0; i < n; i++) {
      const vik = vectors[i * n + k]! * r;
      for (let j = 0; j < n; j++) out[i * n + j]! += vik * vectors[j * n + k]!;
    }
  }
  return out;
}

/**
 * Fréchet distance between the Gaussians N(μ1, Σ1) and N(μ2, Σ2) (Dowson & Landau 1982):
 * ‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1^½ Σ2 Σ1^½)^½). The matrix square root is taken of the symmetric PSD
 * Σ1^½ Σ2 Σ1^½, whose trace equals that of (Σ1 Σ2)^½, so only symmetric eigen-decompositions are needed.
 */
export function frechetDistance(s1: GaussianStats, s2: GaussianStats): number {
  if (s1.dim !== s2.dim) throw new ArgumentError(`frechetDistance: dims differ (${s1.dim} vs ${s2.dim})`);
  const n = s1.dim;
  let meanTerm = 0;
  for (let i = 0; i < n; i++) meanTerm += (s1.mean[i]! - s2.mean[i]!) ** 2;
  let trace = 0;
  for (let i = 0; i < n; i++) trace += s1.cov[i * n + i]! + s2.cov[i * n + i]!;
  const root1 = sqrtPsd(s1.cov, n);
  const inner = matmul64(matmul64(root1, s2.cov, n), root1, n);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const avg = (inner[i * n + j]! + inner[j * n + i]!) / 2;
      inner[i * n + j] = avg;
      inner[j * n + i] = avg;
    }
  }
  const { values } = symmetricEigen(inner, n);
  let traceRoot = 0;
  for (const ev of values) traceRoot += Math.sqrt(Math.max(0, ev));
  return Math.max(0, meanTerm + trace - 2 * traceRoot);
}

/** Fréchet distance between Gaussian fits of two row-major feature sets of dimension `dim`. */
export function frechetDistanceOfFeatures(a: ArrayLike<number>, b: ArrayLike<number>, dim: number): number {
  return frechetDistance(gaussianStats(a, dim), gaussianStats(b, dim));
}

/** Index of the largest value in each row of a row-major [rows, classes] score matrix (first one on ties). */
export function argmaxRows(scores: ArrayLike<number>, classes: number): Int32Array {
  if (!Number.isInteger(classes) || classes < 1 || scores.length % classes !== 0) {
    throw new ArgumentError(`argmaxRows: ${scores.length} scores are not rows of ${classes} classes`);
  }
  const rows = scores.length / classes;
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (scores[r * classes + c]! > scores[r * classes + best]!) best = c;
    out[r] = best;
  }
  return out;
}

function checkPairs(predicted: ArrayLike<number>, labels: ArrayLike<number>, who: string): void {
  if (predicted.length !== labels.length) {
    throw new ArgumentError(`${who}: ${predicted.length} predictions but ${labels.length} labels`);
  }
  if (predicted.length === 0) throw new ArgumentError(`${who}: no predictions`);
}

/** Fraction of predictions equal to their label, in [0, 1]. */
export function accuracy(predicted: ArrayLike<number>, labels: ArrayLike<number>): number {
  checkPairs(predicted, labels, "accuracy");
  let hits = 0;
  for (let i = 0; i < labels.length; i++) if (predicted[i] === labels[i]) hits++;
  return hits / labels.length;
}

/** Accuracy among the items of each class 0..numClasses-1 (NaN for a class with no items). */
export function perClassAccuracy(
  predicted: ArrayLike<number>,
  labels: ArrayLike<number>,
  numClasses: number,
): number[] {
  checkPairs(predicted, labels, "perClassAccuracy");
  const hits = new Array<number>(numClasses).fill(0);
  const totals = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    if (!Number.isInteger(y) || y < 0 || y >= numClasses) {
      throw new ArgumentError(`perClassAccuracy: label ${y} at ${i} is outside [0, ${numClasses})`);
    }
    totals[y]!++;
    if (predicted[i] === y) hits[y]!++;
  }
  return hits.map((h, c) => (totals[c]! > 0 ? h / totals[c]! : Number.NaN));
}

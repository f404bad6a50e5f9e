/**
 * Seeded random number generator, bit-compatible with PyTorch's CPU generator (mt19937).
 * PLACEHOLDER: being implemented (torch-compatible normal/uniform draws).
 */
export class Generator {
  private seed = 0;

  /** Seeds the generator (PyTorch's `manual_seed`). Returns this. */
  manualSeed(seed: number | bigint): this {
    this.seed = Number(seed);
    return this;
  }

  initialSeed(): number {
    return this.seed;
  }

  /** `n` standard normal draws, as `torch.randn(n)` with this generator. */
  normal(n: number): Float32Array {
    return new Float32Array(n);
  }

  /** `n` uniform draws in [0, 1), as `torch.rand(n)` with this generator. */
  uniform(n: number): Float32Array {
    return new Float32Array(n);
  }
}

/** The generator used when none is given: seeded randomly at start-up, so runs differ unless you pass one. */
export const defaultGenerator = new Generator().manualSeed(Math.floor(Math.random() * 2 ** 32));

import type { DType } from "../tensor/dtype.js";
import type { Generator } from "../tensor/generator.js";

/** Construction options shared by the layers that own parameters. */
export interface LayerOptions {
  /** Source of the initial weights (default: the process-wide default generator). */
  generator?: Generator;
  /** Parameter dtype (default float32; initial values are drawn in float32, then converted; with skipInit made in it). */
  dtype?: DType;
  /**
   * Leave parameters zero instead of drawing initial values (norm weights still start at one). Use it when a
   * state dict will be loaded right after construction: large models then build without random draws.
   */
  skipInit?: boolean;
}

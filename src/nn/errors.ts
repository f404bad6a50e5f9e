import { DiffuseError } from "../tensor/errors.js";
import { formatShape, type Shape } from "../tensor/shape.js";

/** A key whose tensor has a different shape in the state dict than in the module. */
export interface ShapeMismatch {
  readonly key: string;
  /** shape of the module's parameter or buffer */
  readonly expected: Shape;
  /** shape of the tensor in the state dict */
  readonly found: Shape;
}

/** How many keys of each kind the error message lists before summarising the rest. */
const LIST_LIMIT = 20;

function section(title: string, lines: readonly string[]): string {
  if (lines.length === 0) return "";
  const shown = lines.slice(0, LIST_LIMIT).map((l) => `    ${l}`);
  if (lines.length > LIST_LIMIT) shown.push(`    ... and ${lines.length - LIST_LIMIT} more`);
  return `\n  ${title} (${lines.length}):\n${shown.join("\n")}`;
}

/**
 * A state dict did not fit a module: every missing, unexpected and shape-mismatched key is reported together,
 * so one failed load shows the whole problem (typically a wrong model config or a checkpoint of another format).
 */
export class StateDictError extends DiffuseError {
  readonly missingKeys: readonly string[];
  readonly unexpectedKeys: readonly string[];
  readonly mismatchedKeys: readonly ShapeMismatch[];

  constructor(
    moduleName: string,
    missingKeys: readonly string[],
    unexpectedKeys: readonly string[],
    mismatchedKeys: readonly ShapeMismatch[],
  ) {
    const counts = [
      missingKeys.length && `${missingKeys.length} missing`,
      unexpectedKeys.length && `${unexpectedKeys.length} unexpected`,
      mismatchedKeys.length && `${mismatchedKeys.length} with a different shape`,
    ].filter(Boolean);
    super(
      `loadStateDict: the state dict does not fit ${moduleName} (${counts.join(", ")})` +
        section("missing keys (in the module, absent from the state dict)", missingKeys) +
        section("unexpected keys (in the state dict, absent from the module)", unexpectedKeys) +
        section(
          "shape mismatches (module expects vs state dict has)",
          mismatchedKeys.map(
            (m) => `${m.key}: expected ${formatShape(m.expected)}, found ${formatShape(m.found)}`,
          ),
        ) +
        "\n  (check the model config matches the checkpoint; pass { strict: false } to ignore missing/unexpected keys)",
    );
    this.missingKeys = missingKeys;
    this.unexpectedKeys = unexpectedKeys;
    this.mismatchedKeys = mismatchedKeys;
  }
}

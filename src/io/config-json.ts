// The JSON of diffusers / transformers config files. Python's json module writes non-finite floats as bare
// `Infinity`, `-Infinity` and `NaN` (diffusers' DPMSolverMultistepScheduler has `"lambda_min_clipped": -Infinity`),
// which JSON.parse rejects and JSON.stringify turns into `null`; these read and write them as Python does, so a
// config survives a round trip through this package unchanged.

/** Parses config JSON text, reading bare non-finite tokens as the strings "Infinity", "-Infinity", "NaN". */
export function parseConfigJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    // quote bare non-finite tokens outside strings, then parse again (throws on any other error)
    const quoted = text.replace(/("(?:[^"\\]|\\.)*")|(-?Infinity|NaN)/g, (_m, str: string, tok: string) =>
      str !== undefined ? str : `"${tok}"`,
    );
    return JSON.parse(quoted);
  }
}

/** Config JSON text (`indent` spaces, or compact), non-finite numbers written bare as Python writes them. */
export function stringifyConfigJson(value: unknown, indent?: number): string {
  const marker = "\u0000nonfinite:";
  const text = JSON.stringify(
    value,
    (_key, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? `${marker}${v}` : v),
    indent,
  );
  return text.replace(/"\\u0000nonfinite:(-?Infinity|NaN)"/g, "$1");
}

// The package's version, read once from package.json (two folders up from src/io and from dist/io). Node.js only:
// the CLI and the server write it into PNG parameters, --version and the OpenAPI document.
import { readFileSync } from "node:fs";

let version: string | undefined;

/** The version in package.json ("unknown" when it cannot be read). */
export function packageVersion(): string {
  if (version === undefined) {
    try {
      version = (
        JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
          version: string;
        }
      ).version;
    } catch {
      version = "unknown";
    }
  }
  return version;
}

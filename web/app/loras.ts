// The LoRA list of the form: in the browser, .safetensors files picked from disk; on a server, the names it offers.
// Each row has a strength; the rows become the run's LoRAs.
import type { LoraChoice } from "./protocol.js";

/** The LoRA rows of the page. */
export class LoraList {
  #rows: { choice: LoraChoice; scale: HTMLInputElement; row: HTMLElement }[] = [];

  constructor(private readonly root: HTMLElement) {}

  /** Adds a LoRA: a file from disk (browser) or a server's LoRA name. */
  add(name: string, file?: File): void {
    const row = document.createElement("div");
    row.className = "lora";
    const label = document.createElement("span");
    label.textContent = name;
    const scale = document.createElement("input");
    scale.type = "number";
    scale.step = "0.05";
    scale.min = "-4";
    scale.max = "4";
    scale.value = "1";
    scale.title = `strength of ${name}`;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "×";
    remove.title = `Remove ${name}`;
    const entry = { choice: { name, scale: 1, file }, scale, row };
    remove.addEventListener("click", () => {
      row.remove();
      this.#rows = this.#rows.filter((r) => r !== entry);
    });
    row.append(label, scale, remove);
    this.root.append(row);
    this.#rows.push(entry);
  }

  /** Removes every row. */
  clear(): void {
    for (const r of this.#rows) r.row.remove();
    this.#rows = [];
  }

  /** The LoRAs of a run, with their strengths (throws RangeError for a strength that is not a number). */
  choices(forServer: boolean): LoraChoice[] {
    return this.#rows
      .filter((r) => (forServer ? !r.choice.file : r.choice.file))
      .map((r) => {
        const scale = Number(r.scale.value);
        if (r.scale.value.trim() === "" || !Number.isFinite(scale))
          throw new RangeError(
            `the strength of LoRA ${r.choice.name} must be a number, got "${r.scale.value}"`,
          );
        return { ...r.choice, scale };
      });
  }
}

// The page's message area: notices, and every error the page meets as errors.ts words it.
import { describeError, type MessageKind } from "./errors.js";

/** The page's message area. */
export class Messages {
  constructor(private readonly root: HTMLElement) {}

  /** Shows a message (the newest first); info messages fade after a while. */
  show(kind: MessageKind, text: string): void {
    const p = document.createElement("p");
    p.className = `message ${kind}`;
    p.textContent = text;
    const close = document.createElement("button");
    close.type = "button";
    close.textContent = "×";
    close.title = "Dismiss";
    close.addEventListener("click", () => p.remove());
    p.append(close);
    this.root.prepend(p);
    if (kind === "info") setTimeout(() => p.remove(), 8000);
  }

  /** Shows an error as {@link describeError} words it. */
  error(err: unknown): void {
    const { kind, text } = describeError(err);
    this.show(kind, text);
  }

  clear(): void {
    this.root.replaceChildren();
  }
}

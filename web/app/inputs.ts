// Images into the page: the init image (picked or dropped on its area) and its mask's buttons, and PNGs dropped
// anywhere else (or picked) whose A1111 parameters restore the form.
import { byId, restoreFromParameters } from "./form.js";
import type { InitImageEditor } from "./mask.js";
import type { Messages } from "./messages.js";
import { decodeImageFile, encodePng } from "./png.js";

/** Hooks the image inputs of the page to the init image editor; problems become messages. */
export function wireImageInputs(
  editor: InitImageEditor,
  messages: Messages,
): { setInitImage(file: Blob): Promise<void> } {
  async function setInitImage(file: Blob): Promise<void> {
    const { image } = await decodeImageFile(file);
    editor.set(image);
    byId<HTMLDetailsElement>("img2img").open = true;
  }

  /** Restores the form from a PNG's parameters chunk. */
  async function restoreFrom(file: File): Promise<void> {
    const { text } = await decodeImageFile(file);
    if (!text.parameters) {
      messages.show(
        "notice",
        `${file.name} holds no generation parameters (no "parameters" text chunk); drop it on the image-to-image area to start from it.`,
      );
      return;
    }
    restoreFromParameters(text.parameters);
    messages.show("info", `Parameters restored from ${file.name}.`);
  }

  byId<HTMLInputElement>("init-file").addEventListener("change", (e) => {
    const file = (e.target as HTMLInputElement).files?.[0];
    if (file) setInitImage(file).catch((err: unknown) => messages.error(err));
  });
  byId<HTMLInputElement>("restore-file").addEventListener("change", (e) => {
    const file = (e.target as HTMLInputElement).files?.[0];
    if (file) restoreFrom(file).catch((err: unknown) => messages.error(err));
  });
  byId("clear-mask").addEventListener("click", () => editor.clearMask());
  byId("remove-init").addEventListener("click", () => editor.remove());
  byId("download-mask").addEventListener("click", () => {
    const mask = editor.mask();
    if (!mask) return messages.show("notice", "Paint a mask first.");
    encodePng(mask)
      .then((png) => {
        const a = document.createElement("a");
        a.href = URL.createObjectURL(png);
        a.download = "mask.png";
        a.click();
        setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
      })
      .catch((err: unknown) => messages.error(err));
  });

  const initZone = byId("init-zone");
  for (const [target, onFile] of [
    [initZone, setInitImage],
    [document.body, restoreFrom],
  ] as const) {
    target.addEventListener("dragover", (e) => {
      e.preventDefault();
      target.classList.add("over");
    });
    target.addEventListener("dragleave", () => target.classList.remove("over"));
    target.addEventListener("drop", (e) => {
      e.preventDefault();
      e.stopPropagation();
      target.classList.remove("over");
      const file = e.dataTransfer?.files[0];
      if (file) onFile(file).catch((err: unknown) => messages.error(err));
    });
  }
  return { setInitImage };
}

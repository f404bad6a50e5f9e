// The gallery: every finished image, newest first, with its parameters, a PNG download (the parameters chunk
// inside), and buttons to reuse its settings or to start image-to-image from it.
import type { RunImage } from "./protocol.js";

/** What a gallery item's buttons do. */
export interface GalleryActions {
  restore(image: RunImage): void;
  useAsInit(image: RunImage): void;
}

/** A file name for a download: the prompt's first words and the seed. */
export function fileName(image: RunImage, index: number): string {
  const words = image.parameters
    .split("\n")[0]!
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-|-$/g, "");
  return `${words.slice(0, 40) || "image"}-${image.seed}${index > 0 ? `-${index}` : ""}.png`;
}

/** The gallery of a page. */
export class Gallery {
  #count = 0;

  constructor(
    private readonly root: HTMLElement,
    private readonly actions: GalleryActions,
  ) {}

  /** Adds the images of a run (first image first). */
  add(images: readonly RunImage[]): void {
    const figures = images.map((image, i) => this.#figure(image, i));
    this.root.prepend(...figures);
  }

  #figure(image: RunImage, index: number): HTMLElement {
    const url = URL.createObjectURL(image.png);
    const figure = document.createElement("figure");
    figure.className = "item";
    figure.dataset.n = String(this.#count++);
    const img = document.createElement("img");
    img.src = url;
    img.alt = image.parameters.split("\n")[0]!;
    img.title = image.parameters;
    const caption = document.createElement("figcaption");
    const text = document.createElement("span");
    text.className = "parameters";
    text.textContent = image.parameters;
    const download = document.createElement("a");
    download.className = "download";
    download.href = url;
    download.download = fileName(image, index);
    download.textContent = "Download PNG";
    const restore = document.createElement("button");
    restore.type = "button";
    restore.className = "restore";
    restore.textContent = "Reuse settings";
    restore.addEventListener("click", () => this.actions.restore(image));
    const init = document.createElement("button");
    init.type = "button";
    init.className = "use-init";
    init.textContent = "Image to image";
    init.addEventListener("click", () => this.actions.useAsInit(image));
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "remove";
    remove.textContent = "×";
    remove.title = "Remove from the gallery";
    remove.addEventListener("click", () => {
      URL.revokeObjectURL(url);
      figure.remove();
    });
    caption.append(text, download, restore, init, remove);
    figure.append(img, caption);
    return figure;
  }
}

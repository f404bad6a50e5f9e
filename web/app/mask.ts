// The image-to-image source and the inpainting mask painted over it: the init image on one canvas, the mask on a
// second one stacked above it at the same resolution (white = repaint), painted with the pointer.

import { drawPixels } from "./png.js";
import type { Pixels } from "./protocol.js";

/** The init image and mask controls of the page. */
export class InitImageEditor {
  #image: Pixels | null = null;
  #painted = false;
  #drawing = false;
  #erase = false;
  readonly #mask: CanvasRenderingContext2D;

  constructor(
    private readonly imageCanvas: HTMLCanvasElement,
    private readonly maskCanvas: HTMLCanvasElement,
    private readonly brush: HTMLInputElement,
  ) {
    const ctx = maskCanvas.getContext("2d", { willReadFrequently: true });
    if (!ctx) throw new Error("this browser gives no 2D canvas to paint a mask on");
    this.#mask = ctx;
    maskCanvas.addEventListener("pointerdown", (e) => {
      if (!this.#image) return;
      this.#drawing = true;
      this.#erase = e.button === 2 || e.shiftKey;
      maskCanvas.setPointerCapture(e.pointerId);
      this.#paint(e);
    });
    maskCanvas.addEventListener("pointermove", (e) => {
      if (this.#drawing) this.#paint(e);
    });
    const stop = () => {
      this.#drawing = false;
    };
    maskCanvas.addEventListener("pointerup", stop);
    maskCanvas.addEventListener("pointercancel", stop);
    maskCanvas.addEventListener("contextmenu", (e) => e.preventDefault());
  }

  /** The init image, or null. */
  get image(): Pixels | null {
    return this.#image;
  }

  /** Sets the init image (the mask is cleared). */
  set(image: Pixels): void {
    this.#image = image;
    drawPixels(this.imageCanvas, image);
    this.maskCanvas.width = image.width;
    this.maskCanvas.height = image.height;
    this.clearMask();
  }

  /** Removes the init image (back to text-to-image). */
  remove(): void {
    this.#image = null;
    this.imageCanvas.width = this.maskCanvas.width = 0;
    this.clearMask();
  }

  clearMask(): void {
    this.#mask.clearRect(0, 0, this.maskCanvas.width, this.maskCanvas.height);
    this.#painted = false;
  }

  /** A brush stroke at the pointer, in image pixels (the canvases are shown scaled). */
  #paint(e: PointerEvent): void {
    const rect = this.maskCanvas.getBoundingClientRect();
    const x = ((e.clientX - rect.left) / rect.width) * this.maskCanvas.width;
    const y = ((e.clientY - rect.top) / rect.height) * this.maskCanvas.height;
    const radius = (Number(this.brush.value) / 100) * Math.max(this.maskCanvas.width, this.maskCanvas.height);
    const ctx = this.#mask;
    ctx.globalCompositeOperation = this.#erase ? "destination-out" : "source-over";
    ctx.fillStyle = "#fff";
    ctx.beginPath();
    ctx.arc(x, y, Math.max(0.5, radius), 0, 2 * Math.PI);
    ctx.fill();
    this.#painted = true;
  }

  /** The painted mask (1 channel: 255 = repaint, 0 = keep), or undefined when nothing is painted. */
  mask(): Pixels | undefined {
    if (!this.#image || !this.#painted) return undefined;
    const { width, height } = this.maskCanvas;
    const rgba = this.#mask.getImageData(0, 0, width, height).data;
    const data = new Uint8Array(width * height);
    let any = false;
    for (let i = 0; i < data.length; i++) {
      data[i] = rgba[i * 4 + 3]! >= 128 ? 255 : 0;
      any ||= data[i] === 255;
    }
    return any ? { width, height, channels: 1, data } : undefined;
  }
}

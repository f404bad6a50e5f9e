// The page script of mnist-browser.test.ts, bundled with the browser entry: generates digits from the shipped
// MNIST model fetched from the test's server, on the reference backend.
import {
  generateClassImages,
  loadClassConditionalPipeline,
  setBackend,
  tensorToImages,
} from "../../src/browser.js";

/** What the test asks for (see mnist-browser.test.ts). */
export interface DigitRequest {
  label: number;
  steps: number;
  seed: number;
}

/** The digit's values (float32, in [-1, 1]) and its 8-bit pixels as tensorToImages makes them. */
export interface Digit {
  values: number[];
  pixels: number[];
}

async function generateDigit(req: DigitRequest): Promise<Digit> {
  setBackend("reference");
  const { unet, scheduler, guidanceInterval } = await loadClassConditionalPipeline(
    new URL("/models/mnist/", (globalThis as unknown as { location: { href: string } }).location.href),
  );
  const x = await generateClassImages(unet, scheduler, {
    classLabels: [req.label],
    steps: req.steps,
    seed: req.seed,
    guidanceInterval,
  });
  const [image] = await tensorToImages(x);
  return { values: Array.from(await x.data(), Number), pixels: Array.from(image!.data) };
}

(globalThis as { generateDigit?: typeof generateDigit }).generateDigit = generateDigit;

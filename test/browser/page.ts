// The page script of mnist-browser.test.ts, bundled with the browser entry: generates digits from the shipped
// MNIST model fetched from the test's server, on the reference backend.
import { generateClassImages, loadClassConditionalPipeline, setBackend } from "../../src/browser.js";

/** What the test asks for (see mnist-browser.test.ts). */
export interface DigitRequest {
  label: number;
  steps: number;
  seed: number;
}

async function generateDigit(req: DigitRequest): Promise<number[]> {
  setBackend("reference");
  const { unet, scheduler, guidanceInterval } = await loadClassConditionalPipeline(
    new URL("/models/mnist/", (globalThis as unknown as { location: { href: string } }).location.href),
  );
  const x = generateClassImages(unet, scheduler, {
    classLabels: [req.label],
    steps: req.steps,
    seed: req.seed,
    guidanceInterval,
  });
  return Array.from(await x.data(), Number);
}

(globalThis as { generateDigit?: typeof generateDigit }).generateDigit = generateDigit;

import { DiffuseError } from "../tensor/errors.js";

/** An image file that could not be read or written (or is larger than accepted). */
export class ImageError extends DiffuseError {}

import { CheckpointError } from "../blocks/errors.js";

/**
 * @deprecated Text-encoder folders load through the models' one loader, which throws {@link CheckpointError} (the
 * same class: `instanceof CLIPLoadError` still holds). Key and shape mismatches are nn's `StateDictError`.
 */
export const CLIPLoadError = CheckpointError;
/** @deprecated See the value {@link CLIPLoadError}. */
export type CLIPLoadError = CheckpointError;

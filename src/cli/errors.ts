import { DiffuseError } from "../tensor/errors.js";

/** A problem with what the user asked the CLI to do; printed as one line, exit code 1. */
export class CliError extends DiffuseError {}

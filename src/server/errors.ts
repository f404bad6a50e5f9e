import { DiffuseError } from "../tensor/errors.js";

/**
 * A request the server refuses: answered with `status` and `{ error, message }`, where the message says what was
 * expected and what was found.
 */
export class HttpError extends DiffuseError {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The queue holds as many jobs as it may (answered 429). */
export class QueueFullError extends HttpError {
  constructor(max: number) {
    super(429, `the queue is full (${max} jobs waiting); retry later`);
  }
}

/** The server cannot start as configured (a model path that does not exist, two models of one name, ...). */
export class ServerConfigError extends DiffuseError {}

/** Base class of every error this package throws on purpose: the message says what was expected and found. */
export class DiffuseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A tensor had a shape an operation cannot accept. */
export class ShapeError extends DiffuseError {}

/** A tensor had a dtype an operation cannot accept. */
export class DTypeError extends DiffuseError {}

/** An argument was out of range or contradictory. */
export class ArgumentError extends DiffuseError {}

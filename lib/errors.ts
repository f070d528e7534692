import type { IConstruct } from 'constructs';

/**
 * Thrown at synth when a Cutover construct gets a prop it cannot deploy. The message names the
 * construct path (when there is one) and shows the bad value.
 *
 * aws-cdk-lib's own `ValidationError` is marked internal (its name argument is a branded type), so
 * Cutover has its own error class; `instanceof CutoverValidationError` lets callers tell it apart.
 */
export class CutoverValidationError extends Error {
  constructor(message: string, scope?: IConstruct) {
    super(scope ? `${scope.node.path}: ${message}` : message);
    this.name = 'CutoverValidationError';
  }
}

/** Shows a value in an error message (strings quoted, objects as JSON). */
export function show(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

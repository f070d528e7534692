/**
 * Helpers shared by the fleet capacity adapters (`auto-scaling.ts`, `ecs.ts`): unit checks, the
 * errors they throw, and reading back the figures they keep in tags on the resource itself.
 */

/** The fleet the adapter was configured with does not exist (or is being deleted). */
export class CapacityTargetNotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CapacityTargetNotFoundError';
  }
}

/**
 * The fleet cannot be pinned as configured (MaxSize below the pin, tags that cannot be read back).
 * The message names the bad value and how to fix it.
 */
export class CapacityPinError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CapacityPinError';
  }
}

/** Every tag key the adapters write starts with this. */
export const TAG_PREFIX = 'cutover:';

export function checkUnits(units: number): void {
  if (typeof units !== 'number' || !Number.isInteger(units) || units < 1) {
    throw new RangeError(`capacity units must be a whole number ≥ 1, got ${JSON.stringify(units)}`);
  }
}

/** Checks a resource name given in props: a string of 1–`max` characters that matches `pattern`. */
export function checkName(prop: string, value: unknown, max: number, pattern: RegExp, hint: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max || !pattern.test(value)) {
    throw new TypeError(`${prop} must be ${hint}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * Reads the figures an adapter recorded in tags. Returns undefined when none of `keys` is present
 * (nothing pinned). Throws `CapacityPinError` when a tag of `required` is missing while others are
 * present, or when a value is not a whole number: the originals can then not be trusted, and a
 * person must look (`fix` says what to do).
 */
export function readRecordedTags<K extends string>(
  tags: ReadonlyMap<string, string>,
  keys: Readonly<Record<K, string>>,
  required: readonly NoInfer<K>[],
  where: string,
  fix: string,
): Partial<Record<K, number>> | undefined {
  const names = Object.keys(keys) as K[];
  if (!names.some((name) => tags.has(keys[name]))) return undefined;
  const result: Partial<Record<K, number>> = {};
  for (const name of names) {
    const raw = tags.get(keys[name]);
    if (raw === undefined) {
      if (required.includes(name)) throw new CapacityPinError(`${where} has some cutover:* tags but not ${keys[name]}: ${fix}`);
      continue;
    }
    if (!/^(0|[1-9][0-9]{0,8})$/.test(raw)) {
      throw new CapacityPinError(`${where} has tag ${keys[name]} = ${JSON.stringify(raw)}, not a whole number: ${fix}`);
    }
    result[name] = Number(raw);
  }
  return result;
}

/** "1 pending" / "2 pending" style counts, only the non-zero ones, joined with commas. */
export function counts(parts: readonly [number, string][]): string {
  return parts
    .filter(([n]) => n > 0)
    .map(([n, what]) => `${n} ${what}`)
    .join(', ');
}

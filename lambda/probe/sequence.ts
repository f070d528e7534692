/**
 * Request sequences: the default one built from a health path, and the user's own from a JSON file.
 */
import { readFileSync } from 'node:fs';
import { ProbeUsageError } from './errors';
import { HEADER_VALUE, RESERVED_HEADERS, TOKEN } from './target';
import type { ProbeStepSpec } from './types';

// Where the base URL is parsed (with `connectTo` and the target's headers); kept importable from here.
export { parseTarget } from './target';

/** A validated step, ready to send. */
export interface ProbeStep {
  readonly index: number;
  readonly name: string;
  readonly method: string;
  /** Path (and query) below the base path, starting with `/`. */
  readonly path: string;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly bodyBytes: number;
  readonly expectStatus?: number;
}

/** Largest request body a sequence may ask for (the probe builds it in memory). */
export const MAX_BODY_BYTES = 64 * 1024 * 1024;
/** Most steps in a sequence: each costs an idle watch per pass. */
export const MAX_STEPS = 32;

const STEP_NAME = /^[A-Za-z0-9._-]{1,64}$/;
/** Printable ASCII without spaces: what may appear in a request target. */
const PATH = /^\/[\x21-\x7e]*$/;

/** Body size of the default sequence's small POST: a JSON object padded with spaces. */
export const SMALL_POST_BYTES = 32;

/**
 * Credentials no server accepts (`cutover-probe:invalid`), so that an API which checks every
 * Authorization header answers 401 or 403; one that ignores it answers like the health step.
 */
const INVALID_CREDENTIALS = `Basic ${Buffer.from('cutover-probe:invalid').toString('base64')}`;

/**
 * The default sequence for a health path. Expected answers differ from step to step (a 2XX, a 404,
 * a 413 or other error for the oversized POST, a 405 or similar for the wrong method, a 400 for a
 * malformed path, a 401/403 where credentials are checked, a small POST's answer, a body-less
 * HEAD), so an answer that belongs to another request is recognisable. Steps that a server answers
 * alike (a static server ignores credentials) cost nothing but that step's power to prove a shift.
 * The error steps come early so that several distinct steps follow them on the same connection.
 */
export function defaultSequence(healthPath: string, largeBodyBytes: number): ProbeStep[] {
  validatePath(healthPath, '--path');
  const specs: ProbeStepSpec[] = [
    { name: 'health', method: 'GET', path: healthPath },
    // The probe replaces {unique} with a fresh token on every request.
    { name: 'not-found', method: 'GET', path: '/cutover-probe-missing-{unique}' },
    { name: 'oversized-post', method: 'POST', path: healthPath, bodyBytes: largeBodyBytes },
    { name: 'health-again', method: 'GET', path: healthPath },
    // TRACE is safe by definition (RFC 9110 §9.3.8) and usually disabled: an error that cannot
    // change anything on the server, unlike DELETE or PUT on a real API.
    { name: 'wrong-method', method: 'TRACE', path: healthPath },
    // "%zz" is not a percent-encoding: the request line parses everywhere, but the target cannot be
    // decoded, so web servers and frameworks answer 400 (nginx, Apache and lighttpd then close the
    // connection, which the passes treat as a normal close). Under its own path, so that nothing
    // routes it to a handler.
    { name: 'bad-request', method: 'GET', path: '/cutover-probe-invalid-%zz-{unique}' },
    { name: 'bad-credentials', method: 'GET', path: healthPath, headers: { Authorization: INVALID_CREDENTIALS } },
    // The body is JSON (see `buildRequest`), so an endpoint that takes POSTs can accept it.
    { name: 'small-post', method: 'POST', path: healthPath, headers: { 'Content-Type': 'application/json' }, bodyBytes: SMALL_POST_BYTES },
    { name: 'head', method: 'HEAD', path: healthPath },
  ];
  return specs.map((spec, index) => toStep(spec, index));
}

/** True when two steps send the same request (their answers may then be equal without proving anything). */
export function sameRequest(a: ProbeStep, b: ProbeStep): boolean {
  return (
    a.method === b.method &&
    a.path === b.path &&
    a.bodyBytes === b.bodyBytes &&
    a.headers.length === b.headers.length &&
    a.headers.every(([n, v], i) => n.toLowerCase() === b.headers[i][0].toLowerCase() && v === b.headers[i][1])
  );
}

/**
 * Validates a user sequence: a JSON array of steps, or an object with a `steps` array. Each step
 * has `path` and optionally `name`, `method`, `headers`, `bodyBytes`, `expectStatus`; `{unique}`
 * in a path becomes a fresh token on every request. Returns clean copies of the steps.
 * Throws `ProbeUsageError` naming the step and the bad value.
 */
export function parseSequence(json: unknown): ProbeStepSpec[] {
  const list = Array.isArray(json) ? json : isRecord(json) && Array.isArray(json.steps) ? json.steps : undefined;
  if (!list) {
    throw new ProbeUsageError(`sequence must be a JSON array of steps or an object with a "steps" array, got ${describe(json)}`);
  }
  if (list.length < 2 || list.length > MAX_STEPS) {
    throw new ProbeUsageError(`sequence must have between 2 and ${MAX_STEPS} steps (a shift needs two requests on one connection), got ${list.length}`);
  }
  const specs = list.map((raw, index) => checkSpec(raw, index));
  const names = new Set<string>();
  specs.forEach((spec, index) => {
    const name = spec.name ?? `step-${index + 1}`;
    if (names.has(name)) throw new ProbeUsageError(`sequence step ${index + 1}: duplicate name ${JSON.stringify(name)}`);
    names.add(name);
  });
  return specs;
}

/** Reads and validates a sequence file (see `parseSequence`); pass the result as `ProbeOptions.sequence`. */
export function loadSequenceFile(path: string): ProbeStepSpec[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ProbeUsageError(`cannot read sequence file ${JSON.stringify(path)}: ${code ?? (error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ProbeUsageError(`sequence file ${JSON.stringify(path)} is not valid JSON: ${(error as Error).message}`);
  }
  try {
    return parseSequence(json);
  } catch (error) {
    if (error instanceof ProbeUsageError) throw new ProbeUsageError(`sequence file ${JSON.stringify(path)}: ${error.message}`);
    throw error;
  }
}

/** Converts already-typed specs (from `ProbeOptions.sequence`), with the same validation. */
export function stepsFromSpecs(specs: readonly ProbeStepSpec[]): ProbeStep[] {
  return parseSequence(specs as unknown).map((spec, index) => toStep(spec, index));
}

function checkSpec(raw: unknown, index: number): ProbeStepSpec {
  const where = `sequence step ${index + 1}`;
  if (!isRecord(raw)) throw new ProbeUsageError(`${where} must be an object, got ${describe(raw)}`);
  const known = new Set(['name', 'method', 'path', 'headers', 'bodyBytes', 'expectStatus']);
  for (const key of Object.keys(raw)) {
    if (!known.has(key)) throw new ProbeUsageError(`${where}: unknown field ${JSON.stringify(key)} (known: ${[...known].join(', ')})`);
  }
  const { name, method, path, headers, bodyBytes, expectStatus } = raw;
  if (name !== undefined && (typeof name !== 'string' || !STEP_NAME.test(name))) {
    throw new ProbeUsageError(`${where}: "name" must be 1-64 letters, digits, ".", "_" or "-", got ${describe(name)}`);
  }
  if (method !== undefined && (typeof method !== 'string' || !TOKEN.test(method))) {
    throw new ProbeUsageError(`${where}: "method" must be an HTTP method token such as GET, got ${describe(method)}`);
  }
  if (typeof method === 'string' && ['CONNECT', 'PRI'].includes(method.toUpperCase())) {
    throw new ProbeUsageError(`${where}: "method" ${method} changes the connection's protocol and cannot be probed`);
  }
  if (typeof path !== 'string') throw new ProbeUsageError(`${where}: "path" must be a string starting with "/", got ${describe(path)}`);
  validatePath(path, `${where}: "path"`);
  if (headers !== undefined) {
    if (!isRecord(headers)) throw new ProbeUsageError(`${where}: "headers" must be an object of strings, got ${describe(headers)}`);
    for (const [key, value] of Object.entries(headers)) {
      if (!TOKEN.test(key)) throw new ProbeUsageError(`${where}: invalid header name ${JSON.stringify(key)}`);
      if (RESERVED_HEADERS.has(key.toLowerCase())) {
        throw new ProbeUsageError(`${where}: header ${JSON.stringify(key)} is set by the probe and cannot be given`);
      }
      if (typeof value !== 'string' || !HEADER_VALUE.test(value)) {
        throw new ProbeUsageError(`${where}: header ${JSON.stringify(key)} must be a string without control characters, got ${describe(value)}`);
      }
    }
  }
  if (bodyBytes !== undefined && (typeof bodyBytes !== 'number' || !Number.isInteger(bodyBytes) || bodyBytes < 0 || bodyBytes > MAX_BODY_BYTES)) {
    throw new ProbeUsageError(`${where}: "bodyBytes" must be an integer from 0 to ${MAX_BODY_BYTES}, got ${describe(bodyBytes)}`);
  }
  if (expectStatus !== undefined && (typeof expectStatus !== 'number' || !Number.isInteger(expectStatus) || expectStatus < 200 || expectStatus > 599)) {
    throw new ProbeUsageError(`${where}: "expectStatus" must be a final status code from 200 to 599, got ${describe(expectStatus)}`);
  }
  // A copy holding only the known fields, so later changes to the input cannot bypass validation.
  return {
    ...(name !== undefined ? { name: name as string } : {}),
    ...(method !== undefined ? { method: (method as string).toUpperCase() } : {}),
    path,
    ...(headers !== undefined ? { headers: { ...(headers as Record<string, string>) } } : {}),
    ...(bodyBytes !== undefined ? { bodyBytes: bodyBytes as number } : {}),
    ...(expectStatus !== undefined ? { expectStatus: expectStatus as number } : {}),
  };
}

function toStep(spec: ProbeStepSpec, index: number): ProbeStep {
  const method = (spec.method ?? 'GET').toUpperCase();
  return {
    index,
    name: spec.name ?? `step-${index + 1}`,
    method,
    path: spec.path,
    headers: Object.entries(spec.headers ?? {}),
    bodyBytes: spec.bodyBytes ?? 0,
    expectStatus: spec.expectStatus,
  };
}

function validatePath(path: string, what: string): void {
  if (!PATH.test(path) || path.includes('#')) {
    throw new ProbeUsageError(`${what} must start with "/" and hold only printable characters without spaces or "#", got ${JSON.stringify(path)}`);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}

/**
 * The fault controls and drain modes of a demo server (see `local/demo-server.ts`): what faults a
 * server can be told to show, the drain modes that let go of its clients, and the validation of
 * both. Separate from the server because they are the run-time control surface (what a scenario or
 * the CLI may set, and what it may set them to), not the serving of requests; the server applies
 * them.
 */
import { checkInteger, checkRange } from './net';

/** Faults a demo server can be told to show. */
export interface DemoFaults {
  /** Share of requests (0–1) answered with a 503 or 500 instead of their real answer. */
  readonly errorRate5xx: number;
  /**
   * Answer every Nth API request (under `/apps/`) with a 401 its client did not ask for, as an
   * authentication layer gone wrong would; 0 turns it off. Counting starts when the value is set
   * (the Nth API request after it gets the first 401). `/health` and unknown paths are not
   * affected (health checks do not go through the API's authentication), nor are bodies over the
   * limit (their 413 comes first). The 401 carries the request's own identity: it is the right
   * request's answer, with a wrong status.
   */
  readonly unauthorizedEvery: number;
  /** Extra delay before every answer, ms. */
  readonly addedLatencyMs: number;
  /**
   * The process "crashed": open connections are reset (TCP RST) and new ones are reset as soon
   * as they are accepted, so a client or proxy sees ECONNRESET, as with a dead process.
   */
  readonly crashed: boolean;
  /**
   * The incident's bug. After this server answers a 413 on a connection, that connection keeps a
   * one-response queue: every later request on it gets the response computed for the PREVIOUS
   * request on that connection (the first one after the 413 gets the 413 again), and its own
   * response waits for the next request. The shift is permanent for the connection (turning the
   * fault off later does not heal connections already shifted; only closing them does), exactly
   * like a server that wrote one 413 twice.
   */
  readonly desyncAfter413: boolean;
}

/**
 * How a server lets go of its clients.
 * - `off`: Keep-Alive as usual.
 * - `close`: every response carries `Connection: close` and its connection is closed after it
 *   (connections that are idle now get theirs on their next request, so no request ever races
 *   a close), while new connections are still accepted.
 * - `refuse`: `close`, and the server stops listening: new connections are refused
 *   (ECONNREFUSED, nothing sent), as a side taken out of service.
 */
export type DrainMode = 'off' | 'close' | 'refuse';

/** The drain modes, for validation. */
export const DRAIN_MODES: readonly DrainMode[] = ['off', 'close', 'refuse'];

/** No faults. */
export const NO_FAULTS: DemoFaults = Object.freeze({ errorRate5xx: 0, unauthorizedEvery: 0, addedLatencyMs: 0, crashed: false, desyncAfter413: false });

/** `base` with the defined fields of `change` (validated) applied. */
export function mergeFaults(base: DemoFaults, change: Partial<DemoFaults>): DemoFaults {
  validateFaults(change);
  const defined = Object.fromEntries(Object.entries(change).filter(([, value]) => value !== undefined));
  return Object.freeze({ ...base, ...defined });
}

function validateFaults(faults: Partial<DemoFaults>): Partial<DemoFaults> {
  for (const key of Object.keys(faults)) {
    if (!(key in NO_FAULTS)) throw new TypeError(`unknown fault ${JSON.stringify(key)} (known: ${Object.keys(NO_FAULTS).join(', ')})`);
  }
  if (faults.errorRate5xx !== undefined) checkRange(faults.errorRate5xx, 0, 1, 'errorRate5xx');
  if (faults.unauthorizedEvery !== undefined) checkInteger(faults.unauthorizedEvery, 0, 1_000_000_000, 'unauthorizedEvery');
  if (faults.addedLatencyMs !== undefined) checkRange(faults.addedLatencyMs, 0, 600_000, 'addedLatencyMs');
  if (faults.crashed !== undefined && typeof faults.crashed !== 'boolean') {
    throw new TypeError(`crashed must be a boolean, got ${JSON.stringify(faults.crashed)}`);
  }
  if (faults.desyncAfter413 !== undefined && typeof faults.desyncAfter413 !== 'boolean') {
    throw new TypeError(`desyncAfter413 must be a boolean, got ${JSON.stringify(faults.desyncAfter413)}`);
  }
  return faults;
}

/**
 * Small helpers shared by the loopback adapters: listening on 127.0.0.1 with clear errors,
 * closing servers without waiting for idle Keep-Alive connections, checking upstream URLs,
 * and an abortable sleep.
 */
import type { Server } from 'node:http';
import type { Clock } from '../lambda/core/ports';
import { setTimeout as delay } from 'node:timers/promises';

/** The clock the adapters use when none is injected. */
export const systemClock: Clock = { now: () => Date.now() };

/** The only address the local adapters listen on. */
export const LOOPBACK_HOST = '127.0.0.1';

/**
 * Thrown when a server is asked to listen on a port that another process (or server) holds.
 * The CLI maps it to exit code 2.
 */
export class PortInUseError extends Error {
  constructor(readonly port: number) {
    super(`port ${port} is in use`);
    this.name = 'PortInUseError';
  }
}

/** Checks a port option: an integer 0–65535 (0 = an ephemeral port chosen by the OS). */
export function validatePort(port: number, what = 'port'): number {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`${what} must be an integer from 0 to 65535, got ${String(port)}`);
  }
  return port;
}

/**
 * Starts `server` on 127.0.0.1:`port` and resolves with the port actually bound.
 * Rejects with `PortInUseError` when the port is taken, and with a message naming the port for
 * any other listen error (e.g. EACCES on a privileged port).
 */
export function listenOnLoopback(server: Server, port: number): Promise<number> {
  validatePort(port);
  return new Promise<number>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      if (err.code === 'EADDRINUSE') reject(new PortInUseError(port));
      else reject(new Error(`cannot listen on ${LOOPBACK_HOST}:${port}: ${err.message}`, { cause: err }));
    };
    const onListening = (): void => {
      server.off('error', onError);
      const address = server.address();
      if (address === null || typeof address === 'string') {
        reject(new Error(`server on port ${port} has no TCP address (got ${String(address)})`));
        return;
      }
      resolve(address.port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, LOOPBACK_HOST);
  });
}

/**
 * Stops accepting connections and destroys every open one (idle Keep-Alive connections would
 * otherwise hold `close()` open for up to the keep-alive timeout). Resolves once the server is
 * closed; safe to call twice.
 */
export function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (!server.listening) {
      server.closeAllConnections();
      resolve();
      return;
    }
    server.close((err) => (err ? reject(err) : resolve()));
    server.closeAllConnections();
  });
}

const LOOPBACK_HOSTNAMES = new Set(['localhost', '[::1]', '::1']);

/**
 * Parses an upstream/target URL for the local adapters: `http:` only, and a loopback host only
 * (127.0.0.0/8, ::1 or localhost), because the local rehearsal must never send traffic off the
 * machine.
 */
export function parseLoopbackUrl(value: string, what: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TypeError(`${what} is not a valid URL: ${JSON.stringify(value)}`);
  }
  if (url.protocol !== 'http:') {
    throw new TypeError(`${what} must be an http: URL, got ${JSON.stringify(value)}`);
  }
  const host = url.hostname;
  if (!LOOPBACK_HOSTNAMES.has(host) && !/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)) {
    throw new TypeError(`${what} must point at a loopback address (127.0.0.1, ::1, localhost), got ${JSON.stringify(value)}`);
  }
  return url;
}

/** The port of a parsed http URL (80 when the URL has none). */
export function urlPort(url: URL): number {
  return url.port === '' ? 80 : Number(url.port);
}

/**
 * Waits `ms` milliseconds, or less if `signal` aborts (then it resolves, it does not reject: the
 * callers use it to wake up and notice that they were stopped).
 */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0 || signal?.aborted) return;
  try {
    await delay(ms, undefined, { signal });
  } catch (err) {
    if ((err as Error).name !== 'AbortError') throw err;
  }
}

/** Checks a finite number within [min, max] and returns it; the message shows the bad value. */
export function checkRange(value: number, min: number, max: number, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new RangeError(`${what} must be a number from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

/** Checks an integer within [min, max] and returns it; the message shows the bad value. */
export function checkInteger(value: number, min: number, max: number, what: string): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `from ${min} to ${max}`;
    throw new RangeError(`${what} must be an integer ${range}, got ${String(value)}`);
  }
  return value;
}

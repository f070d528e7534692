/**
 * Test helpers for the loopback adapters: a small HTTP client over a caller-chosen agent, and a
 * cleanup list that afterEach runs so that every server, agent and pool is closed.
 */
import { Agent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';

export interface TestResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
  /** Parsed JSON body (undefined when the body is not JSON). */
  readonly json: Record<string, unknown> | undefined;
  readonly reusedSocket: boolean;
  readonly socket: Socket | undefined;
}

export interface TestRequest {
  readonly method?: string;
  readonly headers?: Record<string, string | number>;
  readonly body?: string | Buffer;
  readonly agent?: Agent;
  readonly timeoutMs?: number;
}

/** One HTTP request; rejects on transport errors (with the error's code). */
export function send(url: string, options: TestRequest = {}): Promise<TestResponse> {
  return new Promise<TestResponse>((resolve, reject) => {
    let socket: Socket | undefined;
    const headers: Record<string, string | number> = { ...(options.headers ?? {}) };
    if (options.body !== undefined) headers['content-length'] = Buffer.byteLength(options.body);
    const req = httpRequest(url, { method: options.method ?? 'GET', headers, agent: options.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('error', reject);
      res.once('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: Record<string, unknown> | undefined;
        try {
          json = JSON.parse(text) as Record<string, unknown>;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json, reusedSocket: req.reusedSocket, socket });
      });
    });
    req.once('socket', (s: Socket) => {
      socket = s;
    });
    req.setTimeout(options.timeoutMs ?? 10_000, () => req.destroy(new Error('test request timed out')));
    req.once('error', reject);
    req.end(options.body);
  });
}

/** A Keep-Alive agent with one socket, so that sequential requests share one connection. */
export function singleConnectionAgent(): Agent {
  return new Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1, timeout: 4000 });
}

/** Things to close after each test, closed in reverse order. */
export class Cleanup {
  private readonly tasks: (() => unknown)[] = [];

  add<T>(value: T, close: (value: T) => unknown): T {
    this.tasks.push(() => close(value));
    return value;
  }

  async run(): Promise<void> {
    const errors: unknown[] = [];
    for (const task of this.tasks.splice(0).reverse()) {
      try {
        await task();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, 'cleanup failed');
  }
}

/** Polls `check` until it returns true; fails with `what` after `timeoutMs` (a bound, not a timing assertion). */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A clock the test moves by hand. */
export class FakeClock {
  constructor(private ms = 1_700_000_000_000) {}
  now(): number {
    return this.ms;
  }
  advance(ms: number): void {
    this.ms += ms;
  }
  set(ms: number): void {
    this.ms = ms;
  }
}

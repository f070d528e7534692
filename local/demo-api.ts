/**
 * The demo API itself (see `local/demo-server.ts`): the routes and the answers a correct server
 * computes for them (channel list, one channel, event publishing), the JSON identity every answer
 * carries, the demo channel names, and the reading of request bodies against the body limit.
 * Separate from the server because it is pure request → response logic, the same on v1 and v2;
 * the server wraps it with connections, capacity, faults (including the 413 desync) and drain.
 */
import type { IncomingMessage } from 'node:http';
import { checkInteger } from './net';

/** The event body limit of the demo API (the Pusher API's limit on event data is 10 KB). */
export const DEFAULT_BODY_LIMIT_BYTES = 10 * 1024;

/** The identity part of every JSON response body. */
export interface DemoResponseIdentity {
  /** The request's X-Request-Id, or null when it had none. */
  readonly requestId: string | null;
  readonly method: string;
  /** The request target as received (path and query). */
  readonly path: string;
  /** The version of the server that computed the response. */
  readonly served_by: string;
}

/** A response computed for one request, kept whole so that the desync fault can replay it. */
export interface Computed {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
  /** Close the connection after this response (body too large to drain). */
  readonly close: boolean;
}

export type BodyResult =
  | { readonly kind: 'ok'; readonly body: Buffer }
  | { readonly kind: 'too-large'; readonly bytes: number; readonly drained: boolean }
  | { readonly kind: 'aborted' };

const CHANNEL_NAME = /^[A-Za-z0-9_\-=@,.;]{1,200}$/;
const APP_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** The demo channel names a server with `count` channels knows (deterministic). */
export function demoChannels(count = 24): string[] {
  checkInteger(count, 0, 10_000, 'channelCount');
  const kinds = ['presence-room', 'private-orders', 'news'];
  return Array.from({ length: count }, (_, i) => `${kinds[i % kinds.length]}-${Math.floor(i / kinds.length) + 1}`);
}

/** A stable small number from a name (so that counts are the same on v1 and v2). */
function stableCount(name: string, modulo: number): number {
  let hash = 2166136261;
  for (let i = 0; i < name.length; i += 1) hash = Math.imul(hash ^ name.charCodeAt(i), 16777619) >>> 0;
  return hash % modulo;
}

export function headerValue(value: string | string[] | undefined): string | null {
  if (value === undefined) return null;
  return Array.isArray(value) ? (value[0] ?? null) : value;
}

/** The demo API of one server: computes the answer to a request, as a correct server would. */
export class DemoApi {
  constructor(
    /** The version label returned as `served_by`. */
    private readonly version: string,
    /** The demo channel names the server knows. */
    private readonly channels: readonly string[],
    /** Called for every event accepted by `POST /apps/:appId/events`. */
    private readonly onEventAccepted: () => void,
  ) {}

  /** A JSON response for `req` carrying its identity (see `DemoResponseIdentity`). */
  respond(req: IncomingMessage, status: number, payload: Record<string, unknown>, extraHeaders: Record<string, string> = {}, close = false): Computed {
    const requestId = headerValue(req.headers['x-request-id']);
    const identity: DemoResponseIdentity = { requestId, method: req.method ?? '', path: req.url ?? '', served_by: this.version };
    const body = Buffer.from(JSON.stringify({ ...identity, ...payload }));
    const headers: Record<string, string> = {
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(body.length),
      'x-served-by': this.version,
      ...extraHeaders,
    };
    if (requestId !== null) headers['x-request-id'] = requestId;
    if (close) headers.connection = 'close';
    return { status, headers, body, close };
  }

  route(req: IncomingMessage, url: URL, segments: string[], body: Buffer): Computed {
    const method = req.method ?? '';
    const notAllowed = (allow: string): Computed =>
      this.respond(req, 405, { error: `method ${method} not allowed`, allow }, { allow });

    if (url.pathname === '/health') {
      return method === 'GET' || method === 'HEAD' ? this.respond(req, 200, { status: 'ok', version: this.version }) : notAllowed('GET, HEAD');
    }
    if (segments[0] !== 'apps' || segments.length < 3 || segments.length > 4) {
      return this.respond(req, 404, { error: `no route for ${url.pathname}` });
    }
    const appId = segments[1]!;
    if (!APP_ID.test(appId)) return this.respond(req, 400, { error: `invalid app id ${JSON.stringify(appId)}` });

    if (segments[2] === 'channels' && segments.length === 3) {
      if (method !== 'GET') return notAllowed('GET');
      const prefix = url.searchParams.get('filter_by_prefix') ?? '';
      const withUsers = (url.searchParams.get('info') ?? '').split(',').includes('user_count');
      if (withUsers && !prefix.startsWith('presence-')) {
        return this.respond(req, 400, { error: 'info=user_count needs filter_by_prefix=presence-' });
      }
      const list: Record<string, { user_count?: number }> = {};
      for (const name of this.channels) {
        if (!name.startsWith(prefix) || stableCount(name, 50) === 0) continue;
        list[name] = withUsers ? { user_count: stableCount(`${name}#users`, 40) + 1 } : {};
      }
      return this.respond(req, 200, { channels: list });
    }
    if (segments[2] === 'channels' && segments.length === 4) {
      if (method !== 'GET') return notAllowed('GET');
      let name: string;
      try {
        name = decodeURIComponent(segments[3]!);
      } catch {
        return this.respond(req, 400, { error: `invalid channel name ${JSON.stringify(segments[3])}` });
      }
      if (!CHANNEL_NAME.test(name)) return this.respond(req, 400, { error: `invalid channel name ${JSON.stringify(name)}` });
      const known = this.channels.includes(name) && stableCount(name, 50) !== 0;
      const subscriptions = known ? stableCount(`${name}#subs`, 200) + 1 : 0;
      const info: Record<string, unknown> = { occupied: known, subscription_count: subscriptions };
      if (name.startsWith('presence-')) info.user_count = known ? stableCount(`${name}#users`, 40) + 1 : 0;
      return this.respond(req, 200, info);
    }
    if (segments[2] === 'events' && segments.length === 3) {
      if (method !== 'POST') return notAllowed('POST');
      return this.publish(req, body);
    }
    return this.respond(req, 404, { error: `no route for ${url.pathname}` });
  }

  publish(req: IncomingMessage, body: Buffer): Computed {
    let event: unknown;
    try {
      event = JSON.parse(body.toString('utf8'));
    } catch (err) {
      return this.respond(req, 400, { error: 'body is not valid JSON', detail: (err as Error).message });
    }
    if (typeof event !== 'object' || event === null || Array.isArray(event)) {
      return this.respond(req, 400, { error: 'body must be a JSON object with name, channels and data' });
    }
    const { name, channels: targets, channel, data } = event as Record<string, unknown>;
    const list = targets ?? (channel === undefined ? undefined : [channel]);
    if (typeof name !== 'string' || name.length === 0 || name.length > 200) {
      return this.respond(req, 400, { error: `name must be a string of 1–200 characters, got ${JSON.stringify(name)?.slice(0, 80)}` });
    }
    if (!Array.isArray(list) || list.length === 0 || list.length > 100 || !list.every((c) => typeof c === 'string' && CHANNEL_NAME.test(c))) {
      return this.respond(req, 400, { error: 'channels must be an array of 1–100 valid channel names' });
    }
    if (typeof data !== 'string') return this.respond(req, 400, { error: `data must be a string, got ${typeof data}` });
    this.onEventAccepted();
    return this.respond(req, 200, { accepted: true, name, channels: list.length });
  }
}

/**
 * Reads a request body up to `limit` bytes. Bigger bodies are read on and discarded up to `cap`
 * (so the connection stays reusable); past `cap` reading stops (`drained: false`) and the caller
 * closes the connection.
 */
export function readBody(req: IncomingMessage, limit: number, cap: number): Promise<BodyResult> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > cap) {
    return Promise.resolve({ kind: 'too-large', bytes: declared, drained: false });
  }
  return new Promise<BodyResult>((resolve) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    let settled = false;
    const finish = (result: BodyResult): void => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      bytes += chunk.length;
      if (bytes <= limit) chunks.push(chunk);
      else if (bytes > cap) {
        req.pause();
        finish({ kind: 'too-large', bytes, drained: false });
      }
    };
    const complete = (): BodyResult =>
      bytes > limit ? { kind: 'too-large', bytes, drained: true } : { kind: 'ok', body: Buffer.concat(chunks) };
    req.on('data', onData);
    req.once('end', () => finish(complete()));
    req.once('error', () => finish({ kind: 'aborted' }));
    req.once('close', () => finish(req.complete ? complete() : { kind: 'aborted' }));
  });
}

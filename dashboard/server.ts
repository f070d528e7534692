/**
 * `cutover dashboard`'s web server: the page, a JSON API and server-sent event streams over the
 * operator access layer (`ops/`: the same `MigrationSource` the `status`, `watch`, `history` and
 * control commands use), on loopback unless a host is named.
 *
 * Routes:
 * - `GET /`, `GET /migrations/<id>`: the page (it routes itself on the path).
 * - `GET /assets/<name>`: the page's files (see assets.ts), gzipped when the browser accepts it.
 * - `GET /api/migrations`: the list; `GET /api/migrations/<id>`: one migration's view (view.ts).
 * - `GET /api/stream` and `GET /api/migrations/<id>/stream`: server-sent events: `view` with the
 *   whole view whenever it changed (the source is read every `pollMs` while someone watches), and
 *   `problem` when a read failed (the stream goes on). For an AWS source, each read of a watched
 *   migration also makes one CloudWatch `GetMetricData` request (cloudwatch.ts; at most one per
 *   minute per migration), whose series join the view; a plain `GET` shows the last one read.
 * - `POST /api/migrations/<id>/<pause|resume|promote|abort>` with `{"reason"?}`: the control
 *   command, through `MigrationSource.command` as `cutover pause|…` sends it (promote is
 *   `promote --full`). It needs the per-run token (header `X-Cutover-Token`) printed with the
 *   URL, and is refused (403) with `readOnly`.
 *
 * Security: nothing from migration data is ever rendered as HTML (the page sets text only; probe
 * findings carry raw server bytes); every answer carries a Content-Security-Policy of
 * `default-src 'self'`; on loopback, requests naming another host are refused (a DNS-rebinding
 * page cannot reach the API through a name that resolves to 127.0.0.1).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Command } from '../lambda/core/model';
import { OpsError, SourceUsageError, UnknownMigrationError, type MigrationSource } from '../ops/types';
import { INDEX_FILE, loadAssets } from './assets';
import { CloudWatchLiveMetrics, type LiveMetrics } from './cloudwatch';
import { buildMigrationView, viewKey, type ListView, type MigrationView } from './view';

/** The commands the page offers (teardown stays a CLI command: it releases the old side for good). */
export const DASHBOARD_COMMANDS: readonly Command[] = [Command.PAUSE, Command.RESUME, Command.PROMOTE, Command.ABORT];

export interface DashboardServerOptions {
  readonly source: MigrationSource;
  /** What the list page says it shows (e.g. "state directory ./state", "table cutover-migrations"). */
  readonly sourceLabel: string;
  /** Address to listen on. @default '127.0.0.1' */
  readonly host?: string;
  /** Port to listen on; 0 picks a free one. @default 0 */
  readonly port?: number;
  /** Refuse every control command (the server refuses; the page only greys the buttons). @default false */
  readonly readOnly?: boolean;
  /** How often a watched migration (or the list) is read while a page streams it. @default 1000 */
  readonly pollMs?: number;
  /** The token control commands need. @default - 24 random bytes, hex */
  readonly token?: string;
  /**
   * Where a watched AWS migration's per-minute CloudWatch series come from; `false` reads none.
   * A local (rehearsal) source never reads any.
   * A reader given here is the caller's to close; the default one is closed with the server.
   * @default - for an AWS source, `CloudWatchLiveMetrics` with the SDK's standard credential chain
   */
  readonly liveMetrics?: LiveMetrics | false;
  readonly now?: () => number;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);
const IPV4_LITERAL = /^\d{1,3}(\.\d{1,3}){3}$/;
const MAX_BODY_BYTES = 4096;
const MAX_REASON_CHARS = 500;
const HEARTBEAT_MS = 15_000;
const CSP = "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Something an API request got wrong, or could not get: its HTTP status and a stable code. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** One stream's readers, the last payload sent, and the poll that feeds them. */
interface Feed {
  readonly clients: Set<ServerResponse>;
  lastKey?: string;
  lastData?: string;
  timer?: NodeJS.Timeout;
  polling?: Promise<void>;
}

export class DashboardServer {
  readonly token: string;
  private readonly server: Server;
  private readonly feeds = new Map<string, Feed>();
  private readonly pollMs: number;
  private readonly now: () => number;
  private heartbeat?: NodeJS.Timeout;
  private address?: { host: string; port: number };
  private readonly liveMetrics?: LiveMetrics;
  private readonly ownsLiveMetrics: boolean;

  constructor(private readonly options: DashboardServerOptions) {
    this.token = options.token ?? randomBytes(24).toString('hex');
    this.pollMs = options.pollMs ?? 1000;
    if (!Number.isFinite(this.pollMs) || this.pollMs < 50) throw new RangeError(`pollMs must be at least 50 ms, got ${this.pollMs}`);
    this.now = options.now ?? Date.now;
    this.ownsLiveMetrics = options.liveMetrics === undefined && options.source.kind === 'aws';
    if (options.source.kind === 'aws' && options.liveMetrics !== false) this.liveMetrics = options.liveMetrics || new CloudWatchLiveMetrics();
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => this.sendError(res, error));
    });
  }

  /** Listens; resolves with the address. A port in use rejects with the listen error (EADDRINUSE). */
  async start(): Promise<{ readonly url: string; readonly host: string; readonly port: number }> {
    loadAssets(); // a missing asset fails now, not on the first page load
    const host = this.options.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port ?? 0, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const port = (this.server.address() as AddressInfo).port;
    this.address = { host, port };
    this.heartbeat = setInterval(() => this.beat(), HEARTBEAT_MS);
    this.heartbeat.unref();
    const shown = host.includes(':') ? `[${host}]` : host;
    return { url: `http://${shown}:${port}/`, host, port };
  }

  /** The URL with the token, as printed for the user (the page keeps the token and drops it from the address bar). */
  urlWithToken(url: string): string {
    return `${url}?token=${this.token}`;
  }

  /** Ends the streams and stops listening. Idempotent. */
  async close(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const feed of this.feeds.values()) {
      if (feed.timer) clearTimeout(feed.timer);
      for (const client of feed.clients) client.end();
    }
    this.feeds.clear();
    if (this.ownsLiveMetrics) this.liveMetrics?.close();
    await new Promise<void>((resolve) => {
      if (!this.server.listening) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.setHeader('Content-Security-Policy', CSP);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    this.checkHost(req);
    const url = new URL(req.url ?? '/', 'http://dashboard.invalid');
    const parts = url.pathname.split('/').filter(Boolean).map(decodeSegment);
    const method = req.method ?? 'GET';

    if (method === 'GET' && (parts.length === 0 || (parts[0] === 'migrations' && parts.length === 2))) return this.sendIndex(req, res);
    if (method === 'GET' && parts[0] === 'assets' && parts.length === 2) return this.sendAsset(req, res, parts[1]!);
    if (parts[0] !== 'api') throw new HttpError(404, 'not-found', `no page at ${url.pathname}`);

    const [, what, id, action] = parts;
    if (method === 'GET' && what === 'migrations' && id === undefined) return this.sendJson(res, 200, await this.listView());
    if (method === 'GET' && what === 'stream' && id === undefined) return this.subscribe(res, 'list');
    if (what === 'migrations' && id !== undefined) {
      if (method === 'GET' && action === undefined) return this.sendJson(res, 200, await this.migrationView(id));
      if (method === 'GET' && action === 'stream') {
        await this.source.status(id); // an unknown migration is a 404, not an empty stream
        return this.subscribe(res, `m:${id}`);
      }
      if (method === 'POST' && action !== undefined && parts.length === 4) return this.command(req, res, id, action);
    }
    if (method !== 'GET' && method !== 'POST') throw new HttpError(405, 'method-not-allowed', `${method} is not served; the API takes GET and POST`);
    throw new HttpError(404, 'not-found', `no ${method} ${url.pathname}`);
  }

  private get source(): MigrationSource {
    return this.options.source;
  }

  private async listView(): Promise<ListView> {
    const migrations = await this.source.list();
    migrations.sort((a, b) => (b.updatedAtMs ?? 0) - (a.updatedAtMs ?? 0));
    return { builtAtMs: this.now(), source: this.options.sourceLabel, migrations };
  }

  /**
   * One migration's view. `live` (the stream's read of a watched page) may make the CloudWatch
   * request; a plain GET shows the last CloudWatch read, without a call.
   */
  private async migrationView(id: string, live = false): Promise<MigrationView> {
    const state = await this.source.status(id);
    const history = await this.source.history(state.id);
    const now = this.now();
    const metrics = !this.liveMetrics ? undefined : live ? await this.liveMetrics.read(state, now) : this.liveMetrics.cached(state.id);
    return buildMigrationView(state, history, now, metrics);
  }

  // -------------------------------------------------------------------------------------------
  // Server-sent events
  // -------------------------------------------------------------------------------------------

  private subscribe(res: ServerResponse, name: string): void {
    // The browser may have gone while the migration's id was checked: its 'close' has fired
    // already, and a feed subscribed now would be read for nobody until the dashboard stops.
    if (res.destroyed || res.socket?.destroyed) return;
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
    // The browser reconnects by itself after a dropped stream; a second is soon enough.
    res.write('retry: 1000\n\n');
    let feed = this.feeds.get(name);
    if (!feed) {
      feed = { clients: new Set() };
      this.feeds.set(name, feed);
    }
    feed.clients.add(res);
    if (feed.lastData !== undefined) res.write(feed.lastData);
    const current = feed;
    res.on('close', () => {
      current.clients.delete(res);
      if (current.clients.size === 0) {
        if (current.timer) clearTimeout(current.timer);
        this.feeds.delete(name);
      }
    });
    if (!feed.timer && !feed.polling) void this.poll(name, feed);
  }

  /** Reads the feed's source now, sends a changed view, and schedules the next read while anyone listens. */
  private poll(name: string, feed: Feed): Promise<void> {
    if (feed.timer) clearTimeout(feed.timer);
    feed.timer = undefined;
    if (feed.polling) return feed.polling;
    feed.polling = (async () => {
      try {
        const view = name === 'list' ? await this.listView() : await this.migrationView(name.slice(2), true);
        const key = viewKey(view);
        if (key !== feed.lastKey) {
          feed.lastKey = key;
          feed.lastData = `event: view\ndata: ${JSON.stringify(view)}\n\n`;
          for (const client of feed.clients) client.write(feed.lastData);
        }
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        const code = error instanceof OpsError ? error.code : 'internal';
        for (const client of feed.clients) client.write(`event: problem\ndata: ${JSON.stringify({ code, message })}\n\n`);
      } finally {
        feed.polling = undefined;
        if (feed.clients.size > 0 && this.feeds.get(name) === feed) {
          feed.timer = setTimeout(() => void this.poll(name, feed), this.pollMs);
        }
      }
    })();
    return feed.polling;
  }

  private beat(): void {
    for (const feed of this.feeds.values()) for (const client of feed.clients) client.write(': keep-alive\n\n');
  }

  // -------------------------------------------------------------------------------------------
  // Control commands
  // -------------------------------------------------------------------------------------------

  private async command(req: IncomingMessage, res: ServerResponse, id: string, action: string): Promise<void> {
    const command = DASHBOARD_COMMANDS.find((c) => c === action);
    if (!command) throw new HttpError(404, 'unknown-command', `no command ${JSON.stringify(action)}; the dashboard sends ${DASHBOARD_COMMANDS.join(', ')}`);
    if (this.options.readOnly) {
      throw new HttpError(403, 'read-only', `this dashboard was started with --read-only: it sends no commands (use cutover ${command} ${id} instead)`);
    }
    if (!this.tokenMatches(req.headers['x-cutover-token'])) {
      throw new HttpError(403, 'bad-token', 'missing or wrong X-Cutover-Token: open the dashboard with the URL it printed (it carries the token)');
    }
    if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) {
      throw new HttpError(415, 'bad-request', 'send the command as application/json, e.g. {"reason": "…"}');
    }
    const body = await readJson(req);
    const given = typeof body.reason === 'string' ? body.reason.trim() : '';
    if (given.length > MAX_REASON_CHARS) throw new HttpError(400, 'bad-request', `reason is ${given.length} characters; keep it under ${MAX_REASON_CHARS}`);
    const reason = given || `operator ${command} (cutover dashboard)`;
    const abort = new AbortController();
    // The page went away before the answer: a local command not taken yet is withdrawn.
    res.on('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    const outcome = await this.source.command(id, command, reason, { signal: abort.signal });
    // The page should see the command's effect without waiting for the next poll.
    for (const [name, feed] of this.feeds) if (name === `m:${outcome.migrationId}` || name === `m:${id}` || name === 'list') void this.poll(name, feed);
    this.sendJson(res, outcome.applied && !outcome.refusal ? 200 : 409, outcome);
  }

  private tokenMatches(given: string | string[] | undefined): boolean {
    if (typeof given !== 'string') return false;
    const a = Buffer.from(given);
    const b = Buffer.from(this.token);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  // -------------------------------------------------------------------------------------------
  // Answers
  // -------------------------------------------------------------------------------------------

  /**
   * DNS rebinding defence, whatever the address listened on: a page of another site can make its
   * own name resolve to this machine, but it cannot make the browser send another Host. So only
   * requests naming an IP address, localhost, or the name given as --host are answered (the GET
   * API and the streams need no token).
   */
  private checkHost(req: IncomingMessage): void {
    if (!this.address) return;
    const host = (req.headers.host ?? '').toLowerCase();
    const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]!;
    const ownName = this.options.host?.toLowerCase();
    if (LOOPBACK.has(name) || IPV4_LITERAL.test(name) || name.startsWith('[') || name === ownName) return;
    throw new HttpError(421, 'wrong-host', `this dashboard answers for IP addresses, localhost${ownName && !IPV4_LITERAL.test(ownName) ? ` or ${ownName}` : ''} only, not for host ${JSON.stringify(host)}`);
  }

  private sendIndex(req: IncomingMessage, res: ServerResponse): void {
    const index = loadAssets().get(INDEX_FILE)!;
    // The page learns read-only from a meta tag: it needs no inline script for it.
    const html = index.body.toString('utf8').replace('{{READ_ONLY}}', this.options.readOnly ? 'true' : 'false');
    res.setHeader('Cache-Control', 'no-store');
    this.sendBody(req, res, 'text/html; charset=utf-8', Buffer.from(html));
  }

  private sendAsset(req: IncomingMessage, res: ServerResponse, name: string): void {
    const asset = name === INDEX_FILE ? undefined : loadAssets().get(name);
    if (!asset) throw new HttpError(404, 'not-found', `no asset ${JSON.stringify(name)}`);
    res.setHeader('Cache-Control', 'no-cache');
    this.sendBody(req, res, asset.type, asset.body, asset.gzipped);
  }

  private sendBody(req: IncomingMessage, res: ServerResponse, type: string, body: Buffer, gzipped?: Buffer): void {
    const gzip = gzipped !== undefined && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    res.writeHead(200, { 'Content-Type': type, ...(gzip ? { 'Content-Encoding': 'gzip', Vary: 'Accept-Encoding' } : {}) });
    res.end(gzip ? gzipped : body);
  }

  private sendJson(res: ServerResponse, status: number, value: unknown): void {
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(JSON.stringify(value));
  }

  private sendError(res: ServerResponse, error: unknown): void {
    const [status, code, message] =
      error instanceof HttpError
        ? [error.status, error.code, error.message]
        : error instanceof UnknownMigrationError
          ? [404, error.code, error.message]
          : error instanceof SourceUsageError
            ? [400, error.code, error.message]
            : error instanceof OpsError
              ? [error.code === 'not-running' || error.code === 'conflict' ? 409 : 503, error.code, error.message]
              : [500, 'internal', error instanceof Error ? error.message : String(error)];
    if (res.headersSent) {
      res.end();
      return;
    }
    this.sendJson(res, status, { error: { code, message } });
  }
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, 'bad-request', `the path segment ${JSON.stringify(segment)} is not valid percent-encoding`);
  }
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'bad-request', `the request body is over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'bad-request', 'the request body is not JSON; send {"reason": "…"} or nothing');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new HttpError(400, 'bad-request', 'the request body must be a JSON object, e.g. {"reason": "…"}');
  return value as Record<string, unknown>;
}

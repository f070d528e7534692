/**
 * The fleet demo's REST API in a container: the very demo server the local rehearsal runs
 * (`local/demo-server.ts`: routes, `X-Request-Id` echo, `served_by`, the 5XX fault and the
 * incident's duplicated 413), exposed on `0.0.0.0:<port>` for an Application Load Balancer.
 *
 * Why a TCP relay and not a second server: the demo server listens on loopback only (the
 * rehearsal must never serve off the machine), and the incident's bug lives at the byte level of
 * one Keep-Alive connection. A relay that maps each outside connection to one loopback connection
 * and copies bytes both ways, without parsing them, changes nothing of what the load balancer
 * sees: the same responses, the same shift after a 413, on the same connection. Reusing the
 * server keeps one implementation of the API and its faults for the rehearsal and the fleets.
 *
 * The load balancer's health check has a port of its own (`healthPort`), answered here, not by the
 * demo server: it asks whether the server is up (a loopback connection succeeds), not whether its
 * answers are good. The demo's `5xx` fault spares no path, `/health` included; judged by the
 * target group's health check it would get the tasks replaced by ECS before Cutover could judge
 * the release, which is the point of the demo.
 *
 * `readContainerConfig` reads the container's environment (see `ContainerConfig`);
 * `startContainerServer` starts the servers; `main.ts` wires them to the process.
 */
import { createServer as createHttpServer } from 'node:http';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { startDemoServer, type DemoFaults, type DemoServer, type DemoServerStats } from '../../local/demo-server';

/** What the container is told through its environment. */
export interface ContainerConfig {
  /** `PORT`: the port the load balancer's target group sends to. @default 8080 */
  readonly port: number;
  /** `HEALTH_PORT`: the port of the load balancer's health check (`GET /health`). @default 8081 */
  readonly healthPort: number;
  /**
   * `CUTOVER_DEMO_VERSION`: the label every answer carries as `served_by` and `x-served-by`
   * (1–32 of letters, digits, `.`, `_`, `-`), e.g. `old-1` or `new-2`.
   * @default 'demo'
   */
  readonly version: string;
  /**
   * `DEMO_FAULT_5XX_RATE` (0–1) and `DEMO_FAULT_DESYNC_AFTER_413` (`true`/`false`).
   * @default - no faults
   */
  readonly faults: Partial<DemoFaults>;
}

/** Options of `startContainerServer`. */
export interface ContainerServerOptions extends ContainerConfig {
  /**
   * Address the relay listens on.
   * @default '0.0.0.0' (every interface of the task: the load balancer reaches it by the task's IP)
   */
  readonly host?: string;
  /**
   * Idle time before the server closes a Keep-Alive connection. Longer than the Application Load
   * Balancer's idle timeout (60 s by default), as AWS advises for targets: otherwise the load
   * balancer may reuse a connection the target is closing, and its client gets a 502.
   * @default 65_000
   */
  readonly keepAliveTimeoutMs?: number;
}

/** A running container server. */
export interface ContainerServer {
  /** The relay's port (the one given, or the one the OS chose for port 0). */
  readonly port: number;
  /** The health check's port (likewise). */
  readonly healthPort: number;
  /** The demo server's counters (responses by status, shifted connections, …). */
  stats(): DemoServerStats;
  /** Stops accepting, closes every relayed connection and the demo server. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * The container's settings from `env`. Throws a RangeError naming the variable and its value when
 * one is invalid, so that a bad task definition fails at start with a line in the task's log.
 */
export function readContainerConfig(env: Readonly<Record<string, string | undefined>>): ContainerConfig {
  const text = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  };
  const portOf = (name: string, fallback: number): number => {
    const port = Number(text(name) ?? fallback);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new RangeError(`environment variable ${name} must be a port number from 1 to 65535, got ${JSON.stringify(env[name])}`);
    }
    return port;
  };
  const port = portOf('PORT', 8080);
  const healthPort = portOf('HEALTH_PORT', 8081);
  if (healthPort === port) {
    throw new RangeError(`environment variables PORT and HEALTH_PORT must differ, both are ${port}`);
  }
  const version = text('CUTOVER_DEMO_VERSION') ?? 'demo';
  if (!/^[A-Za-z0-9._-]{1,32}$/.test(version)) {
    throw new RangeError(`environment variable CUTOVER_DEMO_VERSION must be 1–32 letters, digits, ".", "_" or "-", got ${JSON.stringify(version)}`);
  }
  const faults: { -readonly [K in keyof DemoFaults]?: DemoFaults[K] } = {};
  const rate = text('DEMO_FAULT_5XX_RATE');
  if (rate !== undefined) {
    const value = Number(rate);
    if (!Number.isFinite(value) || value < 0 || value > 1) {
      throw new RangeError(`environment variable DEMO_FAULT_5XX_RATE must be a number from 0 to 1, got ${JSON.stringify(rate)}`);
    }
    faults.errorRate5xx = value;
  }
  const desync = text('DEMO_FAULT_DESYNC_AFTER_413');
  if (desync !== undefined) {
    if (desync !== 'true' && desync !== 'false') {
      throw new RangeError(`environment variable DEMO_FAULT_DESYNC_AFTER_413 must be "true" or "false", got ${JSON.stringify(desync)}`);
    }
    faults.desyncAfter413 = desync === 'true';
  }
  return { port, healthPort, version, faults };
}

/**
 * Starts the demo server on loopback, the relay on `host:port` and the health check on
 * `host:healthPort`; resolves once all listen, or rejects with nothing left running.
 */
export async function startContainerServer(options: ContainerServerOptions): Promise<ContainerServer> {
  const demo = await startDemoServer({
    version: options.version,
    faults: options.faults,
    keepAliveTimeoutMs: options.keepAliveTimeoutMs ?? 65_000,
  });
  const connections = new Set<Socket>();
  // allowHalfOpen: a client that finished sending (FIN) still gets the answer in flight; the end
  // is passed on to the other side by pipe().
  const relay = createServer({ allowHalfOpen: true, noDelay: true }, (outside) => relayConnection(outside, demo, connections));
  const health = healthServer(demo, options.version);
  const host = options.host ?? '0.0.0.0';
  const stopAll = async () => {
    const stopped = [relay, health].filter((server) => server.listening).map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
    for (const socket of connections) socket.destroy();
    health.closeAllConnections();
    await Promise.all(stopped);
    await demo.close();
  };
  try {
    await listen(relay, options.port, host);
    await listen(health, options.healthPort, host);
  } catch (error) {
    await stopAll();
    throw error;
  }
  let closing: Promise<void> | undefined;
  return {
    port: portOf(relay),
    healthPort: portOf(health),
    stats: () => demo.stats(),
    close() {
      closing ??= stopAll();
      return closing;
    },
  };
}

/** `GET /health`: 200 while the demo server accepts a loopback connection, else 503. */
function healthServer(demo: DemoServer, version: string) {
  const server = createHttpServer((req, res) => {
    const answer = (status: number, body: Record<string, unknown>) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ...body, version }));
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return answer(405, { error: 'use GET' });
    if (req.url !== '/health') return answer(404, { error: `no route for ${req.url}` });
    const probe = connect({ host: '127.0.0.1', port: demo.port });
    probe.setTimeout(2000, () => probe.destroy(new Error('no answer within 2 s')));
    probe.once('connect', () => {
      probe.destroy();
      answer(200, { status: 'ok' });
    });
    probe.once('error', (error) => answer(503, { status: 'down', error: error.message }));
  });
  server.keepAliveTimeout = 65_000; // longer than the load balancer's idle timeout, as for the API
  return server;
}

function portOf(server: Server): number {
  const address = server.address();
  if (address === null || typeof address !== 'object') throw new Error(`server has no TCP address (got ${String(address)})`);
  return address.port;
}

/** One outside connection ↔ one loopback connection to the demo server, bytes copied unchanged. */
function relayConnection(outside: Socket, demo: DemoServer, connections: Set<Socket>): void {
  const inside = connect({ host: '127.0.0.1', port: demo.port, allowHalfOpen: true, noDelay: true });
  for (const socket of [outside, inside]) {
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
    // A failure on either side resets both: the demo server's "crashed" fault (a TCP RST) must
    // reach the load balancer as a reset, not as a clean end.
    socket.once('error', () => {
      if (!outside.destroyed) outside.resetAndDestroy();
      if (!inside.destroyed) inside.resetAndDestroy();
    });
  }
  // A clean end travels through pipe() (end() flushes what is still buffered, then sends FIN);
  // only an outside connection gone for good makes the loopback one pointless.
  outside.once('close', () => inside.destroy());
  outside.pipe(inside);
  inside.pipe(outside);
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (error: Error) => reject(new Error(`cannot listen on ${host}:${port}: ${error.message}`, { cause: error }));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

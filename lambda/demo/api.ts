/**
 * The demo REST function behind API Gateway (Lambda proxy integration): a tiny channels/events API
 * that publishes the per-version application metrics the controller judges.
 *
 * Routes: `GET /health`, `GET /channels`, `GET /channels/{name}`, `POST /events` (JSON body of at
 * most 10 KiB, else 413). Metrics (EMF, namespace `CUTOVER_APP_METRICS_NAMESPACE`, dimensions
 * `{FunctionName, Version}` with the executing version): `Requests`, `Errors4xx`, `Errors5xx`
 * (Count) and `LatencyMs` (Milliseconds), one EMF line per request. Requests of the Cutover
 * Keep-Alive probe (header `X-Cutover-Probe: 1`, see lambda/probe/marker.ts) are answered like any
 * other but not counted: their 404, 413, 405, 400 and 401 are the probe's doing, not the version's.
 *
 * `DEMO_FAULT_5XX_RATE` (0–1, default 0) makes that share of API requests fail with 503, to watch
 * a rollback on purpose. `/health` never fails this way, so probes keep measuring the connection
 * handling rather than the injected fault.
 *
 * Events are kept in memory per execution environment (at most 100 per channel): it is a demo.
 */
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
// The marker alone (no imports of its own): the probe engine stays out of this bundle.
import { isProbeRequest } from '../probe/marker';

/** Largest accepted POST body. */
export const MAX_BODY_BYTES = 10 * 1024;
const MAX_EVENTS_PER_CHANNEL = 100;

const CHANNELS: Readonly<Record<string, string>> = {
  deploys: 'Deployments and their outcome',
  alerts: 'Alarms that fired',
  chat: 'Messages between people',
};

interface StoredEvent {
  readonly id: string;
  readonly channel: string;
  readonly type: string;
  readonly data: unknown;
  readonly receivedAt: string;
}

const faultRate = parseFaultRate(process.env.DEMO_FAULT_5XX_RATE);
const functionName = process.env.AWS_LAMBDA_FUNCTION_NAME || 'cutover-demo';
// The version that runs this code: `$LATEST` outside a published version.
const version = process.env.AWS_LAMBDA_FUNCTION_VERSION || '$LATEST';
const metrics = new Metrics({
  namespace: process.env.CUTOVER_APP_METRICS_NAMESPACE || process.env.POWERTOOLS_METRICS_NAMESPACE || 'CutoverDemo',
  serviceName: 'cutover-demo',
});
// Exactly the contract's dimensions: a `service` dimension would make the series unreadable by
// metrics that name only {FunctionName, Version}.
metrics.clearDefaultDimensions();
const events = new Map<string, StoredEvent[]>();
let sequence = 0;

export function parseFaultRate(text: string | undefined): number {
  if (text === undefined || text.trim() === '') return 0;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0 || value > 1) {
    throw new RangeError(`environment variable DEMO_FAULT_5XX_RATE must be a number from 0 to 1, got ${JSON.stringify(text)}`);
  }
  return value;
}

export async function handler(event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> {
  const started = Date.now();
  let response: APIGatewayProxyResult;
  try {
    response = route(event);
  } catch (error) {
    console.error(JSON.stringify({ message: 'unhandled error', error: error instanceof Error ? error.stack : String(error) }));
    response = json(500, { error: 'internal error' });
  }
  // The probe's requests are answered normally but left out of the judged metrics.
  if (isProbeRequest(event.headers) || isProbeRequest(event.multiValueHeaders)) return response;
  metrics.addDimensions({ FunctionName: functionName, Version: version });
  metrics.addMetric('Requests', MetricUnit.Count, 1);
  metrics.addMetric('Errors4xx', MetricUnit.Count, response.statusCode >= 400 && response.statusCode < 500 ? 1 : 0);
  metrics.addMetric('Errors5xx', MetricUnit.Count, response.statusCode >= 500 ? 1 : 0);
  metrics.addMetric('LatencyMs', MetricUnit.Milliseconds, Date.now() - started);
  metrics.publishStoredMetrics();
  return response;
}

function route(event: APIGatewayProxyEvent): APIGatewayProxyResult {
  const method = (event.httpMethod || 'GET').toUpperCase();
  const path = (event.path || '/').replace(/\/+$/, '') || '/';

  if (path === '/health') {
    return method === 'GET' || method === 'HEAD' ? json(200, { status: 'ok', version }) : notAllowed('GET, HEAD');
  }
  if (faultRate > 0 && Math.random() < faultRate) {
    return json(503, { error: 'injected fault (DEMO_FAULT_5XX_RATE)' });
  }
  if (path === '/channels') {
    if (method !== 'GET') return notAllowed('GET');
    return json(200, {
      channels: Object.entries(CHANNELS).map(([name, description]) => ({ name, description, events: events.get(name)?.length ?? 0 })),
    });
  }
  const channel = /^\/channels\/([^/]+)$/.exec(path);
  if (channel) {
    if (method !== 'GET') return notAllowed('GET');
    const name = decodeURIComponent(channel[1]!);
    const description = CHANNELS[name];
    if (!description) return json(404, { error: `no channel ${JSON.stringify(name)}`, channels: Object.keys(CHANNELS) });
    return json(200, { name, description, recentEvents: events.get(name) ?? [] });
  }
  if (path === '/events') {
    if (method !== 'POST') return notAllowed('POST');
    return postEvent(event);
  }
  return json(404, { error: `no route for ${method} ${path}` });
}

function postEvent(event: APIGatewayProxyEvent): APIGatewayProxyResult {
  const raw = event.body ?? '';
  const bytes = event.isBase64Encoded ? Buffer.from(raw, 'base64') : Buffer.from(raw, 'utf8');
  if (bytes.length > MAX_BODY_BYTES) {
    return json(413, { error: `body of ${bytes.length} bytes is over the ${MAX_BODY_BYTES}-byte limit` });
  }
  let body: unknown;
  try {
    body = JSON.parse(bytes.toString('utf8'));
  } catch {
    return json(400, { error: 'body must be JSON: {"channel": "...", "type": "...", "data": ...}' });
  }
  const { channel, type, data } = (body ?? {}) as { channel?: unknown; type?: unknown; data?: unknown };
  if (typeof channel !== 'string' || typeof type !== 'string' || type.trim() === '' || type.length > 100) {
    return json(400, { error: 'body needs "channel" (string) and "type" (1–100 characters)' });
  }
  if (!CHANNELS[channel]) return json(404, { error: `no channel ${JSON.stringify(channel)}`, channels: Object.keys(CHANNELS) });
  const stored: StoredEvent = {
    id: `${version}-${Date.now().toString(36)}-${(++sequence).toString(36)}`,
    channel,
    type,
    data: data ?? null,
    receivedAt: new Date().toISOString(),
  };
  const list = events.get(channel) ?? [];
  list.push(stored);
  if (list.length > MAX_EVENTS_PER_CHANNEL) list.splice(0, list.length - MAX_EVENTS_PER_CHANNEL);
  events.set(channel, list);
  return json(202, stored);
}

function notAllowed(allow: string): APIGatewayProxyResult {
  return { ...json(405, { error: `method not allowed; use ${allow}` }), headers: { 'content-type': 'application/json', allow } };
}

function json(statusCode: number, body: unknown): APIGatewayProxyResult {
  return { statusCode, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

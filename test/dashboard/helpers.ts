/**
 * Helpers for the dashboard's tests: a state directory with migrations whose event logs carry
 * the judge's evidence (as a controller writes them), a dashboard server on an ephemeral loopback
 * port, and a reader of its server-sent events.
 */
import { MigrationStatus, type MigrationEvent, type Signals } from '../../lambda/core/model';
import { LocalMigrationSource } from '../../ops/local-source';
import { DashboardServer, type DashboardServerOptions } from '../../dashboard/server';
import { fileStore, makeEvent, makeRecord } from '../ops/helpers';

export const T0 = 1_700_000_000_000;

/** A judged window's signals: `new5xx` of `newRequests` failed on the new side. */
export function judged(atMs: number, newRequests: number, new5xx: number, cusum5xx: number): Signals {
  return {
    window: {
      fromMs: atMs - 1000,
      toMs: atMs,
      old: { requests: 200, errors4xx: 4, errors5xx: 0, latencyMs: 40 },
      new: { requests: newRequests, errors4xx: 1, errors5xx: new5xx, latencyMs: 55 },
    },
    stats: { cusum5xx, cusum4xx: 0.5, cusumSlow: 0, cusumCeiling: cusum5xx / 2, threshold: Math.log(100_000), slowThresholdMs: 190 },
    probes: [{ side: 'new', verdict: 'ok', atMs: atMs - 500, summary: 'ok: 9 steps answered in order', findings: 0 }],
    capacity: { current: 5, pinned: 5, ready: true },
  };
}

/**
 * A migration that went 10 % → 50 % and is baking, with one judged window per event; `rolledBack`
 * ends it with a desync rollback whose probe findings hold raw bytes (markup included).
 */
export async function writeJudgedMigration(dir: string, id: string, options: { readonly rolledBack?: boolean } = {}): Promise<MigrationEvent[]> {
  const e = (seq: number, overrides: Partial<MigrationEvent>): MigrationEvent => makeEvent(id, seq, { atMs: T0 + seq * 1000, ...overrides });
  const events: MigrationEvent[] = [
    e(1, { type: 'created', from: MigrationStatus.PENDING, to: MigrationStatus.PENDING, weight: 0, step: -1, code: 'created', reason: 'migration created' }),
    e(2, { type: 'advanced', from: MigrationStatus.SHIFTING, to: MigrationStatus.BAKING, weight: 10, step: 0, code: 'gate-passed', reason: 'gate passed' }),
    e(3, { type: 'held', weight: 10, step: 0, signals: judged(T0 + 3000, 40, 0, 0) }),
    e(4, { type: 'advanced', from: MigrationStatus.SHIFTING, to: MigrationStatus.BAKING, weight: 50, step: 1, code: 'healthy', reason: 'step passed', signals: judged(T0 + 4000, 45, 0, 0) }),
    e(5, { type: 'held', weight: 50, step: 1, signals: judged(T0 + 5000, 200, 2, 1.5) }),
  ];
  if (options.rolledBack) {
    const probe = { side: 'new' as const, verdict: 'desync' as const, atMs: T0 + 5800, summary: 'desync: got <script>alert(1)</script> HTTP/1.1 200 for another request', findings: 3 };
    events.push(
      e(6, {
        type: 'rolled-back',
        from: MigrationStatus.BAKING,
        to: MigrationStatus.ROLLED_BACK,
        weight: 0,
        step: 1,
        code: 'probe-desync',
        reason: 'Keep-Alive probe found a desync on the new side',
        signals: { ...judged(T0 + 6000, 210, 3, 2), probes: [probe] },
      }),
      e(7, {
        type: 'rollback-residual',
        from: MigrationStatus.ROLLED_BACK,
        to: MigrationStatus.ROLLED_BACK,
        weight: 0,
        step: 1,
        code: 'drained',
        reason: 'the new side drained',
        signals: {
          residual: {
            requestsAfterRollback: 12,
            wrongAnswersAfterRollback: 12,
            wrongAnswersBound: true,
            drainedAfterMs: 4000,
            drained: true,
            peakRequestsPerMinute: 12_000,
            thresholdRequestsPerMinute: 120,
            activeDrain: true,
          },
        },
      }),
    );
  }
  const last = events[events.length - 1]!;
  const record = makeRecord(id, {
    status: last.to,
    weight: last.weight,
    step: last.step,
    eventSeq: events.length,
    updatedAtMs: last.atMs,
    plan: { steps: [{ weight: 10, bakeMs: 60_000 }, { weight: 50, bakeMs: 60_000 }, { weight: 100, bakeMs: 60_000 }], soakMs: 60_000, healthWindowMs: 60_000, teardown: 'manual' },
  });
  await fileStore(dir).save(id, record, 0, events);
  return events;
}

export interface Running {
  readonly server: DashboardServer;
  readonly base: string;
  readonly source: LocalMigrationSource;
  readonly close: () => Promise<void>;
}

/** A dashboard on 127.0.0.1, an ephemeral port, over a state directory. */
export async function startDashboard(stateDir: string, options: Partial<DashboardServerOptions> = {}): Promise<Running> {
  const source = new LocalMigrationSource({ stateDir, waitMs: 1500, graceMs: 1000, pollMs: 20 });
  const server = new DashboardServer({ source, sourceLabel: 'test state directory', pollMs: 100, ...options });
  const { url } = await server.start();
  return {
    server,
    base: url.replace(/\/$/, ''),
    source,
    close: async () => {
      await server.close();
      source.close();
    },
  };
}

export interface SseEvent {
  readonly event: string;
  readonly data: unknown;
}

/**
 * Reads a server-sent event stream until `until` accepts an event (or `timeoutMs` passes), and
 * returns every event read.
 */
export async function readEvents(url: string, until: (event: SseEvent, all: readonly SseEvent[]) => boolean, timeoutMs = 5000): Promise<SseEvent[]> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  const events: SseEvent[] = [];
  try {
    const response = await fetch(url, { signal: abort.signal });
    if (!response.ok || !response.body) throw new Error(`stream ${url}: HTTP ${response.status} ${await response.text()}`);
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of response.body) {
      buffer += decoder.decode(chunk as Uint8Array, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const name = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (name === undefined || data === undefined) continue;
        const event = { event: name, data: JSON.parse(data) as unknown };
        events.push(event);
        if (until(event, events)) return events;
      }
    }
    throw new Error('the stream ended');
  } catch (error) {
    if (abort.signal.aborted) throw new Error(`no matching event within ${timeoutMs} ms; got ${JSON.stringify(events.map((e) => e.event))}`);
    throw error;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}

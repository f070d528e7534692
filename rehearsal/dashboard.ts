/**
 * `cutover rehearse --dashboard` and `--report <file>`: the web dashboard of the rehearsal in
 * progress, and the same views as one self-contained HTML file at the end of the run.
 *
 * Both read the rehearsal's state directory through the operator access layer
 * (`LocalMigrationSource`), exactly as `cutover dashboard --state-dir` does; so the directory must
 * outlive the run's own cleanup: the caller keeps it (a temporary one when the user named none)
 * and removes it once the dashboard is closed and the report written.
 */
import { mkdirSync } from 'node:fs';
import { DashboardServer } from '../dashboard/server';
import { collectViews, renderReport } from '../dashboard/report';
import type { MigrationView, ResidualView } from '../dashboard/view';
import { LocalMigrationSource } from '../ops/local-source';
import type { RehearsalReport } from './report';
import { writeFileSync } from 'node:fs';

export interface RehearsalDashboardOptions {
  readonly stateDir: string;
  /** Port of the dashboard; 0 picks a free one. @default 0 */
  readonly port?: number;
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** How often the page's migration is read. @default 500 */
  readonly pollMs?: number;
}

/** The dashboard of a running rehearsal. */
export class RehearsalDashboard {
  private constructor(
    private readonly server: DashboardServer,
    private readonly source: LocalMigrationSource,
    /** The server's root URL (without the token). */
    readonly url: string,
  ) {}

  /** Starts the server on the state directory (created if missing, since the run has not made it yet). */
  static async open(options: RehearsalDashboardOptions): Promise<RehearsalDashboard> {
    mkdirSync(options.stateDir, { recursive: true });
    const source = new LocalMigrationSource({ stateDir: options.stateDir });
    const server = new DashboardServer({
      source,
      sourceLabel: 'this rehearsal',
      host: options.host ?? '127.0.0.1',
      port: options.port ?? 0,
      pollMs: options.pollMs ?? 500,
    });
    const { url } = await server.start();
    return new RehearsalDashboard(server, source, url);
  }

  /** The page of one migration, with the token its actions need. */
  migrationUrl(id: string): string {
    return this.server.urlWithToken(`${this.url}migrations/${encodeURIComponent(id)}`);
  }

  async close(): Promise<void> {
    await this.server.close();
    this.source.close();
  }
}

/**
 * Writes the report file of a finished rehearsal: the dashboard's views of its migration, with the
 * rehearsal's own residual figures after a rollback (its clients counted wrong answers exactly).
 */
export async function writeRehearsalReport(path: string, stateDir: string, report: Pick<RehearsalReport, 'migrationId' | 'rollback'>, now: () => number = Date.now): Promise<{ bytes: number }> {
  const source = new LocalMigrationSource({ stateDir });
  try {
    const views = (await collectViews(source, [report.migrationId], now)).map((view) => withResidual(view, report));
    const html = renderReport({ generatedAtMs: now(), views });
    writeFileSync(path, html);
    return { bytes: Buffer.byteLength(html) };
  } finally {
    source.close();
  }
}

function withResidual(view: MigrationView, report: Pick<RehearsalReport, 'rollback'>): MigrationView {
  const residual = report.rollback?.residual;
  if (view.residual || !residual || !report.rollback) return view;
  const created = view.decisions[0]?.atMs ?? view.builtAtMs;
  const fromRehearsal: ResidualView = {
    // The rehearsal's times are from its start; the log's first event is close to it.
    atMs: created + report.rollback.atMs,
    requestsAfterRollback: residual.requestsAfterRollback,
    wrongAnswersAfterRollback: residual.wrongAnswersAfterRollback,
    drained: residual.drained,
    ...(residual.drainedAfterMs !== undefined ? { drainedAfterMs: residual.drainedAfterMs } : {}),
    activeDrain: residual.activeDrain,
  };
  return { ...view, residual: fromRehearsal };
}

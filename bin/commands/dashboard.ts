/**
 * `cutover dashboard`: a local web page showing every migration the source holds (a rehearsal's
 * state directory, or AWS through the migration table), each one live over server-sent events,
 * with pause / resume / promote / abort behind a confirmation (refused with `--read-only`). It
 * reads through the same access layer as `status`, `watch` and `history` (ops/), and sends
 * commands as the control commands do. See docs/dashboard.md.
 *
 * Exit codes: 0 stopped by Ctrl-C (or SIGTERM), 2 usage error (bad flag, port in use),
 * 5 the source could not be read.
 */
import type { Command } from 'commander';
import { parseInterval } from './watch';
import { EXIT, OpsError, type MigrationSource } from '../../ops/types';
import { addSourceOptions, defaultIo, fail, openSource, printJson, type OpsIo, type SourceFlags } from './ops-common';
import { CloudWatchLiveMetrics } from '../../dashboard/cloudwatch';
import { DashboardServer } from '../../dashboard/server';

export interface DashboardFlags extends SourceFlags {
  readonly port: string;
  readonly host: string;
  readonly readOnly?: boolean;
  /** @default '1s' for a state directory, '5s' for AWS (each read queries the table) */
  readonly interval?: string;
}

export interface DashboardIo extends OpsIo {
  /** Aborting stops the server (the CLI wires Ctrl-C to it). */
  readonly signal?: AbortSignal;
  /** Called once the server listens (tests learn the URL and token from it). */
  readonly onListening?: (url: string, server: DashboardServer) => void;
}

const LOOPBACK = ['127.0.0.1', 'localhost', '::1'];

export function registerDashboardCommand(program: Command, io: DashboardIo = defaultIo): void {
  const command = program
    .command('dashboard')
    .description('open a local web dashboard of the migrations (live charts, the judge\'s evidence, probes, the decision log, actions)')
    .option('--port <n>', 'port to listen on (0 = any free port)', '0')
    .option('--host <address>', 'address to listen on; anything but loopback makes the page reachable from other machines', '127.0.0.1')
    .option('--read-only', 'show only: the server refuses pause, resume, promote and abort')
    .option('--interval <duration>', 'how often a watched migration is read (5, 5s, 500ms, 1m; default 1s for --state-dir, 5s for AWS)');
  addSourceOptions(command, { controller: true })
    .addHelpText('after', '\nExit codes: 0 stopped (Ctrl-C), 2 usage error (bad flag, port in use), 5 the source could not be read.')
    .action(async (flags: DashboardFlags) => {
      const abort = new AbortController();
      const onSignal = (): void => abort.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        process.exitCode = await dashboardCommand(flags, { ...io, signal: abort.signal });
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}

/** Parsed listening options, or the usage error's message. */
export function parseListenFlags(flags: Pick<DashboardFlags, 'port' | 'host' | 'interval' | 'stateDir'>): { port: number; host: string; pollMs: number } {
  const portText = flags.port.trim();
  if (!/^\d+$/.test(portText) || Number(portText) > 65_535) {
    throw new Error(`--port must be a whole number from 0 to 65535 (0 = any free port), got ${JSON.stringify(flags.port)}`);
  }
  const host = flags.host.trim();
  if (host === '' || /[\s/]/.test(host)) throw new Error(`--host must be an address such as 127.0.0.1 or 0.0.0.0, got ${JSON.stringify(flags.host)}`);
  return { port: Number(portText), host, pollMs: parseInterval(flags.interval ?? (flags.stateDir !== undefined ? '1s' : '5s')) };
}

export async function dashboardCommand(flags: DashboardFlags, io: DashboardIo = defaultIo): Promise<number> {
  let listen;
  try {
    listen = parseListenFlags(flags);
  } catch (error) {
    return fail('dashboard', flags, io, (error as Error).message, EXIT.usage, 'usage');
  }
  let source: MigrationSource | undefined;
  let server: DashboardServer | undefined;
  let liveMetrics: CloudWatchLiveMetrics | undefined;
  try {
    source = await openSource(flags, io, 'read');
    await source.list(); // an unreadable source is an error now, not a blank page
    // CloudWatch in the region the table is read in (the server's own reader takes the SDK's chain).
    const region = flags.region?.trim();
    if (source.kind === 'aws' && region) liveMetrics = new CloudWatchLiveMetrics({ clientOptions: { region } });
    server = new DashboardServer({
      source,
      sourceLabel: flags.stateDir !== undefined ? `state directory ${flags.stateDir}` : `table ${flags.table ?? (io.env ?? process.env).CUTOVER_TABLE}`,
      host: listen.host,
      port: listen.port,
      pollMs: listen.pollMs,
      readOnly: flags.readOnly === true,
      ...(liveMetrics ? { liveMetrics } : {}),
    });
    let url: string;
    try {
      ({ url } = await server.start());
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
        const why =
          code === 'EADDRINUSE' ? 'is in use' : code === 'EACCES' ? 'needs privileges' : code === 'EADDRNOTAVAIL' ? 'is not an address of this machine' : 'does not resolve to an address';
        return fail('dashboard', flags, io, `${listen.host}:${listen.port} ${why}; choose another --port (0 = any free port) or --host`, EXIT.usage, 'usage');
      }
      throw error;
    }
    const withToken = server.urlWithToken(url);
    if (flags.json) printJson(io, { url, token: server.token, readOnly: flags.readOnly === true });
    else {
      io.stdout(`Cutover dashboard: ${withToken}\n`);
      io.stdout(`  ${flags.readOnly ? 'read-only: no commands are sent' : 'the link carries the token that actions need; share it with no one'} · Ctrl-C to stop\n`);
    }
    if (!LOOPBACK.includes(listen.host)) io.stderr(`cutover dashboard: listening on ${listen.host}: other machines can open the page (actions still need the token)\n`);
    io.onListening?.(withToken, server);
    await new Promise<void>((resolve) => {
      if (!io.signal || io.signal.aborted) return resolve();
      io.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    return EXIT.ok;
  } catch (error) {
    if (!(error instanceof OpsError)) throw error;
    return fail('dashboard', flags, io, error.message, error.exitCode, error.code);
  } finally {
    await server?.close();
    liveMetrics?.close();
    source?.close();
  }
}


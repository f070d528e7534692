/**
 * `cutover rehearse`: runs a whole migration on loopback and reports it.
 * Exit codes: 0 the rehearsal ran (whatever its outcome), 2 usage error (unknown scenario or
 * flag, invalid plan, port in use, `--drain-interval` with `--no-drain`), 130 interrupted by
 * Ctrl-C and 143 by SIGTERM (everything is stopped and the summary, or with `--json` the report,
 * of the run so far is printed; a second Ctrl-C exits at once), anything else a crash.
 *
 * With `--json` stdout carries the JSON report and nothing else: the line saying the run started,
 * the migration's id with `--state-dir`, notices about an interrupt and where a failed run's state
 * was kept go to stderr.
 *
 * With `--state-dir` the running rehearsal takes the operator commands sent to that directory
 * (`cutover pause <id> --state-dir <dir>`, …) before each tick: see `ops/inbox.ts`.
 *
 * `--dashboard` serves the web dashboard of the rehearsal in progress (its URL on stderr, or in the
 * live view), and `--report <file>` writes the dashboard's views as one self-contained HTML file at
 * the end (rehearsal/dashboard.ts, docs/dashboard.md). Both read the state directory, so a
 * temporary one is kept for the run and removed once they are done.
 */
import { accessSync, constants, rmSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { PortInUseError } from '../../local/net';
import { ProbeUsageError } from '../../lambda/probe';
import {
  DEFAULT_REHEARSAL_SOAK,
  DEFAULT_REHEARSAL_STEPS,
  DEFAULT_REHEARSAL_WINDOW,
  UsageError,
  buildRehearsalPlan,
  parseDuration,
  parseInteger,
  parseShare,
} from '../../rehearsal/options';
import { InterruptGuard, type InterruptSignal } from '../../rehearsal/interrupt';
import { DEFAULT_DRAIN_INTERVAL_MS, RehearsalFailedError, runRehearsal, temporaryStateDir } from '../../rehearsal/run';
import { DEFAULT_DNS_TTL_MS, DEFAULT_STALE_CLIENTS, SHIFT_MODES, type ShiftMode } from '../../rehearsal/shift';
import { SCENARIOS, SCENARIO_NAMES, findScenario } from '../../rehearsal/scenarios';
import { LiveView } from '../../rehearsal/view';
import { RehearsalDashboard, writeRehearsalReport } from '../../rehearsal/dashboard';

interface RehearseFlags {
  scenario: string;
  json?: boolean;
  port: string;
  steps: string;
  soak: string;
  window: string;
  seed: string;
  shift: string;
  ttl?: string;
  staleClients?: string;
  drainInterval: string;
  drain: boolean;
  maxWatch?: string;
  stateDir?: string;
  dashboard?: boolean;
  dashboardPort: string;
  report?: string;
}

export function registerRehearseCommand(program: Command): void {
  program
    .command('rehearse')
    .description('rehearse a whole migration on loopback: two demo servers, a traffic router, Keep-Alive clients, probes, rollback')
    .addOption(new Option('--scenario <name>', 'what goes wrong on the new side').default('healthy'))
    .option('--json', 'print one JSON report instead of the live view')
    .option('--port <n>', 'port of the traffic router on 127.0.0.1 (0 = any free port)', '0')
    .option('--steps <list>', 'plan steps as <weight>@<bake>, comma-separated', DEFAULT_REHEARSAL_STEPS)
    .option('--soak <duration>', 'soak after 100%', DEFAULT_REHEARSAL_SOAK)
    .option('--window <duration>', 'health window the judge looks at', DEFAULT_REHEARSAL_WINDOW)
    .option('--seed <n>', 'seed for routing and client randomness', '1')
    .addOption(new Option('--shift <mode>', 'how traffic moves: proxy (a router decides per request) or dns (weighted answers clients cache)').default('proxy'))
    .option('--ttl <duration>', `dns: TTL of the weighted answers (default ${DEFAULT_DNS_TTL_MS / 1000}s)`)
    .option('--stale-clients <share>', `dns: share of clients (0-1) that ignore the TTL (default ${DEFAULT_STALE_CLIENTS})`)
    .option('--drain-interval <duration>', 'after a rollback with dns: how long past the TTL the new side still takes connections before refusing them', `${DEFAULT_DRAIN_INTERVAL_MS / 1000}s`)
    .option('--no-drain', 'after a rollback, leave the new side answering normally (Keep-Alive kept, connections accepted) and only watch its residual traffic')
    .option('--state-dir <dir>', 'keep the migration\'s record and event log in <dir> (created if missing) for the operator commands: status, watch and history read it, and pause, resume, abort, promote --full and teardown reach the running rehearsal through it; by default they go to a temporary directory removed at the end')
    .option('--dashboard', 'open the web dashboard of the rehearsal in progress (prints its URL; it stays open after the run until Ctrl-C on a terminal)')
    .option('--dashboard-port <n>', 'port of --dashboard on 127.0.0.1 (0 = any free port)', '0')
    .option('--report <file>', "write the dashboard's views of the run to <file> as one self-contained HTML page at the end")
    .option('--max-watch <duration>', 'longest the residual watch lasts after a rollback (default: twice its bound + 5s; with dns at least 12 TTLs + one window, so that the stale clients\' answers can run out)')
    .addHelpText('after', `\nScenarios:\n${SCENARIOS.map((s) => `  ${s.name.padEnd(28)} ${s.description}`).join('\n')}\n`)
    .action(async (flags: RehearseFlags, command: Command) => {
      process.exitCode = await rehearse(flags, command.getOptionValueSource('drainInterval') === 'cli');
    });
}

async function rehearse(flags: RehearseFlags, drainIntervalGiven: boolean): Promise<number> {
  let scenario;
  let plan;
  let port: number;
  let seed: number;
  let shift: ShiftMode;
  let ttlMs: number | undefined;
  let staleClients: number | undefined;
  let drainIntervalMs: number;
  let maxWatchMs: number | undefined;
  let dashboardPort: number;
  try {
    scenario = findScenario(flags.scenario);
    if (!scenario) {
      throw new UsageError(`unknown scenario ${JSON.stringify(flags.scenario)}; choose one of: ${SCENARIO_NAMES.join(', ')}`);
    }
    plan = buildRehearsalPlan(flags.steps, flags.soak, flags.window);
    port = parseInteger(flags.port, '--port', 0, 65_535);
    seed = parseInteger(flags.seed, '--seed', 0, 2 ** 31 - 1);
    if (!(SHIFT_MODES as readonly string[]).includes(flags.shift)) {
      throw new UsageError(`--shift must be one of ${SHIFT_MODES.join(', ')}, got ${JSON.stringify(flags.shift)}`);
    }
    shift = flags.shift as ShiftMode;
    ttlMs = flags.ttl === undefined ? undefined : parseDuration(flags.ttl, '--ttl');
    staleClients = flags.staleClients === undefined ? undefined : parseShare(flags.staleClients, '--stale-clients');
    drainIntervalMs = parseDuration(flags.drainInterval, '--drain-interval');
    if (!flags.drain && drainIntervalGiven) throw new UsageError('--drain-interval times the active drain; --no-drain turns it off');
    maxWatchMs = flags.maxWatch === undefined ? undefined : parseDuration(flags.maxWatch, '--max-watch');
    if (maxWatchMs !== undefined && maxWatchMs < plan.healthWindowMs) {
      throw new UsageError(`--max-watch must be at least the window (${plan.healthWindowMs} ms), got ${maxWatchMs} ms`);
    }
    if (shift !== 'dns' && (ttlMs !== undefined || staleClients !== undefined)) {
      throw new UsageError(`${ttlMs !== undefined ? '--ttl' : '--stale-clients'} applies to --shift dns only (there is no DNS through the proxy)`);
    }
    if (shift === 'dns' && port !== 0) throw new UsageError('--port names the router\'s port; --shift dns has no router');
    dashboardPort = parseInteger(flags.dashboardPort, '--dashboard-port', 0, 65_535);
    if (dashboardPort !== 0 && !flags.dashboard) throw new UsageError('--dashboard-port applies to --dashboard only');
    if (flags.report !== undefined && flags.report.trim() === '') throw new UsageError('--report needs a file name, e.g. --report report.html');
    // Checked now, not after a whole run: a folder that is not there or not writable.
    if (flags.report !== undefined) checkReportFolder(flags.report);
  } catch (error) {
    return usage(error);
  }

  const view = flags.json ? undefined : new LiveView();
  // Kept when the user named it; otherwise a temporary directory, removed at the end unless the
  // run failed. Made here rather than by runRehearsal so that an immediate exit can remove it too.
  const stateDir = flags.stateDir !== undefined ? resolve(flags.stateDir) : temporaryStateDir();
  const keepState = flags.stateDir !== undefined;
  // The dashboard and the report read the state directory: it must outlive the run's own cleanup,
  // so a temporary one is kept through the run and removed here once they are done with it.
  const needsState = flags.dashboard === true || flags.report !== undefined;
  let dashboard: RehearsalDashboard | undefined;
  if (flags.dashboard) {
    try {
      dashboard = await RehearsalDashboard.open({ stateDir, port: dashboardPort });
    } catch (error) {
      if (!keepState) rmSync(stateDir, { recursive: true, force: true });
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE') return usage(new UsageError(`--dashboard-port ${dashboardPort} is in use; choose another or 0 (any free port)`));
      throw error;
    }
  }
  let succeeded = false;
  let startedId: string | undefined;
  const notice = (text: string): void => {
    if (view) view.notice(text);
    else process.stderr.write(`cutover rehearse: ${text}\n`);
  };
  const guard = new InterruptGuard({
    onFirst: (signal) =>
      notice(`${signalName(signal)}: stopping the clients, servers and probes; the ${view ? 'summary' : 'report'} of the run so far follows (Ctrl-C again to exit at once)`),
    onSecond: (signal, code) => {
      view?.stop();
      if (!keepState) rmSync(stateDir, { recursive: true, force: true });
      process.stderr.write(`cutover rehearse: ${signalName(signal)} again: exiting at once, without a ${view ? 'summary' : 'report'}\n`);
      process.exit(code);
    },
  }).install();
  try {
    if (view) view.header(scenario.name, scenario.description, describePlan(flags, shift, ttlMs, staleClients));
    else process.stderr.write(`cutover rehearse: ${scenario.name}, ${describePlan(flags, shift, ttlMs, staleClients)}: running; the JSON report follows on stdout\n`);
    const ran = await runRehearsal({
      scenario,
      plan,
      port,
      seed,
      shift,
      ...(shift === 'dns'
        ? { dns: { ...(ttlMs !== undefined ? { ttlMs } : {}), ...(staleClients !== undefined ? { staleClients } : {}) } }
        : {}),
      drainIntervalMs,
      activeDrain: flags.drain,
      ...(maxWatchMs !== undefined ? { maxWatchMs } : {}),
      stateDir,
      keepState: keepState || needsState,
      // Only a kept directory takes operator commands (its name is the user's, so they can send
      // them); the dashboard sends them through the directory it was given.
      ...(keepState || dashboard
        ? {
            onStarted: (id: string) => {
              startedId = id;
              if (dashboard) notice(`dashboard: ${dashboard.migrationUrl(id)}`);
              if (keepState) notice(`migration ${id}: from another terminal, cutover status|watch|pause|resume|abort|promote --full ${id} --state-dir ${stateDir}`);
            },
          }
        : {}),
      signal: guard.signal,
      ...(view
        ? {
            onEvent: (event, elapsedMs) => view.event(event, elapsedMs),
            onFrame: (frame) => view.frame(frame),
          }
        : {}),
    });
    // A temporary directory kept only for the dashboard or the report is removed below: not reported.
    const { stateDir: _kept, ...rest } = ran;
    const report = keepState ? ran : rest;
    if (view) {
      view.summary(report);
      view.stop();
    } else {
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    }
    succeeded = true;
    if (flags.report !== undefined) {
      try {
        const { bytes } = await writeRehearsalReport(resolve(flags.report), stateDir, report);
        process.stderr.write(`cutover rehearse: report written to ${flags.report} (${Math.round(bytes / 1024)} kB, self-contained)\n`);
      } catch (error) {
        // The run itself went well (its report is above); only the file is missing.
        process.stderr.write(`cutover rehearse: could not write the report to ${flags.report}: ${(error as Error).message}\n`);
        return 1;
      }
    }
    return report.interrupted ? guard.exitCode() || 130 : 0;
  } catch (error) {
    view?.stop();
    const cause = error instanceof RehearsalFailedError ? error.cause : error;
    if (cause instanceof PortInUseError || cause instanceof ProbeUsageError) {
      // Nothing ran: nothing to look at in a temporary directory.
      if (!keepState) rmSync(stateDir, { recursive: true, force: true });
      return usage(cause);
    }
    if (error instanceof RehearsalFailedError || keepState || needsState) {
      process.stderr.write(`cutover rehearse: the rehearsal failed; its state (record and event log) is kept in ${stateDir}\n`);
    }
    throw cause;
  } finally {
    guard.uninstall();
    if (dashboard) {
      // On a terminal the page stays up to be looked at after the run; in a pipe or CI it closes.
      if (succeeded && !guard.signal.aborted && process.stdin.isTTY && process.stdout.isTTY) {
        await untilInterrupted(`the dashboard stays open at ${startedId ? dashboard.migrationUrl(startedId) : dashboard.url}: Ctrl-C to close it`);
      }
      await dashboard.close();
    }
    // A failed run's temporary directory is kept for a look (its path was printed above).
    if (needsState && !keepState && succeeded) rmSync(stateDir, { recursive: true, force: true });
  }
}

/** `--report`'s folder must exist and be writable (the file itself is written after the run). */
function checkReportFolder(file: string): void {
  const folder = dirname(resolve(file));
  let isFolder = false;
  try {
    isFolder = statSync(folder).isDirectory();
    accessSync(folder, constants.W_OK);
  } catch {
    throw new UsageError(`--report ${file}: ${isFolder ? 'its folder is not writable' : `the folder ${folder} does not exist`}; name a file in a folder you can write to`);
  }
  if (!isFolder) throw new UsageError(`--report ${file}: ${folder} is not a folder`);
}

function untilInterrupted(message: string): Promise<void> {
  process.stderr.write(`cutover rehearse: ${message}\n`);
  return new Promise((resolve) => {
    const done = (): void => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
}

function signalName(signal: InterruptSignal): string {
  return signal === 'SIGINT' ? 'Ctrl-C' : signal;
}

function describePlan(flags: RehearseFlags, shift: ShiftMode, ttlMs: number | undefined, staleClients: number | undefined): string {
  const plan = `steps ${flags.steps}, soak ${flags.soak}, window ${flags.window}`;
  const noDrain = flags.drain ? '' : '; no active drain after a rollback';
  if (shift === 'proxy') return `${plan}; shift proxy (a router decides per request)${noDrain}`;
  const ttl = (ttlMs ?? DEFAULT_DNS_TTL_MS) / 1000;
  const stale = Math.round((staleClients ?? DEFAULT_STALE_CLIENTS) * 100);
  const drain = flags.drain ? `, drain interval ${flags.drainInterval}` : '';
  return `${plan}; shift dns (TTL ${ttl}s, ${stale} % of clients ignore it${drain})${noDrain}`;
}

function usage(error: unknown): number {
  process.stderr.write(`cutover rehearse: ${error instanceof Error ? error.message : String(error)}\n`);
  return 2;
}

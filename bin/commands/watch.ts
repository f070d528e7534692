/**
 * `cutover watch <migration>`: follows a migration until it settles (torn down, rolled back, or
 * complete and waiting for its teardown), then exits with `status`'s code for it. On a terminal
 * the view is redrawn in place; otherwise (a pipe, CI) one line per change; with `--json` one JSON
 * object per line per change. A rehearsal that stopped while its migration was unsettled ends the
 * watch too. Ctrl-C exits 130.
 */
import type { Command } from 'commander';
import logUpdate from 'log-update';
import { UsageError, parseDuration } from '../../rehearsal/options';
import type { MigrationSource, MigrationState } from '../../ops/types';
import { EXIT, OpsError, isSettled, statusExitCode } from '../../ops/types';
import { formatStatus } from './status';
import { addSourceOptions, colors, defaultIo, fail, STATUS_EXIT_HELP, stepText, withSource, type OpsIo, type SourceFlags } from './ops-common';

export interface WatchFlags extends SourceFlags {
  readonly interval: string;
}

/** Shortest accepted `--interval`. */
const MIN_INTERVAL_MS = 100;

export interface WatchIo extends OpsIo {
  /** Redraws the live view in place. @default - log-update on a TTY stdout, lines otherwise */
  readonly redraw?: ((text: string) => void) & { done?: () => void };
  /** Aborting ends the watch with 130 (the CLI wires Ctrl-C to it). */
  readonly signal?: AbortSignal;
}

export function registerWatchCommand(program: Command, io: WatchIo = defaultIo): void {
  const command = program
    .command('watch')
    .description('follow a migration until it settles (torn down, rolled back, or complete), then exit with its status code')
    .argument('<migration>', 'migration id (AWS: or a key such as <function>:<alias>, for its current migration)')
    .option('--interval <duration>', 'time between reads (5, 5s, 500ms, 1m)', '5s');
  addSourceOptions(command, { controller: false })
    .addHelpText('after', `${STATUS_EXIT_HELP}\n  130 interrupted (Ctrl-C)`)
    .action(async (migration: string, flags: WatchFlags) => {
      const abort = new AbortController();
      const onSignal = (): void => abort.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        process.exitCode = await watchCommand(migration, flags, { ...io, signal: abort.signal });
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}

export async function watchCommand(migration: string, flags: WatchFlags, io: WatchIo = defaultIo): Promise<number> {
  let intervalMs: number;
  try {
    intervalMs = parseInterval(flags.interval);
  } catch (error) {
    return fail('watch', flags, io, (error as Error).message, EXIT.usage, 'usage');
  }
  return withSource('watch', flags, io, 'read', (source) => follow(source, migration, intervalMs, flags, io));
}

async function follow(source: MigrationSource, migration: string, intervalMs: number, flags: SourceFlags, io: WatchIo): Promise<number> {
  const c = colors(flags, io);
  const live = !flags.json && (io.redraw !== undefined || Boolean(process.stdout.isTTY && io.stdout === defaultIo.stdout));
  const redraw = io.redraw ?? (live ? logUpdate : undefined);
  let last: string | undefined;
  let lastError: string | undefined;
  let first = true;
  try {
    for (;;) {
      if (io.signal?.aborted) return EXIT.interrupted;
      let state: MigrationState | undefined;
      try {
        state = await source.status(migration);
        lastError = undefined;
      } catch (error) {
        // The first read decides whether there is anything to watch; later failures (a throttle,
        // a network blip) are shown and the watch goes on.
        if (first || !(error instanceof OpsError) || error.exitCode !== EXIT.unknown || error.code === 'unknown-migration') throw error;
        const message = error.message;
        if (message !== lastError) io.stderr(`cutover watch: ${message} (still watching)\n`);
        lastError = message;
      }
      first = false;
      if (state) {
        const key = changeKey(state);
        // The live view is redrawn on every read (its "ago" times move on); lines only on a change.
        if (redraw) redraw(`${formatStatus(state, flags, io).trimEnd()}\n${c.dim(`  watching every ${intervalMs / 1000}s · Ctrl-C to stop`)}`);
        else if (key !== last) io.stdout(flags.json ? `${JSON.stringify(state)}\n` : `${changeLine(state, c)}\n`);
        last = key;
        // A rehearsal that stopped leaves its migration as it was: nothing will change any more.
        const stopped = state.live === false && !isSettled(state.status);
        if (isSettled(state.status) || stopped) {
          if (stopped) io.stderr(`cutover watch: no rehearsal is running ${state.id} any more; it stays ${state.status}\n`);
          return statusExitCode(state.status);
        }
      }
      await sleep(intervalMs, io.signal);
    }
  } finally {
    if (redraw === logUpdate) logUpdate.done();
    else redraw?.done?.();
  }
}

/** What counts as a change worth a new line. */
function changeKey(s: MigrationState): string {
  const lastEvent = s.recentEvents[s.recentEvents.length - 1];
  return JSON.stringify([s.status, s.weight, s.step, s.pendingChange?.weight, lastEvent?.seq, s.damage, s.live, s.lastDecision?.code]);
}

/** One line per change, for pipes and CI logs. */
function changeLine(s: MigrationState, c: ReturnType<typeof colors>): string {
  const at = new Date().toISOString().slice(11, 19);
  const lastEvent = s.recentEvents[s.recentEvents.length - 1];
  const why = lastEvent ? `${lastEvent.type}: ${lastEvent.reason}` : (s.note ?? s.damage ?? '');
  return `${c.dim(at)} ${s.id} ${s.status} ${s.weight ?? '-'}% ${stepText(s.step, s.steps)}${why ? ` — ${why}` : ''}`;
}

/** `5` (seconds), `5s`, `500ms`, `1m`. */
export function parseInterval(text: string): number {
  const trimmed = text.trim();
  let ms: number;
  if (/^\d+(\.\d+)?$/.test(trimmed)) ms = Math.round(Number(trimmed) * 1000);
  else {
    try {
      ms = parseDuration(trimmed, '--interval');
    } catch (error) {
      if (error instanceof UsageError) throw new Error(error.message);
      throw error;
    }
  }
  if (ms < MIN_INTERVAL_MS) throw new Error(`--interval must be at least ${MIN_INTERVAL_MS}ms, got ${JSON.stringify(text)}`);
  return ms;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

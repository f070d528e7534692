/**
 * The command inbox of a rehearsal's state directory: how `cutover pause|resume|abort|promote|
 * teardown --state-dir <dir>` reaches a rehearsal that is running, since only the running engine
 * (its router or resolver, its old side's pool) can carry a command out.
 *
 * Layout, under `<state dir>/commands/`:
 * - `<requested at, ms, 15 digits>-<16 hex>.json` — a pending command
 *   `{format, id, migrationId, command, reason, requestedAtMs, expiresAtMs}`, written to a
 *   dot-file and renamed into place, so a reader never sees half of one;
 * - `taken/<same name>` — a command a rehearsal claimed (by renaming it there) and is applying;
 * - `results/<same name>` — its outcome `{format, id, migrationId, command, applied, refusal?,
 *   status, weight, step, events, takenAtMs, doneAtMs}`, also renamed into place;
 * - `live/<migration id>.json` — `{format, migrationId, pid, atMs, endedAtMs?}`, rewritten by the
 *   rehearsal at most once a second while it takes commands, so that a sender can tell a rehearsal
 *   that ended; `endedAtMs` is set when its run loop is over (`CommandInbox.close`).
 *
 * Exactly-once, or not at all: the rename out of the inbox decides. The rehearsal applies only a
 * command it moved to `taken/` itself. A sender that waited in vain withdraws its command by
 * deleting it from the inbox; if the delete finds it gone, a rehearsal took it and the sender waits
 * a little longer for the result. A command is also never applied after its `expiresAtMs` (the
 * sender's deadline), so one left behind by a sender that died cannot surprise a later rehearsal.
 *
 * The rehearsal's side is `CommandInbox.take()` (or `takeCommands`), called once per tick of its
 * run loop, and `close()` when the loop is over; the sender's side is `sendCommand`.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { InvalidCommandError, MigrationNotFoundError, type MigrationController, type TickResult } from '../lambda/core/controller';
import { Command } from '../lambda/core/model';
import { COMMANDS, EXIT, OpsError, SourceUnavailableError } from './types';

export const INBOX_DIR = 'commands';
const TAKEN_DIR = 'taken';
const RESULTS_DIR = 'results';
const LIVE_DIR = 'live';
const FORMAT = 1;
/** A pending command's file name; anything else in the inbox (temporary dot-files) is ignored. */
const COMMAND_FILE = /^\d{15}-[0-9a-f]{16}\.json$/;

/** How long a sender waits for a rehearsal to take a command and answer. */
export const DEFAULT_COMMAND_WAIT_MS = 10_000;
/** How long a sender still waits for the result of a command a rehearsal took just before its deadline. */
export const DEFAULT_RESULT_GRACE_MS = 10_000;
/** How often a rehearsal rewrites its `live/` file. */
export const HEARTBEAT_EVERY_MS = 1_000;
/**
 * A `live/` file older than this means the rehearsal stopped taking commands. Far longer than a
 * tick: one tick may run a fresh probe of a slow side, seconds long.
 */
export const HEARTBEAT_STALE_MS = 30_000;

/** A command as a sender writes it. */
export interface CommandRequest {
  readonly format: number;
  /** The file's name without `.json`. */
  readonly id: string;
  readonly migrationId: string;
  readonly command: Command;
  readonly reason: string;
  readonly requestedAtMs: number;
  /** Not applied after this (the sender stopped waiting). */
  readonly expiresAtMs: number;
}

/** What the rehearsal did with a command. */
export interface CommandResult {
  readonly format: number;
  readonly id: string;
  readonly migrationId: string;
  readonly command: string;
  readonly reason: string;
  readonly applied: boolean;
  /** Why it was not applied. */
  readonly refusal?: string;
  /** Set when it was taken after its `expiresAtMs`, and so not applied. */
  readonly expired?: boolean;
  /** Set when another writer saved first, so that the command changed nothing (send it again). */
  readonly conflict?: boolean;
  /** The migration after the command (when it could be applied or at least loaded). */
  readonly status?: string;
  readonly weight?: number;
  readonly step?: number;
  /** Events the command appended. */
  readonly events: number;
  readonly takenAtMs: number;
  readonly doneAtMs: number;
}

/** Whether a rehearsal takes commands for a migration, from its `live/` file. */
export interface Liveness {
  /** `running`: fresh and its process exists; `stopped`: it did take commands once; `unknown`: no trace of it. */
  readonly state: 'running' | 'stopped' | 'unknown';
  readonly pid?: number;
  readonly lastSeenMs?: number;
}

// ---------------------------------------------------------------------------------------------
// The rehearsal's side
// ---------------------------------------------------------------------------------------------

export interface CommandInboxOptions {
  /** The rehearsal's state directory (where its FileStateStore keeps the migration). */
  readonly stateDir: string;
  /** The migration the rehearsal runs: commands for other migrations are left for their rehearsal. */
  readonly migrationId: string;
  /** Applies a command (the rehearsal's own controller). */
  readonly controller: Pick<MigrationController, 'command'>;
  /** @default Date.now */
  readonly now?: () => number;
  /**
   * Told about a failure of the inbox itself (a file it could not read or write); the run loop
   * goes on regardless. @default - ignored
   */
  readonly onError?: (error: unknown) => void;
}

/** One command `take` handled. */
export interface TakenCommand {
  readonly request: CommandRequest;
  readonly result: CommandResult;
  /** The controller's result when it applied the command. */
  readonly tick?: TickResult;
}

/**
 * The rehearsal's end of the inbox. Call `take()` once per tick of the run loop, before the tick:
 * it applies every pending command for the migration through the controller, oldest first, and
 * writes each outcome. It never throws (see `onError`).
 */
export class CommandInbox {
  /**
   * True from an operator's pause that the controller applied until an operator's resume, abort,
   * promote or teardown: the run loop keeps going while a human holds the migration, and may
   * still stop at a pause the judge decided.
   */
  pausedByOperator = false;
  private lastBeatMs = -Infinity;
  private closed = false;
  private readonly dir: string;
  private readonly now: () => number;

  constructor(private readonly options: CommandInboxOptions) {
    this.dir = join(options.stateDir, INBOX_DIR);
    this.now = options.now ?? Date.now;
  }

  async take(): Promise<TakenCommand[]> {
    const taken: TakenCommand[] = [];
    if (this.closed) return taken;
    try {
      await this.beat();
      let names: string[];
      try {
        names = (await readdir(this.dir)).filter((n) => COMMAND_FILE.test(n)).sort();
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return taken;
        throw error;
      }
      for (const name of names) {
        try {
          const handled = await this.takeOne(name);
          if (handled) taken.push(handled);
        } catch (error) {
          this.options.onError?.(error);
        }
      }
    } catch (error) {
      this.options.onError?.(error);
    }
    return taken;
  }

  /**
   * Says in the `live/` file that this rehearsal takes no more commands (its run loop is over), so
   * that a sender is told at once instead of waiting in vain for its command to be taken. Commands
   * still pending are left for their senders to withdraw. Never throws (see `onError`).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      const now = this.now();
      await this.writeLive({ atMs: now, endedAtMs: now });
    } catch (error) {
      this.options.onError?.(error);
    }
  }

  private async beat(): Promise<void> {
    const now = this.now();
    if (this.closed || now - this.lastBeatMs < HEARTBEAT_EVERY_MS) return;
    this.lastBeatMs = now;
    await this.writeLive({ atMs: now });
  }

  private async writeLive(times: { readonly atMs: number; readonly endedAtMs?: number }): Promise<void> {
    const live = join(this.dir, LIVE_DIR);
    await mkdir(live, { recursive: true });
    await writeAtomically(join(live, `${this.options.migrationId}.json`), { format: FORMAT, migrationId: this.options.migrationId, pid: process.pid, ...times });
  }

  private async takeOne(name: string): Promise<TakenCommand | undefined> {
    const path = join(this.dir, name);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // withdrawn or taken meanwhile
      throw error;
    }
    const parsed = parseRequest(name, text);
    // Another rehearsal's command stays for it. A malformed one is claimed and answered, so that it
    // is not read again on every tick.
    if (parsed.ok && parsed.request.migrationId !== this.options.migrationId) return undefined;
    const takenDir = join(this.dir, TAKEN_DIR);
    await mkdir(takenDir, { recursive: true });
    const claimed = join(takenDir, name);
    try {
      await rename(path, claimed);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    const takenAtMs = this.now();
    const base = parsed.ok ? parsed.request : { format: FORMAT, id: name.slice(0, -'.json'.length), migrationId: this.options.migrationId, command: 'unknown' as Command, reason: '', requestedAtMs: takenAtMs, expiresAtMs: takenAtMs };
    let result: CommandResult;
    let tick: TickResult | undefined;
    if (!parsed.ok) {
      result = this.resultOf(base, takenAtMs, { applied: false, refusal: parsed.problem });
    } else if (takenAtMs > base.expiresAtMs) {
      result = this.resultOf(base, takenAtMs, { applied: false, expired: true, refusal: 'expired: the sender had stopped waiting for it, so it was not applied' });
    } else {
      ({ result, tick } = await this.apply(base, takenAtMs));
    }
    const resultsDir = join(this.dir, RESULTS_DIR);
    await mkdir(resultsDir, { recursive: true });
    await writeAtomically(join(resultsDir, name), result);
    await rm(claimed, { force: true });
    return { request: base, result, ...(tick ? { tick } : {}) };
  }

  private async apply(request: CommandRequest, takenAtMs: number): Promise<{ result: CommandResult; tick?: TickResult }> {
    let tick: TickResult;
    try {
      tick = await this.options.controller.command(request.migrationId, request.command, request.reason);
    } catch (error) {
      const refusal =
        error instanceof InvalidCommandError || error instanceof MigrationNotFoundError
          ? error.message
          : `${error instanceof Error ? error.name : 'Error'}: ${error instanceof Error ? error.message : String(error)}`;
      const status = error instanceof InvalidCommandError ? { status: error.status } : {};
      return { result: this.resultOf(request, takenAtMs, { applied: false, refusal, ...status }) };
    }
    const r = tick.record;
    const after = { status: r.status, weight: r.weight, step: r.step, events: tick.events.length };
    if (tick.damaged) {
      return { result: this.resultOf(request, takenAtMs, { applied: false, refusal: `the stored state was damaged (${tick.damaged.what}); the controller failed safe instead`, ...after }), tick };
    }
    if (tick.conflict) {
      return { result: this.resultOf(request, takenAtMs, { applied: false, conflict: true, refusal: 'another writer changed the migration at the same time; nothing was applied (send it again)', ...after }), tick };
    }
    this.pausedByOperator = request.command === Command.PAUSE;
    return { result: this.resultOf(request, takenAtMs, { applied: true, ...after }), tick };
  }

  private resultOf(request: CommandRequest, takenAtMs: number, outcome: Partial<CommandResult> & { applied: boolean }): CommandResult {
    return {
      format: FORMAT,
      id: request.id,
      migrationId: request.migrationId,
      command: request.command,
      reason: request.reason,
      events: 0,
      ...outcome,
      takenAtMs,
      doneAtMs: this.now(),
    };
  }
}

/** `new CommandInbox(...).take()` for a loop that keeps no inbox between ticks (no pause tracking). */
export function takeCommands(stateDir: string, migrationId: string, controller: Pick<MigrationController, 'command'>): Promise<TakenCommand[]> {
  return new CommandInbox({ stateDir, migrationId, controller }).take();
}

function parseRequest(name: string, text: string): { ok: true; request: CommandRequest } | { ok: false; problem: string } {
  let value: Partial<CommandRequest>;
  try {
    value = JSON.parse(text) as Partial<CommandRequest>;
  } catch {
    return { ok: false, problem: 'malformed command file: not JSON' };
  }
  const id = name.slice(0, -'.json'.length);
  if (value === null || typeof value !== 'object') return { ok: false, problem: 'malformed command file: not an object' };
  if (value.format !== FORMAT) return { ok: false, problem: `malformed command file: unknown format ${JSON.stringify(value.format)}` };
  if (typeof value.migrationId !== 'string' || value.migrationId === '') return { ok: false, problem: 'malformed command file: no migrationId' };
  if (typeof value.command !== 'string' || !COMMANDS.includes(value.command)) {
    return { ok: false, problem: `unknown command ${JSON.stringify(value.command)}; known: ${COMMANDS.join(', ')}` };
  }
  if (typeof value.reason !== 'string') return { ok: false, problem: 'malformed command file: reason is not text' };
  if (typeof value.expiresAtMs !== 'number' || typeof value.requestedAtMs !== 'number') return { ok: false, problem: 'malformed command file: no times' };
  return { ok: true, request: { ...(value as CommandRequest), id } };
}

// ---------------------------------------------------------------------------------------------
// The sender's side
// ---------------------------------------------------------------------------------------------

export interface SendOptions {
  /** How long to wait for a rehearsal to take the command and answer. @default DEFAULT_COMMAND_WAIT_MS */
  readonly waitMs?: number;
  /** After the wait, how long to wait for the result of a command that was taken. @default DEFAULT_RESULT_GRACE_MS */
  readonly graceMs?: number;
  /** @default 100 */
  readonly pollMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
  /**
   * Stops waiting (Ctrl-C): the command is withdrawn if no rehearsal took it yet (then
   * `OpsError` with the interrupted exit code); if one did, its result is still awaited.
   */
  readonly signal?: AbortSignal;
}

/**
 * Puts a command in the inbox and waits for the rehearsal's result. Throws
 * `SourceUnavailableError` when no rehearsal took it within the wait (it is then withdrawn:
 * nothing was applied) or when one took it but wrote no result in time (outcome unknown).
 */
export async function sendCommand(
  stateDir: string,
  command: { readonly migrationId: string; readonly command: Command; readonly reason: string },
  options: SendOptions = {},
): Promise<CommandResult> {
  const now = options.now ?? Date.now;
  const waitMs = options.waitMs ?? DEFAULT_COMMAND_WAIT_MS;
  const graceMs = options.graceMs ?? DEFAULT_RESULT_GRACE_MS;
  const pollMs = options.pollMs ?? 100;
  const dir = join(stateDir, INBOX_DIR);
  await mkdir(dir, { recursive: true });
  const requestedAtMs = now();
  const id = `${String(requestedAtMs).padStart(15, '0')}-${randomBytes(8).toString('hex')}`;
  const request: CommandRequest = { format: FORMAT, id, ...command, requestedAtMs, expiresAtMs: requestedAtMs + waitMs };
  const path = join(dir, `${id}.json`);
  await writeAtomically(path, request);

  const resultPath = join(dir, RESULTS_DIR, `${id}.json`);
  // A run that ends while this waits takes no more commands: say so at once, not after the wait.
  let ended = false;
  let checkedAtMs = requestedAtMs;
  const runEnded = async (): Promise<boolean> => {
    if (now() - checkedAtMs < LIVENESS_CHECK_MS) return false;
    checkedAtMs = now();
    ended = (await liveness(stateDir, command.migrationId, now)).state === 'stopped';
    return ended;
  };
  const result = await waitForResult(resultPath, requestedAtMs + waitMs, pollMs, now, options.signal, runEnded);
  if (result) return result;
  const interrupted = options.signal?.aborted === true;
  // Withdraw it: if it is still in the inbox, nobody took it and nobody will.
  let withdrawn = false;
  try {
    await rm(path);
    withdrawn = true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (withdrawn && interrupted) {
    throw new OpsError(`interrupted: the ${command.command} command for ${command.migrationId} was withdrawn before any rehearsal took it; nothing was applied`, EXIT.interrupted, 'interrupted');
  }
  if (withdrawn && ended) {
    throw new SourceUnavailableError(
      `the rehearsal running ${command.migrationId} ended before it took the ${command.command} command; it was withdrawn, nothing was applied`,
      'not-running',
    );
  }
  if (withdrawn) {
    throw new SourceUnavailableError(
      `no rehearsal took the ${command.command} command for ${command.migrationId} within ${seconds(waitMs)} (is one running with --state-dir ${stateDir}?); it was withdrawn, nothing was applied`,
      'not-taken',
    );
  }
  const late = await waitForResult(resultPath, now() + graceMs, pollMs, now);
  if (late) return late;
  throw new SourceUnavailableError(
    `the rehearsal took the ${command.command} command for ${command.migrationId} but wrote no result within ${seconds(waitMs + graceMs)}; its outcome is unknown (see cutover status)`,
    'outcome-unknown',
  );
}

/** How often a sender waiting for a result checks that the rehearsal still runs (see `sendCommand`). */
const LIVENESS_CHECK_MS = 1_000;

async function waitForResult(
  path: string,
  deadline: number,
  pollMs: number,
  now: () => number,
  signal?: AbortSignal,
  stopped?: () => Promise<boolean>,
): Promise<CommandResult | undefined> {
  for (;;) {
    let text: string | undefined;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    if (text !== undefined) {
      await rm(path, { force: true });
      return JSON.parse(text) as CommandResult;
    }
    const left = deadline - now();
    if (left <= 0 || signal?.aborted || (stopped && (await stopped()))) return undefined;
    await sleep(Math.min(pollMs, left), signal);
  }
}

/** Whether a rehearsal takes commands for `migrationId` in `stateDir` (see `HEARTBEAT_STALE_MS`). */
export async function liveness(stateDir: string, migrationId: string, now: () => number = Date.now): Promise<Liveness> {
  const path = join(stateDir, INBOX_DIR, LIVE_DIR, `${migrationId}.json`);
  let beat: { pid?: unknown; atMs?: unknown; endedAtMs?: unknown };
  try {
    beat = JSON.parse(await readFile(path, 'utf8')) as typeof beat;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'unknown' };
    // Unreadable: fall back on the file's age.
    const { mtimeMs } = await stat(path).catch(() => ({ mtimeMs: 0 }));
    return { state: now() - mtimeMs <= HEARTBEAT_STALE_MS ? 'running' : 'stopped', lastSeenMs: mtimeMs };
  }
  const pid = typeof beat.pid === 'number' ? beat.pid : undefined;
  const atMs = typeof beat.atMs === 'number' ? beat.atMs : 0;
  // Its run loop said it was over (`CommandInbox.close`).
  if (typeof beat.endedAtMs === 'number') return { state: 'stopped', ...(pid !== undefined ? { pid } : {}), lastSeenMs: beat.endedAtMs };
  const fresh = now() - atMs <= HEARTBEAT_STALE_MS;
  const alive = pid === undefined || processExists(pid);
  return { state: fresh && alive ? 'running' : 'stopped', ...(pid !== undefined ? { pid } : {}), lastSeenMs: atMs };
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, owned by someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Writes JSON to a dot-file next to `path`, flushes it and renames it into place. */
async function writeAtomically(path: string, value: unknown): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const handle = await open(temp, 'wx');
    try {
      await handle.writeFile(`${JSON.stringify(value)}\n`, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))} s`;
}

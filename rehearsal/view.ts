/**
 * The rehearsal's live terminal view: a status panel redrawn in place (log-update) with each
 * decision printed above it as it happens, and a summary at the end. Without a TTY (CI, a pipe)
 * it prints only the decisions and the summary, so logs stay readable.
 *
 * The view hides the terminal's cursor itself (log-update is told not to): log-update's own
 * cursor handling registers `signal-exit`, which re-raises a Ctrl-C it believes nobody else
 * handles and so killed the process before the summary. `stop()` (and the process's exit, if it
 * comes first) shows the cursor again.
 */
import { createLogUpdate } from 'log-update';
import pc from 'picocolors';
import type { MigrationEvent } from '../lambda/core/model';
import type { BlastRadius, HarmBySide, SideHarm } from './blast-radius';
import type { RehearsalFrame, RehearsalReport, ResidualFrame } from './report';
import type { ResidualReport } from './residual';

const BAR_WIDTH = 30;

const HIDE_CURSOR = '\u001b[?25l';
const SHOW_CURSOR = '\u001b[?25h';

export class LiveView {
  private readonly live: boolean;
  private readonly logUpdate: ReturnType<typeof createLogUpdate>;
  private cursorHidden = false;
  private readonly showCursorOnExit = (): void => {
    this.out.write(SHOW_CURSOR);
  };

  constructor(private readonly out: NodeJS.WriteStream = process.stdout) {
    this.live = Boolean(out.isTTY);
    this.logUpdate = createLogUpdate(out, { showCursor: true });
  }

  header(scenario: string, description: string, plan: string): void {
    this.print(`${pc.bold('cutover rehearse')} ${pc.cyan(scenario)}: ${description}`);
    this.print(pc.dim(`plan: ${plan}`));
  }

  event(event: MigrationEvent, elapsedMs: number): void {
    if (event.type === 'held' && event.code === 'baking') return; // the panel shows baking progress
    const colour =
      event.to === 'rolled-back' ? pc.red : event.type === 'advanced' || event.type === 'promoted' ? pc.green : event.type === 'held' ? pc.yellow : pc.white;
    const line = `${pc.dim(seconds(elapsedMs).padStart(6))} ${colour(event.type.padEnd(18))} ${String(event.weight).padStart(3)}%  ${event.reason}`;
    this.print(line);
  }

  frame(frame: RehearsalFrame): void {
    if (!this.live) return;
    if (!this.cursorHidden) {
      this.cursorHidden = true;
      this.out.write(HIDE_CURSOR);
      process.once('exit', this.showCursorOnExit);
    }
    this.logUpdate(this.render(frame));
  }

  /** A line about the run itself (e.g. that it is being stopped), printed above the panel. */
  notice(text: string): void {
    this.print(pc.yellow(text));
  }

  summary(report: RehearsalReport): void {
    if (this.live) this.logUpdate.clear();
    const outcome = report.outcome === 'promoted' ? pc.green('promoted') : report.outcome === 'rolled-back' ? pc.red('rolled back') : pc.yellow('halted');
    const lines = [
      '',
      pc.bold(`Summary — ${report.scenario}`),
      `  outcome           ${outcome} (final state ${report.finalState}, weight ${report.finalWeight}%)${report.interrupted ? pc.yellow(` — interrupted${report.interruptedBy === 'SIGINT' ? ' (Ctrl-C)' : report.interruptedBy ? ` (${report.interruptedBy})` : ''}: the run so far`) : ''}`,
      `  duration          ${seconds(report.durationMs)}`,
      `  client requests   ${report.clientRequests} (old ${report.requestsBySide.old}, new ${report.requestsBySide.new} ${report.shift === 'dns' ? 'as the clients resolved them' : 'via the router'})`,
      `  error responses   ${report.errorResponses}`,
      `  wrong answers     ${report.misalignedResponses} (responses that belonged to another request)`,
    ];
    if (report.fault) {
      lines.push(`  fault             ${report.fault.description}${report.fault.onsetAtMs !== undefined ? ` at ${seconds(report.fault.onsetAtMs)}` : ' (never reached)'}`);
    }
    if (report.rollback) {
      lines.push(
        `  rollback          at ${seconds(report.rollback.atMs)}${report.rollback.afterFaultMs !== undefined ? `, ${seconds(report.rollback.afterFaultMs)} after the fault` : ''}: ${report.rollback.reason}`,
      );
      if (report.rollback.residual) lines.push(...residualLines(report.rollback.residual));
    }
    lines.push(...blastRadiusLines(report.blastRadius));
    if (report.teardown) lines.push(teardownLine(report.teardown));
    lines.push(
      `  old capacity      pinned ${report.oldCapacity.pinned ?? '-'}, lowest while pinned ${report.oldCapacity.lowest ?? '-'}, final ${report.oldCapacity.final}`,
      `  probes            ${report.probes.runs} runs, ${report.probes.desync} desync, ${report.probes.inconclusive} inconclusive`,
      pc.dim(stateLine(report)),
    );
    for (const warning of report.warnings ?? []) lines.push(pc.yellow(`  warning           ${warning}`));
    this.print(lines.join('\n'));
  }

  /** Leaves the panel as it is and gives the terminal its cursor back. Idempotent. */
  stop(): void {
    if (!this.live) return;
    this.logUpdate.done();
    if (this.cursorHidden) {
      this.cursorHidden = false;
      process.off('exit', this.showCursorOnExit);
      this.out.write(SHOW_CURSOR);
    }
  }

  private print(text: string): void {
    if (this.live) {
      this.logUpdate.clear();
      this.out.write(`${text}\n`);
    } else {
      this.out.write(`${stripColour(text)}\n`);
    }
  }

  private render(f: RehearsalFrame): string {
    const filled = Math.round((f.weight / 100) * BAR_WIDTH);
    const bar = pc.green('█'.repeat(filled)) + pc.dim('░'.repeat(BAR_WIDTH - filled));
    const w = f.window;
    // The share, and the count behind it when there is one: at 5 % a window holds a handful of
    // requests, and one expected 413 among 4 reads as 25 %.
    const rate = (errors: number, requests: number): string =>
      requests > 0 ? `${((errors / requests) * 100).toFixed(1)}%${errors > 0 ? ` (${errors})` : ''}` : '  -  ';
    const latency = (ms: number | undefined): string => (ms === undefined ? '-' : `${Math.round(ms)}ms`);
    const cap = f.oldCapacity;
    const capText = `${cap.current}/${cap.pinned ?? '-'}${cap.ready ? '' : ' warming'}`;
    const capColour = cap.pinned !== undefined && (cap.current < cap.pinned || !cap.ready) ? pc.yellow : pc.green;
    return [
      '',
      `  ${pc.bold('new side')} ${bar} ${String(f.weight).padStart(3)}%   step ${f.step}/${f.steps}   ${pc.cyan(f.status)}   ${seconds(f.elapsedMs)}`,
      w
        ? `  last 1s    old: ${w.old.requests} req, 5XX ${rate(w.old.errors5xx, w.old.requests)}, 4XX ${rate(w.old.errors4xx, w.old.requests)}, p99 ${latency(w.old.latencyMs)}` +
          `   new: ${w.new.requests} req, 5XX ${rate(w.new.errors5xx, w.new.requests)}, 4XX ${rate(w.new.errors4xx, w.new.requests)}, p99 ${latency(w.new.latencyMs)}`
        : '  last 1s    no traffic',
      pc.dim(`             ${WINDOW_LEGEND}`),
      `  old side   ${capColour(capText)} workers   clients: ${f.clients.requests} requests, ${f.clients.errorResponses} errors, ${f.clients.misalignedResponses === 0 ? '0' : pc.red(String(f.clients.misalignedResponses))} wrong answers`,
      `  harmed     ${f.blastRadius.span.from === 'fault' ? 'since the fault' : 'so far'}${f.blastRadius.span.to === 'rollback' ? ', until the rollback' : ''}: ${harmBySide(f.blastRadius, true)}`,
      ...(f.residual ? [residualLine(f.residual)] : []),
      `  probe      ${f.lastProbe ? `${f.lastProbe.side}: ${f.lastProbe.verdict === 'ok' ? pc.green('ok') : pc.red(f.lastProbe.verdict)}` : '-'}` +
        (f.fault ? `   fault: ${f.fault.active ? pc.red(f.fault.description) : pc.dim(`${f.fault.description} (not yet)`)}` : ''),
      f.lastReason ? pc.dim(`  why        ${f.lastReason}`) : '',
    ].join('\n');
  }
}

/**
 * What the panel's "last 1s" figures count: what the judge reads. The probes connect to each side
 * directly, never through the router or the clients that record for the judge, so their
 * deliberate 404s, 400s, 405s and 413s are not in them; the clients' own oversized event posts
 * are, each answered with the 413 it expects, on both sides alike.
 */
export const WINDOW_LEGEND = "as the judge reads them: client requests only (probes are not counted); 4XX includes the 413s the clients' oversized event posts expect";

/** The summary's line about the rehearsal's own teardown at the end of a promoted run. */
export function teardownLine(t: NonNullable<RehearsalReport['teardown']>): string {
  return `  teardown          by the rehearsal at ${seconds(t.atMs)}, once its run was over: its own cleanup, not an operator's (the plan's teardown is manual: in production the old side stays pinned until you tear it down)`;
}

/** The summary's last line: where the record and event log are, or that they were not kept. */
export function stateLine(report: Pick<RehearsalReport, 'stateDir' | 'migrationId'>): string {
  return report.stateDir !== undefined
    ? `  state kept in     ${report.stateDir} (migration ${report.migrationId})`
    : '  state             not kept: a temporary directory, removed at the end (--state-dir <dir> keeps the record and event log)';
}

/**
 * The live view's line about the new side's traffic after a rollback: what still reaches it and
 * what the drain is doing.
 */
export function residualLine(r: ResidualFrame): string {
  const window = `${r.lastWindow} req in the last ${seconds(r.windowMs)}`;
  const last = r.lastWindow <= r.thresholdRequestsPerWindow ? pc.green(window) : pc.yellow(window);
  const drain =
    r.drain === 'off'
      ? 'off (the new side answers as before)'
      : r.drain === 'refuse'
        ? 'Connection: close, refusing new connections'
        : 'Connection: close on every answer';
  const cached =
    r.cachedOnNewSide === undefined ? '' : ` · ${r.cachedOnNewSide} ${r.cachedOnNewSide === 1 ? 'client still caches' : 'clients still cache'} it`;
  return (
    `  residual   new side ${seconds(r.sinceRollbackMs)} after the rollback: ${last} (peak ${r.peakRequestsPerWindow}, drained at ≤ ${threshold(r.thresholdRequestsPerWindow)}), ` +
    `${r.requestsAfterRollback} since it · drain: ${drain}${cached}`
  );
}

/** The summary's lines about the rollback's residual traffic and drain. */
export function residualLines(r: ResidualReport): string[] {
  const per = seconds(r.windowMs);
  const reached = `${r.requestsAfterRollback} requests reached the new side after the rollback (${r.wrongAnswersAfterRollback} wrong answers, ${r.harmedAfterRollback} harmed in all)`;
  const drained =
    r.drainedAfterMs === undefined
      ? pc.red(`not drained to ≤ 1 % of its peak (${r.peakRequestsPerWindow}/${per}) within ${seconds(r.watchedMs)}`)
      : `drained to ≤ 1 % of its peak (${r.peakRequestsPerWindow}/${per}) ${seconds(r.drainedAfterMs)} after it` +
        ` (bound ${seconds(r.boundMs)}${r.withinBound ? '' : pc.red(', exceeded')})`;
  const steps: string[] = [];
  if (r.drain === undefined) steps.push('off (Keep-Alive kept, connections accepted)');
  else {
    steps.push(`Connection: close from +${seconds(r.drain.closeAfterMs)}`);
    if (r.drain.refuseAfterMs !== undefined) steps.push(`connections refused from +${seconds(r.drain.refuseAfterMs)} (${r.drain.connectionsRefused} refused)`);
  }
  const kinds = r.byClients ? `clients honouring the TTL ${r.byClients.ttlHonouring}, ignoring it ${r.byClients.ttlIgnoring}; ` : '';
  return [
    `  residual          ${r.requestsAfterRollback === 0 ? pc.green(reached) : reached}; ${drained}`,
    `                    ${kinds}per ${per}: ${r.requestsPerWindowAfterRollback.join(' ')}; drain: ${steps.join(', ')}`,
  ];
}

/**
 * The summary's blast radius: the span and its total on one line, per side on the next (and what
 * reached clients after the rollback, when there was one).
 */
export function blastRadiusLines(b: BlastRadius): string[] {
  const from = b.span.from === 'fault' ? `fault at ${seconds(b.span.fromMs)}` : `first request at ${seconds(b.span.fromMs)}`;
  const to = b.span.to === 'rollback' ? `rollback in effect at ${seconds(b.span.toMs)}` : `end at ${seconds(b.span.toMs)}`;
  const after = !b.afterRollback
    ? ''
    : b.afterRollback.total.total === 0
      ? '; none after it'
      : `; ${b.afterRollback.total.total} more after it (${harmBySide(b.afterRollback, true)})`;
  const total = b.total.total === 0 ? pc.green('0 requests harmed') : pc.red(`${b.total.total} requests harmed`);
  return [`  blast radius      ${from} → ${to}: ${total}${after}`, `                    ${harmBySide(b, false)}`];
}

/** Per side: `new 44 unexpected 4XX, 0 5XX, 0 wrong answers, 0 timeouts · old none`. */
function harmBySide(h: HarmBySide, short: boolean): string {
  const parts = [`new ${sideText(h.new, short)}`, `old ${sideText(h.old, short)}`];
  // Requests no side can be blamed for (no HTTP response at all): shown only when there are some.
  if (h.unattributed.total > 0) parts.push(`no side ${sideText(h.unattributed, short, true)}`);
  return parts.join(' · ');
}

function sideText(s: SideHarm, short: boolean, onlyNonZero = false): string {
  if (s.total === 0) return short ? '0' : 'none';
  const n = (count: number, label: string): string => (count === 0 ? `0 ${label}` : pc.red(`${count} ${label}`));
  const all = [
    n(s.unexpected4xx, short ? '4XX' : 'unexpected 4XX'),
    n(s.unexpected5xx, '5XX'),
    n(s.wrongAnswers, short ? 'wrong' : 'wrong answers'),
    n(s.transportErrors, short ? 'timeouts' : 'timeouts/transport errors'),
  ];
  const counts = [s.unexpected4xx, s.unexpected5xx, s.wrongAnswers, s.transportErrors];
  const parts = onlyNonZero ? all.filter((_, i) => counts[i]! > 0) : all;
  if (s.otherUnexpected > 0) parts.push(n(s.otherUnexpected, 'other unexpected'));
  return parts.join(', ');
}

function threshold(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(2);
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

function stripColour(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\u001b\[[0-9;]*m/g, '');
}

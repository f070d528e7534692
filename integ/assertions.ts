/**
 * What the integration test checks once a bad release was deployed, as pure functions of what it
 * read (the migration through ops/, the alias, the recorded notifications), so that each check is
 * unit-tested without AWS. Every failure is an `IntegAssertionError` naming what was expected and
 * what was found.
 */
import { detailTypeOf } from '../lambda/aws/event-names';
import { MigrationStatus, type MigrationEvent } from '../lambda/core/model';
import type { ResidualReport } from '../lambda/core/residual';
import type { MigrationState } from '../ops/types';
import { IntegAssertionError } from './poll';

/**
 * Reason codes a rollback of the demo's 5XX fault may carry: the judge's error-rate test, or the
 * demo's alarm on the new version's 5XX count (whichever sees it first).
 */
export const EXPECTED_ROLLBACK_CODES: readonly string[] = ['error-rate-5xx', 'alarm'];

/** Statuses a bad release must never reach: the wait for a rollback ends there with a failure. */
const WRONG_OUTCOMES: readonly string[] = [MigrationStatus.PROMOTED, MigrationStatus.SOAKING, MigrationStatus.COMPLETE, MigrationStatus.TORN_DOWN];

/** One notification the recorder received (integ/recorder.ts), as integ/notes.ts reads it back. */
export interface RecordedNote {
  readonly via: 'sns' | 'events';
  readonly atMs: number;
  /** SNS: the subject and the message. */
  readonly subject?: string;
  readonly message?: string;
  /** EventBridge: the detail-type and the detail. */
  readonly detailType?: string;
  readonly detail?: Readonly<Record<string, unknown>>;
}

/** The alias as `GetAlias` returns it (only what is checked). */
export interface AliasReading {
  readonly FunctionVersion?: string;
  readonly RoutingConfig?: { readonly AdditionalVersionWeights?: Readonly<Record<string, number>> };
}

/** `status …` for messages: the status, weight and the latest decision. */
export function describeState(state: MigrationState): string {
  const decision = state.lastDecision ? `, last decision ${state.lastDecision.action} (${state.lastDecision.code}): ${state.lastDecision.reason}` : '';
  const damage = state.damage ? `, damage: ${state.damage}` : '';
  return `status ${state.status} at ${state.weight ?? '?'}%${decision}${damage}`;
}

/**
 * For the wait on a bad release: true once rolled back; throws for an outcome the wait can never
 * leave (promoted or beyond, paused, damaged), so the test fails at once with the reason.
 */
export function rolledBackYet(state: MigrationState): boolean {
  if (state.status === MigrationStatus.ROLLED_BACK) return true;
  if (WRONG_OUTCOMES.includes(state.status) || state.status === MigrationStatus.PAUSED || state.status === 'damaged') {
    throw new IntegAssertionError(`migration ${state.id} of the bad release`, 'a rollback', describeState(state));
  }
  return false;
}

/** The rollback: its status, weight 0, and a `rolled-back` event with a 5XX reason. Returns that event. */
export function assertRolledBack(state: MigrationState, history: readonly MigrationEvent[]): MigrationEvent {
  const what = `migration ${state.id}`;
  if (state.status !== MigrationStatus.ROLLED_BACK) throw new IntegAssertionError(what, `status ${MigrationStatus.ROLLED_BACK}`, describeState(state));
  if (state.weight !== 0) throw new IntegAssertionError(what, 'weight 0 on the new side after the rollback', `${state.weight}%`);
  const rollback = history.find((e) => e.type === 'rolled-back');
  if (!rollback) {
    throw new IntegAssertionError(`${what}'s event log`, "a 'rolled-back' event", `events ${history.map((e) => e.type).join(', ') || '(none)'}`);
  }
  if (!EXPECTED_ROLLBACK_CODES.includes(rollback.code)) {
    throw new IntegAssertionError(`${what}'s rollback reason`, `code ${EXPECTED_ROLLBACK_CODES.join(' or ')}`, `code ${rollback.code}: ${rollback.reason}`);
  }
  if (rollback.code === 'alarm' && !/5xx/i.test(rollback.reason)) {
    throw new IntegAssertionError(`${what}'s rollback reason`, "the demo's alarm on the new version's 5XX count", rollback.reason);
  }
  if (rollback.reason.trim() === '') throw new IntegAssertionError(`${what}'s rollback reason`, 'a reason a person can read', 'an empty reason');
  if (rollback.weight !== 0) throw new IntegAssertionError(`${what}'s rollback event`, 'weight 0', `${rollback.weight}%`);
  return rollback;
}

/** The alias serves the old version alone: its main version is the old one, and no weight is left on another. */
export function assertAliasBack(alias: AliasReading, versions: { readonly oldVersion: string; readonly newVersion: string }, aliasName: string): void {
  const what = `alias ${aliasName} after the rollback`;
  if (alias.FunctionVersion !== versions.oldVersion) {
    throw new IntegAssertionError(what, `main version ${versions.oldVersion} (the old one)`, `main version ${alias.FunctionVersion ?? '(none)'}`);
  }
  const weights = Object.entries(alias.RoutingConfig?.AdditionalVersionWeights ?? {}).filter(([, weight]) => weight > 0);
  if (weights.length > 0) {
    throw new IntegAssertionError(
      what,
      `no weight on version ${versions.newVersion} (the new one) or any other`,
      `additional weights ${weights.map(([version, weight]) => `${version}: ${weight}`).join(', ')}`,
    );
  }
}

/**
 * Whether the residual watch applies: it starts only when traffic had moved to the new side
 * before the rollback (lambda/core/residual.ts); a rollback at the gate has nothing to drain.
 */
export function residualApplies(history: readonly MigrationEvent[], rollback: MigrationEvent): boolean {
  return history.some((e) => e.seq < rollback.seq && e.weight > 0);
}

/** The `rollback-residual` event, once reported. */
export function residualEvent(history: readonly MigrationEvent[]): MigrationEvent | undefined {
  return history.find((e) => e.type === 'rollback-residual');
}

/** The drain: asked for, then reported drained, with its figures. Returns the report. */
export function assertResidual(history: readonly MigrationEvent[], migrationId: string): ResidualReport {
  const what = `migration ${migrationId}'s drain after the rollback`;
  if (!history.some((e) => e.type === 'drain-requested')) {
    throw new IntegAssertionError(what, "a 'drain-requested' event", `events ${history.map((e) => e.type).join(', ')}`);
  }
  const event = residualEvent(history);
  if (!event) throw new IntegAssertionError(what, "a 'rollback-residual' event", `events ${history.map((e) => e.type).join(', ')}`);
  const report = event.signals?.residual;
  if (!report) throw new IntegAssertionError(what, 'the residual report in the event', `event ${event.seq} without signals.residual`);
  if (event.code !== 'residual-drained' || !report.drained || report.drainedAfterMs === null) {
    throw new IntegAssertionError(what, 'the new side drained (code residual-drained)', `code ${event.code}: ${event.reason}`);
  }
  if (!(report.requestsAfterRollback >= 0) || report.wrongAnswersAfterRollback !== 0) {
    throw new IntegAssertionError(
      what,
      'a count of requests after the rollback and no wrong answers (a 5XX rollback is not a desync)',
      `${report.requestsAfterRollback} requests, ${report.wrongAnswersAfterRollback} wrong answers`,
    );
  }
  return report;
}

/** One notification the test expects, and how to find it. */
interface Expected {
  readonly label: string;
  readonly matches: (note: RecordedNote) => boolean;
}

/** What must have been delivered for a migration rolled back (and, when it applies, drained). */
export function expectedNotifications(migrationId: string, withResidual: boolean): Expected[] {
  const onBus = (type: string): Expected => ({
    label: `EventBridge "${detailTypeOf(type)}" of ${migrationId}`,
    matches: (n) => n.via === 'events' && n.detailType === detailTypeOf(type) && n.detail?.migrationId === migrationId && n.detail?.type === type,
  });
  // The sink's message opens with `Migration <id> (<key>)` and names the event type on its `What:` line.
  const onTopic = (type: string): Expected => ({
    label: `SNS message "${type}" of ${migrationId}`,
    matches: (n) => n.via === 'sns' && (n.message ?? '').includes(`Migration ${migrationId} `) && new RegExp(`^What:\\s+${type} \\(`, 'm').test(n.message ?? ''),
  });
  const expected = [onBus('created'), onBus('rolled-back'), onTopic('rolled-back')];
  if (withResidual) expected.push(onBus('rollback-residual'), onTopic('rollback-residual'));
  return expected;
}

/** Labels of the expected notifications not (yet) among `notes`. */
export function missingNotifications(notes: readonly RecordedNote[], migrationId: string, withResidual: boolean): string[] {
  return expectedNotifications(migrationId, withResidual)
    .filter((e) => !notes.some(e.matches))
    .map((e) => e.label);
}

/** What was received, in one line (for a failure message). */
export function describeNotes(notes: readonly RecordedNote[]): string {
  if (notes.length === 0) return 'no notification at all';
  const shown = notes.slice(-12).map((n) => (n.via === 'sns' ? `SNS "${n.subject ?? ''}"` : `EventBridge "${n.detailType ?? ''}" of ${String(n.detail?.migrationId ?? '?')}`));
  return `${notes.length} notification(s): ${shown.join('; ')}${notes.length > 12 ? ' (last 12)' : ''}`;
}

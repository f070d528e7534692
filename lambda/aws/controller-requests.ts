/**
 * What the controller function is asked and what it answers: the shapes of its invocation events
 * (schedule, alarm state change, probe result, deploy, operator command) turned into one
 * `ControllerRequest`, and the `ControllerResponse` an operator sees. Kept apart from the runtime
 * (controller-runtime.ts), which acts on a request: the deploy trigger and the operator commands
 * (ops/) only need these shapes.
 *
 * One controller serves every migration of a stack (see controller-dispatch.ts), so a request says
 * which one it is about where it can: a command's `migration` (a key or a migration id), the
 * deploy's `migrationKey`, a probe result's `migrationKey`. Each is optional when parsing, so that
 * an event of an older sender (a deploy trigger or CLI of the previous version) still parses; the
 * dispatcher then works the migration out or refuses with the keys to choose from.
 */
import { Command } from '../core/model';
import type { StoredAlarmState } from './dynamodb-store';

/** What an invocation asks for. */
export type ControllerRequest =
  | {
      readonly kind: 'tick';
      /** What woke the controller: `schedule`, `alarm`, `probe`, `deploy` or an EventBridge detail-type. */
      readonly trigger: string;
      readonly detail?: Readonly<Record<string, unknown>>;
      /** The new state of the alarm whose state change event this is (trigger `alarm`). */
      readonly alarm?: StoredAlarmState;
      /** When the schedule fired (the event's `time`; trigger `schedule`), to recognise a redelivery. */
      readonly firedAtMs?: number;
      /** The migration the event is about (trigger `deploy` and `probe`), when the sender named it. */
      readonly migrationKey?: string;
      /** The migration the deploy recorded (trigger `deploy`). */
      readonly migrationId?: string;
    }
  | {
      readonly kind: 'command';
      readonly command: Command;
      readonly reason: string;
      /**
       * The migration's key or id. May be omitted only while exactly one migration is registered:
       * with several, a command without it is refused with the keys.
       */
      readonly migration?: string;
    };

/** The payload the deploy trigger sends when it recorded a new migration. */
export interface DeployTriggerPayload {
  readonly trigger: 'deploy';
  readonly migrationId: string;
  /**
   * The registry key of the migration. Always sent by this version's trigger; optional here only
   * because a wake-up of an older trigger (in flight during an upgrade) has none, and is then
   * routed by the id (`<key>:<version or release>`).
   */
  readonly migrationKey?: string;
}

/** What an operator's command sends (`migration` as in `ControllerRequest`). */
export interface ControllerCommandPayload {
  readonly command: Command;
  readonly reason?: string;
  readonly migration?: string;
}

/** What the function returns (visible to an operator who invokes it directly). */
export interface ControllerResponse {
  /** Null when the alias has no migration yet. */
  readonly migrationId: string | null;
  readonly status?: string;
  readonly weight?: number;
  readonly step?: number;
  readonly action?: string;
  readonly code?: string;
  readonly reason?: string;
  /** Events this invocation appended to the log. */
  readonly events: number;
  /** True when another run saved first and this one changed nothing. */
  readonly conflict?: boolean;
  /** Set when events were saved but could not be published (they stay in the log). */
  readonly publishError?: string;
  /** The registry key of the migration this answer is about (one migration served). */
  readonly migrationKey?: string;
  /**
   * Every migration served, when the invocation served several (a schedule tick, an alarm that
   * several migrations watch); `migrationId` is then null and `events` their sum.
   */
  readonly migrations?: readonly ServedMigration[];
}

/** One migration's part of an invocation that served several. */
export interface ServedMigration {
  readonly migrationKey: string;
  readonly migrationId: string | null;
  readonly status?: string;
  readonly weight?: number;
  readonly events: number;
  /** Why its run failed (the invocation then fails at the end). */
  readonly error?: string;
}

const COMMANDS: readonly string[] = Object.values(Command);

/**
 * Turns the invocation event into a request. Accepts EventBridge events (scheduled, CloudWatch
 * alarm state change, Cutover probe result, or any other rule target: all mean "tick"), the deploy
 * trigger's payload, and `{ "command": …, "reason": … }`. Anything else is rejected with the
 * accepted shapes, so a typo in a manual invoke is not mistaken for a tick.
 */
export function parseControllerEvent(event: unknown): ControllerRequest {
  const e = (event ?? {}) as Record<string, unknown>;
  if (typeof e !== 'object' || Array.isArray(e)) throw new TypeError(`unsupported event: ${preview(event)}`);
  if ('command' in e) {
    if (typeof e.command !== 'string' || !COMMANDS.includes(e.command)) {
      throw new TypeError(`unknown command ${JSON.stringify(e.command)}; known: ${COMMANDS.join(', ')}`);
    }
    if (e.reason !== undefined && typeof e.reason !== 'string') {
      throw new TypeError(`reason must be a string, got ${JSON.stringify(e.reason)}`);
    }
    if (e.migration !== undefined && (typeof e.migration !== 'string' || !e.migration.trim())) {
      throw new TypeError(`migration must be a migration key or id, got ${JSON.stringify(e.migration)}`);
    }
    const reason = typeof e.reason === 'string' && e.reason.trim() ? e.reason.trim() : `operator ${e.command}`;
    return { kind: 'command', command: e.command as Command, reason, ...(typeof e.migration === 'string' ? { migration: e.migration.trim() } : {}) };
  }
  if (e.trigger === 'deploy') {
    const migrationId = String(e.migrationId ?? '');
    const migrationKey = typeof e.migrationKey === 'string' && e.migrationKey ? e.migrationKey : undefined;
    return {
      kind: 'tick',
      trigger: 'deploy',
      detail: { migrationId },
      ...(migrationId ? { migrationId } : {}),
      ...(migrationKey ? { migrationKey } : {}),
    };
  }
  if (typeof e.source === 'string' && typeof e['detail-type'] === 'string') {
    const detail = (e.detail && typeof e.detail === 'object' ? e.detail : {}) as Record<string, unknown>;
    const detailType = e['detail-type'];
    if (e.source === 'aws.events' || e.source === 'aws.scheduler' || detailType === 'Scheduled Event') {
      const firedAtMs = typeof e.time === 'string' ? Date.parse(e.time) : NaN;
      return { kind: 'tick', trigger: 'schedule', ...(Number.isFinite(firedAtMs) ? { firedAtMs } : {}) };
    }
    if (e.source === 'aws.cloudwatch' && detailType === 'CloudWatch Alarm State Change') {
      const state = (detail.state ?? {}) as Record<string, unknown>;
      const alarm = alarmStateOf(detail, typeof e.time === 'string' ? e.time : undefined);
      return {
        kind: 'tick',
        trigger: 'alarm',
        detail: { alarmName: detail.alarmName, state: state.value },
        ...(alarm ? { alarm } : {}),
      };
    }
    if (e.source === 'cutover.probe') {
      const migrationKey = typeof detail.migrationKey === 'string' && detail.migrationKey ? detail.migrationKey : undefined;
      return {
        kind: 'tick',
        trigger: 'probe',
        detail: { side: detail.side, verdict: detail.verdict, summary: detail.summary },
        ...(migrationKey ? { migrationKey } : {}),
      };
    }
    return { kind: 'tick', trigger: detailType };
  }
  throw new TypeError(
    `unsupported event ${preview(event)}: expected an EventBridge event, {"trigger":"deploy","migrationId":…,"migrationKey":…} or {"command":"${COMMANDS.join('|')}","reason":"…","migration":"<key or id>"}`,
  );
}

/**
 * The state an alarm state change event reports, or undefined when the event lacks what ordering
 * it needs (a name, a known state, a time): such an event still runs a tick, which then confirms.
 */
function alarmStateOf(detail: Record<string, unknown>, eventTime: string | undefined): StoredAlarmState | undefined {
  const state = (detail.state ?? {}) as Record<string, unknown>;
  const name = detail.alarmName;
  const value = state.value;
  if (typeof name !== 'string' || !name || (value !== 'OK' && value !== 'ALARM' && value !== 'INSUFFICIENT_DATA')) return undefined;
  // CloudWatch stamps the state as "2019-10-02T17:04:40.989+0000"; the envelope's time is
  // whole seconds, so it is only the fallback.
  const changedAtMs = [state.timestamp, eventTime].map((t) => (typeof t === 'string' ? Date.parse(t) : NaN)).find(Number.isFinite);
  if (changedAtMs === undefined) return undefined;
  return {
    name,
    state: value,
    ...(typeof state.reason === 'string' && state.reason ? { reason: state.reason } : {}),
    changedAtMs,
    source: 'event',
    // Stamped when it is written (see recordDeliveredAlarm).
    recordedAtMs: 0,
  };
}

function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

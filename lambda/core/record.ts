/**
 * The stored record of one migration, and the schema every record is checked against when it is
 * loaded.
 *
 * Why a schema at load: the record is the controller's only memory, and it comes from a file or a
 * DynamoDB item that a person, a bug or a disk can damage. A record that is not exactly what the
 * controller wrote must never be acted on as if it were (an unknown status would make every tick a
 * silent no-op; a missing judge setting would make every tick throw), so the controller checks it
 * with this schema first and, when it fails, fails safe (see `fail-safe.ts`).
 *
 * The schema is written with valibot: small, tree-shakable (it keeps the controller's Lambda
 * bundle small), and it reports every problem with its path.
 */
import * as v from 'valibot';
import { DEFAULT_JUDGE_CONFIG, INITIAL_JUDGE_MEMORY, RETIRED_JUDGE_SETTINGS, resolveJudgeConfig, type JudgeConfig, type JudgeMemory } from './judge';
import { Action, MigrationStatus, type Decision, type MigrationStatus as Status } from './model';
import { MigrationPlan, type PlanSpec } from './plan';
import type { ProbeOutcome, SideSignals } from './ports';
import type { ResidualWatch } from './residual';

/**
 * A routing change the controller has decided and recorded but not yet seen in effect: the
 * write-ahead half of the tick protocol (docs/tick-protocol.md). While a record carries one, the
 * routing is either at `fromWeight` (not made yet) or at `weight` (made), and the next tick or
 * command settles it before it does anything else.
 */
export interface PendingShift {
  /** Why the weight changes: a plan step, an operator's promote, or a rollback (also an abort). */
  readonly kind: 'advance' | 'promote' | 'rollback';
  /** The weight the change sets, percent on the new side. */
  readonly weight: number;
  /** The weight before the change (what the record said when it was decided). */
  readonly fromWeight: number;
  /** The plan step once the change is in effect. */
  readonly step: number;
  /** The status once the change is in effect (baking, promoted or rolled-back). */
  readonly then: Status;
  /** The status the migration was in when the change was decided (where a pause returns to). */
  readonly from: Status;
  /** The event written once the change is in effect, with the decision's code and reason. */
  readonly type: string;
  readonly code: string;
  readonly reason: string;
  /**
   * The routing revision the change is written against, so that it can be made at most once:
   * every tick that tries to make it uses this revision, and only one write can match it. A
   * rollback has none: it writes against whatever revision it finds, so that it always lands.
   */
  readonly expectedRevision?: string;
  /** When it was decided, epoch ms. */
  readonly requestedAtMs: number;
  /** Set once a write returned while the change was still propagating: the revision it produced. */
  readonly appliedRevision?: string;
}

/** What the controller found damaged, kept in the record that replaced the damaged one. */
export interface DamageReport {
  /** One line naming what was damaged (e.g. "record.status: unknown status \"bogus\""). */
  readonly what: string;
  /** When the controller found it, epoch ms. */
  readonly detectedAtMs: number;
  /** Where the damaged record was kept for people to inspect (a file name, a table key). */
  readonly keptAs: string;
  /** Fields of the damaged record that could not be salvaged and were set to safe values. */
  readonly lost: readonly string[];
}

/** The stored record of one migration. */
export interface MigrationRecord {
  readonly id: string;
  readonly status: Status;
  /** Weight on the new side as last seen in effect. */
  readonly weight: number;
  /** Index of the current plan step; -1 before the first shift. */
  readonly step: number;
  readonly plan: PlanSpec;
  readonly judge: JudgeConfig;
  /** Undefined until the gate reads it; 0 when capacity is not managed. */
  readonly pinnedCapacity?: number;
  readonly metadata: Readonly<Record<string, string>>;
  readonly createdAtMs: number;
  readonly updatedAtMs: number;
  /** When the current step, promotion bake or soak began (its evidence counts from here). */
  readonly phaseStartedAtMs?: number;
  /** End of the data the judge has counted so far (the next window starts here). */
  readonly lastWindowEndMs?: number;
  /** When the controller last read a window (one read per health window). */
  readonly lastWindowReadMs?: number;
  /** Counts since the current phase began. */
  readonly stepTotals: { readonly old: SideSignals; readonly new: SideSignals };
  readonly judgeMemory: JudgeMemory;
  /** When the alarms were last read with `confirm` (from their source, not from pushed changes). */
  readonly alarmsConfirmedAtMs?: number;
  /** Probe results up to this time have been taken into account. */
  readonly probesSeenUntilMs: number;
  readonly latestNewProbe?: ProbeOutcome;
  /** The routing revision the controller last wrote or read. */
  readonly trafficRevision?: string;
  /**
   * When the routing is ready for the first shift (`TrafficPort.prepare`), e.g. once a DNS record's
   * old, longer TTL has expired from every cache. The gate does not pass before it.
   */
  readonly trafficReadyAtMs?: number;
  /** The new side's highest request rate seen in a judged window, per minute (for the residual watch). */
  readonly newPeakPerMinute?: number;
  /** After a rollback that moved traffic: the watch of the new side until it is empty (residual.ts). */
  readonly residual?: ResidualWatch;
  /** A routing change decided and recorded but not yet seen in effect (see `PendingShift`). */
  readonly shift?: PendingShift;
  /** The status to go back to on resume. */
  readonly pausedFrom?: Status;
  /** True while the controller is waiting for the old side to come back to its pin. */
  readonly capacityRestoring: boolean;
  /** True once teardown released the pin. */
  readonly capacityReleased: boolean;
  /**
   * True from the moment a teardown is recorded until the pin's release is confirmed: a tick that
   * finds it set (the release was interrupted) releases again (release is idempotent).
   */
  readonly capacityReleasing?: boolean;
  /** Set when this record replaced a damaged one (the migration was stopped, traffic on the old side). */
  readonly damage?: DamageReport;
  readonly lastDecision?: Decision;
  readonly eventSeq: number;
}

export const ZERO_SIDE: SideSignals = Object.freeze({ requests: 0, errors4xx: 0, errors5xx: 0 });

/** A record with nothing measured yet: weight 0, before the first step, no counts, no pin released. */
export function freshRecord(fields: Pick<MigrationRecord, 'id' | 'status' | 'plan' | 'judge' | 'metadata' | 'eventSeq'> & { readonly now: number }): MigrationRecord {
  const { now, ...rest } = fields;
  return {
    ...rest,
    weight: 0,
    step: -1,
    createdAtMs: now,
    updatedAtMs: now,
    stepTotals: { old: ZERO_SIDE, new: ZERO_SIDE },
    judgeMemory: INITIAL_JUDGE_MEMORY,
    probesSeenUntilMs: now,
    capacityRestoring: false,
    capacityReleased: false,
  };
}

// ---------------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------------

const STATUSES = Object.values(MigrationStatus) as [Status, ...Status[]];
const ACTIONS = Object.values(Action) as [string, ...string[]];

const time = v.pipe(v.number(), v.finite(), v.minValue(0));
const count = v.pipe(v.number(), v.integer(), v.minValue(0));
const weight = v.pipe(v.number(), v.finite(), v.minValue(0), v.maxValue(100));
const status = v.picklist(STATUSES, (issue) => `unknown status ${JSON.stringify(issue.input)}`);
const text = v.string();

const side = v.object({
  requests: count,
  errors4xx: count,
  errors5xx: count,
  latencyMs: v.optional(v.pipe(v.number(), v.finite(), v.minValue(0))),
  slowRequests: v.optional(count),
});

/** A plan must pass the same validation as one given to `start` (steps ascending to 100 %, …). */
const plan = v.pipe(
  v.unknown(),
  v.rawCheck(({ dataset, addIssue }) => {
    try {
      MigrationPlan.fromSpec(dataset.value as PlanSpec);
    } catch (error) {
      addIssue({ message: `invalid plan: ${(error as Error).message}` });
    }
  }),
);

/** A record written by an earlier version may carry settings since retired: they are dropped, not refused. */
function withoutRetired(value: Record<string, unknown>): Partial<JudgeConfig> {
  return Object.fromEntries(Object.entries(value).filter(([key]) => !(key in RETIRED_JUDGE_SETTINGS))) as Partial<JudgeConfig>;
}

/** Judge settings must pass `resolveJudgeConfig`; settings added since the record was written take their defaults. */
const judgeConfig = v.pipe(
  v.record(v.string(), v.unknown()),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    try {
      resolveJudgeConfig(withoutRetired(dataset.value));
    } catch (error) {
      addIssue({ message: (error as Error).message });
    }
  }),
  v.transform((value) => resolveJudgeConfig({ ...DEFAULT_JUDGE_CONFIG, ...withoutRetired(value) })),
);

/**
 * What the judge remembers. Fields added since a record was written take their initial values (a
 * record from before the latency test counted slow requests starts that test afresh); fields that
 * were retired (`latencyBreaches`, `cusumOldShift`) are dropped.
 */
const judgeMemory = v.object({
  cusum5xx: time,
  cusum4xx: time,
  cusumSlow: v.optional(time, 0),
  cusumCeiling: v.optional(time, 0),
  oldFailing: v.optional(v.boolean(), false),
  oldRecent: v.optional(v.pipe(v.array(v.object({ requests: count, errors5xx: count })), v.maxLength(50)), []),
  oldLatencies: v.optional(v.pipe(v.array(v.pipe(v.number(), v.finite(), v.minValue(0))), v.maxLength(50)), []),
  missingWindows: count,
  missingHistory: v.optional(v.pipe(v.string(), v.regex(/^[01]{0,50}$/, 'missingHistory must be up to 50 of 0 and 1')), ''),
  baseline: side,
  baselineSlow: v.optional(v.object({ requests: count, slow: count }), { requests: 0, slow: 0 }),
  slowThresholdMs: v.optional(v.pipe(v.number(), v.finite(), v.minValue(0))),
});

const probe = v.object({
  side: v.picklist(['old', 'new']),
  verdict: v.picklist(['ok', 'desync', 'inconclusive']),
  atMs: time,
  summary: text,
  findings: count,
  health: v.optional(v.object({ requests: count, errors5xx: count, errors4xx: v.optional(count) })),
});

const pendingShift = v.object({
  kind: v.picklist(['advance', 'promote', 'rollback']),
  weight,
  fromWeight: weight,
  step: v.pipe(v.number(), v.integer(), v.minValue(-1)),
  then: status,
  from: status,
  type: text,
  code: text,
  reason: text,
  expectedRevision: v.optional(text),
  requestedAtMs: time,
  appliedRevision: v.optional(text),
});

const decision = v.object({
  action: v.picklist(ACTIONS),
  reason: text,
  code: text,
  // The evidence is kept as it was written: the controller never acts on an old decision's signals.
  signals: v.record(v.string(), v.unknown()),
});

const damage = v.object({ what: text, detectedAtMs: time, keptAs: text, lost: v.array(text) });

const RECORD_ENTRIES = {
  id: v.pipe(text, v.nonEmpty()),
  status,
  weight,
  step: v.pipe(v.number(), v.integer(), v.minValue(-1)),
  plan,
  judge: judgeConfig,
  pinnedCapacity: v.optional(count),
  metadata: v.record(v.string(), v.string()),
  createdAtMs: time,
  updatedAtMs: time,
  phaseStartedAtMs: v.optional(time),
  lastWindowEndMs: v.optional(time),
  lastWindowReadMs: v.optional(time),
  stepTotals: v.object({ old: side, new: side }),
  judgeMemory,
  alarmsConfirmedAtMs: v.optional(time),
  probesSeenUntilMs: time,
  latestNewProbe: v.optional(probe),
  trafficRevision: v.optional(text),
  trafficReadyAtMs: v.optional(time),
  newPeakPerMinute: v.optional(v.pipe(v.number(), v.finite(), v.minValue(0))),
  residual: v.optional(
    v.object({
      sinceMs: time,
      peakPerMinute: v.pipe(v.number(), v.finite(), v.minValue(0)),
      causeCode: text,
      requests: count,
      lastWindowEndMs: time,
      lastReadMs: time,
      drainRequested: v.boolean(),
      endedAtMs: v.optional(time),
      drainUndone: v.optional(v.boolean()),
    }),
  ),
  shift: v.optional(pendingShift),
  pausedFrom: v.optional(status),
  capacityRestoring: v.boolean(),
  capacityReleased: v.boolean(),
  capacityReleasing: v.optional(v.boolean()),
  damage: v.optional(damage),
  lastDecision: v.optional(decision),
  eventSeq: count,
};

const recordSchema = v.pipe(
  v.object(RECORD_ENTRIES),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const r = dataset.value;
    const steps = (r.plan as PlanSpec).steps.length;
    if (r.step >= steps) addIssue({ message: `step ${r.step} does not exist in a plan of ${steps} steps` });
    const inShift = r.status === MigrationStatus.SHIFTING || (r.status === MigrationStatus.PAUSED && r.pausedFrom === MigrationStatus.SHIFTING);
    if (inShift && !r.shift) addIssue({ message: `status ${r.status} without the routing change it is making (no "shift")` });
    if (r.status === MigrationStatus.PAUSED && !r.pausedFrom) addIssue({ message: 'status paused without "pausedFrom" (where resume returns to)' });
  }),
);

/** The outcome of checking a stored record. */
export type RecordCheck =
  | { readonly ok: true; readonly record: MigrationRecord }
  | { readonly ok: false; readonly problems: readonly string[] };

/**
 * Checks a stored record against the schema (and that it belongs to `migrationId`). Returns the
 * record (judge settings completed with defaults added since it was written) or every problem
 * found, each as `path: message`.
 */
export function checkRecord(migrationId: string, raw: unknown): RecordCheck {
  const result = v.safeParse(recordSchema, raw);
  if (!result.success) return { ok: false, problems: result.issues.map(describeIssue) };
  const record = result.output as unknown as MigrationRecord;
  if (record.id !== migrationId) {
    return { ok: false, problems: [`id: the record belongs to ${JSON.stringify(record.id)}, not ${JSON.stringify(migrationId)}`] };
  }
  return { ok: true, record };
}

/**
 * What can be kept of a damaged record: each top-level field that passes its own check. Used to
 * build the record that replaces it, so that the plan, settings and counters survive when only
 * one field was damaged.
 */
export function salvageRecord(raw: unknown): { readonly fields: Partial<MigrationRecord>; readonly lost: readonly string[] } {
  const source = raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {};
  const fields: Record<string, unknown> = {};
  const lost: string[] = [];
  for (const [key, schema] of Object.entries(RECORD_ENTRIES)) {
    const value = source[key];
    const result = v.safeParse(schema as v.GenericSchema, value);
    if (result.success && result.output !== undefined) fields[key] = result.output;
    else if (!result.success) lost.push(key);
  }
  return { fields: fields as Partial<MigrationRecord>, lost };
}

function describeIssue(issue: v.BaseIssue<unknown>): string {
  const path = (issue.path ?? []).map((item) => String(item.key)).join('.');
  const message = issue.kind === 'schema' && issue.input === undefined && issue.expected !== 'undefined' ? 'missing' : issue.message;
  return path ? `${path}: ${message}` : message;
}

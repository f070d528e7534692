/**
 * Reads and validates the handlers' environment variables once, at module load, so a bad setting
 * fails the first invocation with an error that names the variable and shows its value.
 */
import { resolveJudgeConfig, type JudgeConfig } from '../core/judge';
import { MigrationPlan, type PlanSpec } from '../core/plan';
import type { Side } from '../core/ports';
import { aliasKeyOf } from './dynamodb-store';
// From the validation module alone, so that the controller's bundle does not pull in the probe engine.
import { checkTargetHeaders, parseConnectTo } from '../probe/target';
import type { ScheduleRules } from './schedules';
import type { ProbeTarget } from './table-probes';
import { parseCapacityConfig, parseTargetConfig, TargetConfigError, type CapacityConfig, type TargetConfig } from './targets';

/** A missing or invalid environment variable. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`environment variable ${variable} ${problem}`);
    this.name = 'ConfigError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;

export interface ControllerConfig {
  readonly tableName: string;
  /** What moves: a Lambda alias, ALB weighted target groups or Route 53 weighted records. */
  readonly target: TargetConfig;
  /** What is pinned on the old side until teardown. */
  readonly capacity: CapacityConfig;
  /** The migrated function (Lambda alias targets only, else empty). */
  readonly functionName: string;
  /** The alias traffic moves on (Lambda alias targets only, else empty). */
  readonly aliasName: string;
  /**
   * The migration key: `<fn>:<alias>` for an alias, `CUTOVER_MIGRATION_KEY` for fleets. Keys the
   * current-migration pointer, the metrics' `Migration` dimension and the events.
   */
  readonly aliasKey: string;
  readonly plan: PlanSpec;
  readonly judge: Partial<JudgeConfig>;
  readonly alarmNames: readonly string[];
  /**
   * Units the old side is pinned at. 0 = capacity not managed; undefined (`auto`) = its size when
   * the migration starts (the larger of its running and its desired count).
   */
  readonly pinnedCapacity: number | undefined;
  /** Undefined when notifications are off. */
  readonly topicArn?: string;
  readonly eventBusName: string;
  readonly appMetricsNamespace: string;
  /**
   * The sides the probe function can probe on demand (its targets). Empty: `probeNow` uses the
   * probe function's recorded results.
   */
  readonly probeTargets: readonly ProbeTarget[];
  readonly probe: ProbeSettingsConfig;
  /** The probe function that runs fresh probes (required with `probeTargets`). */
  readonly probeFunctionName?: string;
  /**
   * The schedules this controller switches off when its migration needs no more ticks (and on
   * again when a new one appeared meanwhile). Undefined: schedules always on (nothing switched).
   */
  readonly schedules?: ScheduleRules;
  /**
   * How the health is read (`CUTOVER_HEALTH_READ_MINUTES`, any target;
   * `CUTOVER_APP_REQUESTS_EVERY_MINUTES`, a Lambda alias's; see `CloudWatchHealthProps`). Unset:
   * every minute.
   */
  readonly healthReads: { readonly minReadMinutes: number; readonly appRequestsEveryMinutes: number };
}

export interface ProbeSettingsConfig {
  readonly path: string;
  readonly runs: number;
  /** Undefined: the probe engine's default. */
  readonly largeBodyBytes?: number;
  /** Undefined: the probe engine's default. */
  readonly timeoutMs?: number;
}

export interface ProbeHandlerConfig {
  readonly tableName: string;
  readonly targets: readonly ProbeTarget[];
  readonly probe: ProbeSettingsConfig;
  readonly eventBusName: string;
  /** `<fn>:<alias>`. */
  readonly migrationKey: string;
}

export interface DeployTriggerConfig {
  readonly tableName: string;
  readonly controllerFunctionName: string;
  /** What moves (an alias, or a fleet's routing that the trigger checks before a migration). */
  readonly target: TargetConfig;
  /** What the old side pins (recorded with a fleet migration, whose sides swap between releases). */
  readonly capacity: CapacityConfig;
  readonly plan: PlanSpec;
  readonly judge: Partial<JudgeConfig>;
  /** See `ControllerConfig.pinnedCapacity`. */
  readonly pinnedCapacity: number | undefined;
  /** The schedules enabled once a migration is recorded (see `ControllerConfig.schedules`). */
  readonly schedules?: ScheduleRules;
}

export function readControllerConfig(env: Env): ControllerConfig {
  const { target, capacity } = readTargetAndCapacity(env);
  const alias = target.kind === 'lambda-alias';
  const functionName = alias ? required(env, 'CUTOVER_FUNCTION_NAME') : '';
  const aliasName = alias ? required(env, 'CUTOVER_ALIAS_NAME') : '';
  const topicArn = env.CUTOVER_TOPIC_ARN?.trim();
  const probeTargets = env.CUTOVER_PROBE_TARGETS?.trim() ? readTargets(env) : [];
  const pinnedCapacity = readPinnedCapacity(env);
  if (capacity.kind === 'none' && pinnedCapacity !== 0) {
    throw new ConfigError('CUTOVER_PINNED_CAPACITY', `must be 0 when CUTOVER_CAPACITY is {"kind":"none"} (nothing to pin), got ${JSON.stringify(env.CUTOVER_PINNED_CAPACITY)}`);
  }
  return {
    tableName: required(env, 'CUTOVER_TABLE_NAME'),
    target,
    capacity,
    functionName,
    aliasName,
    aliasKey: alias ? aliasKeyOf(functionName, aliasName) : required(env, 'CUTOVER_MIGRATION_KEY'),
    plan: readPlan(env),
    judge: readJudge(env),
    alarmNames: readAlarmNames(env),
    pinnedCapacity,
    ...(topicArn ? { topicArn } : {}),
    eventBusName: required(env, 'CUTOVER_EVENT_BUS_NAME'),
    appMetricsNamespace: required(env, 'CUTOVER_APP_METRICS_NAMESPACE'),
    probeTargets,
    probe: readProbeSettings(env),
    ...(probeTargets.length > 0 ? { probeFunctionName: required(env, 'CUTOVER_PROBE_FUNCTION_NAME') } : {}),
    ...readSchedules(env),
    healthReads: {
      minReadMinutes: wholeNumber(env, 'CUTOVER_HEALTH_READ_MINUTES', 1, 60) ?? 1,
      appRequestsEveryMinutes: wholeNumber(env, 'CUTOVER_APP_REQUESTS_EVERY_MINUTES', 1, 60) ?? 1,
    },
  };
}

export function readProbeConfig(env: Env): ProbeHandlerConfig {
  return {
    tableName: required(env, 'CUTOVER_TABLE_NAME'),
    targets: readTargets(env),
    probe: readProbeSettings(env),
    eventBusName: required(env, 'CUTOVER_EVENT_BUS_NAME'),
    migrationKey: required(env, 'CUTOVER_MIGRATION_KEY'),
  };
}

export function readDeployTriggerConfig(env: Env): DeployTriggerConfig {
  const { target, capacity } = readTargetAndCapacity(env);
  return {
    tableName: required(env, 'CUTOVER_TABLE_NAME'),
    target,
    capacity,
    controllerFunctionName: required(env, 'CUTOVER_CONTROLLER_FUNCTION_NAME'),
    plan: readPlan(env),
    judge: readJudge(env),
    pinnedCapacity: readPinnedCapacity(env),
    ...readSchedules(env),
  };
}

/** Which migrations a shared controller function serves (`CUTOVER_CONTROLLER_FAMILY`). */
export type ControllerFamily = 'lambda-alias' | 'fleet' | 'any';

const CONTROLLER_FAMILIES: readonly ControllerFamily[] = ['lambda-alias', 'fleet', 'any'];

/**
 * The stack's part of a shared controller's configuration: what its own environment says, checked
 * at load (a migration's part comes from its registry settings, read with `readControllerConfig`
 * per migration, see controller-handler.ts).
 */
export interface SharedControllerConfig {
  readonly tableName: string;
  readonly eventBusName: string;
  readonly topicArn?: string;
  /** Its own rule and the stack's probe rule; undefined: schedules always on (nothing switched). */
  readonly schedules?: ScheduleRules;
  readonly family: ControllerFamily;
}

/**
 * Reads the shared controller's own variables. `CUTOVER_CONTROLLER_FAMILY` unset is `fallback`
 * (the entry's family: a per-family entry serves its own); `CUTOVER_HEALTH_READ_MINUTES` is checked
 * here too, so that a bad value fails at load rather than every migration at its first tick.
 */
export function readSharedControllerConfig(env: Env, fallback: ControllerFamily = 'any'): SharedControllerConfig {
  const topicArn = env.CUTOVER_TOPIC_ARN?.trim();
  wholeNumber(env, 'CUTOVER_HEALTH_READ_MINUTES', 1, 60);
  return {
    tableName: required(env, 'CUTOVER_TABLE_NAME'),
    eventBusName: required(env, 'CUTOVER_EVENT_BUS_NAME'),
    ...(topicArn ? { topicArn } : {}),
    ...readSchedules(env),
    family: readControllerFamily(env, fallback),
  };
}

/** `CUTOVER_CONTROLLER_FAMILY`: `lambda-alias`, `fleet` or `any`; unset is `fallback`. */
export function readControllerFamily(env: Env, fallback: ControllerFamily = 'any'): ControllerFamily {
  const text = env.CUTOVER_CONTROLLER_FAMILY?.trim();
  if (!text) return fallback;
  if (!(CONTROLLER_FAMILIES as readonly string[]).includes(text)) {
    throw new ConfigError('CUTOVER_CONTROLLER_FAMILY', `must be one of ${CONTROLLER_FAMILIES.join(', ')}, got ${JSON.stringify(text)}`);
  }
  return text as ControllerFamily;
}

/** One family's controller, as the shared deploy trigger knows it (`CUTOVER_CONTROLLERS`). */
export interface ControllerEntry {
  readonly functionName: string;
  /** Its schedule rule; unset: schedules always on (nothing switched). */
  readonly schedule?: string;
}

/**
 * `CUTOVER_CONTROLLERS`: JSON `{"lambda-alias":{"functionName":"…","schedule":"…"},"fleet":{…}}`,
 * the controller of each target family the stack has (only those present). Read by the shared
 * deploy trigger at load, so that a damaged value fails its first invocation with the variable's
 * name rather than some deploy later.
 */
export function readControllerEntries(env: Env): Readonly<Partial<Record<'lambda-alias' | 'fleet', ControllerEntry>>> {
  const value = json(env, 'CUTOVER_CONTROLLERS');
  const shape = 'a JSON object of target family ("lambda-alias", "fleet") to {"functionName": "…", "schedule"?: "…"}';
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError('CUTOVER_CONTROLLERS', `must be ${shape}, got ${preview(JSON.stringify(value))}`);
  }
  const entries: Partial<Record<'lambda-alias' | 'fleet', ControllerEntry>> = {};
  for (const [family, entry] of Object.entries(value as Record<string, unknown>)) {
    if (family !== 'lambda-alias' && family !== 'fleet') {
      throw new ConfigError('CUTOVER_CONTROLLERS', `has an unknown family ${JSON.stringify(family)}; it must be ${shape}`);
    }
    const e = entry as { functionName?: unknown; schedule?: unknown } | null;
    if (e === null || typeof e !== 'object' || typeof e.functionName !== 'string' || e.functionName.trim() === '' || (e.schedule !== undefined && typeof e.schedule !== 'string')) {
      throw new ConfigError('CUTOVER_CONTROLLERS', `entry ${family} must be {"functionName": "…", "schedule"?: "…"}, got ${preview(JSON.stringify(entry) ?? String(entry))}`);
    }
    entries[family] = { functionName: e.functionName.trim(), ...(e.schedule?.trim() ? { schedule: e.schedule.trim() } : {}) };
  }
  return entries;
}

/** The shared probe function's own variables (each migration's targets come from its settings). */
export function readSharedProbeConfig(env: Env): { readonly tableName: string; readonly eventBusName: string } {
  return { tableName: required(env, 'CUTOVER_TABLE_NAME'), eventBusName: required(env, 'CUTOVER_EVENT_BUS_NAME') };
}

/**
 * `CUTOVER_CONTROLLER_SCHEDULE` and `CUTOVER_PROBE_SCHEDULE`: the names of the rules to switch.
 * Without the controller's, nothing is switched (the probe's alone would be meaningless).
 */
function readSchedules(env: Env): { schedules?: ScheduleRules } {
  const controller = env.CUTOVER_CONTROLLER_SCHEDULE?.trim();
  const probe = env.CUTOVER_PROBE_SCHEDULE?.trim();
  if (!controller) {
    if (probe) throw new ConfigError('CUTOVER_CONTROLLER_SCHEDULE', `must be set when CUTOVER_PROBE_SCHEDULE is (${JSON.stringify(probe)}): the probe's schedule is switched with the controller's`);
    return {};
  }
  for (const [name, value] of [['CUTOVER_CONTROLLER_SCHEDULE', controller], ['CUTOVER_PROBE_SCHEDULE', probe]] as const) {
    if (value !== undefined && value !== '' && !/^[\.\-_A-Za-z0-9]{1,64}$/.test(value)) {
      throw new ConfigError(name, `must be an EventBridge rule name (1 to 64 of . - _ A-Z a-z 0-9), got ${JSON.stringify(value)}`);
    }
  }
  return { schedules: { controller, ...(probe ? { probe } : {}) } };
}

// ---------------------------------------------------------------------------------------------

function required(env: Env, name: string): string {
  const value = env[name]?.trim();
  if (!value) throw new ConfigError(name, `must be set, got ${JSON.stringify(env[name] ?? null)}`);
  return value;
}

function json(env: Env, name: string): unknown {
  const text = required(env, name);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ConfigError(name, `is not valid JSON (${(error as Error).message}): ${preview(text)}`);
  }
}

function readPlan(env: Env): PlanSpec {
  const value = json(env, 'CUTOVER_PLAN');
  try {
    return MigrationPlan.fromSpec(value as PlanSpec).toSpec();
  } catch (error) {
    throw new ConfigError('CUTOVER_PLAN', `is not a valid plan: ${(error as Error).message}`);
  }
}

function readJudge(env: Env): Partial<JudgeConfig> {
  // Optional: `{}` and an unset variable both mean the judge's defaults.
  if (!env.CUTOVER_JUDGE?.trim()) return {};
  const value = json(env, 'CUTOVER_JUDGE');
  try {
    resolveJudgeConfig(value as Partial<JudgeConfig>);
  } catch (error) {
    throw new ConfigError('CUTOVER_JUDGE', `is not a valid judge configuration: ${(error as Error).message}`);
  }
  return value as Partial<JudgeConfig>;
}

function readAlarmNames(env: Env): string[] {
  if (!env.CUTOVER_ALARM_NAMES?.trim()) return [];
  const value = json(env, 'CUTOVER_ALARM_NAMES');
  if (!Array.isArray(value) || value.some((n) => typeof n !== 'string' || n.trim() === '')) {
    throw new ConfigError('CUTOVER_ALARM_NAMES', `must be a JSON array of alarm names, got ${preview(JSON.stringify(value))}`);
  }
  return value as string[];
}

function readPinnedCapacity(env: Env): number | undefined {
  const text = required(env, 'CUTOVER_PINNED_CAPACITY');
  if (text === 'auto') return undefined;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || !/^\d+$/.test(text.trim())) {
    throw new ConfigError(
      'CUTOVER_PINNED_CAPACITY',
      `must be a whole number ≥ 0 (0 = capacity not managed) or "auto" (the old side's size when the migration starts), got ${JSON.stringify(text)}`,
    );
  }
  return value;
}

function readTargetAndCapacity(env: Env): { target: TargetConfig; capacity: CapacityConfig } {
  try {
    const target = parseTargetConfig(env.CUTOVER_TARGET);
    return { target, capacity: parseCapacityConfig(env.CUTOVER_CAPACITY, target) };
  } catch (error) {
    if (error instanceof TargetConfigError) throw new ConfigError(error.variable, error.message.replace(/^environment variable \S+ /, ''));
    throw error;
  }
}

function readTargets(env: Env): ProbeTarget[] {
  const value = json(env, 'CUTOVER_PROBE_TARGETS');
  if (!Array.isArray(value)) {
    throw new ConfigError('CUTOVER_PROBE_TARGETS', `must be a JSON array of { "side": "new"|"old", "url": "https://…", "connectTo"?: "host[:port]", "headers"?: {…} }, got ${preview(JSON.stringify(value))}`);
  }
  return value.map((entry: unknown, i) => {
    const t = entry as { side?: unknown; url?: unknown };
    if (t === null || typeof t !== 'object' || (t.side !== 'new' && t.side !== 'old')) {
      throw new ConfigError('CUTOVER_PROBE_TARGETS', `entry ${i}: side must be "new" or "old", got ${preview(JSON.stringify(entry))}`);
    }
    let url: URL;
    try {
      url = new URL(String(t.url));
    } catch {
      throw new ConfigError('CUTOVER_PROBE_TARGETS', `entry ${i}: url is not a valid URL, got ${JSON.stringify(t.url)}`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new ConfigError('CUTOVER_PROBE_TARGETS', `entry ${i}: url must be http: or https:, got ${JSON.stringify(t.url)}`);
    }
    const extra = t as { connectTo?: unknown; headers?: unknown };
    try {
      if (extra.connectTo !== undefined) parseConnectTo(extra.connectTo, `entry ${i}: connectTo`);
      if (extra.headers !== undefined) checkTargetHeaders(extra.headers, `entry ${i}: headers`);
    } catch (error) {
      throw new ConfigError('CUTOVER_PROBE_TARGETS', (error as Error).message);
    }
    return {
      side: t.side as Side,
      url: String(t.url),
      ...(extra.connectTo !== undefined ? { connectTo: String(extra.connectTo) } : {}),
      ...(extra.headers !== undefined ? { headers: extra.headers as Record<string, string> } : {}),
    };
  });
}

function readProbeSettings(env: Env): ProbeSettingsConfig {
  const path = env.CUTOVER_PROBE_PATH?.trim() || '/';
  if (!path.startsWith('/')) throw new ConfigError('CUTOVER_PROBE_PATH', `must start with "/", got ${JSON.stringify(path)}`);
  const runs = wholeNumber(env, 'CUTOVER_PROBE_RUNS', 1, 20) ?? 1;
  const largeBodyBytes = wholeNumber(env, 'CUTOVER_PROBE_LARGE_BODY_BYTES', 1, 6 * 1024 * 1024);
  const timeoutMs = wholeNumber(env, 'CUTOVER_PROBE_TIMEOUT_MS', 100, 60_000);
  return {
    path,
    runs,
    ...(largeBodyBytes !== undefined ? { largeBodyBytes } : {}),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
  };
}

function wholeNumber(env: Env, name: string, min: number, max: number): number | undefined {
  const text = env[name]?.trim();
  if (!text) return undefined;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw new ConfigError(name, `must be a whole number from ${min} to ${max}, got ${JSON.stringify(env[name])}`);
  }
  return value;
}

function preview(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

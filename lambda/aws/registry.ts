/**
 * The registry of a stack's migrations: one item per migration key, written by the deploy trigger
 * from its custom resource's `Settings`, read by the shared controller and probe.
 *
 * Why a registry: one controller, probe and deploy trigger serve every migration of a stack (as a
 * CodeDeploy application holds many deployment groups). What used to configure a per-migration
 * function through its environment (the target, the pin, the plan, the judge, the alarms, the probe
 * targets) now differs per migration, so it travels with the migration: the custom resource carries
 * the same variable names and values, the trigger stores them here, and each handler builds the
 * configuration it always built (`readControllerConfig` and the like in config.ts, with the same
 * checks and messages) from its own environment plus one migration's settings
 * (`migrationEnvironment`). The per-migration code is unchanged; a layer above it picks the
 * migrations.
 *
 * Items (`pk=REGISTRY`, `sk=<migration key>`):
 * - `settings`: map of variable name → string value (only `PER_MIGRATION_SETTINGS` names);
 * - `family`: `lambda-alias` or `fleet`, the controller entry that serves it;
 * - `updatedAtMs`: when a deploy last wrote the settings;
 * - `live` = `{ migrationId, sinceMs }` while the schedules must tick it. The trigger sets it after
 *   recording a migration and BEFORE it enables the schedules; the controller removes it (only if it
 *   still names the migration it found finished) BEFORE it disables them and reads the registry
 *   again: whatever the interleaving, one of them enables last (see schedules.ts).
 *
 * One partition holds every migration of the stack: a schedule tick reads them all with one
 * consistent Query (a stack has tens of migrations at most, far from a partition's limits).
 */
import { DeleteCommand, GetCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import * as v from 'valibot';
import { errorName } from './clients';

/** The partition of the registry items. */
export const REGISTRY_PK = 'REGISTRY';

/**
 * The most migrations one scheduled tick serves. Each is one controller run (a few table and
 * CloudWatch calls, seconds at most, more with a fresh probe at a gate); the rest wait for the next
 * minute's tick, oldest live first.
 */
export const MAX_MIGRATIONS_PER_TICK = 25;

/**
 * The environment variables that differ per migration: what a migration's custom resource carries
 * in `Settings`. Everything else in a shared function's environment (the table, the topic, the bus,
 * the schedules, the other functions' names) is the stack's, and a migration's settings can never
 * override it.
 */
export const PER_MIGRATION_SETTINGS = [
  'CUTOVER_TARGET',
  'CUTOVER_CAPACITY',
  'CUTOVER_FUNCTION_NAME',
  'CUTOVER_ALIAS_NAME',
  'CUTOVER_MIGRATION_KEY',
  'CUTOVER_PLAN',
  'CUTOVER_JUDGE',
  'CUTOVER_ALARM_NAMES',
  'CUTOVER_PINNED_CAPACITY',
  'CUTOVER_APP_METRICS_NAMESPACE',
  'CUTOVER_APP_REQUESTS_EVERY_MINUTES',
  'CUTOVER_PROBE_TARGETS',
  'CUTOVER_PROBE_PATH',
  'CUTOVER_PROBE_RUNS',
  'CUTOVER_PROBE_TIMEOUT_MS',
  'CUTOVER_PROBE_LARGE_BODY_BYTES',
] as const;

/** Which controller entry serves a migration: the one built with its target family's adapters. */
export type TargetFamily = 'lambda-alias' | 'fleet';

export interface RegisteredMigration {
  readonly migrationKey: string;
  readonly family: TargetFamily;
  /** Per-migration variables (names from `PER_MIGRATION_SETTINGS`). */
  readonly settings: Readonly<Record<string, string>>;
  readonly updatedAtMs: number;
  /** Set while the schedules must tick this migration. */
  readonly live?: { readonly migrationId: string; readonly sinceMs: number };
  /**
   * The resources that registered it and were not deleted since (`<stack id>/<logical id>` each):
   * usually one, two while a moved construct's old resource still exists.
   */
  readonly owners?: readonly string[];
}

/** A registry item that cannot be used (no settings, a bad value): reported, never acted on. */
export interface DamagedRegistration {
  readonly migrationKey: string;
  readonly problem: string;
  /** The live mark, when it could be read: a damaged item of a live migration must be reported loudly. */
  readonly liveMigrationId?: string;
}

/** Settings that are not a map of known variable names to strings. */
export class SettingsError extends Error {
  constructor(problem: string) {
    super(`migration settings ${problem}`);
    this.name = 'SettingsError';
  }
}

/** A registry item that could not be read as a registration. */
export class DamagedRegistrationError extends Error {
  constructor(
    readonly migrationKey: string,
    readonly problem: string,
  ) {
    super(`the registry item of ${migrationKey} is damaged: ${problem}; deploy the stack again to rewrite it`);
    this.name = 'DamagedRegistrationError';
  }
}

/**
 * `markLive` with `expected` found another migration's mark than the one its caller read: a deploy
 * marked a newer migration of the key meanwhile, and that mark stays.
 */
export class LiveMarkChangedError extends Error {
  constructor(
    readonly migrationKey: string,
    readonly migrationId: string,
    readonly current: string | undefined,
  ) {
    super(`the live mark of ${migrationKey} changed to ${current ?? 'none'} while marking ${migrationId}; kept`);
    this.name = 'LiveMarkChangedError';
  }
}

const KNOWN = new Set<string>(PER_MIGRATION_SETTINGS);

/**
 * The settings as a plain map of known variable names to strings, or a `SettingsError` naming the
 * first bad name or value. Strings only: CloudFormation passes every custom resource property value
 * as a string, and the readers in config.ts parse them as they parsed the environment.
 */
export function checkSettings(value: unknown): Record<string, string> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new SettingsError(`must be a map of variable names to strings, got ${preview(value)}`);
  }
  const settings: Record<string, string> = {};
  for (const [name, item] of Object.entries(value)) {
    if (!KNOWN.has(name)) {
      throw new SettingsError(`name ${JSON.stringify(name)} is not a per-migration setting; known: ${PER_MIGRATION_SETTINGS.join(', ')}`);
    }
    if (typeof item !== 'string') throw new SettingsError(`${name} must be a string, got ${preview(item)}`);
    settings[name] = item;
  }
  return settings;
}

/** The family of a migration's target (`CUTOVER_TARGET` unset is a Lambda alias, as in config.ts). */
export function familyOf(settings: Readonly<Record<string, string>>): TargetFamily {
  const text = settings.CUTOVER_TARGET?.trim();
  if (!text) return 'lambda-alias';
  let kind: unknown;
  try {
    kind = (JSON.parse(text) as { kind?: unknown } | null)?.kind;
  } catch {
    throw new SettingsError(`CUTOVER_TARGET must be JSON, got ${preview(text)}`);
  }
  switch (kind) {
    case 'lambda-alias':
      return 'lambda-alias';
    case 'load-balancer':
    case 'dns':
      return 'fleet';
    default:
      throw new SettingsError(`CUTOVER_TARGET has an unknown kind ${preview(kind)} (known: lambda-alias, load-balancer, dns)`);
  }
}

/**
 * The environment a per-migration reader gets: the function's own environment, with the
 * migration's settings over the per-migration names only, and `CUTOVER_MIGRATION_KEY` set to the
 * registry key (the probe and fleet readers need it; an alias's key is `<fn>:<alias>`). A
 * per-migration name the migration does not set is removed, so that a leftover in the function's
 * environment can never stand in for a setting of this migration.
 */
export function migrationEnvironment(
  env: Readonly<Record<string, string | undefined>>,
  migration: Pick<RegisteredMigration, 'migrationKey' | 'settings'>,
): Record<string, string | undefined> {
  const merged: Record<string, string | undefined> = { ...env };
  for (const name of PER_MIGRATION_SETTINGS) delete merged[name];
  return { ...merged, ...migration.settings, CUTOVER_MIGRATION_KEY: migration.migrationKey };
}

const LiveSchema = v.object({ migrationId: v.pipe(v.string(), v.minLength(1)), sinceMs: v.number() });
const ItemSchema = v.object({
  sk: v.pipe(v.string(), v.minLength(1)),
  settings: v.record(v.string(), v.unknown()),
  updatedAtMs: v.number(),
  live: v.optional(LiveSchema),
  owners: v.optional(v.set(v.string())),
});

export interface RegistryAccess {
  readonly documents: DynamoDBDocumentClient;
  readonly tableName: string;
  /** Upper bound on pages one `list` reads (each up to 1 MB). @default 10 */
  readonly maxPages?: number;
}

/** Reads and writes the registry items. Every read is consistent: the schedules' race needs it. */
export class MigrationRegistry {
  constructor(private readonly access: RegistryAccess) {}

  /**
   * Every registered migration, live ones first (oldest mark first), then the others by key; items
   * that cannot be read are returned apart, with what is wrong.
   */
  async list(): Promise<{ migrations: RegisteredMigration[]; damaged: DamagedRegistration[] }> {
    const migrations: RegisteredMigration[] = [];
    const damaged: DamagedRegistration[] = [];
    let startKey: Record<string, unknown> | undefined;
    const maxPages = this.access.maxPages ?? 10;
    for (let page = 0; page < maxPages; page++) {
      const result = await this.access.documents.send(
        new QueryCommand({
          TableName: this.access.tableName,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': REGISTRY_PK },
          ConsistentRead: true,
          ...(startKey ? { ExclusiveStartKey: startKey } : {}),
        }),
      );
      for (const item of result.Items ?? []) {
        const read = readItem(item);
        if ('problem' in read) damaged.push(read);
        else migrations.push(read);
      }
      startKey = result.LastEvaluatedKey;
      if (!startKey) break;
    }
    if (startKey) throw new Error(`the registry has more than ${maxPages} pages of migrations; this is far beyond one stack's`);
    migrations.sort(
      (a, b) =>
        (a.live ? 0 : 1) - (b.live ? 0 : 1) ||
        (a.live?.sinceMs ?? 0) - (b.live?.sinceMs ?? 0) ||
        (a.migrationKey < b.migrationKey ? -1 : a.migrationKey > b.migrationKey ? 1 : 0),
    );
    return { migrations, damaged };
  }

  /** One migration's registration, undefined when it has none; `DamagedRegistrationError` when unreadable. */
  async get(migrationKey: string): Promise<RegisteredMigration | undefined> {
    const item = await this.rawItem(migrationKey);
    if (!item) return undefined;
    const read = readItem(item);
    if ('problem' in read) throw new DamagedRegistrationError(migrationKey, read.problem);
    return read;
  }

  /** The item as stored (consistent read), undefined when there is none. */
  private async rawItem(migrationKey: string): Promise<Record<string, unknown> | undefined> {
    const result = await this.access.documents.send(
      new GetCommand({ TableName: this.access.tableName, Key: { pk: REGISTRY_PK, sk: migrationKey }, ConsistentRead: true }),
    );
    return result.Item;
  }

  /**
   * Writes the settings (checked) and the family; keeps the live mark. `owner` (the custom resource
   * that registers it: its stack and logical id) joins the registration's owners, so that the Delete
   * of another resource with the same key cannot remove it (see `deregister`).
   */
  async register(migrationKey: string, settings: Readonly<Record<string, string>>, nowMs: number, owner?: string): Promise<void> {
    const checked = checkSettings(settings);
    await this.access.documents.send(
      new UpdateCommand({
        TableName: this.access.tableName,
        Key: { pk: REGISTRY_PK, sk: migrationKey },
        UpdateExpression: `SET #settings = :settings, #family = :family, #updatedAtMs = :now${owner ? ' ADD #owners :owner' : ''}`,
        // Names through placeholders: some (FAMILY) are DynamoDB reserved words.
        ExpressionAttributeNames: { '#settings': 'settings', '#family': 'family', '#updatedAtMs': 'updatedAtMs', ...(owner ? { '#owners': 'owners' } : {}) },
        ExpressionAttributeValues: { ':settings': checked, ':family': familyOf(checked), ':now': nowMs, ...(owner ? { ':owner': new Set([owner]) } : {}) },
      }),
    );
  }

  /**
   * Takes `owner` out of the registration's owners; the remaining owners (empty when none is left),
   * or undefined when the key is not registered. Used by a Delete, and by a Create that failed
   * (CloudFormation sends no Delete for a resource whose Create failed).
   */
  async removeOwner(migrationKey: string, owner: string): Promise<readonly string[] | undefined> {
    try {
      const result = await this.access.documents.send(
        new UpdateCommand({
          TableName: this.access.tableName,
          Key: { pk: REGISTRY_PK, sk: migrationKey },
          UpdateExpression: 'DELETE #owners :owner',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeNames: { '#owners': 'owners' },
          ExpressionAttributeValues: { ':owner': new Set([owner]) },
          ReturnValues: 'ALL_NEW',
        }),
      );
      const owners = result.Attributes?.owners as Set<string> | undefined;
      return owners ? [...owners] : [];
    } catch (error) {
      if (errorName(error) === 'ConditionalCheckFailedException') return undefined;
      throw error;
    }
  }

  /**
   * Marks the migration live (the schedules must tick it). Keeps `sinceMs` when the same migration
   * is already marked, so that marking again never moves it to the back of the tick's order.
   * Refused (`DamagedRegistrationError`) for a key that is not registered: a live mark without
   * settings could never be served.
   *
   * `expected`: the mark the caller read (null: none). Given, the mark is written only over that one
   * (or none: a mark cleared since is no newer deploy's), so that a controller marking the migration
   * its run found never overwrites the mark of a newer deploy of the key written after its read;
   * `LiveMarkChangedError` then. Undefined: written over any other mark (the deploy trigger, whose
   * migration is the newest by definition).
   */
  async markLive(migrationKey: string, migrationId: string, nowMs: number, options: { readonly expected?: string | null } = {}): Promise<void> {
    const { expected } = options;
    const over =
      expected === undefined ? 'attribute_not_exists(#live) OR #live.migrationId <> :id'
      : expected === null ? 'attribute_not_exists(#live)'
      : 'attribute_not_exists(#live) OR (#live.migrationId = :seen AND #live.migrationId <> :id)';
    try {
      await this.access.documents.send(
        new UpdateCommand({
          TableName: this.access.tableName,
          Key: { pk: REGISTRY_PK, sk: migrationKey },
          UpdateExpression: 'SET #live = :live',
          ConditionExpression: `attribute_exists(#settings) AND (${over})`,
          ExpressionAttributeNames: { '#live': 'live', '#settings': 'settings' },
          ExpressionAttributeValues: {
            ':live': { migrationId, sinceMs: nowMs },
            ...(expected === null ? {} : { ':id': migrationId }),
            ...(typeof expected === 'string' ? { ':seen': expected } : {}),
          },
        }),
      );
    } catch (error) {
      if (errorName(error) !== 'ConditionalCheckFailedException') throw error;
      // Already marked for this migration (nothing to do), not registered, or (with `expected`)
      // marked for another migration since the caller's read.
      const current = await this.get(migrationKey);
      if (!current) throw new DamagedRegistrationError(migrationKey, 'it has no registration (no settings) to mark live');
      if (current.live?.migrationId === migrationId) return;
      if (expected !== undefined) throw new LiveMarkChangedError(migrationKey, migrationId, current.live?.migrationId);
      throw new Error(`the live mark of ${migrationKey} changed while marking ${migrationId}; retry`);
    }
  }

  /**
   * Removes the live mark if it still names `migrationId`; false when it does not (a newer deploy
   * marked its own migration, or there is no mark), which the caller must leave alone.
   */
  async clearLive(migrationKey: string, migrationId: string): Promise<boolean> {
    try {
      await this.access.documents.send(
        new UpdateCommand({
          TableName: this.access.tableName,
          Key: { pk: REGISTRY_PK, sk: migrationKey },
          UpdateExpression: 'REMOVE #live',
          ConditionExpression: '#live.migrationId = :id',
          ExpressionAttributeNames: { '#live': 'live' },
          ExpressionAttributeValues: { ':id': migrationId },
        }),
      );
      return true;
    } catch (error) {
      if (errorName(error) === 'ConditionalCheckFailedException') return false;
      throw error;
    }
  }

  /**
   * Removes the registration, unless the migration is live: a migration taken out of the stack in
   * the middle of a rollback must still be finished by the controller (the deploy trigger's Delete
   * settles it first, then passes `evenIfLive`). With `owner`, it first leaves the owners, and the
   * registration is removed only once no owner is left: when a migration's construct moves (a new
   * logical id, the same key), CloudFormation creates the new resource, which registers, and then
   * deletes the old one, whose Delete must not take the registration away; and if that update rolls
   * back, the new resource's Delete must not take away the old one's.
   */
  async deregister(
    migrationKey: string,
    owner?: string,
    options: { readonly evenIfLive?: boolean } = {},
  ): Promise<'deleted' | 'kept-live' | 'kept-other-owner' | 'absent'> {
    if (owner !== undefined) {
      const remaining = await this.removeOwner(migrationKey, owner);
      if (remaining === undefined) return 'absent';
      if (remaining.length > 0) return 'kept-other-owner';
    }
    // No owner left (a register in between adds one, and then the registration stays).
    const conditions = ['attribute_not_exists(#owners)', ...(options.evenIfLive ? [] : ['attribute_not_exists(#live)'])];
    try {
      const result = await this.access.documents.send(
        new DeleteCommand({
          TableName: this.access.tableName,
          Key: { pk: REGISTRY_PK, sk: migrationKey },
          ConditionExpression: conditions.join(' AND '),
          ExpressionAttributeNames: { '#owners': 'owners', ...(options.evenIfLive ? {} : { '#live': 'live' }) },
          ReturnValues: 'ALL_OLD',
        }),
      );
      return result.Attributes ? 'deleted' : 'absent';
    } catch (error) {
      if (errorName(error) !== 'ConditionalCheckFailedException') throw error;
      const item = await this.rawItem(migrationKey);
      if (!item) return 'absent';
      if (item.owners instanceof Set && item.owners.size > 0) return 'kept-other-owner';
      return 'kept-live';
    }
  }
}

function readItem(item: Record<string, unknown>): RegisteredMigration | DamagedRegistration {
  const migrationKey = typeof item.sk === 'string' ? item.sk : String(item.sk);
  const liveRead = v.safeParse(LiveSchema, item.live);
  const liveMigrationId = liveRead.success ? { liveMigrationId: liveRead.output.migrationId } : {};
  const parsed = v.safeParse(ItemSchema, item);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    const where = issue.path?.map((p) => String(p.key)).join('.') ?? '';
    return { migrationKey, problem: `${where ? `${where}: ` : ''}${issue.message}`, ...liveMigrationId };
  }
  try {
    const settings = checkSettings(parsed.output.settings);
    return {
      migrationKey,
      family: familyOf(settings),
      settings,
      updatedAtMs: parsed.output.updatedAtMs,
      ...(parsed.output.live ? { live: parsed.output.live } : {}),
      ...(parsed.output.owners ? { owners: [...parsed.output.owners].sort() } : {}),
    };
  } catch (error) {
    return { migrationKey, problem: (error as Error).message, ...liveMigrationId };
  }
}

function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

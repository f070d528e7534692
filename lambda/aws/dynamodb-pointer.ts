/**
 * The current-migration pointer of an alias: which migration the deploy trigger last recorded for
 * it (with the plan and settings of that deploy), read by the controller and the probe. Separate
 * from the migration's own items because it lives in the alias's partition and changes only when
 * a deploy starts a migration, under its own condition (the migration it replaces).
 */
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { JudgeConfig } from '../core/judge';
import type { CapacityConfig, TargetConfig } from './targets';
import type { PlanSpec } from '../core/plan';
import { errorName } from './clients';
import { CURRENT_SK, aliasPk, plainJson, type TableAccess } from './dynamodb-table';

/** What a deploy recorded for the controller to start. */
export interface MigrationSpecInput {
  readonly plan: PlanSpec;
  readonly judge?: Partial<JudgeConfig>;
  readonly pinnedCapacity?: number;
  /**
   * What the migration moves and pins, as configured when it was deployed: a fleet migration's
   * sides swap between releases, so a later teardown must release the fleet THIS migration pinned,
   * not the one the controller's current configuration names.
   * @default - the controller's own CUTOVER_TARGET / CUTOVER_CAPACITY
   */
  readonly target?: TargetConfig;
  readonly capacity?: CapacityConfig;
}

/** The alias's current migration (written by the deploy trigger, read by the controller). */
export interface MigrationPointer {
  readonly migrationId: string;
  readonly oldVersion: string;
  readonly newVersion: string;
  /** When the deploy recorded it, epoch ms. */
  readonly createdAtMs: number;
  /**
   * The plan and settings in force at deploy time, so that a migration runs with the settings of
   * the deploy that started it.
   * @default - the controller's own CUTOVER_PLAN / CUTOVER_JUDGE / CUTOVER_PINNED_CAPACITY
   */
  readonly spec?: MigrationSpecInput;
}

/** The pointer was changed by someone else since it was read. */
export class PointerConflictError extends Error {
  constructor(
    readonly aliasKey: string,
    readonly expectedMigrationId: string | undefined,
  ) {
    super(
      `the current migration of ${aliasKey} changed while recording a new one (expected ${expectedMigrationId ?? 'none'}): another deploy is running`,
    );
    this.name = 'PointerConflictError';
  }
}

/** The alias's current migration, or undefined when it has none yet. */
export async function getPointer(table: TableAccess, aliasKey: string): Promise<MigrationPointer | undefined> {
  const result = await table.documents.send(
    new GetCommand({
      TableName: table.tableName,
      Key: { pk: aliasPk(aliasKey), sk: CURRENT_SK },
      ConsistentRead: true,
    }),
  );
  const item = result.Item;
  if (!item) return undefined;
  for (const key of ['migrationId', 'oldVersion', 'newVersion'] as const) {
    if (typeof item[key] !== 'string' || item[key] === '') {
      throw new Error(`pointer of ${aliasKey} is malformed: ${key} is ${JSON.stringify(item[key])}`);
    }
  }
  return {
    migrationId: item.migrationId,
    oldVersion: item.oldVersion,
    newVersion: item.newVersion,
    createdAtMs: typeof item.createdAtMs === 'number' ? item.createdAtMs : 0,
    ...(item.spec ? { spec: item.spec as MigrationSpecInput } : {}),
  };
}

/**
 * Makes `pointer` the alias's current migration if the current one is still `replacing`
 * (undefined: there must be none). Throws `PointerConflictError` otherwise.
 */
export async function putPointer(table: TableAccess, aliasKey: string, pointer: MigrationPointer, replacing: string | undefined): Promise<void> {
  try {
    await table.documents.send(
      new PutCommand({
        TableName: table.tableName,
        Item: { pk: aliasPk(aliasKey), sk: CURRENT_SK, ...plainJson(pointer) },
        ...(replacing === undefined
          ? { ConditionExpression: 'attribute_not_exists(pk)' }
          : {
              ConditionExpression: 'migrationId = :replacing',
              ExpressionAttributeValues: { ':replacing': replacing },
            }),
      }),
    );
  } catch (error) {
    if (errorName(error) === 'ConditionalCheckFailedException') throw new PointerConflictError(aliasKey, replacing);
    throw error;
  }
}

/**
 * A deployed Cutover as a `MigrationSource`: reads from the migration table (the layout of
 * `lambda/aws/dynamodb-table.ts`), commands by a synchronous invoke of the controller function with
 * `{"command": …, "reason": …, "migration": …}`, exactly what an operator's `aws lambda invoke`
 * sends. One controller serves every migration of a stack, so the command names its migration: the
 * id it resolved to when the table is known (the controller then acts on it only while it is its
 * key's current one), else the name as given (a key or an id).
 *
 * Reads only: it uses the record log's read functions rather than `DynamoDbStateStore.load`,
 * which finishes an interrupted outbox copy (a write) and so would need more than read access.
 * The record is checked with the controller's schema, as the controller checks it.
 */
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { QueryCommand, ScanCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { AwsClientOptions } from '../lambda/aws/clients';
import { describeError } from '../lambda/aws/clients';
import type { ControllerCommandPayload } from '../lambda/aws/controller-requests';
import type { ControllerResponse } from '../lambda/aws/controller-runtime';
import { commandClientConfig } from '../lambda/aws/deploy-trigger';
import { getPointer, type MigrationPointer } from '../lambda/aws/dynamodb-pointer';
import { getStateItem, readEvents } from '../lambda/aws/dynamodb-record-log';
import { CURRENT_SK, createDocumentClients, migrationPk, type TableAccess } from '../lambda/aws/dynamodb-table';
import { MigrationStatus, type Command, type MigrationEvent } from '../lambda/core/model';
import { DamagedStateError } from '../lambda/core/ports';
import { readRecord, stateOf, summaryOf, type ReadRecord } from './state';
import {
  RECENT_EVENTS,
  SourceUnavailableError,
  SourceUsageError,
  UnknownMigrationError,
  type CommandOutcome,
  type MigrationSource,
  type MigrationState,
  type MigrationSummary,
} from './types';

const ALIAS_PREFIX = 'ALIAS#';

export interface AwsMigrationSourceOptions {
  /** The migration table (`CUTOVER_TABLE`). Required for list, status, history and watch. */
  readonly tableName?: string;
  /** The controller function (`CUTOVER_CONTROLLER`). Required for commands. */
  readonly controllerFunctionName?: string;
  /** Region, endpoint, credentials. @default - the SDK's standard chain */
  readonly clientOptions?: AwsClientOptions;
  /** @default - a document client made with `clientConfig(clientOptions)` */
  readonly documents?: DynamoDBDocumentClient;
  /** @default - a client with the deploy trigger's settings for a synchronous controller run */
  readonly lambda?: LambdaClient;
  /** Upper bound on pages one Scan or Query reads. @default 1000 */
  readonly maxPages?: number;
}

/** The migration a name resolves to: its id, and the key whose pointer names it (when known). */
interface Resolved {
  readonly id: string;
  readonly key?: string;
  /** The record as read (undefined: the deploy recorded the migration but no run has started it yet). */
  readonly read?: ReadRecord;
}

export class AwsMigrationSource implements MigrationSource {
  readonly kind = 'aws' as const;
  private documentsClient: DynamoDBDocumentClient | undefined;
  private lambdaClient: LambdaClient | undefined;
  private readonly ownsDocuments: boolean;
  private readonly ownsLambda: boolean;

  constructor(private readonly options: AwsMigrationSourceOptions) {
    this.documentsClient = options.documents;
    this.lambdaClient = options.lambda;
    this.ownsDocuments = !options.documents;
    this.ownsLambda = !options.lambda;
  }

  async list(): Promise<MigrationSummary[]> {
    const table = this.table();
    const pointers = await this.call('scan the table for current migrations', () => this.scanPointers(table));
    const rows = await Promise.all(
      pointers.map(async ({ key, pointer }) => {
        const read = await this.call(`read migration ${pointer.migrationId}`, () => readRecord(() => getStateItem(table, pointer.migrationId)));
        return read ? summaryOf(pointer.migrationId, read, { key }) : notStarted(pointer.migrationId, key);
      }),
    );
    return rows.sort((a, b) => (a.key ?? '').localeCompare(b.key ?? ''));
  }

  async status(migration: string): Promise<MigrationState> {
    const table = this.table();
    const resolved = await this.resolve(table, migration);
    const key = resolved.key !== undefined ? { key: resolved.key } : {};
    if (!resolved.read) return { ...notStarted(resolved.id, resolved.key), source: 'aws', recentEvents: [] };
    const events = resolved.read.kind === 'record' ? await this.call(`read the events of ${resolved.id}`, () => this.recentEvents(table, resolved.id)) : [];
    return stateOf('aws', resolved.id, resolved.read, events, key);
  }

  async history(migration: string): Promise<readonly MigrationEvent[]> {
    const table = this.table();
    const resolved = await this.resolve(table, migration);
    return this.call(`read the events of ${resolved.id}`, async () => {
      try {
        return await readEvents(table, resolved.id);
      } catch (error) {
        if (error instanceof DamagedStateError) throw new SourceUnavailableError(error.message, 'damaged');
        throw error;
      }
    });
  }

  /**
   * Invokes the controller with the command, naming the migration. The controller acts on a key's
   * current migration only, so with a table the name is checked first (a migration that is no
   * longer current is refused here, before anything is sent), and the answer is checked against it
   * in any case.
   */
  async command(migration: string, command: Command, reason: string): Promise<CommandOutcome> {
    const functionName = this.options.controllerFunctionName;
    if (!functionName) throw new SourceUsageError('a command needs the controller function: --controller <name> or CUTOVER_CONTROLLER');
    let id = migration.trim();
    if (this.options.tableName) {
      const table = this.table();
      const resolved = await this.resolve(table, migration);
      id = resolved.id;
      if (resolved.key === undefined) {
        const current = await this.call('scan the table for current migrations', () => this.scanPointers(table));
        const owner = current.find((p) => p.pointer.migrationId === id);
        if (!owner) {
          return {
            source: 'aws',
            migrationId: id,
            command,
            reason,
            applied: false,
            refusal: `${id} is no longer the current migration of any key in ${table.tableName}, and the controller acts on its current migration only; nothing was sent`,
          };
        }
      }
    }

    const lambda = this.lambda();
    const payload: ControllerCommandPayload = { command, reason, migration: id };
    let answer;
    try {
      answer = await lambda.send(
        new InvokeCommand({
          FunctionName: functionName,
          InvocationType: 'RequestResponse',
          Payload: new TextEncoder().encode(JSON.stringify(payload)),
        }),
      );
    } catch (error) {
      throw new SourceUnavailableError(`could not invoke the controller ${functionName}: ${describeError(error)}; nothing is known to be applied`, 'invoke-failed');
    }
    const text = answer.Payload ? new TextDecoder().decode(answer.Payload) : '';
    const body = parseJson(text);
    const base = { source: 'aws' as const, migrationId: id, command, reason, response: body ?? text };

    if (answer.FunctionError) {
      const payload = (body ?? {}) as { errorType?: unknown; errorMessage?: unknown };
      const what = typeof payload.errorMessage === 'string' ? payload.errorMessage : text.slice(0, 300) || answer.FunctionError;
      const type = typeof payload.errorType === 'string' ? `${payload.errorType}: ` : '';
      // An SDK retry of an invoke whose answer was lost meets the command already applied: the
      // controller then refuses it as no longer applicable. The table tells (as in the deploy trigger).
      const attempts = answer.$metadata?.attempts ?? 1;
      if (attempts > 1 && this.options.tableName) {
        const now = await this.status(id).catch(() => undefined);
        if (now && appliedAlready(command, now.status, now.oldCapacity?.released)) {
          return { ...base, applied: true, status: now.status, ...(now.weight !== undefined ? { weight: now.weight } : {}), note: 'applied by an earlier attempt whose answer was lost' };
        }
      }
      return { ...base, applied: false, refusal: `the controller refused or failed it (${answer.FunctionError}): ${type}${what}` };
    }

    const response = body as ControllerResponse | undefined;
    if (!response || typeof response !== 'object' || !('migrationId' in response)) {
      throw new SourceUnavailableError(`the controller ${functionName} answered with no controller response: ${JSON.stringify(text.slice(0, 300))}; check cutover status`, 'outcome-unknown');
    }
    if (response.migrationId === null) {
      return { ...base, applied: false, refusal: `the controller ${functionName} has no migration yet` };
    }
    const after = {
      ...(response.status !== undefined ? { status: response.status } : {}),
      ...(response.weight !== undefined ? { weight: response.weight } : {}),
      ...(response.step !== undefined ? { step: response.step } : {}),
      events: response.events,
    };
    // Without a table a key may have been named: the answer about that key's current migration is the one.
    if (response.migrationId !== id && !this.options.tableName && response.migrationKey === id) {
      id = response.migrationId;
      base.migrationId = id;
    }
    if (response.migrationId !== id) {
      return {
        ...base,
        migrationId: response.migrationId,
        applied: response.events > 0,
        refusal: `the controller ${functionName} runs ${response.migrationId}, not ${id}: the command went to its current migration`,
        ...after,
      };
    }
    if (response.conflict) {
      throw new SourceUnavailableError(`another controller run changed ${id} at the same time, so the ${command} command changed nothing; send it again`, 'conflict');
    }
    return {
      ...base,
      applied: true,
      ...after,
      ...(response.publishError ? { note: `saved, but its events could not be published: ${response.publishError}` } : {}),
    };
  }

  close(): void {
    if (this.ownsDocuments) this.documentsClient?.destroy();
    if (this.ownsLambda) this.lambdaClient?.destroy();
    this.documentsClient = undefined;
    this.lambdaClient = undefined;
  }

  // -------------------------------------------------------------------------------------------

  private table(): TableAccess {
    const tableName = this.options.tableName;
    if (!tableName) throw new SourceUsageError('name the migration table: --table <name> or CUTOVER_TABLE');
    this.documentsClient ??= createDocumentClients(this.options.clientOptions).documents;
    return { documents: this.documentsClient, tableName, maxPages: this.options.maxPages ?? 1000 };
  }

  private lambda(): LambdaClient {
    this.lambdaClient ??= new LambdaClient(commandClientConfig(this.options.clientOptions));
    return this.lambdaClient;
  }

  /** A migration id, or a key whose pointer names its current migration. */
  private async resolve(table: TableAccess, migration: string): Promise<Resolved> {
    const name = migration.trim();
    if (name === '') throw new SourceUsageError('name a migration (its id, or its key such as <function>:<alias>)');
    const read = await this.call(`read migration ${name}`, () => readRecord(() => getStateItem(table, name)));
    if (read) return { id: name, read };
    const pointer = await this.call(`read the current migration of ${name}`, () => getPointer(table, name));
    if (!pointer) throw new UnknownMigrationError(name, `table ${table.tableName} (neither a migration id nor a key with a current migration)`);
    const current = await this.call(`read migration ${pointer.migrationId}`, () => readRecord(() => getStateItem(table, pointer.migrationId)));
    return { id: pointer.migrationId, key: name, ...(current ? { read: current } : {}) };
  }

  /** Every key's current-migration pointer. */
  private async scanPointers(table: TableAccess): Promise<{ key: string; pointer: MigrationPointer }[]> {
    const found: { key: string; pointer: MigrationPointer }[] = [];
    let startKey: Record<string, unknown> | undefined;
    let pages = 0;
    do {
      if (pages >= table.maxPages) throw new Error(`table ${table.tableName} is larger than ${table.maxPages} scan pages; refusing to read on`);
      const page = await table.documents.send(
        new ScanCommand({
          TableName: table.tableName,
          FilterExpression: 'sk = :current AND begins_with(pk, :alias)',
          ExpressionAttributeValues: { ':current': CURRENT_SK, ':alias': ALIAS_PREFIX },
          ConsistentRead: true,
          ...(startKey ? { ExclusiveStartKey: startKey } : {}),
        }),
      );
      pages++;
      for (const item of page.Items ?? []) {
        if (typeof item.migrationId !== 'string' || typeof item.pk !== 'string') continue;
        found.push({
          key: item.pk.slice(ALIAS_PREFIX.length),
          pointer: {
            migrationId: item.migrationId,
            oldVersion: String(item.oldVersion ?? ''),
            newVersion: String(item.newVersion ?? ''),
            createdAtMs: typeof item.createdAtMs === 'number' ? item.createdAtMs : 0,
          },
        });
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return found;
  }

  /** The newest events, oldest first: the last event items and any still in the record's outbox. */
  private async recentEvents(table: TableAccess, id: string): Promise<MigrationEvent[]> {
    const page = await table.documents.send(
      new QueryCommand({
        TableName: table.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
        ExpressionAttributeValues: { ':pk': migrationPk(id), ':prefix': 'EVENT#' },
        ScanIndexForward: false,
        Limit: RECENT_EVENTS,
        ConsistentRead: true,
      }),
    );
    const bySeq = new Map<number, MigrationEvent>();
    for (const item of page.Items ?? []) {
      const event = item.event as MigrationEvent | undefined;
      if (event) bySeq.set(event.seq, event);
    }
    const state = await getStateItem(table, id).catch(() => undefined);
    for (const event of state?.outbox ?? []) bySeq.set(event.seq, event);
    return [...bySeq.values()].sort((a, b) => a.seq - b.seq).slice(-RECENT_EVENTS);
  }

  /** Runs an AWS read; its failure becomes a `SourceUnavailableError` naming what was being read. */
  private async call<T>(what: string, read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (error) {
      if (error instanceof SourceUnavailableError || error instanceof SourceUsageError || error instanceof UnknownMigrationError) throw error;
      throw new SourceUnavailableError(`could not ${what}: ${describeError(error)}`);
    }
  }
}

/** A migration the deploy recorded (its key's pointer names it) that no controller run has created yet. */
function notStarted(id: string, key: string | undefined): MigrationSummary {
  return { id, ...(key !== undefined ? { key } : {}), status: MigrationStatus.PENDING, note: 'recorded by the deploy; the controller has not started it yet' };
}

/** Whether the migration is already where `command` takes it. */
function appliedAlready(command: Command, status: string, released: boolean | undefined): boolean {
  switch (command) {
    case 'pause':
      return status === MigrationStatus.PAUSED;
    case 'abort':
      return status === MigrationStatus.ROLLED_BACK;
    case 'teardown':
      return status === MigrationStatus.TORN_DOWN || (status === MigrationStatus.ROLLED_BACK && released === true);
    case 'promote':
      return status === MigrationStatus.PROMOTED || status === MigrationStatus.SOAKING || status === MigrationStatus.COMPLETE;
    case 'resume':
      return false;
  }
}

function parseJson(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

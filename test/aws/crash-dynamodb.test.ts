/**
 * A controller killed at every port-call boundary and resumed by a restarted one (see
 * test/core/crash-scenario.ts), over DynamoDbStateStore on dynalite. The killed controller's
 * store sends its DynamoDB requests through the same crash switch, so it also dies between the
 * requests of one save (after the record's PutItem and before its events are copied out of the
 * outbox, for example).
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbStateStore } from '../../lambda/aws/dynamodb-store';
import { CRASH_POINTS, crashEverywhere } from '../core/crash-scenario';
import type { CrashSwitch } from '../core/interleave';
import { startDynalite, type LocalDynamo } from './helpers';

const TABLE = 'cutover-crash';
let dynamo: LocalDynamo;
beforeAll(async () => {
  dynamo = await startDynalite();
  await dynamo.createTable(TABLE);
});
afterAll(async () => {
  await dynamo.close();
});

/** The document client as a store killed by `crash` sees it. */
function through(crash: CrashSwitch | undefined): DynamoDBDocumentClient {
  const documents = dynamo.clients.documents;
  if (!crash) return documents;
  const send = (command: { constructor: { name: string } }) =>
    crash.call(`dynamodb.${command.constructor.name.replace(/Command$/, '')}`, () => documents.send(command as never));
  return { send } as unknown as DynamoDBDocumentClient;
}

describe('a controller killed at every port-call and DynamoDB-request boundary (dynalite)', () => {
  for (const point of CRASH_POINTS) {
    it(`should resume correctly when it dies while ${point.name}`, async () => {
      const runs = await crashEverywhere(point, () => ({
        open: (crash?: CrashSwitch) => new DynamoDbStateStore({ documents: through(crash), tableName: TABLE, onWarning: () => undefined }),
      }));
      expect(runs.length).toBeGreaterThanOrEqual(16);
      // The store's own requests were boundaries too.
      expect(runs.some((r) => r.boundary.includes('dynamodb.Put'))).toBe(true);
    }, 120_000);
  }
});

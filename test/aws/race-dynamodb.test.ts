/**
 * The race of test/core/race.test.ts over DynamoDB (dynalite on loopback): every controller has
 * its own DynamoDbStateStore on one table, as concurrent Lambda invocations would.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbStateStore } from '../../lambda/aws/dynamodb-store';
import { runRace } from '../core/race-scenario';
import { startDynalite, type LocalDynamo } from './helpers';

const SEEDS = 25;
const TABLE = 'cutover-race';
let dynamo: LocalDynamo;
beforeAll(async () => {
  dynamo = await startDynalite();
  await dynamo.createTable(TABLE);
});
afterAll(async () => {
  await dynamo.close();
});

describe('the tick protocol over DynamoDbStateStores on one table', () => {
  it(`should keep routing and record in agreement over ${SEEDS} interleavings`, async () => {
    const endings = new Set<string>();
    for (let seed = 1; seed <= SEEDS; seed++) {
      const outcome = await runRace(seed, () => new DynamoDbStateStore({ documents: dynamo.clients.documents, tableName: TABLE, onWarning: () => undefined }));
      endings.add(outcome.after.split(' ')[0]!);
    }
    expect(endings.size).toBeGreaterThan(2);
  }, 300_000);
});

/**
 * The calls DynamoDbStateStore makes, seen through aws-sdk-client-mock: the shape of the one Query
 * a load makes, and the pages DynamoDB may legally return that dynalite never does.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { DynamoDbStateStore, migrationPk, probeSk } from '../../lambda/aws/dynamodb-store';
import { makeRecord } from './fixtures';

const documents = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));
const mock = mockClient(documents);
const ID = 'api:live:2';
const SEEN = 1_800_000_000_000;
const state = { pk: migrationPk(ID), sk: 'STATE', version: 4, record: makeRecord(ID, { probesSeenUntilMs: SEEN }) };
const probe = (atMs: number, side: 'old' | 'new') => ({ pk: migrationPk(ID), sk: probeSk(atMs, side), side, verdict: 'ok', atMs, summary: 'aligned', findings: 0, expiresAt: 1 });

afterAll(() => mock.restore());
beforeEach(() => mock.reset());

describe('DynamoDbStateStore: calls of a load', () => {
  it('should make one consistent Query from the remembered probesSeenUntilMs up to the record, newest first and bounded', async () => {
    const store = new DynamoDbStateStore({ documents, tableName: 't', probeResultsPerLoad: 10, alarmStatesPerLoad: 2 });
    mock.on(QueryCommand).resolves({ Items: [state, probe(SEEN + 1_000, 'old')] });
    expect(await store.load(ID)).toEqual({ record: state.record, version: 4 });
    expect(await store.load(ID)).toEqual({ record: state.record, version: 4 });
    const [cold, warm] = mock.commandCalls(QueryCommand).map((c) => c.args[0].input);
    expect(warm).toEqual({
      TableName: 't',
      KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
      ExpressionAttributeValues: { ':pk': migrationPk(ID), ':from': `PROBE#${String(SEEN).padStart(15, '0')}`, ':to': 'STATE' },
      ScanIndexForward: false,
      // The record, room for the two watched alarms' states, and ten probe results.
      Limit: 13,
      ConsistentRead: true,
    });
    // A store that has seen no record of the migration starts at the beginning of the probe range.
    expect(cold?.ExpressionAttributeValues?.[':from']).toBe(`PROBE#${'0'.repeat(15)}`);
    expect(mock.commandCalls(GetCommand)).toHaveLength(0);
    expect(store.takeLoadedProbeResults(ID, SEEN)).toEqual([{ side: 'old', verdict: 'ok', atMs: SEEN + 1_000, summary: 'aligned', findings: 0 }]);
  });

  it('should read the record alone, and keep no probe results, when a page stops before its first item', async () => {
    const store = new DynamoDbStateStore({ documents, tableName: 't' });
    mock.on(QueryCommand).resolves({ Items: [], LastEvaluatedKey: { pk: migrationPk(ID), sk: 'STATE' } });
    mock.on(GetCommand).resolves({ Item: state });
    expect(await store.load(ID)).toEqual({ record: state.record, version: 4 });
    expect(mock.commandCalls(GetCommand)[0]?.args[0].input).toMatchObject({ Key: { pk: migrationPk(ID), sk: 'STATE' }, ConsistentRead: true });
    expect(store.takeLoadedProbeResults(ID, 0)).toBeUndefined();
  });

  it('should copy an outbox left behind out of the record the Query returned', async () => {
    const store = new DynamoDbStateStore({ documents, tableName: 't' });
    const event = { migrationId: ID, seq: 1, atMs: 1, type: 'held', from: 'baking', to: 'baking', weight: 10, step: 0, reason: 'r', code: 'baking' };
    mock.on(QueryCommand).resolves({ Items: [{ ...state, outbox: [event] }] });
    mock.on(UpdateCommand).resolves({});
    await store.load(ID);
    expect(mock.commandCalls(UpdateCommand)[0]?.args[0].input).toMatchObject({ UpdateExpression: 'REMOVE outbox', ExpressionAttributeValues: { ':version': 4 } });
  });

  it('should return nothing, and keep nothing, when the partition has probe results but no record yet', async () => {
    const store = new DynamoDbStateStore({ documents, tableName: 't' });
    mock.on(QueryCommand).resolves({ Items: [probe(SEEN, 'new')] });
    expect(await store.load(ID)).toBeUndefined();
    expect(store.takeLoadedProbeResults(ID, 0)).toBeUndefined();
  });
});

/**
 * Reads back what the recorder (integ/recorder.ts) wrote: every SNS notification and EventBridge
 * event of the test's stack, oldest first.
 */
import { QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { RecordedNote } from './assertions';
import { NOTE_PK } from './recorder-names';

/** Upper bound on pages read (a run records a few dozen notifications). */
const MAX_PAGES = 20;

export async function readNotes(documents: DynamoDBDocumentClient, tableName: string): Promise<RecordedNote[]> {
  const notes: RecordedNote[] = [];
  let startKey: Record<string, unknown> | undefined;
  let pages = 0;
  do {
    if (pages++ >= MAX_PAGES) throw new Error(`recorder table ${tableName} holds more than ${MAX_PAGES} pages; is it the test's own table?`);
    const page = await documents.send(
      new QueryCommand({
        TableName: tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': NOTE_PK },
        ConsistentRead: true,
        ...(startKey ? { ExclusiveStartKey: startKey } : {}),
      }),
    );
    for (const item of page.Items ?? []) notes.push(toNote(item));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return notes;
}

function toNote(item: Record<string, unknown>): RecordedNote {
  const via = item.via === 'sns' ? 'sns' : 'events';
  const atMs = typeof item.atMs === 'number' ? item.atMs : 0;
  if (via === 'sns') {
    return { via, atMs, subject: String(item.subject ?? ''), message: String(item.message ?? '') };
  }
  let detail: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(String(item.detail ?? '{}'));
    if (parsed && typeof parsed === 'object') detail = parsed as Record<string, unknown>;
  } catch {
    // An unreadable detail matches no expectation; the failure message lists what was received.
  }
  return { via, atMs, detailType: String(item.detailType ?? ''), detail };
}

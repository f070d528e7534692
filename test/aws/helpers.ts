/**
 * Test helpers: a dynalite DynamoDB on 127.0.0.1 (ephemeral port) with the contract's table, and
 * clients configured for loopback servers.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { CreateTableCommand, DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { createAwsClients } from '../../lambda/aws/all-clients';
import type { AwsClientOptions, AwsClients } from '../../lambda/aws/clients';

export const TEST_CREDENTIALS = { accessKeyId: 'test-key', secretAccessKey: 'test-secret' };

export interface LocalDynamo {
  readonly endpoint: string;
  /** The dynalite HTTP server (to watch requests). */
  readonly server: Server;
  readonly clients: AwsClients;
  /** Number of HTTP requests dynalite received, by DynamoDB operation. */
  readonly calls: Map<string, number>;
  createTable(name: string): Promise<void>;
  close(): Promise<void>;
}

/** Starts dynalite in memory on a loopback ephemeral port. */
export async function startDynalite(options: AwsClientOptions = {}): Promise<LocalDynamo> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 }) as Server;
  const calls = new Map<string, number>();
  server.on('request', (req) => {
    const target = String(req.headers['x-amz-target'] ?? '').split('.').pop() ?? '?';
    calls.set(target, (calls.get(target) ?? 0) + 1);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const endpoint = `http://127.0.0.1:${port}`;
  const clients = createAwsClients({ region: 'us-east-1', endpoint, credentials: TEST_CREDENTIALS, maxAttempts: 2, ...options });
  return {
    endpoint,
    server,
    clients,
    calls,
    async createTable(name: string) {
      await clients.dynamoDb.send(
        new CreateTableCommand({
          TableName: name,
          AttributeDefinitions: [
            { AttributeName: 'pk', AttributeType: 'S' },
            { AttributeName: 'sk', AttributeType: 'S' },
          ],
          KeySchema: [
            { AttributeName: 'pk', KeyType: 'HASH' },
            { AttributeName: 'sk', KeyType: 'RANGE' },
          ],
          BillingMode: 'PAY_PER_REQUEST',
        }),
      );
      // Bounded wait for ACTIVE (immediate with createTableMs 0).
      for (let i = 0; i < 50; i++) {
        const { Table } = await clients.dynamoDb.send(new DescribeTableCommand({ TableName: name }));
        if (Table?.TableStatus === 'ACTIVE') return;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`table ${name} did not become ACTIVE`);
    },
    async close() {
      for (const client of Object.values(clients)) client.destroy();
      server.closeAllConnections?.();
      await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    },
  };
}

/**
 * Captures what the process writes to stdout and stderr (Powertools writes EMF and JSON logs
 * there) and gives it back as parsed JSON lines.
 */
export function captureOutput(): {
  readonly records: () => Record<string, unknown>[];
  /** Bytes written so far. */
  readonly bytes: () => number;
  readonly restore: () => void;
} {
  const chunks: string[] = [];
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  const capture = (chunk: unknown): boolean => {
    chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8'));
    return true;
  };
  process.stdout.write = capture as typeof process.stdout.write;
  process.stderr.write = capture as typeof process.stderr.write;
  return {
    records: () =>
      chunks
        .join('')
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => {
          try {
            return JSON.parse(line) as Record<string, unknown>;
          } catch {
            return { unparsed: line };
          }
        }),
    bytes: () => chunks.reduce((n, c) => n + Buffer.byteLength(c), 0),
    restore: () => {
      process.stdout.write = out;
      process.stderr.write = err;
    },
  };
}

/** EMF blocks of `namespace` in captured records. */
export function emfLines(records: Record<string, unknown>[], namespace: string): Record<string, unknown>[] {
  return records.filter((r) => {
    const aws = r._aws as { CloudWatchMetrics?: { Namespace: string }[] } | undefined;
    return aws?.CloudWatchMetrics?.some((m) => m.Namespace === namespace);
  });
}

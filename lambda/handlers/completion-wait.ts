/**
 * The completion wait: `onEvent` and `isComplete` of a CloudFormation custom resource (through the
 * `aws-cdk-lib/custom-resources` Provider) that holds `cdk deploy` until the migration it recorded
 * completes, and fails it when the migration rolls back. The logic is in
 * `lambda/aws/completion-wait.ts`; this file only builds the clients, once per container.
 *
 * One function serves both calls: `isComplete` receives what `onEvent` returned (the Provider passes
 * every field of that response on), so an event carrying `CutoverWaitFor` is an `isComplete` call.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import {
  isMigrationComplete,
  onCompletionWaitEvent,
  readCompletionWaitConfig,
  type CompletionWaitState,
  type IsCompleteResponse,
  type OnEventResponse,
} from '../aws/completion-wait';
import { createDocumentClients } from '../aws/dynamodb-table';

const config = readCompletionWaitConfig(process.env);
// Only the DynamoDB client: cold start loads no other SDK package.
const { documents } = createDocumentClients();
const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME || 'cutover-completion-wait' });
const deps = { documents, tableName: config.tableName, log: (message: string, detail: Record<string, unknown>) => logger.info(message, detail) };

export async function handler(event: CloudFormationCustomResourceEvent & Partial<CompletionWaitState>): Promise<OnEventResponse | IsCompleteResponse> {
  return 'CutoverWaitFor' in event ? isMigrationComplete(event, deps) : onCompletionWaitEvent(event, deps);
}

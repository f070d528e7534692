/**
 * Every client the controller uses, with the same retry and timeout settings (`clientConfig`).
 * Functions that need fewer services create only those, so that their cold start does not load
 * the other SDK packages.
 */
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { SNSClient } from '@aws-sdk/client-sns';
import { clientConfig, type AwsClientOptions, type AwsClients } from './clients';
import { createDocumentClients } from './dynamodb-store';

export function createAwsClients(options: AwsClientOptions = {}): AwsClients {
  const config = clientConfig(options);
  return {
    lambda: new LambdaClient(config),
    cloudWatch: new CloudWatchClient(config),
    ...createDocumentClients(options),
    sns: new SNSClient(config),
    eventBridge: new EventBridgeClient(config),
  };
}

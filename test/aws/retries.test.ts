/**
 * Throttling, 5XX answers and timeouts from every AWS call the runtime makes, over a real socket
 * to a loopback endpoint: the SDK's own retry strategy (configured by `createAwsClients`) retries
 * each of them up to `maxAttempts`, then the adapters fail or fail safe.
 */
import { CreateAliasCommand, InvokeCommand, PutProvisionedConcurrencyConfigCommand } from '@aws-sdk/client-lambda';
import { PublishCommand } from '@aws-sdk/client-sns';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it, type TestContext } from 'vitest';
import { createAwsClients } from '../../lambda/aws/all-clients';
import { describeError, type AwsClients } from '../../lambda/aws/clients';
import { CloudWatchHealth } from '../../lambda/aws/cloudwatch-health';
import { DynamoDbStateStore } from '../../lambda/aws/dynamodb-store';
import { AwsEventSink } from '../../lambda/aws/eventbridge-sink';
import { LambdaAliasTraffic } from '../../lambda/aws/traffic/alias';
import { ProvisionedConcurrencyCapacity } from '../../lambda/aws/capacity/provisioned-concurrency';
import { startFakeAws, type FakeAws, type Protocol, type Reply } from './fake-aws';
import { makeEvent, makeRecord } from './fixtures';
import { TEST_CREDENTIALS } from './helpers';

const MAX_ATTEMPTS = 3;
/** A fake endpoint and clients pointed at it, both closed when the (possibly concurrent) test ends. */
async function setup(context: TestContext, protocol: Protocol, script: readonly Reply[]): Promise<{ server: FakeAws; clients: AwsClients }> {
  const server = await startFakeAws(protocol, script);
  const clients = createAwsClients({
    endpoint: server.endpoint,
    region: 'us-east-1',
    credentials: TEST_CREDENTIALS,
    maxAttempts: MAX_ATTEMPTS,
    requestTimeoutMs: 150,
    connectionTimeoutMs: 500,
  });
  context.onTestFinished(async () => {
    for (const client of Object.values(clients)) client.destroy();
    await server.close();
  });
  return { server, clients };
}

const fn = { functionName: 'api', aliasName: 'live' };
const warnings: string[] = [];
const silent = (m: string) => warnings.push(m);

/** Every AWS call of the runtime, made the way the runtime makes it. */
const CALLS: readonly { readonly name: string; readonly protocol: Protocol; readonly run: (c: AwsClients) => Promise<unknown> }[] = [
  { name: 'Lambda GetAlias', protocol: 'rest-json', run: (c) => new LambdaAliasTraffic({ lambda: c.lambda, ...fn, oldVersion: '1', newVersion: '2' }).getWeight() },
  { name: 'Lambda UpdateAlias', protocol: 'rest-json', run: (c) => new LambdaAliasTraffic({ lambda: c.lambda, ...fn, oldVersion: '1', newVersion: '2' }).setWeight(10, 'rev') },
  { name: 'Lambda CreateAlias', protocol: 'rest-json', run: (c) => c.lambda.send(new CreateAliasCommand({ FunctionName: 'api', Name: 'live', FunctionVersion: '1' })) },
  { name: 'Lambda Invoke', protocol: 'rest-json', run: (c) => c.lambda.send(new InvokeCommand({ FunctionName: 'ctl', InvocationType: 'Event', Payload: new TextEncoder().encode('{}') })) },
  { name: 'Lambda GetProvisionedConcurrencyConfig', protocol: 'rest-json', run: (c) => new ProvisionedConcurrencyCapacity({ lambda: c.lambda, functionName: 'api', version: '1' }).read() },
  { name: 'Lambda PutProvisionedConcurrencyConfig', protocol: 'rest-json', run: (c) => c.lambda.send(new PutProvisionedConcurrencyConfigCommand({ FunctionName: 'api', Qualifier: '1', ProvisionedConcurrentExecutions: 5 })) },
  { name: 'Lambda DeleteProvisionedConcurrencyConfig', protocol: 'rest-json', run: (c) => new ProvisionedConcurrencyCapacity({ lambda: c.lambda, functionName: 'api', version: '1' }).release() },
  { name: 'CloudWatch DescribeAlarms', protocol: 'json', run: (c) => health(c).readAlarms() },
  { name: 'DynamoDB GetItem', protocol: 'json', run: (c) => store(c).getPointer('api:live') },
  { name: 'DynamoDB PutItem', protocol: 'json', run: (c) => store(c).save('m1', makeRecord('m1'), 0, []) },
  { name: 'DynamoDB Query (record and probe results)', protocol: 'json', run: (c) => store(c).load('m1') },
  { name: 'DynamoDB Query (probe results)', protocol: 'json', run: (c) => store(c).probeResultsSince('api:live:2', 0) },
  {
    name: 'DynamoDB UpdateItem',
    protocol: 'json',
    run: (c) => c.documents.send(new UpdateCommand({ TableName: 't', Key: { pk: 'a', sk: 'b' }, UpdateExpression: 'REMOVE outbox' })),
  },
  { name: 'EventBridge PutEvents', protocol: 'json', run: (c) => sink(c).publish([makeEvent('m1', 1)]) },
  { name: 'SNS Publish', protocol: 'query', run: (c) => c.sns.send(new PublishCommand({ TopicArn: 'arn:aws:sns:us-east-1:1:t', Message: 'm' })) },
];

function health(c: AwsClients) {
  return new CloudWatchHealth({ cloudWatch: c.cloudWatch, ...fn, oldVersion: '1', newVersion: '2', appMetricsNamespace: 'App', alarmNames: ['a'], onWarning: silent });
}
function store(c: AwsClients) {
  return new DynamoDbStateStore({ documents: c.documents, tableName: 't', onWarning: silent });
}
function sink(c: AwsClients) {
  return new AwsEventSink({ eventBridge: c.eventBridge, sns: c.sns, eventBusName: 'bus', migrationKey: 'api:live' });
}

const FAILURES: readonly { readonly kind: 'throttle' | '5xx' | 'hang'; readonly expect: Record<Protocol, RegExp> }[] = [
  { kind: 'throttle', expect: { 'rest-json': /TooManyRequestsException/, json: /ThrottlingException/, query: /Throttling/ } },
  { kind: '5xx', expect: { 'rest-json': /ServiceException/, json: /InternalServerError/, query: /InternalError/ } },
  { kind: 'hang', expect: { 'rest-json': /TimeoutError/, json: /TimeoutError/, query: /TimeoutError/ } },
];

describe.concurrent('every AWS call is retried by the SDK, then fails', () => {
  for (const call of CALLS) {
    for (const failure of FAILURES) {
      it(`should retry ${call.name} on ${failure.kind === 'hang' ? 'a timeout' : failure.kind} ${MAX_ATTEMPTS} times`, async (context) => {
        const { server, clients } = await setup(context, call.protocol, [{ kind: failure.kind }]);
        const error = await call.run(clients).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error, `${call.name} should fail`).toBeDefined();
        expect(describeError(error)).toMatch(failure.expect[call.protocol]);
        expect(server.requests.map((r) => r.attempt)).toEqual(
          Array.from({ length: MAX_ATTEMPTS }, (_, i) => `attempt=${i + 1}; max=${MAX_ATTEMPTS}`),
        );
      });
    }
  }
});

describe('retries that end in success', () => {
  it('should read the alias after two throttles', async (context) => {
    const alias = { AliasArn: 'arn', Name: 'live', FunctionVersion: '1', RevisionId: 'r9', RoutingConfig: { AdditionalVersionWeights: { '2': 0.25 } } };
    const { server, clients } = await setup(context, 'rest-json', [{ kind: 'throttle' }, { kind: '5xx' }, { kind: 'ok', body: alias }]);
    const state = await new LambdaAliasTraffic({ lambda: clients.lambda, ...fn, oldVersion: '1', newVersion: '2' }).getWeight();
    expect(state).toEqual({ weight: 25, revision: 'r9', settled: true });
    expect(server.requests).toHaveLength(3);
    expect(server.requests[0]!.path).toBe('/2015-03-31/functions/api/aliases/live');
  });

  it('should load from DynamoDB after a timeout and a throttle', async (context) => {
    const { server, clients } = await setup(context, 'json', [{ kind: 'hang' }, { kind: 'throttle' }, { kind: 'ok', body: {} }]);
    expect(await store(clients).load('m1')).toBeUndefined();
    expect(server.requests.map((r) => r.target)).toEqual(Array(3).fill('DynamoDB_20120810.Query'));
  });
});

describe('failing safe when CloudWatch cannot be read', () => {
  it('should give a missing window (never a healthy one) after GetMetricData is throttled on every attempt', async (context) => {
    warnings.length = 0;
    const { server, clients } = await setup(context, 'json', [{ kind: 'throttle' }]);
    const now = Date.now();
    expect(await health(clients).readWindow(now - 10 * 60_000, now)).toBeUndefined();
    expect(server.requests).toHaveLength(MAX_ATTEMPTS);
    expect(server.requests[0]!.target).toBe('GraniteServiceVersion20100801.GetMetricData');
    expect(warnings.join('\n')).toMatch(/GetMetricData failed.*/);
  });
});

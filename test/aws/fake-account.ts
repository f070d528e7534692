/**
 * A small stateful AWS account behind aws-sdk-client-mock: one Lambda function with an alias and
 * provisioned-concurrency configs, CloudWatch metrics and alarms, an event bus and a topic.
 * DynamoDB is not mocked (tests use dynalite). Any command can be made to fail on demand, to test
 * how the runtime behaves when an AWS call gives up after the SDK's retries.
 */
import { CloudWatchClient, DescribeAlarmsCommand, GetMetricDataCommand, type MetricDataQuery } from '@aws-sdk/client-cloudwatch';
import { DisableRuleCommand, EnableRuleCommand, EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import {
  CreateAliasCommand,
  DeleteProvisionedConcurrencyConfigCommand,
  GetAliasCommand,
  GetProvisionedConcurrencyConfigCommand,
  InvokeCommand,
  LambdaClient,
  PreconditionFailedException,
  ProvisionedConcurrencyConfigNotFoundException,
  PutProvisionedConcurrencyConfigCommand,
  ResourceNotFoundException,
  UpdateAliasCommand,
} from '@aws-sdk/client-lambda';
import { PublishCommand, SNSClient, type PublishInput } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';

export interface SideMetrics {
  requests: number;
  errors4xx: number;
  errors5xx: number;
  invocations: number;
  lambdaErrors: number;
  durationP99: number;
}

export const healthySide = (requests: number): SideMetrics => ({
  requests,
  errors4xx: Math.round(requests * 0.01),
  errors5xx: 0,
  invocations: requests,
  lambdaErrors: 0,
  durationP99: 80,
});

/** Names of the mocked commands, for `fail` and `calls`. */
export type CommandName =
  | 'GetAlias'
  | 'UpdateAlias'
  | 'CreateAlias'
  | 'Invoke'
  | 'GetProvisionedConcurrencyConfig'
  | 'PutProvisionedConcurrencyConfig'
  | 'DeleteProvisionedConcurrencyConfig'
  | 'GetMetricData'
  | 'DescribeAlarms'
  | 'PutEvents'
  | 'EnableRule'
  | 'DisableRule'
  | 'Publish';

export function throttled(name = 'ThrottlingException'): Error {
  return Object.assign(new Error('Rate exceeded'), { name, $metadata: { httpStatusCode: name === 'TooManyRequestsException' ? 429 : 400 } });
}
export function serverError(): Error {
  return Object.assign(new Error('We encountered an internal error. Please try again.'), { name: 'ServiceException', $metadata: { httpStatusCode: 500 } });
}
export function timedOut(): Error {
  return Object.assign(new Error('@smithy/node-http-handler - the request timed out'), { name: 'TimeoutError' });
}

export class FakeAccount {
  readonly lambdaMock = mockClient(LambdaClient);
  readonly cloudWatchMock = mockClient(CloudWatchClient);
  readonly eventBridgeMock = mockClient(EventBridgeClient);
  readonly snsMock = mockClient(SNSClient);

  alias: { main: string; weights: Record<string, number>; revision: number } | undefined;
  readonly pc = new Map<string, { requested: number; allocated: number; status: 'READY' | 'IN_PROGRESS' | 'FAILED' }>();
  /** Provisioned concurrency becomes READY at once when true; IN_PROGRESS until `settlePc()` when false. */
  pcInstant = true;
  metrics: { old: SideMetrics; new: SideMetrics } | 'empty' = { old: healthySide(900), new: healthySide(100) };
  readonly alarms = new Map<string, 'OK' | 'ALARM' | 'INSUFFICIENT_DATA'>();
  /** When each alarm entered its state (DescribeAlarms' StateTransitionedTimestamp), if set. */
  readonly alarmChangedAtMs = new Map<string, number>();
  readonly events: PutEventsRequestEntry[] = [];
  /** EventBridge rules' states by name (EnableRule/DisableRule), and every switch in order. */
  readonly rules = new Map<string, 'ENABLED' | 'DISABLED'>();
  readonly ruleSwitches: string[] = [];
  /** Runs before a rule switch takes effect (to interleave another actor). */
  beforeRuleSwitch: (action: 'enable' | 'disable', name: string) => void | Promise<void> = () => {};
  readonly notifications: PublishInput[] = [];
  readonly invocations: { FunctionName?: string; InvocationType?: string; payload: unknown }[] = [];
  /** Errors each command throws (instead of answering) while set. */
  readonly failures = new Map<CommandName, () => Error>();
  /** Per-command call counts. */
  readonly calls = new Map<CommandName, number>();
  /** Replies to synchronous invokes of the controller (deploy trigger tests). */
  invokeReply: (payload: unknown) => { FunctionError?: string; Payload?: unknown } | Promise<{ FunctionError?: string; Payload?: unknown }> = () => ({});

  constructor(readonly functionName = 'api') {
    this.install();
  }

  /** Puts the mocks back to their behaviour after `reset` by the test. */
  install(): void {
    const guard = <T>(name: CommandName, answer: (input: any) => T) => (input: any): T => {
      this.calls.set(name, (this.calls.get(name) ?? 0) + 1);
      const failure = this.failures.get(name);
      if (failure) throw failure();
      return answer(input);
    };
    this.lambdaMock.on(GetAliasCommand).callsFake(guard('GetAlias', () => this.aliasConfig()));
    this.lambdaMock.on(CreateAliasCommand).callsFake(
      guard('CreateAlias', (input) => {
        this.alias = { main: input.FunctionVersion, weights: {}, revision: 1 };
        return this.aliasConfig();
      }),
    );
    this.lambdaMock.on(UpdateAliasCommand).callsFake(
      guard('UpdateAlias', (input) => {
        const alias = this.alias;
        if (!alias) throw new ResourceNotFoundException({ message: 'Alias not found', $metadata: {} });
        if (input.RevisionId && input.RevisionId !== `rev-${alias.revision}`) {
          throw new PreconditionFailedException({ message: 'The Revision Id provided does not match the latest Revision Id.', $metadata: { httpStatusCode: 412 } });
        }
        this.alias = { main: input.FunctionVersion, weights: { ...(input.RoutingConfig?.AdditionalVersionWeights ?? {}) }, revision: alias.revision + 1 };
        return this.aliasConfig();
      }),
    );
    this.lambdaMock.on(InvokeCommand).callsFake(
      guard('Invoke', (input) => {
        const payload = input.Payload ? JSON.parse(new TextDecoder().decode(input.Payload)) : undefined;
        this.invocations.push({ FunctionName: input.FunctionName, InvocationType: input.InvocationType, payload });
        if (input.InvocationType === 'Event') return { StatusCode: 202 };
        return Promise.resolve(this.invokeReply(payload)).then((reply) => ({
          StatusCode: 200,
          ...(reply.FunctionError ? { FunctionError: reply.FunctionError } : {}),
          Payload: new TextEncoder().encode(JSON.stringify(reply.Payload ?? null)),
        }));
      }),
    );
    this.lambdaMock.on(GetProvisionedConcurrencyConfigCommand).callsFake(
      guard('GetProvisionedConcurrencyConfig', (input) => {
        const config = this.pc.get(input.Qualifier);
        if (!config) throw new ProvisionedConcurrencyConfigNotFoundException({ message: 'No Provisioned Concurrency Config found', $metadata: {} });
        return this.pcConfig(config);
      }),
    );
    this.lambdaMock.on(PutProvisionedConcurrencyConfigCommand).callsFake(
      guard('PutProvisionedConcurrencyConfig', (input) => {
        const n = input.ProvisionedConcurrentExecutions;
        const config = this.pcInstant
          ? { requested: n, allocated: n, status: 'READY' as const }
          : { requested: n, allocated: 0, status: 'IN_PROGRESS' as const };
        this.pc.set(input.Qualifier, config);
        return this.pcConfig(config);
      }),
    );
    this.lambdaMock.on(DeleteProvisionedConcurrencyConfigCommand).callsFake(
      guard('DeleteProvisionedConcurrencyConfig', (input) => {
        if (!this.pc.delete(input.Qualifier)) {
          throw new ProvisionedConcurrencyConfigNotFoundException({ message: 'No Provisioned Concurrency Config found', $metadata: {} });
        }
        return {};
      }),
    );
    this.cloudWatchMock.on(GetMetricDataCommand).callsFake(
      guard('GetMetricData', (input) => ({
        MetricDataResults: (input.MetricDataQueries as MetricDataQuery[]).map((q) => {
          const [side, signal] = q.Id!.split('_') as ['old' | 'new', keyof SideMetrics];
          const value = this.metrics === 'empty' ? undefined : this.metrics[side][signal];
          return { Id: q.Id, StatusCode: 'Complete', Values: value === undefined ? [] : [value], Timestamps: value === undefined ? [] : [input.StartTime] };
        }),
      })),
    );
    this.cloudWatchMock.on(DescribeAlarmsCommand).callsFake(
      guard('DescribeAlarms', (input) => ({
        MetricAlarms: (input.AlarmNames as string[])
          .filter((n) => this.alarms.has(n))
          .map((n) => ({
            AlarmName: n,
            StateValue: this.alarms.get(n),
            StateReason: `test says ${this.alarms.get(n)}`,
            ...(this.alarmChangedAtMs.has(n) ? { StateTransitionedTimestamp: new Date(this.alarmChangedAtMs.get(n)!) } : {}),
          })),
      })),
    );
    this.eventBridgeMock.on(PutEventsCommand).callsFake(
      guard('PutEvents', (input) => {
        this.events.push(...(input.Entries as PutEventsRequestEntry[]));
        return { FailedEntryCount: 0, Entries: (input.Entries as unknown[]).map((_, i) => ({ EventId: `ev-${this.events.length + i}` })) };
      }),
    );
    for (const [command, name, state] of [
      [EnableRuleCommand, 'EnableRule', 'ENABLED'],
      [DisableRuleCommand, 'DisableRule', 'DISABLED'],
    ] as const) {
      this.eventBridgeMock.on(command as typeof EnableRuleCommand).callsFake(
        guard(name, async (input) => {
          await this.beforeRuleSwitch(state === 'ENABLED' ? 'enable' : 'disable', input.Name);
          this.rules.set(input.Name, state);
          this.ruleSwitches.push(`${state === 'ENABLED' ? 'enable' : 'disable'} ${input.Name}`);
          return {};
        }),
      );
    }
    this.snsMock.on(PublishCommand).callsFake(
      guard('Publish', (input) => {
        this.notifications.push(input);
        return { MessageId: `msg-${this.notifications.length}` };
      }),
    );
  }

  /** Back to an empty account (one instance per test file: the mocks patch the client classes). */
  resetState(): void {
    for (const mock of [this.lambdaMock, this.cloudWatchMock, this.eventBridgeMock, this.snsMock]) mock.reset();
    this.alias = undefined;
    this.pc.clear();
    this.pcInstant = true;
    this.metrics = { old: healthySide(900), new: healthySide(100) };
    this.alarms.clear();
    this.alarmChangedAtMs.clear();
    this.events.length = 0;
    this.rules.clear();
    this.ruleSwitches.length = 0;
    this.beforeRuleSwitch = () => {};
    this.notifications.length = 0;
    this.invocations.length = 0;
    this.failures.clear();
    this.calls.clear();
    this.invokeReply = () => ({});
    this.install();
  }

  /** Finishes in-progress provisioned-concurrency allocations. */
  settlePc(): void {
    for (const [version, config] of this.pc) this.pc.set(version, { ...config, allocated: config.requested, status: 'READY' });
  }

  /** Detail-types put on the bus so far. */
  detailTypes(): string[] {
    return this.events.map((e) => e.DetailType ?? '');
  }

  count(name: CommandName): number {
    return this.calls.get(name) ?? 0;
  }

  restore(): void {
    this.lambdaMock.restore();
    this.cloudWatchMock.restore();
    this.eventBridgeMock.restore();
    this.snsMock.restore();
  }

  private aliasConfig() {
    if (!this.alias) throw new ResourceNotFoundException({ message: `Alias not found: ${this.functionName}:live`, $metadata: { httpStatusCode: 404 } });
    return {
      AliasArn: `arn:aws:lambda:us-east-1:123456789012:function:${this.functionName}:live`,
      Name: 'live',
      FunctionVersion: this.alias.main,
      RevisionId: `rev-${this.alias.revision}`,
      RoutingConfig: { AdditionalVersionWeights: { ...this.alias.weights } },
    };
  }

  private pcConfig(config: { requested: number; allocated: number; status: string }) {
    return {
      RequestedProvisionedConcurrentExecutions: config.requested,
      AllocatedProvisionedConcurrentExecutions: config.allocated,
      AvailableProvisionedConcurrentExecutions: config.allocated,
      Status: config.status,
    };
  }
}

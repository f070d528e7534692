import { Duration, Stack } from 'aws-cdk-lib';
import { Capture, Match, Template } from 'aws-cdk-lib/assertions';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMAND_MAX_ATTEMPTS, COMMAND_TIMEOUT_MS } from '../../lambda/aws/deploy-trigger';
import { PER_MIGRATION_SETTINGS } from '../../lambda/aws/registry';
import { CanaryMigration } from '../../lib/canary-migration';
import { CutoverValidationError } from '../../lib/errors';
import { HealthCheck } from '../../lib/health-check';
import { ProbeSide } from '../../lib/metrics';
import { TeardownPolicy, TrafficShiftPlan } from '../../lib/plan';
import { alarm, appStack, fullMigration, logicalId, minimalMigration, removeTestOutputs } from './fixtures';


const fnArn = (id: string) => ({ 'Fn::GetAtt': [id, 'Arn'] });
const qualified = (id: string, qualifier: string) => ({ 'Fn::Join': ['', [fnArn(id), `:${qualifier}`]] });

/** The statements of the inline (default) policy of a role. */
function statementsOf(template: Template, roleLogicalId: string): any[] {
  const policies = template.findResources('AWS::IAM::Policy', {
    Properties: { Roles: Match.arrayWith([{ Ref: roleLogicalId }]) },
  });
  return Object.values(policies).flatMap((p: any) => p.Properties.PolicyDocument.Statement);
}

function statementFor(statements: any[], action: string): any {
  const found = statements.filter((s) => [s.Action].flat().includes(action));
  expect(found, `exactly one statement allows ${action}`).toHaveLength(1);
  return found[0];
}

/** The log groups of the stack's shared controller (logical ids under `Cutover`). */
function migrationLogGroups(template: Template): Record<string, any> {
  return Object.fromEntries(Object.entries(template.findResources('AWS::Logs::LogGroup')).filter(([id]) => id.startsWith('Cutover')));
}

/** The `Settings` of the (only) migration's custom resource: what the registry stores for it. */
function settingsOf(template: Template): Record<string, any> {
  const triggers = Object.values(template.findResources('Custom::CutoverDeployTrigger'));
  expect(triggers).toHaveLength(1);
  return triggers[0]!.Properties.Settings;
}

function functionByEntryEnv(template: Template, serviceName: string): { id: string; props: any } {
  const fns = template.findResources('AWS::Lambda::Function', {
    Properties: { Environment: { Variables: Match.objectLike({ POWERTOOLS_SERVICE_NAME: serviceName }) } },
  });
  const entries = Object.entries(fns);
  expect(entries, `one ${serviceName} function`).toHaveLength(1);
  return { id: entries[0]![0], props: entries[0]![1].Properties };
}


afterAll(removeTestOutputs);

describe('CanaryMigration with every feature', () => {
  let template: Template;
  let f: ReturnType<typeof fullMigration>;
  let ids: { service: string; controller: string; controllerRole: string; probe: string; probeRole: string; trigger: string; triggerRole: string; table: string; topic: string; bus: string; key: string; alarms: string[] };

  beforeAll(() => {
    f = fullMigration();
    template = Template.fromStack(f.stack);
    const s = f.stack;
    ids = {
      service: logicalId(s, f.fn),
      controller: logicalId(s, f.migration.controllerFunction),
      controllerRole: logicalId(s, f.migration.controllerFunction.role!),
      probe: logicalId(s, f.migration.probeFunction!),
      probeRole: logicalId(s, f.migration.probeFunction!.role!),
      trigger: logicalId(s, f.migration.deployTriggerFunction),
      triggerRole: logicalId(s, f.migration.deployTriggerFunction.role!),
      table: logicalId(s, f.migration.table),
      topic: logicalId(s, f.migration.topic),
      bus: logicalId(s, f.bus),
      key: logicalId(s, f.key),
      alarms: f.alarms.map((a) => logicalId(s, a)),
    };
  });

  it('should keep state in an on-demand, encrypted table with point-in-time recovery and a TTL', () => {
    template.resourceCountIs('AWS::DynamoDB::Table', 1);
    template.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      Properties: {
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        AttributeDefinitions: Match.arrayWith([
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'S' },
        ]),
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: fnArn(ids.key) },
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      },
    });
  });

  it('should encrypt the topic with the given key and refuse plain HTTP', () => {
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: fnArn(ids.key) });
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('should create the controller, probe and trigger on Node 22 ARM64 with their own log groups', () => {
    for (const name of ['cutover-controller', 'cutover-probe']) {
      const { props } = functionByEntryEnv(template, name);
      expect(props.Runtime).toBe('nodejs22.x');
      expect(props.Architectures).toEqual(['arm64']);
      expect(props.LoggingConfig.LogGroup.Ref).toMatch(/Logs/);
    }
    const trigger = template.toJSON().Resources[ids.trigger].Properties;
    expect(trigger.Runtime).toBe('nodejs22.x');
    expect(trigger.LoggingConfig.LogGroup.Ref).toMatch(/DeployTriggerLogs/);
    // Controller, probe, trigger, and the custom resource framework (the service has its own).
    const ours = migrationLogGroups(template);
    expect(Object.keys(ours)).toHaveLength(4);
    for (const group of Object.values(ours)) expect(group).toMatchObject({ DeletionPolicy: 'Retain', Properties: { RetentionInDays: 30 } });
  });

  it('should give the shared controller exactly the contract environment: the stack\'s, never a migration\'s', () => {
    const { props } = functionByEntryEnv(template, 'cutover-controller');
    const env = props.Environment.Variables;
    expect(Object.keys(env).sort()).toEqual(
      [
        'CUTOVER_TABLE_NAME',
        'CUTOVER_TOPIC_ARN',
        'CUTOVER_EVENT_BUS_NAME',
        'CUTOVER_CONTROLLER_FAMILY',
        'CUTOVER_PROBE_FUNCTION_NAME',
        'CUTOVER_CONTROLLER_SCHEDULE',
        'CUTOVER_PROBE_SCHEDULE',
        'CUTOVER_HEALTH_READ_MINUTES',
        'POWERTOOLS_SERVICE_NAME',
        'POWERTOOLS_METRICS_NAMESPACE',
        'NODE_OPTIONS',
      ].sort(),
    );
    expect(env.CUTOVER_TABLE_NAME).toEqual({ Ref: ids.table });
    expect(env.CUTOVER_CONTROLLER_FAMILY).toBe('lambda-alias');
    // Fresh probes are run by the probe function, which the controller may invoke (and nothing else of it).
    expect(env.CUTOVER_PROBE_FUNCTION_NAME).toEqual({ Ref: ids.probe });
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: ids.controllerRole }],
      PolicyDocument: {
        Statement: Match.arrayWith([{ Sid: 'RunFreshProbes', Effect: 'Allow', Action: 'lambda:InvokeFunction', Resource: { 'Fn::GetAtt': [ids.probe, 'Arn'] } }]),
      },
    });
    expect(env.CUTOVER_TOPIC_ARN).toEqual({ Ref: ids.topic });
    expect(env.CUTOVER_EVENT_BUS_NAME).toEqual({ Ref: ids.bus });
    // The health, three minutes per read.
    expect(env.CUTOVER_HEALTH_READ_MINUTES).toBe('3');
    expect(env.POWERTOOLS_METRICS_NAMESPACE).toBe('Cutover');
    expect(f.migration.controllerFunction.node.path).toBe('Full/CutoverController/LambdaAliasController/Function');
  });

  it('should carry exactly the per-migration settings in its custom resource, each a registry setting', () => {
    const settings = settingsOf(template);
    expect(Object.keys(settings).sort()).toEqual(
      [
        'CUTOVER_FUNCTION_NAME',
        'CUTOVER_ALIAS_NAME',
        'CUTOVER_MIGRATION_KEY',
        'CUTOVER_CAPACITY',
        'CUTOVER_PLAN',
        'CUTOVER_JUDGE',
        'CUTOVER_ALARM_NAMES',
        'CUTOVER_PINNED_CAPACITY',
        'CUTOVER_APP_METRICS_NAMESPACE',
        'CUTOVER_APP_REQUESTS_EVERY_MINUTES',
        'CUTOVER_PROBE_TARGETS',
        'CUTOVER_PROBE_PATH',
        'CUTOVER_PROBE_RUNS',
      ].sort(),
    );
    for (const name of Object.keys(settings)) expect(PER_MIGRATION_SETTINGS, name).toContain(name);
    expect(settings.CUTOVER_FUNCTION_NAME).toEqual({ Ref: ids.service });
    expect(settings.CUTOVER_ALIAS_NAME).toBe('live');
    expect(settings.CUTOVER_MIGRATION_KEY).toEqual({ 'Fn::Join': ['', [{ Ref: ids.service }, ':live']] });
    expect(JSON.parse(settings.CUTOVER_PLAN)).toEqual(TrafficShiftPlan.CANARY_10PERCENT_5MINUTES.spec);
    expect(JSON.parse(settings.CUTOVER_JUDGE)).toEqual({});
    expect(settings.CUTOVER_ALARM_NAMES).toEqual({
      'Fn::Join': ['', ['["', { Ref: ids.alarms[0] }, '","', { Ref: ids.alarms[1] }, '"]']],
    });
    expect(settings.CUTOVER_PINNED_CAPACITY).toBe('5');
    expect(settings.CUTOVER_APP_METRICS_NAMESPACE).toBe('Cutover/App');
    // The application's Requests one window in ten minutes (an alias's cross-check).
    expect(settings.CUTOVER_APP_REQUESTS_EVERY_MINUTES).toBe('10');
    expect(JSON.parse(settings.CUTOVER_PROBE_TARGETS)).toEqual([
      { side: 'new', url: 'https://new.example.com/prod/' },
      { side: 'old', url: 'https://old.example.com/prod/' },
    ]);
    expect(settings.CUTOVER_PROBE_PATH).toBe('/health');
    expect(settings.CUTOVER_PROBE_RUNS).toBe('3');
  });

  it('should give the probe exactly the contract environment', () => {
    const { props } = functionByEntryEnv(template, 'cutover-probe');
    const env = props.Environment.Variables;
    expect(Object.keys(env).sort()).toEqual(
      ['CUTOVER_TABLE_NAME', 'CUTOVER_EVENT_BUS_NAME', 'POWERTOOLS_SERVICE_NAME', 'POWERTOOLS_METRICS_NAMESPACE', 'NODE_OPTIONS'].sort(),
    );
    // The largest probeTimeout of its migrations (one here, without one: a minute).
    expect(props.Timeout).toBe(60);
  });

  it('should give the deploy trigger exactly the contract environment', () => {
    const env = template.toJSON().Resources[ids.trigger].Properties.Environment.Variables;
    expect(Object.keys(env).sort()).toEqual(['CUTOVER_TABLE_NAME', 'CUTOVER_CONTROLLERS', 'CUTOVER_PROBE_SCHEDULE', 'NODE_OPTIONS'].sort());
    const controllerEnv = functionByEntryEnv(template, 'cutover-controller').props.Environment.Variables;
    expect(env.CUTOVER_CONTROLLERS).toEqual({
      'Fn::Join': ['', ['{"lambda-alias":{"functionName":"', { Ref: ids.controller }, `","schedule":"${controllerEnv.CUTOVER_CONTROLLER_SCHEDULE}"}}`]],
    });
    // Longer than every attempt of a synchronous command together (the command client's budget).
    expect(template.toJSON().Resources[ids.trigger].Properties.Timeout * 1000).toBeGreaterThan(COMMAND_MAX_ATTEMPTS * COMMAND_TIMEOUT_MS);
  });

  it('should never make the alias a CloudFormation resource, and start migrations through the deploy trigger', () => {
    template.resourceCountIs('AWS::Lambda::Alias', 0);
    const version = Object.keys(template.findResources('AWS::Lambda::Version'))[0]!;
    template.hasResourceProperties('Custom::CutoverDeployTrigger', {
      FunctionName: { Ref: ids.service },
      AliasName: 'live',
      TargetVersion: { 'Fn::GetAtt': [version, 'Version'] },
      MigrationId: { 'Fn::Join': ['', [{ Ref: ids.service }, ':live:', { 'Fn::GetAtt': [version, 'Version'] }]] },
    });
    const trigger = Object.values(template.findResources('Custom::CutoverDeployTrigger'))[0]!;
    // Its controller able to act (the role and its policy, with this migration's grants) and the probe there for the gate.
    const controllerPolicy = Object.keys(template.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: ids.controllerRole }], PolicyName: Match.stringLikeRegexp('DefaultPolicy') } }));
    expect(trigger.DependsOn).toEqual(expect.arrayContaining([ids.controllerRole, ...controllerPolicy, ids.probe]));
  });

  it('should run the controller and the probe every minute, on schedules that are DISABLED at deploy and named in both environments', () => {
    const controllerEnv = functionByEntryEnv(template, 'cutover-controller').props.Environment.Variables;
    const triggerEnv = template.toJSON().Resources[ids.trigger].Properties.Environment.Variables;
    const names = { [ids.controller]: controllerEnv.CUTOVER_CONTROLLER_SCHEDULE, [ids.probe]: controllerEnv.CUTOVER_PROBE_SCHEDULE };
    expect(new Set(Object.values(names)).size).toBe(2);
    for (const [target, name] of Object.entries(names)) {
      expect(name).toMatch(/^[.\-_A-Za-z0-9]{1,64}$/);
      template.hasResourceProperties('AWS::Events::Rule', {
        Name: name,
        ScheduleExpression: 'rate(1 minute)',
        State: 'DISABLED',
        Targets: [Match.objectLike({ Arn: fnArn(target), RetryPolicy: { MaximumRetryAttempts: 0 } })],
      });
    }
    // Nothing else runs on a schedule: the event rules (desync, alarms) stay enabled.
    const scheduled = Object.values(template.findResources('AWS::Events::Rule')).filter((r: any) => r.Properties.ScheduleExpression);
    expect(scheduled.map((r: any) => r.Properties.State)).toEqual(['DISABLED', 'DISABLED']);
    expect(JSON.stringify(triggerEnv.CUTOVER_CONTROLLERS)).toContain(`\\"schedule\\":\\"${names[ids.controller]}\\"`);
    expect(triggerEnv.CUTOVER_PROBE_SCHEDULE).toBe(names[ids.probe]);
    // Named, not referenced: the custom resource that enables them waits for both rules explicitly.
    const ruleIds = Object.keys(template.findResources('AWS::Events::Rule', { Properties: { ScheduleExpression: 'rate(1 minute)' } }));
    const trigger = Object.values(template.findResources('Custom::CutoverDeployTrigger'))[0]!;
    expect(ruleIds).toHaveLength(2);
    expect(trigger.DependsOn).toEqual(expect.arrayContaining(ruleIds));
  });

  it('should let the deploy trigger enable and the controller switch exactly those two rules, and nothing else', () => {
    // The test stack has an explicit account and region.
    const ruleArn = (name: string) => `arn:aws:events:${f.stack.region}:${f.stack.account}:rule/${name}`;
    const env = functionByEntryEnv(template, 'cutover-controller').props.Environment.Variables;
    const arns = [ruleArn(env.CUTOVER_CONTROLLER_SCHEDULE), ruleArn(env.CUTOVER_PROBE_SCHEDULE)];
    const switching = statementsOf(template, ids.controllerRole).filter((st) => [st.Action].flat().includes('events:DisableRule'));
    expect(switching).toEqual([
      { Sid: 'SwitchControllerSchedule', Effect: 'Allow', Action: ['events:DisableRule', 'events:EnableRule'], Resource: arns[0] },
      { Sid: 'SwitchProbeSchedule', Effect: 'Allow', Action: ['events:DisableRule', 'events:EnableRule'], Resource: arns[1] },
    ]);
    const enabling = statementsOf(template, ids.triggerRole).filter((st) => [st.Action].flat().includes('events:EnableRule'));
    expect(enabling).toEqual([
      { Sid: 'EnableLambdaAliasSchedule', Effect: 'Allow', Action: 'events:EnableRule', Resource: arns[0] },
      { Sid: 'EnableProbeSchedule', Effect: 'Allow', Action: 'events:EnableRule', Resource: arns[1] },
    ]);
    expect(statementsOf(template, ids.triggerRole).filter((st) => [st.Action].flat().includes('events:DisableRule'))).toHaveLength(0);
  });

  it('should probe both sides on one schedule, with one sequence and no input that singles out a side', () => {
    // Every rule that invokes the probe function: only the one-minute schedule, with no input, so
    // each run is a periodic run of every target (an input like {"probeNow":{"side":"new"}} would
    // probe one side only, which the controller alone asks for, and pairs with the other side).
    const rules = Object.values(template.findResources('AWS::Events::Rule')).filter((r: any) =>
      (r.Properties.Targets ?? []).some((t: any) => JSON.stringify(t.Arn) === JSON.stringify(fnArn(ids.probe))),
    );
    expect(rules).toHaveLength(1);
    const rule: any = rules[0];
    expect(rule.Properties.ScheduleExpression).toBe('rate(1 minute)');
    expect(rule.Properties.Targets).toHaveLength(1);
    for (const key of ['Input', 'InputPath', 'InputTransformer']) expect(rule.Properties.Targets[0]).not.toHaveProperty(key);
    // One target per side, and the sequence settings (path, runs, body size, timeout) are shared:
    // there are no per-side ones.
    const settings = settingsOf(template);
    expect(JSON.parse(settings.CUTOVER_PROBE_TARGETS).map((t: { side: string }) => t.side).sort()).toEqual(['new', 'old']);
    for (const name of Object.keys(settings)) expect(name).not.toMatch(/_(NEW|OLD)(_|$)/);
  });

  it("should set Lambda's own retries of asynchronous invocations: none for the probe, bounded for the controller", () => {
    // EventBridge's retryAttempts cover delivery only; a function error is retried by Lambda (by
    // default twice, for up to 6 hours) unless the function's async invoke configuration says otherwise.
    template.resourceCountIs('AWS::Lambda::EventInvokeConfig', 2);
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: ids.probe },
      Qualifier: '$LATEST',
      MaximumRetryAttempts: 0,
      MaximumEventAgeInSeconds: 60,
    });
    // A failed alarm recording relies on this retry; a tick is idempotent.
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: ids.controller },
      Qualifier: '$LATEST',
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 3600,
    });
  });

  it('should run the controller at once on every state change of a watched alarm, on the default bus', () => {
    const rules = template.findResources('AWS::Events::Rule', { Properties: { EventPattern: { source: ['aws.cloudwatch'] } } });
    expect(Object.keys(rules)).toHaveLength(1);
    const rule = Object.values(rules)[0]!.Properties;
    expect(rule.EventBusName).toBeUndefined();
    expect(rule.EventPattern).toEqual({
      source: ['aws.cloudwatch'],
      'detail-type': ['CloudWatch Alarm State Change'],
      resources: ids.alarms.map((id) => fnArn(id)),
    });
    // Recorded states are ordered by CloudWatch's timestamps, so late deliveries are still useful.
    expect(rule.Targets).toEqual([
      expect.objectContaining({ Arn: fnArn(ids.controller), RetryPolicy: { MaximumRetryAttempts: 8, MaximumEventAgeInSeconds: 3600 } }),
    ]);
  });

  it('should run the controller at once when a probe reports a desync, on the migration bus', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventBusName: { Ref: ids.bus },
      // Every desync of the stack (the controller skips another family's migrations).
      EventPattern: {
        source: ['cutover.probe'],
        'detail-type': ['Cutover Probe Result'],
        detail: { verdict: ['desync'] },
      },
      Targets: [Match.objectLike({ Arn: fnArn(ids.controller) })],
    });
    // EventBridge may invoke the controller for each rule.
    const permissions = template.findResources('AWS::Lambda::Permission', {
      Properties: { FunctionName: fnArn(ids.controller), Principal: 'events.amazonaws.com' },
    });
    expect(Object.keys(permissions)).toHaveLength(3);
  });

  it('should scope the controller to the alias, the function versions, the alarms, the table, the topic and the bus', () => {
    const statements = statementsOf(template, ids.controllerRole);
    expect(statementFor(statements, 'lambda:UpdateAlias').Resource).toEqual([fnArn(ids.service), qualified(ids.service, 'live')]);
    expect(statementFor(statements, 'lambda:GetAlias').Resource).toEqual([fnArn(ids.service), qualified(ids.service, 'live')]);
    for (const action of ['lambda:PutProvisionedConcurrencyConfig', 'lambda:GetProvisionedConcurrencyConfig', 'lambda:DeleteProvisionedConcurrencyConfig']) {
      expect(statementFor(statements, action).Resource).toEqual(qualified(ids.service, '*'));
    }
    // `*`: CloudWatch answers with composite alarms only then (see the composite alarm test).
    expect(statementFor(statements, 'cloudwatch:DescribeAlarms').Resource).toBe('*');
    expect(statementFor(statements, 'cloudwatch:GetMetricData').Resource).toBe('*');
    expect(statementFor(statements, 'events:PutEvents').Resource).toEqual(fnArn(ids.bus));
    expect(statementFor(statements, 'sns:Publish').Resource).toEqual({ Ref: ids.topic });
    expect([statementFor(statements, 'dynamodb:PutItem').Resource].flat()).toEqual([fnArn(ids.table)]);
    expect(statementFor(statements, 'kms:Decrypt').Resource).toEqual(fnArn(ids.key));
    expect(statementFor(statements, 'logs:PutLogEvents').Resource).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^CutoverControllerLambdaAliasControllerLogs/), 'Arn'] });
  });

  it('should scope the deploy trigger to creating the alias, the table and invoking the controller', () => {
    const statements = statementsOf(template, ids.triggerRole);
    expect(statementFor(statements, 'lambda:CreateAlias').Resource).toEqual([fnArn(ids.service), qualified(ids.service, 'live')]);
    expect(statementFor(statements, 'lambda:InvokeFunction').Resource).toEqual(fnArn(ids.controller));
    expect([statementFor(statements, 'dynamodb:PutItem').Resource].flat()).toEqual([fnArn(ids.table)]);
    const actions = statements.flatMap((s) => [s.Action].flat());
    expect(actions).not.toContain('lambda:UpdateAlias');
  });

  it('should scope the probe to the table and the bus', () => {
    const statements = statementsOf(template, ids.probeRole);
    expect([statementFor(statements, 'dynamodb:PutItem').Resource].flat()).toEqual([fnArn(ids.table)]);
    expect(statementFor(statements, 'events:PutEvents').Resource).toEqual(fnArn(ids.bus));
    const actions = statements.flatMap((s) => [s.Action].flat());
    expect(actions.filter((a) => a.startsWith('lambda:'))).toEqual([]);
  });

  it('should use `*` only for cloudwatch:GetMetricData and cloudwatch:DescribeAlarms and attach no managed policy to its roles', () => {
    const roles = template.findResources('AWS::IAM::Role', {
      Properties: { AssumeRolePolicyDocument: { Statement: [Match.objectLike({ Principal: { Service: 'lambda.amazonaws.com' } })] } },
    });
    for (const [id, role] of Object.entries(roles)) {
      if (id === logicalId(f.stack, f.fn.role!)) continue; // the user's own function
      expect(role.Properties.ManagedPolicyArns, `role ${id}`).toBeUndefined();
      for (const statement of statementsOf(template, id)) {
        if ([statement.Resource].flat().includes('*')) expect(['cloudwatch:GetMetricData', 'cloudwatch:DescribeAlarms'], `role ${id}`).toContain(statement.Action);
      }
    }
  });

  it('should grant operators invoke on the controller and readers the table only', () => {
    // A stack of its own: the shared one is already synthesised and may not change.
    const { stack, migration } = minimalMigration();
    const controllerId = logicalId(stack, migration.controllerFunction);
    const operator = new iam.Role(stack, 'Operator', { assumedBy: new iam.AccountRootPrincipal() });
    const reader = new iam.Role(stack, 'Reader', { assumedBy: new iam.AccountRootPrincipal() });
    migration.grantOperate(operator);
    migration.grantReadState(reader);
    const t = Template.fromStack(stack);
    const operatorStatements = statementsOf(t, logicalId(stack, operator));
    expect(operatorStatements).toEqual([
      expect.objectContaining({ Action: 'lambda:InvokeFunction', Resource: fnArn(controllerId) }),
    ]);
    const readerStatements = statementsOf(t, logicalId(stack, reader));
    const readerActions = readerStatements.flatMap((s) => [s.Action].flat());
    expect(readerActions).toContain('dynamodb:Query');
    expect(readerActions).not.toContain('dynamodb:PutItem');
  });

  it('should build metrics with the contract names, dimensions and documented defaults', () => {
    const stack = f.stack;
    const weight = f.migration.metricWeight();
    expect(weight.namespace).toBe('Cutover');
    expect(weight.metricName).toBe('Weight');
    expect(weight.statistic).toBe('Maximum');
    expect(weight.period.toMinutes()).toBe(1);
    expect(stack.resolve(weight.dimensions)).toEqual({ Migration: { 'Fn::Join': ['', [{ Ref: ids.service }, ':live']] } });

    const desync = f.migration.metricProbeDesync(ProbeSide.NEW);
    expect(desync.metricName).toBe('ProbeDesync');
    expect(desync.statistic).toBe('Sum');
    expect(desync.period.toMinutes()).toBe(5);
    expect(stack.resolve(desync.dimensions).Side).toBe('new');

    expect(f.migration.metricRollbacks().metricName).toBe('Rollbacks');
    expect(f.migration.metricOldCapacity().statistic).toBe('Minimum');

    const errors = f.migration.metricApp('Errors5xx', '7');
    expect(errors.namespace).toBe('Cutover/App');
    expect(stack.resolve(errors.dimensions)).toEqual({ FunctionName: { Ref: ids.service }, Version: '7' });

    const duration = f.migration.metricExecutedVersion('Duration', '7');
    expect(duration.namespace).toBe('AWS/Lambda');
    expect(duration.statistic).toBe('p99');
    expect(stack.resolve(duration.dimensions)).toEqual({
      FunctionName: { Ref: ids.service },
      Resource: { 'Fn::Join': ['', [{ Ref: ids.service }, ':live']] },
      ExecutedVersion: '7',
    });
  });

  it('fails when asked for an unknown application metric', () => {
    expect(() => f.migration.metricApp('Errors', '1')).toThrow(/unknown application metric "Errors"; known: Requests, Errors4xx, Errors5xx, LatencyMs/);
  });
});

describe('CanaryMigration with defaults', () => {
  let template: Template;
  let m: ReturnType<typeof minimalMigration>;

  beforeAll(() => {
    m = minimalMigration();
    template = Template.fromStack(m.stack);
  });

  it('should use AWS managed keys for the table and the topic', () => {
    template.hasResourceProperties('AWS::DynamoDB::Table', { SSESpecification: { SSEEnabled: true } });
    template.resourceCountIs('AWS::KMS::Key', 0);
    template.hasResourceProperties('AWS::SNS::Topic', {
      KmsMasterKeyId: 'arn:aws:kms:eu-west-1:123456789012:alias/aws/sns',
    });
  });

  it('should not create a probe, an alarm rule or capacity permissions', () => {
    expect(m.migration.probeFunction).toBeUndefined();
    template.resourceCountIs('AWS::Lambda::Function', 4); // service, controller, trigger, provider framework
    expect(Object.keys(template.findResources('AWS::Events::Rule'))).toHaveLength(2);
    const controllerRole = logicalId(m.stack, m.migration.controllerFunction.role!);
    const actions = statementsOf(template, controllerRole).flatMap((s) => [s.Action].flat());
    expect(actions.filter((a) => /ProvisionedConcurrency|DescribeAlarms/.test(a))).toEqual([]);
    const env = functionByEntryEnv(template, 'cutover-controller').props.Environment.Variables;
    const settings = settingsOf(template);
    expect(settings.CUTOVER_ALARM_NAMES).toBe('[]');
    expect(settings.CUTOVER_PINNED_CAPACITY).toBe('0');
    expect(settings.CUTOVER_PROBE_TARGETS).toBeUndefined();
    expect(env.CUTOVER_PROBE_SCHEDULE).toBeUndefined();
    expect(env.CUTOVER_EVENT_BUS_NAME).toBe('default');
  });

  it('should publish notifications without any KMS permission when the topic uses the AWS managed key', () => {
    const controllerRole = logicalId(m.stack, m.migration.controllerFunction.role!);
    const statements = statementsOf(template, controllerRole);
    expect(statementFor(statements, 'sns:Publish').Resource).toEqual({ Ref: logicalId(m.stack, m.migration.topic) });
    expect(statements.flatMap((s) => [s.Action].flat()).filter((a) => a.startsWith('kms:'))).toEqual([]);
  });

  it('should publish events to the default bus', () => {
    const controllerRole = logicalId(m.stack, m.migration.controllerFunction.role!);
    const putEvents = statementFor(statementsOf(template, controllerRole), 'events:PutEvents');
    expect(putEvents.Resource).toBe('arn:aws:events:eu-west-1:123456789012:event-bus/default');
  });

  it('should create one dashboard', () => {
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  });
});

describe('CanaryMigration options', () => {
  it('should accept alarms added after construction, up to 10', () => {
    const { stack, migration } = minimalMigration();
    for (let i = 0; i < 10; i++) migration.addAlarm(alarm(stack, `Alarm${i}`));
    expect(migration.alarms).toHaveLength(10);
    const rule = Object.values(Template.fromStack(stack).findResources('AWS::Events::Rule', {
      Properties: { EventPattern: { source: ['aws.cloudwatch'] } },
    }))[0]!;
    expect(rule.Properties.EventPattern.resources).toHaveLength(10);
  });

  it('should watch a composite alarm end to end: its state changes wake the controller, which may read it', () => {
    const { stack, migration } = minimalMigration();
    const composite = new cloudwatch.CompositeAlarm(stack, 'Slo', {
      alarmRule: cloudwatch.AlarmRule.anyOf(alarm(stack, 'Errors'), alarm(stack, 'Latency')),
    });
    migration.addAlarm(composite);
    const template = Template.fromStack(stack);
    const compositeId = logicalId(stack, composite);
    const controllerRole = logicalId(stack, migration.controllerFunction.role!);
    // CloudWatch emits "CloudWatch Alarm State Change" for composite alarms too, with the alarm's ARN in `resources`.
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { source: ['aws.cloudwatch'], 'detail-type': ['CloudWatch Alarm State Change'], resources: [{ 'Fn::GetAtt': [compositeId, 'Arn'] }] },
      Targets: [Match.objectLike({ Arn: fnArn(logicalId(stack, migration.controllerFunction)) })],
    });
    // The controller watches it by name ...
    const env = settingsOf(template);
    expect(stack.resolve(env.CUTOVER_ALARM_NAMES)).toEqual({ 'Fn::Join': ['', ['["', { Ref: compositeId }, '"]']] });
    // ... and may read it: DescribeAlarms returns composite alarms only when allowed on `*`.
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: { Statement: [{ Sid: 'ReadWatchedAlarms', Effect: 'Allow', Action: 'cloudwatch:DescribeAlarms', Resource: '*' }] },
      Roles: [{ Ref: controllerRole }],
    });
    // Granted before the deploy trigger starts the first tick, which confirms the alarms.
    const readPolicy = Object.keys(template.findResources('AWS::IAM::Policy', { Properties: { PolicyDocument: { Statement: [Match.objectLike({ Sid: 'ReadWatchedAlarms' })] } } }));
    expect(readPolicy).toHaveLength(1);
    const trigger = Object.values(template.findResources('Custom::CutoverDeployTrigger'))[0]!;
    expect(trigger.DependsOn).toEqual(expect.arrayContaining([readPolicy[0]]));
  });

  it('should apply the teardown override, the health check and the app namespace', () => {
    const { stack, fn } = appStack();
    const capture = new Capture();
    new CanaryMigration(stack, 'Migration', {
      function: fn,
      aliasName: 'prod',
      version: fn.currentVersion,
      plan: TrafficShiftPlan.LINEAR_10PERCENT_EVERY_3MINUTES,
      teardown: TeardownPolicy.AFTER_SOAK,
      healthCheck: HealthCheck.custom({ minRequests: 7 }),
      appMetricsNamespace: 'Shop/Api',
      logRetention: logs.RetentionDays.ONE_WEEK,
      dashboard: false,
    });
    const template = Template.fromStack(stack);
    template.hasResourceProperties('Custom::CutoverDeployTrigger', { Settings: Match.objectLike({ CUTOVER_PLAN: capture }) });
    expect(JSON.parse(capture.asString())).toEqual({ ...TrafficShiftPlan.LINEAR_10PERCENT_EVERY_3MINUTES.spec, teardown: 'after-soak' });
    template.hasResourceProperties('Custom::CutoverDeployTrigger', {
      Settings: Match.objectLike({ CUTOVER_JUDGE: '{"minRequests":7}', CUTOVER_APP_METRICS_NAMESPACE: 'Shop/Api' }),
    });
    // The first migration creates the stack's controller with its log retention.
    for (const group of Object.values(migrationLogGroups(template))) expect(group.Properties.RetentionInDays).toBe(7);
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 0);
  });
});

describe('CanaryMigration validation', () => {
  const base = () => {
    const { stack, fn } = appStack();
    return { stack, fn, props: { function: fn, aliasName: 'live', version: fn.currentVersion } };
  };

  it('fails when the alias name is not a valid Lambda alias name', () => {
    const { stack, props } = base();
    expect(() => new CanaryMigration(stack, 'M', { ...props, aliasName: 'live alias' })).toThrow(/aliasName must be .* got "live alias"/);
    expect(() => new CanaryMigration(stack, 'M2', { ...props, aliasName: '42' })).toThrow(/not only digits, got "42"/);
  });

  it('fails when the version is $LATEST', () => {
    const { stack, fn, props } = base();
    const latest = lambda.Version.fromVersionArn(stack, 'Latest', `${'arn:aws:lambda:eu-west-1:123456789012:function:other'}:$LATEST`);
    expect(() => new CanaryMigration(stack, 'M', { ...props, function: latest.lambda, version: latest })).toThrow(/cannot use \$LATEST\), got "\$LATEST"/);
    expect(fn).toBeDefined();
  });

  it('fails when the version belongs to another function', () => {
    const { stack, props } = base();
    const a = lambda.Function.fromFunctionArn(stack, 'A', 'arn:aws:lambda:eu-west-1:123456789012:function:a');
    const b = lambda.Version.fromVersionArn(stack, 'B', 'arn:aws:lambda:eu-west-1:123456789012:function:b:3');
    expect(() => new CanaryMigration(stack, 'M', { ...props, function: a, version: b })).toThrow(
      /version belongs to arn:aws:lambda:eu-west-1:123456789012:function:b, not to the migrated function arn:aws:lambda:eu-west-1:123456789012:function:a; pass a version of the migrated function \(usually function\.currentVersion\)/,
    );
    // Two functions of the app: their ARNs are tokens, yet certainly two functions.
    const other = new lambda.Function(stack, 'Other', { runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler = async () => 1') });
    expect(() => new CanaryMigration(stack, 'M2', { ...props, version: other.currentVersion })).toThrow(
      /^Test\/M2: version belongs to Test\/Other, not to the migrated function Test\/Service; pass a version/,
    );
  });

  it('fails when more than 10 alarms are given or added', () => {
    const { stack, props } = base();
    const eleven = Array.from({ length: 11 }, (_, i) => alarm(stack, `A${i}`));
    expect(() => new CanaryMigration(stack, 'M', { ...props, alarms: eleven })).toThrow(/at most 10 alarms .* got 11/);
    const m = new CanaryMigration(stack, 'M2', { ...props, alarms: eleven.slice(0, 10) });
    expect(() => m.addAlarm(eleven[10]!)).toThrow(CutoverValidationError);
    expect(() => m.addAlarm(eleven[10]!)).toThrow(/adding Test\/A10 would make 11/);
  });

  it('fails when the same alarm is added twice', () => {
    const { stack, props } = base();
    const a = alarm(stack, 'Twice');
    const m = new CanaryMigration(stack, 'M', { ...props, alarms: [a] });
    expect(() => m.addAlarm(a)).toThrow(/alarm Test\/Twice was added twice/);
  });

  it('fails when oldCapacity is negative or fractional', () => {
    const { stack, props } = base();
    expect(() => new CanaryMigration(stack, 'M', { ...props, oldCapacity: -1 })).toThrow(/oldCapacity must be a whole number .* got -1/);
    expect(() => new CanaryMigration(stack, 'M2', { ...props, oldCapacity: 2.5 })).toThrow(/got 2\.5/);
  });

  it('fails when a probe target is not an http(s) URL or both reach the same place', () => {
    const { stack, props } = base();
    expect(() => new CanaryMigration(stack, 'M', { ...props, probeTargets: { newUrl: 'ftp://x' } })).toThrow(/probeTargets\.newUrl must be an http\(s\) URL, got "ftp:\/\/x"/);
    expect(() =>
      new CanaryMigration(stack, 'M2', { ...props, probeTargets: { newUrl: 'https://a.example/', oldUrl: 'https://a.example/' } }),
    ).toThrow(/must reach different versions, both are "https:\/\/a\.example\/"/);
  });

  it('fails when probe options are out of range or given without targets', () => {
    const { stack, props } = base();
    const probeTargets = { newUrl: 'https://new.example/' };
    expect(() => new CanaryMigration(stack, 'M1', { ...props, probeTargets, probeRuns: 0 })).toThrow(/probeRuns must be a whole number from 1 to 10, got 0/);
    expect(() => new CanaryMigration(stack, 'M2', { ...props, probeTargets, probePath: 'health' })).toThrow(/probePath must start with '\/' .* got "health"/);
    expect(() => new CanaryMigration(stack, 'M3', { ...props, probeTargets, probeTimeout: Duration.minutes(20) })).toThrow(
      /probeTimeout must be between 10 seconds and 15 minutes, got 20 minutes/,
    );
    expect(() => new CanaryMigration(stack, 'M4', { ...props, probeRuns: 2 })).toThrow(/probeRuns has no effect without a probe \(probeTargets, or the target.s probe\), got "2"/);
  });

  it('fails when the app metrics namespace is reserved or malformed', () => {
    const { stack, props } = base();
    expect(() => new CanaryMigration(stack, 'M', { ...props, appMetricsNamespace: 'AWS/Lambda' })).toThrow(/must not start with 'AWS\/', got "AWS\/Lambda"/);
    expect(() => new CanaryMigration(stack, 'M2', { ...props, appMetricsNamespace: 'has space' })).toThrow(/got "has space"/);
  });

  it('fails when the dashboard name is malformed or set without a dashboard', () => {
    const { stack, props } = base();
    expect(() => new CanaryMigration(stack, 'M', { ...props, dashboardName: 'my dashboard' })).toThrow(/dashboardName must be .* got "my dashboard"/);
    expect(() => new CanaryMigration(stack, 'M2', { ...props, dashboard: false, dashboardName: 'x' })).toThrow(/has no effect with dashboard: false/);
  });

  it('fails when the plan or the health check is not one of the construct classes', () => {
    const { stack, props } = base();
    const corePlan = { steps: [{ weight: 100, bakeMs: 60_000 }], soakMs: 0, healthWindowMs: 60_000, teardown: 'manual' };
    expect(() => new CanaryMigration(stack, 'M', { ...props, plan: corePlan as never })).toThrow(/plan must be a TrafficShiftPlan .* got \{"steps"/);
    expect(() => new CanaryMigration(stack, 'M2', { ...props, healthCheck: { minRequests: 5 } as never })).toThrow(
      /healthCheck must be a HealthCheck .* got \{"minRequests":5\}/,
    );
  });

  it('fails when the plan does not fit in a Lambda environment variable', () => {
    const { stack, props } = base();
    const steps = Array.from({ length: 100 }, (_, i) => ({ weight: i + 1, bake: Duration.minutes(10) }));
    expect(() => new CanaryMigration(stack, 'M', { ...props, plan: TrafficShiftPlan.steps(steps) })).toThrow(
      /plan is too large .* characters of JSON for 100 steps, at most 2500; use fewer steps/,
    );
  });

  it('fails with the construct path in the message', () => {
    const { stack, props } = base();
    expect(() => new CanaryMigration(stack, 'Named', { ...props, aliasName: '' })).toThrow(/^Test\/Named: aliasName/);
    expect(Stack.of(stack)).toBe(stack);
  });
});

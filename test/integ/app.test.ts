/**
 * The integration app (integ/app.ts): the demo stack under the run's stack name, with the recorder
 * subscribed to the migration's topic and bus, its table's name as an output, and nothing that
 * outlives a destroy.
 */
import { Match, Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildIntegApp } from '../../integ/app';
import { RECORDER_TABLE_OUTPUT } from '../../integ/recorder-names';
import { EVENT_SOURCE } from '../../lambda/aws/event-names';
import { logicalId, removeTestOutputs, testApp } from '../infra/fixtures';

afterAll(removeTestOutputs);

describe('integration app', () => {
  let template: Template;
  let topicId: string;

  beforeAll(() => {
    const app = testApp({ 'cutover:stackName': 'CutoverInteg-0612-ab12', 'cutover:release': '2', 'cutover:faultRate': '0.5' });
    const stack = buildIntegApp(app);
    expect(stack.stackName).toBe('CutoverInteg-0612-ab12');
    template = Template.fromStack(stack);
    topicId = logicalId(stack, stack.migration.topic);
  });

  it('deploys the bad release as asked: release 2 answering half its API requests with 503', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: 'Cutover demo API, release 2',
      Environment: { Variables: Match.objectLike({ DEMO_FAULT_5XX_RATE: '0.5', CUTOVER_DEMO_RELEASE: '2' }) },
    });
  });

  it('subscribes the recorder to the topic and to every controller event on the bus', () => {
    template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'lambda', TopicArn: { Ref: topicId } });
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { source: [EVENT_SOURCE] },
      Targets: [Match.objectLike({ RetryPolicy: { MaximumRetryAttempts: 4, MaximumEventAgeInSeconds: 1800 } })],
    });
    const outputs = template.findOutputs(RECORDER_TABLE_OUTPUT);
    expect(Object.keys(outputs)).toHaveLength(1);
  });

  it('leaves no table or log group behind on destroy (the recorder\'s included)', () => {
    for (const type of ['AWS::DynamoDB::Table', 'AWS::Logs::LogGroup']) {
      const kept = Object.entries(template.findResources(type)).filter(([, r]) => r.DeletionPolicy !== 'Delete');
      expect(kept.map(([id]) => id), type).toEqual([]);
    }
    expect(Object.keys(template.findResources('AWS::DynamoDB::Table'))).toHaveLength(2);
    const recorderRole = Object.keys(template.findResources('AWS::IAM::Role', { Properties: { Description: Match.stringLikeRegexp('records the migration notifications') } }));
    expect(recorderRole).toHaveLength(1);
    // The recorder may only put items in its own table.
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: recorderRole[0] }],
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: 'dynamodb:PutItem' })]) },
    });
  });

  it('refuses to build without a stack name', () => {
    expect(() => buildIntegApp(testApp())).toThrow('the integration app needs -c cutover:stackName=<name>');
  });
});

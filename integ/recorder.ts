/**
 * A test-only construct the integration app adds to the demo stack: it receives what the migration
 * tells the outside world (every SNS notification on the migration's topic, every `source: cutover`
 * event on its bus) and writes each one to a DynamoDB table of its own, which the test then reads
 * with the SDK clients the repository already depends on (integ/notes.ts). A subscriber of its own
 * is the only way to see a notification was really delivered; the migration table holds only what
 * the controller meant to send.
 *
 * It lives and dies with the test's stack: the table and log group are destroyed with it, and
 * items expire after a day in case a run is killed before its destroy.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { EVENT_SOURCE } from '../lambda/aws/event-names';
import { NOTE_PK } from './recorder-names';

export interface NotificationRecorderProps {
  /** The migration's notification topic. */
  readonly topic: sns.ITopic;
  /** The bus the controller puts its events on. */
  readonly eventBus: events.IEventBus;
}

/**
 * The recorder function. Inline, in the runtime's own SDK, so it needs no bundling: it writes one
 * item per SNS record or EventBridge event (sort key `<received at>#<via>#<id>`, so a retried
 * delivery overwrites itself).
 */
const RECORDER_CODE = `
const { DynamoDBClient, PutItemCommand } = require('@aws-sdk/client-dynamodb');
const client = new DynamoDBClient({});
const TABLE = process.env.RECORDER_TABLE;
const DAY_S = 86400;
async function put(via, id, atMs, fields) {
  const item = { pk: { S: '${NOTE_PK}' }, sk: { S: String(atMs).padStart(15, '0') + '#' + via + '#' + id }, via: { S: via },
    atMs: { N: String(atMs) }, expiresAt: { N: String(Math.floor(Date.now() / 1000) + DAY_S) } };
  for (const [k, v] of Object.entries(fields)) if (typeof v === 'string') item[k] = { S: v };
  await client.send(new PutItemCommand({ TableName: TABLE, Item: item }));
}
exports.handler = async (event) => {
  if (Array.isArray(event.Records)) {
    for (const r of event.Records) {
      const m = r.Sns || {};
      await put('sns', m.MessageId || 'unknown', Date.parse(m.Timestamp) || Date.now(), { subject: m.Subject || '', message: m.Message || '' });
    }
    return;
  }
  if (event['detail-type']) {
    await put('events', event.id || 'unknown', Date.parse(event.time) || Date.now(), { detailType: event['detail-type'], detail: JSON.stringify(event.detail || {}) });
  }
};
`;

export class NotificationRecorder extends Construct {
  /** Where the notifications land. */
  public readonly table: dynamodb.Table;
  public readonly function: lambda.Function;

  constructor(scope: Construct, id: string, props: NotificationRecorderProps) {
    super(scope, id);
    this.table = new dynamodb.Table(this, 'Notes', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: 'expiresAt',
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const logGroup = new logs.LogGroup(this, 'Logs', { retention: logs.RetentionDays.ONE_DAY, removalPolicy: RemovalPolicy.DESTROY });
    const role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'Cutover integration test: records the migration notifications it receives',
    });
    logGroup.grantWrite(role);
    this.table.grant(role, 'dynamodb:PutItem');
    this.function = new lambda.Function(this, 'Function', {
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      handler: 'index.handler',
      code: lambda.Code.fromInline(RECORDER_CODE),
      memorySize: 256,
      timeout: Duration.seconds(10),
      role,
      logGroup,
      environment: { RECORDER_TABLE: this.table.tableName },
      description: 'Cutover integration test: writes each notification and event of the migration to a table',
    });
    props.topic.addSubscription(new subscriptions.LambdaSubscription(this.function));
    new events.Rule(this, 'Events', {
      description: 'Cutover integration test: every controller event to the recorder',
      eventBus: props.eventBus,
      eventPattern: { source: [EVENT_SOURCE] },
      targets: [new targets.LambdaFunction(this.function, { retryAttempts: 4, maxEventAge: Duration.minutes(30) })],
    });
  }
}

/**
 * What runs a `CanaryMigration`'s functions, and when: the EventBridge schedules of the probe and
 * the controller, the rule that wakes the controller when a probe finds a desync, and the watch on
 * the migration's alarms (the rule on their state changes and the controller's permission to
 * confirm them). Separate from the functions and their permissions (canary-migration-functions.ts)
 * because it is the migration's timing, reviewed on its own: every rule's retry policy is
 * explained where it is set.
 */
import { Duration, Names, Stack, Validations, type CustomResource } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type { Construct } from 'constructs';

/**
 * The names of the schedules, fixed at synth (unique per stack and construct path) so that the
 * functions they invoke can be told them without a reference to the rules, which would be a
 * cycle (a rule references its target function).
 */
export interface ScheduleNames {
  readonly controller: string;
  /** Only with probe targets. */
  readonly probe?: string;
}

export function scheduleNames(scope: Construct, withProbe: boolean): ScheduleNames {
  const base = Names.uniqueResourceName(scope, { maxLength: 48, separator: '-' });
  return { controller: `${base}-ControllerTick`, ...(withProbe ? { probe: `${base}-ProbeTick` } : {}) };
}

/** The ARN of a rule on the default bus, from its name (no reference to the rule resource). */
export function scheduleRuleArn(scope: Construct, ruleName: string): string {
  return Stack.of(scope).formatArn({ service: 'events', resource: 'rule', resourceName: ruleName });
}

/**
 * Runs the Keep-Alive probe every minute while a migration is live. Created disabled: the deploy
 * trigger enables it when it records a migration, the controller disables it when none is live
 * (lambda/aws/schedules.ts), so that nothing runs while nothing migrates.
 */
export function scheduleProbe(scope: Construct, probe: lambda.IFunction, ruleName: string): events.Rule {
  return new events.Rule(scope, 'ProbeSchedule', {
    ruleName,
    enabled: false,
    description: `Runs the Cutover Keep-Alive probe every minute while a migration is live (${scope.node.path})`,
    schedule: events.Schedule.rate(Duration.minutes(1)),
    // EventBridge's delivery to Lambda is not retried: a missed minute is covered by the next
    // one, and retrying would only pile up probes (Lambda's own retries are off, see `createProbe`).
    targets: [new targets.LambdaFunction(probe, { retryAttempts: 0 })],
  });
}

/**
 * Reconcile every minute while a migration is live (created disabled, switched like the probe's
 * schedule), and at once when a probe finds a desync.
 */
export function scheduleController(scope: Construct, controller: lambda.IFunction, eventBus: events.IEventBus, ruleName: string): events.Rule {
  const schedule = new events.Rule(scope, 'ControllerSchedule', {
    ruleName,
    enabled: false,
    description: `Runs the Cutover controller every minute while a migration is live (${scope.node.path})`,
    schedule: events.Schedule.rate(Duration.minutes(1)),
    // Delivery is not retried: a missed minute is covered by the next one. (A tick that fails in
    // the function is retried by Lambda, see the controller's async invoke configuration.)
    targets: [new targets.LambdaFunction(controller, { retryAttempts: 0 })],
  });
  new events.Rule(scope, 'ProbeDesyncRule', {
    description: `Runs the Cutover controller at once when a probe finds a desync (${scope.node.path})`,
    eventBus,
    eventPattern: {
      source: ['cutover.probe'],
      detailType: ['Cutover Probe Result'],
      detail: { verdict: ['desync'] },
    },
    // Delivery retries only (Lambda throttling or unavailable); a desync older than 5 minutes is
    // read from the table by the ticks in between anyway.
    targets: [new targets.LambdaFunction(controller, { retryAttempts: 2, maxEventAge: Duration.minutes(5) })],
  });
  return schedule;
}

/**
 * The wiring of the watched alarms, created with the first one: the controller's permission to
 * read them and the rule that invokes it on their state changes, which every further alarm joins.
 */
export class AlarmWatch {
  private alarmRule?: events.Rule;
  private alarmReadPolicy?: iam.Policy;

  constructor(
    private readonly scope: Construct,
    private readonly controller: { readonly controllerFunction: lambda.IFunction; readonly controllerRole: iam.IRole; readonly deployTrigger: CustomResource },
  ) {}

  /** Wires one more alarm (the construct checks it is new and within the limit). */
  public watch(alarm: cloudwatch.IAlarm): void {
    if (!this.alarmReadPolicy) {
      // DescribeAlarms on `*`, granted once an alarm is watched. CloudWatch returns composite
      // alarms only to a caller allowed DescribeAlarms on `*` (resource-level permissions do not
      // apply to them), and the docs recommend a composite alarm to watch more than 10; with a
      // narrower scope the controller would take a watched composite alarm for a missing one. It is
      // read-only, and the controller asks only for the watched names. A policy of its own, so that
      // the acknowledgement below covers this one statement and nothing else of the role.
      this.alarmReadPolicy = new iam.Policy(this.scope, 'ReadWatchedAlarms', {
        roles: [this.controller.controllerRole],
        statements: [new iam.PolicyStatement({ sid: 'ReadWatchedAlarms', actions: ['cloudwatch:DescribeAlarms'], resources: ['*'] })],
      });
      Validations.of(this.alarmReadPolicy).acknowledge({
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'cloudwatch:DescribeAlarms returns composite alarms only when it is allowed on `*` (resource-level permissions do not apply to them). Read-only; the controller asks for the watched alarm names only.',
      });
      // The controller confirms the alarms on its first tick, which the deploy trigger starts.
      this.controller.deployTrigger.node.addDependency(this.alarmReadPolicy);
    }
    if (!this.alarmRule) {
      // Alarm state changes are delivered on the default bus only, whatever `eventBus` says.
      // Every change, not only entering ALARM: the controller records each one and answers its
      // routine ticks from them, confirming with DescribeAlarms before any step forward.
      this.alarmRule = new events.Rule(this.scope, 'AlarmRule', {
        description: `Runs the Cutover controller at once on every state change of a watched alarm (${this.scope.node.path})`,
        eventPattern: {
          source: ['aws.cloudwatch'],
          detailType: ['CloudWatch Alarm State Change'],
        },
        // Delivery retries (EventBridge to Lambda): a late change is still worth delivering, the
        // recorded states are ordered by CloudWatch's own timestamps, so an old event never
        // overwrites a newer state. A change whose recording fails in the controller is retried by
        // Lambda itself (the controller's async invoke configuration), not by these.
        targets: [new targets.LambdaFunction(this.controller.controllerFunction, { retryAttempts: 8, maxEventAge: Duration.hours(1) })],
      });
    }
    this.alarmRule.addEventPattern({ resources: [alarm.alarmArn] });
  }
}

/**
 * What runs Cutover's shared functions, and when: the EventBridge schedules of the probe and of
 * each controller, the rule that wakes a controller when a probe finds a desync in one of its
 * migrations (all created by `CutoverController`), and each migration's watch on its alarms (the
 * rule on their state changes, and its controller's permission to confirm them). Separate from the
 * functions and their permissions (cutover-controller-functions.ts) because it is the migrations'
 * timing, reviewed on its own: every rule's retry policy is explained where it is set.
 */
import { Duration, Names, Stack, Validations, type CustomResource } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type { Construct } from 'constructs';

/** A controller entry: the one built with one target family's adapters. */
export type ControllerFamily = 'lambda-alias' | 'fleet';

/**
 * The names of the shared schedules, fixed at synth (unique per stack: derived from the
 * controller construct's path) so that the functions that switch them are told them without a
 * reference to the rules, which would be a cycle (a rule references its target function). Fixed
 * also so that a probe created by a later migration of the app needs no change to what earlier
 * functions were told. At most 40 + 16 characters (EventBridge allows 64).
 */
export interface ScheduleNames {
  readonly controller: Readonly<Record<ControllerFamily, string>>;
  readonly probe: string;
}

export function scheduleNames(scope: Construct): ScheduleNames {
  const base = Names.uniqueResourceName(scope, { maxLength: 40, separator: '-' });
  return {
    controller: { 'lambda-alias': `${base}-LambdaAliasTick`, fleet: `${base}-FleetTick` },
    probe: `${base}-ProbeTick`,
  };
}

/** The ARN of a rule on the default bus, from its name (no reference to the rule resource). */
export function scheduleRuleArn(scope: Construct, ruleName: string): string {
  return Stack.of(scope).formatArn({ service: 'events', resource: 'rule', resourceName: ruleName });
}

/**
 * Runs the Keep-Alive probe every minute while a migration with probe targets is live. Created
 * disabled: the deploy trigger enables it when it marks such a migration live, a controller
 * disables it when no migration at all is live any more (lambda/aws/schedules.ts), so that
 * nothing runs while nothing migrates.
 */
export function scheduleProbe(scope: Construct, probe: lambda.IFunction, ruleName: string): events.Rule {
  return new events.Rule(scope, 'Schedule', {
    ruleName,
    enabled: false,
    description: `Runs the Cutover Keep-Alive probe every minute while a migration with probe targets is live (${scope.node.path})`,
    schedule: events.Schedule.rate(Duration.minutes(1)),
    // EventBridge's delivery to Lambda is not retried: a missed minute is covered by the next
    // one, and retrying would only pile up probes (Lambda's own retries are off, see `createProbe`).
    targets: [new targets.LambdaFunction(probe, { retryAttempts: 0 })],
  });
}

/**
 * Reconcile every live migration of the family every minute (created disabled, switched like the
 * probe's schedule), and at once when a probe finds a desync in any migration of the stack. The
 * desync rule does not list the family's migration keys: a pattern that grew with every migration
 * would pass EventBridge's pattern size limit (2,048 characters by default) at about 25 migrations
 * with long function names. In a stack with both families a desync also wakes the other family's
 * controller, which finds the migration is not one of its own and does nothing (a rare event).
 */
export function scheduleController(scope: Construct, controller: lambda.IFunction, eventBus: events.IEventBus, ruleName: string): events.Rule {
  const schedule = new events.Rule(scope, 'Schedule', {
    ruleName,
    enabled: false,
    description: `Runs the Cutover controller every minute while one of its migrations is live (${scope.node.path})`,
    schedule: events.Schedule.rate(Duration.minutes(1)),
    // Delivery is not retried: a missed minute is covered by the next one. (A tick that fails in
    // the function is retried by Lambda, see the controller's async invoke configuration.)
    targets: [new targets.LambdaFunction(controller, { retryAttempts: 0 })],
  });
  new events.Rule(scope, 'ProbeDesyncRule', {
    description: `Runs the Cutover controller at once when a probe finds a desync in one of its migrations (${scope.node.path})`,
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
 * `cloudwatch:DescribeAlarms` on `*` for a controller's role: one policy per controller, created
 * when the first of its migrations watches an alarm. CloudWatch returns composite alarms only to a
 * caller allowed DescribeAlarms on `*` (resource-level permissions do not apply to them), and the
 * docs recommend a composite alarm to watch more than 10; with a narrower scope the controller
 * would take a watched composite alarm for a missing one. It is read-only, and the controller asks
 * only for the watched names. A policy of its own, so that the acknowledgement below covers this
 * one statement and nothing else of the role.
 */
export function alarmReadPolicy(scope: Construct, role: iam.IRole): iam.Policy {
  const policy = new iam.Policy(scope, 'ReadWatchedAlarms', {
    roles: [role],
    statements: [new iam.PolicyStatement({ sid: 'ReadWatchedAlarms', actions: ['cloudwatch:DescribeAlarms'], resources: ['*'] })],
  });
  Validations.of(policy).acknowledge({
    id: 'AwsSolutions-IAM5[Resource::*]',
    reason:
      'cloudwatch:DescribeAlarms returns composite alarms only when it is allowed on `*` (resource-level permissions do not apply to them). Read-only; the controller asks for the watched alarm names only.',
  });
  return policy;
}

/**
 * The wiring of one migration's watched alarms, created with the first one: the rule that invokes
 * its controller on their state changes (which every further alarm joins), after the controller's
 * permission to read them. A rule per migration (not one per controller) so that adding or
 * removing a migration never rewrites another migration's pattern.
 */
export class AlarmWatch {
  private alarmRule?: events.Rule;

  constructor(
    private readonly scope: Construct,
    private readonly controller: {
      readonly controllerFunction: lambda.IFunction;
      /** The controller's ReadWatchedAlarms policy (created by the first call). */
      readonly alarmReadPolicy: () => iam.Policy;
      readonly deployTrigger: CustomResource;
    },
  ) {}

  /** Wires one more alarm (the construct checks it is new and within the limit). */
  public watch(alarm: cloudwatch.IAlarm): void {
    if (!this.alarmRule) {
      // The controller confirms the alarms on its first tick, which the deploy trigger starts.
      this.controller.deployTrigger.node.addDependency(this.controller.alarmReadPolicy());
      // Alarm state changes are delivered on the default bus only, whatever `eventBus` says.
      // Every change, not only entering ALARM: the controller records each one and answers its
      // routine ticks from them, confirming with DescribeAlarms before any step forward. It serves
      // the change to every registered migration that watches the alarm.
      this.alarmRule = new events.Rule(this.scope, 'AlarmRule', {
        description: `Runs the Cutover controller at once on every state change of an alarm watched by ${this.scope.node.path}`,
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

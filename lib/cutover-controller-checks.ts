/**
 * The synth-time checks of what a stack's migrations share (`CutoverController`): the props that
 * are the controller's (a key, a bus, a removal policy, a log retention) given to a migration or
 * to `CutoverController.of` must be the controller's own, and the probe's timeout is the largest
 * of its migrations'. Apart from the construct because these are its rules, each with the message
 * a user reads.
 */
import { RemovalPolicy, Stack, Token, type Duration } from 'aws-cdk-lib';
import type * as events from 'aws-cdk-lib/aws-events';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { IConstruct } from 'constructs';
import { CutoverValidationError, show } from './errors';

/** What the checks read of the controller (the construct itself, without an import cycle). */
export interface SharedOwner extends IConstruct {
  readonly encryptionKey?: kms.IKey;
  readonly eventBusProp?: events.IEventBus;
  readonly removalPolicy: RemovalPolicy;
  readonly logRetention: logs.RetentionDays;
}

/** The shared props a migration or `CutoverController.of` may name. */
export interface SharedProps {
  readonly encryptionKey?: kms.IKey;
  readonly eventBus?: events.IEventBus;
  readonly removalPolicy?: RemovalPolicy;
  readonly logRetention?: logs.RetentionDays;
}

const REMOVAL_POLICIES = Object.values(RemovalPolicy) as string[];

/**
 * Checks the shared props of `props` (given to `who` at `scope`) against `owner`'s; with no owner
 * yet, only their types. A prop left out takes the controller's: only one that differs fails.
 */
export function checkSharedProps(owner: SharedOwner | undefined, props: SharedProps, who: string, scope: IConstruct): void {
  const fail = (message: string): never => {
    throw new CutoverValidationError(message, scope);
  };
  if (props.removalPolicy !== undefined && !REMOVAL_POLICIES.includes(props.removalPolicy)) {
    fail(`removalPolicy must be a RemovalPolicy (RETAIN, DESTROY, SNAPSHOT …), got ${show(props.removalPolicy)}`);
  }
  if (props.logRetention !== undefined && !(Object.values(logs.RetentionDays) as unknown[]).includes(props.logRetention)) {
    fail(`logRetention must be a logs.RetentionDays, got ${show(props.logRetention)}`);
  }
  if (!owner) return;
  const fix =
    `every migration of a stack shares one CutoverController (${owner.node.path}), whose ${'%s'} is set once: give the same value to every migration ` +
    `that names it, leave it out of the migrations (they take the controller's), or set it on the controller before the first migration with CutoverController.of(this, { … })`;
  const mismatch = (prop: string, given: string, shared: string) =>
    fail(`${who} ${prop} is ${given}, but the stack's CutoverController ${owner.node.path} has ${prop} ${shared}: ${fix.replace('%s', prop)}`);
  if (props.encryptionKey !== undefined && !sameResource(owner, props.encryptionKey, owner.encryptionKey, (k) => k.keyArn)) {
    mismatch('encryptionKey', describeKey(props.encryptionKey), owner.encryptionKey ? describeKey(owner.encryptionKey) : 'none (AWS managed keys)');
  }
  if (props.eventBus !== undefined && !sameBus(owner, props.eventBus, owner.eventBusProp)) {
    mismatch('eventBus', describeBus(props.eventBus), owner.eventBusProp ? describeBus(owner.eventBusProp) : 'the default bus');
  }
  if (props.removalPolicy !== undefined && props.removalPolicy !== owner.removalPolicy) {
    mismatch('removalPolicy', show(props.removalPolicy), show(owner.removalPolicy));
  }
  if (props.logRetention !== undefined && props.logRetention !== owner.logRetention) {
    mismatch('logRetention', retention(props.logRetention), retention(owner.logRetention));
  }
}

function sameResource<T extends IConstruct>(owner: IConstruct, a: T, b: T | undefined, arn: (t: T) => string): boolean {
  if (b === undefined) return false;
  if (a === b) return true;
  const stack = Stack.of(owner);
  return JSON.stringify(stack.resolve(arn(a))) === JSON.stringify(stack.resolve(arn(b)));
}

function sameBus(owner: IConstruct, a: events.IEventBus, b: events.IEventBus | undefined): boolean {
  const stack = Stack.of(owner);
  const name = (bus: events.IEventBus | undefined) => (bus ? JSON.stringify(stack.resolve(bus.eventBusName)) : '"default"');
  return a === b || name(a) === name(b);
}

function describeKey(key: kms.IKey): string {
  return Token.isUnresolved(key.keyArn) ? key.node.path : key.keyArn;
}

function describeBus(bus: events.IEventBus): string {
  return Token.isUnresolved(bus.eventBusName) ? bus.node.path : show(bus.eventBusName);
}

function retention(days: logs.RetentionDays): string {
  return days === logs.RetentionDays.INFINITE ? 'INFINITE' : `${days} days`;
}

/**
 * The shared probe's timeout in seconds: the largest `probeTimeout` of its migrations (each
 * counted at 1 minute when it names none), since every run of every target of any migration must fit. A timeout that
 * is a token cannot be compared, so it is refused with the fix.
 */
export function probeTimeoutSeconds(scope: IConstruct, timeouts: readonly Duration[]): number {
  let seconds = 0;
  for (const timeout of timeouts) {
    if (timeout.isUnresolved()) {
      throw new CutoverValidationError(
        'probeTimeout must be known at synth: the probe is shared by the stack\'s migrations and its timeout is the largest of theirs; give a Duration such as Duration.minutes(2)',
        scope,
      );
    }
    seconds = Math.max(seconds, timeout.toSeconds());
  }
  return seconds || 60;
}

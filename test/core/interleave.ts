/**
 * Fault injection for the controller's ports: a seeded scheduler that interleaves many
 * controllers at every port-call boundary, a crash switch that kills a controller at a chosen
 * boundary, and the invariants every interleaving and every crash must keep.
 *
 * Why a scheduler instead of real concurrency with random sleeps: an interleaving found by a
 * seed must replay exactly, whatever the machine's load. Every port call of every controller
 * waits for its turn before it acts and again before it returns; the scheduler lets one waiting
 * call go at a time, chosen by the seeded PRNG, once every controller has either finished or is
 * waiting. Ports whose calls do real I/O (the file store, DynamoDB on dynalite) run a released
 * call to completion before the next turn, so a schedule still depends only on the seed.
 */
import { expect } from 'vitest';
import type { MigrationRecord, TickResult } from '../../lambda/core/controller';
import type { MigrationEvent } from '../../lambda/core/model';
import type { StateStore } from '../../lambda/core/ports';
import { seededRandom } from '../../local/random';
import type { FakeTraffic } from './fakes';

// ---------------------------------------------------------------------------------------------
// The scheduler

export class Scheduler {
  private readonly waiting: Array<() => void> = [];
  private busy = 0;
  /** Turns taken so far (a schedule's length). */
  steps = 0;
  constructor(private readonly random: () => number) {}

  /** Waits until the scheduler picks this call. */
  turn(): Promise<void> {
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Wraps a port call: a turn before it acts and one before its result is seen. */
  async call<T>(act: () => Promise<T>): Promise<T> {
    await this.turn();
    this.busy++;
    let outcome: { ok: true; value: T } | { ok: false; error: unknown };
    try {
      outcome = { ok: true, value: await act() };
    } catch (error) {
      outcome = { ok: false, error };
    } finally {
      this.busy--;
    }
    await this.turn();
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }

  /**
   * Runs `tasks` concurrently, releasing one waiting port call at a time in a seeded order, until
   * every task has settled. Bounded: a schedule longer than `maxSteps` fails the test.
   */
  async run<T>(tasks: Array<() => Promise<T>>, options: { readonly maxSteps?: number; readonly onStep?: () => void } = {}): Promise<PromiseSettledResult<T>[]> {
    const maxSteps = options.maxSteps ?? 20_000;
    let settled = 0;
    const all = tasks.map((task) =>
      task().finally(() => {
        settled++;
      }),
    );
    const results = Promise.allSettled(all);
    while (settled < tasks.length) {
      await this.quiesce();
      if (settled >= tasks.length) break;
      if (this.waiting.length === 0) throw new Error('scheduler: tasks are neither waiting nor done (a port call outside the scheduler?)');
      if (++this.steps > maxSteps) throw new Error(`scheduler: more than ${maxSteps} steps`);
      const index = Math.floor(this.random() * this.waiting.length);
      const [release] = this.waiting.splice(index, 1);
      options.onStep?.();
      release!();
    }
    return results;
  }

  /** Lets every released call run until it waits again, finishes, or its I/O completes. */
  private async quiesce(): Promise<void> {
    // Microtasks and I/O callbacks run between macrotask turns; real I/O (an fsync, dynalite over
    // loopback) may take milliseconds, so after a few quick turns it waits in 1 ms steps.
    // Bounded: a call still busy after 60 s of real time fails the test.
    const deadline = Date.now() + 60_000;
    for (let turn = 0; Date.now() < deadline; turn++) {
      if (turn < 20) await new Promise<void>((resolve) => setImmediate(resolve));
      else await new Promise<void>((resolve) => setTimeout(resolve, 1));
      if (this.busy === 0) {
        // One more turn for continuations that were queued by the last completion.
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (this.busy === 0) return;
      }
    }
    throw new Error('scheduler: a port call did not complete within 60 s');
  }
}

/** Wraps every method of `port` so that each call goes through the scheduler. */
export function scheduled<T extends object>(port: T, scheduler: Scheduler): T {
  return wrapMethods(port, (call) => scheduler.call(call));
}

// ---------------------------------------------------------------------------------------------
// Crashes

/** What a dead process sees: nothing it does takes effect any more. */
export class Crash extends Error {
  constructor(readonly boundary: string) {
    super(`crashed at ${boundary}`);
    this.name = 'Crash';
  }
}

/**
 * Counts the port calls of one controller and kills it at call `at`: `before` the call acts, or
 * `after` it acted and before the controller sees its result. Once dead, every later call of
 * that controller fails without acting, like a process that is gone (so a controller that catches
 * a failed read cannot carry on).
 */
export class CrashSwitch {
  calls = 0;
  dead = false;
  /** The boundaries passed so far, as `n:port.method`. */
  readonly trail: string[] = [];
  constructor(
    private readonly at: number | undefined,
    private readonly when: 'before' | 'after' = 'before',
  ) {}

  async call<T>(name: string, act: () => Promise<T>): Promise<T> {
    if (this.dead) throw new Crash(`${name} (already dead)`);
    const n = ++this.calls;
    this.trail.push(`${n}:${name}`);
    if (n === this.at && this.when === 'before') {
      this.dead = true;
      throw new Crash(`before call ${n} (${name})`);
    }
    const value = await act();
    if (n === this.at && this.when === 'after') {
      this.dead = true;
      throw new Crash(`after call ${n} (${name})`);
    }
    return value;
  }

  /** Wraps every method of `port` (named `label`) so that its calls pass this switch. */
  wrap<T extends object>(port: T, label: string): T {
    return wrapMethods(port, (call, method) => this.call(`${label}.${method}`, call));
  }
}

function wrapMethods<T extends object>(port: T, around: <R>(call: () => Promise<R>, method: string) => Promise<R>): T {
  return new Proxy(port, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function' || typeof property !== 'string' || property === 'constructor') return value;
      return (...args: unknown[]) => around(() => Promise.resolve((value as (...a: unknown[]) => unknown).apply(target, args)), property);
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Invariants

/** A short description of the state, for failure messages that say which seed did what. */
export function describeState(record: MigrationRecord, traffic: FakeTraffic): string {
  const shift = record.shift ? ` shift ${record.shift.kind} ${record.shift.fromWeight}→${record.shift.weight}%` : '';
  return `record ${record.status} at ${record.weight}% (step ${record.step})${shift}; routing at ${traffic.weight}% (history ${traffic.history.join(',')})`;
}

/**
 * Right after any interleaving or crash: the routing is where the record says, or the record says
 * exactly which change is in flight (from its weight to the shift's). A rollback in flight may
 * still find the routing at a change it superseded: it writes 0 over whatever it finds.
 */
export function expectRoutingKnown(record: MigrationRecord, traffic: FakeTraffic, context: string): void {
  const known = new Set([record.weight, ...(record.shift ? [record.shift.weight, record.shift.fromWeight] : [])]);
  const ok = known.has(traffic.weight) || record.shift?.kind === 'rollback';
  expect(ok, `${context}: routing at a weight the record does not know: ${describeState(record, traffic)}`).toBe(true);
}

/** After a settling tick: nothing in flight, and the routing exactly where the record says. */
export function expectSettled(record: MigrationRecord, traffic: FakeTraffic, context: string): void {
  expect(record.shift, `${context}: a change still in flight after a settling tick: ${describeState(record, traffic)}`).toBeUndefined();
  expect(traffic.weight, `${context}: routing ≠ record after a settling tick: ${describeState(record, traffic)}`).toBe(record.weight);
}

/**
 * The event log: numbered 1..n without a gap or a repeat, matching the record's `eventSeq`; every
 * event a call reported saved is in it; nothing advanced twice (each plan step is entered at most
 * once, in order), and the routing never set the same raised weight twice.
 */
export async function expectLogWhole(
  store: Pick<StateStore<MigrationRecord, MigrationEvent>, 'events'>,
  record: MigrationRecord,
  traffic: FakeTraffic,
  reported: readonly MigrationEvent[],
  context: string,
): Promise<readonly MigrationEvent[]> {
  const log = await store.events(record.id);
  expect(log.map((e) => e.seq), `${context}: event log numbering`).toEqual(log.map((_, i) => i + 1));
  expect(record.eventSeq, `${context}: record's eventSeq vs the log`).toBe(log.length);
  const bySeq = new Map(log.map((e) => [e.seq, e]));
  for (const event of reported) {
    expect(bySeq.get(event.seq), `${context}: reported event ${event.seq} (${event.type}) not in the log as reported`).toEqual(event);
  }
  const entered = log.filter((e) => e.type === 'advanced' || e.type === 'promoted').map((e) => e.step);
  expect(entered, `${context}: steps entered twice or out of order (${entered.join(',')})`).toEqual([...new Set(entered)].sort((a, b) => a - b));
  const raised = traffic.history.filter((w) => w > 0);
  expect(raised, `${context}: the routing was raised to the same weight twice (${traffic.history.join(',')})`).toEqual([...new Set(raised)]);
  return log;
}

/** Every event the calls reported saving, from their results (rejected calls report none). */
export function reportedEvents(results: readonly PromiseSettledResult<TickResult>[]): MigrationEvent[] {
  return results.flatMap((r) => (r.status === 'fulfilled' ? [...r.value.events] : []));
}

export { seededRandom };

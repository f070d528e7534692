/**
 * An `EventSink` that keeps published events in memory and tells subscribers (the rehearsal's
 * live view, a JSON report, a test) about each batch as it is published.
 */
import type { EventSink } from '../lambda/core/ports';
import { checkInteger } from './net';

/** Receives each published batch, in publishing order. */
export type EventListener<E> = (events: readonly E[]) => void;

/** Options of `MemoryEventSink`. */
export interface MemoryEventSinkOptions {
  /**
   * Most events kept; older ones are dropped first (and counted in `dropped`). Listeners still
   * see every event.
   * @default 10_000
   */
  readonly maxEvents?: number;
}

/** Thrown by `publish` when listeners failed; every listener still ran and every event was kept. */
export class ListenerError extends AggregateError {
  constructor(errors: unknown[]) {
    super(errors, `${errors.length} event listener(s) failed: ${errors.map((e) => (e as Error)?.message ?? String(e)).join('; ')}`);
    this.name = 'ListenerError';
  }
}

/** In-memory `EventSink` with subscribers. */
export class MemoryEventSink<E = unknown> implements EventSink<E> {
  private readonly kept: E[] = [];
  private readonly listeners = new Set<EventListener<E>>();
  private readonly maxEvents: number;
  private droppedCount = 0;

  constructor(options: MemoryEventSinkOptions = {}) {
    this.maxEvents = checkInteger(options.maxEvents ?? 10_000, 1, 10_000_000, 'maxEvents');
  }

  /**
   * Keeps the events, then calls every listener. A listener that throws does not stop the others;
   * after all have run, `publish` rejects with a `ListenerError` carrying the failures.
   */
  async publish(events: readonly E[]): Promise<void> {
    if (!Array.isArray(events)) throw new TypeError(`events must be an array, got ${typeof events}`);
    if (events.length === 0) return;
    const batch = [...events];
    this.kept.push(...batch);
    if (this.kept.length > this.maxEvents) {
      const excess = this.kept.length - this.maxEvents;
      this.kept.splice(0, excess);
      this.droppedCount += excess;
    }
    const failures: unknown[] = [];
    for (const listener of [...this.listeners]) {
      try {
        listener(batch);
      } catch (err) {
        failures.push(err);
      }
    }
    if (failures.length > 0) throw new ListenerError(failures);
  }

  /** Calls `listener` with every later batch; returns the function that unsubscribes it. */
  subscribe(listener: EventListener<E>): () => void {
    if (typeof listener !== 'function') throw new TypeError(`listener must be a function, got ${typeof listener}`);
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** The events kept, oldest first. */
  events(): readonly E[] {
    return [...this.kept];
  }

  /** Events dropped because of `maxEvents`. */
  get dropped(): number {
    return this.droppedCount;
  }
}

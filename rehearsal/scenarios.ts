/**
 * Rehearsal scenarios: what goes wrong on the new side (v2), and when.
 *
 * A fault starts either at the beginning (before the gate) or when the migration reaches a given
 * step, i.e. once v2 carries real traffic. The rehearsal records when it started so the report can
 * say how long the rollback took and what clients received in the meantime.
 */

/** What a scenario can do to the local stack. */
export interface ScenarioControls {
  /** Changes v2's faults (5XX rate, a 401 every Nth API request, added latency, crash, the incident's desync bug). */
  setNewSideFaults(faults: {
    errorRate5xx?: number;
    unauthorizedEvery?: number;
    addedLatencyMs?: number;
    crashed?: boolean;
    desyncAfter413?: boolean;
  }): void;
  /** Shrinks the old side to `units` workers behind the pin's back (an autoscaler gone wrong). */
  shrinkOldSide(units: number, why: string): void;
}

export interface Scenario {
  readonly name: string;
  readonly description: string;
  /** What a correct engine does with it. */
  readonly expected: 'promoted' | 'rolled-back';
  /**
   * When the fault starts: `'start'` before any traffic moves, or the index of the plan step
   * whose weight must be in effect. Undefined: no fault.
   */
  readonly faultAt?: 'start' | number;
  /** One line describing the fault, for the live view and the report. */
  readonly fault?: string;
  inject?(controls: ScenarioControls): void;
}

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'healthy',
    description: 'v2 is healthy: the migration promotes, soaks, and tears the old side down',
    expected: 'promoted',
  },
  {
    name: 'error-spike',
    description: 'v2 starts returning 5XX on a quarter of its requests at the second step: automatic rollback',
    expected: 'rolled-back',
    faultAt: 1,
    fault: 'v2 answers 25% of requests with 5XX',
    inject: (c) => c.setNewSideFaults({ errorRate5xx: 0.25 }),
  },
  {
    name: 'unexpected-401',
    description: 'v2 starts answering every 20th API request with a 401 at the second step: automatic rollback on its 4XX rate',
    expected: 'rolled-back',
    faultAt: 1,
    fault: 'v2 answers every 20th API request with an unexpected 401',
    inject: (c) => c.setNewSideFaults({ unauthorizedEvery: 20 }),
  },
  {
    name: 'latency',
    description: 'v2 slows down by 250 ms at the second step: automatic rollback',
    expected: 'rolled-back',
    faultAt: 1,
    fault: 'v2 adds 250 ms to every answer',
    inject: (c) => c.setNewSideFaults({ addedLatencyMs: 250 }),
  },
  {
    name: 'capacity-drop',
    description: 'the old side loses most of its workers mid-migration: the engine holds, restores capacity, then completes',
    expected: 'promoted',
    faultAt: 1,
    fault: 'old side shrunk behind the pin (autoscaler misconfigured)',
    inject: (c) => c.shrinkOldSide(2, 'autoscaler scaled in behind the pin'),
  },
  {
    name: 'keepalive-desync',
    description: "v2 has the incident's bug from the start (a 413 shifts every later response on the connection): caught at the gate",
    expected: 'rolled-back',
    faultAt: 'start',
    fault: 'v2 answers every request after a 413 with the previous response (the incident)',
    inject: (c) => c.setNewSideFaults({ desyncAfter413: true }),
  },
  {
    name: 'keepalive-desync-under-load',
    description: "the incident's bug appears only once v2 carries real traffic: caught by the periodic probe",
    expected: 'rolled-back',
    faultAt: 1,
    fault: 'v2 starts answering every request after a 413 with the previous response (the incident)',
    inject: (c) => c.setNewSideFaults({ desyncAfter413: true }),
  },
];

export const SCENARIO_NAMES = SCENARIOS.map((s) => s.name);

/** The scenario with that name, or undefined. */
export function findScenario(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}

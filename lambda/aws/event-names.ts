/**
 * Names on the event bus (no SDK imports, so that any handler or the CDK side can use them).
 */

/** `source` of every controller event. */
export const EVENT_SOURCE = 'cutover';
/** `source` and `detail-type` of probe results (published by the probe handler). */
export const PROBE_EVENT_SOURCE = 'cutover.probe';
export const PROBE_RESULT_DETAIL_TYPE = 'Cutover Probe Result';

/**
 * Detail-types of the contract, by core event type. Event types not listed get
 * `Migration <Type In Title Case>` (e.g. `capacity-pinned` → `Migration Capacity Pinned`), so every
 * event reaches the bus under a stable name.
 */
export const DETAIL_TYPES: Readonly<Record<string, string>> = Object.freeze({
  created: 'Migration Started',
  advanced: 'Migration Advanced',
  held: 'Migration Held',
  'rolled-back': 'Migration Rolled Back',
  // An operator's abort is a rollback too; `detail.type` still says "aborted".
  aborted: 'Migration Rolled Back',
  promoted: 'Migration Promoted',
  paused: 'Migration Paused',
  completed: 'Migration Completed',
  'torn-down': 'Migration Torn Down',
  // The controller found the record damaged, routed everything to the old side and stopped.
  'state-damaged': 'Migration State Damaged',
  // Both sides fail alike: the controller holds instead of rolling back (see the judge's rule 6).
  'shared-outage': 'Migration Held For Shared Outage',
});

export function detailTypeOf(type: string): string {
  return (
    DETAIL_TYPES[type] ??
    `Migration ${type
      .split(/[-_\s]+/)
      .filter(Boolean)
      .map((w) => w[0]!.toUpperCase() + w.slice(1))
      .join(' ')}`
  );
}

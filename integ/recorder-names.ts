/**
 * The recorder table's layout, shared by the construct (integ/recorder.ts) and its reader
 * (integ/notes.ts) without the reader importing aws-cdk-lib.
 */

/** Partition key value of every recorded notification (one run per stack, so one partition is enough). */
export const NOTE_PK = 'NOTE';

/** The stack output holding the recorder table's name. */
export const RECORDER_TABLE_OUTPUT = 'RecorderTableName';

/**
 * The operator's access layer: read migrations and send them commands, on AWS (the state table
 * and the controller function) or locally (a rehearsal's state directory). The `cutover list |
 * status | watch | history | pause | resume | abort | promote | teardown` commands are built on it,
 * and so can a dashboard be:
 *
 * ```ts
 * const source: MigrationSource = new AwsMigrationSource({ tableName, controllerFunctionName });
 * // or: new LocalMigrationSource({ stateDir })
 * const rows = await source.list();
 * const state = await source.status(rows[0]!.id);
 * const outcome = await source.command(state.id, 'pause', 'customer reports');
 * source.close();
 * ```
 *
 * A rehearsal takes commands through `CommandInbox` (inbox.ts), called once per tick of its loop.
 */
export * from './types';
export { eventLine, stateOf, summaryOf } from './state';
export { AwsMigrationSource, type AwsMigrationSourceOptions } from './aws-source';
export { LocalMigrationSource, type LocalMigrationSourceOptions } from './local-source';
export {
  CommandInbox,
  DEFAULT_COMMAND_WAIT_MS,
  INBOX_DIR,
  liveness,
  sendCommand,
  takeCommands,
  type CommandInboxOptions,
  type CommandRequest,
  type CommandResult,
  type Liveness,
  type SendOptions,
  type TakenCommand,
} from './inbox';

/**
 * The controller function: the reconciler of every migration of a stack (one per registry item,
 * see lambda/aws/registry.ts), with the adapters of every target and capacity kind
 * (controller-lambda-alias.ts and controller-fleet.ts carry one family each, in a smaller bundle).
 *
 * Invoked every minute by a schedule while a migration is live (it switches the schedule off when
 * none is, see lambda/aws/controller-schedules.ts), at once by an alarm state change or a desync
 * probe result, by the deploy trigger when a new version was deployed, and directly by operators
 * with `{ "command": "pause|resume|abort|promote|teardown", "reason": "…", "migration": "<key or
 * id>" }`. Idempotent and safe when two invocations overlap (versioned record, alias RevisionId,
 * conditional live marks).
 *
 * Everything is built once per container (lambda/aws/controller-handler.ts); the function's own
 * environment is checked at load, each migration's settings at its run, so that a bad setting fails
 * with the variable's name.
 */
import { createControllerHandler } from '../aws/controller-handler';
import { EVERY_KIT } from '../aws/every-kit';

export const handler = createControllerHandler(EVERY_KIT);

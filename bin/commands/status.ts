/**
 * `cutover status <migration>`: where a migration stands, with an exit code a CI can branch on:
 * 0 complete/torn down, 1 rolled back, 2 usage error, 3 still running (promoted included: it can
 * still roll back during the soak), 4 paused,
 * 5 damaged or unknown.
 */
import type { Command } from 'commander';
import type { MigrationState } from '../../ops/types';
import { statusExitCode } from '../../ops/types';
import { eventText } from './history';
import {
  addSourceOptions,
  ago,
  colourStatus,
  colors,
  defaultIo,
  printJson,
  STATUS_EXIT_HELP,
  stepText,
  weightBar,
  withSource,
  type OpsIo,
  type SourceFlags,
} from './ops-common';

export function registerStatusCommand(program: Command, io: OpsIo = defaultIo): void {
  const command = program
    .command('status')
    .description('show where a migration stands; the exit code says it too (0 done, 1 rolled back, 3 running, 4 paused, 5 damaged/unknown)')
    .argument('<migration>', 'migration id (AWS: or a key such as <function>:<alias>, for its current migration)');
  addSourceOptions(command, { controller: false })
    .addHelpText('after', STATUS_EXIT_HELP)
    .action(async (migration: string, flags: SourceFlags) => {
      process.exitCode = await statusCommand(migration, flags, io);
    });
}

export function statusCommand(migration: string, flags: SourceFlags, io: OpsIo = defaultIo): Promise<number> {
  return withSource('status', flags, io, 'read', async (source) => {
    const state = await source.status(migration);
    if (flags.json) printJson(io, state);
    else io.stdout(formatStatus(state, flags, io));
    return statusExitCode(state.status);
  });
}

/** The human status: a header, the weight bar, the latest decision, the pin, the newest events. */
export function formatStatus(s: MigrationState, flags: SourceFlags, io: OpsIo, now = Date.now()): string {
  const c = colors(flags, io);
  const lines: string[] = [];
  const where = s.key !== undefined ? c.dim(`  (current migration of ${s.key})`) : '';
  lines.push(`${c.bold(s.id)}${where}`);
  const running = s.live === undefined ? '' : s.live ? c.dim(' · rehearsal running') : c.dim(' · its rehearsal stopped');
  lines.push(`  status     ${colourStatus(s.status, c)}${s.status === 'paused' && s.pausedFrom ? c.dim(` (from ${s.pausedFrom})`) : ''} · ${stepText(s.step, s.steps)}${running}`);
  if (s.weight !== undefined) lines.push(`  new side   ${weightBar(s.weight, c)} ${String(s.weight).padStart(3)}%`);
  if (s.pendingChange) {
    const p = s.pendingChange;
    lines.push(`  change     ${p.kind} ${p.fromWeight}% → ${p.weight}% requested ${ago(p.requestedAtMs, now)}, not seen in effect yet`);
  }
  if (s.lastDecision) lines.push(`  judge      ${s.lastDecision.action}: ${s.lastDecision.reason} ${c.dim(`[${s.lastDecision.code}]`)}`);
  if (s.plan) lines.push(`  plan       ${s.plan}`);
  if (s.oldCapacity) {
    const o = s.oldCapacity;
    const pin = o.released ? 'released' : o.pinned === undefined ? 'not pinned yet' : o.pinned === 0 ? 'not managed' : `pinned at ${o.pinned}`;
    lines.push(`  old side   ${pin}${o.restoring ? c.yellow(', being restored') : ''}`);
  }
  if (s.damage) lines.push(`  ${c.red('damage')}     ${s.damage}`);
  if (s.note) lines.push(`  note       ${s.note}`);
  if (s.updatedAtMs !== undefined) lines.push(`  updated    ${ago(s.updatedAtMs, now)}${s.phaseStartedAtMs !== undefined ? c.dim(` · phase started ${ago(s.phaseStartedAtMs, now)}`) : ''}`);
  if (s.recentEvents.length > 0) {
    lines.push('  recent');
    for (const e of s.recentEvents) lines.push(`    ${eventText(e, c)}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * A worker process of `bench:judge` (forked by pool.ts): builds the cells from the settings it is
 * sent, then runs the units it is sent one at a time and sends back their results.
 */
import { runUnit, type RunSettings, type Unit } from './pool';
import { cellsFor } from './scenarios';
import type { Cell } from './world';

let settings: RunSettings | undefined;

/** CPU time this process used so far, ms (user + system). */
function cpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

let cells: Map<string, Cell> | undefined;

process.on('message', (message: { settings?: RunSettings; unit?: Unit; stop?: boolean }) => {
  if (message.stop) process.exit(0);
  if (message.settings) {
    settings = message.settings;
    cells = cellsFor(settings.tables);
  }
  if (message.unit) {
    runUnit(cells!, message.unit, settings!).then(
      (results) => process.send!({ results, cpuMs: cpuMs() }),
      (error: unknown) => process.send!({ error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
    );
  }
});

/**
 * Runs every (cell, run) of a bench on `jobs` processes (forked `worker.ts`, each building the same
 * cells from scenarios.ts), or in this process with `jobs` = 1. Results do not depend on how the
 * work is split: every run is seeded by (seed, cell, run) alone.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { runCodeDeploy, runFlagger } from './policies';
import { runController, type Outcome } from './runner';
import { cellsFor, type TableName } from './scenarios';
import { World, type Cell } from './world';

export interface RunSettings {
  readonly seed: number;
  readonly windows: number;
  readonly codedeployThreshold: number;
  readonly tables: readonly TableName[];
}

/** What the three policies did in one run, on the same windows. */
export interface RunResult {
  readonly cutover: Outcome;
  readonly flagger: Outcome;
  readonly codedeploy: Outcome;
}

export async function runOne(cell: Cell, run: number, settings: RunSettings): Promise<RunResult> {
  const world = new World(cell, run, settings.seed, settings.windows);
  const cutover = await runController(world);
  return { cutover, flagger: runFlagger(world), codedeploy: runCodeDeploy(world, settings) };
}

export interface Unit {
  readonly id: number;
  readonly cellId: string;
  readonly from: number;
  readonly to: number;
}

export async function runUnit(cells: Map<string, Cell>, unit: Unit, settings: RunSettings): Promise<RunResult[]> {
  const cell = cells.get(unit.cellId);
  if (!cell) throw new Error(`unknown cell ${unit.cellId}`);
  const results: RunResult[] = [];
  for (let run = unit.from; run < unit.to; run++) results.push(await runOne(cell, run, settings));
  return results;
}

/** Results by cell id, indexed by run. */
export type Results = Map<string, RunResult[]>;

/** CPU time used by the runs, ms: this process's own (jobs = 1) or the workers' together. */
export interface CpuTime {
  ms: number;
}

export async function runAll(
  settings: RunSettings,
  runs: number,
  jobs: number,
  progress: (done: number, total: number) => void,
  cpu: CpuTime = { ms: 0 },
): Promise<Results> {
  const cells = cellsFor(settings.tables);
  const chunk = Math.max(1, Math.min(20, Math.ceil(runs / 4)));
  const units: Unit[] = [];
  for (const cellId of cells.keys()) {
    for (let from = 0; from < runs; from += chunk) units.push({ id: units.length, cellId, from, to: Math.min(runs, from + chunk) });
  }
  const results: Results = new Map([...cells.keys()].map((id) => [id, new Array<RunResult>(runs)]));
  const total = cells.size * runs;
  let done = 0;
  const store = (unit: Unit, out: RunResult[]): void => {
    out.forEach((r, i) => (results.get(unit.cellId)![unit.from + i] = r));
    done += out.length;
    progress(done, total);
  };
  if (jobs <= 1) {
    const before = process.cpuUsage();
    for (const unit of units) store(unit, await runUnit(cells, unit, settings));
    const used = process.cpuUsage(before);
    cpu.ms = (used.user + used.system) / 1000;
    return results;
  }
  const workerCpu: number[] = [];
  const queue = [...units];
  const workers: ChildProcess[] = [];
  try {
    await Promise.all(
      Array.from({ length: Math.min(jobs, units.length) }, (_, index) => {
        const child = fork(join(__dirname, 'worker.ts'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        workers.push(child);
        return new Promise<void>((resolve, reject) => {
          let current: Unit | undefined;
          const next = (): void => {
            current = queue.shift();
            if (!current) {
              child.send({ stop: true });
              resolve();
              return;
            }
            child.send({ unit: current });
          };
          child.on('message', (message: { results?: RunResult[]; cpuMs?: number; error?: string }) => {
            if (message.error !== undefined) return reject(new Error(`worker: ${message.error}`));
            workerCpu[index] = message.cpuMs ?? 0;
            store(current!, message.results!);
            next();
          });
          child.on('error', reject);
          child.on('exit', (code) => {
            if (current) reject(new Error(`worker exited with code ${code} while running ${current.cellId} runs ${current.from}–${current.to - 1}`));
          });
          child.send({ settings });
          next();
        });
      }),
    );
  } finally {
    // Normally every worker was told to stop; after a failure, end the ones still running.
    for (const child of workers) if (child.exitCode === null && queue.length > 0) child.kill();
  }
  cpu.ms = workerCpu.reduce((sum, ms) => sum + ms, 0);
  return results;
}

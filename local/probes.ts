/**
 * The local `ProbePort`: runs the real Keep-Alive probe (`lambda/probe`) against the old and new
 * demo servers, on demand (the controller's gate) and periodically in the background (what the
 * probe Lambda's schedule does on AWS). Every outcome carries the side's synthetic health (the
 * answers the probe got and how many were 5XX), as on AWS.
 */
import { runProbe, toProbeOutcome, type ProbeOptions, type ProbeReport } from '../lambda/probe';
import type { Clock, ProbeOutcome, ProbePort, Side } from '../lambda/core/ports';

export interface LocalProbesOptions {
  /** Base URL of each side (probed directly, not through the router: a probe must reach one side). */
  readonly urls: Readonly<Record<Side, string>>;
  readonly clock: Clock;
  /**
   * Probe settings (health path, timeouts, runs …) passed to `runProbe`.
   * @default - the probe's defaults with health path `/health`
   */
  readonly probe?: Omit<ProbeOptions, 'baseUrl'>;
  /**
   * How many outcomes to keep for `recentResults`.
   * @default 1000
   */
  readonly maxResults?: number;
  /** Called with every finished probe (for a live view or a report). */
  readonly onResult?: (outcome: ProbeOutcome, report: ProbeReport) => void;
}

export class LocalProbes implements ProbePort {
  private readonly results: ProbeOutcome[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly options: LocalProbesOptions) {}

  async probeNow(side: Side): Promise<ProbeOutcome> {
    const report = await runProbe({ healthPath: '/health', ...this.options.probe, baseUrl: this.options.urls[side] });
    const outcome = toProbeOutcome(report, side, this.options.clock.now());
    this.remember(outcome);
    this.options.onResult?.(outcome, report);
    return outcome;
  }

  async recentResults(sinceMs: number): Promise<readonly ProbeOutcome[]> {
    return this.results.filter((r) => r.atMs >= sinceMs);
  }

  /**
   * Probes `sides` (one side, or several: each round probes them all at once, with the same
   * settings, as the probe Lambda's schedule does on AWS) every `intervalMs` until `stop()`. One
   * round at a time: the next starts `intervalMs` after the previous one finished, so a slow
   * server cannot pile probes up.
   */
  startPeriodic(sides: Side | readonly Side[], intervalMs: number): void {
    if (this.timer || this.stopped) return;
    const list: readonly Side[] = typeof sides === 'string' ? [sides] : [...new Set(sides)];
    const loop = (): void => {
      this.timer = setTimeout(() => {
        this.running = Promise.allSettled(list.map((side) => this.probeNow(side)))
          .then(() => undefined)
          .catch(() => undefined) // a probe never throws for server behaviour; usage errors surfaced at the gate
          .finally(() => {
            this.running = undefined;
            if (!this.stopped) loop();
          });
      }, intervalMs);
    };
    loop();
  }

  /** Stops periodic probing and waits for a probe in flight to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** Every outcome so far, oldest first. */
  all(): readonly ProbeOutcome[] {
    return [...this.results];
  }

  private remember(outcome: ProbeOutcome): void {
    this.results.push(outcome);
    const max = this.options.maxResults ?? 1000;
    if (this.results.length > max) this.results.splice(0, this.results.length - max);
  }
}

/**
 * The adapters of a migration's target and capacity kinds, built from kits: a kit builds the
 * traffic adapter, the health source and the capacity adapter of some kinds (kit-lambda-alias.ts:
 * a Lambda alias with provisioned concurrency; kit-fleet.ts: ALB and Route 53 weights, Auto
 * Scaling groups and ECS services).
 *
 * Why kits rather than one switch over every kind: a controller bundle contains every module its
 * entry imports, used or not. The generic controller entry takes every kit; the per-family entries
 * (handlers/controller-lambda-alias.ts, handlers/controller-fleet.ts) take one, so an alias's
 * controller does not carry the ELB, Route 53, Auto Scaling and ECS adapters (about 33 KB
 * minified) and a fleet's does not carry the alias's.
 */
import type { LambdaClient } from '@aws-sdk/client-lambda';
import type { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import type { CapacityPort, CapacityStatus, HealthPort, ProbeHealth, Side, TrafficPort } from '../core/ports';
import type { AwsClientOptions } from './clients';
import type { ControllerConfig } from './config';
import { targetGroupDimension, type CapacityConfig, type MigrationSides, type TargetConfig } from './targets';

/** The migrated Lambda alias (empty names for fleets). */
export interface AliasSide {
  readonly lambda: LambdaClient;
  readonly functionName: string;
  readonly aliasName: string;
}

/** What a health source is built from. */
export interface HealthSourceInput {
  readonly cloudWatch: CloudWatchClient;
  readonly config: Pick<ControllerConfig, 'functionName' | 'aliasName' | 'appMetricsNamespace' | 'alarmNames' | 'healthReads'>;
  readonly versions: MigrationSides;
  readonly onWarning: (message: string, detail?: Record<string, unknown>) => void;
  /** The probe's own requests per side in [startMs, endMs) (for sources that count them with users'). */
  readonly probeTraffic: (startMs: number, endMs: number) => Promise<Record<Side, ProbeHealth>>;
}

/** The adapters of some target and capacity kinds. */
export interface AdapterKit {
  readonly targetKinds: readonly TargetConfig['kind'][];
  readonly capacityKinds: readonly CapacityConfig['kind'][];
  /** The routing of `target` (one of `targetKinds`). */
  traffic(target: TargetConfig, sides: MigrationSides): TrafficPort;
  /** Where the two sides' health comes from for `target` (one of `targetKinds`). */
  health(target: TargetConfig, input: HealthSourceInput): HealthPort;
  /** The pin of `kind` (one of `capacityKinds`). */
  capacity(kind: CapacityConfig, sides: MigrationSides): CapacityPort;
}

/** Makes a kit; its SDK clients are created at their first use and kept by the kit. */
export type AdapterKitFactory = (alias: AliasSide, clientOptions: AwsClientOptions) => AdapterKit;

/** A target or capacity kind that none of this bundle's kits builds. */
export class MissingKitError extends Error {
  constructor(what: string, kind: string, available: readonly string[]) {
    super(
      `this controller bundle cannot build the ${what} kind "${kind}" (it builds ${available.map((k) => `"${k}"`).join(', ') || 'none'}): ` +
        'deploy it with the construct of this Cutover version, which picks the controller entry of the target kind, or use the controller entry with every kind',
    );
    this.name = 'MissingKitError';
  }
}

/**
 * Builds the traffic, health and capacity adapters of the configured kinds from the given kits,
 * each kit's SDK clients created once (at the first use) and shared by every migration this
 * container runs.
 */
export class TargetAdapters {
  private readonly kits: readonly AdapterKit[];

  constructor(
    readonly target: TargetConfig,
    readonly capacityKind: CapacityConfig,
    private readonly alias: AliasSide,
    kits: readonly AdapterKitFactory[],
    clientOptions: AwsClientOptions = {},
  ) {
    this.kits = kits.map((make) => make(alias, clientOptions));
    // Fail at load, with the fix, rather than at the first tick.
    this.kitOf(target);
    if (capacityKind.kind !== 'none') this.kitOfCapacity(capacityKind);
  }

  /** The routing of `target` (the container's configured one unless a migration recorded its own). */
  traffic(sides: MigrationSides, target: TargetConfig = this.target): TrafficPort {
    return this.kitOf(target).traffic(target, sides);
  }

  /** The health source of `target` (the configured one unless a migration recorded its own). */
  health(input: HealthSourceInput, target: TargetConfig = this.target): HealthPort {
    return this.kitOf(target).health(target, input);
  }

  /** The pin of `kind` (the container's configured one unless a migration recorded its own). */
  capacity(sides: MigrationSides, kind: CapacityConfig = this.capacityKind): CapacityPort {
    // The core never calls a port of a migration pinned at 0 (the construct sets 0 with "none").
    if (kind.kind === 'none') return UNMANAGED_CAPACITY;
    return this.kitOfCapacity(kind).capacity(kind, sides);
  }

  /**
   * What the migration's record and events say about its sides. For fleets it names the CloudWatch
   * dimensions of each side (target groups, or load balancers for DNS), so that a reader of the
   * record (the dashboard) can query the same ALB metrics as the controller.
   */
  metadata(sides: MigrationSides, target: TargetConfig = this.target): Record<string, string> {
    switch (target.kind) {
      case 'lambda-alias':
        return { functionName: this.alias.functionName, aliasName: this.alias.aliasName, ...sides };
      case 'load-balancer':
        return {
          target: 'load-balancer',
          loadBalancer: target.loadBalancer,
          oldTargetGroup: targetGroupDimension(target.oldTargetGroupArn),
          newTargetGroup: targetGroupDimension(target.newTargetGroupArn),
          oldRelease: sides.oldVersion,
          newRelease: sides.newVersion,
        };
      case 'dns':
        return {
          target: 'dns',
          recordName: target.recordName,
          oldLoadBalancer: target.oldLoadBalancer,
          newLoadBalancer: target.newLoadBalancer,
          oldRelease: sides.oldVersion,
          newRelease: sides.newVersion,
        };
    }
  }

  private kitOf(target: TargetConfig): AdapterKit {
    const kit = this.kits.find((k) => k.targetKinds.includes(target.kind));
    if (!kit) throw new MissingKitError('target', target.kind, this.kits.flatMap((k) => k.targetKinds));
    return kit;
  }

  private kitOfCapacity(kind: CapacityConfig): AdapterKit {
    const kit = this.kits.find((k) => k.capacityKinds.includes(kind.kind));
    if (!kit) throw new MissingKitError('capacity', kind.kind, ['none', ...this.kits.flatMap((k) => k.capacityKinds)]);
    return kit;
  }
}

const UNMANAGED: CapacityStatus = { current: 0, ready: true, detail: 'capacity not managed' };
const UNMANAGED_CAPACITY: CapacityPort = {
  read: async () => UNMANAGED,
  pin: async () => UNMANAGED,
  restore: async () => UNMANAGED,
  release: async () => UNMANAGED,
};

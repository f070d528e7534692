/**
 * CapacityPort on Lambda provisioned concurrency, pinned on the OLD version itself.
 *
 * Not on the alias: while an alias has a routing configuration its provisioned concurrency cannot
 * be managed and the allocation fluctuates with the weights. A config on the version keeps the old
 * version's whole warm pool whatever the weights are, until teardown deletes it.
 */
import {
  DeleteProvisionedConcurrencyConfigCommand,
  GetProvisionedConcurrencyConfigCommand,
  PutProvisionedConcurrencyConfigCommand,
  type LambdaClient,
} from '@aws-sdk/client-lambda';
import type { CapacityPort, CapacityStatus } from '../../core/ports';
import { errorName } from '../clients';

export interface ProvisionedConcurrencyCapacityProps {
  readonly lambda: LambdaClient;
  /** Function name or ARN. */
  readonly functionName: string;
  /** The old version's number (the qualifier of the config). */
  readonly version: string;
}

const NOT_FOUND = 'ProvisionedConcurrencyConfigNotFoundException';

export class ProvisionedConcurrencyCapacity implements CapacityPort {
  constructor(private readonly props: ProvisionedConcurrencyCapacityProps) {
    if (!/^[1-9][0-9]*$/.test(props.version)) {
      throw new TypeError(`version must be a published version number, got ${JSON.stringify(props.version)}`);
    }
  }

  async read(): Promise<CapacityStatus> {
    try {
      const config = await this.props.lambda.send(
        new GetProvisionedConcurrencyConfigCommand({ FunctionName: this.props.functionName, Qualifier: this.props.version }),
      );
      return statusOf(config);
    } catch (error) {
      if (errorName(error) === NOT_FOUND) return { current: 0, ready: false, detail: 'no provisioned concurrency configured' };
      throw error;
    }
  }

  /** Idempotent: when the version already asks for `units` (and did not fail), nothing is written. */
  async pin(units: number): Promise<CapacityStatus> {
    checkUnits(units);
    const current = await this.read();
    if (current.pinned === units && !current.detail?.startsWith('FAILED')) return current;
    return this.put(units);
  }

  /**
   * Asks Lambda to allocate `units` again. A config that is still allocating is left alone (a new
   * Put would restart the allocation); a failed or smaller one is written again.
   */
  async restore(units: number): Promise<CapacityStatus> {
    checkUnits(units);
    const current = await this.read();
    if (current.pinned === units && (current.ready || current.detail?.startsWith('IN_PROGRESS'))) return current;
    return this.put(units);
  }

  /** Teardown: deletes the config. A config that is already gone counts as released. */
  async release(): Promise<CapacityStatus> {
    try {
      await this.props.lambda.send(
        new DeleteProvisionedConcurrencyConfigCommand({ FunctionName: this.props.functionName, Qualifier: this.props.version }),
      );
    } catch (error) {
      if (errorName(error) !== NOT_FOUND && errorName(error) !== 'ResourceNotFoundException') throw error;
    }
    return { current: 0, ready: false, detail: 'released' };
  }

  private async put(units: number): Promise<CapacityStatus> {
    const result = await this.props.lambda.send(
      new PutProvisionedConcurrencyConfigCommand({
        FunctionName: this.props.functionName,
        Qualifier: this.props.version,
        ProvisionedConcurrentExecutions: units,
      }),
    );
    return statusOf(result);
  }
}

function statusOf(config: {
  RequestedProvisionedConcurrentExecutions?: number;
  AllocatedProvisionedConcurrentExecutions?: number;
  Status?: string;
  StatusReason?: string;
}): CapacityStatus {
  const requested = config.RequestedProvisionedConcurrentExecutions;
  const allocated = config.AllocatedProvisionedConcurrentExecutions ?? 0;
  const status = config.Status ?? 'UNKNOWN';
  return {
    current: allocated,
    ...(requested !== undefined ? { pinned: requested } : {}),
    // Lambda serves none of the provisioned environments until all are allocated (READY).
    ready: status === 'READY' && (requested === undefined || allocated >= requested),
    detail: config.StatusReason ? `${status}: ${config.StatusReason}` : status,
  };
}

function checkUnits(units: number): void {
  if (!Number.isInteger(units) || units < 1) {
    throw new RangeError(`provisioned concurrency must be a whole number ≥ 1, got ${JSON.stringify(units)}`);
  }
}

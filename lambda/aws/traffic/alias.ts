/**
 * TrafficPort on a Lambda alias with weighted routing.
 *
 * The alias routes to the old version (`FunctionVersion`) plus the new one through
 * `RoutingConfig.AdditionalVersionWeights`. Every write is an `UpdateAlias` with the `RevisionId`
 * the controller last saw, so two overlapping runs cannot both move the weight: the second gets
 * `PreconditionFailedException`, reported as `RevisionConflictError`.
 */
import { GetAliasCommand, UpdateAliasCommand, type AliasConfiguration, type LambdaClient } from '@aws-sdk/client-lambda';
import { RevisionConflictError, type TrafficPort, type TrafficState } from '../../core/ports';
import { errorName } from '../clients';

export interface LambdaAliasTrafficProps {
  readonly lambda: LambdaClient;
  /** Function name or ARN. */
  readonly functionName: string;
  readonly aliasName: string;
  /** The version that served all traffic before the migration (a number, never `$LATEST`). */
  readonly oldVersion: string;
  /** The version being rolled out. */
  readonly newVersion: string;
}

/** The alias points at versions the migration does not know (someone changed it by hand). */
export class UnexpectedRoutingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnexpectedRoutingError';
  }
}

/**
 * Weights are percent (0–100) in the port and a fraction (0.0–1.0) on the wire. The fraction is
 * rounded to 1e-6 (0.0001 %) so that float noise such as 0.1 + 0.2 never reaches the API, and a
 * weight read back is rounded to 1e-4 % so that it compares equal to the planned one.
 */
const FRACTION_DIGITS = 1e6;
const PERCENT_DIGITS = 1e4;

export class LambdaAliasTraffic implements TrafficPort {
  constructor(private readonly props: LambdaAliasTrafficProps) {
    for (const key of ['oldVersion', 'newVersion'] as const) {
      if (!/^[1-9][0-9]*$/.test(props[key])) {
        throw new TypeError(`${key} must be a published version number, got ${JSON.stringify(props[key])}`);
      }
    }
    if (props.oldVersion === props.newVersion) {
      throw new TypeError(`oldVersion and newVersion must differ, both are ${JSON.stringify(props.oldVersion)}`);
    }
  }

  async getWeight(): Promise<TrafficState> {
    const alias = await this.props.lambda.send(
      new GetAliasCommand({ FunctionName: this.props.functionName, Name: this.props.aliasName }),
    );
    return this.stateOf(alias);
  }

  async setWeight(weight: number, expectedRevision: string): Promise<TrafficState> {
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0 || weight > 100) {
      throw new RangeError(`weight must be a percentage from 0 to 100, got ${JSON.stringify(weight)}`);
    }
    const { oldVersion, newVersion } = this.props;
    // 0 and 100 leave no extra weights: the alias is then a plain pointer to one version.
    const main = weight >= 100 ? newVersion : oldVersion;
    const fraction = Math.round((weight / 100) * FRACTION_DIGITS) / FRACTION_DIGITS;
    const split = weight > 0 && weight < 100;
    if (split && (fraction <= 0 || fraction >= 1)) {
      throw new RangeError(`weight ${weight}% is finer than the alias routing can express (steps of ${100 / FRACTION_DIGITS}%)`);
    }
    const extra: Record<string, number> = split ? { [newVersion]: fraction } : {};
    let updated: AliasConfiguration;
    try {
      updated = await this.props.lambda.send(
        new UpdateAliasCommand({
          FunctionName: this.props.functionName,
          Name: this.props.aliasName,
          FunctionVersion: main,
          RoutingConfig: { AdditionalVersionWeights: extra },
          RevisionId: expectedRevision,
        }),
      );
    } catch (error) {
      if (errorName(error) === 'PreconditionFailedException') {
        throw new RevisionConflictError(expectedRevision, await this.currentRevision());
      }
      throw error;
    }
    return this.stateOf(updated);
  }

  /** The alias's revision now, for the conflict message; undefined when it cannot be read. */
  private async currentRevision(): Promise<string | undefined> {
    try {
      const alias = await this.props.lambda.send(
        new GetAliasCommand({ FunctionName: this.props.functionName, Name: this.props.aliasName }),
      );
      return alias.RevisionId;
    } catch {
      // Only used to make the conflict message more helpful; the conflict itself is certain.
      return undefined;
    }
  }

  private stateOf(alias: AliasConfiguration): TrafficState {
    const { oldVersion, newVersion, functionName, aliasName } = this.props;
    const where = `alias ${functionName}:${aliasName}`;
    if (!alias.RevisionId) {
      throw new UnexpectedRoutingError(`${where} came back without a RevisionId`);
    }
    const weights = alias.RoutingConfig?.AdditionalVersionWeights ?? {};
    const strangers = Object.keys(weights).filter((v) => v !== oldVersion && v !== newVersion);
    if (strangers.length > 0) {
      throw new UnexpectedRoutingError(
        `${where} routes to version(s) ${strangers.join(', ')}, which belong to neither side of the migration (old ${oldVersion}, new ${newVersion})`,
      );
    }
    let weight: number;
    if (alias.FunctionVersion === oldVersion) {
      weight = (weights[newVersion] ?? 0) * 100;
    } else if (alias.FunctionVersion === newVersion) {
      weight = 100 - (weights[oldVersion] ?? 0) * 100;
    } else {
      throw new UnexpectedRoutingError(
        `${where} points at version ${JSON.stringify(alias.FunctionVersion)}, neither the old (${oldVersion}) nor the new (${newVersion}) one`,
      );
    }
    // Lambda applies an alias update synchronously: the routing is in effect when the call returns.
    return { weight: Math.round(weight * PERCENT_DIGITS) / PERCENT_DIGITS, revision: alias.RevisionId, settled: true };
  }
}

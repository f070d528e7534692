/**
 * The adapters of a Lambda alias migration (see adapter-kit.ts): the alias's weights
 * (traffic/alias.ts), Lambda's per-version metrics through the alias (cloudwatch-health.ts) and
 * provisioned concurrency on the old version (capacity/provisioned-concurrency.ts). They use the
 * alias's own Lambda client: this kit creates no client.
 */
import type { AdapterKitFactory } from './adapter-kit';
import { ProvisionedConcurrencyCapacity } from './capacity/provisioned-concurrency';
import { CloudWatchHealth } from './cloudwatch-health';
import { LambdaAliasTraffic } from './traffic/alias';

export const lambdaAliasKit: AdapterKitFactory = (alias) => ({
  targetKinds: ['lambda-alias'],
  capacityKinds: ['provisioned-concurrency'],
  traffic: (_target, sides) => new LambdaAliasTraffic({ lambda: alias.lambda, functionName: alias.functionName, aliasName: alias.aliasName, ...sides }),
  health: (_target, { cloudWatch, config, versions, onWarning }) =>
    new CloudWatchHealth({
      cloudWatch,
      functionName: config.functionName,
      aliasName: config.aliasName,
      ...versions,
      appMetricsNamespace: config.appMetricsNamespace,
      alarmNames: config.alarmNames,
      ...config.healthReads,
      onWarning,
    }),
  capacity: (_kind, sides) => new ProvisionedConcurrencyCapacity({ lambda: alias.lambda, functionName: alias.functionName, version: sides.oldVersion }),
});

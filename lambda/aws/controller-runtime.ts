/**
 * The controller's runtime with the adapters of every target and capacity kind: what the generic
 * controller entry (handlers/controller.ts), the tests and the benchmark run. The work of an
 * invocation is `ControllerRunner`'s (controller-runner.ts); the per-family entries give it the
 * adapters of one kit, so that their bundles leave the others out (see adapter-kit.ts).
 */
import { TargetAdapters } from './adapter-kit';
import { ControllerRunner, type ControllerRunnerDeps } from './controller-runner';
import { EVERY_KIT } from './every-kit';

// The request and response shapes live in controller-requests.ts; re-exported for the callers that
// import them from here (ops/, the tests).
export { parseControllerEvent, type ControllerRequest, type ControllerResponse, type DeployTriggerPayload } from './controller-requests';
export { ControllerRunner, type ControllerRunnerDeps } from './controller-runner';

export interface ControllerRuntimeDeps extends Omit<ControllerRunnerDeps, 'adapters'> {
  /**
   * The traffic, health and capacity adapters of the configured target and capacity kinds.
   * @default - built from `config` by every kit, with the SDK clients' default settings
   */
  readonly adapters?: TargetAdapters;
}

export class ControllerRuntime extends ControllerRunner {
  constructor(deps: ControllerRuntimeDeps) {
    const { config, clients } = deps;
    super({
      ...deps,
      adapters:
        deps.adapters ??
        new TargetAdapters(config.target, config.capacity, { lambda: clients.lambda, functionName: config.functionName, aliasName: config.aliasName }, EVERY_KIT),
    });
  }
}

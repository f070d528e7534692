/**
 * The controller function of a stack's Lambda alias migrations (`CUTOVER_TARGET` unset or
 * `{"kind":"lambda-alias"}`): the same controller as controller.ts with the alias's adapters only,
 * so that its bundle leaves the fleet adapters out (see lambda/aws/adapter-kit.ts). It serves the
 * alias migrations of the registry (`CUTOVER_CONTROLLER_FAMILY` unset is `lambda-alias`); a
 * migration of another target kind routed to it fails, that migration only, with the fix.
 */
import { createControllerHandler } from '../aws/controller-handler';
import { lambdaAliasKit } from '../aws/kit-lambda-alias';

export const handler = createControllerHandler([lambdaAliasKit], process.env, 'lambda-alias');

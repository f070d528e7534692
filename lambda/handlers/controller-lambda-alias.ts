/**
 * The controller function of a Lambda alias migration (`CUTOVER_TARGET` unset or
 * `{"kind":"lambda-alias"}`): the same controller as controller.ts with the alias's adapters only,
 * so that its bundle leaves the fleet adapters out (see lambda/aws/adapter-kit.ts). Another target
 * kind fails at load with the fix.
 */
import { createControllerHandler } from '../aws/controller-handler';
import { lambdaAliasKit } from '../aws/kit-lambda-alias';

export const handler = createControllerHandler([lambdaAliasKit]);

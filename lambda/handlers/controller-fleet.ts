/**
 * The controller function of a stack's fleet migrations (`CUTOVER_TARGET` of kind "load-balancer"
 * or "dns"): the same controller as controller.ts with the fleet adapters only, so that its bundle
 * leaves the Lambda alias's out (see lambda/aws/adapter-kit.ts). It serves the fleet migrations of
 * the registry (`CUTOVER_CONTROLLER_FAMILY` unset is `fleet`); a migration of another target kind
 * routed to it fails, that migration only, with the fix.
 */
import { createControllerHandler } from '../aws/controller-handler';
import { fleetKit } from '../aws/kit-fleet';

export const handler = createControllerHandler([fleetKit], process.env, 'fleet');

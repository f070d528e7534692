/**
 * The controller function of a fleet migration (`CUTOVER_TARGET` of kind "load-balancer" or
 * "dns"): the same controller as controller.ts with the fleet adapters only, so that its bundle
 * leaves the Lambda alias's out (see lambda/aws/adapter-kit.ts). Another target kind fails at load
 * with the fix.
 */
import { createControllerHandler } from '../aws/controller-handler';
import { fleetKit } from '../aws/kit-fleet';

export const handler = createControllerHandler([fleetKit]);

/**
 * Every adapter kit: the generic controller entry (handlers/controller.ts), `ControllerRuntime`'s
 * default, the tests and the benchmark use them all; the per-family entries import one kit only
 * (see adapter-kit.ts).
 */
import type { AdapterKitFactory } from './adapter-kit';
import { fleetKit } from './kit-fleet';
import { lambdaAliasKit } from './kit-lambda-alias';

export const EVERY_KIT: readonly AdapterKitFactory[] = [lambdaAliasKit, fleetKit];

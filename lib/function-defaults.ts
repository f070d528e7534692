/**
 * Settings every Cutover Lambda shares (the controller, the probe, the deploy trigger and the
 * demo API), so that runtime, architecture and bundling never drift apart between them, and where
 * their code comes from: bundled from source in a checkout, prebuilt in an installed package.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import type { Construct } from 'constructs';

/**
 * The package root: the nearest folder above this file with a package.json. The same walk works
 * from `lib/` in a checkout and from `dist/lib/` in an installed package (`dist/` has none).
 */
function findPackageRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) {
      throw new Error(`Cutover cannot find its package.json above ${start}: the package is incomplete; reinstall it`);
    }
  }
}

/** The package root (the repository root in a checkout): entries, prebuilt handlers and the lockfile are resolved from here. */
export const PACKAGE_ROOT = findPackageRoot(__dirname);

/** @deprecated the same folder as `PACKAGE_ROOT`, kept for the callers written before the package was installable. */
export const REPO_ROOT = PACKAGE_ROOT;

/**
 * Each Lambda entry of Cutover, by handler name, as a path under `lambda/`. scripts/build-handlers.ts
 * prebuilds each one to `dist/handlers/<name>/index.js` for the published package.
 */
export const CUTOVER_HANDLER_ENTRIES = {
  // The controller with the adapters of every target and capacity kind, and the same controller
  // with one family's only (a smaller bundle: lambda/aws/adapter-kit.ts). A construct picks the
  // family's entry by its target kind.
  controller: 'handlers/controller.ts',
  'controller-lambda-alias': 'handlers/controller-lambda-alias.ts',
  'controller-fleet': 'handlers/controller-fleet.ts',
  probe: 'handlers/probe.ts',
  'deploy-trigger': 'handlers/deploy-trigger.ts',
  'completion-wait': 'handlers/completion-wait.ts',
  'demo-api': 'demo/api.ts',
} as const;

/** The name of one of Cutover's Lambda handlers (a key of `CUTOVER_HANDLER_ENTRIES`). */
export type CutoverHandlerName = keyof typeof CUTOVER_HANDLER_ENTRIES;

/** The esbuild settings of every handler, shared by the synth-time bundling and the prebuilt bundles. */
export const HANDLER_BUNDLING = {
  // The Node 22 runtime ships AWS SDK v3; bundling it again would only grow the package. Its
  // @smithy/* and @aws-crypto/* dependencies are reached only through the SDK clients, so with
  // `@aws-sdk/*` external none of them is bundled (esbuild's metafile lists none): marking them
  // external too would change nothing. Powertools is not in the runtime and stays bundled.
  externalModules: ['@aws-sdk/*'],
  minify: true,
  sourceMap: true,
  target: 'node22',
} as const;

/** The folder of a handler's prebuilt bundle (`index.js` and its source map) in the package. */
export function prebuiltHandlerDirectory(handler: CutoverHandlerName): string {
  return path.join(PACKAGE_ROOT, 'dist', 'handlers', handler);
}

/**
 * NodejsFunction props for a handler file under `lambda/` (e.g. `handlers/controller.ts`).
 * Node 22 on ARM64, bundled locally with esbuild, AWS SDK v3 left to the runtime. Only usable in a
 * checkout (it needs the TypeScript sources, esbuild and the lockfile): prefer `cutoverFunction`.
 */
export function cutoverFunctionProps(entryUnderLambda: string): nodejs.NodejsFunctionProps {
  return {
    entry: path.join(PACKAGE_ROOT, 'lambda', entryUnderLambda),
    handler: 'handler',
    projectRoot: PACKAGE_ROOT,
    depsLockFilePath: path.join(PACKAGE_ROOT, 'package-lock.json'),
    runtime: lambda.Runtime.NODEJS_22_X,
    architecture: lambda.Architecture.ARM_64,
    memorySize: 256,
    bundling: { ...HANDLER_BUNDLING, externalModules: [...HANDLER_BUNDLING.externalModules] },
  };
}

/** Without it the bundled source maps would not be used for stack traces. */
export const SOURCE_MAP_ENVIRONMENT = { NODE_OPTIONS: '--enable-source-maps' } as const;

/**
 * One of Cutover's Lambda functions: Node 22 on ARM64, 256 MB unless `props` say otherwise, with
 * source maps enabled (`props.environment` is kept and `NODE_OPTIONS` added).
 *
 * In a checkout (the handler's TypeScript source is in the package) it is bundled from source by
 * `NodejsFunction` at synth, so tests and `cdk deploy` need no build step. In an installed package
 * (sources are not shipped) it loads the bundle prebuilt by `npm run build` with `Code.fromAsset`,
 * so the user's synth needs neither esbuild, nor the handlers' dependencies, nor our lockfile.
 */
export function cutoverFunction(scope: Construct, id: string, handler: CutoverHandlerName, props: lambda.FunctionOptions = {}): lambda.Function {
  const entryUnderLambda = CUTOVER_HANDLER_ENTRIES[handler];
  const environment = { ...props.environment, ...SOURCE_MAP_ENVIRONMENT };
  if (existsSync(path.join(PACKAGE_ROOT, 'lambda', entryUnderLambda))) {
    return new nodejs.NodejsFunction(scope, id, { ...cutoverFunctionProps(entryUnderLambda), ...props, environment });
  }
  const directory = prebuiltHandlerDirectory(handler);
  if (!existsSync(path.join(directory, 'index.js'))) {
    throw new Error(
      `Cutover's prebuilt ${handler} handler is missing (no index.js in ${directory}) and its source is not in the package either: ` +
        'reinstall the cutover package, or run `npm run build` in a checkout without lambda/ sources',
    );
  }
  return new lambda.Function(scope, id, {
    runtime: lambda.Runtime.NODEJS_22_X,
    architecture: lambda.Architecture.ARM_64,
    memorySize: 256,
    ...props,
    handler: 'index.handler',
    code: lambda.Code.fromAsset(directory),
    environment,
  });
}

/**
 * Settings every Cutover Lambda shares (the controller, the probe, the deploy trigger and the
 * demo API), so that runtime, architecture and bundling never drift apart between them.
 */
import * as path from 'node:path';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';

/** The repository root: entries and the lockfile are resolved from here. */
export const REPO_ROOT = path.resolve(__dirname, '..');

/**
 * NodejsFunction props for a handler file under `lambda/` (e.g. `handlers/controller.ts`).
 * Node 22 on ARM64, bundled locally with esbuild, AWS SDK v3 left to the runtime.
 */
export function cutoverFunctionProps(entryUnderLambda: string): nodejs.NodejsFunctionProps {
  return {
    entry: path.join(REPO_ROOT, 'lambda', entryUnderLambda),
    handler: 'handler',
    projectRoot: REPO_ROOT,
    depsLockFilePath: path.join(REPO_ROOT, 'package-lock.json'),
    runtime: lambda.Runtime.NODEJS_22_X,
    architecture: lambda.Architecture.ARM_64,
    memorySize: 256,
    bundling: {
      // The Node 22 runtime ships AWS SDK v3; bundling it again would only grow the package.
      externalModules: ['@aws-sdk/*'],
      minify: true,
      sourceMap: true,
      target: 'node22',
    },
  };
}

/** Without it the bundled source maps would not be used for stack traces. */
export const SOURCE_MAP_ENVIRONMENT = { NODE_OPTIONS: '--enable-source-maps' } as const;

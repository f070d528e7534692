/** Cutover's CDK side: the `CanaryMigration` construct, its plans, health checks, metrics and the demo stack. */
export * from './canary-migration';
export * from './dashboard';
export * from './demo-stack';
export * from './errors';
export * from './health-check';
export * from './metrics';
export * from './plan';

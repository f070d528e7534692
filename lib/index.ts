/** Cutover's CDK side: the `CanaryMigration` construct, its plans, health checks, metrics and the demo stack. */
export * from './canary-migration';
export * from './dashboard';
export * from './demo-stack';
export * from './errors';
export * from './health-check';
export * from './metrics';
export * from './plan';
export * from './capacity/old-capacity';
export * from './targets/binding';
export * from './targets/dns';
export * from './targets/lambda-alias';
export * from './targets/load-balancer';
export * from './targets/migration-target';

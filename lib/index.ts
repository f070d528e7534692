/**
 * Cutover's construct library, the package's main entry (`import { CanaryMigration } from 'cutover'`):
 * the `CanaryMigration` construct and its alias handle, plans, health checks, metrics, dashboard,
 * targets and old-side capacity, and the demo stack. docs/library.md explains the packaging and
 * docs/api/ is the API reference generated from these exports (`npm run docs:api`).
 *
 * @packageDocumentation
 */
export * from './alias-handle';
export * from './canary-migration';
export * from './canary-migration-metrics';
export * from './completion-wait';
export * from './cutover-controller';
export * from './dashboard';
export * from './demo-stack';
export * from './errors';
export * from './health-check';
export * from './metrics';
export * from './migrated-record';
export * from './plan';
export * from './capacity/old-capacity';
export * from './targets/binding';
export * from './targets/dns';
export * from './targets/lambda-alias';
export * from './targets/load-balancer';
export * from './targets/migration-target';

// Types of the core (lambda/core) that appear in the constructs' signatures, exported so that an
// app can name them and the API reference documents them.
export type { JudgeConfig } from '../lambda/core/judge-config';
export { MigrationStatus } from '../lambda/core/model';
export type { PlanSpec, PlanStep } from '../lambda/core/plan';

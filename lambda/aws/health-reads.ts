/**
 * How often a deployed controller reads a migration's health from CloudWatch, for every target
 * (`DEPLOYED_APP_REQUESTS_EVERY_MINUTES` only for a Lambda alias, whose application metrics it
 * cross-checks); the construct sets these, and unset the controller reads every minute. A module of its own, with no
 * imports, so that the construct can use the figures without loading the SDK.
 *
 * GetMetricData is billed per metric requested, whatever the number of minutes each returns: see
 * `CloudWatchHealthProps.minReadMinutes` and `appRequestsEveryMinutes` for what each costs in
 * reaction time and cross-checking.
 */
export const DEPLOYED_MIN_READ_MINUTES = 3;
export const DEPLOYED_APP_REQUESTS_EVERY_MINUTES = 10;

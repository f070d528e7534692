/**
 * How often a deployed controller reads a Lambda alias migration's health from CloudWatch (the
 * construct sets these; unset, the controller reads every minute). A module of its own, with no
 * imports, so that the construct can use the figures without loading the SDK.
 *
 * GetMetricData is billed per metric requested, whatever the number of minutes each returns: see
 * `CloudWatchHealthProps.minReadMinutes` and `appRequestsEveryMinutes` for what each costs in
 * reaction time and cross-checking.
 */
export const DEPLOYED_MIN_READ_MINUTES = 3;
export const DEPLOYED_APP_REQUESTS_EVERY_MINUTES = 10;

/**
 * The namespace of the controller's and the probe's metrics, apart from metrics.ts so that readers
 * of those metrics (the dashboard in the CLI) do not load Powertools Metrics with it.
 */
export const CUTOVER_NAMESPACE = 'Cutover';

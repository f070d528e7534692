/**
 * Shared by the rehearsal tests.
 */

/**
 * Statuses the probe's deliberate requests get (unknown route, bad app id or JSON, wrong method,
 * bad credentials) and a client request of a healthy run never does: probe traffic in the judge's
 * figures would show up as one of them.
 */
export const PROBE_ONLY_STATUSES: readonly string[] = ['400', '401', '404', '405'];

/**
 * Public types of the Keep-Alive desync probe. Plain JSON-serialisable data so a report can be
 * printed by the CLI, published by the Lambda handler and stored by the rehearsal unchanged.
 */
import type { ProbeHealth, ProbeVerdict } from '../core/ports';
import type { TrustedCa } from './target';

export type { ProbeHealth, ProbeVerdict, TrustedCa };

/**
 * The synthetic health in a probe's report: `ProbeHealth` with the 4XX answers always counted (the
 * probe's deliberate 404, 413, 400, 401 … included, so a health source that cannot leave the
 * probe's requests out can subtract them).
 */
export interface ProbeReportHealth extends ProbeHealth {
  readonly errors4xx: number;
}

/** One request of a probe sequence, as a user writes it in a sequence file. */
export interface ProbeStepSpec {
  /**
   * Short label used in reports (letters, digits, `-`, `_`, `.`).
   * @default - `step-<n>` with n counted from 1
   */
  readonly name?: string;
  /**
   * Request method (an HTTP token).
   * @default 'GET'
   */
  readonly method?: string;
  /**
   * Path (and optional query) appended to the base URL's path; must start with `/`. A nonce query
   * parameter is added to every request so server logs can be matched to the probe.
   */
  readonly path: string;
  /**
   * Extra request headers. `Host`, `Content-Length`, `Transfer-Encoding`, `Connection`, `Expect`,
   * `Upgrade`, `TE`, `X-Probe-Id` and the probe marker `X-Cutover-Probe` are set by the probe and
   * may not be given.
   * @default - none
   */
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * Size of the request body in bytes. A body long enough starts with a complete request to a
   * unique path ("smuggled"), so a server that answers without reading the body and then parses it
   * as a new request sends an extra response the probe can see.
   * @default 0
   */
  readonly bodyBytes?: number;
  /**
   * Status the step should get on a fresh connection. When set, a control response with another
   * status is reported (the server is not in the state the sequence assumes).
   * @default - learned from the control pass
   */
  readonly expectStatus?: number;
}

/** Options of one probe (`runProbe`). Durations are milliseconds. */
export interface ProbeOptions {
  /** Where to probe: an `http:` or `https:` URL; its path is a prefix for every step's path. */
  readonly baseUrl: string;
  /**
   * Health path of the default sequence (ignored when `sequence` is given).
   * @default '/'
   */
  readonly healthPath?: string;
  /**
   * How many times to repeat the whole probe (fresh connections may reach different backends
   * behind a load balancer). The report counts what each run found.
   * @default 1
   */
  readonly runs?: number;
  /**
   * Bound on each wait for the server: connecting, and a whole response from the moment its
   * request is written.
   * @default 5000
   */
  readonly timeoutMs?: number;
  /**
   * How long an idle keep-alive connection is watched for unsolicited bytes after each response in
   * the sequential pass; the paused pass waits twice as long after each 4XX/5XX before the next
   * request, and the long pass watches that long after its last answer.
   * @default 250
   */
  readonly idleMs?: number;
  /**
   * Requests sent on one connection in the long keep-alive pass, which interleaves the steps'
   * distinct requests back to back: a server that goes wrong only after many requests on a
   * connection shifts every later answer, and the pass sees it. 0 turns the pass off.
   * @default 120
   */
  readonly longPassRequests?: number;
  /**
   * Time after which the long pass sends no more requests. On loopback and nearby servers the
   * pass ends far sooner; a slow server gets fewer requests (and a note saying how many) instead of
   * a probe many times longer. Raise it to reach deep into connections on a slow or distant server.
   * @default 5000
   */
  readonly longPassMaxMs?: number;
  /**
   * Upper bound for the whole probe, all runs together. Passes that have not started by then are
   * skipped and reported.
   * @default 60000
   */
  readonly maxDurationMs?: number;
  /**
   * Body size of the default sequence's oversized POST: pick a size just above the server's body
   * limit so the server answers 413 (the error path that went wrong in the incident).
   * @default 1048577 (one byte over 1 MiB, the most common proxy limit)
   */
  readonly largeBodyBytes?: number;
  /**
   * Fresh-connection answers collected per step in the control pass.
   * @default 2
   */
  readonly controlRepeats?: number;
  /** The user's own request sequence instead of the default one. @default - the default sequence */
  readonly sequence?: readonly ProbeStepSpec[];
  /**
   * Also send the safe steps (GET/HEAD without body) pipelined in one write.
   * @default false
   */
  readonly pipelined?: boolean;
  /** Called with one human-readable line at each stage (the CLI shows them). @default - silent */
  readonly onProgress?: (line: string) => void;
  /**
   * Verify the server certificate over TLS.
   * @default true
   */
  readonly rejectUnauthorized?: boolean;
  /**
   * TLS server name (SNI) and the name the certificate is checked against.
   * @default - the URL's host name (none for an IP address)
   */
  readonly servername?: string;
  /**
   * Where to open the TCP connection instead of the URL's host: a host name, an IPv4 address or
   * an IPv6 address in brackets, with an optional `:port` from 1 to 65535 (the URL's port when
   * left out), e.g. `alb-new-123.eu-west-1.elb.amazonaws.com` or `[2001:db8::7]:8443`. The
   * requests still carry the URL's host in `Host`, TLS still sends it by SNI, and the server
   * certificate is still checked against it (Node's `checkServerIdentity` with the URL's host name,
   * or `servername`), never against this address. So one side of a fleet migration (the old or
   * the new load balancer, both serving `api.example.com`) is probed on its own, with its
   * certificate checked. A certificate the probe does not trust is a `tls-certificate` finding.
   * @default - the URL's host and port
   */
  readonly connectTo?: string;
  /**
   * Extra request headers every request carries (the request hidden in the oversized body too),
   * e.g. `{ "X-Cutover-Probe-Side": "new" }` for an ALB listener rule that forwards the probe's
   * requests to one target group by a header. Names are HTTP tokens, values have no CR, LF or
   * other control characters, at most 20 headers; `Host`, `Content-Length`, `Transfer-Encoding`,
   * `Connection` and the other headers the probe sets itself are refused. A step's own header of
   * the same name (the bad-credentials step's `Authorization`) wins on that step. The report's
   * settings list the names only.
   * @default - none
   */
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * Certificate authorities to trust over TLS, as Node's `tls.connect({ ca })` takes them (PEM).
   * They replace Node's default ones for this probe (tests pass a self-signed certificate here);
   * to add a private CA to the default ones in the CLI or a Lambda, set `NODE_EXTRA_CA_CERTS`.
   * @default - Node's default trusted CAs (and NODE_EXTRA_CA_CERTS)
   */
  readonly ca?: TrustedCa;
}

/** How one exchange ended, as shown in reports. */
export type ExchangeKind = 'response' | 'no-response' | 'timeout' | 'protocol-error' | 'connect-error' | 'skipped';

/** Names of the probe's passes. */
export type PassName = 'control' | 'sequential' | 'immediate' | 'paused' | 'long' | 'pipelined';

/** How a keep-alive answer compares with the control pass. */
export type StepMatch =
  /** The answer is one the step got on fresh connections. */
  | 'aligned'
  /** The answer is another step's answer: it belongs to another request. */
  | 'shifted'
  /**
   * A 5XX or 408 the control did not see: a server error or the server's idle timer, not another
   * request's answer.
   */
  | 'server-error'
  /** Neither the step's answer nor another step's. */
  | 'mismatch'
  /** The control pass never got a real answer for this step (only 5XX/408), so this one cannot be judged. */
  | 'unjudged'
  /** No answer (connection closed, timeout, protocol error). */
  | 'failed';

/** What one step got in one keep-alive pass. */
export interface StepAttempt {
  readonly pass: PassName;
  /** Signature of what came back (`413 text/plain #1a2b3c`, `no response (closed)`, …). */
  readonly got: string;
  readonly match: StepMatch;
  /**
   * For `shifted`: the distances this answer is consistent with (step index − origin; in the long
   * pass, request number − origin's request number on the same connection).
   */
  readonly shiftOffsets?: readonly number[];
  /**
   * For `shifted`: the answer is exactly (status, media type and body) the answer of another,
   * different request, which this request never gets on a fresh connection. Desync evidence on
   * its own, wherever the other request was sent (another connection included).
   */
  readonly exact?: boolean;
  /** True when the request was sent on a connection that had already carried a response. */
  readonly reused: boolean;
  /** Long pass: the request's number on its connection, from 1. */
  readonly position?: number;
}

/** What one step expected and got. */
export interface StepReport {
  readonly index: number;
  readonly name: string;
  readonly method: string;
  /** Path as sent, without the nonce. */
  readonly path: string;
  readonly bodyBytes: number;
  /** The control pass's most frequent signature. */
  readonly expected: string;
  /**
   * Every signature the control pass saw for this step, one per fresh connection; an answer that
   * was exactly another step's answer is marked `(another request's answer)`.
   */
  readonly control: readonly string[];
  /**
   * False when the step cannot prove a shift: its control answers varied, failed, or look like
   * another step's.
   */
  readonly distinct: boolean;
  readonly attempts: readonly StepAttempt[];
}

/** How serious a finding is. `desync` findings make the verdict `desync`; warnings make it `inconclusive`. */
export type FindingSeverity = 'desync' | 'warning' | 'info';

/** Kinds of findings and notes. */
export type FindingKind =
  // Evidence of a desync
  | 'unsolicited-bytes'
  | 'shifted-responses'
  | 'foreign-answer'
  | 'garbled-response'
  // Reasons for an inconclusive verdict
  | 'unreachable'
  /** The server's TLS certificate was refused (not trusted, expired, or not for the name checked). */
  | 'tls-certificate'
  | 'no-response'
  | 'timeout'
  | 'protocol-error'
  | 'header-too-large'
  | 'body-too-large'
  | 'connection-reset'
  | 'shift-suspected'
  | 'mismatch'
  | 'unstable-control'
  | 'unexpected-status'
  | 'weak-sequence'
  | 'unsolicited-408-kept-open'
  | 'deadline'
  // Notes (informational, never change the verdict)
  | 'not-reused'
  | 'closed-while-idle'
  | 'idle-timeout-408'
  | 'server-error'
  | 'unlearned-step'
  | 'stray-whitespace'
  | 'keep-alive-not-exercised'
  | 'pipeline-not-supported'
  | 'long-pass'
  | 'framing-anomaly';

/** One thing the probe found. */
export interface ProbeFinding {
  readonly kind: FindingKind;
  readonly severity: FindingSeverity;
  /** Run number, from 1. */
  readonly run: number;
  readonly pass: PassName;
  /** Step index (from 0) and name, when the finding is about one step. */
  readonly step?: number;
  readonly stepName?: string;
  /** The signature the step should have had. */
  readonly expected?: string;
  /** What it got. */
  readonly got?: string;
  /** First bytes of unsolicited or unparseable data, as printable text (`\r\n` escaped). */
  readonly unsolicited?: string;
  /** How many unsolicited bytes arrived. */
  readonly unsolicitedBytes?: number;
  /** For shifts: how many steps late the answers arrived (1 = each request got the previous one's answer). */
  readonly shiftOffset?: number;
  /** Long pass: the request's number on its connection where the evidence starts, from 1. */
  readonly position?: number;
  /** One sentence a human can read. */
  readonly message: string;
}

/** How many runs found what. */
export interface RunsSummary {
  readonly total: number;
  readonly ok: number;
  readonly desync: number;
  readonly inconclusive: number;
}

/** The result of one run (the probe repeated `runs` times). */
export interface RunReport {
  /** From 1. */
  readonly run: number;
  readonly verdict: ProbeVerdict;
  readonly findings: readonly ProbeFinding[];
  readonly notes: readonly ProbeFinding[];
  readonly steps: readonly StepReport[];
  readonly durationMs: number;
  /** Keep-alive requests sent on a connection that had already carried a response. */
  readonly reusedRequests: number;
  /** Most requests answered on one connection (the long pass's, unless the server closed it). */
  readonly maxRequestsPerConnection: number;
  readonly unsolicitedBytes: number;
  readonly shiftedSteps: number;
  /** Keep-alive answers compared with the control / keep-alive answers that differed. */
  readonly comparedAnswers: number;
  readonly mismatchedAnswers: number;
  /** Responses to the run's requests, and how many were 4XX and 5XX (see `ProbeReport.health`). */
  readonly health: ProbeReportHealth;
}

/** The settings a probe ran with (defaults filled in). */
export interface ProbeSettings {
  readonly baseUrl: string;
  readonly runs: number;
  readonly timeoutMs: number;
  readonly idleMs: number;
  readonly longPassRequests: number;
  readonly longPassMaxMs: number;
  readonly maxDurationMs: number;
  readonly largeBodyBytes: number;
  readonly controlRepeats: number;
  readonly pipelined: boolean;
  /** `default` or `custom` (the user's sequence). */
  readonly sequence: 'default' | 'custom';
  /** Where the probe connected instead of the URL's host (`ProbeOptions.connectTo`), when it did. */
  readonly connectTo?: string;
  /** Names of the extra headers every request carried (`ProbeOptions.headers`; values left out). */
  readonly headers?: readonly string[];
}

/** Result of `runProbe`. */
export interface ProbeReport {
  /** `desync` if any run found a desync, else `inconclusive` if any run was inconclusive, else `ok`. */
  readonly verdict: ProbeVerdict;
  /** Desync evidence and reasons for an inconclusive verdict, from all runs (empty when ok). */
  readonly findings: readonly ProbeFinding[];
  /** Informational observations that did not change the verdict. */
  readonly notes: readonly ProbeFinding[];
  readonly runs: RunsSummary;
  /** The steps of the run that decided the verdict (the first run with that verdict). */
  readonly steps: readonly StepReport[];
  readonly runReports: readonly RunReport[];
  readonly settings: ProbeSettings;
  readonly startedAtMs: number;
  readonly durationMs: number;
  /** Unsolicited bytes received, all runs (metric). */
  readonly unsolicitedBytes: number;
  /** Keep-alive answers that belonged to another step, all runs (metric). */
  readonly shiftedSteps: number;
  /** Share of keep-alive answers that differed from the control, 0–1, all runs (metric). */
  readonly mismatchRate: number;
  /**
   * The server's synthetic health as the probe saw it, all runs: `requests` counts the responses
   * to the probe's requests (every pass and retry; a close, timeout or protocol error is no
   * answer, an unsolicited extra response is not counted), `errors4xx` those with a 4XX status
   * (mostly the probe's deliberate 404, 413, 405, 400 and 401: a health source that counts the
   * probe's requests with the users' subtracts them) and `errors5xx` those with a 5XX status.
   * The probe never asks for a 5XX, so each one is a server failure (never desync evidence).
   */
  readonly health: ProbeReportHealth;
  /** One line a human can read. */
  readonly summary: string;
}

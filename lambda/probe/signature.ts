/**
 * Signatures of answers, what the control pass learns about each step, and how a keep-alive
 * answer is matched against it.
 *
 * A signature is the status, the media type and a hash of the body with the volatile parts
 * replaced: the probe's own tokens (so a 404 page that echoes the requested path hashes the same
 * for every request) and digit runs (timestamps, request ids, uptimes).
 */
import { createHash, randomBytes } from 'node:crypto';
import { headerValue, type ParsedResponse } from './http1';
import { sameRequest, type ProbeStep } from './sequence';
import type { StepMatch } from './types';

/** Every token the probe puts in a request matches this, so echoes can be normalised away. */
export const TOKEN_PATTERN = /cutoverprobe[0-9a-f]{16}/g;

/** A fresh token (nonce, run id, smuggled path). */
export function newToken(): string {
  return `cutoverprobe${randomBytes(8).toString('hex')}`;
}

export interface Signature {
  /** `response`, `no-response` (closed or reset before any byte) or `failure` (timeout, protocol error). */
  readonly kind: 'response' | 'no-response' | 'failure';
  readonly status?: number;
  /** Status and media type. */
  readonly coarse: string;
  /** Status, media type and body hash. */
  readonly fine: string;
  /** What reports show. */
  readonly display: string;
  /** The answer to a HEAD request: its body was not sent, so only status and media type count. */
  readonly headOnly?: boolean;
}

export function responseSignature(response: ParsedResponse, method: string): Signature {
  const mediaType = (headerValue(response, 'content-type') ?? '').split(';')[0].trim().toLowerCase() || '-';
  const normalised = response.body.toString('latin1').replace(TOKEN_PATTERN, 'cutoverprobe*').replace(/\d+/g, '0');
  const hash = createHash('sha256').update(normalised, 'latin1').digest('hex').slice(0, 6);
  const coarse = `${response.status} ${mediaType}`;
  const fine = `${coarse} #${response.body.length === 0 ? 'empty' : hash}`;
  return { kind: 'response', status: response.status, coarse, fine, display: fine, ...(method === 'HEAD' ? { headOnly: true } : {}) };
}

export function noResponseSignature(how: 'closed' | 'reset'): Signature {
  // Closed and reset are one class: which one a client sees after a server closes with unread
  // request bytes is a race in the kernel.
  return { kind: 'no-response', coarse: 'no response', fine: 'no response', display: `no response (${how})` };
}

export function failureSignature(what: string): Signature {
  return { kind: 'failure', coarse: 'failure', fine: 'failure', display: what };
}

/** What the control pass learned about one step. */
export interface StepProfile {
  readonly step: ProbeStep;
  /** One signature per fresh connection. */
  readonly samples: readonly Signature[];
  /**
   * The samples that are this step's own answers: `samples` without the ones that were exactly
   * another request's answer (see `findForeignSamples`).
   */
  readonly own: readonly Signature[];
  /** Indexes in `samples` of answers that were exactly another request's answer. */
  readonly foreign: ReadonlySet<number>;
  /**
   * How an answer is recognised as this step's when it shows up elsewhere: the fine signature
   * when every non-5XX control answer had the same body, the coarse one when only the body varied,
   * none when the status varied or no usable answer came.
   */
  readonly key?: { readonly level: 'fine' | 'coarse'; readonly value: string };
  /** The step timed out or broke the protocol on a fresh connection: not sent in later passes. */
  readonly broken: boolean;
  /**
   * The server ended the connection after this step's answer on a fresh connection (or closed it
   * without an answer): the long pass leaves the step out so that its connection lasts.
   */
  readonly closesConnection: boolean;
}

export interface ProfileExtras {
  /** Indexes of samples that were another request's answer. @default - none */
  readonly foreign?: ReadonlySet<number>;
  /** See `StepProfile.closesConnection`. @default false */
  readonly closesConnection?: boolean;
}

export function buildProfile(step: ProbeStep, samples: readonly Signature[], broken: boolean, extras: ProfileExtras = {}): StepProfile {
  const foreign = extras.foreign ?? new Set<number>();
  const own = samples.filter((_, i) => !foreign.has(i));
  const usable = own.filter((s) => s.kind === 'response' && !isTransient(s.status));
  let key: StepProfile['key'];
  if (usable.length > 0) {
    if (usable.every((s) => s.fine === usable[0].fine)) key = { level: 'fine', value: usable[0].fine };
    else if (usable.every((s) => s.coarse === usable[0].coarse)) key = { level: 'coarse', value: usable[0].coarse };
  }
  return { step, samples, own, foreign, key, broken, closesConnection: extras.closesConnection ?? false };
}

/** The control's most frequent answer, preferring real answers over 5XX and failures. */
export function expectedDisplay(profile: StepProfile): string {
  const rank = (s: Signature): number => (s.kind === 'response' ? (isTransient(s.status) ? 1 : 0) : s.kind === 'no-response' ? 2 : 3);
  const counts = new Map<string, { sig: Signature; n: number }>();
  for (const s of profile.own) {
    const entry = counts.get(s.fine);
    if (entry) entry.n += 1;
    else counts.set(s.fine, { sig: s, n: 1 });
  }
  const best = [...counts.values()].sort((a, b) => rank(a.sig) - rank(b.sig) || b.n - a.n)[0];
  if (!best) return 'nothing';
  return profile.key?.level === 'coarse' ? `${profile.key.value} (body varies)` : best.sig.display;
}

/** True when `sig` is one of the answers this step got on fresh connections. */
export function isExpected(sig: Signature, profile: StepProfile): boolean {
  if (profile.own.some((s) => s.fine === sig.fine)) return true;
  // A step whose body varied between fresh connections is recognised by status and media type.
  return profile.key?.level === 'coarse' && sig.coarse === profile.key.value;
}

/**
 * 5XX can be random, 408 comes from the server's idle timer and 429 from its rate limiter: none
 * identifies a request.
 */
export function isTransient(status: number | undefined): boolean {
  return status === undefined || status >= 500 || status === 408 || status === 429;
}

/** True when `sig` is recognisably this step's answer (never a 5XX, 408 or 429, see `isTransient`). */
export function isAnswerOf(sig: Signature, profile: StepProfile): boolean {
  if (sig.kind !== 'response' || isTransient(sig.status) || !profile.key) return false;
  if (profile.key.level === 'fine' && !sig.headOnly) return sig.fine === profile.key.value;
  return sig.coarse === coarseOf(profile);
}

/**
 * True when `sig` is exactly this step's answer: status, media type and body hash, against a step
 * whose fresh-connection answers all had that body. A HEAD answer (no body) or a step whose body
 * varies is never exact: status and media type alone are shared by too many requests.
 */
export function isExactAnswerOf(sig: Signature, profile: StepProfile): boolean {
  return sig.kind === 'response' && !sig.headOnly && !isTransient(sig.status) && profile.key?.level === 'fine' && sig.fine === profile.key.value;
}

function coarseOf(profile: StepProfile): string {
  if (!profile.key) return '';
  return profile.key.level === 'fine' ? profile.key.value.replace(/ #\S+$/, '') : profile.key.value;
}

/** Keys of two steps collide when one's answer would be taken for the other's. */
export function collide(a: StepProfile, b: StepProfile): boolean {
  if (!a.key || !b.key) return false;
  if (a.key.level === 'fine' && b.key.level === 'fine') return a.key.value === b.key.value;
  return coarseOf(a) === coarseOf(b);
}

/** A step is distinct when its answer is recognisable and no other step's answer looks the same. */
export function isDistinct(profile: StepProfile, all: readonly StepProfile[]): boolean {
  return profile.key !== undefined && all.every((other) => other === profile || !collide(profile, other));
}

/** Number of different answers the sequence can tell apart. */
export function distinctClasses(profiles: readonly StepProfile[]): number {
  return answerClasses(profiles).length;
}

/** One step per answer the sequence can tell apart (the first step of each), in step order. */
export function answerClasses(profiles: readonly StepProfile[]): StepProfile[] {
  const classes: StepProfile[] = [];
  for (const p of profiles) {
    if (p.key && !classes.some((c) => collide(c, p))) classes.push(p);
  }
  return classes;
}

/** Where a fresh-connection answer came from, when it was exactly another step's answer. */
export interface ForeignSample {
  /** Step index that got it, and which of its samples. */
  readonly step: number;
  readonly sample: number;
  /** Step index whose answer it is. */
  readonly origin: number;
}

/**
 * Finds fresh-connection answers that are exactly another request's answer. A fresh connection
 * carries one request, so such an answer crossed over from another connection (a proxy or server
 * handing out the wrong response). A sample counts when it equals another, different request's
 * exact answer (see `isExactAnswerOf`) and the step also got some other real answer: a step whose
 * answers are all that signature simply answers like the other step (a static server's 405 for
 * both TRACE and POST), which proves nothing. Repeats a few times, since removing one step's
 * foreign answer can let it learn its own.
 */
export function findForeignSamples(
  controls: ReadonlyArray<{ readonly step: ProbeStep; readonly samples: readonly Signature[]; readonly broken: boolean }>,
): ForeignSample[] {
  const foreign = controls.map(() => new Map<number, number>());
  for (let round = 0; round < 3; round++) {
    const profiles = controls.map((c, i) => buildProfile(c.step, c.samples, c.broken, { foreign: new Set(foreign[i].keys()) }));
    let changed = false;
    controls.forEach((c, i) => {
      c.samples.forEach((sig, k) => {
        if (foreign[i].has(k)) return;
        const others = c.samples.filter((o, m) => m !== k && !foreign[i].has(m) && o.kind === 'response' && !isTransient(o.status));
        if (!others.some((o) => o.fine !== sig.fine)) return;
        const origin = profiles.find((p, j) => j !== i && !sameRequest(p.step, c.step) && isExactAnswerOf(sig, p));
        if (!origin) return;
        foreign[i].set(k, origin.step.index);
        changed = true;
      });
    });
    if (!changed) break;
  }
  return foreign.flatMap((m, i) => [...m].map(([sample, origin]) => ({ step: controls[i].step.index, sample, origin })));
}

/** How a keep-alive answer compares with the control. */
export interface Classification {
  readonly match: StepMatch;
  /** For `shifted`: index of this step minus index of each step whose answer it is. */
  readonly shiftOffsets?: readonly number[];
  /** For `shifted`: the answer is exactly another request's answer (see `StepAttempt.exact`). */
  readonly exact?: boolean;
}

/**
 * Compares an answer with what `profile`'s step and the other steps got on fresh connections.
 * Steps that send the very same request (health and health-again) are not each other's origins:
 * their answers may differ a little over time without proving anything.
 *
 * A step that got only 5XX, 408 or 429 on fresh connections (an overloaded server) never showed
 * its own answer, so nothing it gets can be judged: its real answer may well look like another
 * step's (a server that ignores credentials answers bad-credentials like health), and taking it
 * for that step's would turn a server's failures into a false desync.
 */
export function classify(sig: Signature, profile: StepProfile, all: readonly StepProfile[]): Classification {
  if (sig.kind === 'failure') return { match: 'failed' };
  if (sig.kind === 'no-response') return { match: isExpected(sig, profile) ? 'aligned' : 'failed' };
  if (isExpected(sig, profile)) return { match: 'aligned' };
  const learned = profile.own.some((s) => s.kind !== 'response' || !isTransient(s.status));
  if (!learned) return { match: isTransient(sig.status) ? 'server-error' : 'unjudged' };
  const origins = all.filter((p) => p !== profile && !sameRequest(p.step, profile.step) && isAnswerOf(sig, p));
  if (origins.length > 0) {
    return {
      match: 'shifted',
      shiftOffsets: origins.map((p) => profile.step.index - p.step.index),
      ...(origins.some((p) => isExactAnswerOf(sig, p)) ? { exact: true } : {}),
    };
  }
  if (isTransient(sig.status)) return { match: 'server-error' };
  return { match: 'mismatch' };
}

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
import type { ProbeStep } from './sequence';
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
   * How an answer is recognised as this step's when it shows up elsewhere: the fine signature
   * when every non-5XX control answer had the same body, the coarse one when only the body varied,
   * none when the status varied or no usable answer came.
   */
  readonly key?: { readonly level: 'fine' | 'coarse'; readonly value: string };
  /** The step timed out or broke the protocol on a fresh connection: not sent in later passes. */
  readonly broken: boolean;
}

export function buildProfile(step: ProbeStep, samples: readonly Signature[], broken: boolean): StepProfile {
  const usable = samples.filter((s) => s.kind === 'response' && !isTransient(s.status));
  let key: StepProfile['key'];
  if (usable.length > 0) {
    if (usable.every((s) => s.fine === usable[0].fine)) key = { level: 'fine', value: usable[0].fine };
    else if (usable.every((s) => s.coarse === usable[0].coarse)) key = { level: 'coarse', value: usable[0].coarse };
  }
  return { step, samples, key, broken };
}

/** The control's most frequent answer, preferring real answers over 5XX and failures. */
export function expectedDisplay(profile: StepProfile): string {
  const rank = (s: Signature): number => (s.kind === 'response' ? (isTransient(s.status) ? 1 : 0) : s.kind === 'no-response' ? 2 : 3);
  const counts = new Map<string, { sig: Signature; n: number }>();
  for (const s of profile.samples) {
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
  if (profile.samples.some((s) => s.fine === sig.fine)) return true;
  // A step whose body varied between fresh connections is recognised by status and media type.
  return profile.key?.level === 'coarse' && sig.coarse === profile.key.value;
}

/** 5XX can be random and 408 comes from the server's idle timer: neither identifies a request. */
export function isTransient(status: number | undefined): boolean {
  return status === undefined || status >= 500 || status === 408;
}

/** True when `sig` is recognisably this step's answer (never a 5XX or 408, see `isTransient`). */
export function isAnswerOf(sig: Signature, profile: StepProfile): boolean {
  if (sig.kind !== 'response' || isTransient(sig.status) || !profile.key) return false;
  if (profile.key.level === 'fine' && !sig.headOnly) return sig.fine === profile.key.value;
  return sig.coarse === coarseOf(profile);
}

function coarseOf(profile: StepProfile): string {
  if (!profile.key) return '';
  return profile.key.level === 'fine' ? profile.key.value.replace(/ #\S+$/, '') : profile.key.value;
}

/** Keys of two steps collide when one's answer would be taken for the other's. */
function collide(a: StepProfile, b: StepProfile): boolean {
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
  const classes: StepProfile[] = [];
  for (const p of profiles) {
    if (p.key && !classes.some((c) => collide(c, p))) classes.push(p);
  }
  return classes.length;
}

/** How a keep-alive answer compares with the control. */
export interface Classification {
  readonly match: StepMatch;
  /** For `shifted`: index of this step minus index of each step whose answer it is. */
  readonly shiftOffsets?: readonly number[];
}

export function classify(sig: Signature, profile: StepProfile, all: readonly StepProfile[]): Classification {
  if (sig.kind === 'failure') return { match: 'failed' };
  if (sig.kind === 'no-response') return { match: isExpected(sig, profile) ? 'aligned' : 'failed' };
  if (isExpected(sig, profile)) return { match: 'aligned' };
  const origins = all.filter((p) => p !== profile && isAnswerOf(sig, p));
  if (origins.length > 0) return { match: 'shifted', shiftOffsets: origins.map((p) => profile.step.index - p.step.index) };
  if (isTransient(sig.status)) return { match: 'server-error' };
  if (!profile.samples.some((s) => s.kind !== 'response' || !isTransient(s.status))) return { match: 'unjudged' };
  return { match: 'mismatch' };
}

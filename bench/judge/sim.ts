/**
 * The traffic simulation of `bench:judge`: seeded per-window draws of requests, 5XX/4XX counts,
 * p99 latency and slow-request counts for the old and the new side.
 *
 * Model (per window, per request, all independent):
 * - the window's requests split between the sides with a binomial draw (new gets `weight` %);
 * - each request fails with 5XX with its side's rate, and with 4XX with its side's 4XX rate;
 * - each request's latency is lognormal: median `medianMs`, log-sd `sigma`.
 * The p99 and the slow counts come from that same per-request model without drawing every
 * request: the p99 is the nearest-rank order statistic X(k), k = ceil(0.99·n), drawn exactly
 * through U(k) ~ Beta(k, n−k+1) (two gamma draws) and the lognormal quantile; the count of
 * requests slower than L is then drawn conditionally on X(k): the n−k requests above X(k) are
 * i.i.d. on (X(k), ∞) and the k−1 below it i.i.d. on (0, X(k)), so the count is a binomial on the
 * right part (plus n−k+1 when L < X(k)). p99 and slow counts are therefore jointly consistent
 * with one sample of n requests, for any L, whatever n; the only approximations are the normal
 * CDF and quantile routines (errors below 1e-7).
 *
 * Reproducibility: every draw comes from its own mulberry32 stream seeded by a hash of
 * (seed, cell, run, window, weight on the new side, side, purpose). So the same seed gives the same
 * per-window counts to every policy that has the same weight in that window, and a draw never
 * depends on which other draws were made before it (e.g. on whether the judge asked for slow counts).
 */
import { seededRandom, type RandomSource } from '../../local/random';

// ---------------------------------------------------------------------------------------------
// Seeding

/** 32-bit hash of a sequence of integers (murmur3's finaliser applied per part). */
export function mix(...parts: readonly number[]): number {
  let h = 0x9e3779b9;
  for (const part of parts) {
    h = Math.imul(h ^ (part >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** 32-bit FNV-1a hash of a string (cell ids). */
export function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export function stream(...parts: readonly number[]): RandomSource {
  return seededRandom(mix(...parts));
}

// ---------------------------------------------------------------------------------------------
// Distributions

/** Standard normal draw (Box–Muller, one value per call). */
export function normal(rng: RandomSource): number {
  const u1 = Math.max(rng(), 1e-300);
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * rng());
}

/** Gamma(shape, 1) (Marsaglia–Tsang; boosted for shape < 1). Exact. */
export function gamma(shape: number, rng: RandomSource): number {
  if (shape < 1) return gamma(shape + 1, rng) * Math.pow(Math.max(rng(), 1e-300), 1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = normal(rng);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = rng();
    if (u < 1 - 0.0331 * x * x * x * x) return d * v;
    if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

/** Beta(a, b) from two gamma draws. Exact. */
export function beta(a: number, b: number, rng: RandomSource): number {
  const x = gamma(a, rng);
  return x / (x + gamma(b, rng));
}

/**
 * Binomial(n, p), exact: inversion of the CDF when n·p < 30, otherwise Knuth's beta splitting
 * (the a-th order statistic of n uniforms splits the problem in two smaller binomials).
 */
export function binomial(n: number, p: number, rng: RandomSource): number {
  if (n <= 0 || p <= 0) return 0;
  if (p >= 1) return n;
  if (p > 0.5) return n - binomial(n, 1 - p, rng);
  if (n * p < 30) {
    let k = 0;
    let prob = Math.pow(1 - p, n);
    let cdf = prob;
    const u = rng();
    const ratio = p / (1 - p);
    while (u > cdf && k < n) {
      prob *= ((n - k) / (k + 1)) * ratio;
      k++;
      cdf += prob;
    }
    return k;
  }
  const a = 1 + (n >> 1);
  const b = n + 1 - a;
  const x = beta(a, b, rng);
  return x >= p ? binomial(a - 1, p / x, rng) : a + binomial(b - 1, (p - x) / (1 - x), rng);
}

/** Standard normal CDF (erfc of Numerical Recipes' Chebyshev fit, relative error < 1.2e-7). */
export function normalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * z);
  const erfc =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? 1 - erfc / 2 : erfc / 2;
}

/** Standard normal quantile (Acklam's rational approximation, relative error < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (p <= 0) return -Infinity;
  if (p >= 1) return Infinity;
  const a = [-39.69683028665376, 220.9460984245205, -275.928510446969, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const low = 0.02425;
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  if (p > 1 - low) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
}

// ---------------------------------------------------------------------------------------------
// One side, one window

/** How one side behaves in one window. */
export interface SideModel {
  /** Share of requests answered with 5XX (0–1). */
  readonly rate5xx: number;
  /** Share of requests answered with 4XX (0–1). */
  readonly rate4xx: number;
  /** Median latency, ms. */
  readonly medianMs: number;
  /** Log-standard deviation of the lognormal latency. */
  readonly sigma: number;
}

/** The true p-quantile of a side's latency distribution, ms. */
export function latencyQuantile(model: SideModel, p: number): number {
  return model.medianMs * Math.exp(model.sigma * normalQuantile(p));
}

/** One side's counts in one window. */
export interface SideDraw {
  readonly requests: number;
  readonly errors5xx: number;
  readonly errors4xx: number;
  /** Nearest-rank p99 of the window's requests, ms; undefined without requests. */
  readonly p99Ms: number | undefined;
  /** Requests slower than `thresholdMs` (consistent with `p99Ms`; see the header). */
  slowerThan(thresholdMs: number): number;
}

const TAG_SIDE = { old: 11, new: 13 } as const;
const TAG_COUNTS = 1;
const TAG_SLOW = 2;

function drawSide(n: number, model: SideModel, seedParts: readonly number[]): SideDraw {
  const rng = stream(...seedParts, TAG_COUNTS);
  const errors5xx = binomial(n, model.rate5xx, rng);
  const errors4xx = binomial(n, model.rate4xx, rng);
  if (n <= 0) return { requests: 0, errors5xx: 0, errors4xx: 0, p99Ms: undefined, slowerThan: () => 0 };
  const k = Math.ceil(0.99 * n);
  // U(k) ~ Beta(k, n-k+1): the uniform behind the k-th smallest latency.
  const u = beta(k, n - k + 1, rng);
  const mu = Math.log(model.medianMs);
  const p99Ms = Math.exp(mu + model.sigma * normalQuantile(u));
  const slow = new Map<number, number>();
  return {
    requests: n,
    errors5xx,
    errors4xx,
    p99Ms,
    slowerThan(thresholdMs: number): number {
      const cached = slow.get(thresholdMs);
      if (cached !== undefined) return cached;
      const r = stream(...seedParts, TAG_SLOW, Math.round(thresholdMs * 1000));
      const fL = thresholdMs <= 0 ? 0 : normalCdf((Math.log(thresholdMs) - mu) / model.sigma);
      let count: number;
      if (thresholdMs >= p99Ms) {
        // Above X(k): n−k requests, each above L with P(X > L | X > X(k)).
        count = binomial(n - k, u >= 1 ? 0 : Math.max(0, (1 - fL) / (1 - u)), r);
      } else {
        // X(k) itself and the n−k above it are all slower than L; of the k−1 below, each is
        // above L with P(L < X | X < X(k)).
        count = n - k + 1 + binomial(k - 1, u <= 0 ? 0 : Math.min(1, Math.max(0, (u - fL) / u)), r);
      }
      slow.set(thresholdMs, count);
      return count;
    },
  };
}

/** Both sides of one window. */
export interface WindowDraw {
  /** Weight on the new side during the window, %. */
  readonly weight: number;
  readonly old: SideDraw;
  readonly new: SideDraw;
}

/** What a window looks like: the requests it carries and how each side behaves. */
export interface WindowModel {
  readonly requests: number;
  readonly old: SideModel;
  readonly new: SideModel;
}

const TAG_SPLIT = 3;

/**
 * Draws one window. `base` identifies (seed, cell, run); the draw depends only on
 * (base, window, weight) and the model.
 */
export function drawWindow(base: number, window: number, weight: number, model: WindowModel): WindowDraw {
  const w = Math.round(weight * 1000);
  const nNew = weight >= 100 ? model.requests : weight <= 0 ? 0 : binomial(model.requests, weight / 100, stream(base, window, w, TAG_SPLIT));
  return {
    weight,
    old: drawSide(model.requests - nNew, model.old, [base, window, w, TAG_SIDE.old]),
    new: drawSide(nNew, model.new, [base, window, w, TAG_SIDE.new]),
  };
}

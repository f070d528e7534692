/**
 * A seeded pseudo-random source for the local adapters, so that a rehearsal or a test that
 * passes a seed sees the same routing decisions and request mix on every run.
 */

/** A function returning uniformly distributed numbers in [0, 1), like `Math.random`. */
export type RandomSource = () => number;

/**
 * Returns a seeded generator (mulberry32). Hand-written because no seeded PRNG package is among
 * the pinned dependencies and `Math.random` cannot be seeded; mulberry32 is a published 32-bit
 * generator that is plenty for traffic splits and request mixes (not for cryptography).
 */
export function seededRandom(seed: number): RandomSource {
  if (!Number.isInteger(seed)) throw new RangeError(`seed must be an integer, got ${String(seed)}`);
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

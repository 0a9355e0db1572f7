// Deterministic test data, so a failure names a reproducible seed.

/** A xorshift32 stream; the seed is mixed first so that nearby seeds give unrelated data. */
export function xorshift32(seed: number): () => number {
  let x = Math.imul(seed, 2654435761) >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/**
 * `n` pseudo-random bytes from `seed`. With `alphabet` < 256 the bytes are `base` ..
 * `base + alphabet - 1`: low-entropy, repetitive data with many weak-sum ties.
 */
export function seededBytes(n: number, seed: number, alphabet = 256, base = 0): Buffer {
  const next = xorshift32(seed);
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) {
    const x = next();
    out[i] = alphabet === 256 ? x & 0xff : base + (x % alphabet);
  }
  return out;
}

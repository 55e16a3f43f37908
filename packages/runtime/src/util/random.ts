import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';

/** A seeded source of uniform numbers in [0, 1): the same seed gives the same run. */
export function seededRandom(seed: number): () => number {
  const rng = xoroshiro128plus(seed);
  return () => uniformFloat64(rng);
}

/** A seeded source of integers in [min, max]. */
export function seededInts(seed: number): (min: number, max: number) => number {
  const rng = xoroshiro128plus(seed);
  return (min, max) => uniformInt(rng, min, max);
}

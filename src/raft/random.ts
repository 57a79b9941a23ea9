/**
 * A small seeded generator (SplitMix32-style) so that the core and the
 * simulation never call Math.random(): one seed replays a whole run.
 */
export interface RandomSource {
  /** An integer in [0, n). */
  intBelow(n: number): number;
}

export class SeededRandom implements RandomSource {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number {
    this.state = (this.state + 0x9e3779b9) | 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    return this.nextUint32() / 0x1_0000_0000;
  }

  intBelow(n: number): number {
    return Math.floor(this.next() * n);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("pick from an empty list");
    return items[this.intBelow(items.length)]!;
  }

  /** A new independent generator derived from this one. */
  fork(): SeededRandom {
    return new SeededRandom(this.nextUint32());
  }
}

// SPDX-License-Identifier: MIT
/**
 * {@link SlotTable}: what a ring has in flight, indexed by the user_data
 * its records carry, with no Map and no allocation per request.
 *
 * user_data = slot + generation * 2^32: the record's low word indexes an
 * array, the high word must match the slot's current generation, so a
 * record for a request that is gone (a slot reused since) finds nothing.
 * Generations start at 1, so user_data is never 0, and stay below 2^21
 * (user_data is a safe integer, passed to C as uint64_t).
 * @internal
 */
const GEN_LIMIT = 1 << 21;
const WORD = 2 ** 32;

/** 1, 2, ..., GEN_LIMIT - 1, 1, ...: no integer division (two per request otherwise). */
function nextGen(g: number): number {
  return g + 1 < GEN_LIMIT ? g + 1 : 1;
}

export class SlotTable<T> {
  #items: (T | undefined)[] = [];
  #gens: number[] = [];
  #free: number[] = [];
  #size = 0;

  /** Items held. */
  get size(): number {
    return this.#size;
  }

  /** Hold v; returns the user_data that finds it again. */
  add(v: T): number {
    const s = this.addSlot(v);
    return s + this.#gens[s]! * WORD;
  }

  /**
   * Hold v; returns its slot, the user_data's low word (the high word is
   * generation(slot)): no double arithmetic for callers that write the two
   * words themselves.
   */
  addSlot(v: T): number {
    let s = this.#free.pop();
    if (s === undefined) {
      s = this.#items.length;
      this.#items.push(undefined);
      this.#gens.push(0);
    }
    this.#gens[s] = nextGen(this.#gens[s]!);
    this.#items[s] = v;
    this.#size++;
    return s;
  }

  /** The current generation of slot s (user_data's high word). */
  generation(s: number): number {
    return this.#gens[s]!;
  }

  /** The item of user_data (lo = slot, hi = generation), undefined if stale. */
  get(lo: number, hi: number): T | undefined {
    return this.#gens[lo] === hi ? this.#items[lo] : undefined;
  }

  /** Forget the item in slot lo (a later record for it finds nothing). */
  delete(lo: number): void {
    if (this.#items[lo] === undefined) return;
    this.#items[lo] = undefined;
    this.#gens[lo] = nextGen(this.#gens[lo]!);
    this.#free.push(lo);
    this.#size--;
  }

  /** Every item held, in slot order. */
  values(): T[] {
    return this.#items.filter((v): v is T => v !== undefined);
  }

  /** Forget everything. */
  clear(): void {
    for (let s = 0; s < this.#items.length; s++) if (this.#items[s] !== undefined) this.delete(s);
  }
}

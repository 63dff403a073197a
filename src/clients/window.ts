// A sliding window of one minute over one-second slots: what a client used, per slot. A slot counts
// from its start until 61 s later, so any 60 s span sees at most the limit (a use is never forgotten
// early), and a client at its limit gets 60 per 60–61 s.

/** Slots a use is counted in: its own and the 60 after it. */
export const WINDOW_SLOTS = 61;
export const SLOT_MS = 1000;

export const slotOf = (wallMs: number): number => Math.floor(wallMs / SLOT_MS);

/** Counts per slot; slots older than the window read as empty and are reused. */
export class SlotWindow {
  readonly #slots = new Float64Array(WINDOW_SLOTS).fill(-1);
  readonly #counts = new Float64Array(WINDOW_SLOTS);

  /** Adds `amount` (negative to settle an estimate) to `slot`, when that slot is still in the window of `nowSlot`. */
  add(slot: number, amount: number, nowSlot: number): void {
    if (slot <= nowSlot - WINDOW_SLOTS || slot > nowSlot) return;
    const index = slot % WINDOW_SLOTS;
    if (this.#slots[index] !== slot) {
      this.#slots[index] = slot;
      this.#counts[index] = 0;
    }
    this.#counts[index] = (this.#counts[index] as number) + amount;
  }

  /** Replaces the count of `slot` (what another replica's share is known to be). */
  set(slot: number, amount: number): void {
    const index = slot % WINDOW_SLOTS;
    this.#slots[index] = slot;
    this.#counts[index] = amount;
  }

  /** The count of one slot (0 when it is not in the window). */
  at(slot: number): number {
    const index = slot % WINDOW_SLOTS;
    return this.#slots[index] === slot ? (this.#counts[index] as number) : 0;
  }

  /** Total over the window of `nowSlot` (never below 0: settled estimates may overshoot downwards). */
  total(nowSlot: number): number {
    let sum = 0;
    for (let index = 0; index < WINDOW_SLOTS; index++) {
      const slot = this.#slots[index] as number;
      if (slot > nowSlot - WINDOW_SLOTS && slot <= nowSlot) sum += this.#counts[index] as number;
    }
    return Math.max(0, sum);
  }

  /**
   * When enough slots have left the window for `needed` more to fit under `limit` (wall ms), given the
   * slots of `others` too; undefined when they never will.
   */
  freesAt(nowSlot: number, limit: number, needed: number, others?: SlotWindow): number | undefined {
    let excess = this.total(nowSlot) + (others?.total(nowSlot) ?? 0) + needed - limit;
    for (let slot = nowSlot - WINDOW_SLOTS + 1; slot <= nowSlot && excess > 0; slot++) {
      excess -= this.at(slot) + (others?.at(slot) ?? 0);
      if (excess <= 0) return (slot + WINDOW_SLOTS) * SLOT_MS;
    }
    return excess <= 0 ? nowSlot * SLOT_MS : undefined;
  }

  /** When the newest counted slot leaves the window (wall ms), or undefined when the window is empty. */
  emptyAt(nowSlot: number, others?: SlotWindow): number | undefined {
    for (let slot = nowSlot; slot > nowSlot - WINDOW_SLOTS; slot--) {
      if (this.at(slot) + (others?.at(slot) ?? 0) > 0) return (slot + WINDOW_SLOTS) * SLOT_MS;
    }
    return undefined;
  }
}

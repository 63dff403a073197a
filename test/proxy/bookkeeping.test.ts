import { afterEach, describe, expect, it, vi } from "vitest";
import { createBookkeeping } from "../../src/proxy/bookkeeping.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const nextCheckPhase = () => new Promise((resolve) => setImmediate(resolve));

describe("bookkeeping", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("runs queued tasks in order, a moment later, on its own", async () => {
    const ran: number[] = [];
    const bookkeeping = createBookkeeping(() => undefined);
    bookkeeping.later(() => ran.push(1));
    bookkeeping.later(() => ran.push(2));
    expect(ran).toEqual([]);
    await sleep(30);
    expect(ran).toEqual([1, 2]);
  });

  it("runs queued tasks in the caller's wait for its upstream, without waiting for the timer", async () => {
    // Only setTimeout is faked, so the timer never fires here: what runs, runs because of `waiting`.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const ran: number[] = [];
    const bookkeeping = createBookkeeping(() => undefined);
    bookkeeping.later(() => ran.push(1));
    await nextCheckPhase();
    expect(ran).toEqual([]);
    bookkeeping.waiting();
    expect(ran).toEqual([]);
    await nextCheckPhase();
    expect(ran).toEqual([1]);
    bookkeeping.waiting();
    bookkeeping.later(() => ran.push(2));
    await nextCheckPhase();
    expect(ran).toEqual([1]);
  });

  it("runs everything at once on flush, tasks queued meanwhile included", () => {
    const ran: string[] = [];
    const bookkeeping = createBookkeeping(() => undefined);
    bookkeeping.later(() => {
      ran.push("metrics");
      bookkeeping.later(() => ran.push("log"));
    });
    bookkeeping.flush();
    expect(ran).toEqual(["metrics", "log"]);
  });

  it("reports a task that throws and still runs the others", () => {
    const errors: unknown[] = [];
    const ran: number[] = [];
    const bookkeeping = createBookkeeping((error) => errors.push(error));
    bookkeeping.later(() => {
      throw new Error("broken metric");
    });
    bookkeeping.later(() => ran.push(2));
    bookkeeping.flush();
    expect(ran).toEqual([2]);
    expect(errors).toEqual([new Error("broken metric")]);
  });
});

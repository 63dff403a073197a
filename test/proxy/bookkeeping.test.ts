import { describe, expect, it } from "vitest";
import { createBookkeeping } from "../../src/proxy/bookkeeping.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("bookkeeping", () => {
  it("runs queued tasks in order, a moment later, on its own", async () => {
    const ran: number[] = [];
    const bookkeeping = createBookkeeping(() => undefined);
    bookkeeping.later(() => ran.push(1));
    bookkeeping.later(() => ran.push(2));
    expect(ran).toEqual([]);
    await sleep(30);
    expect(ran).toEqual([1, 2]);
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

import { describe, expect, it } from "vitest";
import { ShutdownSignal } from "../../src/proxy/protections.js";

describe("ShutdownSignal", () => {
  it("cuts exactly the listeners still registered, whatever order they left in", () => {
    const signal = new ShutdownSignal();
    const called: string[] = [];
    const subscriptions = ["a", "b", "c", "d", "e"].map((name) => signal.on(() => called.push(name)));
    const [a, b, , d, e] = subscriptions;
    signal.off(b!);
    signal.off(e!);
    signal.off(a!);
    signal.off(a!);
    const f = signal.on(() => called.push("f"));
    signal.off(d!);
    signal.cutAll();
    expect(called.sort()).toEqual(["c", "f"]);
    expect(signal.cut).toBe(true);
    signal.off(f);
    called.length = 0;
    signal.cutAll();
    expect(called).toEqual(["c"]);
  });
});

// A request's attempts in flight. A round is one attempt on a candidate and, when the decision asks for
// it and that attempt has not delivered by the hedge delay, a hedge beside it (DESIGN.md "Hedging"). The
// first to deliver content (streams) or its answer (non-streams) answers the client; the other is
// cancelled at once, its upstream aborted, and still teaches the brain.
import { performance } from "node:perf_hooks";
import type { Brain } from "../router/brain.js";
import type { CatalogModel } from "../router/types.js";
import type { AttemptEvents, AttemptServed, AttemptSpec } from "./attempt.js";
import { upstreamBody } from "./chat-request.js";
import { writeJsonAnswer } from "./client-sse.js";
import type { ChatExchange } from "./executor.js";
import type { AttemptFailure } from "./failures.js";
import { JsonAttempt, type JsonAnswer, type JsonResult } from "./json-attempt.js";
import type { RequestPlan } from "./plan.js";
import { ShutdownError, type AttemptLimits } from "./protections.js";
import type { AttemptRecorder } from "./recorder.js";
import { StreamAttempt, type StreamResult } from "./stream-attempt.js";
import { ClientGoneError, SupersededError, type UpstreamProvider } from "./upstream.js";

/** How a round ended: the attempt that served the client, or every attempt's failure. */
export interface RoundResult {
  readonly served: AttemptServed | undefined;
  readonly failed: ReadonlyArray<{ readonly model: CatalogModel; readonly failure: AttemptFailure }>;
}

type Result = StreamResult | JsonResult;

/** One attempt in flight, and what it tells the race as it runs. */
class Launched implements AttemptEvents {
  readonly attempt: StreamAttempt | JsonAttempt;
  /** Abandoned because another attempt delivered first: its result is recorded, not awaited. */
  superseded = false;
  failed = false;

  constructor(
    private readonly race: Race,
    readonly model: CatalogModel,
    readonly probe: boolean,
    readonly hedge: boolean,
    spec: (events: AttemptEvents) => StreamAttempt | JsonAttempt,
  ) {
    this.attempt = spec(this);
  }

  addOverhead(ms: number): void {
    this.race.recorder.addOverhead(ms);
  }

  firstContent(ttftMs: number, learn: boolean): boolean {
    if (learn) this.race.recorder.firstContent(this.model, ttftMs, this.probe);
    return this.race.claim(this);
  }

  committed(atMs: number): void {
    this.race.recorder.committed(this.model, atMs);
  }

  late(elapsedMs: number): void {
    this.race.recorder.late(this.model, elapsedMs);
  }
}

export class Race {
  /** Models tried by this request: none is tried twice. */
  readonly tried = new Set<string>();
  /** Every failure so far, for the final status. */
  readonly failures: AttemptFailure[] = [];
  clientGone = false;
  /** A drain ran out of time: the request ends now, with a 503 or an error event. */
  shutDown = false;
  #running: Launched[] = [];
  #winner: Launched | undefined;
  #hedge: Launched | undefined;
  /** A hedge was sent for this request (`x-subsecond-hedged`). */
  #hedged = false;
  #hedgeTimer: NodeJS.Timeout | undefined;
  #roundStartedAt = 0;
  readonly #settled: { readonly launched: Launched; readonly result: Result }[] = [];
  #wake: (() => void) | undefined;

  constructor(
    private readonly brain: Brain,
    readonly recorder: AttemptRecorder,
    private readonly exchange: ChatExchange,
    private readonly plan: RequestPlan,
    readonly provider: (model: CatalogModel) => UpstreamProvider | undefined,
    private readonly limits: AttemptLimits,
  ) {}

  /**
   * Runs an attempt on `model` until it serves the client or fails; with `hedgeAfterMs`, a hedge goes
   * out if it has not delivered by then. Every attempt of the round is recorded when it ends.
   */
  async run(model: CatalogModel, provider: UpstreamProvider, probe: boolean, budgetEnd: number, hedgeAfterMs: number | undefined): Promise<RoundResult> {
    const failed: { model: CatalogModel; failure: AttemptFailure }[] = [];
    this.#roundStartedAt = performance.now();
    this.#launch(model, provider, probe, false, budgetEnd);
    this.recorder.countDecision();
    if (hedgeAfterMs !== undefined) this.#hedgeTimer = setTimeout(() => this.#hedgeDue(probe, budgetEnd), hedgeAfterMs);
    try {
      while (this.#running.length > 0) {
        const { launched, result } = await this.#next();
        this.#running = this.#running.filter((running) => running !== launched);
        if (result.kind === "answer") return { served: this.#answer(launched, result), failed };
        this.recorder.attemptFinished(this.stopped && result.kind === "failed" ? { ...result.record, outcome: "cancelled" } : result.record);
        if (result.kind === "served") return { served: result, failed };
        launched.failed = true;
        this.failures.push(result.failure);
        failed.push({ model: launched.model, failure: result.failure });
      }
      return { served: undefined, failed };
    } finally {
      clearTimeout(this.#hedgeTimer);
      this.#endRound();
    }
  }

  /** The client left or the gateway is shutting down: no further attempt starts. */
  get stopped(): boolean {
    return this.clientGone || this.shutDown;
  }

  /** The drain ran out of time: every attempt in flight is aborted. */
  readonly onShutdown = (): void => {
    this.shutDown = true;
    for (const running of this.#running) running.attempt.call.abort(new ShutdownError());
  };

  /** The client left: every attempt in flight is aborted. */
  readonly onClientClose = (): void => {
    if (this.exchange.outgoing.writableFinished) return;
    this.clientGone = true;
    for (const running of this.#running) running.attempt.call.abort(new ClientGoneError());
  };

  /** A stream's first content: the first attempt to get there answers the client, the others are cancelled. */
  claim(launched: Launched): boolean {
    if (this.#winner !== undefined || launched.superseded) return false;
    this.#win(launched);
    return true;
  }

  #launch(model: CatalogModel, provider: UpstreamProvider, probe: boolean, hedge: boolean, budgetEnd: number): void {
    const { exchange, plan, limits } = this;
    this.tried.add(model.id);
    this.recorder.started(model, probe, hedge);
    const remainingMs = budgetEnd - performance.now();
    const launched = new Launched(this, model, probe, hedge, (events) => {
      const spec: AttemptSpec = {
        model,
        provider,
        body: upstreamBody(exchange.body, exchange.request, model.upstreamModel),
        passHeaders: this.recorder.upstreamHeaders(model, exchange.passHeaders),
        probe,
        events,
        responseHeaders: () => this.#routingHeaders(model),
      };
      const { deadlines, target } = plan;
      return exchange.profile.stream
        ? new StreamAttempt({
            ...spec,
            outgoing: exchange.outgoing,
            firstTokenMs: Math.min(deadlines.firstTokenMs, remainingMs),
            idleMs: deadlines.idleMs,
            streamTotalMs: deadlines.streamTotalMs,
            lateAfterMs: target.metric === "ttft" ? target.ms : undefined,
            eventLimitBytes: limits.eventLimitBytes,
            slowReaderGraceMs: limits.slowReaderGraceMs,
            clientWantsUsage: exchange.request.stream_options?.include_usage === true,
            scrubber: exchange.scrubber,
          })
        : new JsonAttempt({ ...spec, totalMs: Math.min(deadlines.totalMs, remainingMs), limits });
    });
    if (hedge) {
      this.#hedge = launched;
      this.#hedged = true;
    }
    this.#running.push(launched);
    void launched.attempt.run().then((result: Result) => this.#onSettled(launched, result));
  }

  /** The hedge delay passed and the round's attempt has not delivered: send a hedge, if the budget allows. */
  #hedgeDue(probe: boolean, budgetEnd: number): void {
    this.#hedgeTimer = undefined;
    const policy = this.plan.policy;
    if (policy === undefined || this.#winner !== undefined || this.stopped || this.#running.length === 0) return;
    if (this.recorder.attempts >= this.plan.maxAttempts || budgetEnd - performance.now() <= 0) return;
    const choice = this.brain.hedge(policy, this.exchange.profile, this.tried, performance.now() - this.#roundStartedAt, probe);
    if ("refused" in choice) {
      if (choice.refused === "over_budget") this.recorder.hedge("over_budget");
      return;
    }
    const provider = this.provider(choice.model);
    if (provider !== undefined) this.#launch(choice.model, provider, false, true, budgetEnd);
  }

  #win(launched: Launched): void {
    this.#winner = launched;
    clearTimeout(this.#hedgeTimer);
    for (const other of this.#running) {
      if (other === launched) continue;
      other.superseded = true;
      other.attempt.call.abort(new SupersededError());
    }
    this.#running = [launched];
    // Results of the others that arrived meanwhile are recorded as theirs, not awaited.
    for (let k = this.#settled.length - 1; k >= 0; k--) {
      const event = this.#settled[k] as { launched: Launched; result: Result };
      if (event.launched === launched) continue;
      this.#settled.splice(k, 1);
      this.#recordSuperseded(event.launched, event.result);
    }
  }

  /** A non-streamed answer: the first one is sent, with the routing headers. */
  #answer(launched: Launched, answer: JsonAnswer): AttemptServed {
    this.#win(launched);
    const { model, probe } = launched;
    const { outgoing } = this.exchange;
    writeJsonAnswer(outgoing, answer.bytes, answer.contentType, this.#routingHeaders(model));
    // Its bytes stay held until the client has them (or has gone).
    if (outgoing.writableFinished || outgoing.destroyed) answer.release();
    else outgoing.once("close", answer.release);
    const record = {
      model,
      probe,
      outcome: "ok" as const,
      totalMs: answer.totalMs,
      ...(answer.usage ? { usage: answer.usage } : {}),
      finishReasons: answer.finishReasons,
      responseModel: answer.responseModel,
    };
    this.recorder.attemptFinished(record);
    const endedAt = performance.now();
    this.recorder.addOverhead(endedAt - answer.receivedAt);
    return { kind: "served", outcome: "ok", status: 200, record, endedAt };
  }

  #onSettled(launched: Launched, result: Result): void {
    if (launched.superseded) {
      this.#recordSuperseded(launched, result);
      return;
    }
    this.#settled.push({ launched, result });
    this.#wake?.();
  }

  /** A cancelled loser: a complete answer still counts as one; otherwise it ran at least this long. */
  #recordSuperseded(launched: Launched, result: Result): void {
    if (result.kind === "answer") {
      result.release();
      const { model, probe } = launched;
      this.recorder.attemptFinished({
        model,
        probe,
        outcome: "ok",
        totalMs: result.totalMs,
        ...(result.usage ? { usage: result.usage } : {}),
        finishReasons: result.finishReasons,
        responseModel: result.responseModel,
      });
    } else if (result.kind === "failed") {
      this.recorder.attemptFinished({ ...result.record, outcome: "superseded", elapsedMs: result.elapsedMs });
    }
  }

  #next(): Promise<{ readonly launched: Launched; readonly result: Result }> {
    const ready = this.#settled.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise((resolve) => {
      this.#wake = () => {
        const event = this.#settled.shift();
        if (event === undefined) return;
        this.#wake = undefined;
        resolve(event);
      };
    });
  }

  /** Counts the round's hedge, if it sent one: won, lost, or failed. */
  #endRound(): void {
    const hedge = this.#hedge;
    this.#hedge = undefined;
    if (hedge === undefined || this.clientGone) return;
    this.recorder.hedge(this.#winner === hedge ? "won" : hedge.failed || this.#winner === undefined ? "failed" : "lost");
  }

  #routingHeaders(model: CatalogModel): Record<string, string> {
    const headers: Record<string, string> = {
      "x-request-id": this.exchange.requestId,
      "x-subsecond-route": this.plan.routeLabel,
      "x-subsecond-model": model.id,
      "x-subsecond-attempts": String(this.recorder.attempts),
      "x-subsecond-reason": this.recorder.reason,
    };
    if (this.#hedged) headers["x-subsecond-hedged"] = "1";
    return headers;
  }
}

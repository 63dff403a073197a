// The analytic side of the quality bench: each simulated model's true TTFT distribution at a moment of
// the story, and the choices (with expected attainment and cost) of the oracle and the reference policies.

/**
 * Complementary error function; W. J. Cody's rational Chebyshev form as given in Numerical Recipes
 * ("erfcc"), fractional error below 1.2e-7 everywhere.
 * @param {number} x
 */
function erfc(x) {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/** Standard normal CDF. @param {number} z */
export function normalCdf(z) {
  return 0.5 * erfc(-z / Math.SQRT2);
}

/** P(lognormal(median, sigma) ≤ x); sigma 0 is a point mass at the median. */
function lognormalCdf(x, median, sigma) {
  if (x <= 0) return 0;
  if (sigma === 0) return x >= median ? 1 : 0;
  return normalCdf((Math.log(x) - Math.log(median)) / sigma);
}

/**
 * @typedef {object} TtftDistribution  One model's time to first token at one moment, as the simulator
 *   draws it (src/sim/plan.ts): ((tail ? L·multiplier + addMs : L) + prefillMs) · driftMultiplier, with
 *   L lognormal(medianMs, sigma) and a tail with probability `tailProbability`. Milliseconds.
 * @property {number} medianMs
 * @property {number} sigma
 * @property {number} tailProbability
 * @property {number} tailMultiplier
 * @property {number} tailAddMs
 * @property {number} prefillMs
 * @property {number} driftMultiplier
 */

/**
 * The TTFT distribution of `profile` (a simulator model profile) for a prompt of `promptTokens`, under
 * `phase` (the simulator's phaseAt at that moment).
 * @returns {TtftDistribution}
 */
export function ttftDistribution(profile, phase, promptTokens) {
  return {
    medianMs: profile.ttft.medianMs,
    sigma: profile.ttft.sigma,
    tailProbability: profile.ttft.tail.probability,
    tailMultiplier: profile.ttft.tail.multiplier,
    tailAddMs: profile.ttft.tail.addMs ?? 0,
    prefillMs: (promptTokens / profile.prefillTokensPerSecond) * 1000,
    driftMultiplier: phase.ttftMultiplier,
  };
}

/** P(TTFT ≤ ms) of a distribution: the mixture of the ordinary and the tail lognormal. */
export function ttftCdf(dist, ms) {
  const queueMs = ms / dist.driftMultiplier - dist.prefillMs;
  const ordinary = lognormalCdf(queueMs, dist.medianMs, dist.sigma);
  if (dist.tailProbability === 0) return ordinary;
  const tail = lognormalCdf((queueMs - dist.tailAddMs) / dist.tailMultiplier, dist.medianMs, dist.sigma);
  return (1 - dist.tailProbability) * ordinary + dist.tailProbability * tail;
}

/**
 * The q-quantile of a TTFT distribution, by bisection on its CDF (to 0.01 ms).
 * @param {number} q in (0, 1)
 */
export function ttftQuantile(dist, q) {
  let lo = 0;
  let hi = 1000;
  while (ttftCdf(dist, hi) < q) hi *= 2;
  while (hi - lo > 0.01) {
    const mid = (lo + hi) / 2;
    if (ttftCdf(dist, mid) < q) lo = mid;
    else hi = mid;
  }
  return hi;
}

/**
 * Probability that one attempt on a model in `phase` fails before any first token: a 429, a 5xx or a
 * hang (the simulator draws these independently, in that order). Cuts come after content and do not count.
 */
export function faultBeforeFirstToken(phase) {
  const { rateLimit, serverError, hang } = phase.faults;
  return 1 - (1 - rateLimit.probability) * (1 - serverError.probability) * (1 - hang.probability);
}

/**
 * Expected completion tokens of a model's answer: E[min(maxTokens, clamp(round(X), 1, max))] with X
 * lognormal(median, sigma), as the simulator draws it; E[min(T, Y)] = Σ_{k=1..T} P(Y ≥ k).
 * @param {{ median: number, sigma: number, max: number }} outputTokens
 * @param {number | undefined} maxTokens
 */
export function expectedCompletionTokens(outputTokens, maxTokens) {
  const limit = Math.min(outputTokens.max, maxTokens ?? Number.POSITIVE_INFINITY);
  let sum = 0;
  for (let k = 1; k <= limit; k++) sum += k === 1 ? 1 : 1 - lognormalCdf(k - 0.5, outputTokens.median, outputTokens.sigma);
  return sum;
}

/**
 * @typedef {object} Candidate  A route candidate: catalog id and prices (USD per 1M tokens).
 * @property {string} id
 * @property {{ input: number, output: number }} pricePerMTok
 */

/**
 * @typedef {object} Option  One candidate as the oracle sees it for one request.
 * @property {string} id
 * @property {number} p95Ms        the route percentile's true TTFT quantile (named p95 for the default route)
 * @property {number} attainment   true P(one attempt delivers its first token within the target)
 * @property {number} costUsd      expected cost of the request on this model
 * @property {boolean} rateLimited more than (100 − percentile)% of its answers are 429s at this moment
 */

/** @typedef {{ id: string, attainment: number, costUsd: number }} Choice */

/**
 * Scores the candidates of one request at its send time and returns the choices of the three analytic
 * policies:
 * - oracle: the cheapest (expected cost; ties: the faster) among candidates whose true quantile at the
 *   route percentile meets the target and that are not rate limited; if none, the most likely to meet it;
 * - fastest: the lowest true quantile among candidates not rate limited;
 * - cheapest: the lowest expected cost among candidates not rate limited.
 * Each choice carries its expected attainment (no sampling) and expected cost.
 * @param {object} input
 * @param {readonly Candidate[]} input.candidates
 * @param {(id: string) => object} input.profileOf   simulator model profile
 * @param {(id: string) => object} input.phaseOf     simulator phase at the request's send time
 * @param {{ percentile: number, ms: number }} input.target
 * @param {number} input.promptTokens
 * @param {number | undefined} input.maxTokens
 * @param {(id: string, maxTokens: number | undefined) => number} input.completionTokensOf  expected output tokens
 * @returns {{ oracle: Choice, fastest: Choice, cheapest: Choice, options: Option[] }}
 */
export function chooseAnalytically({ candidates, profileOf, phaseOf, target, promptTokens, maxTokens, completionTokensOf }) {
  const quantile = target.percentile / 100;
  /** @type {Option[]} */
  const options = candidates.map((candidate) => {
    const phase = phaseOf(candidate.id);
    const dist = ttftDistribution(profileOf(candidate.id), phase, promptTokens);
    const costUsd = (promptTokens * candidate.pricePerMTok.input + completionTokensOf(candidate.id, maxTokens) * candidate.pricePerMTok.output) / 1e6;
    return {
      id: candidate.id,
      p95Ms: ttftQuantile(dist, quantile),
      attainment: ttftCdf(dist, target.ms) * (1 - faultBeforeFirstToken(phase)),
      costUsd,
      rateLimited: phase.faults.rateLimit.probability > 1 - quantile,
    };
  });
  const usable = options.filter((option) => !option.rateLimited);
  const pool = usable.length > 0 ? usable : options;
  const cheaper = (a, b) => (a.costUsd !== b.costUsd ? a.costUsd < b.costUsd : a.p95Ms < b.p95Ms);
  const best = (list, better) => list.reduce((a, b) => (better(b, a) ? b : a));
  const meeting = pool.filter((option) => option.p95Ms <= target.ms);
  const oracle = meeting.length > 0 ? best(meeting, cheaper) : best(pool, (a, b) => a.attainment > b.attainment);
  const fastest = best(pool, (a, b) => a.p95Ms < b.p95Ms);
  const cheapest = best(pool, cheaper);
  const choice = (option) => ({ id: option.id, attainment: option.attainment, costUsd: option.costUsd });
  return { oracle: choice(oracle), fastest: choice(fastest), cheapest: choice(cheapest), options };
}

/**
 * The price of a margin: the oracle's choices over `requests` when it demands each of `percentiles`
 * instead of the route's own (a model counts as meeting the target while its true quantile at that
 * percentile does). Per percentile: the mean attainment (as the route's target scores it) and the total
 * expected cost, both without sampling. A router that keeps a margin under the target can at best match
 * the oracle at the percentile its margin amounts to.
 * @param {object} input
 * @param {readonly Candidate[]} input.candidates
 * @param {(id: string) => object} input.profileOf                      simulator model profile
 * @param {(id: string, fraction: number) => object} input.phaseAt        simulator phase at a story fraction
 * @param {{ ms: number }} input.target
 * @param {readonly { fraction: number, promptTokens: number, maxTokens: number | undefined }[]} input.requests
 * @param {readonly number[]} input.percentiles
 * @param {(id: string, maxTokens: number | undefined) => number} input.completionTokensOf
 * @returns {{ percentile: number, attainment: number, costUsd: number }[]}
 */
export function oracleAtPercentiles({ candidates, profileOf, phaseAt, target, requests, percentiles, completionTokensOf }) {
  return percentiles.map((percentile) => {
    let attainment = 0;
    let costUsd = 0;
    for (const request of requests) {
      const { oracle } = chooseAnalytically({
        candidates,
        profileOf,
        phaseOf: (id) => phaseAt(id, request.fraction),
        target: { percentile, ms: target.ms },
        promptTokens: request.promptTokens,
        maxTokens: request.maxTokens,
        completionTokensOf,
      });
      attainment += oracle.attainment;
      costUsd += oracle.costUsd;
    }
    return { percentile, attainment: requests.length > 0 ? attainment / requests.length : Number.NaN, costUsd };
  });
}

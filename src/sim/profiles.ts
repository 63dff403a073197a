// Schema and loader of config/sim-profiles.yaml: per-model latency behaviour and the scripted story of drift and faults.
import * as z from "zod";
import { InvalidFileError, parseYaml, readTextFile, zodIssues, type FileIssue } from "../config/yaml-file.js";

const probability = z.number().min(0).max(1).describe("Probability per request, 0..1");
const fraction = z.number().min(0).max(1).describe("Fraction of the story duration, 0..1");

/** A 429 fault: the request is refused quickly with `Retry-After`. */
export const RateLimitFaultSchema = z.strictObject({
  probability,
  retryAfterSeconds: z.number().int().min(0).default(1).describe("Value of the Retry-After header, in seconds"),
});

/** A 5xx fault, answered before any byte of the body. */
export const ServerErrorFaultSchema = z.strictObject({
  probability,
  statuses: z.array(z.number().int().min(500).max(599)).min(1).default([500, 502, 503]).describe("Statuses to pick from, uniformly"),
});

/** How a hung request behaves: `no-headers` never answers; `no-first-token` sends headers (and, when streaming, the role-only delta) and then nothing. */
export const HangModeSchema = z.enum(["no-headers", "no-first-token"]);

/** A hang: the socket stays open until the client gives up or the simulator closes. */
export const HangFaultSchema = z.strictObject({
  probability,
  modes: z.array(HangModeSchema).min(1).default(["no-headers", "no-first-token"]).describe("Hang modes to pick from, uniformly"),
});

/** A cut: the connection is destroyed after some content, with no finish_reason and no [DONE]. */
export const CutFaultSchema = z.strictObject({ probability });

/** Fault probabilities; an absent kind means "never" (or "inherit", for a model's own `faults`). */
export const FaultsSchema = z.strictObject({
  rateLimit: RateLimitFaultSchema.optional(),
  serverError: ServerErrorFaultSchema.optional(),
  hang: HangFaultSchema.optional(),
  cut: CutFaultSchema.optional(),
});

/** Time to first token: lognormal around `medianMs`, plus a rare much slower tail. */
export const TtftProfileSchema = z.strictObject({
  medianMs: z.number().positive().describe("Median time to first token for a tiny prompt, in milliseconds"),
  sigma: z.number().min(0).max(3).default(0.3).describe("Standard deviation of ln(TTFT); p95 ≈ median × e^(1.645·sigma)"),
  tail: z
    .strictObject({
      probability: probability.default(0),
      multiplier: z.number().min(1).default(1).describe("TTFT multiplier of a tail request"),
      addMs: z.number().min(0).default(0).describe("Milliseconds added to a tail request's TTFT, after its multiplier (before prefill and drift)"),
    })
    .prefault({})
    .describe("A small share of requests whose first token is much later (queueing, cold replicas)"),
});

/** Decode speed once the first token is out. */
export const TokensPerSecondSchema = z.strictObject({
  mean: z.number().positive().describe("Mean output tokens per second"),
  jitter: z.number().min(0).max(1).default(0.1).describe("Relative standard deviation, per request and per chunk"),
});

/** How long answers are when `max_tokens` does not cut them. */
export const OutputTokensSchema = z.strictObject({
  median: z.number().int().positive().describe("Median answer length, in tokens"),
  sigma: z.number().min(0).max(3).default(0.5).describe("Standard deviation of ln(length)"),
  max: z.number().int().positive().default(4096).describe("Hard cap on a sampled length, in tokens"),
});

/** Latency behaviour of one simulated model. */
export const ModelProfileSchema = z.strictObject({
  id: z.string().min(1).describe("Model id, as clients send it in `model` (the catalog ids of config/gateway.yaml)"),
  ttft: TtftProfileSchema,
  prefillTokensPerSecond: z
    .number()
    .positive()
    .default(10000)
    .describe("Prompt processing speed: a prompt of N tokens adds N / prefillTokensPerSecond seconds to TTFT"),
  tokensPerSecond: TokensPerSecondSchema,
  outputTokens: OutputTokensSchema,
  prefill: z
    .boolean()
    .default(false)
    .describe(
      "The model continues a trailing assistant message (its answer goes on from that text); otherwise such a request is refused with a 400 about prefill",
    ),
  faults: FaultsSchema.default({}).describe("Background fault rates of this model; each kind given replaces the top-level default"),
});

/** A scripted episode: drift and/or faults on some models during [from, to) of the story. */
export const EpisodeSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/, "letters, digits, '.', '_' and '-' only (it is sent in the x-sim-episodes header)")
    .describe("Shown by the demo and in the x-sim-episodes response header"),
  models: z.union([z.literal("*"), z.array(z.string().min(1)).min(1)]).describe('Model ids, or "*" for all'),
  from: fraction,
  to: fraction,
  ramp: fraction.default(0).describe("Linear ramp in and out, as a fraction of the story; 0 = a step"),
  ttftMultiplier: z.number().positive().default(1).describe("Multiplies time to first token (prefill included)"),
  tokensPerSecondMultiplier: z.number().positive().default(1).describe("Multiplies decode speed"),
  faults: FaultsSchema.default({}).describe("Raises these fault probabilities to at least the given values while active"),
});

/** The whole file. */
export const SimProfilesSchema = z
  .strictObject({
    story: z
      .strictObject({
        durationMs: z.number().int().positive().default(120000).describe("Default story length, in milliseconds (`--duration` overrides)"),
        loop: z.boolean().default(true).describe("Start the story again after its end; otherwise every episode is over"),
        tokensPerChunk: z.number().int().min(1).max(64).default(3).describe("Content tokens per streamed chunk"),
      })
      .prefault({}),
    faults: FaultsSchema.default({}).describe("Background fault rates of every model"),
    models: z.array(ModelProfileSchema).min(1),
    timeline: z.array(EpisodeSchema).default([]),
  })
  .superRefine((profiles, ctx) => {
    const seen = new Set<string>();
    profiles.models.forEach((model, index) => {
      if (seen.has(model.id)) ctx.addIssue({ code: "custom", path: ["models", index, "id"], message: `duplicate model id "${model.id}"` });
      seen.add(model.id);
    });
    profiles.timeline.forEach((episode, index) => {
      if (episode.to <= episode.from) ctx.addIssue({ code: "custom", path: ["timeline", index, "to"], message: "must be greater than `from`" });
      if (episode.ramp * 2 > episode.to - episode.from + 1e-9) {
        ctx.addIssue({ code: "custom", path: ["timeline", index, "ramp"], message: "ramp in plus ramp out must fit inside [from, to)" });
      }
      if (episode.models !== "*") {
        episode.models.forEach((id, modelIndex) => {
          if (!seen.has(id)) ctx.addIssue({ code: "custom", path: ["timeline", index, "models", modelIndex], message: `unknown model "${id}"` });
        });
      }
    });
  });

/** The validated profiles file, defaults applied. */
export type SimProfiles = z.output<typeof SimProfilesSchema>;
/** What may be written in the file (defaults not yet applied). */
export type SimProfilesInput = z.input<typeof SimProfilesSchema>;
/** One model's latency behaviour (times in milliseconds, speeds in tokens per second). */
export type ModelProfile = z.output<typeof ModelProfileSchema>;
/** One scripted episode; `from`, `to` and `ramp` are fractions of the story duration. */
export type Episode = z.output<typeof EpisodeSchema>;
/** Fault settings as written (each kind optional); probabilities are per request, 0..1. */
export type Faults = z.output<typeof FaultsSchema>;
/** `no-headers` or `no-first-token`. */
export type HangMode = z.output<typeof HangModeSchema>;

/** One problem in a profiles file, e.g. `{ path: "models[8] (qwen/qwen3.5-flash-02-23).ttft.medianMs", message }`. */
export type SimProfilesIssue = FileIssue;

/** A profiles file that cannot be used; `issues` lists every problem with its field path. */
export class SimProfilesError extends InvalidFileError {
  constructor(source: string, issues: readonly SimProfilesIssue[]) {
    super("sim_profiles_invalid", source, issues);
    this.name = "SimProfilesError";
  }
}

/** Validates an already-parsed document. Throws `SimProfilesError` naming every bad field. */
export function parseSimProfiles(input: unknown, source = "sim-profiles"): SimProfiles {
  const parsed = SimProfilesSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  throw new SimProfilesError(source, zodIssues(parsed.error, input));
}

/** Parses YAML text (syntax errors carry line and column), then validates it. Throws `SimProfilesError`. */
export function parseSimProfilesText(text: string, source = "sim-profiles.yaml"): SimProfiles {
  const { value, issues } = parseYaml(text);
  if (issues.length > 0) throw new SimProfilesError(source, issues);
  return parseSimProfiles(value, source);
}

/** Reads and validates a profiles file (usually config/sim-profiles.yaml). Throws `SimProfilesError`. */
export async function loadSimProfiles(path: string): Promise<SimProfiles> {
  const { text, issues } = await readTextFile(path);
  if (issues.length > 0) throw new SimProfilesError(path, issues);
  return parseSimProfilesText(text, path);
}

// Reads a chat completion request: validates the fields the gateway consumes and profiles it for routing.
import * as z from "zod";
import { GatewayError } from "../http/errors.js";
import type { Capability } from "../config/schema.js";
import type { RequestProfile } from "../router/types.js";

/** Fields the gateway reads; every other field passes through untouched. */
const ChatRequestSchema = z.looseObject({
  model: z.string({ error: "you must provide a model parameter" }).min(1),
  messages: z
    .array(z.looseObject({ role: z.string({ error: "each message needs a string role" }) }), { error: "messages must be an array" })
    .min(1, "messages must contain at least one message"),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().nullish() }).nullish(),
  max_tokens: z.number().int().positive().nullish(),
  max_completion_tokens: z.number().int().positive().nullish(),
  models: z.array(z.string().min(1)).min(1).max(10).optional(),
  tools: z.array(z.unknown()).nullish(),
  functions: z.array(z.unknown()).nullish(),
  response_format: z.looseObject({ type: z.string() }).nullish(),
});

export type ChatRequest = z.infer<typeof ChatRequestSchema>;

/** Estimates prompt tokens of a request. Pluggable; the default is a character heuristic. */
export type TokenEstimator = (request: ChatRequest) => number;

/** Tokens assumed per image part (OpenAI's low-detail cost is 85; high detail is far more). */
const IMAGE_TOKENS = 765;

/** ~4 characters per token for English text (OpenAI's rule of thumb), plus 4 tokens of framing per message. */
export const estimateTokensByCharacters: TokenEstimator = (request) => {
  let characters = 0;
  let images = 0;
  for (const message of request.messages) {
    const content = message.content;
    if (typeof content === "string") characters += content.length;
    else if (Array.isArray(content)) {
      for (const part of content as unknown[]) {
        if (typeof part !== "object" || part === null) continue;
        const { type, text } = part as { type?: unknown; text?: unknown };
        if (typeof text === "string") characters += text.length;
        if (type === "image_url" || type === "input_image" || type === "image") images++;
      }
    }
    if (Array.isArray(message.tool_calls)) characters += JSON.stringify(message.tool_calls).length;
  }
  if (request.tools) characters += JSON.stringify(request.tools).length;
  return Math.ceil(characters / 4) + 4 * request.messages.length + images * IMAGE_TOKENS;
};

function formatParam(path: readonly PropertyKey[]): string {
  return path.reduce<string>((out, key) => (typeof key === "number" ? `${out}[${key}]` : out ? `${out}.${String(key)}` : String(key)), "");
}

/** Parses and validates the body. Throws a 400 `GatewayError` naming the offending field. */
export function parseChatRequest(body: Buffer): ChatRequest {
  let json: unknown;
  try {
    json = JSON.parse(body.toString("utf8"));
  } catch (error) {
    throw new GatewayError(400, `We could not parse the JSON body of your request: ${(error as Error).message}`, { code: "invalid_json" });
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new GatewayError(400, "The request body must be a JSON object.", { code: "invalid_json" });
  }
  const parsed = ChatRequestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const param = issue ? formatParam(issue.path) : null;
    throw new GatewayError(400, issue ? `Invalid value for '${param}': ${issue.message}` : "Invalid request.", { param, code: "invalid_value" });
  }
  return parsed.data;
}

function hasImage(request: ChatRequest): boolean {
  return request.messages.some(
    (message) =>
      Array.isArray(message.content) &&
      (message.content as unknown[]).some((part) => {
        const type = typeof part === "object" && part !== null ? (part as { type?: unknown }).type : undefined;
        return type === "image_url" || type === "input_image" || type === "image";
      }),
  );
}

/** What routing needs to know: size, limits and required capabilities. */
export function profileRequest(request: ChatRequest, estimate: TokenEstimator): RequestProfile {
  const needs = new Set<Capability>();
  if ((request.tools && request.tools.length > 0) || (request.functions && request.functions.length > 0)) needs.add("tools");
  if (request.response_format && request.response_format.type !== "text") needs.add("json");
  if (hasImage(request)) needs.add("vision");
  return {
    promptTokens: estimate(request),
    maxOutputTokens: request.max_completion_tokens ?? request.max_tokens ?? undefined,
    needs,
    stream: request.stream === true,
  };
}

/**
 * The body sent upstream: the client's, with `model` rewritten, gateway-consumed fields removed
 * (`models`, so the upstream never does its own fallback) and, for streams, usage requested.
 */
export function upstreamBody(request: ChatRequest, upstreamModel: string): Buffer {
  const { models: _consumed, ...rest } = request;
  const body: Record<string, unknown> = { ...rest, model: upstreamModel };
  if (request.stream === true) body.stream_options = { ...request.stream_options, include_usage: true };
  return Buffer.from(JSON.stringify(body));
}

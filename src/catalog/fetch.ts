// Fetches a catalog over HTTP(S) with undici: one GET, bounded in time and size, redirects not followed.
import { request } from "undici";

/** A fetch that did not produce a body; `message` says why and never holds the key. */
export class CatalogFetchError extends Error {
  readonly code = "catalog_fetch_failed";
  constructor(message: string) {
    super(message);
    this.name = "CatalogFetchError";
  }
}

export interface FetchCatalogOptions {
  /** Sent as `Authorization: Bearer <key>` when set. */
  readonly key?: string;
  /** Whole request, headers and body, in ms. */
  readonly timeoutMs: number;
  /** Largest body accepted, in bytes. */
  readonly maxBytes: number;
  /** Aborts the request (the gateway closing). */
  readonly signal?: AbortSignal;
}

/**
 * GETs `url` and returns its body as text. Anything but 200 is an error (a redirect too: point
 * `catalog.refreshUrl` at the final URL), as is a body over `maxBytes` or no complete answer within
 * `timeoutMs`.
 * @throws CatalogFetchError
 */
export async function fetchCatalogText(url: string, options: FetchCatalogOptions): Promise<string> {
  const signals = [AbortSignal.timeout(options.timeoutMs), ...(options.signal ? [options.signal] : [])];
  const signal = AbortSignal.any(signals);
  const headers: Record<string, string> = { accept: "application/json" };
  if (options.key !== undefined) headers.authorization = `Bearer ${options.key}`;
  try {
    const response = await request(url, { method: "GET", headers, signal });
    if (response.statusCode !== 200) {
      await response.body.dump();
      throw new CatalogFetchError(
        `HTTP ${response.statusCode}${response.statusCode >= 300 && response.statusCode < 400 ? " (redirects are not followed)" : ""}`,
      );
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > options.maxBytes) {
        response.body.destroy();
        throw new CatalogFetchError(`the body exceeds ${options.maxBytes} bytes`);
      }
      chunks.push(chunk);
    }
    return Buffer.concat(chunks, size).toString("utf8");
  } catch (error) {
    if (error instanceof CatalogFetchError) throw error;
    if (signals[0]?.aborted) throw new CatalogFetchError(`no complete answer within ${options.timeoutMs} ms`);
    if (options.signal?.aborted) throw new CatalogFetchError("aborted");
    throw new CatalogFetchError(error instanceof Error ? error.message : String(error));
  }
}

// Model files fetched once: each file of a model folder is looked up in the page's Cache Storage, downloaded with
// progress when it is not there, and stored for the next visit. Where Cache Storage is missing (a page served over
// plain http from another host is not a secure context), files are downloaded every time.

import type { Progress } from "./protocol.js";

/** The cache of model files (a new name drops what older versions stored). */
export const CACHE_NAME = "diffuse-models-v1";

async function openCache(): Promise<Cache | null> {
  try {
    return typeof caches === "undefined" ? null : await caches.open(CACHE_NAME);
  } catch {
    return null;
  }
}

/** Downloads `url` as a Blob, reporting bytes as they arrive. */
async function download(url: string, onBytes: (n: number) => void, signal?: AbortSignal): Promise<Blob> {
  const response = await fetch(url, { signal });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${response.statusText}`.trimEnd());
  if (!response.body) {
    const blob = await response.blob();
    onBytes(blob.size);
    return blob;
  }
  const parts: Uint8Array[] = [];
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    onBytes(value.length);
  }
  return new Blob(parts as BlobPart[]);
}

/**
 * The files of a model folder at `base` as a map of Blobs (what the library's loaders take), from the cache where
 * they are, else downloaded (progress: stage "download", in bytes over all files) and then cached.
 */
export async function cachedModelFiles(
  base: string,
  files: readonly { name: string; size: number }[],
  onProgress: (p: Progress) => void,
): Promise<{ files: Map<string, Blob>; cached: boolean }> {
  const cache = await openCache();
  const total = files.reduce((n, f) => n + f.size, 0);
  let done = 0;
  const out = new Map<string, Blob>();
  let fromCache = 0;
  for (const f of files) {
    const url = new URL(f.name, base).href;
    const hit = await cache?.match(url);
    let blob: Blob;
    if (hit) {
      blob = await hit.blob();
      fromCache++;
      done += blob.size;
    } else {
      blob = await download(url, (n) => {
        done += n;
        onProgress({ stage: "download", step: done, total, message: f.name });
      });
      // a full cache (quota) only means the next visit downloads again
      await cache
        ?.put(url, new Response(blob, { headers: { "content-length": String(blob.size) } }))
        .catch(() => {});
    }
    out.set(f.name, blob);
    onProgress({ stage: "download", step: done, total, message: f.name });
  }
  return { files: out, cached: cache !== null && fromCache === files.length };
}

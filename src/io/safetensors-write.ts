/**
 * Writing safetensors: the layout of the reference Rust crate (huggingface/safetensors `serialize`): tensors
 * ordered by element size (largest first) then name, so every tensor starts at a multiple of its element size;
 * `__metadata__` first in the header; the header padded with spaces to a multiple of 8 bytes.
 */
import { randomBytes } from "node:crypto";
import { open, rename, unlink } from "node:fs/promises";
import { itemSize } from "../tensor/dtype.js";
import { Tensor } from "../tensor/tensor.js";
import { describeFsError, SafetensorsError } from "./errors.js";
import { SAFETENSORS_DTYPE_OF } from "./safetensors-header.js";

/** Named tensors to save: a Map (iteration order irrelevant) or a plain object. */
export type TensorMap = ReadonlyMap<string, Tensor> | Readonly<Record<string, Tensor>>;

interface Layout {
  /** Header length field + padded JSON header. */
  prefix: Uint8Array;
  /** Tensors in data order. */
  order: { name: string; tensor: Tensor }[];
  dataLength: number;
}

const hostIsLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** fs writes at most 2^31 - 1 bytes per call. */
const MAX_WRITE = 1 << 30;

function planLayout(tensors: TensorMap, metadata: Record<string, string> | null | undefined): Layout {
  if (!hostIsLittleEndian) throw new SafetensorsError("cannot write safetensors on a big-endian host");
  const list: { name: string; tensor: Tensor }[] = [];
  const pairs = tensors instanceof Map ? [...tensors] : Object.entries(tensors as Record<string, Tensor>);
  for (const [name, tensor] of pairs) {
    if (typeof name !== "string")
      throw new SafetensorsError(`tensor names must be strings, got ${typeof name}`);
    if (name === "__metadata__")
      throw new SafetensorsError(`"__metadata__" is reserved and cannot name a tensor`);
    if (!(tensor instanceof Tensor)) {
      throw new SafetensorsError(`${JSON.stringify(name)} is not a Tensor (got ${typeof tensor})`);
    }
    list.push({ name, tensor });
  }
  list.sort(
    (a, b) =>
      itemSize(b.tensor.dtype) - itemSize(a.tensor.dtype) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );

  const parts: string[] = [];
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") {
        throw new SafetensorsError(
          `metadata values must be strings, but ${JSON.stringify(k)} is ${typeof v}`,
        );
      }
    }
    parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  }
  let offset = 0;
  for (const { name, tensor } of list) {
    const end = offset + tensor.size * itemSize(tensor.dtype);
    const info = {
      dtype: SAFETENSORS_DTYPE_OF[tensor.dtype],
      shape: tensor.shape,
      data_offsets: [offset, end],
    };
    // built by hand: JSON.stringify of an object would move integer-like names ("0", "12") to the front
    parts.push(`${JSON.stringify(name)}:${JSON.stringify(info)}`);
    offset = end;
  }
  const json = new TextEncoder().encode(`{${parts.join(",")}}`);
  const padded = Math.ceil(json.length / 8) * 8;
  const prefix = new Uint8Array(8 + padded).fill(0x20, 8 + json.length);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(padded), true);
  prefix.set(json, 8);
  return { prefix, order: list, dataLength: offset };
}

/** The raw little-endian bytes of a tensor, row-major (a view when it is contiguous). */
function tensorBytes(t: Tensor): Uint8Array {
  const data = t.dataSync();
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Serializes tensors (any dtype; strided views are written row-major) and optional string metadata into one
 * buffer holding a complete safetensors file.
 */
export function serializeSafetensors(
  tensors: TensorMap,
  metadata?: Record<string, string> | null,
): Uint8Array {
  const { prefix, order, dataLength } = planLayout(tensors, metadata);
  const out = new Uint8Array(prefix.length + dataLength);
  out.set(prefix, 0);
  let pos = prefix.length;
  for (const { tensor } of order) {
    const bytes = tensorBytes(tensor);
    out.set(bytes, pos);
    pos += bytes.length;
  }
  return out;
}

/**
 * Writes tensors and optional string metadata to `path` as safetensors, tensor by tensor (no whole-file buffer).
 * The file is written under a temporary name next to `path`, flushed, then renamed over `path`, so readers never
 * see a half-written file.
 */
export async function saveSafetensors(
  path: string,
  tensors: TensorMap,
  metadata?: Record<string, string> | null,
): Promise<void> {
  const { prefix, order } = planLayout(tensors, metadata);
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(tmp, "w");
    let position = 0;
    const writeAll = async (bytes: Uint8Array) => {
      let done = 0;
      while (done < bytes.length) {
        const chunk = bytes.subarray(done, done + Math.min(bytes.length - done, MAX_WRITE));
        const { bytesWritten } = await handle!.write(chunk, 0, chunk.length, position);
        done += bytesWritten;
        position += bytesWritten;
      }
    };
    await writeAll(prefix);
    for (const { tensor } of order) {
      const data = await tensor.data();
      await writeAll(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(tmp, path);
  } catch (err) {
    await handle?.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    if (err instanceof SafetensorsError) throw err;
    throw new SafetensorsError(`cannot write ${path}: ${describeFsError(err)}`, { cause: err });
  }
}

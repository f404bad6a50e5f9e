// Pieces shared by the nn kernels (reduce.ts, norm.ts, gather.ts): element offsets of handles, grids of segment
// kernels (a power of two of threads per reduced segment), placeholder buffers for bindings a mode does not use,
// and the WGSL that combines a segment's threads (through subgroups first where the device has them: the
// kernels' pipelines then have a ":subgroups" variant).
import { DeviceError } from "../../tensor/device.js";
import { gpuBuffer } from "./memory.js";
import { BufferUsage, type GpuRuntime, type Params } from "./runtime.js";

/** Threads per workgroup of the segment kernels (SwiftShader allows 256 invocations at most). */
export const SEG = 256;

/** The float32 / int32 element index of element `offset` of a handle in its GPUBuffer. */
export const at = (handle: unknown, offset = 0): number => gpuBuffer(handle).first(4) + offset;

/** The GPUBuffer behind a handle. */
export const buf = (handle: unknown): GPUBuffer => gpuBuffer(handle).gpu;

/** Parameter slots of a segment kernel: values per partial sum (see segmentFold) and threads per segment. */
export const SLOT_GROUP = 61;
export const SLOT_LANES = 62;

/**
 * Threads per segment of `m` elements: a power of two giving each thread about 32 elements, at most a workgroup.
 * Short segments get one thread (no barriers); software adapters pay per thread, GPUs need long rows spread.
 */
export function lanesFor(m: number): number {
  let lanes = 1;
  while (lanes < SEG && lanes * 32 < m) lanes *= 2;
  return lanes;
}

/** Writes the segment layout into `p` and returns the grid: SEG / lanes segments per workgroup. */
export function segmentGrid(p: Params, count: number, lanes: number): { x: number; y: number } {
  const k = Math.log2(lanes);
  p.at(SLOT_GROUP)
    .u(2 ** Math.ceil(k / 2))
    .u(lanes);
  const groups = Math.ceil(count / (SEG / lanes));
  // folded into y past 65535 workgroups: the extra segments are not live
  const x = Math.min(groups, 65535);
  const y = Math.ceil(groups / Math.max(x, 1));
  if (y > 65535) throw new DeviceError(`webgpu: ${count} segments are more than one dispatch holds`);
  return { x, y };
}

/**
 * WGSL entry header of a segment kernel: segment `seg` (valid when `live`), this thread's first element `lane`
 * and its step `lanes` through the segment. No early return: the segment folds need uniform control flow.
 * With `subgroups`, the thread's place in its subgroup goes to the private sgId / sgSize the folds read.
 */
export function segmentMain(subgroups: boolean): string {
  return /* wgsl */ `
${subgroups ? "var<private> sgId: u32;\nvar<private> sgSize: u32;" : ""}
@compute @workgroup_size(${SEG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32${
          subgroups
            ? ",\n        @builtin(subgroup_invocation_id) sgIdIn: u32, @builtin(subgroup_size) sgSizeIn: u32"
            : ""
        }) {
  ${subgroups ? "sgId = sgIdIn;\n  sgSize = sgSizeIn;" : ""}
  let lanes = pu(${SLOT_LANES}u);
  let seg = (wid.y * nwg.x + wid.x) * (${SEG}u / lanes) + lid / lanes;
  let lane = lid % lanes;
  let live = seg < pu(0u);`;
}

/**
 * WGSL `fn name(lid, lane, v) -> type`: combines the values of a segment's threads in a fixed order (so sums are
 * deterministic) and gives every thread the result. `combine(acc, v)` is a WGSL statement that folds v into the
 * variable acc. `subgroup` (null without the feature) names a WGSL function combining a value over a subgroup
 * (subgroupAdd, subgroupMax, ...): see subgroupFold.
 *
 * Without subgroups, the first lanes / g threads each combine g neighbours, then every thread combines those
 * partials: two barriers, whatever the lanes (software adapters charge each barrier per thread).
 */
export function segmentFold(
  name: string,
  type: string,
  combine: (acc: string, v: string) => string,
  subgroup: string | null = null,
): string {
  if (subgroup) return subgroupFold(name, type, combine, subgroup);
  return /* wgsl */ `
var<workgroup> ${name}All: array<${type}, ${SEG}>;
var<workgroup> ${name}Part: array<${type}, ${SEG}>;
fn ${name}(lid: u32, lane: u32, v: ${type}) -> ${type} {
  let lanes = pu(${SLOT_LANES}u);
  if (lanes == 1u) { return v; }
  let g = pu(${SLOT_GROUP}u);
  let first = lid - lane;
  ${name}All[lid] = v;
  workgroupBarrier();
  if (lane * g < lanes) {
    var acc = ${name}All[first + lane * g];
    for (var k = 1u; k < g; k++) { ${combine("acc", `${name}All[first + lane * g + k]`)} }
    ${name}Part[first + lane] = acc;
  }
  workgroupBarrier();
  // a later fold writes ${name}Part only after its first barrier, when every thread has read these
  var acc = ${name}Part[first];
  for (var k = 1u; k < lanes / g; k++) { ${combine("acc", `${name}Part[first + k]`)} }
  return acc;
}`;
}

/** Fewest threads a subgroup has (WebGPU's subgroupMinSize is at least 4): runs per workgroup at most SEG / 4. */
const MIN_SUBGROUP = 4;

/**
 * The subgroup form of segmentFold: one barrier. Each subgroup combines its values with `subgroup` and its
 * first thread stores the result for its run of sgSize threads; after the barrier, every thread combines the
 * runs of its segment in order. A subgroup result stands for a run only when the subgroup is exactly the
 * aligned threads of that run inside one segment (what GPUs do, but WGSL does not promise how threads form
 * subgroups, nor full ones): otherwise the run's values are combined one by one, and so are segments shorter
 * than a subgroup. The sum's order then depends on the subgroup size, fixed for a device and pipeline: the
 * same bits run to run. Calls alternate between two sets of workgroup arrays, as a call writes its set before
 * its barrier while slower threads may still read the previous call's set.
 */
function subgroupFold(
  name: string,
  type: string,
  combine: (acc: string, v: string) => string,
  subgroup: string,
): string {
  const runs = SEG / MIN_SUBGROUP;
  return /* wgsl */ `
var<workgroup> ${name}All: array<${type}, ${2 * SEG}>;
var<workgroup> ${name}Run: array<${type}, ${2 * runs}>;
var<workgroup> ${name}RunOk: array<u32, ${2 * runs}>;
var<private> ${name}Set: u32;
fn ${name}(lid: u32, lane: u32, v: ${type}) -> ${type} {
  let lanes = pu(${SLOT_LANES}u);
  if (lanes == 1u) { return v; }
  let s = sgSize;
  let all = ${name}Set * ${SEG}u;
  let run = ${name}Set * ${runs}u;
  ${name}Set ^= 1u;
  // subgroup operations in uniform control flow: their results are used or not below
  let t = ${subgroup}(v);
  let lid0 = lid - sgId;
  let members = subgroupAdd(1u);
  let oneRun = subgroupAll(lid0 == subgroupBroadcastFirst(lid0));
  let whole = members == s && oneRun;
  ${name}All[all + lid] = v;
  if (lid % s == 0u) {
    ${name}Run[run + lid / s] = t;
    ${name}RunOk[run + lid / s] = select(0u, 1u, whole && lanes >= s && lid0 == lid);
  }
  workgroupBarrier();
  let first = lid - lane;
  // no return in the branches: control flow that depends on sgSize is not uniform to WGSL's analysis
  var acc = ${name}All[all + first];
  if (lanes < s) {
    for (var k = 1u; k < lanes; k++) { ${combine("acc", `${name}All[all + first + k]`)} }
  } else {
    for (var r = first / s; r < (first + lanes) / s; r++) {
      var runVal = ${name}Run[run + r];
      if (${name}RunOk[run + r] == 0u) {
        runVal = ${name}All[all + r * s];
        for (var k = 1u; k < s; k++) { ${combine("runVal", `${name}All[all + r * s + k]`)} }
      }
      if (r == first / s) { acc = runVal; } else { ${combine("acc", "runVal")} }
    }
  }
  return acc;
}`;
}

/** WGSL sums over a segment (scalar and two at once) and run-time infinities. */
export function segmentSums(subgroups: boolean): string {
  return /* wgsl */ `
${segmentFold("segSum2", "vec2<f32>", (a, v) => `${a} += ${v};`, subgroups ? "subgroupAdd" : null)}
fn segSum(lid: u32, lane: u32, v: f32) -> f32 { return segSum2(lid, lane, vec2<f32>(v, 0.0)).x; }
// infinities made at run time (WGSL rejects constant ones); slot 63 of the parameters is never written
fn posInf() -> f32 { return bitcast<f32>(0x7f800000u | pu(63u)); }
fn negInf() -> f32 { return bitcast<f32>(0xff800000u | pu(63u)); }
fn isFinite(x: f32) -> bool { return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u; }
`;
}

/** The WGSL extensions and pipeline key suffix of a segment kernel's variant. */
export const segmentVariant = (rt: GpuRuntime): { enables: string[]; key: string } =>
  rt.subgroups ? { enables: ["subgroups"], key: ":subgroups" } : { enables: [], key: "" };

const placeholderCache = new WeakMap<GpuRuntime, GPUBuffer[]>();

/**
 * Tiny buffers bound where a mode of a kernel uses no buffer (WebGPU's "auto" layout needs every declared
 * binding). Written bindings need distinct buffers (a dispatch may not write one buffer twice): use k = 0, 1
 * for those and k = 2 for read-only ones.
 */
export function placeholder(rt: GpuRuntime, k: 0 | 1 | 2): GPUBuffer {
  let list = placeholderCache.get(rt);
  if (!list) {
    list = [0, 1, 2].map(() => rt.device.createBuffer({ size: 16, usage: BufferUsage.STORAGE }));
    placeholderCache.set(rt, list);
  }
  return list[k]!;
}

import type { Backend, Conv2dParams } from "../backend.js";

// Direct-loop 2-D convolution (NCHW input, OIHW weight) and its two gradients. Output element
//   out[n, o, oy, ox] = bias[o] + sum_{c in group(o), ky, kx} w[o, c, ky, kx] * x[n, c, oy*sh - ph + ky*dh, ox*sw - pw + kx*dw]
// (positions outside the input read as zero). Each kernel tap (ky, kx) touches a rectangle of output positions
// that is computed once, so the inner loops carry no bounds checks. Sums are accumulated in float64.

/** For each kernel tap t, the output positions o with 0 <= o*stride - pad + t*dilation < inSize, as [lo, hi). */
function tapRanges(
  outSize: number,
  inSize: number,
  kernel: number,
  stride: number,
  pad: number,
  dilation: number,
): { lo: Int32Array; hi: Int32Array } {
  const lo = new Int32Array(kernel);
  const hi = new Int32Array(kernel);
  for (let t = 0; t < kernel; t++) {
    const shift = t * dilation - pad;
    const a = Math.max(0, Math.ceil(-shift / stride));
    const b = Math.min(outSize, Math.floor((inSize - 1 - shift) / stride) + 1);
    lo[t] = a;
    hi[t] = Math.max(a, b);
  }
  return { lo, hi };
}

function ranges(p: Conv2dParams) {
  return {
    rows: tapRanges(p.outH, p.inH, p.kernelH, p.strideH, p.padH, p.dilationH),
    cols: tapRanges(p.outW, p.inW, p.kernelW, p.strideW, p.padW, p.dilationW),
  };
}

export const convKernels: Pick<Backend, "conv2d" | "conv2dBackwardInput" | "conv2dBackwardWeight"> = {
  conv2d(x, w, bias, out, p, residual): void {
    const { inChannels: C, inH: H, inW: W, outChannels: O, outH: OH, outW: OW, kernelH: KH, kernelW: KW } = p;
    const { strideH: SH, strideW: SW, padH: PH, padW: PW, dilationH: DH, dilationW: DW } = p;
    const cpg = C / p.groups;
    const opg = O / p.groups;
    const { rows, cols } = ranges(p);
    const acc = new Float64Array(OH * OW);
    for (let n = 0; n < p.batch; n++) {
      for (let o = 0; o < O; o++) {
        const g = Math.floor(o / opg);
        acc.fill(0);
        for (let cl = 0; cl < cpg; cl++) {
          const xPlane = (n * C + g * cpg + cl) * H * W;
          const wBase = (o * cpg + cl) * KH * KW;
          for (let ky = 0; ky < KH; ky++) {
            for (let kx = 0; kx < KW; kx++) {
              const wv = w[wBase + ky * KW + kx]!;
              const ox0 = cols.lo[kx]!;
              const ox1 = cols.hi[kx]!;
              for (let oy = rows.lo[ky]!; oy < rows.hi[ky]!; oy++) {
                // input index of output column ox is xRow + ox*SW
                const xRow = xPlane + (oy * SH - PH + ky * DH) * W - PW + kx * DW;
                const aRow = oy * OW;
                for (let ox = ox0; ox < ox1; ox++) acc[aRow + ox]! += wv * x[xRow + ox * SW]!;
              }
            }
          }
        }
        const b = bias ? bias[o]! : 0;
        const oBase = (n * O + o) * OH * OW;
        for (let i = 0; i < OH * OW; i++) out[oBase + i] = acc[i]! + b;
        // rounded to float32 first, then the residual added: the order of the fused native kernel
        if (residual) for (let i = oBase; i < oBase + OH * OW; i++) out[i] = out[i]! + residual[i]!;
      }
    }
  },

  // gradIn[n, c, iy, ix] = sum over the taps and outputs that read (iy, ix) of w * gradOut (the scatter form).
  conv2dBackwardInput(gradOut, w, gradIn, p): void {
    const { inChannels: C, inH: H, inW: W, outChannels: O, outH: OH, outW: OW, kernelH: KH, kernelW: KW } = p;
    const { strideH: SH, strideW: SW, padH: PH, padW: PW, dilationH: DH, dilationW: DW } = p;
    const cpg = C / p.groups;
    const opg = O / p.groups;
    const { rows, cols } = ranges(p);
    const acc = new Float64Array(H * W);
    for (let n = 0; n < p.batch; n++) {
      for (let c = 0; c < C; c++) {
        const g = Math.floor(c / cpg);
        const cl = c - g * cpg;
        acc.fill(0);
        for (let ol = 0; ol < opg; ol++) {
          const o = g * opg + ol;
          const gPlane = (n * O + o) * OH * OW;
          const wBase = (o * cpg + cl) * KH * KW;
          for (let ky = 0; ky < KH; ky++) {
            for (let kx = 0; kx < KW; kx++) {
              const wv = w[wBase + ky * KW + kx]!;
              const ox0 = cols.lo[kx]!;
              const ox1 = cols.hi[kx]!;
              for (let oy = rows.lo[ky]!; oy < rows.hi[ky]!; oy++) {
                const aRow = (oy * SH - PH + ky * DH) * W - PW + kx * DW;
                const gRow = gPlane + oy * OW;
                for (let ox = ox0; ox < ox1; ox++) acc[aRow + ox * SW]! += wv * gradOut[gRow + ox]!;
              }
            }
          }
        }
        const iBase = (n * C + c) * H * W;
        for (let i = 0; i < H * W; i++) gradIn[iBase + i] = acc[i]!;
      }
    }
  },

  // gradW[o, c, ky, kx] = sum_{n, oy, ox} gradOut[n, o, oy, ox] * x[n, c_global, iy, ix].
  conv2dBackwardWeight(x, gradOut, gradW, p): void {
    const { inChannels: C, inH: H, inW: W, outChannels: O, outH: OH, outW: OW, kernelH: KH, kernelW: KW } = p;
    const { strideH: SH, strideW: SW, padH: PH, padW: PW, dilationH: DH, dilationW: DW } = p;
    const cpg = C / p.groups;
    const opg = O / p.groups;
    const { rows, cols } = ranges(p);
    for (let o = 0; o < O; o++) {
      const g = Math.floor(o / opg);
      for (let cl = 0; cl < cpg; cl++) {
        const c = g * cpg + cl;
        for (let ky = 0; ky < KH; ky++) {
          for (let kx = 0; kx < KW; kx++) {
            const ox0 = cols.lo[kx]!;
            const ox1 = cols.hi[kx]!;
            let s = 0;
            for (let n = 0; n < p.batch; n++) {
              const xPlane = (n * C + c) * H * W;
              const gPlane = (n * O + o) * OH * OW;
              for (let oy = rows.lo[ky]!; oy < rows.hi[ky]!; oy++) {
                const xRow = xPlane + (oy * SH - PH + ky * DH) * W - PW + kx * DW;
                const gRow = gPlane + oy * OW;
                for (let ox = ox0; ox < ox1; ox++) s += gradOut[gRow + ox]! * x[xRow + ox * SW]!;
              }
            }
            gradW[((o * cpg + cl) * KH + ky) * KW + kx] = s;
          }
        }
      }
    }
  },
};

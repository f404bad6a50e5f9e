// Tensor names and shapes of original (LDM / SGM / OpenCLIP) Stable Diffusion checkpoints, generated from a few
// sizes, for detection and mapping tests that need no weights. Follows ldm/modules/diffusionmodules/openaimodel.py
// (UNetModel), ldm/modules/diffusionmodules/model.py (Encoder/Decoder) and open_clip's TextTransformer.

export type Shapes = Map<string, number[]>;

/** Sizes of an LDM UNet. */
export interface UNetSpec {
  channels: number[];
  layersPerBlock: number;
  /** transformer depth per level (0: no attention) */
  depth: number[];
  midDepth: number;
  context: number;
  inChannels?: number;
  outChannels?: number;
  /** use_linear_in_transformer (SD 2.x, SDXL) */
  linear?: boolean;
  /** SDXL's adm_in_channels */
  adm?: number;
}

function resblock(s: Shapes, p: string, cin: number, c: number, temb: number): void {
  s.set(`${p}in_layers.0.weight`, [cin]);
  s.set(`${p}in_layers.0.bias`, [cin]);
  s.set(`${p}in_layers.2.weight`, [c, cin, 3, 3]);
  s.set(`${p}in_layers.2.bias`, [c]);
  s.set(`${p}emb_layers.1.weight`, [c, temb]);
  s.set(`${p}emb_layers.1.bias`, [c]);
  s.set(`${p}out_layers.0.weight`, [c]);
  s.set(`${p}out_layers.0.bias`, [c]);
  s.set(`${p}out_layers.3.weight`, [c, c, 3, 3]);
  s.set(`${p}out_layers.3.bias`, [c]);
  if (cin !== c) {
    s.set(`${p}skip_connection.weight`, [c, cin, 1, 1]);
    s.set(`${p}skip_connection.bias`, [c]);
  }
}

function spatialTransformer(
  s: Shapes,
  p: string,
  c: number,
  depth: number,
  ctx: number,
  linear: boolean,
): void {
  const proj = linear ? [c, c] : [c, c, 1, 1];
  s.set(`${p}norm.weight`, [c]);
  s.set(`${p}norm.bias`, [c]);
  s.set(`${p}proj_in.weight`, proj);
  s.set(`${p}proj_in.bias`, [c]);
  for (let d = 0; d < depth; d++) {
    const b = `${p}transformer_blocks.${d}.`;
    for (const a of ["attn1", "attn2"]) {
      const kv = a === "attn1" ? c : ctx;
      s.set(`${b}${a}.to_q.weight`, [c, c]);
      s.set(`${b}${a}.to_k.weight`, [c, kv]);
      s.set(`${b}${a}.to_v.weight`, [c, kv]);
      s.set(`${b}${a}.to_out.0.weight`, [c, c]);
      s.set(`${b}${a}.to_out.0.bias`, [c]);
    }
    s.set(`${b}ff.net.0.proj.weight`, [8 * c, c]);
    s.set(`${b}ff.net.0.proj.bias`, [8 * c]);
    s.set(`${b}ff.net.2.weight`, [c, 4 * c]);
    s.set(`${b}ff.net.2.bias`, [c]);
    for (const n of ["norm1", "norm2", "norm3"]) {
      s.set(`${b}${n}.weight`, [c]);
      s.set(`${b}${n}.bias`, [c]);
    }
  }
  s.set(`${p}proj_out.weight`, proj);
  s.set(`${p}proj_out.bias`, [c]);
}

/** The `model.diffusion_model.*` names and shapes of an LDM UNet. */
export function ldmUNetShapes(spec: UNetSpec, prefix = "model.diffusion_model."): Shapes {
  const s: Shapes = new Map();
  const ch = spec.channels;
  const L = ch.length;
  const lpb = spec.layersPerBlock;
  const c0 = ch[0]!;
  const temb = 4 * c0;
  const linear = spec.linear ?? false;
  s.set("time_embed.0.weight", [temb, c0]);
  s.set("time_embed.0.bias", [temb]);
  s.set("time_embed.2.weight", [temb, temb]);
  s.set("time_embed.2.bias", [temb]);
  if (spec.adm !== undefined) {
    s.set("label_emb.0.0.weight", [temb, spec.adm]);
    s.set("label_emb.0.0.bias", [temb]);
    s.set("label_emb.0.2.weight", [temb, temb]);
    s.set("label_emb.0.2.bias", [temb]);
  }
  s.set("input_blocks.0.0.weight", [c0, spec.inChannels ?? 4, 3, 3]);
  s.set("input_blocks.0.0.bias", [c0]);
  let i = 1;
  let cur = c0;
  for (let l = 0; l < L; l++) {
    for (let j = 0; j < lpb; j++, i++) {
      resblock(s, `input_blocks.${i}.0.`, cur, ch[l]!, temb);
      cur = ch[l]!;
      if (spec.depth[l]! > 0)
        spatialTransformer(s, `input_blocks.${i}.1.`, cur, spec.depth[l]!, spec.context, linear);
    }
    if (l < L - 1) {
      s.set(`input_blocks.${i}.0.op.weight`, [cur, cur, 3, 3]);
      s.set(`input_blocks.${i}.0.op.bias`, [cur]);
      i++;
    }
  }
  const cL = ch[L - 1]!;
  resblock(s, "middle_block.0.", cL, cL, temb);
  spatialTransformer(s, "middle_block.1.", cL, spec.midDepth, spec.context, linear);
  resblock(s, "middle_block.2.", cL, cL, temb);
  // skip channels, as pushed on the way down: conv_in, then every input block's output
  const skips: number[] = [c0];
  for (let l = 0; l < L; l++) {
    for (let j = 0; j < lpb; j++) skips.push(ch[l]!);
    if (l < L - 1) skips.push(ch[l]!);
  }
  let o = 0;
  cur = cL;
  for (let b = 0; b < L; b++) {
    const level = L - 1 - b;
    const c = ch[level]!;
    for (let j = 0; j <= lpb; j++, o++) {
      const skip = skips.pop()!;
      resblock(s, `output_blocks.${o}.0.`, cur + skip, c, temb);
      cur = c;
      const attn = spec.depth[level]! > 0;
      if (attn) spatialTransformer(s, `output_blocks.${o}.1.`, c, spec.depth[level]!, spec.context, linear);
      if (j === lpb && b < L - 1) {
        s.set(`output_blocks.${o}.${attn ? 2 : 1}.conv.weight`, [c, c, 3, 3]);
        s.set(`output_blocks.${o}.${attn ? 2 : 1}.conv.bias`, [c]);
      }
    }
  }
  s.set("out.0.weight", [c0]);
  s.set("out.0.bias", [c0]);
  s.set("out.2.weight", [spec.outChannels ?? 4, c0, 3, 3]);
  s.set("out.2.bias", [spec.outChannels ?? 4]);
  return new Map([...s].map(([k, v]) => [prefix + k, v]));
}

/** `first_stage_model.*` of an LDM AutoencoderKL. */
export function ldmVAEShapes(
  channels: number[],
  layersPerBlock: number,
  z = 4,
  prefix = "first_stage_model.",
): Shapes {
  const s: Shapes = new Map();
  const L = channels.length;
  const res = (p: string, cin: number, c: number): void => {
    s.set(`${p}norm1.weight`, [cin]);
    s.set(`${p}norm1.bias`, [cin]);
    s.set(`${p}conv1.weight`, [c, cin, 3, 3]);
    s.set(`${p}conv1.bias`, [c]);
    s.set(`${p}norm2.weight`, [c]);
    s.set(`${p}norm2.bias`, [c]);
    s.set(`${p}conv2.weight`, [c, c, 3, 3]);
    s.set(`${p}conv2.bias`, [c]);
    if (cin !== c) {
      s.set(`${p}nin_shortcut.weight`, [c, cin, 1, 1]);
      s.set(`${p}nin_shortcut.bias`, [c]);
    }
  };
  const mid = (p: string, c: number): void => {
    res(`${p}mid.block_1.`, c, c);
    for (const n of ["q", "k", "v", "proj_out"]) {
      s.set(`${p}mid.attn_1.${n}.weight`, [c, c, 1, 1]);
      s.set(`${p}mid.attn_1.${n}.bias`, [c]);
    }
    s.set(`${p}mid.attn_1.norm.weight`, [c]);
    s.set(`${p}mid.attn_1.norm.bias`, [c]);
    res(`${p}mid.block_2.`, c, c);
  };
  const c0 = channels[0]!;
  const cL = channels[L - 1]!;
  s.set("encoder.conv_in.weight", [c0, 3, 3, 3]);
  s.set("encoder.conv_in.bias", [c0]);
  let cur = c0;
  for (let i = 0; i < L; i++) {
    for (let j = 0; j < layersPerBlock; j++) {
      res(`encoder.down.${i}.block.${j}.`, cur, channels[i]!);
      cur = channels[i]!;
    }
    if (i < L - 1) {
      s.set(`encoder.down.${i}.downsample.conv.weight`, [cur, cur, 3, 3]);
      s.set(`encoder.down.${i}.downsample.conv.bias`, [cur]);
    }
  }
  mid("encoder.", cL);
  s.set("encoder.norm_out.weight", [cL]);
  s.set("encoder.norm_out.bias", [cL]);
  s.set("encoder.conv_out.weight", [2 * z, cL, 3, 3]);
  s.set("encoder.conv_out.bias", [2 * z]);
  s.set("quant_conv.weight", [2 * z, 2 * z, 1, 1]);
  s.set("quant_conv.bias", [2 * z]);
  s.set("post_quant_conv.weight", [z, z, 1, 1]);
  s.set("post_quant_conv.bias", [z]);
  s.set("decoder.conv_in.weight", [cL, z, 3, 3]);
  s.set("decoder.conv_in.bias", [cL]);
  mid("decoder.", cL);
  cur = cL;
  for (let i = L - 1; i >= 0; i--) {
    for (let j = 0; j <= layersPerBlock; j++) {
      res(`decoder.up.${i}.block.${j}.`, cur, channels[i]!);
      cur = channels[i]!;
    }
    if (i > 0) {
      s.set(`decoder.up.${i}.upsample.conv.weight`, [cur, cur, 3, 3]);
      s.set(`decoder.up.${i}.upsample.conv.bias`, [cur]);
    }
  }
  s.set("decoder.norm_out.weight", [c0]);
  s.set("decoder.norm_out.bias", [c0]);
  s.set("decoder.conv_out.weight", [3, c0, 3, 3]);
  s.set("decoder.conv_out.bias", [3]);
  return new Map([...s].map(([k, v]) => [prefix + k, v]));
}

/** Sizes of a text encoder. */
export interface TextSpec {
  layers: number;
  hidden: number;
  intermediate: number;
  vocab?: number;
  positions?: number;
  /** OpenCLIP text_projection output size (OpenCLIP files always have one) */
  projection?: number;
}

/** A CLIP text encoder in the transformers layout under `prefix`. */
export function clipShapes(prefix: string, t: TextSpec): Shapes {
  const s: Shapes = new Map();
  const D = t.hidden;
  const p = `${prefix}text_model.`;
  s.set(`${p}embeddings.token_embedding.weight`, [t.vocab ?? 49408, D]);
  s.set(`${p}embeddings.position_embedding.weight`, [t.positions ?? 77, D]);
  s.set(`${p}embeddings.position_ids`, [1, t.positions ?? 77]);
  for (let i = 0; i < t.layers; i++) {
    const l = `${p}encoder.layers.${i}.`;
    for (const n of ["q_proj", "k_proj", "v_proj", "out_proj"]) {
      s.set(`${l}self_attn.${n}.weight`, [D, D]);
      s.set(`${l}self_attn.${n}.bias`, [D]);
    }
    for (const n of ["layer_norm1", "layer_norm2"]) {
      s.set(`${l}${n}.weight`, [D]);
      s.set(`${l}${n}.bias`, [D]);
    }
    s.set(`${l}mlp.fc1.weight`, [t.intermediate, D]);
    s.set(`${l}mlp.fc1.bias`, [t.intermediate]);
    s.set(`${l}mlp.fc2.weight`, [D, t.intermediate]);
    s.set(`${l}mlp.fc2.bias`, [D]);
  }
  s.set(`${p}final_layer_norm.weight`, [D]);
  s.set(`${p}final_layer_norm.bias`, [D]);
  return s;
}

/** An OpenCLIP text tower under `prefix`. */
export function openClipShapes(prefix: string, t: TextSpec): Shapes {
  const s: Shapes = new Map();
  const D = t.hidden;
  s.set(`${prefix}token_embedding.weight`, [t.vocab ?? 49408, D]);
  s.set(`${prefix}positional_embedding`, [t.positions ?? 77, D]);
  for (let i = 0; i < t.layers; i++) {
    const l = `${prefix}transformer.resblocks.${i}.`;
    s.set(`${l}ln_1.weight`, [D]);
    s.set(`${l}ln_1.bias`, [D]);
    s.set(`${l}attn.in_proj_weight`, [3 * D, D]);
    s.set(`${l}attn.in_proj_bias`, [3 * D]);
    s.set(`${l}attn.out_proj.weight`, [D, D]);
    s.set(`${l}attn.out_proj.bias`, [D]);
    s.set(`${l}ln_2.weight`, [D]);
    s.set(`${l}ln_2.bias`, [D]);
    s.set(`${l}mlp.c_fc.weight`, [t.intermediate, D]);
    s.set(`${l}mlp.c_fc.bias`, [t.intermediate]);
    s.set(`${l}mlp.c_proj.weight`, [D, t.intermediate]);
    s.set(`${l}mlp.c_proj.bias`, [D]);
  }
  s.set(`${prefix}ln_final.weight`, [D]);
  s.set(`${prefix}ln_final.bias`, [D]);
  s.set(`${prefix}text_projection`, [D, t.projection ?? D]);
  s.set(`${prefix}logit_scale`, []);
  return s;
}

/** The released families' sizes. */
export const FAMILY_SPECS = {
  sd1: {
    unet: {
      channels: [320, 640, 1280, 1280],
      layersPerBlock: 2,
      depth: [1, 1, 1, 0],
      midDepth: 1,
      context: 768,
    },
    text: { layers: 12, hidden: 768, intermediate: 3072 },
  },
  sd2: {
    unet: {
      channels: [320, 640, 1280, 1280],
      layersPerBlock: 2,
      depth: [1, 1, 1, 0],
      midDepth: 1,
      context: 1024,
      linear: true,
    },
    text: { layers: 24, hidden: 1024, intermediate: 4096, projection: 1024 },
  },
  sdxl: {
    unet: {
      channels: [320, 640, 1280],
      layersPerBlock: 2,
      depth: [0, 2, 10],
      midDepth: 10,
      context: 2048,
      linear: true,
      adm: 2816,
    },
    text: { layers: 12, hidden: 768, intermediate: 3072 },
    text2: { layers: 32, hidden: 1280, intermediate: 5120, projection: 1280 },
  },
  refiner: {
    unet: {
      channels: [384, 768, 1536, 1536],
      layersPerBlock: 2,
      depth: [0, 4, 4, 0],
      midDepth: 4,
      context: 1280,
      linear: true,
      adm: 2560,
    },
    text2: { layers: 32, hidden: 1280, intermediate: 5120, projection: 1280 },
  },
} as const;

/** Whole-checkpoint shapes of a released family (`inChannels` 9 for inpainting). */
export function familyShapes(family: keyof typeof FAMILY_SPECS, inChannels = 4): Shapes {
  const f = FAMILY_SPECS[family];
  const s = new Map([
    ...ldmUNetShapes({ ...f.unet, depth: [...f.unet.depth], channels: [...f.unet.channels], inChannels }),
    ...ldmVAEShapes([128, 256, 512, 512], 2),
  ]);
  const add = (m: Shapes) => {
    for (const [k, v] of m) s.set(k, v);
  };
  if (family === "sd1") add(clipShapes("cond_stage_model.transformer.", FAMILY_SPECS.sd1.text));
  if (family === "sd2") add(openClipShapes("cond_stage_model.model.", FAMILY_SPECS.sd2.text));
  if (family === "sdxl") {
    add(clipShapes("conditioner.embedders.0.transformer.", FAMILY_SPECS.sdxl.text));
    add(openClipShapes("conditioner.embedders.1.model.", FAMILY_SPECS.sdxl.text2));
  }
  if (family === "refiner") add(openClipShapes("conditioner.embedders.0.model.", FAMILY_SPECS.refiner.text2));
  return s;
}

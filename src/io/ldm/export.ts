// The other direction of the single-file plans: diffusers / transformers keys of a Stable Diffusion pipeline ->
// the original LDM names (model.diffusion_model.*, first_stage_model.*, cond_stage_model.transformer.*), the
// layout AUTOMATIC1111 and ComfyUI load. Each rule here is the inverse of one in unet.ts / vae.ts / clip.ts; the
// whole result is checked by running the loading plans over it and asking for the original keys back, so a rule
// that drifts from its inverse fails loudly instead of writing a file nothing reads.
import { CheckpointError } from "../errors.js";
import { ldmCLIPPlan } from "./clip.js";
import { TEXT_ENCODER_PREFIXES } from "./detect.js";
import type { ShapeMap } from "./plan.js";
import { LDM_UNET_PREFIX, ldmUNetPlan, type UNetKeyLayout } from "./unet.js";
import { LDM_VAE_PREFIX, ldmVAEPlan } from "./vae.js";

/** Which model of the pipeline a tensor comes from. */
export type ExportComponent = "unet" | "vae" | "text_encoder";

/** Where one tensor of the single file comes from. */
export interface ExportMapping {
  readonly component: ExportComponent;
  /** The key in the component's own weights file. */
  readonly source: string;
  /** The shape in the single file (a linear VAE attention weight [C, C] is stored as a 1x1 conv [C, C, 1, 1]). */
  readonly shape: readonly number[];
}

const RESNET_NAMES: readonly (readonly [string, string])[] = [
  ["norm1.", "in_layers.0."],
  ["conv1.", "in_layers.2."],
  ["norm2.", "out_layers.0."],
  ["conv2.", "out_layers.3."],
  ["time_emb_proj.", "emb_layers.1."],
  ["conv_shortcut.", "skip_connection."],
];

function ldmResnet(rest: string): string | null {
  for (const [from, to] of RESNET_NAMES) if (rest.startsWith(from)) return to + rest.slice(from.length);
  return null;
}

/** The LDM name of a diffusers UNet2DConditionModel key (without the prefix), or null when no rule applies. */
export function ldmUNetKey(key: string, layout: UNetKeyLayout): string | null {
  const { levels, layersPerBlock: lpb, attention } = layout;
  const per = lpb + 1;
  const swaps: readonly (readonly [string, string])[] = [
    ["time_embedding.linear_1.", "time_embed.0."],
    ["time_embedding.linear_2.", "time_embed.2."],
    ["add_embedding.linear_1.", "label_emb.0.0."],
    ["add_embedding.linear_2.", "label_emb.0.2."],
    ["conv_in.", "input_blocks.0.0."],
    ["conv_norm_out.", "out.0."],
    ["conv_out.", "out.2."],
  ];
  for (const [from, to] of swaps) if (key.startsWith(from)) return to + key.slice(from.length);

  let m = /^mid_block\.(resnets|attentions)\.(\d+)\.(.+)$/.exec(key);
  if (m) {
    const i = Number(m[2]);
    if (m[1] === "attentions") return i === 0 ? `middle_block.1.${m[3]}` : null;
    const r = ldmResnet(m[3]!);
    return i < 2 && r !== null ? `middle_block.${2 * i}.${r}` : null;
  }
  m = /^(down|up)_blocks\.(\d+)\.(resnets|attentions|downsamplers|upsamplers)\.(\d+)\.(.+)$/.exec(key);
  if (!m) return null;
  const [, dir, levelText, part, indexText, rest] = m as unknown as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const level = Number(levelText);
  const j = Number(indexText);
  if (level >= levels) return null;
  if (dir === "down") {
    const block = (n: number) => `input_blocks.${1 + level * per + n}`;
    if (part === "resnets" && j < lpb) {
      const r = ldmResnet(rest);
      return r === null ? null : `${block(j)}.0.${r}`;
    }
    if (part === "attentions" && j < lpb && attention[level]) return `${block(j)}.1.${rest}`;
    if (part === "downsamplers" && j === 0 && level < levels - 1 && rest.startsWith("conv."))
      return `${block(lpb)}.0.op.${rest.slice(5)}`;
    return null;
  }
  const hasAttn = attention[levels - 1 - level]!;
  const block = (n: number) => `output_blocks.${level * per + n}`;
  if (part === "resnets" && j < per) {
    const r = ldmResnet(rest);
    return r === null ? null : `${block(j)}.0.${r}`;
  }
  if (part === "attentions" && j < per && hasAttn) return `${block(j)}.1.${rest}`;
  if (part === "upsamplers" && j === 0 && level < levels - 1 && rest.startsWith("conv."))
    return `${block(lpb)}.${hasAttn ? 2 : 1}.conv.${rest.slice(5)}`;
  return null;
}

const VAE_ATTENTION_NAMES: Readonly<Record<string, string>> = {
  group_norm: "norm",
  to_q: "q",
  to_k: "k",
  to_v: "v",
  "to_out.0": "proj_out",
};

/**
 * The LDM name of a diffusers AutoencoderKL key, and whether its weight becomes a 1x1 conv (the mid-block
 * attention projections, linear in diffusers and convolutions in LDM); null when no rule applies.
 */
export function ldmVAEKey(key: string, levels: number): { key: string; conv: boolean } | null {
  const plain = (k: string) => ({ key: k, conv: false });
  if (/^(quant_conv|post_quant_conv)\.(weight|bias)$/.test(key)) return plain(key);
  const m = /^(encoder|decoder)\.(.+)$/.exec(key);
  if (!m) return null;
  const [, part, rest] = m as unknown as [string, string, string];
  const resnet = (r: string) => (r.startsWith("conv_shortcut.") ? `nin_shortcut.${r.slice(14)}` : r);
  let r: RegExpExecArray | null;
  if (/^(conv_in|conv_out)\./.test(rest)) return plain(key);
  if (rest.startsWith("conv_norm_out.")) return plain(`${part}.norm_out.${rest.slice(14)}`);
  if ((r = /^mid_block\.resnets\.([01])\.(.+)$/.exec(rest)))
    return plain(`${part}.mid.block_${Number(r[1]) + 1}.${resnet(r[2]!)}`);
  if ((r = /^mid_block\.attentions\.0\.(group_norm|to_q|to_k|to_v|to_out\.0)\.(weight|bias)$/.exec(rest)))
    return {
      key: `${part}.mid.attn_1.${VAE_ATTENTION_NAMES[r[1]!]}.${r[2]}`,
      conv: r[1] !== "group_norm" && r[2] === "weight",
    };
  if (part === "encoder" && (r = /^down_blocks\.(\d+)\.(resnets\.(\d+)|downsamplers\.0)\.(.+)$/.exec(rest))) {
    const i = Number(r[1]);
    if (i >= levels) return null;
    return plain(
      r[3] !== undefined
        ? `encoder.down.${i}.block.${r[3]}.${resnet(r[4]!)}`
        : `encoder.down.${i}.downsample.${r[4]}`,
    );
  }
  if (part === "decoder" && (r = /^up_blocks\.(\d+)\.(resnets\.(\d+)|upsamplers\.0)\.(.+)$/.exec(rest))) {
    const i = Number(r[1]);
    if (i >= levels) return null;
    const up = levels - 1 - i;
    return plain(
      r[3] !== undefined
        ? `decoder.up.${up}.block.${r[3]}.${resnet(r[4]!)}`
        : `decoder.up.${up}.upsample.${r[4]}`,
    );
  }
  return null;
}

/** The shapes of one pipeline component's weights (key -> shape). */
export interface ComponentShapes {
  readonly unet: ShapeMap;
  readonly vae: ShapeMap;
  readonly textEncoder: ShapeMap;
}

/**
 * The single-file layout of an SD 1.x-style pipeline (one CLIP text encoder): LDM name -> where the tensor comes
 * from. Throws CheckpointError naming the keys no rule maps (a model this layout cannot express), and when the
 * loading plans do not read the result back to the same keys.
 */
export function ldmExportPlan(
  shapes: ComponentShapes,
  layout: UNetKeyLayout,
  vaeLevels: number,
): Map<string, ExportMapping> {
  const out = new Map<string, ExportMapping>();
  const unknown: string[] = [];
  const add = (component: ExportComponent, source: string, name: string | null, shape: readonly number[]) => {
    if (name === null) unknown.push(`${component}: ${source}`);
    else out.set(name, { component, source, shape });
  };
  for (const [k, s] of shapes.unet) {
    const name = ldmUNetKey(k, layout);
    add("unet", k, name === null ? null : LDM_UNET_PREFIX + name, s);
  }
  for (const [k, s] of shapes.vae) {
    const r = ldmVAEKey(k, vaeLevels);
    add("vae", k, r === null ? null : LDM_VAE_PREFIX + r.key, r?.conv && s.length === 2 ? [...s, 1, 1] : s);
  }
  const te = TEXT_ENCODER_PREFIXES.sd1;
  for (const [k, s] of shapes.textEncoder) {
    if (k === "text_model.embeddings.position_ids") continue;
    add("text_encoder", k, k.startsWith("text_model.") ? te + k : null, s);
  }
  if (unknown.length > 0) {
    throw new CheckpointError(
      `${unknown.length} tensor(s) have no name in the original Stable Diffusion layout: ${unknown.slice(0, 6).join(", ")}${unknown.length > 6 ? ", ..." : ""}`,
    );
  }
  checkRoundTrip(out, layout, vaeLevels);
  return out;
}

/** Runs the loading plans over the exported names and checks that each leads back to its source key. */
function checkRoundTrip(
  out: ReadonlyMap<string, ExportMapping>,
  layout: UNetKeyLayout,
  vaeLevels: number,
): void {
  const ldmShapes: ShapeMap = new Map([...out].map(([k, m]) => [k, m.shape]));
  const plans = {
    unet: ldmUNetPlan(ldmShapes, layout),
    vae: ldmVAEPlan(ldmShapes, LDM_VAE_PREFIX, vaeLevels),
    text_encoder: ldmCLIPPlan(ldmShapes, TEXT_ENCODER_PREFIXES.sd1),
  };
  const back = new Map<string, string>();
  for (const [component, plan] of Object.entries(plans))
    for (const [target, m] of plan.tensors) back.set(m.source, `${component}:${target}`);
  for (const [name, m] of out) {
    if (back.get(name) !== `${m.component}:${m.source}`) {
      throw new CheckpointError(
        `internal: ${m.component} ${m.source} exports as ${name}, which loads back as ${back.get(name) ?? "nothing"}`,
      );
    }
  }
}

// ComfyUI's validation of an API-format workflow ({ "<node id>": { class_type, inputs } }, links as
// ["<node id>", output index]) against the node table of comfyui-nodes.ts: every node of a known class, the nodes an
// output depends on with their required inputs, links to outputs of the right type, numbers in range, names from
// the lists. Refusals are ComfyUI's { error, node_errors } naming the node, with messages that say what was
// expected and what was found.
import type { InputSpec, NodeSpec } from "./comfyui-nodes.js";
import { HttpError } from "./errors.js";

/** One error, as ComfyUI reports it. */
export interface ComfyError {
  type: string;
  message: string;
  details: string;
  extra_info: Record<string, unknown>;
}

/** The errors of one node, as ComfyUI reports them. */
export interface NodeErrors {
  errors: ComfyError[];
  dependent_outputs: string[];
  class_type: string;
}

/** A refused workflow: answered 400 with ComfyUI's `{ error, node_errors }` and our `message` (every problem). */
export class WorkflowError extends HttpError {
  constructor(
    readonly error: ComfyError,
    readonly nodeErrors: Record<string, NodeErrors> = {},
  ) {
    const lines = Object.entries(nodeErrors).flatMap(([id, n]) =>
      n.errors.map((e) => `node #${id} (${n.class_type}): ${e.message}`),
    );
    super(400, lines.length > 0 ? lines.join("; ") : error.message);
  }

  body(): Record<string, unknown> {
    return { error: this.error, node_errors: this.nodeErrors, message: this.message };
  }
}

/** One node of a workflow. */
export interface WorkflowNode {
  class_type: string;
  inputs: Record<string, unknown>;
  _meta?: { title?: unknown };
}

/** A link: ["<node id>", output index]. */
export type Link = [string, number];

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

const isLink = (v: unknown): boolean =>
  Array.isArray(v) &&
  v.length === 2 &&
  (typeof v[0] === "string" || typeof v[0] === "number") &&
  Number.isInteger(v[1]) &&
  v[1] >= 0;

/** A value as messages show it (long ones cut). */
export function show(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 60 ? `${text.slice(0, 60)}...` : text;
}

/** A ComfyUI error object. */
export function comfyError(type: string, message: string, details = "", extra_info = {}): ComfyError {
  return { type, message, details, extra_info };
}

/** `prompt` as nodes of known classes, or the refusal naming the nodes that are not. */
function checkShape(prompt: unknown, specs: Record<string, NodeSpec>): Record<string, WorkflowNode> {
  if (!isObject(prompt) || Object.keys(prompt).length === 0) {
    throw new WorkflowError(
      comfyError(
        "invalid_prompt",
        `prompt must be an object of nodes { "<node id>": { "class_type": ..., "inputs": { ... } } }, found ${show(prompt)}`,
      ),
    );
  }
  const unknown: Record<string, NodeErrors> = {};
  for (const [id, node] of Object.entries(prompt)) {
    if (!isObject(node) || typeof node.class_type !== "string" || !isObject(node.inputs)) {
      throw new WorkflowError(
        comfyError(
          "invalid_prompt",
          `node #${id} must be { "class_type": "<node class>", "inputs": { ... } }, found ${show(node)}`,
          `Node ID '#${id}'`,
        ),
      );
    }
    if (!Object.hasOwn(specs, node.class_type)) {
      const title = isObject(node._meta) ? node._meta.title : undefined;
      const error = comfyError(
        "missing_node_type",
        `class_type "${node.class_type}" is not a node of this server; it has ${Object.keys(specs).join(", ")}`,
        `Node ID '#${id}'`,
        { node_id: id, class_type: node.class_type, node_title: title ?? node.class_type },
      );
      unknown[id] = { errors: [error], dependent_outputs: [], class_type: node.class_type };
    }
  }
  const ids = Object.keys(unknown);
  if (ids.length > 0) {
    const first = unknown[ids[0]!]!.errors[0]!;
    const names = ids.map((id) => `#${id} (${unknown[id]!.class_type})`).join(", ");
    const error = {
      ...first,
      message: `this server does not have the node class of ${names}; it has ${Object.keys(specs).join(", ")}`,
    };
    throw new WorkflowError(error, unknown);
  }
  return prompt as unknown as Record<string, WorkflowNode>;
}

/**
 * Checks the inputs of every node an output depends on (ComfyUI's validation: required inputs, links to outputs of
 * the right type, numbers in range, names from the lists); returns the values, names as the catalog spells them.
 */
function checkInputs(
  workflow: Record<string, WorkflowNode>,
  specs: Record<string, NodeSpec>,
  outputs: string[],
): Map<string, Record<string, unknown>> {
  const values = new Map<string, Record<string, unknown>>();
  const errors = new Map<string, ComfyError[]>();
  const nodeErrors: Record<string, NodeErrors> = {};
  for (const output of outputs) {
    // the nodes this output depends on, through the links of their inputs (a stack: graphs can be deep)
    const reached = new Set<string>();
    const stack = [output];
    while (stack.length > 0) {
      const id = stack.pop()!;
      if (reached.has(id)) continue;
      reached.add(id);
      const node = workflow[id]!;
      if (!errors.has(id)) {
        const found: ComfyError[] = [];
        values.set(id, checkNode(node, specs, workflow, found));
        errors.set(id, found);
      }
      for (const name of Object.keys(specs[node.class_type]!.required)) {
        const v = node.inputs[name];
        if (isLink(v) && Object.hasOwn(workflow, String((v as Link)[0]))) stack.push(String((v as Link)[0]));
      }
    }
    for (const id of reached) {
      const found = errors.get(id)!;
      if (found.length === 0) continue;
      nodeErrors[id] ??= { errors: found, dependent_outputs: [], class_type: workflow[id]!.class_type };
      nodeErrors[id].dependent_outputs.push(output);
    }
  }
  if (Object.keys(nodeErrors).length > 0) {
    const details = Object.entries(nodeErrors)
      .flatMap(([id, n]) => n.errors.map((e) => `#${id} ${n.class_type}: ${e.message}`))
      .join("\n");
    throw new WorkflowError(
      comfyError("prompt_outputs_failed_validation", "Prompt outputs failed validation", details),
      nodeErrors,
    );
  }
  return values;
}

function describeSpec(spec: InputSpec): string {
  switch (spec.kind) {
    case "link":
      return `a link ["<node id>", <output index>] to a ${spec.type} output`;
    case "INT":
      return `an integer ${spec.min}..${spec.max}`;
    case "FLOAT":
      return `a number ${spec.min}..${spec.max}`;
    case "STRING":
      return "a string";
    case "COMBO":
      return "a name from /object_info";
  }
}

/** The checked values of one node's inputs; problems go to `errors`. */
function checkNode(
  node: WorkflowNode,
  specs: Record<string, NodeSpec>,
  workflow: Record<string, WorkflowNode>,
  errors: ComfyError[],
): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(specs[node.class_type]!.required)) {
    const v = node.inputs[name];
    const extra = { input_name: name, received_value: v };
    const fail = (type: string, message: string) => errors.push(comfyError(type, message, name, extra));
    if (v === undefined) {
      errors.push(
        comfyError("required_input_missing", `${name} is missing (expected ${describeSpec(spec)})`, name, {
          input_name: name,
        }),
      );
      continue;
    }
    if (spec.kind === "link" || isLink(v)) {
      if (!isLink(v)) {
        fail("bad_linked_input", `${name} must be ${describeSpec(spec)}, found ${show(v)}`);
        continue;
      }
      const [target, slot] = [String((v as Link)[0]), (v as Link)[1]];
      const source = workflow[target];
      if (!source || !Object.hasOwn(workflow, target)) {
        fail("bad_linked_input", `${name} links to node #${target}, which is not in the workflow`);
        continue;
      }
      const outputs = specs[source.class_type]!.outputs;
      const type = outputs[slot];
      const want = spec.kind === "link" ? spec.type : spec.kind;
      if (type !== want) {
        const has =
          outputs.length > 0 ? `outputs ${outputs.map((t, i) => `${i}: ${t}`).join(", ")}` : "no outputs";
        fail(
          "return_type_mismatch",
          `${name} expects ${spec.kind === "link" ? `a ${want} output` : `${describeSpec(spec)}`}, found a link to output ${slot} of node #${target} (${source.class_type}), which has ${has}`,
        );
        continue;
      }
      values[name] = [target, slot];
      continue;
    }
    switch (spec.kind) {
      case "INT":
      case "FLOAT": {
        const integer = spec.kind === "INT";
        if (typeof v !== "number" || !Number.isFinite(v) || (integer && !Number.isInteger(v))) {
          fail(
            "invalid_input_type",
            `${name} must be ${integer ? "an integer" : "a number"}, found ${show(v)}`,
          );
        } else if (v < spec.min) {
          fail("value_smaller_than_min", `${name} must be at least ${spec.min}, found ${v}`);
        } else if (v > spec.max) {
          fail("value_bigger_than_max", `${name} must be at most ${spec.max} on this server, found ${v}`);
        } else if (integer && spec.step && v % spec.step !== 0) {
          fail("invalid_input_type", `${name} must be a multiple of ${spec.step}, found ${v}`);
        } else values[name] = v;
        break;
      }
      case "STRING":
        if (typeof v !== "string") fail("invalid_input_type", `${name} must be a string, found ${show(v)}`);
        else values[name] = v;
        break;
      case "COMBO": {
        const accepted =
          typeof v === "string"
            ? (spec.accept?.(v) ?? (spec.options.includes(v) ? v : undefined))
            : undefined;
        if (accepted !== undefined) {
          values[name] = accepted;
          break;
        }
        const list =
          spec.options.length === 0
            ? "this server has none"
            : spec.options.length > 20
              ? `it is not one of the ${spec.options.length} names of /object_info`
              : `expected one of ${spec.options.join(", ")}`;
        fail("value_not_in_list", `${name} ${show(v)} is not known: ${list}`);
        break;
      }
    }
  }
  return values;
}

/** A checked workflow: its nodes, the checked input values of those the outputs need, the output node ids. */
export interface CheckedWorkflow {
  workflow: Record<string, WorkflowNode>;
  values: Map<string, Record<string, unknown>>;
  outputs: string[];
}

/** Checks a workflow as ComfyUI validates one (WorkflowError 400 otherwise). */
export function checkWorkflow(prompt: unknown, specs: Record<string, NodeSpec>): CheckedWorkflow {
  const workflow = checkShape(prompt, specs);
  const outputs = Object.keys(workflow)
    .filter((id) => specs[workflow[id]!.class_type]!.outputNode)
    .sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  if (outputs.length === 0) {
    throw new WorkflowError(
      comfyError(
        "prompt_no_outputs",
        "the workflow has no output node: it needs a SaveImage or PreviewImage (of a VAEDecode's images)",
      ),
    );
  }
  return { workflow, values: checkInputs(workflow, specs, outputs), outputs };
}

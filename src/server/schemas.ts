// JSON schemas shared by the routes (and so by the OpenAPI document).

/** Every 4xx / 5xx body. */
export const errorSchema = {
  type: "object",
  required: ["error", "message"],
  properties: {
    error: { type: "string", description: "the HTTP status text" },
    message: { type: "string", description: "what was expected, what was found" },
  },
} as const;

/** `:id` of the job routes: a job id as POST /api/v1/generate returned it. */
export const jobIdParams = {
  type: "object",
  required: ["id"],
  properties: {
    id: { type: "string", pattern: "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$" },
  },
} as const;

const progressSchema = {
  type: "object",
  properties: {
    step: { type: "integer" },
    total: { type: "integer" },
    etaSeconds: { type: "number" },
  },
} as const;

/** A job as the API shows it. */
export const jobSchema = {
  type: "object",
  required: ["id", "status"],
  properties: {
    id: { type: "string" },
    status: { type: "string", enum: ["queued", "running", "done", "error", "cancelled"] },
    position: { type: "integer", description: "jobs ahead of it (queued only)" },
    createdAt: { type: "number", description: "milliseconds since the epoch" },
    startedAt: { type: "number" },
    finishedAt: { type: "number" },
    progress: progressSchema,
    error: {
      type: "object",
      properties: { message: { type: "string" }, status: { type: "integer" } },
    },
    result: {
      type: "object",
      properties: {
        model: { type: "string" },
        warnings: { type: "array", items: { type: "string" } },
        images: {
          type: "array",
          items: {
            type: "object",
            properties: {
              url: { type: "string" },
              seed: { type: "integer" },
              parameters: { type: "string", description: "A1111's parameters text (also in the PNG)" },
            },
          },
        },
      },
    },
  },
} as const;

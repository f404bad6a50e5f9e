// The OpenAPI 3.1 document of the server, made from the routes' own JSON schemas as they are registered (so the
// document cannot drift from what is validated). OpenAPI 3.1 uses JSON Schema as it is, so the schemas go in as
// they are.
import type { FastifyInstance, RouteOptions } from "fastify";

declare module "fastify" {
  interface FastifySchema {
    /** One line on what the route does (the OpenAPI operation's summary). */
    summary?: string;
  }
}

interface RouteSchema {
  summary?: string;
  body?: unknown;
  params?: { properties?: Record<string, unknown>; required?: readonly string[] };
  querystring?: { properties?: Record<string, unknown>; required?: readonly string[] };
  response?: Record<string, unknown>;
}

/** Collects the routes registered after this call; `document()` builds the OpenAPI object from them. */
export function collectOpenApi(
  app: FastifyInstance,
  info: { title: string; version: string },
): { document: () => Record<string, unknown> } {
  const routes: { method: string; url: string; schema: RouteSchema }[] = [];
  app.addHook("onRoute", (route: RouteOptions) => {
    // routes that hide their schema (the web app's files) are not API
    if ((route.schema as { hide?: boolean } | undefined)?.hide) return;
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      if (method === "HEAD" || method === "OPTIONS") continue;
      routes.push({
        method: method.toLowerCase(),
        url: route.url,
        schema: (route.schema ?? {}) as RouteSchema,
      });
    }
  });
  const document = () => {
    const paths: Record<string, Record<string, unknown>> = {};
    for (const { method, url, schema } of routes) {
      const path = url.replace(/:([A-Za-z_]\w*)/g, "{$1}");
      const parameters = [
        ...parametersOf(schema.params, "path"),
        ...parametersOf(schema.querystring, "query"),
      ];
      const responses: Record<string, unknown> = {};
      for (const [status, body] of Object.entries(schema.response ?? {})) {
        responses[status.toUpperCase()] = {
          description: status.startsWith("2") ? "success" : "error: { error, message }",
          content: { "application/json": { schema: body } },
        };
      }
      if (Object.keys(responses).length === 0) responses["200"] = { description: "success" };
      paths[path] ??= {};
      paths[path][method] = {
        ...(schema.summary && { summary: schema.summary }),
        ...(parameters.length > 0 && { parameters }),
        ...(schema.body !== undefined && {
          requestBody: { required: true, content: { "application/json": { schema: schema.body } } },
        }),
        responses,
      };
    }
    return {
      openapi: "3.1.0",
      info,
      components: {
        securitySchemes: {
          bearer: { type: "http", scheme: "bearer" },
          apiKey: { type: "apiKey", in: "header", name: "x-api-key" },
        },
      },
      security: [{ bearer: [] }, { apiKey: [] }, {}],
      paths,
    };
  };
  return { document };
}

function parametersOf(schema: RouteSchema["params"], where: "path" | "query"): unknown[] {
  return Object.entries(schema?.properties ?? {}).map(([name, s]) => ({
    name,
    in: where,
    required: where === "path" || (schema?.required ?? []).includes(name),
    schema: s,
  }));
}

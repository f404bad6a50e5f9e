// ComfyUI's WebSocket, GET /ws?clientId=ID: JSON messages { type, data }. A prompt's messages go to the sockets of
// the client_id it was queued with (to every socket when it named none); `status` (the queue length) goes to all
// on every queue change, and to each new socket with its `sid`. What clients send is ignored. The upgrade request
// goes through the server's hooks like any other, so the API key is checked on it.
import { randomUUID } from "node:crypto";
import type { FastifyInstance } from "fastify";
import type { WebSocket } from "ws";

/** The sockets of /ws, by client id. */
export class ComfySockets {
  #clients = new Map<string, Set<WebSocket>>();

  constructor(
    /** Jobs running or waiting (ComfyUI's queue_remaining). */
    private readonly queueRemaining: () => number,
    /** Called when a client connects, after its `status` message (to tell it about its running prompt). */
    private readonly onConnect: (clientId: string) => void = () => {},
  ) {}

  /** Registers /ws on `app` (where @fastify/websocket is registered). */
  register(app: FastifyInstance): void {
    app.get<{ Querystring: { clientId?: string } }>(
      "/ws",
      {
        websocket: true,
        schema: {
          summary:
            "ComfyUI WebSocket: status, execution_start, executing, progress, executed, execution_success, execution_error, execution_interrupted",
          querystring: {
            type: "object",
            properties: { clientId: { type: "string", description: "the client_id of POST /prompt" } },
          },
        },
      },
      (socket, request) => {
        const given = request.query.clientId;
        // ComfyUI takes any client id; an odd or absent one gets a fresh id, reported as `sid`
        const clientId = given && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID().replace(/-/g, "");
        let sockets = this.#clients.get(clientId);
        if (!sockets) this.#clients.set(clientId, (sockets = new Set()));
        sockets.add(socket);
        socket.on("close", () => {
          sockets.delete(socket);
          if (sockets.size === 0 && this.#clients.get(clientId) === sockets) this.#clients.delete(clientId);
        });
        this.#write(socket, "status", { status: this.#status(), sid: clientId });
        this.onConnect(clientId);
      },
    );
  }

  /** Sends a message to the sockets of `clientId`, or to all when it is null. */
  send(type: string, data: Record<string, unknown>, clientId: string | null): void {
    const targets =
      clientId === null
        ? [...this.#clients.values()].flatMap((s) => [...s])
        : [...(this.#clients.get(clientId) ?? [])];
    for (const socket of targets) this.#write(socket, type, data);
  }

  /** Tells every client the queue length. */
  broadcastStatus(): void {
    this.send("status", { status: this.#status() }, null);
  }

  #status(): Record<string, unknown> {
    return { exec_info: { queue_remaining: this.queueRemaining() } };
  }

  #write(socket: WebSocket, type: string, data: Record<string, unknown>): void {
    if (socket.readyState === socket.OPEN) socket.send(JSON.stringify({ type, data }));
  }
}

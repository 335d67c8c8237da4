/**
 * The WebSocket client of API.md (`/v1/ws`): one socket multiplexing channels, re-authenticated
 * and re-subscribed after every reconnect, which happens with exponential backoff and jitter.
 */

export type ConnectionState = "connecting" | "online" | "offline";

export type Channel = "prices" | "candles" | "book" | "trades" | "positions" | "events";

/** Error reason of a server that dropped an events subscription fallen too far behind. */
const RESUME_REQUIRED = "RESUME_REQUIRED";

/** The subset of the browser WebSocket this client uses (tests pass a fake). */
export interface SocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: unknown) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

export type SocketFactory = (url: string) => SocketLike;

/** Timers and time, injectable so tests control them. */
export interface Clock {
  now(): number;
  setTimeout(callback: () => void, delayMs: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, delayMs) => setTimeout(callback, delayMs),
  clearTimeout: (handle) => {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};

export interface Subscription {
  readonly channel: Channel;
  /** Whether the channel needs an authenticated socket. */
  readonly private: boolean;
  /** The subscribe parameters, computed each time it is (re)sent (e.g. `fromSequence`). */
  params(): Readonly<Record<string, unknown>>;
  /** Called with the `data` of every frame of this channel. */
  onData(data: unknown): void;
}

export interface ServerError {
  readonly code?: number | string;
  readonly reason?: string;
  readonly message?: string;
}

export interface RealtimeOptions {
  readonly url: string;
  readonly createSocket: SocketFactory;
  readonly clock?: Clock;
  readonly random?: () => number;
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
  readonly heartbeatMs?: number;
  /** Silence after which the socket is presumed dead and replaced. */
  readonly idleTimeoutMs?: number;
  readonly onError?: (error: ServerError) => void;
}

/** Backoff before reconnect attempt `attempt` (0-based): doubling, capped, with jitter. */
export function backoffDelay(
  attempt: number,
  initialMs: number,
  maxMs: number,
  random: () => number,
): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export class RealtimeClient {
  private readonly options: Required<Omit<RealtimeOptions, "onError">> &
    Pick<RealtimeOptions, "onError">;
  private socket: SocketLike | null = null;
  private state: ConnectionState = "offline";
  private readonly subscriptions = new Set<Subscription>();
  private readonly stateListeners = new Set<(state: ConnectionState) => void>();
  private token: string | null = null;
  private authenticated = false;
  private running = false;
  private attempt = 0;
  private reconnectTimer: unknown = null;
  private heartbeatTimer: unknown = null;
  private lastFrameAt = 0;

  constructor(options: RealtimeOptions) {
    this.options = {
      clock: systemClock,
      random: Math.random,
      initialBackoffMs: 500,
      maxBackoffMs: 15_000,
      heartbeatMs: 10_000,
      idleTimeoutMs: 25_000,
      ...options,
    };
  }

  getState(): ConnectionState {
    return this.state;
  }

  /** When the last frame arrived (ms since the epoch), 0 before any. */
  getLastFrameAt(): number {
    return this.lastFrameAt;
  }

  onStateChange(listener: (state: ConnectionState) => void): () => void {
    this.stateListeners.add(listener);
    return () => {
      this.stateListeners.delete(listener);
    };
  }

  private setState(state: ConnectionState): void {
    if (state === this.state) {
      return;
    }
    this.state = state;
    for (const listener of this.stateListeners) {
      listener(state);
    }
  }

  start(): void {
    if (this.running) {
      return;
    }
    this.running = true;
    this.connect();
  }

  stop(): void {
    this.running = false;
    this.clearTimers();
    const socket = this.socket;
    this.socket = null;
    if (socket !== null) {
      this.detach(socket);
      socket.close(1000, "client stopped");
    }
    this.authenticated = false;
    this.setState("offline");
  }

  /** Use this access token for private channels (null: none); re-authenticates if open. */
  setToken(token: string | null): void {
    if (token === this.token) {
      return;
    }
    const hadToken = this.token !== null;
    this.token = token;
    if (this.socket === null || this.state !== "online") {
      return;
    }
    if (token === null) {
      // Private streams must not outlive the sign-out: start over without them.
      if (hadToken) {
        this.replaceSocket();
      }
      return;
    }
    this.sendFrame({ op: "auth", token });
  }

  subscribe(subscription: Subscription): () => void {
    this.subscriptions.add(subscription);
    if (this.canSend(subscription)) {
      this.sendFrame({ op: "subscribe", channel: subscription.channel, ...subscription.params() });
    }
    return () => {
      if (!this.subscriptions.delete(subscription)) {
        return;
      }
      if (this.canSend(subscription)) {
        this.sendFrame({
          op: "unsubscribe",
          channel: subscription.channel,
          ...subscription.params(),
        });
      }
    };
  }

  private canSend(subscription: Subscription): boolean {
    return (
      this.socket !== null &&
      this.state === "online" &&
      (!subscription.private || this.authenticated)
    );
  }

  private sendFrame(frame: Record<string, unknown>): void {
    if (this.socket === null) {
      return;
    }
    try {
      this.socket.send(JSON.stringify(frame));
    } catch {
      this.replaceSocket();
    }
  }

  private connect(): void {
    if (!this.running) {
      return;
    }
    this.setState("connecting");
    let socket: SocketLike;
    try {
      socket = this.options.createSocket(this.options.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    this.authenticated = false;
    socket.onopen = () => {
      this.onOpen(socket);
    };
    socket.onmessage = (event) => {
      this.onFrame(socket, event.data);
    };
    socket.onclose = () => {
      this.onClosed(socket);
    };
    socket.onerror = () => {
      // Browsers follow an error with a close; the reconnect happens there.
    };
  }

  private detach(socket: SocketLike): void {
    socket.onopen = null;
    socket.onmessage = null;
    socket.onclose = null;
    socket.onerror = null;
  }

  private onOpen(socket: SocketLike): void {
    if (socket !== this.socket) {
      return;
    }
    this.lastFrameAt = this.options.clock.now();
    this.setState("online");
    if (this.token !== null) {
      this.sendFrame({ op: "auth", token: this.token });
    }
    for (const subscription of this.subscriptions) {
      if (!subscription.private) {
        this.sendFrame({ op: "subscribe", channel: subscription.channel, ...subscription.params() });
      }
    }
    this.armHeartbeat();
  }

  private onAuthenticated(): void {
    const first = !this.authenticated;
    this.authenticated = true;
    if (!first) {
      return;
    }
    for (const subscription of this.subscriptions) {
      if (subscription.private) {
        this.sendFrame({ op: "subscribe", channel: subscription.channel, ...subscription.params() });
      }
    }
  }

  private onFrame(socket: SocketLike, raw: unknown): void {
    if (socket !== this.socket || typeof raw !== "string") {
      return;
    }
    this.lastFrameAt = this.options.clock.now();
    // A frame proves the connection works: the next failure starts the backoff afresh.
    this.attempt = 0;
    let frame: unknown;
    try {
      frame = JSON.parse(raw);
    } catch {
      return;
    }
    if (!isRecord(frame)) {
      return;
    }
    if (frame.type === "ack") {
      if (frame.op === "auth") {
        this.onAuthenticated();
      }
      return;
    }
    if (frame.type === "error") {
      const error = isRecord(frame.error) ? (frame.error as ServerError) : {};
      if (error.reason === "TOKEN_EXPIRED" || error.reason === "TOKEN_INVALID") {
        // The server dropped or refused the private channels: resend them after the next auth.
        this.authenticated = false;
      }
      if (error.reason === RESUME_REQUIRED && typeof frame.channel === "string") {
        this.resubscribe(frame.channel);
      }
      this.options.onError?.(error);
      return;
    }
    if (typeof frame.channel !== "string") {
      return;
    }
    for (const subscription of [...this.subscriptions]) {
      if (subscription.channel === frame.channel) {
        subscription.onData(frame.data);
      }
    }
  }

  /** Send the subscriptions of a channel the server dropped again, with fresh parameters. */
  private resubscribe(channel: string): void {
    for (const subscription of this.subscriptions) {
      if (subscription.channel === channel && this.canSend(subscription)) {
        this.sendFrame({ op: "subscribe", channel, ...subscription.params() });
      }
    }
  }

  private onClosed(socket: SocketLike): void {
    if (socket !== this.socket) {
      return;
    }
    this.detach(socket);
    this.socket = null;
    this.authenticated = false;
    this.clearTimers();
    if (!this.running) {
      this.setState("offline");
      return;
    }
    this.setState("offline");
    this.scheduleReconnect();
  }

  private replaceSocket(): void {
    const socket = this.socket;
    if (socket === null) {
      return;
    }
    this.detach(socket);
    try {
      socket.close(4000, "replaced");
    } catch {
      // Already closed; nothing to release.
    }
    this.onClosed(socket);
    this.socket = null;
  }

  private scheduleReconnect(): void {
    if (!this.running) {
      return;
    }
    const delay = backoffDelay(
      this.attempt,
      this.options.initialBackoffMs,
      this.options.maxBackoffMs,
      this.options.random,
    );
    this.attempt += 1;
    this.reconnectTimer = this.options.clock.setTimeout(() => {
      this.reconnectTimer = null;
      this.connect();
    }, delay);
  }

  private armHeartbeat(): void {
    this.heartbeatTimer = this.options.clock.setTimeout(() => {
      this.heartbeatTimer = null;
      if (this.socket === null) {
        return;
      }
      const silence = this.options.clock.now() - this.lastFrameAt;
      if (silence >= this.options.idleTimeoutMs) {
        this.replaceSocket();
        return;
      }
      this.sendFrame({ op: "ping" });
      this.armHeartbeat();
    }, this.options.heartbeatMs);
  }

  private clearTimers(): void {
    if (this.reconnectTimer !== null) {
      this.options.clock.clearTimeout(this.reconnectTimer);
      this.reconnectTimer = null;
    }
    if (this.heartbeatTimer !== null) {
      this.options.clock.clearTimeout(this.heartbeatTimer);
      this.heartbeatTimer = null;
    }
  }
}

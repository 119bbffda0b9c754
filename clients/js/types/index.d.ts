// Types of @ptyhub/client (src/index.js). The protocol's messages are described in docs/protocol.md;
// the section of each is named in the comments.

/** A terminal object (docs/protocol.md §5). */
export interface TerminalInfo {
  id: string;
  channel: string;
  kind: 'shell' | 'git' | string;
  name: string;
  owner: string;
  command: string[];
  cwd: string;
  cols: number;
  rows: number;
  pid: number | null;
  createdAt: string;
  state: 'running' | 'exited';
  exitCode: number | null;
  signal: string | null;
  outputBytes: number;
  lastActivity: string;
  node?: string;
  reason?: string;
}

/** `auth.ok` data (§2). */
export interface AuthOk {
  user: string;
  scopes: string[];
  expiresAt: string;
}

/** The range of a subscription's replay (§4 `subscribed.replay`). */
export interface ReplayRange {
  from: number;
  to: number;
}

/** Raw bytes [offset, next) of a terminal's output (§6); `data` is bytes with `encoding: 'base64'`. */
export interface OutputChunk {
  type: 'output';
  terminalId: string;
  offset: number;
  next: number;
  data: string | Uint8Array;
  /** true when `offset < replay.to` of the latest subscription: history, not live output (§4) */
  replayed: boolean;
}

/**
 * `shell.snapshot` (§6, Snapshots): bytes that, written to a fresh terminal of `cols` x `rows`, reproduce the screen
 * (they begin with RIS, `ESC c`, and contain no query); live output follows from exactly `offset`.
 */
export interface SnapshotItem {
  type: 'snapshot';
  terminalId: string;
  /** Where the live output continues (`next` is the same). */
  offset: number;
  next: number;
  cols: number;
  rows: number;
  data: string | Uint8Array;
  /** false when the daemon's screen model could not follow every byte (`reason` says why). */
  exact: boolean;
  reason?: 'history_before_ring' | 'output_skipped' | string;
}

/** The latest snapshot of an attachment, without its data. */
export type SnapshotInfo = Omit<SnapshotItem, 'type' | 'terminalId' | 'next' | 'data'>;

/** One user following a terminal (presence: `subscribed.viewers`, `shell.viewers`). */
export interface Viewer {
  user: string;
  role: 'owner' | 'write' | 'read';
  /** ISO 8601: that user's first current subscription. */
  since: string;
  /** How many of that user's connections are subscribed. */
  connections: number;
}

/** Output lost between `from` and `to` (§4, §6 `shell.gap`). */
export interface GapItem {
  type: 'gap';
  terminalId: string;
  from: number;
  to: number;
}

/** `shell.exit` data (§6). */
export interface ExitInfo {
  terminalId: string;
  exitCode: number | null;
  signal: string | null;
  durationMs?: number;
  outputBytes: number;
  reason?: string;
}

export type ConnectionStatus = 'idle' | 'connecting' | 'live' | 'reconnecting' | 'signed-out';

/** Any ptyhub.v1 message (§3). */
export interface Message {
  type: string;
  id?: string | number;
  channel?: string;
  data?: any;
}

export interface ClientOptions {
  /** `ws://host:port/ws` or `wss://…` (§1) */
  url: string;
  /** a JWT (§2) */
  token: string;
  /** Called before the token expires (and before connecting with an expired one); resolves to a fresh token. */
  refreshToken?: (current: { expiresAt: number | null; token: string }) => Promise<string>;
  /** A WebSocket constructor; default `globalThis.WebSocket` (pass `ws`'s in Node < 22). */
  WebSocket?: new (url: string, protocols: string[]) => any;
  /** Delays of successive reconnections (ms); default [1000, 2000, 4000, 8000, 15000, 30000]. A 1012 close reconnects at once. */
  backoffMs?: number[];
  /** How long before expiry the token is renewed; default a quarter of its remaining life, at most 60 s. */
  refreshMarginMs?: number;
  /** Connect at once (default true). */
  connect?: boolean;
}

export class RequestError extends Error {
  code: string;
  field?: string;
}

type Listener<A extends any[]> = (...args: A) => void;

export class Emitter<Events extends Record<string, any[]> = Record<string, any[]>> {
  on<K extends keyof Events & string>(event: K, listener: Listener<Events[K]>): () => void;
  once<K extends keyof Events & string>(event: K, listener: Listener<Events[K]>): () => void;
  off<K extends keyof Events & string>(event: K, listener: Listener<Events[K]>): void;
  emit<K extends keyof Events & string>(event: K, ...args: Events[K]): void;
}

export interface ConnectionEvents {
  status: [status: ConnectionStatus, detail?: number];
  live: [authOk: AuthOk];
  auth: [authOk: AuthOk];
  message: [msg: Message];
  close: [event: { code: number; reason: string }];
  reconnecting: [info: { delayMs: number; code?: number; attempt: number }];
  signedout: [reason: string];
  refresherror: [error: Error];
  token: [token: string];
  [event: string]: any[];
}

export interface RequestOptions {
  /** Runs synchronously as the reply is read; its result is what the request resolves with. */
  onReply?: (reply: Message) => any;
}

export class Connection extends Emitter<ConnectionEvents> {
  constructor(options: ClientOptions);
  readonly status: ConnectionStatus;
  readonly token: string;
  readonly expiresAt: number | null;
  readonly authOk: AuthOk | null;
  start(): void;
  setToken(token: string): void;
  stop(): void;
  drop(): void;
  request(type: string, data?: object, options?: RequestOptions): Promise<any>;
  refresh(token: string): Promise<AuthOk>;
  reconnectNow(): void;
}

export interface AttachOptions {
  /**
   * Start from a snapshot of the screen (§4 `subscribe {snapshot: true}`, §6 Snapshots), then live output from its
   * offset. Default: true unless `since` is given (the two exclude each other). A daemon with snapshots
   * off is asked again without one (the retained output is replayed).
   */
  snapshot?: boolean;
  /** First offset wanted (§4 `since`); with it the history from there is replayed and no snapshot is asked for. */
  since?: number;
  /** 'utf8' (default, `data` is text) or 'base64' (`data` is a Uint8Array of the exact bytes). */
  encoding?: 'utf8' | 'base64';
  /** Unconsumed bytes above which the terminal is paused (default 256 KiB). */
  highWaterMark?: number;
  /** Unconsumed bytes below which it is resumed (default 64 KiB). */
  lowWaterMark?: number;
}

export interface AttachmentStats {
  snapshots: number;
  chunks: number;
  bytes: number;
  replayed: number;
  holes: number;
  overlaps: number;
  gaps: number;
  pauses: number;
  resumes: number;
  resumptions: number;
}

export interface AttachmentEvents {
  snapshot: [snapshot: SnapshotItem];
  output: [chunk: OutputChunk];
  viewers: [viewers: Viewer[]];
  gap: [gap: GapItem];
  exit: [exit: ExitInfo];
  resized: [size: { cols: number; rows: number }];
  subscribed: [info: { terminal: TerminalInfo; replay: ReplayRange; resumed: boolean }];
  unsubscribed: [info: { reason?: string }];
  pause: [];
  resume: [];
  message: [msg: Message];
  error: [error: Error];
  close: [error: Error | null];
  [event: string]: any[];
}

export class Attachment extends Emitter<AttachmentEvents> implements AsyncIterable<SnapshotItem | OutputChunk | GapItem> {
  readonly client: PtyhubClient;
  readonly terminalId: string;
  readonly channel: string;
  /** The offset of the next byte expected. */
  readonly next: number;
  readonly terminal: TerminalInfo | null;
  readonly subscribed: boolean;
  readonly closed: boolean;
  readonly exit: ExitInfo | null;
  readonly paused: boolean;
  readonly holds: Set<string>;
  readonly stats: AttachmentStats;
  /** The latest snapshot received (its data was delivered as the first item), or null. */
  readonly snapshot: SnapshotInfo | null;
  /** Who follows the terminal: the `subscribed` reply's list, then each `shell.viewers`; null if the daemon sends none. */
  readonly viewers: Viewer[] | null;
  /** The first subscription: resolves with its terminal, replay range and viewers. */
  readonly ready: Promise<{ terminal: TerminalInfo; replay: ReplayRange; viewers: Viewer[] | null }>;
  pause(reason?: string): Promise<void>;
  resume(): Promise<void>;
  resumeHold(reason: string): Promise<void>;
  input(data: string | Uint8Array, options?: { encoding?: 'utf8' | 'base64' }): Promise<Message>;
  resize(cols: number, rows: number): Promise<Message>;
  kill(signal?: 'SIGHUP' | 'SIGINT' | 'SIGTERM' | 'SIGKILL'): Promise<Message>;
  share(user: string, mode: 'read' | 'write' | 'none'): Promise<Message>;
  detach(): Promise<void>;
  close(error?: Error | null): void;
  [Symbol.asyncIterator](): AsyncIterator<SnapshotItem | OutputChunk | GapItem>;
}

export interface TerminalWatchEvents {
  snapshot: [terminals: TerminalInfo[]];
  created: [terminal: TerminalInfo];
  exit: [exit: ExitInfo];
  removed: [info: { terminalId: string }];
  'git.started': [started: GitStarted];
  'git.completed': [completed: GitCompleted];
  message: [msg: Message];
  error: [error: Error];
  [event: string]: any[];
}

export class TerminalWatch extends Emitter<TerminalWatchEvents> {
  readonly terminals: Map<string, TerminalInfo>;
  readonly ready: Promise<TerminalInfo[]>;
  list(): TerminalInfo[];
  close(): Promise<void>;
}

export interface CreateOptions extends Omit<AttachOptions, 'since' | 'snapshot'> {
  command?: string[];
  cwd?: string;
  env?: Record<string, string>;
  cols?: number;
  rows?: number;
  name?: string;
  node?: string;
}

/** `git.operation.started` data (§4). */
export interface GitStarted {
  operationId: string;
  terminalId: string;
  operation: string;
  repo: string;
  args: string[];
  startedAt: string;
}

/** `git.operation.progress` data (§4). */
export interface GitProgress {
  phase: string;
  current: number;
  total: number | null;
  percent: number | null;
}

/** `git.operation.completed` data (§4). */
export interface GitCompleted {
  operationId: string;
  terminalId: string;
  operation: string;
  repo: string;
  status: 'succeeded' | 'failed' | 'cancelled' | 'timed_out';
  exitCode: number | null;
  durationMs: number;
}

export interface GitStartOptions {
  operation: 'clone' | 'fetch' | 'pull' | 'push' | 'status' | 'log' | 'diff' | 'checkout' | 'branch';
  repo: string;
  args?: string[];
  url?: string;
  highWaterMark?: number;
  lowWaterMark?: number;
}

export interface GitOperationEvents {
  progress: [progress: GitProgress];
  completed: [completed: GitCompleted];
  output: [chunk: OutputChunk];
  gap: [gap: GapItem];
  exit: [exit: ExitInfo];
  [event: string]: any[];
}

export class GitOperation extends Emitter<GitOperationEvents> {
  readonly operationId: string;
  readonly terminalId: string;
  readonly operation: string;
  readonly repo: string;
  readonly started: GitStarted;
  readonly attachment: Attachment;
  readonly phases: Map<string, GitProgress>;
  readonly completed: GitCompleted | null;
  /** Resolves with the completion. */
  readonly done: Promise<GitCompleted>;
  cancel(): Promise<Message>;
}

export interface ClientEvents extends ConnectionEvents {}

export class PtyhubClient extends Emitter<ClientEvents> {
  constructor(options: ClientOptions);
  readonly connection: Connection;
  readonly status: ConnectionStatus;
  readonly live: boolean;
  readonly auth: AuthOk | null;
  readonly token: string;
  readonly attachments: Map<string, Attachment>;
  connect(): void;
  setToken(token: string): void;
  close(): void;
  ready(): Promise<AuthOk>;
  request(type: string, data?: object, options?: RequestOptions): Promise<any>;
  refresh(token: string): Promise<AuthOk>;
  drop(): void;
  reconnectNow(): void;
  createTerminal(options?: CreateOptions): Promise<Attachment>;
  attach(terminalId: string, options?: AttachOptions): Attachment;
  list(options?: { state?: 'running' | 'exited' }): Promise<TerminalInfo[]>;
  watchTerminals(): TerminalWatch;
  input(terminalId: string, data: string | Uint8Array, options?: { encoding?: 'utf8' | 'base64' }): Promise<Message>;
  resize(terminalId: string, cols: number, rows: number): Promise<Message>;
  kill(terminalId: string, signal?: 'SIGHUP' | 'SIGINT' | 'SIGTERM' | 'SIGKILL'): Promise<Message>;
  share(terminalId: string, user: string, mode: 'read' | 'write' | 'none'): Promise<Message>;
  dismiss(terminalId: string): Promise<Message>;
  startGit(options: GitStartOptions): Promise<GitOperation>;
  cancelGit(operationId: string): Promise<Message>;
}

export function connect(url: string, token: string, options?: Omit<ClientOptions, 'url' | 'token'>): PtyhubClient;
export const kDefaultBackoffMs: number[];
export function readClaims(token: string): Record<string, unknown> | null;
export function expiryOf(token: string): number | null;
export function decodeBase64(text: string): Uint8Array;
export function encodeBase64(bytes: Uint8Array): string;

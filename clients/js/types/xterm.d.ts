// Types of @ptyhub/client/xterm (src/xterm.js). The Terminal is any object with xterm.js's
// `write`, `onData` and `onResize` (`@xterm/xterm` ≥ 5).
import type { Attachment, ExitInfo, GapItem, SnapshotItem } from './index.js';

export interface XtermLike {
  write(data: string | Uint8Array, callback?: () => void): void;
  /** Full reset, before a snapshot is written. */
  reset(): void;
  /** Set to a snapshot's size when it differs (optional: without it the snapshot is written as is). */
  resize?(cols: number, rows: number): void;
  readonly cols?: number;
  readonly rows?: number;
  onData(listener: (data: string) => void): { dispose(): void };
  onResize(listener: (size: { cols: number; rows: number }) => void): { dispose(): void };
}

export interface BindOptions {
  /** Characters written and not yet parsed: pause above `high`, resume below `low` (read at each chunk). */
  flowControl?: { high: number; low: number };
  /** Whether keys are sent (default true); a function decides per key. */
  input?: boolean | ((data: string) => boolean);
  /** Whether size changes are sent (default true); a function decides per change. */
  resize?: boolean | ((cols: number, rows: number) => boolean);
  /** After an input or resize request succeeded. */
  onSent?: (what: 'input' | 'resize', detail: string | { cols: number; rows: number }) => void;
  /** When an input or resize request failed (e.g. `forbidden` on a read-only share). */
  onError?: (error: Error & { code?: string }, what: 'input' | 'resize', detail: string | { cols: number; rows: number }) => void;
  /** The text written for a gap; null writes nothing. */
  gapNote?: (gap: GapItem) => string | null;
  /** The text written at the exit; null writes nothing. */
  exitNote?: (exit: ExitInfo) => string | null;
  /** After a snapshot was parsed (the emulator has the snapshot's size: fit it to yours now). */
  onSnapshot?: (snapshot: SnapshotItem) => void;
}

export interface Binding {
  readonly stats: { droppedInput: number; pendingChars: number; snapshots: number };
  readonly paused: boolean;
  readonly replaying: boolean;
  dispose(): void;
}

export function bindXterm(term: XtermLike, attachment: Attachment, options?: BindOptions): Binding;
export function exitLabel(exit: ExitInfo): string;

// The queue behind `for await (const chunk of attachment)`: items pushed by the attachment wait here
// until the consumer takes them. Its size (bytes of output not yet taken) drives flow control: above
// `high` it calls `onHigh` (the attachment sends `shell.pause`, docs/protocol.md §6), and once the
// consumer has taken enough to be under `low`, `onLow` (`shell.resume`).

export class ChunkQueue {
  // Empty and open.
  // options: {high, low, onHigh(), onLow(), onClose()}
  constructor({ high, low, onHigh, onLow, onClose }) {
    this.high = high;
    this.low = low;
    this.onHigh = onHigh;
    this.onLow = onLow;
    this.onClose = onClose;
    this.items = [];
    this.bytes = 0;
    this.waiter = null;
    this.ended = false;
    this.failure = null;
    this.full = false;
  }

  // Adds one item of `size` bytes, or hands it to a consumer that is waiting.
  push(item, size = 0) {
    if (this.ended) return;
    if (this.waiter) {
      const { resolve } = this.waiter;
      this.waiter = null;
      resolve({ value: item, done: false });
      return;
    }
    this.items.push({ item, size });
    this.bytes += size;
    if (!this.full && this.bytes > this.high) {
      this.full = true;
      this.onHigh();
    }
  }

  // Ends the iteration once the queued items are taken; with `error`, the iteration throws it.
  end(error = null) {
    if (this.ended) return;
    this.ended = true;
    this.failure = error;
    if (this.waiter && this.items.length === 0) this.settleWaiter();
  }

  // Ends the wait of a consumer: done, or the failure.
  settleWaiter() {
    const { resolve, reject } = this.waiter;
    this.waiter = null;
    if (this.failure) reject(this.failure);
    else resolve({ value: undefined, done: true });
  }

  // The async iterator protocol: the next item, waiting for one when the queue is empty.
  next() {
    if (this.items.length > 0) {
      const { item, size } = this.items.shift();
      this.bytes -= size;
      if (this.full && this.bytes <= this.low) {
        this.full = false;
        this.onLow();
      }
      return Promise.resolve({ value: item, done: false });
    }
    if (this.ended) {
      if (this.failure) {
        const failure = this.failure;
        this.failure = null;
        return Promise.reject(failure);
      }
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  // `break` out of the loop: the queue is dropped and flow control released.
  return() {
    this.items = [];
    this.bytes = 0;
    if (this.full) {
      this.full = false;
      this.onLow();
    }
    this.ended = true;
    if (this.waiter) this.settleWaiter();
    this.onClose();
    return Promise.resolve({ value: undefined, done: true });
  }

  // The queue is its own iterator.
  [Symbol.asyncIterator]() {
    return this;
  }
}

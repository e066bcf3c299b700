// One WebSocket per open conversation, reconnecting with backoff. After every
// (re)connect the server sends the recent messages; we then ask it to replay
// whatever came after the last seq we have, so nothing is lost or doubled.

const NO_RETRY = new Set([4401, 4403, 4404]);
const TURNS = new Set(["query", "regenerate", "edit"]); // frames that start a turn

export class ThreadSocket {
  constructor(sessionId, { onFrame, onStatus, lastSeq }) {
    this.sessionId = sessionId;
    this.onFrame = onFrame;
    this.onStatus = onStatus;
    this.lastSeq = lastSeq; // () => the highest seq the view holds
    this.delay = 500;
    this.closed = false;
    this.outbox = [];
    this.open();
  }

  open() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws/sessions/${this.sessionId}`);
    this.ws = ws;
    ws.onopen = () => {
      this.delay = 500;
      this.onStatus("connected");
      this.pinger = setInterval(() => this.send({ type: "ping" }), 25000);
    };
    ws.onmessage = (event) => this.received(JSON.parse(event.data));
    ws.onclose = (event) => this.lost(event);
  }

  received(frame) {
    if (frame.type === "session") {
      this.onFrame(frame);
      this.send({ type: "resume", after_seq: this.lastSeq() });
      for (const queued of this.outbox.splice(0)) this.send(queued);
      return;
    }
    if (frame.type !== "pong") this.onFrame(frame);
  }

  lost(event) {
    clearInterval(this.pinger);
    if (this.closed) return;
    if (NO_RETRY.has(event.code)) {
      this.onStatus(event.code === 4404 ? "gone" : "refused");
      return;
    }
    this.onStatus("reconnecting");
    setTimeout(() => !this.closed && this.open(), this.delay);
    this.delay = Math.min(this.delay * 2, 10000);
  }

  get ready() {
    return this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  send(frame) {
    if (this.ready) this.ws.send(JSON.stringify(frame));
    else if (TURNS.has(frame.type)) this.outbox.push(frame); // sent once connected again
  }

  close() {
    this.closed = true;
    clearInterval(this.pinger);
    if (this.ws) this.ws.close(1000);
  }
}

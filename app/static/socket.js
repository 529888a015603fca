// One socket to the room that comes back by itself: exponential backoff with jitter (at most
// 5 s), and at once when the browser is back online or the page back in view. Frames of a
// socket that has been replaced are ignored. `stop()` ends the retries for good.
const MAX_DELAY_MS = 5000;

export function reconnectingSocket({ url, protocol, onConnecting, onFrame, onClose }) {
  let socket = null;
  let attempt = 0;
  let retryTimer = null;

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    onConnecting();
    const ws = new WebSocket(url(), protocol);
    socket = ws;
    ws.onmessage = (event) => {
      if (ws === socket) onFrame(JSON.parse(event.data));
    };
    ws.onclose = (event) => {
      if (ws !== socket) return;
      socket = null;
      const delay = Math.min(MAX_DELAY_MS, 250 * 2 ** attempt) * (0.75 + Math.random() / 2);
      attempt += 1;
      retryTimer = setTimeout(connect, delay);
      onClose(event.code, delay, event.reason); // may stop() the retry
    };
  }

  // Back online or back in view: try now rather than at the end of a long backoff.
  function retryNow() {
    if (retryTimer !== null && !document.hidden) connect();
  }

  window.addEventListener("online", retryNow);
  document.addEventListener("visibilitychange", retryNow);

  return {
    start: connect,
    send(text) {
      socket.send(text);
    },
    // Drop this connection and make a new one (after the usual backoff).
    reconnect() {
      socket?.close();
    },
    // The connection proved itself: the next drop starts the backoff from the beginning.
    settled() {
      attempt = 0;
    },
    // No more retries (a refusal that retrying cannot change).
    stop() {
      clearTimeout(retryTimer);
      retryTimer = null;
    },
    // Connect again now (the URL changed), dropping the current connection.
    restart() {
      const old = socket;
      socket = null;
      if (old) old.close(1000);
      attempt = 0;
      connect();
    },
  };
}

"use strict";
// The chat room page: the backlog, live messages, paging back, and reconnecting with ?since=
// so that a reader neither misses nor repeats a message. Message text is only ever set as
// textContent, never parsed as HTML.
(() => {
  const PAGE = 50;
  const MAX_DELAY_MS = 5000;
  const NEAR_BOTTOM_PX = 48;
  // Close codes after which the reader should know why (all of them still reconnect).
  const CLOSE_NOTES = {
    1001: "The server is restarting; reconnecting.",
    1008: "The server closed the connection: messages were sent too fast.",
    1009: "The server refused a message that was too large.",
    1011: "The server had a problem; reconnecting.",
    1012: "The server is restarting; reconnecting.",
    1013: "The connection fell behind; reconnecting.",
  };
  const LASTING_NOTES = new Set([1008, 1009]);

  const $ = (id) => document.getElementById(id);
  const roomId = $("room-id").textContent;
  const form = $("send");
  const input = $("messageText");
  const sendButton = $("sendButton");
  const list = $("messages");
  const scroller = $("scroller");
  const statusEl = $("status");
  const note = $("note");
  const sizeHint = $("sizeHint");
  const earlierButton = $("loadEarlier");
  const beginning = $("beginning");
  const jump = $("jump");
  const maxBytes = Number(form.dataset.maxBytes);
  const replaySize = Number(form.dataset.historyReplay);
  const encoder = new TextEncoder();
  const ownIds = rememberedOwnIds(roomId);

  const seen = new Set(); // ids shown: replays and pages may overlap what is already there
  let newestId = null; // the resume cursor for ?since=
  let oldestId = null; // the cursor for before=
  let joined = false; // the first replay is over: later connections resume with ?since=
  let socket = null;
  let connected = false;
  let attempt = 0;
  let retryTimer = null;
  let unread = 0;
  // Texts sent and not yet echoed back: after a drop, the resumed replay tells which arrived.
  let unconfirmed = [];

  // --- showing messages ---

  function render(message, own) {
    const item = document.createElement("li");
    item.className = own ? "message own" : "message";
    item.dataset.id = String(message.id);
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = message.text;
    item.append(text, window.chatTime.element(message.created_at));
    return item;
  }

  function atBottom() {
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < NEAR_BOTTOM_PX;
  }

  function markRead() {
    unread = 0;
    jump.hidden = true;
  }

  function scrollToBottom() {
    scroller.scrollTop = scroller.scrollHeight;
    markRead();
  }

  function append(message, own) {
    if (seen.has(message.id)) return;
    seen.add(message.id);
    const follow = own || atBottom();
    list.append(render(message, own));
    newestId = newestId === null ? message.id : Math.max(newestId, message.id);
    if (oldestId === null) oldestId = message.id;
    if (follow) {
      scrollToBottom();
    } else {
      unread += 1;
      jump.textContent = `${unread} new message${unread === 1 ? "" : "s"} ↓`;
      jump.hidden = false;
    }
  }

  // Older messages go on top; the reader's view stays where it was.
  function prepend(messages) {
    const fromBottom = scroller.scrollHeight - scroller.scrollTop;
    const fragment = document.createDocumentFragment();
    for (const message of messages) {
      if (seen.has(message.id)) continue;
      seen.add(message.id);
      fragment.append(render(message, ownIds.has(message.id)));
      oldestId = Math.min(oldestId, message.id);
    }
    list.prepend(fragment);
    if (messages.length < PAGE) showBeginning();
    scroller.scrollTop = scroller.scrollHeight - fromBottom;
  }

  function showBeginning() {
    earlierButton.hidden = true;
    beginning.hidden = false;
  }

  function addDivider() {
    const divider = document.createElement("li");
    divider.className = "divider";
    divider.setAttribute("role", "separator");
    divider.textContent = "new messages";
    list.append(divider);
  }

  // --- the socket ---

  function socketUrl() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const since = joined ? `?since=${newestId ?? 0}` : "";
    return `${scheme}//${location.host}/${encodeURIComponent(roomId)}${since}`;
  }

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    setStatus("connecting", joined ? "reconnecting" : "connecting");
    const ws = new WebSocket(socketUrl(), "chat.v1.json");
    socket = ws;
    const replayed = [];
    ws.onmessage = (event) => {
      if (ws !== socket) return;
      const frame = JSON.parse(event.data);
      if (frame.type === "message") onMessage(frame, replayed);
      else if (frame.type === "history_end") onReplayEnd(replayed);
    };
    ws.onclose = (event) => {
      if (ws === socket) onClose(event.code);
    };
  }

  function onMessage(frame, replayed) {
    if (!frame.history) {
      if (frame.own) {
        settle(frame.text);
        ownIds.add(frame.id);
      }
      append(frame, frame.own);
      return;
    }
    // A message stored while this page was away may be one of its own unconfirmed sends.
    const own = ownIds.has(frame.id) || (!seen.has(frame.id) && settle(frame.text));
    if (own) ownIds.add(frame.id);
    append(frame, own);
    replayed.push(frame);
  }

  function settle(text) {
    const index = unconfirmed.indexOf(text);
    if (index >= 0) unconfirmed.splice(index, 1);
    return index >= 0;
  }

  function onReplayEnd(replayed) {
    if (!joined) {
      joined = true;
      if (replayed.length > 0) addDivider();
      if (replayed.length < replaySize) showBeginning();
      else earlierButton.hidden = false;
      scrollToBottom();
    } else {
      restoreUnsent();
    }
    attempt = 0;
    connected = true;
    setStatus("connected", "connected");
    if (!note.dataset.lasting) hideNote();
    updateComposer();
  }

  // Sends the server never stored (the replay did not bring them back) return to the input.
  function restoreUnsent() {
    if (unconfirmed.length === 0) return;
    if (!input.value) input.value = unconfirmed[0];
    unconfirmed = [];
    showNote("A message was not delivered; it is back in the box: press Enter to send it again.");
  }

  function onClose(code) {
    socket = null;
    connected = false;
    updateComposer();
    if (CLOSE_NOTES[code]) showNote(CLOSE_NOTES[code], LASTING_NOTES.has(code));
    const delay = Math.min(MAX_DELAY_MS, 250 * 2 ** attempt) * (0.75 + Math.random() / 2);
    attempt += 1;
    setStatus("disconnected", `disconnected, retrying in ${Math.ceil(delay / 1000)} s`);
    retryTimer = setTimeout(connect, delay);
  }

  // Back online or back in view: try now rather than at the end of a long backoff.
  function retryNow() {
    if (retryTimer !== null && !document.hidden) connect();
  }

  function setStatus(state, text) {
    statusEl.dataset.state = state;
    statusEl.textContent = text;
  }

  function showNote(text, lasting = false) {
    note.textContent = text;
    note.hidden = false;
    if (lasting) note.dataset.lasting = "1";
    else delete note.dataset.lasting;
  }

  function hideNote() {
    note.hidden = true;
    delete note.dataset.lasting;
  }

  // --- sending ---

  function byteLength(text) {
    return encoder.encode(text).length;
  }

  function updateComposer() {
    const bytes = byteLength(input.value);
    const over = bytes > maxBytes;
    input.disabled = !connected;
    sendButton.disabled = !connected || over;
    input.setAttribute("aria-invalid", String(over));
    sizeHint.hidden = bytes < maxBytes * 0.8;
    sizeHint.classList.toggle("over", over);
    sizeHint.textContent = over
      ? `Too long: ${bytes} of at most ${maxBytes} bytes.`
      : `${bytes} of ${maxBytes} bytes`;
  }

  function send(event) {
    event.preventDefault();
    const text = input.value;
    if (!connected || !text.trim() || byteLength(text) > maxBytes) return;
    socket.send(text);
    unconfirmed.push(text);
    input.value = "";
    if (note.dataset.lasting) hideNote();
    updateComposer();
  }

  // --- paging back ---

  async function loadEarlier() {
    if (oldestId === null) return;
    earlierButton.disabled = true;
    try {
      const query = new URLSearchParams({ limit: String(PAGE), before: String(oldestId) });
      const response = await fetch(`/rooms/${encodeURIComponent(roomId)}/messages?${query}`);
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      prepend(await response.json());
    } catch (error) {
      showNote(`Earlier messages could not be loaded (${error.message}); try again.`);
    } finally {
      earlierButton.disabled = false;
    }
  }

  // Own ids are kept per room in this browser, so that a reload still sets them apart.
  function rememberedOwnIds(room) {
    const key = `chat.own.${room}`;
    let ids = [];
    try {
      ids = JSON.parse(localStorage.getItem(key) || "[]");
    } catch {
      ids = [];
    }
    const set = new Set(Array.isArray(ids) ? ids : []);
    return {
      has: (id) => set.has(id),
      add(id) {
        set.add(id);
        try {
          localStorage.setItem(key, JSON.stringify([...set].slice(-500)));
        } catch {
          // Storage full or disabled: the marking lasts for this page only.
        }
      },
    };
  }

  form.addEventListener("submit", send);
  input.addEventListener("input", updateComposer);
  earlierButton.addEventListener("click", loadEarlier);
  jump.addEventListener("click", scrollToBottom);
  scroller.addEventListener("scroll", () => {
    if (atBottom()) markRead();
  });
  window.addEventListener("online", retryNow);
  document.addEventListener("visibilitychange", retryNow);
  connect();
})();

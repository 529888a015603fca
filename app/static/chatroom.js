// The chat room page: the backlog, live messages, paging back, and reconnecting with ?since=
// so that a reader neither misses nor repeats a message; what the reader types goes through
// the outbox, so that each message is stored exactly once whatever drops in between. This
// entry module wires the parts, each a module with one job, and keeps the rules of joining
// and resuming a room. A `deleted` frame (or one's own delete) takes the message off the page
// everywhere it shows, for good.
import { messagesBetween } from "./between.js";
import { createComposer } from "./composer.js";
import { createDeletion } from "./delete.js";
import { createIdentity } from "./identity.js";
import { createMessageList } from "./message-list.js";
import { createOutbox } from "./outbox.js";
import { rememberedOwnIds } from "./own-ids.js";
import { createPacer } from "./pacer.js";
import { createPaging } from "./paging.js";
import { recheckShown } from "./recheck.js";
import { createSearch } from "./search.js";
import { reconnectingSocket } from "./socket.js";
import { createNote, createStatus } from "./status.js";

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
const encoder = new TextEncoder();

const $ = (id) => document.getElementById(id);
const roomId = $("room-id").textContent;
const form = $("send");
const replaySize = Number(form.dataset.historyReplay);
const identity = createIdentity({
  room: roomId,
  tokens: form.dataset.tokens === "1",
  form: $("nameForm"),
  input: $("nameInput"),
  button: $("nameButton"),
});
const maxBytes = Number(form.dataset.maxBytes);
const pacer = createPacer({
  rate: Number(form.dataset.rateLimit),
  burst: Number(form.dataset.rateBurst),
});
const ownIds = rememberedOwnIds(roomId);
const outbox = createOutbox(roomId);
let joined = false; // the first replay is over: later connections resume with ?since=
let connection = 0; // which connection the frames below belong to
let since = null; // the ?since= of the current connection
let replayed = []; // the replay of the current connection, shown at its history_end
let held = null; // live frames that wait while a gap in the replay is fetched
let ready = false; // the replay is shown: what is typed now goes out at once
let sent = new Set(); // keys sent on the current connection
let pumpTimer = null;

const status = createStatus($("status"));
const note = createNote($("note"));
const deletion = createDeletion({
  roomId,
  token: () => identity.token,
  note,
  onDeleted: forget,
  focusAfter: $("scroller"),
});
const messages = createMessageList({
  list: $("messages"),
  scroller: $("scroller"),
  jump: $("jump"),
  offer: deletion.offer,
});
const paging = createPaging({
  roomId,
  button: $("loadEarlier"),
  beginning: $("beginning"),
  messages,
  isOwn: (id) => ownIds.has(id),
  onError: (text) => note.show(text),
  focusAfter: $("scroller"),
  headers: identity.headers,
});
const composer = createComposer({
  form,
  input: $("messageText"),
  sendButton: $("sendButton"),
  sizeHint: $("sizeHint"),
  maxBytes,
  onSend: send,
});
const search = createSearch({
  roomId,
  headers: identity.headers,
  isDeleted: (id) => messages.wasDeleted(id),
  offer: (item, message) => deletion.offer(item, message, ownIds.has(message.id)),
  form: $("search"),
  input: $("searchText"),
  panel: $("results"),
  summary: $("resultsSummary"),
  list: $("resultList"),
  more: $("moreResults"),
  close: $("closeResults"),
  context: $("context"),
  back: $("backToLatest"),
  live: $("live"),
  onLeaveLive: () => {
    $("jump").hidden = true;
  },
  onBackToLatest: () => {
    messages.scrollToBottom();
    $("messageText").focus();
  },
});
const socket = reconnectingSocket({
  url: socketUrl,
  protocol: "chat.v2.json",
  onConnecting,
  onFrame,
  onClose,
});

// The socket URL follows the page's own host and scheme.
function socketUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const params = new URLSearchParams(identity.socketParams());
  since = joined ? (messages.newestId ?? 0) : null;
  if (since !== null) params.set("since", String(since));
  const query = params.toString();
  return `${scheme}//${location.host}/${encodeURIComponent(roomId)}${query ? `?${query}` : ""}`;
}

function onConnecting() {
  connection += 1;
  replayed = [];
  if (!joined) messages.setBusy(true);
  held = null;
  ready = false;
  sent = new Set();
  pacer.reset();
  status.set("connecting", joined ? "reconnecting" : "connecting");
}

function onFrame(frame) {
  if (frame.type === "message") {
    if (frame.history) replayed.push(frame);
    else if (held !== null) held.push(frame);
    else onLive(frame);
  } else if (frame.type === "history_end") {
    onReplayEnd(frame.complete !== false);
  } else if (frame.type === "deleted") {
    forget(frame.id); // at once: a replay or page still on its way will skip it
  }
}

// The message `id` is deleted: off the list and the search panes, never to show again.
function forget(id) {
  messages.remove(id);
  search.remove(id);
}

function onLive(frame) {
  if (!frame.own) {
    messages.append(frame, false);
    return;
  }
  ownIds.add(frame.id);
  if (frame.key) {
    outbox.remove(frame.key);
    messages.confirm(frame);
  } else {
    messages.append(frame, true);
  }
}

function showReplay(frames) {
  for (const frame of frames) {
    // Remembered, so that a later REST page (which carries no `own`) shows it as own too.
    if (frame.own && !ownIds.has(frame.id)) ownIds.add(frame.id);
    messages.append(frame, frame.own || ownIds.has(frame.id));
  }
}

async function onReplayEnd(complete) {
  const current = connection;
  if (!complete && since !== null) {
    // The replay is the newest 1000 above `since`: what lies between comes over REST first.
    held = [];
    const gap = await fetchGap(since, replayed[0]?.id);
    if (current !== connection) return; // that connection is gone; the next one resumes
    if (gap === null) {
      socket.reconnect();
      return;
    }
    showReplay(gap);
  }
  showReplay(replayed);
  if (since !== null) {
    // Deletions made while this page was away reached it as no frame: ask what is still stored.
    recheckShown({ roomId, headers: identity.headers, shown: messages.shownIds, upTo: since, forget });
  }
  if (!joined) {
    joined = true;
    messages.setBusy(false);
    if (replayed.length > 0) messages.addDivider();
    if (replayed.length < replaySize) paging.showBeginning();
    else paging.offerEarlier();
    messages.scrollToBottom();
  }
  replayed = [];
  const waiting = held ?? [];
  held = null;
  for (const frame of waiting) onLive(frame);
  socket.settled();
  status.set("connected", "connected");
  if (!note.lasting) note.hide();
  ready = true;
  sendOutbox();
}

// Every message above `after` and below `before`, oldest first; null when it failed.
async function fetchGap(after, before) {
  try {
    return await messagesBetween({ roomId, headers: identity.headers, after, before });
  } catch (error) {
    note.show(`Missed messages could not be loaded (${error.message}); reconnecting.`);
    return null;
  }
}

// In the order typed, at the pace the server allows; an item the server would refuse for its
// size goes back into the box.
function sendOutbox() {
  clearTimeout(pumpTimer);
  pumpTimer = null;
  if (!ready) return;
  for (const item of outbox.items) {
    if (sent.has(item.key)) continue;
    if (!fits(item.text)) {
      takeBack(item);
      continue;
    }
    const wait = pacer.take();
    if (wait > 0) {
      pumpTimer = setTimeout(sendOutbox, wait);
      return;
    }
    sent.add(item.key);
    socket.send(JSON.stringify({ type: "send", text: item.text, key: item.key }));
  }
}

function fits(text) {
  return encoder.encode(text).length <= maxBytes;
}

function takeBack(item) {
  outbox.remove(item.key);
  messages.dropPending(item.key);
  composer.restore(item.text);
  note.show(
    `A message is over the limit of ${maxBytes} bytes and was not sent; it is back in the box.`,
    true,
  );
}

function onClose(code, delay, reason) {
  clearTimeout(pumpTimer);
  pumpTimer = null;
  messages.setBusy(false);
  ready = false;
  const refusal = identity.refusal(code, reason);
  if (refusal !== null) {
    socket.stop(); // retrying would be refused again: say why instead
    composer.disable();
    note.show(refusal, true);
    status.set("refused", "no access");
    return;
  }
  if (CLOSE_NOTES[code]) note.show(CLOSE_NOTES[code], LASTING_NOTES.has(code));
  status.set("disconnected", `disconnected, retrying in ${Math.ceil(delay / 1000)} s`);
}

// Shown at once as pending; sent now if connected, else on the next connection.
function send(text) {
  if (search.inContext) search.backToLatest(); // one's own message shows where it lands
  const item = outbox.add(text);
  messages.addPending(item);
  sendOutbox();
  if (note.lasting) note.hide();
}

identity.onRename(() => socket.restart());
for (const item of outbox.items) messages.addPending(item);
socket.start();

// The chat room page: the backlog, live messages, paging back, and reconnecting with ?since=
// so that a reader neither misses nor repeats a message. This entry module wires the parts,
// each a module with one job, and keeps the rules of joining and resuming a room.
import { createComposer } from "./composer.js";
import { createIdentity } from "./identity.js";
import { createMessageList } from "./message-list.js";
import { rememberedOwnIds } from "./own-ids.js";
import { createPaging } from "./paging.js";
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
const ownIds = rememberedOwnIds(roomId);
let joined = false; // the first replay is over: later connections resume with ?since=
let replayed = []; // the replay of the current connection
// Texts sent and not yet echoed back: after a drop, the resumed replay tells which arrived.
let unconfirmed = [];

const status = createStatus($("status"));
const note = createNote($("note"));
const messages = createMessageList({ list: $("messages"), scroller: $("scroller"), jump: $("jump") });
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
  maxBytes: Number(form.dataset.maxBytes),
  onSend: send,
});
const socket = reconnectingSocket({
  url: socketUrl,
  protocol: "chat.v1.json",
  onConnecting,
  onFrame,
  onClose,
});

// The socket URL follows the page's own host and scheme.
function socketUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const params = new URLSearchParams(identity.socketParams());
  if (joined) params.set("since", String(messages.newestId ?? 0));
  const query = params.toString();
  return `${scheme}//${location.host}/${encodeURIComponent(roomId)}${query ? `?${query}` : ""}`;
}

function onConnecting() {
  replayed = [];
  if (!joined) messages.setBusy(true);
  status.set("connecting", joined ? "reconnecting" : "connecting");
}

function onFrame(frame) {
  if (frame.type === "message") onMessage(frame);
  else if (frame.type === "history_end") onReplayEnd();
}

function onMessage(frame) {
  if (!frame.history) {
    if (frame.own) {
      settle(frame.text);
      ownIds.add(frame.id);
    }
    messages.append(frame, frame.own);
    return;
  }
  // A message stored while this page was away may be one of its own unconfirmed sends.
  const own = ownIds.has(frame.id) || (!messages.has(frame.id) && settle(frame.text));
  if (own) ownIds.add(frame.id);
  messages.append(frame, own);
  replayed.push(frame);
}

function settle(text) {
  const index = unconfirmed.indexOf(text);
  if (index >= 0) unconfirmed.splice(index, 1);
  return index >= 0;
}

function onReplayEnd() {
  if (!joined) {
    joined = true;
    messages.setBusy(false);
    if (replayed.length > 0) messages.addDivider();
    if (replayed.length < replaySize) paging.showBeginning();
    else paging.offerEarlier();
    messages.scrollToBottom();
  } else {
    restoreUnsent();
  }
  socket.settled();
  status.set("connected", "connected");
  if (!note.lasting) note.hide();
  composer.setConnected(true);
}

// Sends the server never stored (the replay did not bring them back) return to the input.
function restoreUnsent() {
  if (unconfirmed.length === 0) return;
  composer.restore(unconfirmed[0]);
  unconfirmed = [];
  note.show("A message was not delivered; it is back in the box: press Enter to send it again.");
}

function onClose(code, delay, reason) {
  messages.setBusy(false);
  composer.setConnected(false);
  const refusal = identity.refusal(code, reason);
  if (refusal !== null) {
    socket.stop(); // retrying would be refused again: say why instead
    note.show(refusal, true);
    status.set("refused", "no access");
    return;
  }
  if (CLOSE_NOTES[code]) note.show(CLOSE_NOTES[code], LASTING_NOTES.has(code));
  status.set("disconnected", `disconnected, retrying in ${Math.ceil(delay / 1000)} s`);
}

function send(text) {
  socket.send(text);
  unconfirmed.push(text);
  if (note.lasting) note.hide();
}

identity.onRename(() => socket.restart());
socket.start();

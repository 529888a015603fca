// The room picker: a room name checked against the server's rule, and the recently active rooms.
import { latestInviteHeaders } from "./identity.js";
import { ago, full, parse } from "./time.js";

// The contract's room ids: 1 to 64 of A-Z a-z 0-9 _ - . but not "." or "..".
const ROOM_ID = /^[A-Za-z0-9_.-]{1,64}$/;
const form = document.getElementById("pick");
const input = document.getElementById("room");
const error = document.getElementById("room-error");

function problem(room) {
  if (room === "") return "Type a room name.";
  if (room.length > 64) return "A room name has at most 64 characters.";
  if (!ROOM_ID.test(room)) return "Only letters, digits, _ - and . are allowed.";
  if (room === "." || room === "..") return "\u201c.\u201d and \u201c..\u201d are not room names.";
  return null;
}

function showProblem(text) {
  error.textContent = text ?? "";
  error.hidden = text === null;
  input.setAttribute("aria-invalid", String(text !== null));
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const room = input.value.trim();
  const text = problem(room);
  showProblem(text);
  if (text === null) location.href = `/rooms/${encodeURIComponent(room)}`;
});
input.addEventListener("input", () => {
  if (!error.hidden) showProblem(problem(input.value.trim()));
});

function roomItem(room) {
  const link = document.createElement("a");
  link.href = `/rooms/${encodeURIComponent(room.room_id)}`;
  const name = document.createElement("span");
  name.className = "room-name";
  name.textContent = room.room_id;
  const meta = document.createElement("span");
  meta.className = "room-meta";
  const count = `${room.messages} message${room.messages === 1 ? "" : "s"}`;
  const when = document.createElement("time");
  when.dateTime = room.last_message_at;
  when.title = full.format(parse(room.last_message_at));
  when.textContent = ago(room.last_message_at);
  meta.append(`${count} · `, when);
  link.append(name, meta);
  const item = document.createElement("li");
  item.append(link);
  return item;
}

async function loadRooms() {
  try {
    // With an invite kept in this browser, its rooms are listed too; one no longer valid (401)
    // still leaves the public rooms.
    let response = await fetch("/rooms?limit=20", { headers: latestInviteHeaders() });
    if (response.status === 401) response = await fetch("/rooms?limit=20");
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const rooms = await response.json();
    document.getElementById("rooms").append(...rooms.map(roomItem));
    document.getElementById("rooms-empty").hidden = rooms.length > 0;
  } catch {
    document.getElementById("rooms-error").hidden = false;
  }
}

loadRooms();

// Who this page is in the room. With tokens: an invite link's `#access_token=` is taken from
// the address, kept in this browser (for its room, and as the latest invite for other rooms)
// and removed from the address bar. Without a token: an optional display name, asked for once
// and remembered. A refusal (4401/4403) is explained in words.
const NAME_KEY = "chat.name";
const LATEST_TOKEN_KEY = "chat.token";
const roomTokenKey = (room) => `chat.token.${room}`;
const NAME_MAX = 32;

function read(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

function write(key, value) {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch {
    // Storage disabled: the choice lasts for this page only.
  }
}

// The latest invite's header, for pages outside a room (the room picker lists what it opens).
export function latestInviteHeaders() {
  const token = read(LATEST_TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

// Take `#access_token=...` out of the address (it never reaches the server: fragments are not
// sent) and keep it when the server uses tokens; other fragment parameters stay.
function takeInvite(room, keep) {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("access_token");
  if (token === null) return;
  params.delete("access_token");
  const rest = params.toString();
  history.replaceState(history.state, "", `${location.pathname}${location.search}${rest ? `#${rest}` : ""}`);
  if (token && keep) {
    write(roomTokenKey(room), token);
    write(LATEST_TOKEN_KEY, token);
  }
}

// A name as the server takes it: trimmed, no control characters, at most 32 characters.
function cleanName(text) {
  return [...text.replace(/\p{Cc}/gu, "").trim()].slice(0, NAME_MAX).join("").trim();
}

export function createIdentity({ room, tokens, form, input, button }) {
  takeInvite(room, tokens);
  let token = tokens ? read(roomTokenKey(room)) || read(LATEST_TOKEN_KEY) : null;
  let name = read(NAME_KEY);
  let onRename = () => {};

  function showName() {
    button.hidden = token !== null || name === null;
    button.textContent = name ? `Name: ${name}` : "Choose a name";
  }

  function ask() {
    form.hidden = false;
    button.hidden = true;
    input.value = name || "";
    input.focus();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = cleanName(input.value);
    const changed = chosen !== (name || "");
    name = chosen;
    write(NAME_KEY, name);
    form.hidden = true;
    showName();
    if (changed) onRename();
  });
  button.addEventListener("click", ask);

  // Asked once: a name chosen (or skipped with an empty one) is remembered in this browser.
  if (token === null && name === null) form.hidden = false;
  showName();

  return {
    // The access token this page holds for the room, or null (open chat, or none given).
    get token() {
      return token;
    },
    // Query parameters of the socket URL.
    socketParams() {
      if (token) return { access_token: token };
      return name ? { name } : {};
    },
    // Headers of REST requests (tokens only ever go in the Authorization header there).
    headers() {
      return token ? { Authorization: `Bearer ${token}` } : {};
    },
    onRename(callback) {
      onRename = callback;
    },
    // The words for a refusal of the room, or null for another close. An invite that is no
    // longer valid is forgotten, so that it does not spoil public rooms.
    refusal(code, reason) {
      if (code === 4403) {
        return "Your invite does not include this room. Ask for an invite link to it.";
      }
      if (code !== 4401) return null;
      if (reason === "token expired" || reason === "invalid token") {
        write(roomTokenKey(room), null);
        if (read(LATEST_TOKEN_KEY) === token) write(LATEST_TOKEN_KEY, null);
        token = null;
        return reason === "token expired"
          ? "Your invite link has expired. Ask for a new invite link to this room."
          : "Your invite link is not valid. Ask for a new invite link to this room.";
      }
      return "This room is private: you need an invite link to read and write here.";
    },
  };
}

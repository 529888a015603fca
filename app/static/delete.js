// Deleting a message from the page: its "Delete" button and the DELETE request. The button is
// offered only where the server could say yes (a token, and the message is the reader's own or
// the token is an admin's); the server still decides, and a refusal is told in words. Only a
// 204 (or a 404: it is gone already) takes the message off the page, through `onDeleted`.

const EXCERPT = 60; // characters of the text named in the button and in the confirmation

// The claims of a JWT, read only to choose which buttons to show; never trusted for more.
function claimsOf(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const padded = part + "=".repeat((4 - (part.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims !== null && typeof claims === "object" ? claims : {};
  } catch {
    return {};
  }
}

function excerpt(text) {
  const chars = [...text.replace(/\s+/g, " ").trim()];
  return chars.length > EXCERPT ? `${chars.slice(0, EXCERPT).join("")}…` : chars.join("");
}

// What a refusal means to the reader.
function refusalWords(status) {
  if (status === 401) return "The message was not deleted: your invite link is no longer valid.";
  if (status === 403) return "The message was not deleted: you may delete only your own messages.";
  return `The message could not be deleted (HTTP ${status}); try again.`;
}

export function createDeletion({ roomId, token, note, onDeleted, focusAfter }) {
  let known = null; // the token whose claims are in `claims`
  let claims = {};

  function isAdmin() {
    const current = token();
    if (current !== known) {
      known = current;
      claims = current ? claimsOf(current) : {};
    }
    return claims.admin === true;
  }

  // Where the focus goes when the focused button's message leaves: the next message's button,
  // else the previous one's, else `focusAfter`.
  function focusTarget(item) {
    for (const sibling of [item.nextElementSibling, item.previousElementSibling]) {
      let candidate = sibling;
      const forward = sibling === item.nextElementSibling;
      while (candidate) {
        const button = candidate.querySelector("button.delete");
        if (button) return button;
        candidate = forward ? candidate.nextElementSibling : candidate.previousElementSibling;
      }
    }
    return focusAfter;
  }

  async function request(id) {
    const current = token();
    return fetch(`/rooms/${encodeURIComponent(roomId)}/messages/${encodeURIComponent(String(id))}`, {
      method: "DELETE",
      headers: current ? { Authorization: `Bearer ${current}` } : {},
    });
  }

  async function remove(item, button, id, text) {
    if (button.getAttribute("aria-disabled") === "true") return;
    if (!window.confirm(`Delete this message for everyone?\n\n“${excerpt(text)}”`)) return;
    // aria-disabled rather than disabled: the keyboard focus stays on the button meanwhile.
    button.setAttribute("aria-disabled", "true");
    try {
      const response = await request(id);
      if (response.status === 204 || response.status === 404) {
        const hadFocus = item.contains(document.activeElement);
        const next = hadFocus ? focusTarget(item) : null;
        onDeleted(id);
        next?.focus();
        if (!note.lasting) note.hide();
        return;
      }
      note.show(refusalWords(response.status));
    } catch {
      note.show("The message could not be deleted: the server did not answer. Try again.");
    } finally {
      button.removeAttribute("aria-disabled");
    }
  }

  // Give `item` (the li of the stored message `message`) its Delete button when the reader may
  // delete it; safe to call again (e.g. once a message turns out to be the reader's own).
  function offer(item, message, own) {
    if (!token() || !(own || isAdmin())) return;
    if (item.querySelector(":scope > button.delete")) return;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "delete";
    button.textContent = "Delete";
    // The visible word first, so that speech control finds it; the text says which message.
    button.setAttribute("aria-label", `Delete message “${excerpt(message.text)}”`);
    button.addEventListener("click", () => remove(item, button, message.id, message.text));
    item.classList.add("deletable");
    item.append(button);
  }

  return { offer };
}

// The list of messages in #messages: each id shown once, text and author only ever as
// textContent. The reader's scroll position is theirs: new messages follow only at the bottom
// (else a "new messages" button counts them), and a page of older ones leaves the view where it
// was. A message typed here shows at once as pending, and its own copy takes its place when it
// comes. A deleted message leaves the list and never comes back for the page's life, whatever
// replay or REST page brings it again.
import { timeElement } from "./time.js";

const NEAR_BOTTOM_PX = 48;

// `offer(li, message, own)` may add controls to the li of a stored message (e.g. its delete
// button); it is called again if the message turns out to be the reader's own.
export function createMessageList({ list, scroller, jump, offer = () => {} }) {
  const seen = new Set(); // ids shown: replays and pages may overlap what is already there
  const deleted = new Set(); // ids deleted while this page is open: never shown again
  let newestId = null; // the resume cursor for ?since=
  let oldestId = null; // the cursor for before=
  let unread = 0;
  const pending = new Map(); // key -> the li of a message typed and not yet confirmed

  function render(message, own) {
    const item = document.createElement("li");
    item.className = own ? "message own" : "message";
    item.dataset.id = String(message.id);
    if (message.author) {
      const author = document.createElement("span");
      author.className = "author";
      author.textContent = message.author;
      item.append(author);
    }
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = message.text;
    item.append(text, timeElement(message.created_at));
    offer(item, message, own);
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

  function note(message) {
    seen.add(message.id);
    newestId = newestId === null ? message.id : Math.max(newestId, message.id);
    if (oldestId === null) oldestId = message.id;
  }

  function append(message, own) {
    if (seen.has(message.id) || deleted.has(message.id)) return;
    note(message);
    const follow = own || atBottom();
    addAbovePending(render(message, own));
    if (list.closest("[hidden]")) return; // a search result is shown: back to the latest follows
    if (follow) {
      scrollToBottom();
    } else {
      unread += 1;
      jump.textContent = `${unread} new message${unread === 1 ? "" : "s"} ↓`;
      jump.hidden = false;
    }
  }

  // Pending items stay at the bottom, in the order typed, until the server gives them an id.
  function addAbovePending(element) {
    const firstPending = list.querySelector(":scope > li.pending");
    if (firstPending) list.insertBefore(element, firstPending);
    else list.append(element);
  }

  function addPending({ key, text: typed }) {
    if (pending.has(key)) return;
    const item = document.createElement("li");
    item.className = "message own pending";
    item.dataset.key = key;
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = typed;
    const state = document.createElement("span");
    state.className = "state";
    state.textContent = "sending…";
    item.append(text, state);
    pending.set(key, item);
    list.append(item);
    scrollToBottom();
  }

  // The own copy of a keyed message: it takes the pending item's place; if the message is
  // shown already (a replay brought it before the retry's answer), the pending item goes.
  function confirm(message) {
    const item = pending.get(message.key);
    pending.delete(message.key);
    if (deleted.has(message.id)) {
      item?.remove(); // deleted (from another page) before its own copy came back here
      return;
    }
    const shown = list.querySelector(`li.message[data-id="${message.id}"]`);
    if (shown) {
      shown.classList.add("own");
      offer(shown, message, true);
      item?.remove();
    } else if (item) {
      // In its place when it is the first pending one (the usual case: answers come in the
      // order sent); else just above the pending ones, so that shown ids stay in order.
      note(message);
      const confirmed = render(message, true);
      item.replaceWith(confirmed);
      const firstPending = list.querySelector(":scope > li.pending");
      if (firstPending && firstPending.compareDocumentPosition(confirmed) & Node.DOCUMENT_POSITION_FOLLOWING) {
        list.insertBefore(confirmed, firstPending);
      }
    } else {
      append(message, true);
    }
  }

  // A pending item taken back into the box (the server refused it).
  function dropPending(key) {
    pending.get(key)?.remove();
    pending.delete(key);
  }

  // Older messages go on top.
  function prepend(messages, isOwn) {
    const fragment = document.createDocumentFragment();
    for (const message of messages) {
      // The cursor moves past a message deleted meanwhile too, so the next page is older.
      oldestId = Math.min(oldestId, message.id);
      if (seen.has(message.id) || deleted.has(message.id)) continue;
      seen.add(message.id);
      fragment.append(render(message, isOwn(message.id)));
    }
    list.prepend(fragment);
  }

  // Whatever `change` adds above the view, the reader's view stays where it was.
  function keepingView(change) {
    const fromBottom = scroller.scrollHeight - scroller.scrollTop;
    change();
    scroller.scrollTop = scroller.scrollHeight - fromBottom;
  }

  // The message `id` is deleted: off the list now, and never shown again. The cursors stay:
  // paging and resuming go on from where they were.
  function remove(id) {
    deleted.add(id);
    list.querySelector(`li.message[data-id="${CSS.escape(String(id))}"]`)?.remove();
  }

  // A list item like the messages (a different role would break the list for screen readers).
  function addDivider() {
    const divider = document.createElement("li");
    divider.className = "divider";
    divider.textContent = "New messages";
    addAbovePending(divider);
  }

  // While the backlog streams in, screen readers hold back their announcements of the list.
  function setBusy(busy) {
    if (busy) list.setAttribute("aria-busy", "true");
    else list.removeAttribute("aria-busy");
  }

  jump.addEventListener("click", scrollToBottom);
  scroller.addEventListener("scroll", () => {
    if (atBottom()) markRead();
  });

  return {
    has: (id) => seen.has(id),
    wasDeleted: (id) => deleted.has(id),
    // The ids of the stored messages on the list now.
    shownIds: () => [...list.querySelectorAll(":scope > li.message[data-id]")].map((item) => Number(item.dataset.id)),
    get newestId() {
      return newestId;
    },
    get oldestId() {
      return oldestId;
    },
    append,
    addPending,
    confirm,
    dropPending,
    prepend,
    remove,
    keepingView,
    addDivider,
    setBusy,
    scrollToBottom,
  };
}

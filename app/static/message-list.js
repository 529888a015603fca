// The list of messages in #messages: each id shown once, text and author only ever as
// textContent. The
// reader's scroll position is theirs: new messages follow only at the bottom (else a "new
// messages" button counts them), and a page of older ones leaves the view where it was.
import { timeElement } from "./time.js";

const NEAR_BOTTOM_PX = 48;

export function createMessageList({ list, scroller, jump }) {
  const seen = new Set(); // ids shown: replays and pages may overlap what is already there
  let newestId = null; // the resume cursor for ?since=
  let oldestId = null; // the cursor for before=
  let unread = 0;

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

  // Older messages go on top.
  function prepend(messages, isOwn) {
    const fragment = document.createDocumentFragment();
    for (const message of messages) {
      if (seen.has(message.id)) continue;
      seen.add(message.id);
      fragment.append(render(message, isOwn(message.id)));
      oldestId = Math.min(oldestId, message.id);
    }
    list.prepend(fragment);
  }

  // Whatever `change` adds above the view, the reader's view stays where it was.
  function keepingView(change) {
    const fromBottom = scroller.scrollHeight - scroller.scrollTop;
    change();
    scroller.scrollTop = scroller.scrollHeight - fromBottom;
  }

  // A list item like the messages (a different role would break the list for screen readers).
  function addDivider() {
    const divider = document.createElement("li");
    divider.className = "divider";
    divider.textContent = "New messages";
    list.append(divider);
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
    get newestId() {
      return newestId;
    },
    get oldestId() {
      return oldestId;
    },
    append,
    prepend,
    keepingView,
    addDivider,
    setBusy,
    scrollToBottom,
  };
}

// Searching the room (GET /search) and showing a result in its context (?around=). The live
// list is never touched: it stays underneath, hidden, and the socket keeps feeding it, so
// "Back to the latest" shows it again with nothing lost or repeated and without a reload.
// A message deleted while the page is open (`isDeleted`) is never shown among the results or
// in a context, and `remove(id)` takes it out of those already shown.
import { timeElement } from "./time.js";

export const RESULTS = 20;
const CONTEXT = 50;

export function createSearch({ roomId, headers, isDeleted, offer, form, input, panel, summary, list, more, close, context, back, live, onLeaveLive, onBackToLatest }) {
  let query = "";
  let oldestId = null;
  let generation = 0; // a newer search makes the answers of older ones stale

  async function getJson(path, params) {
    const response = await fetch(`${path}?${new URLSearchParams(params)}`, { headers: headers() });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return response.json();
  }

  function render(message, tag) {
    const item = document.createElement(tag);
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = message.text;
    item.append(text);
    if (message.author) {
      const author = document.createElement("span");
      author.className = "author";
      author.textContent = message.author;
      item.append(author);
    }
    item.append(timeElement(message.created_at));
    return item;
  }

  function showResults(found) {
    for (const message of found.filter((m) => !isDeleted(m.id))) {
      const choose = render(message, "button");
      choose.type = "button";
      choose.className = "result";
      choose.addEventListener("click", () => openInContext(message.id));
      const item = document.createElement("li");
      item.dataset.id = String(message.id);
      item.append(choose);
      list.append(item);
    }
    if (found.length > 0) oldestId = found[found.length - 1].id;
    more.hidden = found.length < RESULTS;
    const shown = list.children.length;
    summary.textContent = shown === 0
      ? `No messages match “${query}”.`
      : `${shown}${more.hidden ? "" : "+"} message${shown === 1 ? "" : "s"} match “${query}”, newest first.`;
  }

  async function load(params, mine) {
    try {
      const found = await getJson("/search", { q: query, room_id: roomId, limit: String(RESULTS), ...params });
      if (mine === generation) showResults(found);
    } catch (error) {
      if (mine === generation) summary.textContent = `The search failed (${error.message}); try again.`;
    }
  }

  async function search(event) {
    event.preventDefault();
    const q = input.value.trim();
    if (q === "") return;
    generation += 1;
    query = q;
    oldestId = null;
    list.replaceChildren();
    more.hidden = true;
    summary.textContent = "Searching…";
    panel.hidden = false;
    await load({}, generation);
  }

  async function loadMore() {
    if (oldestId === null || more.getAttribute("aria-disabled") === "true") return;
    more.setAttribute("aria-disabled", "true");
    try {
      await load({ before: String(oldestId) }, generation);
    } finally {
      more.removeAttribute("aria-disabled");
    }
  }

  async function openInContext(id) {
    let around;
    try {
      around = await getJson(`/rooms/${encodeURIComponent(roomId)}/messages`, { around: String(id), limit: String(CONTEXT) });
    } catch (error) {
      summary.textContent = `That message could not be shown (${error.message}); try again.`;
      return;
    }
    context.replaceChildren();
    let hit = null;
    for (const message of around.filter((m) => !isDeleted(m.id))) {
      const item = render(message, "li");
      item.className = "message";
      item.dataset.id = String(message.id);
      if (message.id === id) {
        item.classList.add("hit");
        item.setAttribute("aria-current", "true");
        hit = item;
      }
      offer(item, message);
      context.append(item);
    }
    if (!live.hidden) onLeaveLive();
    live.hidden = true;
    context.hidden = false;
    back.hidden = false;
    hit?.scrollIntoView({ block: "center" });
    back.focus({ preventScroll: true });
  }

  function backToLatest() {
    if (context.hidden) return;
    context.hidden = true;
    back.hidden = true;
    context.replaceChildren();
    live.hidden = false;
    onBackToLatest();
  }

  function closeResults() {
    generation += 1;
    panel.hidden = true;
    list.replaceChildren();
    input.focus();
  }

  // A message deleted: out of the results and the context shown (the count stays as found).
  function remove(id) {
    const selector = `li[data-id="${CSS.escape(String(id))}"]`;
    list.querySelector(selector)?.remove();
    context.querySelector(selector)?.remove();
  }

  form.addEventListener("submit", search);
  more.addEventListener("click", loadMore);
  close.addEventListener("click", closeResults);
  back.addEventListener("click", backToLatest);

  return {
    get inContext() {
      return !context.hidden;
    },
    backToLatest,
    remove,
  };
}

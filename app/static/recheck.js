// After a reconnect, the messages this page shows are checked against the server: a message
// deleted while the page was away sent its `deleted` frame to nobody here, and one that expired
// meanwhile never sends one. Either leaves the page now. One REST request per 1000 messages
// shown; a failed check changes nothing (the next reconnect checks again).
const PAGE = 1000; // the REST API's largest page

// The ids stored in the room from `low` to `high` (both included); null when a request failed.
async function storedIds(roomId, headers, low, high) {
  const ids = new Set();
  let after = low - 1;
  try {
    for (;;) {
      const query = new URLSearchParams({ after: String(after), before: String(high + 1), limit: String(PAGE) });
      const response = await fetch(`/rooms/${encodeURIComponent(roomId)}/messages?${query}`, { headers: headers() });
      if (!response.ok) return null;
      const page = await response.json();
      for (const message of page) ids.add(message.id);
      if (page.length < PAGE) return ids;
      after = page[page.length - 1].id;
    }
  } catch {
    return null;
  }
}

// Every id `shown()` holds up to `upTo` that the server no longer stores goes to `forget`.
export async function recheckShown({ roomId, headers, shown, upTo, forget }) {
  const ids = shown().filter((id) => id <= upTo);
  if (ids.length === 0) return;
  const stored = await storedIds(roomId, headers, ids.reduce((a, b) => Math.min(a, b)), upTo);
  if (stored === null) return;
  for (const id of ids) if (!stored.has(id)) forget(id);
}

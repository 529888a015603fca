// After a reconnect, the messages this page shows are checked against the server: a message
// deleted while the page was away sent its `deleted` frame to nobody here, and one that expired
// meanwhile never sends one. Either leaves the page now. One REST request per 1000 messages
// shown; a failed check changes nothing (the next reconnect checks again).
import { messagesBetween } from "./between.js";

// Every id `shown()` holds up to `upTo` that the server no longer stores goes to `forget`.
export async function recheckShown({ roomId, headers, shown, upTo, forget }) {
  const ids = shown().filter((id) => id <= upTo);
  if (ids.length === 0) return;
  const lowest = ids.reduce((a, b) => Math.min(a, b));
  let stored;
  try {
    stored = await messagesBetween({ roomId, headers, after: lowest - 1, before: upTo + 1 });
  } catch {
    return;
  }
  const still = new Set(stored.map((message) => message.id));
  for (const id of ids) if (!still.has(id)) forget(id);
}

// Reading a stretch of the room over REST: every stored message with an id above `after` (and
// below `before`, if given), oldest first, a page of 1000 at a time. Throws when a request fails.
const PAGE = 1000; // the REST API's largest page

export async function messagesBetween({ roomId, headers, after, before }) {
  const found = [];
  let cursor = after;
  for (;;) {
    const query = new URLSearchParams({ after: String(cursor), limit: String(PAGE) });
    if (before !== undefined) query.set("before", String(before));
    const response = await fetch(`/rooms/${encodeURIComponent(roomId)}/messages?${query}`, { headers: headers() });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const page = await response.json();
    found.push(...page);
    if (page.length < PAGE) return found;
    cursor = page[page.length - 1].id;
  }
}

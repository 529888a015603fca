// The outbox: every message typed, with its random key, until its own copy comes back from the
// server. Kept per room in localStorage, so a reload (or a crash of the tab) sends it still;
// the server stores a key once, so sending an item again is always safe.

// A random UUID whose first 48 bits are the time in milliseconds (version 7, RFC 9562): the
// server keeps every key of a room in one index, and keys that grow with time are added at its
// end, where random ones (version 4) would each change a page of their own.
export function timeOrderedKey(now = Date.now()) {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  for (let i = 5, ms = now; i >= 0; i--, ms = Math.floor(ms / 256)) bytes[i] = ms % 256;
  bytes[6] = (bytes[6] & 0x0f) | 0x70; // version 7
  bytes[8] = (bytes[8] & 0x3f) | 0x80; // the RFC's variant
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function createOutbox(room) {
  const storageKey = `chat.outbox.${room}`;
  // Read again before each change: another tab of the room may have changed it meanwhile.
  let items = load();

  function load() {
    try {
      const stored = JSON.parse(localStorage.getItem(storageKey) || "[]");
      return Array.isArray(stored)
        ? stored.filter((item) => typeof item?.key === "string" && typeof item?.text === "string")
        : [];
    } catch {
      return [];
    }
  }

  function save() {
    try {
      if (items.length > 0) localStorage.setItem(storageKey, JSON.stringify(items));
      else localStorage.removeItem(storageKey);
    } catch {
      // Storage full or disabled: the outbox lasts for this page only.
    }
  }

  return {
    // In the order typed.
    get items() {
      items = load();
      return [...items];
    },
    add(text) {
      items = load();
      const item = { key: timeOrderedKey(), text };
      items.push(item);
      save();
      return item;
    },
    // The item's own copy arrived (or it was taken back): it leaves the outbox.
    remove(key) {
      items = load();
      const before = items.length;
      items = items.filter((item) => item.key !== key);
      if (items.length !== before) save();
    },
  };
}

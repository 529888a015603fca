// The outbox: every message typed, with its random key, until its own copy comes back from the
// server. Kept per room in localStorage, so a reload (or a crash of the tab) sends it still;
// the server stores a key once, so sending an item again is always safe.
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
      const item = { key: crypto.randomUUID(), text };
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

// Own ids are kept per room in this browser, so that a reload still sets them apart.
export function rememberedOwnIds(room) {
  const key = `chat.own.${room}`;
  let ids = [];
  try {
    ids = JSON.parse(localStorage.getItem(key) || "[]");
  } catch {
    ids = [];
  }
  const set = new Set(Array.isArray(ids) ? ids : []);
  return {
    has: (id) => set.has(id),
    add(id) {
      set.add(id);
      try {
        localStorage.setItem(key, JSON.stringify([...set].slice(-500)));
      } catch {
        // Storage full or disabled: the marking lasts for this page only.
      }
    },
  };
}

// Paging back: "Load earlier messages" fetches the page before the oldest one shown, until the
// beginning of the room.
export const PAGE = 50;

export function createPaging({
  roomId,
  button,
  beginning,
  messages,
  isOwn,
  onError,
  focusAfter,
  headers,
}) {
  // The button gives way to "the beginning"; a keyboard user on it goes on from `focusAfter`.
  function showBeginning() {
    const focused = document.activeElement === button;
    button.hidden = true;
    beginning.hidden = false;
    if (focused) focusAfter.focus();
  }

  // While a page loads the button says so with aria-disabled: `disabled` would take the focus
  // away from a keyboard user.
  async function loadEarlier() {
    if (messages.oldestId === null || button.getAttribute("aria-disabled") === "true") return;
    button.setAttribute("aria-disabled", "true");
    try {
      const query = new URLSearchParams({ limit: String(PAGE), before: String(messages.oldestId) });
      const response = await fetch(`/rooms/${encodeURIComponent(roomId)}/messages?${query}`, {
        headers: headers(),
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const page = await response.json();
      messages.keepingView(() => {
        messages.prepend(page, isOwn);
        if (page.length < PAGE) showBeginning();
      });
    } catch (error) {
      onError(`Earlier messages could not be loaded (${error.message}); try again.`);
    } finally {
      button.removeAttribute("aria-disabled");
    }
  }

  button.addEventListener("click", loadEarlier);

  return {
    showBeginning,
    offerEarlier() {
      button.hidden = false;
    },
  };
}

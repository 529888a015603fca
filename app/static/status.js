// What the reader is told: the connection's state in the bar, and a note above the composer.
export function createStatus(element) {
  return {
    set(state, text) {
      element.dataset.state = state;
      element.textContent = text;
    },
  };
}

// A lasting note (the reader's own doing: too fast, too large) stays until they send again; a
// passing one goes once the connection is back.
export function createNote(element) {
  return {
    get lasting() {
      return Boolean(element.dataset.lasting);
    },
    show(text, lasting = false) {
      element.textContent = text;
      element.hidden = false;
      if (lasting) element.dataset.lasting = "1";
      else delete element.dataset.lasting;
    },
    hide() {
      element.hidden = true;
      delete element.dataset.lasting;
    },
  };
}

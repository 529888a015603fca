// The composer: the input and Send button, enabled while connected, and the byte count of the
// text against the server's limit (shown from 80 % of it; over it, nothing is sent).
const encoder = new TextEncoder();

function byteLength(text) {
  return encoder.encode(text).length;
}

export function createComposer({ form, input, sendButton, sizeHint, maxBytes, onSend }) {
  let connected = false;

  function update() {
    const bytes = byteLength(input.value);
    const over = bytes > maxBytes;
    input.disabled = !connected;
    sendButton.disabled = !connected || over;
    input.setAttribute("aria-invalid", String(over));
    sizeHint.hidden = bytes < maxBytes * 0.8;
    sizeHint.classList.toggle("over", over);
    sizeHint.textContent = over
      ? `Too long: ${bytes} of at most ${maxBytes} bytes.`
      : `${bytes} of ${maxBytes} bytes`;
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value;
    if (!connected || !text.trim() || byteLength(text) > maxBytes) return;
    onSend(text);
    input.value = "";
    update();
  });
  input.addEventListener("input", update);

  return {
    setConnected(value) {
      connected = value;
      update();
    },
    // A text the server never stored goes back into the box, unless the reader typed anew.
    restore(text) {
      if (!input.value) input.value = text;
    },
  };
}

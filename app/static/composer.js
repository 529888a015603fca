// The composer: the input and Send button, usable whether connected or not (what is typed
// waits in the outbox), and the byte count of the text against the server's limit (shown from
// 80 % of it; over it, nothing is sent and the text stays in the box).
const encoder = new TextEncoder();

function byteLength(text) {
  return encoder.encode(text).length;
}

export function createComposer({ form, input, sendButton, sizeHint, maxBytes, onSend }) {
  function update() {
    const bytes = byteLength(input.value);
    const over = bytes > maxBytes;
    sendButton.disabled = over;
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
    if (!text.trim() || byteLength(text) > maxBytes) return;
    onSend(text);
    input.value = "";
    update();
  });
  input.addEventListener("input", update);

  update();

  return {
    // The room refused this reader for good (no access): nothing typed could ever be sent.
    disable() {
      input.disabled = true;
      sendButton.disabled = true;
    },
    // A text the server would refuse goes back into the box, unless the reader typed anew.
    restore(text) {
      if (!input.value) {
        input.value = text;
        update();
      }
    },
  };
}

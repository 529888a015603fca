// Sends paced to stay inside the server's per-connection token bucket (the server closes a
// faster sender with 1008): a long outbox after a reconnect goes out at the allowed rate
// instead of being cut off at the burst, again on every reconnect. Below the server's figures,
// so that timers firing late never add up to a refusal.
const MARGIN = 0.8;

export function createPacer({ rate, burst }) {
  const limited = rate > 0 && burst > 0;
  const perSecond = rate * MARGIN;
  const capacity = Math.max(1, Math.floor(burst * MARGIN));
  let tokens = capacity;
  let last = performance.now();

  function refill() {
    const now = performance.now();
    tokens = Math.min(capacity, tokens + ((now - last) / 1000) * perSecond);
    last = now;
  }

  return {
    // Take a token if there is one: 0. Else the milliseconds until there will be one.
    take() {
      if (!limited) return 0;
      refill();
      if (tokens >= 1) {
        tokens -= 1;
        return 0;
      }
      return Math.ceil(((1 - tokens) / perSecond) * 1000);
    },
    // A new connection has a full bucket on the server.
    reset() {
      tokens = capacity;
      last = performance.now();
    },
  };
}

// Times arrive as ISO 8601 UTC; people read them in their own time zone and locale.
const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayAndClock = new Intl.DateTimeFormat(undefined, {
  day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
});
export const full = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

// The server writes microseconds; Date wants at most milliseconds.
export const parse = (iso) => new Date(iso.replace(/(\.\d{3})\d+/, "$1"));

const sameDay = (a, b) => a.toDateString() === b.toDateString();

// A <time> element: the clock for today, the day too for older ones, everything on hover.
export function timeElement(iso) {
  const date = parse(iso);
  const node = document.createElement("time");
  node.dateTime = iso;
  node.title = full.format(date);
  node.textContent = (sameDay(date, new Date()) ? clock : dayAndClock).format(date);
  return node;
}

export function ago(iso) {
  const seconds = (parse(iso) - Date.now()) / 1000;
  const steps = [[60, "second"], [60, "minute"], [24, "hour"], [7, "day"]];
  let value = seconds;
  for (const [size, unit] of steps) {
    if (Math.abs(value) < size) {
      return unit === "second" ? "just now" : relative.format(Math.round(value), unit);
    }
    value /= size;
  }
  return dayAndClock.format(parse(iso));
}

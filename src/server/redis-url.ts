// Redis URLs in messages: the password is never shown. (Apart from redis-queue.ts so that the CLI can print one
// without loading BullMQ.)

/** The URL without its password. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return url;
  }
}

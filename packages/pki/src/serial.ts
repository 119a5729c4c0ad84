/** Certificate serials as this package writes and compares them (portable: no Node API). */

/** Lowercase hex without leading zeros lost: the canonical serial form of this package. */
export function normalizeSerial(hex: string): string {
  return hex.toLowerCase().replace(/^(00)+(?=[0-9a-f])/, '');
}

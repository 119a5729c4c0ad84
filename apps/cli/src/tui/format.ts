/** Text formatting shared by the scriptable commands and the chat UI. */

/** Safety number digits in groups of five, three groups per line (easy to read aloud). */
export function formatSafetyNumber(digits: string): string {
  const groups = digits.match(/.{1,5}/g) ?? [];
  const lines: string[] = [];
  for (let i = 0; i < groups.length; i += 3) lines.push(groups.slice(i, i + 3).join(' '));
  return lines.join('\n');
}

/** HH:MM in local time, for the conversation view. */
export function clockTime(ms: number): string {
  const d = new Date(ms);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

/** Status marks of outgoing messages: sending, queued at the relay, delivered to the device, failed. */
export function statusMark(status: string): string {
  switch (status) {
    case 'sending':
      return '…';
    case 'queued':
      return '✓';
    case 'delivered':
      return '✓✓';
    case 'failed':
      return '✗ not sent';
    default:
      return '';
  }
}

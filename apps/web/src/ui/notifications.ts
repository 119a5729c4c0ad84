/**
 * Opt-in browser notifications for messages that arrive while the tab is hidden. The
 * notification names the sender only: its text would otherwise sit in the operating
 * system's notification history, outside the encrypted store.
 */

/** The user's choice, kept per browser (not secret: it says nothing about messages). */
const OPT_IN_KEY = 'parley.notifications';

export type NotifyState = 'unsupported' | 'off' | 'on' | 'denied';

export function notifyState(): NotifyState {
  if (typeof Notification === 'undefined') return 'unsupported';
  if (Notification.permission === 'denied') return 'denied';
  return Notification.permission === 'granted' && localStorage.getItem(OPT_IN_KEY) === 'on'
    ? 'on'
    : 'off';
}

/** Asks for permission (only from a user gesture, as browsers require) and records the choice. */
export async function enableNotifications(): Promise<NotifyState> {
  if (typeof Notification === 'undefined') return 'unsupported';
  const permission = await Notification.requestPermission();
  if (permission === 'granted') localStorage.setItem(OPT_IN_KEY, 'on');
  return notifyState();
}

export function disableNotifications(): NotifyState {
  localStorage.removeItem(OPT_IN_KEY);
  return notifyState();
}

/** Shows "New message from NAME" if the user opted in and the tab is hidden. */
export function notifyIncoming(peer: string): void {
  if (notifyState() !== 'on' || document.visibilityState !== 'hidden') return;
  // One notification per conversation: a burst replaces rather than stacks.
  new Notification('Parley', { body: `New message from ${peer}`, tag: `parley:${peer}` });
}

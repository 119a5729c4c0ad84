/**
 * Browser entry: mounts the UI. Platform adapters (store, socket, lock, profile) live in
 * src/platform and are handed to the UI from here or by the UI itself; nothing here
 * touches keys or messages.
 */
import { render } from 'preact';
import { App } from './ui/App.js';

const root = document.getElementById('app');
if (root) render(<App />, root);

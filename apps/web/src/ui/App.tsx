/** Placeholder shell: the real UI replaces this file. */
export function App() {
  return <main>Parley</main>;
}

/** @jsxImportSource preact */
/**
 * A QR code drawn as SVG elements from the `qrcode` package's module matrix: no data
 * URL and no inline style, so the page's strict CSP needs no exception for it.
 */
import QRCode from 'qrcode';
import type { JSX } from 'preact';

/** Light modules around the code, as the QR specification asks (ISO/IEC 18004 §6.3.8). */
const QUIET_ZONE_MODULES = 4;

export function Qr({ text, label }: { text: string; label: string }): JSX.Element {
  const { modules } = QRCode.create(text, { errorCorrectionLevel: 'M' });
  const n = modules.size;
  let d = '';
  for (let y = 0; y < n; y++)
    for (let x = 0; x < n; x++) if (modules.get(x, y)) d += `M${x} ${y}h1v1h-1z`;
  const full = n + 2 * QUIET_ZONE_MODULES;
  return (
    <svg
      class="qr"
      role="img"
      aria-label={label}
      viewBox={`${-QUIET_ZONE_MODULES} ${-QUIET_ZONE_MODULES} ${full} ${full}`}
      shape-rendering="crispEdges"
    >
      <rect
        class="qr-bg"
        x={-QUIET_ZONE_MODULES}
        y={-QUIET_ZONE_MODULES}
        width={full}
        height={full}
      />
      <path class="qr-fg" d={d} />
    </svg>
  );
}

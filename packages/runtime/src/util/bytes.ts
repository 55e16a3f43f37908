const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'] as const;

/** `209715200` → `200 MiB`; exact below 1 KiB, one decimal above when it is not whole. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const shown = Number.isInteger(value) ? String(value) : value.toFixed(1);
  return `${shown} ${UNITS[unit]}`;
}

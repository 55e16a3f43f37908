/**
 * Colour for a person at a terminal, never for a program: only on a TTY whose `hasColors()` says
 * so (it honours NO_COLOR, FORCE_COLOR and TERM), so pipes, `--json`, logs and files stay plain.
 */

export interface Palette {
  /** Whether the styles below add anything. */
  readonly enabled: boolean;
  /** Done, passed: green. */
  ok(text: string): string;
  /** Needs a look but is not an error (retrying, blocked, cancelled): yellow. */
  warn(text: string): string;
  /** Failed: red. */
  fail(text: string): string;
  /** Secondary detail: faint. */
  dim(text: string): string;
}

const ESC = '\u001b';

/** SGR codes, each closed by its own reset so that styles nest. */
const style = (open: number, close: number) => (text: string) =>
  text ? `${ESC}[${open}m${text}${ESC}[${close}m` : text;

const COLOURED: Palette = {
  enabled: true,
  ok: style(32, 39),
  warn: style(33, 39),
  fail: style(31, 39),
  dim: style(2, 22),
};

const same = (text: string) => text;

export const PLAIN: Palette = { enabled: false, ok: same, warn: same, fail: same, dim: same };

/** The palette for what is written to `stream`. */
export function paletteFor(stream: NodeJS.WritableStream = process.stdout): Palette {
  const tty = stream as Partial<NodeJS.WriteStream>;
  return tty.isTTY && tty.hasColors?.() ? COLOURED : PLAIN;
}

const SGR = new RegExp(`${ESC}\\[[0-9;]*m`, 'g');

/** How many columns `text` takes: its colour codes take none. */
export function visibleLength(text: string): number {
  return [...text.replace(SGR, '')].length;
}

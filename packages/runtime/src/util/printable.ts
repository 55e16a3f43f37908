import { isUtf8 } from 'node:buffer';

/** Marks that reorder the text around them. */
const REORDERING = /[\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

/**
 * A name from an untrusted source (an agent's file name, bytes that may not be UTF-8), made safe
 * to print on a terminal or in a one-line message: control characters (C0, DEL, C1: the start of
 * every terminal escape sequence) and bytes that are not UTF-8 are written as `\xNN`, marks
 * that reorder text (bidirectional overrides, which make a name read as another) as `\uNNNN`;
 * everything else is shown as it is.
 */
export function printable(name: string | Uint8Array): string {
  if (typeof name !== 'string' && !isUtf8(name)) return escapeBytes(name);
  const text = typeof name === 'string' ? name : Buffer.from(name).toString('utf8');
  let out = '';
  for (const char of text) {
    const code = char.codePointAt(0) as number;
    if (code < 0x20 || (code >= 0x7f && code < 0xa0)) out += `\\x${hex(code)}`;
    else if (REORDERING.test(char)) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += char;
  }
  return out;
}

function hex(code: number): string {
  return code.toString(16).padStart(2, '0');
}

/** Bytes that are not valid UTF-8: printable ASCII as it is, every other byte as `\xNN`. */
function escapeBytes(bytes: Uint8Array): string {
  let out = '';
  for (const byte of bytes) {
    if (byte >= 0x20 && byte < 0x7f) out += String.fromCharCode(byte);
    else out += `\\x${hex(byte)}`;
  }
  return out;
}

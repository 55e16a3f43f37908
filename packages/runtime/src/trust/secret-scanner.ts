/** Values shorter than this are not looked for: they would match ordinary text. */
const MIN_SECRET_LENGTH = 8;

/**
 * The stretch of `base64(prefix + secret)` that depends only on the secret, for each of the three
 * alignments a secret can have inside a longer base64 text.
 */
function base64Forms(secret: Buffer, encoding: 'base64' | 'base64url'): string[] {
  const forms: string[] = [];
  for (let offset = 0; offset < 3; offset++) {
    const encoded = Buffer.concat([Buffer.alloc(offset), secret]).toString(encoding);
    const start = offset === 0 ? 0 : 4;
    const unpadded = encoded.replace(/=+$/, '');
    const end = (offset + secret.length) % 3 === 0 ? unpadded.length : unpadded.length - 4;
    if (end - start >= MIN_SECRET_LENGTH) forms.push(unpadded.slice(start, end));
  }
  return forms;
}

/**
 * Finds the secret values the orchestrator handed out in bytes an agent produced: as written,
 * reversed, base64 (standard and URL-safe, any alignment) and hex. A tripwire against a key pasted or
 * encoded into a commit, not a guarantee against an agent that transforms it further; the model
 * proxy, which never gives agents the key, is the protection.
 */
export class SecretScanner {
  private readonly patterns: { name: string; bytes: Buffer }[] = [];

  /** `secrets` maps a name (for messages) to a value (never shown). */
  constructor(secrets: Readonly<Record<string, string>>) {
    for (const [name, value] of Object.entries(secrets)) {
      if (value.length < MIN_SECRET_LENGTH) continue;
      const raw = Buffer.from(value, 'utf8');
      const forms = new Set([
        value,
        [...value].reverse().join(''),
        raw.toString('hex'),
        raw.toString('hex').toUpperCase(),
        ...base64Forms(raw, 'base64'),
        ...base64Forms(raw, 'base64url'),
      ]);
      for (const form of forms) this.patterns.push({ name, bytes: Buffer.from(form, 'utf8') });
    }
  }

  get empty(): boolean {
    return this.patterns.length === 0;
  }

  /** The name of the first secret found in `content`, if any. */
  find(content: Buffer | string): string | undefined {
    const haystack = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
    return this.patterns.find((p) => haystack.includes(p.bytes))?.name;
  }
}

/**
 * Replaces each of `values` in a text by a placeholder: for what an agent could make appear in
 * its transcript or log (its own proxy token), which the host keeps on disk.
 */
export function redactor(values: readonly (string | undefined)[]): (text: string) => string {
  const present = values.filter((v): v is string => Boolean(v && v.length >= MIN_SECRET_LENGTH));
  if (present.length === 0) return (text) => text;
  return (text) => present.reduce((out, value) => out.replaceAll(value, '[redacted]'), text);
}
